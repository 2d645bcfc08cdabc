"""Kenward–Roger against pbkrtest / lmerTest (tests/reference/lme4_inference.json): df 1e-3 relative, adjusted
standard errors 1e-4 relative; and the derivatives it is built from against finite differences."""

import jax.numpy as jnp
import numpy as np
import pytest
from inference_reference import case, fitted

import mixedjax as mj
from mixedjax.inference.kenward_roger import _F, kenward_roger_parts


@pytest.mark.parametrize("case_id", ["sleepstudy_slope", "sleepstudy_intercept"])
def test_kenward_roger_coeftable_matches_pbkrtest(case_id):
    ref = case(case_id)["REML"]["kenward_roger"]
    t = fitted(case_id, True).coeftable(ddf="kenward-roger")
    assert list(t.columns) == ["Coef.", "Std. Error", "df", "t", "Pr(>|t|)"]
    np.testing.assert_allclose(t["df"], ref["df"], rtol=1e-3)
    np.testing.assert_allclose(t["Std. Error"], ref["se"], rtol=1e-4)
    np.testing.assert_allclose(t["Pr(>|t|)"], ref["p"], rtol=5e-3)


@pytest.mark.slow
@pytest.mark.parametrize("case_id", ["penicillin_crossed", "pastes_nested", "alfalfa_splitplot"])
def test_kenward_roger_coeftable_matches_pbkrtest_more(case_id):
    ref = case(case_id)["REML"]["kenward_roger"]
    t = fitted(case_id, True).coeftable(ddf="kenward-roger")
    np.testing.assert_allclose(t["df"], np.atleast_1d(ref["df"]), rtol=1e-3)
    np.testing.assert_allclose(t["Std. Error"], np.atleast_1d(ref["se"]), rtol=1e-4)


def test_kenward_roger_needs_reml():
    with pytest.raises(mj.ArgumentError, match="REML fits only"):
        fitted("sleepstudy_slope", False).coeftable(ddf="kenward-roger")


def test_kr_derivatives_match_finite_differences():
    """P_i = ∂(X'Σ⁻¹X)/∂φ_i from the exact derivatives, against central differences of X'Σ⁻¹X in φ."""
    m = fitted("sleepstudy_slope", True)
    a, layout = m.problem.arrays, m.problem.layout
    parts = kenward_roger_parts(m.theta, m.sigma, a, layout)
    np.testing.assert_allclose(parts.vcov, m.vcov.to_numpy(), rtol=1e-8)
    for i in range(len(parts.phi)):
        h = 1e-6 * max(1.0, abs(parts.phi[i]))
        e = np.zeros_like(parts.phi)
        e[i] = h
        Fp = np.asarray(_F(jnp.asarray(parts.phi + e), a, layout))
        Fm = np.asarray(_F(jnp.asarray(parts.phi - e), a, layout))
        dF = (Fp - Fm) / (2 * h)
        np.testing.assert_allclose(parts.P[i], dF, rtol=1e-5, atol=1e-7 * np.abs(dF).max())


def test_kenward_roger_at_a_boundary_fit_is_a_clear_error():
    """dyestuff2's batch variance is estimated as 0: a FitError that says so, not NaN."""
    m = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff2"), reml=True)
    assert m.is_singular
    with pytest.raises(mj.FitError, match="boundary fit"):
        m.coeftable(ddf="kenward-roger")
    t = m.coeftable(ddf="satterthwaite")
    assert np.all(np.isfinite(t.to_numpy()))
