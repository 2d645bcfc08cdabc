# lmerTest 3.1-3's type II F tables (anova(m, type = 2), both ddf methods) on the sweep's CSVs (make_sweep_infer.R
# writes them). Writes tests/reference/sweep_infer_type2.json, read by tests/test_sweep_infer.py.
#   Rscript tests/reference/make_sweep_infer_type2.R   (from the repository root)
suppressMessages({library(lmerTest); library(jsonlite)})
info <- fromJSON("tests/reference/sweep_infer.json", simplifyVector = FALSE)
tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-10))
f_frame <- function(a) list(terms = rownames(a), sumsq = unname(a[["Sum Sq"]]), numdf = unname(a[["NumDF"]]),
                            dendf = unname(a[["DenDF"]]), F = unname(a[["F value"]]), p = unname(a[["Pr(>F)"]]))
out <- list()
for (id in c("ham", "ham_unbalanced", "orthodont", "oats", "TVbo", "machines_unbalanced", "ham_missing_cell")) {
  case <- Filter(function(c) c$id == id, info$cases)[[1]]
  ds <- info$datasets[[case$data]]
  factors <- unlist(ds$factors)
  d <- read.csv(file.path("tests/reference/sweep_infer", ds$file),
                colClasses = setNames(rep("character", length(factors)), factors))
  for (f in factors) d[[f]] <- factor(d[[f]])
  m <- lmerTest::lmer(as.formula(case$formula), data = d, REML = TRUE, control = tight)
  out[[id]] <- list(satterthwaite = f_frame(anova(m, type = 2)),
                    kenward_roger = f_frame(anova(m, type = 2, ddf = "Kenward-Roger")))
  cat(id, "\n")
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
           "tests/reference/sweep_infer_type2.json")
