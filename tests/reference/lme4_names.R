# Reference for tests/test_bootstrap_designs.py: the names and order of lme4's confint(oldNames = FALSE) rows on
# nests, interactions and term orders (lme4's findbars expansion and mkReTrms' reordering). Names need no bootstrap.
# Run: Rscript tests/reference/lme4_names.R (writes lme4_names.json and lme4_names.csv next to it).
suppressMessages(library(lme4))
library(jsonlite)
here <- "tests/reference"
set.seed(7)
d <- data.frame(a = factor(rep(1:4, each = 24)), b = factor(rep(rep(1:3, each = 8), 4)),
                c = factor(rep(rep(1:2, each = 4), 12)), h = factor(rep(1:6, 16)), x = round(rnorm(96), 3))
d$y <- round(rnorm(96) + as.integer(d$a) * 0.5 + rnorm(12)[as.integer(interaction(d$a, d$b))] +
             rnorm(6)[as.integer(d$h)] * (1 + d$x), 3)
write.csv(d, file.path(here, "lme4_names.csv"), row.names = FALSE)
d <- read.csv(file.path(here, "lme4_names.csv"))
for (v in c("a", "b", "c", "h")) d[[v]] <- factor(d[[v]])
formulas <- c("y ~ 1 + (1 | a/b/c)", "y ~ 1 + (1 | a/b:c)", "y ~ 1 + (1 | b:a)", "y ~ 1 + (1 | c) + (1 | a/b)",
              "y ~ 1 + (1 | b) + (1 | a) + (1 | c)", "y ~ 1 + (1 | c) + (1 | a)", "y ~ x + (1 | a) + (1 + x | h)",
              "y ~ x + (1 + x | h) + (1 | a:b)", "y ~ x + (1 + x || a/b)", "y ~ x + (0 + x | a) + (1 | a)",
              "y ~ x + (1 | h) + (1 | b)")
out <- list(lme4 = as.character(packageVersion("lme4")), names = list())
for (f in formulas) {
  m <- suppressWarnings(suppressMessages(lmer(as.formula(f), d)))
  out$names[[f]] <- unname(c(lme4:::tnames(m, old = FALSE, prefix = c("sd", "cor")), "sigma", names(fixef(m))))
}
out$source <- "tests/reference/lme4_names.R"
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE), file.path(here, "lme4_names.json"))
