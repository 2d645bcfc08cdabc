"""Binomial responses whose successes are not whole numbers: a UserWarning naming the column (R and lme4 warn and
fit), and lme4's fit: its Laplace deviance takes lme4's binomial aic (R's binomial()$aic, wt over the rounded m), which rounds m*y and m (family.rounding_terms),
so θ, β and the log-likelihood are lme4's (tests/reference/glmm_nonint.json, make_glmm_nonint.R: glmer converged
tightly); the AGQ deviance sums the deviance residuals alone, as lme4's."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
from mixedjax.glmm.family import loglik_constant, make_family, rounding_terms

REF = json.loads((Path(__file__).parent / "reference" / "glmm_nonint.json").read_text())


@pytest.fixture(scope="module")
def data():
    return pd.DataFrame(REF["data"]).assign(g=lambda d: d.g.astype("category"))


def _fit(case, data):
    kw = {"weights": data[case["weights"]]} if case.get("weights") else {}
    return mj.glmm(case["formula"], data, "binomial", link=case["link"], nagq=case["nagq"], **kw)


@pytest.mark.parametrize("case", REF["cases"], ids=[c["id"] for c in REF["cases"]])
def test_against_glmer(case, data):
    col = "the successes 's'" if "cbind" in case["formula"] else "the response 'p' times the weights"
    with pytest.warns(UserWarning, match=f"{col}.*not whole numbers.*non-integer"):
        m = _fit(case, data)
    assert m.converged, m.optsum.status
    assert m.loglik == pytest.approx(case["loglik"], rel=1e-7)
    assert m.aic == pytest.approx(case["aic"], rel=1e-7)
    np.testing.assert_allclose(m.theta, np.atleast_1d(case["theta"]), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(m.fixef.to_numpy(), case["beta"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(m.stderror.to_numpy(), case["se"], rtol=1e-2)


def test_rounding_terms_are_r_aic():
    """Σ dev_resid + constant + the rounding term is lme4's binomial aic (glmFamily.cpp; R's binomial()$aic but
    for wt divided by the rounded m), −2 Σ (wt/round(m)) log dbinom(round(m y), round(m), μ), at any μ; whole
    numbers have no term."""
    from scipy.stats import binom

    rng = np.random.default_rng(0)
    fam = make_family("binomial")
    m = rng.integers(1, 9, 40).astype(float) + rng.choice([0.0, 0.3], 40)
    y = np.clip((rng.binomial(m.astype(int), 0.4) + rng.uniform(0, 0.9, 40)) / m, 0, 1)
    wt = m * rng.uniform(0.5, 2, 40)
    mu = rng.uniform(0.05, 0.95, 40)
    a = rounding_terms(fam, y, wt, m)
    dev = float(np.sum(np.asarray(fam.dev_resid(y, mu, wt))))
    ours = dev + loglik_constant(fam, y, wt, m) - 2 * np.sum(a[:, 0] * np.log(mu) + a[:, 1] * np.log1p(-mu))
    r_aic = -2 * np.sum(wt / np.round(m) * binom.logpmf(np.round(m * y), np.round(m), mu))  # m: trials, some > 1
    assert ours == pytest.approx(r_aic, rel=1e-12)
    k = np.round(m)
    assert rounding_terms(fam, np.round(k * y) / k, wt, k) is None
    assert rounding_terms(make_family("poisson"), y, wt, m) is None
