# Reference for tests/test_lmm_sweep10.py: lme4 1.1-31 lmer fits (REML and ML) on datasets of lmerTest, lme4, nlme and
# mlmRev that the other references do not use. Each dataset is exported to tests/reference/lmm_sweep10/<name>.csv
# (factors as their labels) and read back with read.csv, so R fits exactly the data the tests read; columns listed in
# `factors` (factors whose labels are numbers) are made factors again after reading, as the tests do in pandas.
# Fits are refitted with bobyqa and a large maxfun, and the better of the two objectives kept (lme4's default
# stops early on some of these). Run from the repository root: Rscript tests/reference/make_sweep-lmm.R
suppressMessages({library(lme4); library(nlme); library(mlmRev); library(jsonlite)})
here <- "tests/reference"
dir <- file.path(here, "lmm_sweep10")
dir.create(dir, showWarnings = FALSE)
pkgdata <- function(pkg, nm) { e <- new.env(); data(list = nm, package = pkg, envir = e); as.data.frame(e[[nm]]) }
lt <- function(nm) pkgdata("lmerTest", nm)

data <- list()
data$ham <- lt("ham")[, c("Consumer", "Product", "Informed.liking", "Information", "Gender")]
data$carrots <- lt("carrots")[, c("Consumer", "Homesize", "Preference", "sens1", "sens2", "Product")]
data$TVbo <- lt("TVbo")[, c("Assessor", "TVset", "Repeat", "Picture", "Coloursaturation")]
data$cake <- pkgdata("lme4", "cake")
data$Machines <- pkgdata("nlme", "Machines")
data$Orthodont <- pkgdata("nlme", "Orthodont")
data$Orthodont$w <- data$Orthodont$age / 10          # a positive weights column
data$Oxboys <- pkgdata("nlme", "Oxboys")
data$Rail <- pkgdata("nlme", "Rail")
data$ergoStool <- pkgdata("nlme", "ergoStool")
data$Oats <- pkgdata("nlme", "Oats")
data$BodyWeight <- pkgdata("nlme", "BodyWeight")
data$Pixel <- pkgdata("nlme", "Pixel")
ma <- pkgdata("nlme", "MathAchieve"); ms <- pkgdata("nlme", "MathAchSchool")
ma$School <- as.character(ma$School); ms$School <- as.character(ms$School)
ma <- merge(ma[, c("School", "SES", "MathAch")], ms[, c("School", "Sector")], by = "School", sort = FALSE)
keep <- sort(unique(ma$School))[1:60]                 # 60 of 160 schools keeps the CSV small
data$MathAch <- ma[ma$School %in% keep, ]
data$Exam <- Exam[, c("school", "normexam", "schgend", "standLRT", "sex")]
data$ScotsSec <- ScotsSec[, c("attain", "verbal", "sex", "primary", "second")]
data$Arabidopsis <- pkgdata("lme4", "Arabidopsis")
data$Oxboys$w <- 1 + (as.integer(data$Oxboys$Occasion) %% 3) / 2   # positive weights
for (nm in names(data)) write.csv(data[[nm]], file.path(dir, paste0(nm, ".csv")), row.names = FALSE)

# columns whose labels are numbers: factors in R, read back as integers
factors <- list(ham = c("Product", "Information", "Gender"), carrots = c("Homesize"), TVbo = c("Repeat", "Picture"),
                BodyWeight = c("Diet"), Arabidopsis = c("nutrient", "rack"))
read <- function(nm) {
  d <- read.csv(file.path(dir, paste0(nm, ".csv")), stringsAsFactors = TRUE)
  for (v in factors[[nm]]) d[[v]] <- factor(d[[v]])
  d
}

