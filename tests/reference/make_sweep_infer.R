# Inference parity on datasets the project had not used (session 10): lmerTest 3.1-3's Satterthwaite t and F tests,
# pbkrtest's Kenward-Roger, lme4's anova(m0, m1) and confint (profile, Wald). Each dataset is written as a CSV with
# text factor columns (write.csv, factors as their labels) into tests/reference/sweep_infer/, read back with
# read.csv(stringsAsFactors = TRUE) and fitted on what was read (so R and mixedjax see the same level order), and
# the results go to tests/reference/sweep_infer.json at full precision.
#   Rscript tests/reference/make_sweep_infer.R   (from the repository root)
suppressMessages({library(lme4); library(lmerTest); library(pbkrtest); library(jsonlite); library(nlme)})
out_dir <- "tests/reference/sweep_infer"
dir.create(out_dir, showWarnings = FALSE)

datasets <- list()
export <- function(name, df, factors) {
  for (f in factors) df[[f]] <- as.character(df[[f]])
  path <- file.path(out_dir, paste0(name, ".csv"))
  write.csv(df, path, row.names = FALSE)
  back <- read.csv(path, colClasses = setNames(rep("character", length(factors)), factors))
  for (f in factors) back[[f]] <- factor(back[[f]])
  datasets[[name]] <<- list(file = paste0(name, ".csv"), factors = factors, nrow = nrow(back))
  back
}
drop10 <- function(df, seed) { set.seed(seed); df[sort(sample(nrow(df), round(0.9 * nrow(df)))), ] }

data("ham", package = "lmerTest"); data("carrots", package = "lmerTest"); data("TVbo", package = "lmerTest")
D <- list()
D$ham <- export("ham", ham[, c("Consumer", "Product", "Information", "Gender", "Informed.liking")],
                c("Consumer", "Product", "Information", "Gender"))
D$ham_unbalanced <- export("ham_unbalanced", drop10(ham[, c("Consumer", "Product", "Information", "Gender",
                                                             "Informed.liking")], 10),
                           c("Consumer", "Product", "Information", "Gender"))
D$carrots <- export("carrots", carrots[, c("Consumer", "Product", "Homesize", "sens1", "sens2", "Preference")],
                    c("Consumer", "Product", "Homesize"))
D$TVbo <- export("TVbo", TVbo[, c("Assessor", "TVset", "Picture", "Coloursaturation")],
                 c("Assessor", "TVset", "Picture"))
D$Machines <- export("Machines", as.data.frame(Machines), c("Worker", "Machine"))
D$Machines_unbalanced <- export("Machines_unbalanced", drop10(as.data.frame(Machines), 11), c("Worker", "Machine"))
D$Orthodont <- export("Orthodont", as.data.frame(Orthodont), c("Subject", "Sex"))
D$Oats <- export("Oats", as.data.frame(Oats), c("Block", "Variety"))
D$ergoStool <- export("ergoStool", as.data.frame(ergoStool), c("Subject", "Type"))
D$Oxboys <- export("Oxboys", as.data.frame(Oxboys)[, c("Subject", "age", "height")], c("Subject"))
cake_df <- as.data.frame(lme4::cake)[, c("replicate", "recipe", "temperature", "angle")]
D$cake <- export("cake", cake_df, c("replicate", "recipe", "temperature"))

tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-10))
coef_frame <- function(ct) list(names = rownames(ct), estimate = unname(ct[, "Estimate"]),
                                se = unname(ct[, "Std. Error"]), df = unname(ct[, "df"]),
                                t = unname(ct[, "t value"]), p = unname(ct[, "Pr(>|t|)"]))
f_frame <- function(a) list(terms = rownames(a), sumsq = unname(a[["Sum Sq"]]), meansq = unname(a[["Mean Sq"]]),
                            numdf = unname(a[["NumDF"]]), dendf = unname(a[["DenDF"]]), F = unname(a[["F value"]]),
                            p = unname(a[["Pr(>F)"]]))
ci_frame <- function(ci) list(names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))

cases <- list()
fit_case <- function(id, data, formula, reml, profile = TRUE, contrast = NULL) {
  m <- lmerTest::lmer(as.formula(formula), data = D[[data]], REML = reml, control = tight)
  r <- list(id = id, data = data, formula = formula, reml = reml, singular = isSingular(m),
            objective = if (reml) unname(getME(m, "devcomp")$cmp[["REML"]]) else unname(deviance(m)),
            loglik = as.numeric(logLik(m)), theta = unname(getME(m, "theta")), sigma = sigma(m),
            beta = unname(fixef(m)), beta_names = names(fixef(m)),
            satterthwaite = coef_frame(coef(summary(m, ddf = "Satterthwaite"))),
            anova1_satterthwaite = f_frame(anova(m, type = 1, ddf = "Satterthwaite")),
            anova3_satterthwaite = f_frame(anova(m, type = 3, ddf = "Satterthwaite")),
            wald = ci_frame(confint(m, method = "Wald", oldNames = FALSE, parm = "beta_")))
  if (reml) {
    r$kenward_roger <- coef_frame(coef(summary(m, ddf = "Kenward-Roger")))
    r$anova1_kenward_roger <- f_frame(anova(m, type = 1, ddf = "Kenward-Roger"))
    r$anova3_kenward_roger <- f_frame(anova(m, type = 3, ddf = "Kenward-Roger"))
  }
  if (!is.null(contrast)) {
    L <- matrix(contrast, ncol = length(fixef(m)), byrow = TRUE)
    r$contrast <- list(L = contrast, nrow = nrow(L),
                       satterthwaite = f_frame(contest(m, L, ddf = "Satterthwaite")),
                       satterthwaite_rows = coef_frame(contest(m, L, joint = FALSE, ddf = "Satterthwaite")))
    if (reml) r$contrast$kenward_roger <- f_frame(contest(m, L, ddf = "Kenward-Roger"))
  }
  if (profile) {
    ci <- tryCatch(confint(m, method = "profile", oldNames = FALSE), error = function(e) NULL)
    if (!is.null(ci)) r$profile <- ci_frame(ci)
  }
  cases[[length(cases) + 1]] <<- r
  cat(id, "singular:", isSingular(m), "obj:", r$objective, "\n")
  m
}

