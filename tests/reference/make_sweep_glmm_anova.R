# lme4 references for tests/test_glmm_anova.py: anova() of nested glmer fits (cbpp: period; epil: an observation-level
# term), on the sweep's CSVs, PIRLS and BOBYQA converged tightly. Run: Rscript tests/reference/make_sweep_glmm_anova.R
suppressMessages({library(lme4); library(jsonlite)})
tight <- glmerControl(tolPwrss = 1e-12, optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
cb <- read.csv("tests/reference/sweep_glmm/cbpp.csv", stringsAsFactors = TRUE)
m1 <- glmer(cbind(incidence, size - incidence) ~ factor(period) + (1 | herd), cb, binomial, control = tight)
m0 <- glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd), cb, binomial, control = tight)
ep <- read.csv("tests/reference/sweep_glmm/epil.csv", stringsAsFactors = TRUE)
e0 <- glmer(y ~ trt + lbase * trt + lage + V4 + (1 | subject), ep, poisson, control = tight)
e1 <- glmer(y ~ trt + lbase * trt + lage + V4 + (1 | subject) + (1 | obs), ep, poisson, control = tight)
a <- anova(m0, m1); b <- anova(e1, e0)
print(a); print(b)
tab <- function(a) list(rows = rownames(a), cols = colnames(a), values = lapply(as.list(as.data.frame(a)), function(x) ifelse(is.na(x), NA, x)))
cat(toJSON(list(cbpp = tab(a), epil = tab(b)), digits = NA, auto_unbox = TRUE, na = "null"), file = "tests/reference/sweep_glmm_anova.json")