# id, data, formula, then the grouping factor of a re.form=~(1|g) prediction, a new level of it, and weights
cases <- list(
  list("ham", "ham", "Informed.liking ~ Product*Information*Gender + (1|Consumer) + (1|Product:Consumer)", "Consumer"),
  list("ham_ci", "ham", "Informed.liking ~ Product*Information + (1|Consumer) + (1|Consumer:Information)", "Consumer"),
  list("carrots", "carrots", "Preference ~ sens2 + Homesize + (1 + sens2 | Consumer) + (1|Product)", "Product"),
  list("TVbo", "TVbo", "Coloursaturation ~ TVset*Picture + (1|Assessor) + (1|Assessor:TVset)", "Assessor"),
  list("cake", "cake", "angle ~ recipe*temperature + (1|recipe:replicate)", NULL),
  list("cake_temp", "cake", "angle ~ recipe + temp + (1|recipe:replicate)", NULL),
  list("cake_scale", "cake", "angle ~ recipe + scale(temp) + (1|recipe:replicate)", NULL),
  list("Machines", "Machines", "score ~ Machine + (1|Worker) + (1|Worker:Machine)", "Worker"),
  list("Machines_nest", "Machines", "score ~ Machine + (1|Worker/Machine)", "Worker"),
  list("Machines_slope", "Machines", "score ~ Machine + (Machine|Worker)", NULL),
  list("Machines_0", "Machines", "score ~ 0 + Machine + (1|Worker)", NULL),
  list("Orthodont", "Orthodont", "distance ~ age*Sex + (age|Subject)", NULL),
  list("Orthodont_w", "Orthodont", "distance ~ age*Sex + (age|Subject)", NULL, "w"),
  list("Orthodont_m1", "Orthodont", "distance ~ Sex + age:Sex - 1 + (1|Subject)", NULL),
  list("Oxboys", "Oxboys", "height ~ age + I(age^2) + (age|Subject)", NULL),
  list("Oxboys_poly", "Oxboys", "height ~ poly(age, 2) + (age||Subject)", NULL),
  list("Oxboys_occ", "Oxboys", "height ~ age + factor(Occasion) + (1|Subject)", NULL),
  list("Rail", "Rail", "travel ~ 1 + (1|Rail)", NULL),
  list("ergoStool", "ergoStool", "effort ~ Type + (1|Subject)", NULL),
  list("Oats", "Oats", "yield ~ nitro*Variety + (1|Block/Variety)", "Block"),
  list("BodyWeight", "BodyWeight", "weight ~ Time*Diet + (Time|Rat)", NULL),
  list("BodyWeight_off", "BodyWeight", "log(weight) ~ Diet + offset(log(Time + 1)) + (1|Rat)", NULL),
  list("Pixel", "Pixel", "pixel ~ day + I(day^2) + (day|Dog) + (1|Dog:Side)", "Dog"),
  list("MathAch", "MathAch", "MathAch ~ SES*Sector + (SES|School)", NULL),
  list("Exam", "Exam", "normexam ~ standLRT + sex + schgend + (standLRT|school)", NULL),
  list("ScotsSec", "ScotsSec", "attain ~ verbal*sex + (1|primary) + (1|second)", "second"),
  list("Exam_off", "Exam", "normexam ~ sex + schgend + offset(0.6 * standLRT) + (1|school)", NULL),
  list("Oxboys_w", "Oxboys", "height ~ age + I(age^2) + (age|Subject)", NULL, "w"),
  list("Arabidopsis", "Arabidopsis",
       "log(total.fruits + 1) ~ nutrient*amd + rack + status + (1|reg) + (1|popu) + (1|gen)", "popu")
)

opt <- lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5), calc.derivs = FALSE,
                   check.conv.singular = "ignore")
