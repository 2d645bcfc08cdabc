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
# every Product 4 x Information 2 x Gender 2 row removed: X is rank deficient (a missing cell of the 3-way interaction)
ham_cell <- ham[!(ham$Product == "4" & ham$Information == "2" & ham$Gender == "2"),
                c("Consumer", "Product", "Information", "Gender", "Informed.liking")]
D$ham_missing_cell <- export("ham_missing_cell", ham_cell, c("Consumer", "Product", "Information", "Gender"))
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
  invisible(m)
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

fit_case("ham_missing_cell", "ham_missing_cell", ham_f, TRUE, profile = FALSE)
# singular (boundary) REML fits: a correlation at -1 (lambda's last diagonal entry 0) and a variance at 0
fit_case("oats_singular_slope", "Oats", "yield ~ nitro + Variety + (nitro|Block)", TRUE, profile = FALSE)
fit_case("tvbo_singular", "TVbo", "Coloursaturation ~ TVset*Picture + (1|Assessor) + (1|Assessor:Picture)", TRUE,
         profile = FALSE)

# cake as lme4 ships it (temperature an ordered factor: polynomial contrasts): its F tables, which do not depend on the
# contrasts, against the fit above on the exported (unordered, treatment-coded) data
m_ord <- lmerTest::lmer(angle ~ recipe*temperature + (1|recipe:replicate), data = lme4::cake, REML = TRUE,
                        control = tight)
cake_ordered <- list(anova1_satterthwaite = f_frame(anova(m_ord, type = 1)),
                     anova3_satterthwaite = f_frame(anova(m_ord, type = 3)),
                     anova3_kenward_roger = f_frame(anova(m_ord, type = 3, ddf = "Kenward-Roger")),
                     objective = unname(getME(m_ord, "devcomp")$cmp[["REML"]]))

# lmerTest's ranova (reduce.terms = TRUE) and drop1 (marginal F tests)
ranova_frame <- function(a) list(rows = rownames(a), npar = unname(a$npar), logLik = unname(a$logLik),
                                 AIC = unname(a$AIC), LRT = unname(a$LRT), Df = unname(a$Df),
                                 p = unname(a[["Pr(>Chisq)"]]))
ranovas <- list()
D$sleepstudy <- lme4::sleepstudy  # bundled with mixedjax: mj.dataset("sleepstudy", names = "lme4")
for (rc in list(list("ham", "ham", ham_f, TRUE), list("carrots", "carrots",
                  "Preference ~ sens1 + sens2 + Homesize + (1 + sens2 | Consumer) + (1 | Product)", TRUE),
                list("machines_slopes", "Machines", "score ~ Machine + (Machine|Worker)", TRUE),
                list("orthodont", "Orthodont", "distance ~ age*Sex + (age|Subject)", TRUE),
                list("orthodont_ml", "Orthodont", "distance ~ age*Sex + (age|Subject)", FALSE),
                list("oats", "Oats", "yield ~ nitro*Variety + (1|Block/Variety)", TRUE),
                list("ergostool", "ergoStool", "effort ~ Type + (1|Subject)", TRUE),
                list("sleepstudy_uncorrelated", "sleepstudy", "Reaction ~ Days + (Days || Subject)", TRUE),
                list("sleepstudy_slope", "sleepstudy", "Reaction ~ Days + (Days | Subject)", TRUE),
                list("machines_slopes_whole", "Machines", "score ~ Machine + (Machine|Worker)", TRUE, FALSE))) {
  m <- lmerTest::lmer(as.formula(rc[[3]]), data = D[[rc[[2]]]], REML = rc[[4]], control = tight)
  reduce <- if (length(rc) > 4) rc[[5]] else TRUE
  ranovas[[length(ranovas) + 1]] <- c(list(id = rc[[1]], data = rc[[2]], formula = rc[[3]], reml = rc[[4]],
                                           reduce_terms = reduce), ranova_frame(ranova(m, reduce.terms = reduce)))
}
drop1s <- list()
for (rc in list(list("orthodont", "Orthodont", "distance ~ age*Sex + (age|Subject)"),
                list("oxboys", "Oxboys", "height ~ age + I(age^2) + (age|Subject)"),
                list("carrots", "carrots", "Preference ~ sens1 + sens2 + Homesize + (1 + sens2 | Consumer) + (1 | Product)"))) {
  m <- lmerTest::lmer(as.formula(rc[[3]]), data = D[[rc[[2]]]], REML = TRUE, control = tight)
  drop1s[[length(drop1s) + 1]] <- c(list(id = rc[[1]], data = rc[[2]], formula = rc[[3]], reml = TRUE),
                                    satterthwaite = list(f_frame(drop1(m))),
                                    kenward_roger = list(f_frame(drop1(m, ddf = "Kenward-Roger"))))
}

# (Machine | Worker)'s correlations: lme4's profile-based confint is off for them (its spline through a coarse
# profile), so their interval ends are found here by root-finding an independent profile: lme4's own devfun2 (the
# ML deviance in sd, cor, sigma) minimised over the other parameters by Nelder-Mead then BFGS from three starts
mm <- lme4::lmer(score ~ Machine + (Machine|Worker), data = D$Machines, REML = FALSE, control = tight)
dd <- lme4:::devfun2(mm, useSc = TRUE, signames = FALSE)
opt <- attr(dd, "optimum")[1:7]
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
  sign(x - opt[j]) * sqrt(max(best - d0, 0))
}
zq <- qnorm(0.975)
cor_ends <- list()
first_crossing <- function(j, dir) {  # walk out from the estimate to the first bracket of |zeta| = zq
  a <- opt[[j]]
  repeat {
    b <- max(-0.995, min(0.995, a + dir * 0.05))
    if (dir * zeta_at(j, b) > zq || abs(b) >= 0.995) return(sort(c(a, b)))
    a <- b
  }
}
for (j in c(2, 3, 5)) {
  lo <- uniroot(function(x) zeta_at(j, x) + zq, first_crossing(j, -1), tol = 1e-6)$root
  hi <- uniroot(function(x) zeta_at(j, x) - zq, first_crossing(j, 1), tol = 1e-6)$root
  cor_ends[[names(opt)[j]]] <- c(lo, hi)
  cat("cor end", names(opt)[j], lo, hi, "\n")
}

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
                       datasets = datasets, cases = cases, lrt = lrts, cake_ordered = cake_ordered,
                       ranova = ranovas, drop1 = drop1s, machines_slopes_cor_ends = cor_ends),
                  digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
           "tests/reference/sweep_infer.json")
