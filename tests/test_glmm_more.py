"""mj.glmm against lme4's glmer on simulated data (tests/reference/glmm_more.json, made by make_glmm_more.R with
PIRLS and BOBYQA converged tightly): binomial logit / probit / cloglog with cbind, 0/1, two-level factor, logical and
proportion-with-weights responses; Poisson with an offset in the formula and as offset=; crossed, nested (a/b) and
a:b terms; correlated and uncorrelated vector terms; a factor-by-covariate interaction; singular fits; nAGQ = 0, 5,
9 and 25; groups whose responses are all 0 or all 1; rows with no trials; prior weights; a response expression. Issue 18's tolerances: log-likelihood 1e-6 relative (checked
at 1e-7), θ and β 1e-3, standard errors 1e-2 relative."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj

CASES = json.loads((Path(__file__).parent / "reference" / "glmm_more.json").read_text())
FAST = {"bin_cbind_logit", "pois_offset_formula", "bin_singular"}  # the others: a compile each (4-20 s)
# The suite's run (CI included) fits these ten, every case that found a fault and one of each response kind and
# quadrature (a compile and a fit of 4-65 s each: all 34 took 368 s, over a third of the whole suite); MJ_GLMM_ALL=1
# fits all 34
DEFAULT = {"bin_cbind_logit", "bin_cloglog_factor", "bin_logical_nested", "pois_offset_formula", "bin_correlated_slope",
           "bin_singular", "bin_cloglog_agq9", "bin_zero_trials", "bin_cloglog_nagq0_crossed", "pois_missing_values"}

# lme4's standard errors come from a finite-difference Hessian of its deviance function (lme4:::deriv12). The script
# also takes that Hessian by numDeriv's Richardson extrapolation (vcov_richardson). Where the two give standard errors
# more than 1e-3 apart, lme4's are doubtful and the Richardson ones are the reference (at 1e-2: they are differences
# too). Measured: bin_cloglog_slope_only_crossed, lme4 0.02383, 0.03030 against Richardson 0.08020, 0.05979 (lme4's
# Hessian has 3521 where Richardson's has 312, and lme4 warns max|grad| 0.0022); pois_crossed 0.106863, 0.027970
# against 0.107044, 0.028184 (the exact Hessian here: 0.106925, 0.028139); bin_probit_prop_weights_crossed 1.0e-2.
LME4_SE_AGREES = 1e-3


def _vcov_reference(case):
    """(vcov, rtol): lme4's at 1e-3 where its finite differences agree with Richardson's, else Richardson's at 1e-2."""
    lme4 = np.atleast_2d(case["vcov"])
    rich = case.get("vcov_richardson") or None  # none for nAGQ = 0 (lme4's RX is no Hessian)
    if rich is None:
        return lme4, 1e-3
    rich = np.atleast_2d(rich)
    se_l, se_r = np.sqrt(np.diag(lme4)), np.sqrt(np.diag(rich))
    return (lme4, 1e-3) if np.max(np.abs(se_l - se_r) / se_r) <= LME4_SE_AGREES else (rich, 1e-2)


def _frame(columns: dict) -> pd.DataFrame:
    """The data as R had them: strings become factors with sorted levels (R's order, the script's names sort)."""
    df = pd.DataFrame(columns)
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].astype("category")
    return df


_FITS = {}


def _offset(case, df) -> np.ndarray:
    """offset= as the script gives it: a column, or log of one."""
    expr = case["offset"]
    if expr.startswith("log(") and expr.endswith(")"):
        return np.log(df[expr[4:-1]].to_numpy(float))
    return df[expr].to_numpy(float)


def _fit(case):
    """One fit per case, shared by the tests below (a fit is immutable)."""
    if case["id"] not in _FITS:
        df = _frame(case["data"])
        kw = {"weights": case["weights"]} if case.get("weights") else {}
        if case.get("offset"):
            kw["offset"] = _offset(case, df)
        with pytest.warns(UserWarning, match="singular") if case["singular"] else _nothing():
            _FITS[case["id"]] = mj.glmm(case["formula"], df, case["family"], link=case["link"],
                                        nagq=max(case["nagq"], 1), fast=case["nagq"] == 0, **kw)
    return _FITS[case["id"]]


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _params():
    every = os.environ.get("MJ_GLMM_ALL") == "1"
    return [pytest.param(c, id=k, marks=[] if k in FAST else [pytest.mark.slow]) for k, c in CASES.items()
            if every or k in DEFAULT]


