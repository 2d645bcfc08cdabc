# lme4 references for tests/test_glmm_sweep.py: GLMMs on data sets from R packages (mlmRev, lme4, MASS) that the
# project had not used. Each data set is written to tests/reference/sweep_glmm/<name>.csv as the project's shared
# data are (write.csv, row.names = FALSE, factors as their labels), read back with read.csv(stringsAsFactors = TRUE)
# in the C collation (pandas' sorted level order), and fitted from that, so R and mixedjax see the same columns:
# labels that are numbers come back as integers (factor(...) in the formula where they are a fixed-effect factor).
# Each model is fitted twice: lme4's defaults ("default") and PIRLS and BOBYQA converged tightly ("tight":
# tolPwrss = 1e-12, rhoend = 1e-10), the reference where lme4's default stops short.
# Run: Rscript tests/reference/make_sweep_glmm.R > tests/reference/sweep_glmm.json
suppressMessages({library(lme4); library(jsonlite); library(mlmRev); library(MASS); library(numDeriv)})
invisible(Sys.setlocale("LC_COLLATE", "C"))
here <- "tests/reference/sweep_glmm"
dir.create(here, showWarnings = FALSE)
plain <- function(d) { for (c in names(d)) if (is.factor(d[[c]])) d[[c]] <- as.character(d[[c]]); d }
put <- function(name, d) {
  write.csv(plain(d), file.path(here, paste0(name, ".csv")), row.names = FALSE)
  read.csv(file.path(here, paste0(name, ".csv")), stringsAsFactors = TRUE)
}
data(Contraception, package = "mlmRev"); data(Mmmec, package = "mlmRev"); data(guImmun, package = "mlmRev")
 data(Arabidopsis, package = "lme4"); data(cbpp, package = "lme4")
data(VerbAgg, package = "lme4"); data(grouseticks, package = "lme4")
va <- VerbAgg[as.integer(as.character(VerbAgg$id)) <= 200, c("Anger", "Gender", "item", "id", "btype", "situ", "r2")]
ep <- MASS::epil
ep <- data.frame(y = ep$y, trt = ep$trt, base = ep$base, age = ep$age, period = ep$period, subject = ep$subject,
                 lbase = log(ep$base / 4), lage = log(ep$age), V4 = as.integer(ep$period == 4), obs = seq_len(nrow(ep)))
ins <- MASS::Insurance
ins$Group <- factor(as.character(ins$Group)); ins$Age <- factor(as.character(ins$Age))  # unordered, as a CSV reads
D <- list(
  contraception = put("contraception", Contraception[, c("district", "use", "livch", "age", "urban")]),
  arabidopsis = put("arabidopsis", Arabidopsis),
  cbpp = put("cbpp", cbpp),
  verbagg200 = put("verbagg200", va),
  grouseticks = put("grouseticks", grouseticks[, c("INDEX", "TICKS", "BROOD", "HEIGHT", "YEAR", "LOCATION")]),
  bacteria = put("bacteria", MASS::bacteria),
  epil = put("epil", ep),
  insurance = put("insurance", ins),
  mmmec = put("mmmec", Mmmec[, c("nation", "region", "deaths", "expected", "uvb")]),
  guimmun = put("guimmun", guImmun[, setdiff(names(guImmun), "kid")])
)
# new data: the first four rows, and two rows whose grouping factors all take levels new to the fit
groups <- list(contraception = "district", arabidopsis = c("reg", "popu", "gen"), cbpp = "herd",
               verbagg200 = c("id", "item"), grouseticks = c("INDEX", "BROOD", "LOCATION"), bacteria = "ID",
               epil = c("subject", "obs"), insurance = "District", mmmec = c("nation", "region"),
               guimmun = c("mom", "comm"))
N <- lapply(names(D), function(k) {
  d <- D[[k]]; nd <- plain(d[c(1:4, 5, nrow(d)), ])
  for (g in groups[[k]]) nd[[g]][5:6] <- if (is.numeric(d[[g]])) c(9998, 9999) else c("NEW1", "NEW2")
  write.csv(nd, file.path(here, paste0(k, "_new.csv")), row.names = FALSE)
  # the fit's text columns as text (six rows of guImmun's ord, "01", "23", "46", would read as numbers)
  read.csv(file.path(here, paste0(k, "_new.csv")), stringsAsFactors = FALSE,
           colClasses = sapply(d, function(x) if (is.factor(x)) "character" else NA))
})
names(N) <- names(D)