num <- function(x) I(unname(as.numeric(x)))          # I(): a vector stays a JSON array
crit <- function(m) if (isREML(m)) REMLcrit(m) else deviance(m)
out <- list(lme4 = as.character(packageVersion("lme4")), source = "tests/reference/make_sweep-lmm.R", cases = list())
for (cs in cases) {
  id <- cs[[1]]; d <- read(cs[[2]]); f <- as.formula(cs[[3]]); g1 <- cs[[4]]
  prior_wts <- if (length(cs) >= 5) d[[cs[[5]]]] else NULL  # (lmer looks `weights` up in the data first: no column name)
  for (reml in c(TRUE, FALSE)) {
    m0 <- suppressWarnings(suppressMessages(lmer(f, d, REML = reml, weights = prior_wts)))
    m1 <- suppressWarnings(suppressMessages(lmer(f, d, REML = reml, weights = prior_wts, control = opt)))
    m <- if (crit(m1) < crit(m0)) m1 else m0
    n <- nobs(m); rows <- seq_len(min(n, 50))             # per-row values of the first 50 rows only
    vc <- as.data.frame(VarCorr(m))
    re <- ranef(m, condVar = TRUE)
    ranefs <- lapply(names(re), function(g) {
      r <- re[[g]]; pv <- attr(r, "postVar")
      if (!is.list(pv)) pv <- list(pv)                   # several terms on one factor: one array per term
      sd <- do.call(cbind, lapply(pv, function(a) sapply(seq_len(dim(a)[1]), function(j) sqrt(a[j, j, ]))))
      list(group = g, levels = I(rownames(r)), columns = I(colnames(r)), values = unname(as.matrix(r)),
           condsd = unname(matrix(sd, nrow = nrow(r))))
    })
    # new data: the first 8 rows as they are, then the same rows with every grouping factor at a new level
    nd <- d[1:8, ]
    nd2 <- nd
    # (a grouping column that is also a fixed-effects factor keeps its value: its combinations are new anyway)
    newcols <- setdiff(unique(unlist(lapply(findbars(f), function(b) all.vars(b[[3]])))), all.vars(nobars(f)))
    for (g in newcols) {
      nd2[[g]] <- if (is.numeric(nd2[[g]])) 99999L else factor("NEW")
    }
    pr <- list(all = num(predict(m, nd)), population = num(predict(m, nd, re.form = NA)),
               new_levels = num(predict(m, nd2, allow.new.levels = TRUE)))
    if (!is.null(g1)) pr$one <- num(predict(m, nd, re.form = as.formula(paste0("~(1|", g1, ")"))))
    cnms <- getME(m, "cnms")
    th <- getME(m, "theta")
    # the profiled objective's Hessian in θ by lme4's finite differences (deriv12) at the optimum, small models only
    hess <- if (length(th) <= 4) {
      dfun <- suppressWarnings(suppressMessages(lmer(f, d, REML = reml, weights = prior_wts, devFunOnly = TRUE)))
      unname(lme4:::deriv12(dfun, th)$Hessian)
    } else NULL
    out$cases[[length(out$cases) + 1]] <- list(
      id = id, data = cs[[2]], formula = cs[[3]], reml = reml, weights = if (length(cs) >= 5) cs[[5]] else NULL,
      factors = if (is.null(factors[[cs[[2]]]])) I(character(0)) else I(factors[[cs[[2]]]]), re_form_one = g1,
      optimizer = if (identical(m, m1)) "bobyqa maxfun=1e5" else "default",
      nobs = n, objective = crit(m), loglik = num(logLik(m)), aic = AIC(m), bic = BIC(m),
      theta = num(getME(m, "theta")), theta_names = I(names(th)),
      theta_groups = I(rep(names(cnms), lengths(cnms) * (lengths(cnms) + 1) / 2)), hessian = hess,
      beta_names = I(names(fixef(m))), beta = num(fixef(m)), se = num(sqrt(diag(as.matrix(vcov(m))))),
      sigma = sigma(m),
      varcorr = list(grp = I(vc$grp), var1 = I(ifelse(is.na(vc$var1), "", vc$var1)), var2 = I(ifelse(is.na(vc$var2), "", vc$var2)),
                     vcov = num(vc$vcov), sdcor = num(vc$sdcor)),
      ranef = ranefs, ngroups = as.list(ngrps(m)),
      rows = length(rows), fitted = num(fitted(m))[rows], residuals = num(residuals(m))[rows],
      pearson = num(residuals(m, type = "pearson"))[rows],
      hat = num(hatvalues(m))[rows], cooks = num(cooks.distance(m))[rows],
      predict = pr, newdata_rows = 8L, new_level_columns = I(newcols))
  }
}
# missing values: a grouping id, a factor and the response (rows 3, 20; 7; 30): lme4 drops those rows
mm <- read("Machines")
mm$Worker[c(3, 20)] <- NA; mm$Machine[7] <- NA; mm$score[30] <- NA
m <- lmer(score ~ Machine + (1 | Worker) + (1 | Worker:Machine), mm, REML = FALSE, control = opt)
out$machines_missing <- list(nobs = nobs(m), objective = crit(m), rows = I(as.integer(names(fitted(m)))),
                             fitted = num(fitted(m)), worker_levels = I(rownames(ranef(m)$Worker)),
                             worker = num(ranef(m)$Worker[, 1]))
