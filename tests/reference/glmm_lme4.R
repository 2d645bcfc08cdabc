# lme4 reference values for tests/test_glmm_reference.py, with PIRLS converged tightly (tolPwrss = 1e-12): at
# lme4's default tolerance (1e-7) the log-determinant is taken at weights one PIRLS step before the modes, which
# moves logLik by ~3e-4 and the finite-difference Hessian's standard errors by up to 1% on cbpp.
# Run: Rscript tests/reference/glmm_lme4.R /work/shared/data > tests/reference/glmm_lme4.json
suppressMessages({library(lme4); library(jsonlite)})
dir <- commandArgs(TRUE)[1]
rd <- function(name, factors) {
  d <- read.csv(file.path(dir, paste0(name, ".csv")), colClasses = "character")
  for (c in names(d)) if (!(c %in% factors)) d[[c]] <- as.numeric(d[[c]])
  for (c in factors) if (c %in% names(d)) d[[c]] <- factor(d[[c]], levels = sort(unique(d[[c]])))
  d
}
cbpp <- rd("cbpp", c("herd", "period"))
grouse <- rd("grouseticks", c("INDEX", "BROOD", "YEAR", "LOCATION"))
verb <- rd("verbagg", c("Gender", "item", "resp", "id", "btype", "situ", "mode", "r2"))
ctl <- glmerControl(tolPwrss = 1e-12)
cases <- list(
  list(id = "cbpp_logit", data = "cbpp", formula = "cbind(incidence, size - incidence) ~ 1 + period + (1 | herd)",
       family = "binomial", link = "logit", nagq = 1),
  list(id = "cbpp_logit_agq9", data = "cbpp", formula = "cbind(incidence, size - incidence) ~ 1 + period + (1 | herd)",
       family = "binomial", link = "logit", nagq = 9),
  list(id = "cbpp_logit_nagq0", data = "cbpp", formula = "cbind(incidence, size - incidence) ~ 1 + period + (1 | herd)",
       family = "binomial", link = "logit", nagq = 0),
  list(id = "cbpp_probit", data = "cbpp", formula = "cbind(incidence, size - incidence) ~ 1 + period + (1 | herd)",
       family = "binomial", link = "probit", nagq = 1),
  list(id = "cbpp_cloglog", data = "cbpp", formula = "cbind(incidence, size - incidence) ~ 1 + period + (1 | herd)",
       family = "binomial", link = "cloglog", nagq = 1),
  list(id = "cbpp_proportion_weights", data = "cbpp", formula = "incidence / size ~ 1 + period + (1 | herd)",
       family = "binomial", link = "logit", nagq = 1, weights = "size"),
  list(id = "cbpp_poisson_offset", data = "cbpp", formula = "incidence ~ 1 + period + (1 | herd)",
       family = "poisson", link = "log", nagq = 1, offset = "log(size)"),
  list(id = "cbpp_poisson_agq5", data = "cbpp", formula = "incidence ~ 1 + period + (1 | herd)",
       family = "poisson", link = "log", nagq = 5, offset = "log(size)"),
  list(id = "grouseticks_poisson", data = "grouseticks",
       formula = "TICKS ~ 1 + YEAR + cHEIGHT + (1 | INDEX) + (1 | BROOD) + (1 | LOCATION)",
       family = "poisson", link = "log", nagq = 1),
  list(id = "verbagg_crossed", data = "verbagg", formula = "r2 ~ 1 + Anger + Gender + btype + situ + (1 | id) + (1 | item)",
       family = "binomial", link = "logit", nagq = 1),
  list(id = "verbagg_vector", data = "verbagg", formula = "r2 ~ 1 + Anger + btype + (1 + Anger | item)",
       family = "binomial", link = "logit", nagq = 1)
)
out <- lapply(cases, function(cs) {
  d <- get(switch(cs$data, cbpp = "cbpp", grouseticks = "grouse", verbagg = "verb"))
  fam <- binomial(link = cs$link)
  if (cs$family == "poisson") fam <- poisson(link = cs$link)
  args <- list(formula = as.formula(cs$formula), data = d, family = fam, nAGQ = cs$nagq, control = ctl)
  if (!is.null(cs$weights)) args$weights <- d[[cs$weights]]
  if (!is.null(cs$offset)) args$offset <- eval(parse(text = cs$offset), d)
  t <- system.time(m <- do.call(glmer, args))[["elapsed"]]
  c(cs, list(loglik = as.numeric(logLik(m)), theta = unname(getME(m, "theta")), beta = unname(fixef(m)),
             beta_names = names(fixef(m)), se = unname(sqrt(diag(as.matrix(vcov(m))))),
             fitted_head = unname(head(fitted(m), 8)), ranef_head = unname(head(ranef(m)[[1]][, 1], 5)),
             ranef_levels = head(rownames(ranef(m)[[1]]), 5), nobs = nobs(m), seconds = t,
             lme4 = as.character(packageVersion("lme4"))))
})
cat(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE))
