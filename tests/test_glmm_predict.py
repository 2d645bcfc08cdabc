"""GLMM predictions with re_form selecting some of the random-effects terms, against lme4's predict(re.form = ...)
(tests/reference/glmm_predict_lme4.json, made by make_glmm_predict.R: cbpp with an observation-level effect, obs
nested in herd)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
from mixedjax.errors import ArgumentError, DataError, FormulaError

pytestmark = pytest.mark.slow  # one fit with its compile: about 15 s

REF = json.loads((Path(__file__).parent / "reference" / "glmm_predict_lme4.json").read_text())
RE_FORMS = {"all": None, "herd": "~(1 | herd)", "obs": "~(1 | obs)", "none": "~0"}


@pytest.fixture(scope="module")
def fit():
    df = pd.read_csv(Path(__file__).parent / "data" / "cbpp.csv", dtype={"herd": str, "period": str})
    df["obs"] = [str(i + 1) for i in range(len(df))]
    for c in ("herd", "period", "obs"):
        df[c] = df[c].astype("category")
    return mj.glmm(REF["formula"], df, "binomial")


def test_fit_matches_lme4(fit):
    assert fit.converged
    assert fit.loglik == pytest.approx(REF["loglik"], rel=1e-7)
    np.testing.assert_allclose(fit.fixef.to_numpy(), REF["beta"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("which", list(RE_FORMS))
@pytest.mark.parametrize("type", ["link", "response"])
def test_predict_re_form_against_lme4(fit, which, type):
    """Fitted rows and new rows (a herd and an obs the fit has not seen: their effects are 0, as lme4's
    allow.new.levels = TRUE) to 1e-5 relative (θ and β agree with lme4's tightly converged ones to about 1e-6)."""
    key = f"{which}_{type}"
    got = fit.predict(re_form=RE_FORMS[which], type=type).to_numpy()
    np.testing.assert_allclose(got, REF["fitted"][key], rtol=1e-5, atol=1e-7)
    new = pd.DataFrame(REF["newdata"])
    got = fit.predict(new, re_form=RE_FORMS[which], type=type).to_numpy()
    np.testing.assert_allclose(got, REF["new"][key], rtol=1e-5, atol=1e-7)


def test_re_form_naming_an_unknown_term_is_an_error(fit):
    with pytest.raises(FormulaError, match="period"):
        fit.predict(re_form="~(1 | period)")


def test_new_levels_error_names_the_column(fit):
    new = pd.DataFrame(REF["newdata"])
    with pytest.raises(DataError, match="column '(herd|obs)' of the new data has level"):
        fit.predict(new, new_levels="error")
    with pytest.raises(ArgumentError, match="new_levels"):
        fit.predict(new_levels="nope")
    seen = new[new.herd.isin(fit.ranef()["herd"].index) & new.obs.isin(fit.ranef()["obs"].index)]
    assert 0 < len(seen) < len(new)
    np.testing.assert_array_equal(fit.predict(seen, new_levels="error"), fit.predict(seen))


def test_zero_exposure_predicts_the_clamped_limit():
    """η = −∞ (offset log(0)) has a limit: R's poisson()$linkinv gives pmax(exp(η), eps), not NaN."""
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"g": rng.choice(list("abcdefgh"), 200), "x": rng.normal(size=200),
                       "t": rng.uniform(1, 3, 200)})
    df["k"] = rng.poisson(df.t * np.exp(0.2 * df.x))
    m = mj.glmm("k ~ x + offset(log(t)) + (1 | g)", df, "poisson")
    new = pd.DataFrame({"g": ["a", "a", "a"], "x": [0.0, 0.5, np.nan], "t": [0.0, 1.0, 1.0]})
    with np.errstate(divide="ignore"):
        link = m.predict(new, type="link").to_numpy()
        mu = m.predict(new).to_numpy()
    assert link[0] == -np.inf and np.isnan(link[2]) and np.isnan(mu[2])
    assert mu[0] == np.finfo(float).eps
    assert mu[1] == pytest.approx(np.exp(link[1]), rel=1e-14)
