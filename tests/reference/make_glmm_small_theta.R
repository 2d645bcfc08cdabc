# Reference for tests/test_glmm_small_theta.py: Bernoulli responses on 10 groups whose random-intercept SD is small
# but not zero (a random design from a differential check against lme4: glmm_small_theta.csv). lme4's optimum has
# theta = 0.03-0.04 under the cloglog and probit links; mixedjax used to stop at theta = 0, where the objective's
# derivative in theta is zero whatever its curvature. PIRLS and BOBYQA converged tightly.
# Run from the repository root: Rscript tests/reference/make_glmm_small_theta.R (writes glmm_small_theta.json).
suppressMessages(library(lme4))
library(jsonlite)
d <- read.csv("tests/reference/glmm_small_theta.csv", stringsAsFactors = TRUE)
ctrl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12, optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
cases <- list(list(id = "cloglog", link = "cloglog", nagq = 1), list(id = "cloglog_agq20", link = "cloglog", nagq = 20),
              list(id = "cloglog_nagq0", link = "cloglog", nagq = 0), list(id = "probit", link = "probit", nagq = 1),
              list(id = "probit_nagq0", link = "probit", nagq = 0), list(id = "logit", link = "logit", nagq = 1))
out <- list(lme4 = as.character(packageVersion("lme4")), formula = "y ~ x + fb + (1 | g)", cases = list())
for (cs in cases) {
  fit <- glmer(y ~ x + fb + (1 | g), d, binomial(link = cs$link), nAGQ = cs$nagq, control = ctrl)
  out$cases[[length(out$cases) + 1]] <- c(cs, list(loglik = as.numeric(logLik(fit)), theta = getME(fit, "theta"),
                                                   beta = unname(fixef(fit))))
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/glmm_small_theta.json")
