# The lme4 worker, run by run.py through Rscript with BLAS pinned to one thread: lmer and summary timed the way
# the mixedjax worker times mj.lmm and print(m).
#
#   Rscript benchmarks/lme4.R in-process DATA.csv FORMULA FACTORS REPS BUDGET OUT.json DATA.rds
#       reads the CSV (FACTORS: comma-separated factor columns), saves it as DATA.rds for the new-process mode,
#       then times `lmer(formula, data, REML = FALSE)` (the whole call from a data frame, median of up to REPS,
#       stopping once they pass BUDGET seconds) and `print(summary(m))` (first and median); writes OUT.json
#   Rscript benchmarks/lme4.R new-process DATA.rds FORMULA
#       what a user's new script does: library(lme4), read the data, lmer, print(summary(m)); prints the summary,
#       then one JSON line with the stages' times (the harness times the whole process from outside)

t_start <- proc.time()[["elapsed"]]
elapsed <- function() proc.time()[["elapsed"]]
args <- commandArgs(TRUE)
mode <- args[1]
esc <- function(s) gsub('"', "'", gsub("\n", " ", s))

if (mode == "new-process") {
  t <- elapsed(); suppressPackageStartupMessages(library(lme4)); t_lib <- elapsed() - t
  t <- elapsed(); d <- readRDS(args[2]); t_read <- elapsed() - t
  t <- elapsed(); m <- lmer(as.formula(args[3]), data = d, REML = FALSE); t_fit <- elapsed() - t
  t <- elapsed(); print(summary(m)); t_print <- elapsed() - t
  cat(sprintf('\n{"library_s": %.4f, "read_s": %.4f, "fit_s": %.4f, "print_s": %.4f, "objective": %.10f}\n',
              t_lib, t_read, t_fit, t_print, deviance(m)))
} else if (mode == "in-process") {
  suppressPackageStartupMessages(library(lme4))
  csv <- args[2]; f <- as.formula(args[3]); factors <- strsplit(args[4], ",")[[1]]
  reps <- as.integer(args[5]); budget <- as.numeric(args[6]); out <- args[7]; rds <- args[8]
  cls <- rep("character", length(factors)); names(cls) <- factors
  d <- read.csv(csv, colClasses = cls)
  for (cc in factors) d[[cc]] <- factor(d[[cc]])
  saveRDS(d, rds)
  times <- c()
  repeat {
    times <- c(times, system.time(m <- lmer(f, data = d, REML = FALSE))[["elapsed"]])
    if (length(times) >= reps || sum(times) > budget) break
  }
  prints <- c()
  repeat {
    prints <- c(prints, system.time(capture.output(print(summary(m))))[["elapsed"]])
    if (length(prints) >= reps || sum(prints) > budget) break
  }
  msgs <- unlist(m@optinfo$conv$lme4$messages)
  cat(sprintf(paste0('{"times": [%s], "prints": [%s], "objective": %.10f, "feval": %d, "optimizer": "%s", ',
                     '"R": "%s", "lme4": "%s", "messages": [%s]}\n'),
              paste(sprintf("%.4f", times), collapse = ", "), paste(sprintf("%.4f", prints), collapse = ", "),
              deviance(m), as.integer(m@optinfo$feval), m@optinfo$optimizer, esc(R.version.string),
              as.character(packageVersion("lme4")), paste(sprintf('"%s"', esc(msgs)), collapse = ", ")),
      file = out)
} else {
  stop(paste("unknown mode", mode, ": in-process or new-process"))
}