# lme4's name of the inner term of (1 | Block/Variety) in re.form
oats <- read("Oats")
m <- lmer(yield ~ nitro * Variety + (1 | Block/Variety), oats, REML = TRUE, control = opt)
out$oats_inner <- num(predict(m, oats[1:8, ], re.form = ~(1 | Variety:Block)))
# cake as R has it: temperature an ordered factor (polynomial contrasts); quantities invariant to the coding
cake <- pkgdata("lme4", "cake")
for (reml in c(TRUE, FALSE)) {
  m <- lmer(angle ~ recipe * temperature + (1 | recipe:replicate), cake, REML = reml)
  out$ordered_cake[[if (reml) "REML" else "ML"]] <- list(objective = crit(m),
    theta = num(getME(m, "theta")), sigma = sigma(m), fitted = num(fitted(m)),
    beta_names = I(names(fixef(m))), beta = num(fixef(m)), se = num(sqrt(diag(as.matrix(vcov(m))))))
}
# more codings of an ordered factor: no intercept (indicators), in an interaction without its main effect, ML
for (f in c("angle ~ 0 + temperature + recipe + (1 | recipe:replicate)",
            "angle ~ recipe + recipe:temperature + (1 | recipe:replicate)",
            "angle ~ temperature + (1 | replicate)")) {
  m <- lmer(as.formula(f), cake, REML = FALSE)
  out$ordered_more[[f]] <- list(objective = crit(m), beta_names = I(names(fixef(m))), beta = num(fixef(m)),
                                se = num(sqrt(diag(as.matrix(vcov(m))))))
}
# lmerTest's type III and type I tables with an ordered factor (they do not depend on the contrasts)
oats$nitro_o <- ordered(oats$nitro)
for (a in list(list("cake", "angle ~ recipe * temperature + (1 | recipe:replicate)", cake),
               list("cake_unbalanced", "angle ~ recipe * temperature + (1 | recipe:replicate)",
                    cake[-c(5, 17, 40, 101, 150, 202, 233, 260), ]),  # the tests drop the same rows
               list("oats", "yield ~ nitro_o * Variety + (1 | Block/Variety)", oats))) {
  m <- lmerTest::lmer(as.formula(a[[2]]), a[[3]], REML = TRUE)
  for (type in c(1, 3)) {
    tab <- anova(m, type = type)
    out$ordered_anova[[paste(a[[1]], type)]] <- list(formula = a[[2]], terms = I(rownames(tab)),
      NumDF = num(tab$NumDF), DenDF = num(tab$DenDF), F = num(tab[["F value"]]), p = num(tab[["Pr(>F)"]]))
  }
}
# an ordered factor whose levels are not in sorted order (low < mid < high), and one in a random-effects term
oats$lev <- ordered(c("low", "mid", "high")[(seq_len(72) %% 3) + 1], levels = c("low", "mid", "high"))
m <- lmer(yield ~ nitro + lev + (1 | Block), oats, REML = FALSE)
out$ordered_levels <- list(objective = crit(m), beta_names = I(names(fixef(m))), beta = num(fixef(m)),
                           se = num(sqrt(diag(as.matrix(vcov(m))))))
m <- lmer(yield ~ nitro_o + (1 | Block) + (0 + nitro_o | Variety), oats, REML = FALSE, control = opt)
out$ordered_random <- list(objective = crit(m), beta_names = I(names(fixef(m))), beta = num(fixef(m)),
                           se = num(sqrt(diag(as.matrix(vcov(m))))), ranef_columns = I(colnames(ranef(m)$Variety)))
# splines::ns and splines::bs: the bases on BodyWeight's Time, at new values inside and outside the boundary knots
# (predict.ns and predict.bs), and lmer fits with them
bw <- read("BodyWeight")
x <- bw$Time
new <- c(-5, 0, 1, 30.5, 64, 70)
out$splines <- list(new = I(new), bases = list(
  `ns(Time, 3)` = list(fit = unname(splines::ns(x, 3)), new = unname(predict(splines::ns(x, 3), new))),
  `ns(Time)` = list(fit = unname(splines::ns(x)), new = unname(predict(splines::ns(x), new))),
  `ns(Time, knots = c(20, 40))` = list(fit = unname(splines::ns(x, knots = c(20, 40))),
                                       new = unname(predict(splines::ns(x, knots = c(20, 40)), new))),
  `ns(Time, df = 4, intercept = TRUE)` = list(fit = unname(splines::ns(x, df = 4, intercept = TRUE)),
                                              new = unname(predict(splines::ns(x, df = 4, intercept = TRUE), new))),
  `bs(Time, 4)` = list(fit = unname(splines::bs(x, 4)), new = unname(suppressWarnings(predict(splines::bs(x, 4), new)))),
  `bs(Time)` = list(fit = unname(splines::bs(x)), new = unname(suppressWarnings(predict(splines::bs(x), new)))),
  `bs(Time, df = 5, degree = 2)` = list(fit = unname(splines::bs(x, df = 5, degree = 2)),
                                        new = unname(suppressWarnings(predict(splines::bs(x, df = 5, degree = 2), new))))))
library(splines)
for (f in c("weight ~ ns(Time, 3) + Diet + (1 | Rat)", "weight ~ bs(Time, df = 5) + (Time | Rat)")) {
  m <- lmer(as.formula(f), bw, REML = FALSE, control = opt)
  nd <- data.frame(Time = new, Diet = factor(1, levels = 1:3), Rat = 1)
  out$splines$fits[[f]] <- list(objective = crit(m), beta_names = I(names(fixef(m))), beta = num(fixef(m)),
                                predict = num(suppressWarnings(predict(m, nd))))
}
out$contr_poly <- lapply(2:7, function(k) unname(contr.poly(k)))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = FALSE, null = "null"), file.path(here, "lmm_sweep10.json"))
