# Orthodont's ML profile, where lme4's confint fails for sigma (upper end NA, lower end 1.2036 where zeta is -0.91)
# and is coarse for sd_(Intercept): the interval ends of sigma and sd_(Intercept)|Subject root-found on an independent
# profile, lme4's devfun2 (the ML deviance in sd, cor, sigma) minimised over the other parameters by Nelder-Mead then
# BFGS from three starts. Writes tests/reference/sweep_infer_profile_check.json (read by tests/test_sweep_infer.py).
#   Rscript tests/reference/make_sweep_infer_profile_check.R   (from the repository root, after make_sweep_infer.R)
suppressMessages({library(lme4); library(jsonlite)})
d <- read.csv("tests/reference/sweep_infer/Orthodont.csv", stringsAsFactors = TRUE)
m <- lmer(distance ~ age*Sex + (age|Subject), d, REML = FALSE,
          control = lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-10)))
dd <- lme4:::devfun2(m, useSc = TRUE, signames = FALSE)
opt <- attr(dd, "optimum")[1:4]
d0 <- dd(opt)
zeta_at <- function(j, x) {
  f <- function(p) { v <- tryCatch(dd(append(p, x, after = j - 1)), error = function(e) 1e10)
                     if (is.finite(v)) v else 1e10 }
  best <- Inf
  for (s in 1:3) {
    st <- opt[-j]
    if (s > 1) { set.seed(s); st <- st * exp(rnorm(length(st), sd = 0.2)) }
    r <- optim(st, f, method = "Nelder-Mead", control = list(maxit = 20000, reltol = 1e-14))
    r <- optim(r$par, f, method = "BFGS", control = list(maxit = 2000, reltol = 1e-14))
    best <- min(best, r$value)
  }
  sign(x - opt[[j]]) * sqrt(max(best - d0, 0))
}
zq <- qnorm(0.975)
ends <- list(
  sigma = c(uniroot(function(x) zeta_at(4, x) + zq, c(0.9, opt[[4]]), tol = 1e-7)$root,
            uniroot(function(x) zeta_at(4, x) - zq, c(opt[[4]], 2.0), tol = 1e-7)$root),
  "sd_(Intercept)|Subject" = c(NA, uniroot(function(x) zeta_at(1, x) - zq, c(opt[[1]], 5.0), tol = 1e-7)$root))
print(ends)
writeLines(toJSON(list(orthodont_ml = ends), digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
           "tests/reference/sweep_infer_profile_check.json")
