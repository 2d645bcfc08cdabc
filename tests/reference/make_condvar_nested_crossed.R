# lme4's ranef(condVar = TRUE) postVar for a model with nested structured terms and a crossed term (mixedjax puts
# a:b and a in structured block rows and c in the dense block). Writes condvar_nested_crossed.json.
#   Rscript tests/reference/make_condvar_nested_crossed.R   (from the repository root)
suppressMessages({library(lme4); library(jsonlite)})
df <- read.csv("tests/reference/nested_plus_crossed.csv")
for (f in c("a", "b", "c")) df[[f]] <- factor(df[[f]])
out <- list(lme4 = as.character(packageVersion("lme4")), formula = "y ~ 1 + x + (1 | a/b) + (1 | c)", fits = list())
for (reml in c(FALSE, TRUE)) {
  m <- lmer(y ~ 1 + x + (1 | a/b) + (1 | c), data = df, REML = reml,
            control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-10)))
  re <- ranef(m, condVar = TRUE)
  groups <- lapply(names(re), function(g) {
    pv <- attr(re[[g]], "postVar")  # s × s × levels
    list(group = g, levels = rownames(re[[g]]), postvar = as.vector(aperm(pv, c(3, 1, 2))))
  })
  th <- getME(m, "theta")
  out$fits[[length(out$fits) + 1]] <- list(reml = reml, theta = as.list(th), theta_names = names(th),
                                            sigma = sigma(m), groups = groups)
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/condvar_nested_crossed.json")
