# pbkrtest's Kenward-Roger at boundary (singular) REML fits, where mixedjax refused it: an uncorrelated random slope whose
# variance is estimated at zero, a correlation estimated at +1 (both simulated here, seeds below, data written beside this
# script) and dyestuff2's zero batch variance. Writes kr_boundary.json (and kr_boundary_*.csv).
#   Rscript tests/reference/make_kr_boundary.R   (from the repository root)
suppressMessages({library(lme4); library(lmerTest); library(pbkrtest); library(jsonlite)})
simulate <- function(seed, slope_sd, slope_of_intercept) {
  set.seed(seed)
  g <- factor(sprintf("g%02d", rep(1:12, each = 10)))
  x <- rep(seq(-1, 1, length.out = 10), 12) + rnorm(120, sd = 0.1)
  b0 <- rnorm(12, sd = 2)
  b1 <- slope_of_intercept * b0 + rnorm(12, sd = slope_sd)
  data.frame(y = 5 + 0.5 * x + b0[g] + b1[g] * x + rnorm(120), x = x, g = g)
}
cases <- list()
add <- function(id, formula, df, file) {
  m <- lme4::lmer(as.formula(formula), data = df, REML = TRUE,
                  control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-10)))
  mt <- as_lmerModLmerTest(m)
  ct <- coef(summary(mt, ddf = "Kenward-Roger"))
  V <- as.matrix(vcovAdj(m))
  if (!is.null(file)) write.csv(df, file.path("tests/reference", file), row.names = FALSE)
  cases[[length(cases) + 1]] <<- list(
    id = id, formula = formula, data = file, singular = isSingular(m), theta = unname(getME(m, "theta")),
    theta_names = names(getME(m, "theta")), sigma = sigma(m), fixef = unname(fixef(m)),
    coef_names = rownames(ct), kr_se = unname(ct[, "Std. Error"]), kr_df = unname(ct[, "df"]),
    vcov_adj = as.vector(V), vcov = as.vector(as.matrix(vcov(m))))
  cat(id, "singular:", isSingular(m), "theta:", getME(m, "theta"), "\n")
}
for (seed in 1:40) {  # the first seed whose fit puts the slope's variance at zero
  df <- simulate(seed, 0, 0)
  m <- lme4::lmer(y ~ 1 + x + (1 + x || g), data = df, REML = TRUE)
  if (isSingular(m) && getME(m, "theta")[2] < 1e-6) break
}
cat("zero slope variance: seed", seed, "\n")
add("zero_slope_variance", "y ~ 1 + x + (1 + x || g)", df, "kr_boundary_zero_slope.csv")
for (seed in 1:40) {  # the first seed whose fit puts the correlation at +1 (λ's second diagonal entry zero)
  df <- simulate(seed, 0, 0.6)
  m <- lme4::lmer(y ~ 1 + x + (1 + x | g), data = df, REML = TRUE)
  if (isSingular(m) && getME(m, "theta")[3] < 1e-6 && getME(m, "theta")[2] > 1e-3) break
}
cat("correlation +1: seed", seed, "\n")
add("correlation_one", "y ~ 1 + x + (1 + x | g)", df, "kr_boundary_correlation_one.csv")
d2 <- read.csv("mixedjax/datasets/data/dyestuff2.csv"); d2$batch <- factor(d2$batch)
add("dyestuff2", "yield ~ 1 + (1 | batch)", d2, NULL)
writeLines(toJSON(list(lme4 = as.character(packageVersion("lme4")), pbkrtest = as.character(packageVersion("pbkrtest")),
                       cases = cases), digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/kr_boundary.json")
