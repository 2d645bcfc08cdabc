# Reference for tests/test_bootstrap_fresh.py: on REML fits with fixed effects beyond the intercept, lme4 1.1-31's
# refit() (which bootMer calls for every replicate) does not reach the REML optimum that a fresh lmer() of the same
# response reaches, so bootMer's percentiles there are those of another estimator. This writes, for alfalfa's split
# plot by REML: the percentiles of a parametric bootstrap by fresh lmer() fits (simulate(), then lmer() on each
# response) and by bootMer (refit()), and one simulated response with both fits of it.
# Run: Rscript tests/reference/make_bootstrap_fresh.R (about 2 minutes; writes bootstrap_fresh.json beside it).
suppressMessages(library(lme4))
library(jsonlite)
here <- "tests/reference"
d <- read.csv("/work/shared/data/alfalfa.csv", stringsAsFactors = TRUE, na.strings = character(0))
d$Block <- factor(d$Block)
d$Date <- factor(d$Date, levels = c("None", "S1", "S20", "O7"))  # nlme's Alfalfa's order, as mj.dataset's copy
fo <- Yield ~ 1 + Date + Variety + (1 | Block) + (1 | Block:Variety)
m <- lmer(fo, d, REML = TRUE)
names_of <- c(lme4:::tnames(m, old = FALSE, prefix = c("sd", "cor")), "sigma", names(fixef(m)))
stat <- function(x) setNames(c(lme4:::Cv_to_Sv(x@theta, n = lengths(x@cnms), s = sigma(x)), fixef(x)), names_of)
probs <- c(0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)
nsim <- 2000
quiet <- function(e) suppressMessages(suppressWarnings(e))

set.seed(11)
S <- simulate(m, nsim)
fresh <- t(sapply(S, function(s) { d2 <- d; d2$Yield <- s; stat(quiet(lmer(fo, d2, REML = TRUE))) }))
set.seed(12)
b <- quiet(bootMer(m, stat, nsim = nsim, use.u = FALSE, type = "parametric"))
q <- function(t) { t <- t[apply(t, 1, function(r) all(is.finite(r))), , drop = FALSE]
                   unname(split(apply(t, 2, quantile, probs = probs, type = 7), col(t)[seq_len(length(probs)), ])) }

# one response, fitted both ways (its REML criterion by mixedjax is checked against both in the test)
s1 <- S[[1]]
d1 <- d; d1$Yield <- s1
f1 <- quiet(lmer(fo, d1, REML = TRUE))
r1 <- quiet(refit(m, s1))
out <- list(lme4 = as.character(packageVersion("lme4")), R = R.version.string, formula = deparse(fo), reml = TRUE,
            nsim = nsim, probs = probs, names = names_of, theta = unname(getME(m, "theta")),
            fresh = list(quantiles = q(fresh), nfinite = sum(apply(fresh, 1, function(r) all(is.finite(r))))),
            bootmer = list(quantiles = q(b$t), nfinite = sum(apply(b$t, 1, function(r) all(is.finite(r))))),
            response = list(y = unname(s1),
                            fresh = list(theta = unname(getME(f1, "theta")), reml_criterion = REMLcrit(f1)),
                            refit = list(theta = unname(getME(r1, "theta")), reml_criterion = REMLcrit(r1))),
            source = "tests/reference/make_bootstrap_fresh.R")
writeLines(toJSON(out, auto_unbox = TRUE, digits = 12, pretty = TRUE), file.path(here, "bootstrap_fresh.json"))
