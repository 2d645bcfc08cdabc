# How lme4 computes a GLMM's vcov, and why its default-tolerance standard errors on cbpp differ from the exact ones
# (docs/glmm.md, "Standard errors"). Run: Rscript tests/reference/check_glmm_vcov.R (prints; no test reads it).
suppressMessages(library(lme4))
data(cbpp)
m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)
H <- m@optinfo$derivs$Hessian
cat("use.hessian vcov SE:", sqrt(diag(as.matrix(vcov(m)))), "\n")
V <- solve(H/2)
cat("solve(H/2) beta-block SE:", sqrt(diag(V))[-1], "\n")
cat("RX-based SE (use.hessian=FALSE):", sqrt(diag(as.matrix(vcov(m, use.hessian=FALSE)))), "\n")
cat("theta", getME(m,"theta"), "beta", fixef(m), "loglik", logLik(m), "\n")
m2 <- update(m, control=glmerControl(tolPwrss=1e-12, optCtrl=list(ftol_abs=1e-12, xtol_abs=1e-12)))
cat("tight SE:", sqrt(diag(as.matrix(vcov(m2)))), "\n")
cat("tight theta", getME(m2,"theta"), "beta", fixef(m2), "loglik", logLik(m2), "\n")
# default-tolerance fit's Hessian re-evaluated by the tight deviance function at m's optimum
dd <- update(m2, devFunOnly=TRUE)
pars <- c(getME(m,"theta"), fixef(m))
h2 <- lme4:::deriv12(dd, pars)$Hessian
cat("tight devfun Hessian at default optimum SE:", sqrt(diag(solve(h2/2)))[-1], "\n")
pars2 <- c(getME(m2,"theta"), fixef(m2))
h3 <- lme4:::deriv12(dd, pars2)$Hessian
cat("tight devfun Hessian at tight optimum SE:", sqrt(diag(solve(h3/2)))[-1], "\n")
dd0 <- update(m, devFunOnly=TRUE)
h4 <- lme4:::deriv12(dd0, pars)$Hessian
cat("default devfun Hessian at default optimum (recomputed) SE:", sqrt(diag(solve(h4/2)))[-1], "\n")