cases <- list(
  list(id = "contra_logit", data = "contraception", family = "binomial", link = "logit", nagq = 1,
       formula = "use ~ age + I(age^2) + urban + livch + (1 | district)"),
  list(id = "contra_agq9", data = "contraception", family = "binomial", link = "logit", nagq = 9,
       formula = "use ~ age + I(age^2) + urban + livch + (1 | district)"),
  list(id = "contra_nagq0", data = "contraception", family = "binomial", link = "logit", nagq = 0,
       formula = "use ~ age + I(age^2) + urban + livch + (1 | district)"),
  list(id = "contra_slope", data = "contraception", family = "binomial", link = "logit", nagq = 1,
       formula = "use ~ age + I(age^2) + urban + livch + (urban | district)"),
  list(id = "arabid_three", data = "arabidopsis", family = "poisson", link = "log", nagq = 1,
       formula = "total.fruits ~ nutrient * amd + rack + status + (1 | reg) + (1 | popu) + (1 | gen)"),
  list(id = "arabid_gen", data = "arabidopsis", family = "poisson", link = "log", nagq = 1,
       formula = "total.fruits ~ nutrient * amd + rack + status + (1 | gen)"),
  list(id = "arabid_gen_agq7", data = "arabidopsis", family = "poisson", link = "log", nagq = 7,
       formula = "total.fruits ~ nutrient * amd + rack + status + (1 | gen)"),
  list(id = "cbpp_probit", data = "cbpp", family = "binomial", link = "probit", nagq = 1,
       formula = "cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)"),
  list(id = "cbpp_cloglog", data = "cbpp", family = "binomial", link = "cloglog", nagq = 1,
       formula = "cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)"),
  list(id = "cbpp_prop_weights", data = "cbpp", family = "binomial", link = "logit", nagq = 1, weights = "size",
       formula = "incidence / size ~ factor(period) + (1 | herd)"),
  list(id = "cbpp_probit_agq5", data = "cbpp", family = "binomial", link = "probit", nagq = 5,
       formula = "cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)"),
  list(id = "verbagg_logit", data = "verbagg200", family = "binomial", link = "logit", nagq = 1,
       formula = "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)"),
  list(id = "verbagg_probit", data = "verbagg200", family = "binomial", link = "probit", nagq = 1,
       formula = "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)"),
  list(id = "grouse_scaled", data = "grouseticks", family = "poisson", link = "log", nagq = 1,
       formula = "TICKS ~ factor(YEAR) + scale(HEIGHT) + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)"),
  list(id = "bacteria_logit", data = "bacteria", family = "binomial", link = "logit", nagq = 1,
       formula = "y ~ trt + I(week > 2) + (1 | ID)"),
  list(id = "bacteria_agq9", data = "bacteria", family = "binomial", link = "logit", nagq = 9,
       formula = "y ~ trt + I(week > 2) + (1 | ID)"),
  list(id = "epil_pois", data = "epil", family = "poisson", link = "log", nagq = 1,
       formula = "y ~ trt + lbase * trt + lage + V4 + (1 | subject)"),
  list(id = "epil_offset", data = "epil", family = "poisson", link = "log", nagq = 1,
       formula = "y ~ trt + lage + V4 + offset(lbase) + (1 | subject)"),
  list(id = "epil_olre", data = "epil", family = "poisson", link = "log", nagq = 1,
       formula = "y ~ trt + lbase * trt + lage + V4 + (1 | subject) + (1 | obs)"),
  list(id = "insurance_offset", data = "insurance", family = "poisson", link = "log", nagq = 1,
       formula = "Claims ~ Age + Group + offset(log(Holders)) + (1 | District)"),
  list(id = "insurance_offset_agq9", data = "insurance", family = "poisson", link = "log", nagq = 9,
       formula = "Claims ~ Age + Group + offset(log(Holders)) + (1 | District)"),
  # the other links of R's families that glmer fits (binomial cauchit and log, poisson sqrt)
  list(id = "cbpp_cauchit", data = "cbpp", family = "binomial", link = "cauchit", nagq = 1,
       formula = "cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)"),
  list(id = "cbpp_log", data = "cbpp", family = "binomial", link = "log", nagq = 1,
       formula = "cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)"),
  list(id = "contra_cauchit", data = "contraception", family = "binomial", link = "cauchit", nagq = 1,
       formula = "use ~ age + I(age^2) + urban + livch + (1 | district)"),
  list(id = "epil_sqrt", data = "epil", family = "poisson", link = "sqrt", nagq = 1, richardson = TRUE,
       formula = "y ~ trt + lage + V4 + (1 | subject)"),
  list(id = "epil_sqrt_agq9", data = "epil", family = "poisson", link = "sqrt", nagq = 9,
       formula = "y ~ trt + lage + V4 + (1 | subject)"),
  # nested terms: Mmmec's regions in nations (lme4 names the inner term region:nation), guImmun's mothers in
  # communities
  list(id = "mmmec_nested", data = "mmmec", family = "poisson", link = "log", nagq = 1,
       formula = "deaths ~ uvb + offset(log(expected)) + (1 | nation/region)"),
  list(id = "guimmun_nested", data = "guimmun", family = "binomial", link = "logit", nagq = 1,
       formula = "immun ~ kid2p + mom25p + ord + ethn + momEd + husEd + momWork + rural + pcInd81 + (1 | mom) + (1 | comm)"),
  # factors as the package has them, not as a CSV reads them (the test makes the same pandas Categoricals): MASS's
  # Insurance has ordered factors (contr.poly: Age.L, Age.Q, Age.C), bacteria's trt the levels placebo, drug, drug+
  list(id = "insurance_ordered", data = "insurance", family = "poisson", link = "log", nagq = 1,
       formula = "Claims ~ Age + Group + offset(log(Holders)) + (1 | District)",
       factors = list(Age = list(levels = levels(MASS::Insurance$Age), ordered = TRUE),
                      Group = list(levels = levels(MASS::Insurance$Group), ordered = TRUE))),
  list(id = "bacteria_levels", data = "bacteria", family = "binomial", link = "logit", nagq = 1,
       formula = "y ~ trt + I(week > 2) + (1 | ID)",
       factors = list(trt = list(levels = levels(MASS::bacteria$trt), ordered = FALSE)))
)
as_given <- function(d, cs) {  # the case's factors with the package's levels (and ordered where it has them)
  for (c in names(cs$factors)) d[[c]] <- factor(as.character(d[[c]]), levels = cs$factors[[c]]$levels,
                                                ordered = cs$factors[[c]]$ordered)
  d
}
tight <- glmerControl(tolPwrss = 1e-12, optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
fit <- function(cs, ctl) {
  d <- as_given(D[[cs$data]], cs)
  fam <- if (cs$family == "poisson") poisson(link = cs$link) else binomial(link = cs$link)
  args <- list(formula = as.formula(cs$formula), data = d, family = fam, nAGQ = cs$nagq)
  if (!is.null(ctl)) args$control <- ctl
  if (!is.null(cs$weights)) args$weights <- d[[cs$weights]]
  warn <- character(0)
  m <- withCallingHandlers(do.call(glmer, args),
                           warning = function(w) { warn <<- c(warn, conditionMessage(w)); invokeRestart("muffleWarning") },
                           message = function(w) { warn <<- c(warn, conditionMessage(w)); invokeRestart("muffleMessage") })
  list(m = m, warn = warn)
}
brief <- function(m, warn) list(loglik = as.numeric(logLik(m)), theta = unname(getME(m, "theta")),
                                beta = unname(fixef(m)), se = unname(sqrt(diag(as.matrix(vcov(m))))),
                                warnings = warn)
full <- function(m, cs) {
  ct <- coef(summary(m)); vc <- as.data.frame(VarCorr(m))
  re <- ranef(m)
  nd <- as_given(N[[cs$data]], cs)
  pr <- list()
  for (type in c("link", "response")) {
    pr[[paste0(type, "_none")]] <- unname(predict(m, newdata = nd, type = type, re.form = NA))
    pr[[paste0(type, "_all")]] <- unname(predict(m, newdata = nd, type = type, re.form = NULL, allow.new.levels = TRUE))
  }
  ll <- logLik(m)
  list(loglik = as.numeric(ll), df = attr(ll, "df"), nobs = nobs(m), deviance_lme4 = deviance(m),
       aic = AIC(m), bic = BIC(m), theta = unname(getME(m, "theta")), beta = unname(fixef(m)),
       beta_names = names(fixef(m)), vcov = unname(as.matrix(vcov(m))), se = unname(ct[, 2]),
       z = unname(ct[, 3]), p = unname(ct[, 4]),
       varcorr = list(grp = vc$grp, var1 = ifelse(is.na(vc$var1), "", vc$var1), var2 = ifelse(is.na(vc$var2), "", vc$var2),
                      vcov = vc$vcov, sdcor = vc$sdcor),
       ranef = lapply(re, function(b) list(levels = rownames(b), columns = colnames(b),
                                          values = lapply(as.list(b), unname))),
       fitted = unname(fitted(m)), predict = pr, singular = isSingular(m),
       family = family(m)$family, link = family(m)$link,
       confint_wald = unname(as.matrix(confint(m, method = "Wald", parm = "beta_", level = 0.9))),
       # ranef(m, condVar = TRUE)'s postVar: the conditional standard deviations, per term and column
       condsd = lapply(ranef(m, condVar = TRUE), function(b) {
         pv <- attr(b, "postVar"); lapply(seq_len(dim(pv)[1]), function(j) sqrt(pv[j, j, ]))
       }),
       # where lme4's finite-difference Hessian is doubtful: numDeriv's Richardson Hessian of the same deviance function
       se_richardson = if (isTRUE(cs$richardson)) {
         x <- c(getME(m, "theta"), fixef(m)); H <- numDeriv::hessian(update(m, devFunOnly = TRUE), x)
         unname(sqrt(diag(solve(H / 2)))[-seq_along(getME(m, "theta"))])
       })
}
out <- list(lme4 = as.character(packageVersion("lme4")), R = R.version.string, cases = list())
for (cs in cases) {
  d0 <- fit(cs, NULL); t1 <- fit(cs, tight)
  out$cases[[cs$id]] <- c(cs, list(default = brief(d0$m, d0$warn), tight = c(full(t1$m, cs), list(warnings = t1$warn))))
}
cat(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = FALSE, null = "null"))
