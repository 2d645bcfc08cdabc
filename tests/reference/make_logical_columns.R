# Reference for tests/test_logical_columns.py: a logical (TRUE/FALSE) column in lme4 formulas. R's model.matrix
# codes a logical as a factor of FALSE / TRUE (`lgTRUE` beside an intercept, both indicators without one, one slope
# per level in `x:lg` and `(0 + lg | g)`); a logical response is 0 / 1. lg2 has one NA (its row is dropped).
# Run from the repository root: Rscript tests/reference/make_logical_columns.R (writes logical_columns.{csv,json}).
suppressMessages(library(lme4))
library(jsonlite)
set.seed(1)
d <- data.frame(g = rep(letters[1:8], each = 10), x = rnorm(80))
d$lg <- d$x + rnorm(80) > 0
d$y <- d$x + rnorm(80) + rep(rnorm(8), each = 10) + d$lg
d$lg2 <- d$lg
d$lg2[3] <- NA
d$lt <- TRUE  # TRUE on every row: lgTRUE is the intercept's column, dropped as collinear
write.csv(d, "tests/reference/logical_columns.csv", row.names = FALSE)
formulas <- c("y ~ x + lg + (1 | g)", "y ~ 0 + lg + x + (1 | g)", "y ~ x:lg + (1 | g)", "y ~ x + (0 + lg | g)",
              "y ~ x + (lg | g)", "y ~ lg2 + x + (1 | g)", "lg ~ x + (1 | g)", "y ~ factor(lg) + (1 | g)",
              "y ~ I(lg * 1) + x + (1 | g)", "y ~ x + lt + (1 | g)")
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
out <- list(lme4 = as.character(packageVersion("lme4")), cases = list())
for (f in formulas) {
  m <- lmer(as.formula(f), d, REML = FALSE, control = ctrl)
  out$cases[[length(out$cases) + 1]] <- list(formula = f, deviance = deviance(m), nobs = nobs(m),
                                             names = names(fixef(m)), beta = unname(fixef(m)),
                                             theta = unname(getME(m, "theta")))
}
g <- glmer(I(lg2 * 1) ~ x + (1 | g), d, binomial, control = glmerControl(tolPwrss = 1e-12))
out$glmm <- list(formula = "I(lg2 * 1) ~ x + (1 | g)", loglik = as.numeric(logLik(g)), nobs = nobs(g),
                 beta = unname(fixef(g)))
m <- lmer(y ~ lg2 + x + (1 | g), d, REML = FALSE, control = ctrl)
new <- d[1:4, ]
new$lg2 <- c(TRUE, NA, FALSE, TRUE)
out$predict <- list(formula = "y ~ lg2 + x + (1 | g)", lg2 = c(TRUE, NA, FALSE, TRUE),
                    values = unname(predict(m, new, na.action = na.exclude)))
writeLines(toJSON(out, digits = NA, auto_unbox = FALSE, pretty = TRUE), "tests/reference/logical_columns.json")
