# Reference for tests/test_group_names.py: lme4's names of nested grouping factors ((1 | a/b) -> "b:a", "a";
# a/b/c -> "c:(b:a)", ...) with the values lmer and glmer give under them (random effects of the first levels,
# standard deviations, conditional variances), so that mixedjax's lookups by lme4's names can be checked.
# Run from the repository root: Rscript tests/reference/make_group_names.R (writes group_names.json).
suppressMessages(library(lme4))
library(jsonlite)
here <- "tests/reference"
d <- read.csv(file.path(here, "lme4_names.csv"))  # the data of lme4_names.R
for (v in c("a", "b", "c", "h")) d[[v]] <- factor(d[[v]])
set.seed(11)
eta <- 0.5 + 0.4 * d$x + rnorm(4, 0, 0.6)[as.integer(d$a)] + rnorm(12, 0, 0.5)[as.integer(interaction(d$a, d$b))]
d$k <- rpois(nrow(d), exp(eta))
out <- list(lme4 = as.character(packageVersion("lme4")), k = d$k, cases = list())
one <- function(m, kind, f) {
  re <- ranef(m, condVar = TRUE)
  vc <- VarCorr(m)
  groups <- list()
  for (g in names(re)) {
    lv <- rownames(re[[g]])[1:3]
    groups[[g]] <- list(levels = lv, values = re[[g]][lv, 1], sd = attr(vc[[g]], "stddev")[[1]],
                        condvar = attr(re[[g]], "postVar")[1, 1, 1:3])
  }
  list(kind = kind, formula = f, names = names(re), groups = groups)
}
ctrl <- lmerControl(optCtrl = list(xtol_abs = 1e-10, ftol_abs = 1e-12))
for (f in c("y ~ 1 + (1 | a/b/c)", "y ~ x + (1 | h) + (1 | a/b)"))
  out$cases[[length(out$cases) + 1]] <- one(lmer(as.formula(f), d, REML = FALSE, control = ctrl), "lmm", f)
g <- glmer(k ~ x + (1 | a/b), d, poisson, control = glmerControl(tolPwrss = 1e-12, optCtrl = list(rhoend = 1e-10)))
out$cases[[length(out$cases) + 1]] <- one(g, "glmm", "k ~ x + (1 | a/b)")
out$source <- "tests/reference/make_group_names.R"
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE, digits = NA), file.path(here, "group_names.json"))