lrts <- list()
lrt_case <- function(id, data, formulas, reml = TRUE, refit = TRUE) {
  ms <- lapply(formulas, function(f) lme4::lmer(as.formula(f), data = D[[data]], REML = reml, control = tight))
  a <- do.call(anova, c(ms, list(refit = refit)))
  lrts[[length(lrts) + 1]] <<- list(
    id = id, data = data, formulas = formulas, reml = reml, refit = refit,
    npar = unname(a$npar), AIC = unname(a$AIC), BIC = unname(a$BIC), logLik = unname(a$logLik),
    deviance = unname(a$deviance), Chisq = unname(a$Chisq), Df = unname(a$Df), p = unname(a[["Pr(>Chisq)"]]))
  cat("lrt", id, "\n")
}

ham_f <- "Informed.liking ~ Product*Information*Gender + (1|Consumer) + (1|Product:Consumer)"
fit_case("ham", "ham", ham_f, TRUE, profile = FALSE,
         contrast = c(0, 1, -1, rep(0, 13), 0, 0, 1, -1, rep(0, 12)))
fit_case("ham_ml", "ham", ham_f, FALSE, profile = FALSE)
fit_case("ham_unbalanced", "ham_unbalanced", ham_f, TRUE, profile = FALSE)
fit_case("carrots", "carrots", "Preference ~ sens1 + sens2 + Homesize + (1 + sens2 | Consumer) + (1 | Product)",
         TRUE, profile = FALSE, contrast = c(0, 1, 1, 0, 0, 1, -1, 0))
fit_case("TVbo", "TVbo", "Coloursaturation ~ TVset*Picture + (1|Assessor) + (1|Assessor:TVset)", TRUE)
fit_case("machines", "Machines", "score ~ Machine + (1|Worker) + (1|Worker:Machine)", TRUE)
fit_case("machines_ml", "Machines", "score ~ Machine + (1|Worker) + (1|Worker:Machine)", FALSE)
fit_case("machines_slopes", "Machines", "score ~ Machine + (Machine|Worker)", TRUE)
fit_case("machines_unbalanced", "Machines_unbalanced", "score ~ Machine + (1|Worker) + (1|Worker:Machine)", TRUE)
fit_case("orthodont", "Orthodont", "distance ~ age*Sex + (age|Subject)", TRUE)
fit_case("orthodont_ml", "Orthodont", "distance ~ age*Sex + (age|Subject)", FALSE)
fit_case("oats", "Oats", "yield ~ nitro*Variety + (1|Block/Variety)", TRUE)
fit_case("ergostool", "ergoStool", "effort ~ Type + (1|Subject)", TRUE)
fit_case("oxboys", "Oxboys", "height ~ age + I(age^2) + (age|Subject)", TRUE)
fit_case("cake", "cake", "angle ~ recipe*temperature + (1|recipe:replicate)", TRUE, profile = FALSE)

lrt_case("ham_fixed", "ham", c("Informed.liking ~ Product + Information + Gender + (1|Consumer) + (1|Product:Consumer)",
                               ham_f))
lrt_case("machines_random", "Machines", c("score ~ Machine + (1|Worker)",
                                         "score ~ Machine + (1|Worker) + (1|Worker:Machine)",
                                         "score ~ Machine + (Machine|Worker)"))
lrt_case("machines_random_reml", "Machines", c("score ~ Machine + (1|Worker)",
                                              "score ~ Machine + (1|Worker) + (1|Worker:Machine)"), refit = FALSE)
lrt_case("orthodont_fixed", "Orthodont", c("distance ~ age + Sex + (age|Subject)", "distance ~ age*Sex + (age|Subject)"))
lrt_case("oxboys_quadratic", "Oxboys", c("height ~ age + (age|Subject)", "height ~ age + I(age^2) + (age|Subject)"))
lrt_case("oats_fixed_ml", "Oats", c("yield ~ nitro + Variety + (1|Block/Variety)",
                                    "yield ~ nitro*Variety + (1|Block/Variety)"), reml = FALSE)

writeLines(toJSON(list(lme4 = as.character(packageVersion("lme4")),
                       lmerTest = as.character(packageVersion("lmerTest")),
                       pbkrtest = as.character(packageVersion("pbkrtest")),
                       control = "lmerControl(optimizer = 'bobyqa', optCtrl = list(maxfun = 1e5, rhoend = 1e-10))",
                       datasets = datasets, cases = cases, lrt = lrts),
                  digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
           "tests/reference/sweep_infer.json")
