"""mj.glmm against lme4's glmer on data sets from R packages the project had not used (session 10's sweep):
mlmRev's Contraception (Laplace, nAGQ = 9, nAGQ = 0, a correlated (urban | district) term), lme4's Arabidopsis
(three crossed Poisson terms; (1 | gen) by Laplace and nAGQ = 7), cbpp with the probit and cloglog links, with
proportions and weights= and nAGQ = 5, VerbAgg's first 200 ids (crossed, logit and probit), grouseticks with
factor(YEAR) and scale(HEIGHT), MASS's bacteria (a factor response, I(week > 2); Laplace and nAGQ = 9), epil
(Poisson, an offset(...) term, an observation-level term), mlmRev's Mmmec ((1 | nation/region), an offset) and
guImmun (mothers in communities, 2,159 Bernoulli rows; lme4's default fit stops 0.045 short and warns max|grad|
0.61), and Insurance (offset(log(Holders)); Laplace and nAGQ = 9);
Insurance with its ordered factors as pandas ordered Categoricals (R's contr.poly: Age.L, Age.Q, Age.C; before the
fix mixedjax coded them by treatment contrasts) and bacteria with trt's levels in R's order (placebo first); the
links added in this session: binomial cauchit (cbpp, Contraception) and log (cbpp), Poisson sqrt (epil, Laplace and
nAGQ = 9).

The data are tests/reference/sweep_glmm/*.csv as R's write.csv wrote them (factors as labels), read here with
pandas' defaults, as a user would read them; make_sweep_glmm.R fits lme4 to the same CSVs. The reference is the
tight fit (PIRLS tolPwrss = 1e-12, BOBYQA rhoend = 1e-10): at lme4's defaults its log-likelihood stops up to 3e-3
below (epil_olre; Contraception's two Laplace models warn "failed to converge"), and mixedjax's is never below the
default fit's (checked). Tolerances: log-likelihood 1e-7 relative, θ and β 1e-3 (absolute 1e-4), standard errors
1e-2 relative (lme4's come from its finite-difference Hessian; measured largest 4e-4), z to 1e-2 relative."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj

HERE = Path(__file__).parent / "reference"
REF = json.loads((HERE / "sweep_glmm.json").read_text())
CASES = REF["cases"]
# fitted in the default suite (each under ~8 s with its compile); the others are the opt-in sweep (MIXEDJAX_SWEEP=1)
FAST = {"bacteria_logit", "insurance_offset", "insurance_offset_agq9", "cbpp_cloglog", "epil_offset",
        "grouse_scaled", "insurance_ordered", "bacteria_levels", "cbpp_cauchit", "cbpp_log", "epil_sqrt",
        "mmmec_nested"}
_FITS = {}


def _list(v) -> list:
    """A JSON value as a list (jsonlite writes a vector of one as a scalar)."""
    return v if isinstance(v, list) else [v]


def _data(case, new: bool = False) -> pd.DataFrame:
    """The CSV as pandas reads it; a case's "factors" become Categoricals with the package's levels (ordered where
    R's are) in the fit's data only: new data stay text, and are coded as the fit's columns were."""
    text = None
    if new:  # the fit's text columns as text (six rows of guImmun's ord, "01", "23", "46", would read as numbers)
        train = pd.read_csv(HERE / "sweep_glmm" / f"{case['data']}.csv")
        text = {c: str for c in train.columns if train[c].dtype == object}
    df = pd.read_csv(HERE / "sweep_glmm" / f"{case['data']}{'_new' if new else ''}.csv", dtype=text)
    for col, spec in ({} if new else case.get("factors", {})).items():
        df[col] = pd.Categorical(df[col], categories=_list(spec["levels"]), ordered=spec["ordered"])
    return df


def _fit(case):
    if case["id"] not in _FITS:
        kw = {"weights": case["weights"]} if case.get("weights") else {}
        _FITS[case["id"]] = mj.glmm(case["formula"], _data(case), case["family"], link=case["link"],
                                    nagq=max(case["nagq"], 1), fast=case["nagq"] == 0, **kw)
    return _FITS[case["id"]]


def _params():
    return [pytest.param(c, id=k, marks=[] if k in FAST else [pytest.mark.slow, pytest.mark.sweep]) for k, c in CASES.items()]


@pytest.mark.parametrize("case", _params())
def test_likelihood_and_criteria(case):
    """logLik (lme4's scale: with the normalising constants for Laplace, without them for nAGQ > 1), AIC, BIC,
    the number of parameters and observations, convergence and lme4's isSingular; never below lme4's default fit."""
    m, t = _fit(case), case["tight"]
    assert m.converged, m.optsum.status
    assert m.nobs == t["nobs"] and m.dof == t["df"]
    assert m.loglik == pytest.approx(t["loglik"], rel=1e-7)
    assert m.loglik >= case["default"]["loglik"] - 1e-7 * abs(case["default"]["loglik"])
    assert m.aic == pytest.approx(t["aic"], rel=1e-7)
    assert m.bic == pytest.approx(t["bic"], rel=1e-7)
    assert m.is_singular == t["singular"]
    # lme4's deviance() of a GLMM: the conditional deviance, the sum of squared deviance residuals (m.deviance is
    # −2 logLik)
    assert np.sum(m.residuals("deviance").to_numpy() ** 2) == pytest.approx(t["deviance_lme4"], rel=1e-5)
    assert m.deviance == pytest.approx(-2 * t["loglik"], rel=1e-7)


@pytest.mark.parametrize("case", _params())
def test_estimates_table_and_variance_components(case):
    """θ, β with lme4's names (factor(YEAR)96, I(week > 2)TRUE, nutrient:amdunclipped), the z table and VarCorr."""
    m, t = _fit(case), case["tight"]
    np.testing.assert_allclose(m.theta, np.atleast_1d(t["theta"]), rtol=1e-3, atol=1e-4)
    assert list(m.fixef.index) == t["beta_names"]
    np.testing.assert_allclose(m.fixef.to_numpy(), t["beta"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(m.stderror.to_numpy(), t["se"], rtol=1e-2)
    if t.get("se_richardson") is not None:  # epil_sqrt: lme4's deriv12 is 7.6e-3 off numDeriv's Richardson Hessian
        np.testing.assert_allclose(m.stderror.to_numpy(), t["se_richardson"], rtol=1e-4)
    ct = m.coeftable()
    assert list(ct.columns) == ["Coef.", "Std. Error", "z", "Pr(>|z|)"]
    np.testing.assert_allclose(ct["z"].to_numpy(), t["z"], rtol=1e-2)
    p = ct["Pr(>|z|)"].to_numpy()
    big = np.asarray(t["p"]) > 1e-8  # tiny p values move by orders of magnitude with z's third digit
    np.testing.assert_allclose(p[big], np.asarray(t["p"])[big], rtol=5e-2, atol=1e-4)
    # lme4's confint(m, method = "Wald", parm = "beta_", level = 0.9): β̂ ∓ 1.645 se, so within β's 1e-3 and 1.645
    # times se's 1e-2
    ci, ref = m.confint(level=0.9).to_numpy(), np.array(t["confint_wald"])
    assert list(m.confint().columns) == ["lower", "upper"]
    assert np.all(np.abs(ci - ref) <= 1e-3 + 0.02 * np.asarray(t["se"])[:, None])
    vc = t["varcorr"]
    for grp, v1, v2, sdcor in zip(*(_list(vc[k]) for k in ("grp", "var1", "var2", "sdcor"))):
        g = m.varcorr[grp]
        if v2 == "":
            assert m.varcorr[grp].stddevs[list(g.columns).index(v1)] == pytest.approx(sdcor, rel=2e-3, abs=1e-4)
        else:
            i, j = list(g.columns).index(v1), list(g.columns).index(v2)
            assert g.corr[i][j] == pytest.approx(sdcor, abs=2e-3)


@pytest.mark.parametrize("case", _params())
def test_modes_and_fitted(case):
    """Conditional modes of every term at every level (lme4's rownames: the levels as text) and μ̂ of every row."""
    m, t = _fit(case), case["tight"]
    ours = m.ranef()
    assert len(ours) == len(t["ranef"])
    for name, r in t["ranef"].items():
        # lme4's name region:nation of nation/region's inner term finds mixedjax's nation:region; its levels are
        # "1:Belgium" there, "Belgium:1" here, and sorted by region there, by nation here (the same set)
        flip = name not in list(ours)
        b = ours[name]
        assert list(b.columns) == _list(r["columns"])
        levels = [":".join(reversed(lv.split(":"))) if flip else lv for lv in _list(r["levels"])]
        assert ([str(v) for v in b.index] == levels) or (flip and sorted(map(str, b.index)) == sorted(levels))
        b = b.set_axis([str(v) for v in b.index], axis=0).loc[levels]
        ref = np.column_stack([np.atleast_1d(r["values"][c]) for c in _list(r["columns"])])
        np.testing.assert_allclose(b.to_numpy(), ref, rtol=2e-3, atol=5e-4)
    np.testing.assert_allclose(m.fitted().to_numpy(), t["fitted"], rtol=1e-3, atol=1e-5)
    # ranef(m, condVar = TRUE)'s postVar: conditional standard deviations of every term and column
    cv = m.ranef(condvar=True)
    for name, r in t["ranef"].items():
        flip = name not in list(ours)
        levels = [":".join(reversed(lv.split(":"))) if flip else lv for lv in _list(r["levels"])]
        b = cv[name].set_axis([str(v) for v in cv[name].index], axis=0).loc[levels]
        for col, sd in zip(_list(r["columns"]), _list(t["condsd"][name])):
            np.testing.assert_allclose(b[f"condsd_{col}"].to_numpy(), np.atleast_1d(sd), rtol=2e-3, atol=1e-5)
    # indexed by the levels as the data hold them, as the LMM's ranef: an integer column's ids stay integers
    for name, b in ours.items():
        col = _data(case)[name] if name in _data(case).columns else None
        if col is not None and pd.api.types.is_integer_dtype(col):
            assert pd.api.types.is_integer_dtype(b.index) and b.loc[col.iloc[0]].shape == (b.shape[1],)


@pytest.mark.parametrize("case", _params())
@pytest.mark.parametrize("re_form", ["none", "all"])
@pytest.mark.parametrize("type", ["link", "response"])
def test_predict_new_data(case, re_form, type):
    """predict(newdata) as lme4's, re.form = NA and NULL with allow.new.levels = TRUE: four rows of the data and two
    whose grouping factors all take levels new to the fit. The new rows are encoded with the fit's scale() centre
    and scale (grouse_scaled: before the fix they were scaled over the fit's and the new rows together, 3.7e-3 off
    on the link scale)."""
    m = _fit(case)
    got = m.predict(_data(case, new=True), type=type, re_form="~0" if re_form == "none" else None)
    np.testing.assert_allclose(got.to_numpy(), case["tight"]["predict"][f"{type}_{re_form}"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", _params())
def test_printed_family_and_link(case):
    """The printout's header names the distribution and link as MixedModels.jl does (lme4: family(m))."""
    m, t = _fit(case), case["tight"]
    assert m.family.name == t["family"] and m.link == t["link"]
    text = str(m)
    dist = {"binomial": "Bernoulli" if m.is_bernoulli else "Binomial", "poisson": "Poisson"}[t["family"]]
    assert f"Distribution: {dist}{{Float64}}" in text
    assert {"logit": "LogitLink()", "probit": "ProbitLink()", "cloglog": "CloglogLink()", "log": "LogLink()",
            "cauchit": "CauchitLink()", "sqrt": "SqrtLink()"}[t["link"]] in text
    assert f"(nAGQ = {max(case['nagq'], 1)})" in text or case["nagq"] == 0


@pytest.mark.parametrize("formula, family, column, change", [
    ("livch ~ age + (1 | district)", "binomial", "livch", None),  # a factor of 4 levels ("0", "1", "2", "3+")
    ("u3 ~ age + (1 | district)", "binomial", "u3", "three"),  # text of 3 levels
    ("age ~ urban + (1 | district)", "binomial", "age", None),  # not 0/1
    ("y ~ trt + (1 | subject)", "poisson", "y", "negative"),
    ("y ~ trt + (1 | subject)", "poisson", "y", "half"),
    ("cbind(incidence, size - incidence - 5) ~ factor(period) + (1 | herd)", "binomial", "size - incidence - 5",
     None),  # successes greater than trials
])
def test_bad_responses_name_the_column(formula, family, column, change):
    """lme4's errors for these ("y values must be 0 <= y <= 1", "negative values not allowed for the 'Poisson'
    family", non-integer warnings) are DataErrors here that name the response as written."""
    data = {"livch": "contraception", "u3": "contraception", "age": "contraception", "y": "epil"}.get(column, "cbpp")
    df = _data({"data": data})
    if change == "three":
        df = df.assign(u3=np.where(df["age"] > 5, "Z", df["use"]))
    elif change == "negative":
        df = df.assign(y=df["y"] - 3)
    elif change == "half":
        df = df.assign(y=df["y"] + 0.5)
    with pytest.raises(mj.DataError) as err:
        mj.glmm(formula, df, family)
    assert f"'{column}'" in str(err.value)


def test_confint_arguments():
    m = _fit(CASES["bacteria_logit"])
    with pytest.raises(mj.ArgumentError, match="wald"):
        m.confint(method="profile")
    with pytest.raises(mj.ArgumentError, match="level"):
        m.confint(level=95)
    # lme4's parm: "beta_" is the default table; "theta_" rows are NA (NaN here), as glmer's Wald rows are
    full = m.confint()
    pd.testing.assert_frame_equal(m.confint(parm="beta_"), full)
    theta = m.confint(parm="theta_")
    assert list(theta.index) == ["sd_(Intercept)|ID"] and theta.isna().all().all()
    pd.testing.assert_frame_equal(m.confint(parm=[full.index[1]]), full.iloc[[1]])
