# Reference for tests/test_bootstrap_designs.py: lme4's bootMer percentiles and confint(oldNames = FALSE) names on
# crossed, nested, correlated-vector, weighted, REML and ML fits. Run: Rscript tests/reference/bootmer_designs.R
# (writes bootmer_designs.json and bootmer_designs.csv next to it; about 5 minutes).
suppressMessages(library(lme4))
library(jsonlite)
here <- "tests/reference"
data_dir <- "/work/shared/data"

# a simulated design: 30 groups of 6, a correlated random intercept and slope, prior weights and an offset
set.seed(2026)
ng <- 30; per <- 6
sim <- data.frame(g = factor(sprintf("g%02d", rep(seq_len(ng), each = per))),
                  x = round(rep(seq(-1, 1, length.out = per), ng) + rnorm(ng * per, sd = 0.2), 4))
sim$x2 <- round(rnorm(nrow(sim)), 4)
sim$w <- round(runif(nrow(sim), 0.5, 3), 3)
sim$off <- round(rnorm(nrow(sim), sd = 0.5), 4)
u <- MASS::mvrnorm(ng, c(0, 0), matrix(c(1, 0.4, 0.4, 0.5), 2))
gi <- as.integer(sim$g)
sim$y <- round(2 + 0.8 * sim$x + 0.3 * sim$x2 + u[gi, 1] + u[gi, 2] * sim$x + rnorm(nrow(sim), sd = 0.6), 4)
sim$yw <- round(1 + 0.5 * sim$x + u[gi, 1] + rnorm(nrow(sim), sd = 0.8) / sqrt(sim$w), 4)
write.csv(sim, file.path(here, "bootmer_designs.csv"), row.names = FALSE)
sim <- read.csv(file.path(here, "bootmer_designs.csv"))
sim$g <- factor(sim$g)

read <- function(name) {
  d <- read.csv(file.path(data_dir, paste0(name, ".csv")))
  for (v in names(d)) if (is.character(d[[v]])) d[[v]] <- factor(d[[v]])
  d
}

# the statistic of lme4's confint.merMod(method = "boot"): sds and correlations (scaled by sigma), sigma, fixef
boot_names <- function(m) c(lme4:::tnames(m, old = FALSE, prefix = c("sd", "cor")), "sigma", names(fixef(m)))
boot_fun <- function(m) {
  nm <- boot_names(m)
  function(x) setNames(c(lme4:::Cv_to_Sv(x@theta, n = lengths(x@cnms), s = sigma(x)), fixef(x)), nm)
}

probs <- c(0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)
nsim <- 2000
cases <- list(
  list(name = "penicillin_crossed_reml", data = "penicillin", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)",
       reml = TRUE, seed = 1),
  list(name = "pastes_nested_ml", data = "pastes", formula = "strength ~ 1 + (1 | batch/cask)", reml = FALSE, seed = 2),
  list(name = "sim_correlated_reml", data = "sim", formula = "y ~ 1 + x + x2 + (1 + x | g)", reml = TRUE, seed = 3),
  list(name = "sim_weights_offset_ml", data = "sim", formula = "yw ~ 1 + x + (1 | g)", reml = FALSE, seed = 4,
       weights = "w", offset = "off"),
  list(name = "sleepstudy_reml", data = "sleepstudy", formula = "reaction ~ 1 + days + (1 + days | subj)",
       reml = TRUE, seed = 5)
)
# names only (no bootstrap): other spellings and term shapes
named <- list(
  list(name = "pastes_explicit", data = "pastes", formula = "strength ~ 1 + (1 | batch) + (1 | batch:cask)"),
  list(name = "sleepstudy_uncorrelated", data = "sleepstudy", formula = "reaction ~ 1 + days + (1 + days || subj)"),
  list(name = "sim_three_by_three", data = "sim", formula = "y ~ 1 + x + (1 + x + x2 | g)"),
  list(name = "sim_two_terms_one_factor", data = "sim", formula = "y ~ 1 + x + (1 | g) + (0 + x | g)")
)

fit <- function(cs, REML = TRUE) {
  d <- if (cs$data == "sim") sim else read(cs$data)
  args <- list(formula = as.formula(cs$formula), data = d, REML = REML)
  if (!is.null(cs$weights)) args$weights <- d[[cs$weights]]
  if (!is.null(cs$offset)) args$offset <- d[[cs$offset]]
  m <- do.call(lmer, args)
  m
}

out <- list(lme4 = as.character(packageVersion("lme4")), R = R.version.string, nsim = nsim, probs = probs,
            cases = list(), names = list())
for (cs in cases) {
  m <- fit(cs, cs$reml)
  set.seed(cs$seed)
  t <- system.time(b <- bootMer(m, boot_fun(m), nsim = nsim, use.u = FALSE, type = "parametric"))
  ok <- apply(b$t, 1, function(r) all(is.finite(r)))
  q <- apply(b$t[ok, , drop = FALSE], 2, quantile, probs = probs, type = 7)
  ci <- confint(b, type = "perc", level = 0.95)
  out$cases[[cs$name]] <- list(data = cs$data, formula = cs$formula, reml = cs$reml,
                               weights = if (is.null(cs$weights)) NULL else cs$weights,
                               offset = if (is.null(cs$offset)) NULL else cs$offset,
                               names = colnames(b$t), nfinite = sum(ok), quantiles = unname(split(q, col(q))),
                               perc_lower = unname(ci[, 1]), perc_upper = unname(ci[, 2]),
                               theta = unname(getME(m, "theta")), objective = unname(deviance(m, REML = cs$reml)),
                               elapsed_s = t[["elapsed"]])
  cat(cs$name, t[["elapsed"]], "s\n")
}
for (cs in c(cases, named)) {
  m <- fit(cs)
  out$names[[cs$name]] <- list(data = cs$data, formula = cs$formula, names = unname(boot_names(m)))
}
# the names of confint(oldNames = FALSE) itself on one model, so boot_names is checked against lme4's own output
m <- fit(cases[[2]])
set.seed(9)
ci <- suppressWarnings(suppressMessages(confint(m, method = "boot", nsim = 20, oldNames = FALSE)))
stopifnot(identical(rownames(ci), unname(boot_names(m))))
out$source <- "tests/reference/bootmer_designs.R"
writeLines(toJSON(out, auto_unbox = TRUE, digits = 10, pretty = TRUE, null = "null"), file.path(here, "bootmer_designs.json"))
