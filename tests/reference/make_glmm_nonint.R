# Reference for tests/test_glmm_nonint.py: glmer on binomial responses whose successes are not whole numbers (R
# warns "non-integer counts / #successes in a binomial glm!" and fits; its binomial()$aic rounds m*y and m, and
# lme4's Laplace deviance is log|L|^2 + |u|^2 + aic(mu)). PIRLS and BOBYQA converged tightly.
# Run from the repository root: Rscript tests/reference/make_glmm_nonint.R (writes glmm_nonint.json).
suppressMessages(library(lme4))
library(jsonlite)
set.seed(3)
n <- 90
g <- factor(sprintf("g%02d", rep(1:15, each = 6))); x <- round(rnorm(n), 3)
m <- sample(3:9, n, TRUE)
s <- rbinom(n, m, plogis(-0.3 + 0.5 * x + rnorm(15, 0, 0.8)[g])) + round(runif(n), 2) * 0.7
s <- pmin(s, m)
d <- data.frame(g, x, s = s, f = m - s, m = m, wts = round(m * runif(n, 0.6, 1.4), 2))
d$p <- d$s / d$m
ctrl <- glmerControl(tolPwrss = 1e-12, optCtrl = list(rhoend = 1e-10))
cases <- list(
  list(id = "cbind_nonint", formula = "cbind(s, f) ~ x + (1 | g)", weights = NULL, nagq = 1, link = "logit"),
  list(id = "prop_weights_nonint", formula = "p ~ x + (1 | g)", weights = "wts", nagq = 1, link = "logit"),
  list(id = "cbind_nonint_probit", formula = "cbind(s, f) ~ x + (1 | g)", weights = NULL, nagq = 1, link = "probit"),
  list(id = "cbind_nonint_nagq0", formula = "cbind(s, f) ~ x + (1 | g)", weights = NULL, nagq = 0, link = "logit"),
  list(id = "cbind_nonint_agq7", formula = "cbind(s, f) ~ x + (1 | g)", weights = NULL, nagq = 7, link = "logit"))
out <- list(lme4 = as.character(packageVersion("lme4")), data = d, cases = list())
for (cs in cases) {
  pw <- if (is.null(cs$weights)) NULL else d[[cs$weights]]  # not named w: glmer looks weights up in the data first
  warn <- character()
  fit <- withCallingHandlers(
    glmer(as.formula(cs$formula), d, binomial(link = cs$link), weights = pw, nAGQ = cs$nagq, control = ctrl),
    warning = function(wn) { warn <<- c(warn, conditionMessage(wn)); invokeRestart("muffleWarning") })
  out$cases[[length(out$cases) + 1]] <- c(cs, list(
    loglik = as.numeric(logLik(fit)), aic = AIC(fit), theta = getME(fit, "theta"), beta = unname(fixef(fit)),
    se = unname(sqrt(diag(as.matrix(vcov(fit))))), warnings = warn))
}
out$source <- "tests/reference/make_glmm_nonint.R"
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE, digits = NA, null = "null"),
           "tests/reference/glmm_nonint.json")
