suppressMessages(library(lme4))
d <- read.csv("/work/shared/data/sleepstudy.csv")
d$subj <- factor(d$subj)
m <- lmer(reaction ~ 1 + days + (1 + days | subj), d, REML = FALSE)
set.seed(11)
t <- system.time(b <- bootMer(m, function(x) c(getME(x, "beta"), sigma(x)), nsim = 1000, use.u = FALSE, type = "parametric"))
ci <- confint(m, method = "boot", nsim = 2000, boot.type = "perc", oldNames = FALSE, level = 0.95)
cat(sprintf('{"lme4": "%s", "R": "%s", "bootMer_1000_elapsed_s": %.3f, "names": [%s], "q025": [%s], "q975": [%s]}\n',
  as.character(packageVersion("lme4")), R.version.string, t[["elapsed"]],
  paste0('"', rownames(ci), '"', collapse = ", "), paste(sprintf("%.8g", ci[, 1]), collapse = ", "),
  paste(sprintf("%.8g", ci[, 2]), collapse = ", ")))
