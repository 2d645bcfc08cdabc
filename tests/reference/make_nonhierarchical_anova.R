# Reference for tests/test_inference_nonhierarchical.py: lmerTest's type II and III F tables (Satterthwaite) for fixed
# parts whose terms lack a margin (x1 + x1:f, f + x1:f, f + f:h, x1:f alone) and two hierarchical ones, REML.
# lmerTest's containment counts only the variables R's terms() codes by contrasts (marked 1 in its "factors"
# matrix), so in x1 + x1:f the slope x1 is not adjusted for x1:f (its test is that of the reference level's slope).
# The data: a random design of a differential check against lmerTest (108 rows, f 4 levels, h 3, g1 12).
# Run from the repository root: Rscript tests/reference/make_nonhierarchical_anova.R
suppressMessages(library(lmerTest))
library(jsonlite)
d <- read.csv("tests/reference/nonhierarchical_anova.csv", stringsAsFactors = TRUE)
fs <- c("y ~ x1 + x1:f + (1 | g1)", "y ~ x1:f + (1 | g1)", "y ~ f + x1:f + (1 | g1)", "y ~ x1 + x1:f + x2 + (1 | g1)",
        "y ~ f + f:h + x1 + (1 | g1)", "y ~ x1 + f + x1:f + x1:h + (1 | g1)", "y ~ x1 * f + (1 | g1)")
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
out <- list(lmerTest = as.character(packageVersion("lmerTest")), cases = list())
for (f in fs) {
  m <- lmer(as.formula(f), d, REML = TRUE, control = ctrl)
  r <- list(formula = f)
  for (ty in c(2, 3)) {
    a <- anova(m, type = ty)
    r[[paste0("type", ty)]] <- list(terms = I(rownames(a)), F = I(a[["F value"]]), DenDF = I(a$DenDF), NumDF = I(a$NumDF),
                                    p = I(a[["Pr(>F)"]]))
  }
  out$cases[[length(out$cases) + 1]] <- r
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/nonhierarchical_anova.json")
