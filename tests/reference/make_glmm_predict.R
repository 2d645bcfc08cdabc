# lme4 reference for tests/test_glmm_predict.py: predict(re.form = ...) of a GLMM with two random-effects terms
# (cbpp with an observation-level effect, obs nested in herd), PIRLS and BOBYQA converged tightly (tolPwrss = 1e-12,
# rhoend = 1e-10; at the defaults θ is within 1e-4 of the optimum, the log-likelihood being flat).
# Run: Rscript tests/reference/make_glmm_predict.R tests/data > tests/reference/glmm_predict_lme4.json
suppressMessages({library(lme4); library(jsonlite)})
dir <- commandArgs(TRUE)[1]
d <- read.csv(file.path(dir, "cbpp.csv"), colClasses = "character")
d$incidence <- as.numeric(d$incidence); d$size <- as.numeric(d$size)
d$herd <- factor(d$herd, levels = sort(unique(d$herd)))
d$period <- factor(d$period, levels = sort(unique(d$period)))
d$obs <- factor(as.character(seq_len(nrow(d))), levels = sort(as.character(seq_len(nrow(d)))))
formula <- cbind(incidence, size - incidence) ~ 1 + period + (1 | herd) + (1 | obs)
m <- glmer(formula, d, binomial, control = glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                                                        optCtrl = list(rhoend = 1e-10, maxfun = 1e5)))
new <- data.frame(herd = c("1", "5", "15", "99", "3"), period = c("1", "2", "4", "3", "1"),
                  obs = c("1", "30", "56", "7", "999"))
new$herd <- factor(new$herd); new$period <- factor(new$period, levels = levels(d$period)); new$obs <- factor(new$obs)
forms <- list(all = NULL, herd = ~(1 | herd), obs = ~(1 | obs), none = NA)
out <- list(formula = "cbind(incidence, size - incidence) ~ 1 + period + (1 | herd) + (1 | obs)",
            theta = unname(getME(m, "theta")), beta = unname(fixef(m)), loglik = as.numeric(logLik(m)),
            newdata = new, fitted = list(), new = list())
for (nm in names(forms)) {
  rf <- forms[[nm]]
  for (type in c("link", "response")) {
    key <- paste0(nm, "_", type)
    out$fitted[[key]] <- unname(predict(m, re.form = rf, type = type))
    out$new[[key]] <- unname(predict(m, newdata = new, re.form = rf, type = type, allow.new.levels = TRUE))
  }
}
cat(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null"))