@pytest.mark.parametrize("case", _params())
def test_likelihood_and_criteria(case):
    """loglik to 1e-7 relative (lme4's scale: without the normalising constants for nAGQ > 1, as lme4's logLik),
    AIC and BIC to 1e-6 absolute per unit of the log-likelihood, nobs, the number of parameters, converged, and the
    singular verdict lme4's isSingular gives."""
    m = _fit(case)
    assert m.converged, m.optsum.status
    assert m.nobs == case["nobs"]
    assert m.dof == case["df"]
    assert m.loglik == pytest.approx(case["loglik"], rel=1e-7)
    assert m.aic == pytest.approx(case["aic"], rel=1e-7)
    assert m.bic == pytest.approx(case["bic"], rel=1e-7)
    assert m.is_singular == case["singular"]


@pytest.mark.parametrize("case", _params())
def test_estimates_and_standard_errors(case):
    m = _fit(case)
    np.testing.assert_allclose(m.theta, np.atleast_1d(case["theta"]), rtol=1e-3, atol=1e-4)
    assert list(m.fixef.index) == case["beta_names"]
    np.testing.assert_allclose(m.fixef.to_numpy(), case["beta"], rtol=1e-3, atol=1e-4)
    R, rtol = _vcov_reference(case)
    np.testing.assert_allclose(m.stderror.to_numpy(), np.sqrt(np.diag(R)), rtol=rtol)
    V = m.vcov.to_numpy()
    scale = np.sqrt(np.outer(np.diag(R), np.diag(R)))
    np.testing.assert_allclose(V / scale, R / scale, atol=2 * rtol)


@pytest.mark.parametrize("case", _params())
def test_modes_and_fitted(case):
    """Conditional modes of every term (first five levels, every column) and the first fitted values."""
    m = _fit(case)
    ours = m.ranef()
    assert len(ours) == len(case["ranef_head"])
    for name, cols in case["ranef_head"].items():
        # lme4's name b:a of a/b's inner term finds mixedjax's a:b; its levels are "b01:a01" there, "a01:b01" here
        flip = name not in list(ours)
        b = ours[name]
        assert list(b.columns) == list(np.atleast_1d(case["ranef_columns"][name]))
        levels = [":".join(reversed(lv.split(":"))) if flip else lv
                  for lv in np.atleast_1d(case["ranef_levels"][name])]
        for col, values in cols.items():
            np.testing.assert_allclose(b.loc[levels, col].to_numpy(), values, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(m.fitted().to_numpy()[:8], case["fitted_head"], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("case", _params())
@pytest.mark.parametrize("re_form", ["none", "all"])
@pytest.mark.parametrize("type", ["link", "response"])
def test_predict_new_data(case, re_form, type):
    """predict(newdata) with re.form = NA and with every term, on both scales: four rows of the data and two whose
    grouping factors all take levels new to the fit (allow.new.levels = TRUE: their effects are 0); an offset= of
    the fit is passed again for the new rows (lme4's predict does not see it: the script adds it)."""
    m = _fit(case)
    new = _frame(case["newdata"])
    off = _offset(case, new) if case.get("offset") else None
    got = m.predict(new, type=type, re_form="~0" if re_form == "none" else None, offset=off).to_numpy()
    np.testing.assert_allclose(got, case["predict"][f"{type}_{re_form}"], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("case", _params())
def test_residuals_and_conditional_deviance(case):
    """Deviance, Pearson and response residuals (first rows) as lme4's residuals(type = ...); the sum of squared
    deviance residuals is lme4's deviance() of a GLMM (the conditional deviance, not −2 logLik: m.deviance is that)."""
    m = _fit(case)
    for type in ("deviance", "pearson", "response"):
        np.testing.assert_allclose(m.residuals(type).to_numpy()[:8], case[f"resid_{type}_head"], rtol=2e-3,
                                   atol=2e-5)
    assert float(np.sum(m.residuals("deviance").to_numpy() ** 2)) == pytest.approx(case["deviance_lme4"], rel=1e-4)
    assert m.deviance == pytest.approx(-2 * m.loglik)
