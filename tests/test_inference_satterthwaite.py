"""Satterthwaite df, t tests and the summary against lmerTest (tests/reference/lme4_inference.json).

Tolerances: df 1e-3 relative (lmerTest's df carry numDeriv error; ours are exact), standard errors 1e-4 relative
(the fits agree to about that), p-values 5e-3 relative.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from inference_reference import case, fitted
from scipy import stats

from mixedjax.inference.satterthwaite import _objective_v, _vcov_v, satterthwaite_parts

CASES = [("sleepstudy_slope", False), ("sleepstudy_slope", True), ("sleepstudy_intercept", True),
         ("pastes_nested", False)]


@pytest.mark.parametrize("case_id,reml", CASES)
def test_satterthwaite_coeftable_matches_lmertest(case_id, reml):
    ref = case(case_id)["REML" if reml else "ML"]["satterthwaite"]
    t = fitted(case_id, reml).coeftable(ddf="satterthwaite")
    assert list(t.columns) == ["Coef.", "Std. Error", "df", "t", "Pr(>|t|)"]
    np.testing.assert_allclose(t["df"], ref["df"], rtol=1e-3)
    np.testing.assert_allclose(t["Std. Error"], ref["se"], rtol=1e-4)
    np.testing.assert_allclose(t["t"], ref["t"], rtol=1e-4)
    np.testing.assert_allclose(t["Pr(>|t|)"], ref["p"], rtol=5e-3)


@pytest.mark.slow
@pytest.mark.parametrize("case_id,reml", [("penicillin_crossed", True), ("alfalfa_splitplot", True),
                                          ("alfalfa_splitplot", False)])
def test_satterthwaite_coeftable_matches_lmertest_crossed_and_factors(case_id, reml):
    ref = case(case_id)["REML" if reml else "ML"]["satterthwaite"]
    t = fitted(case_id, reml).coeftable(ddf="satterthwaite")
    np.testing.assert_allclose(t["df"], np.atleast_1d(ref["df"]), rtol=1e-3)
    np.testing.assert_allclose(t["Std. Error"], np.atleast_1d(ref["se"]), rtol=1e-4)


def test_default_coeftable_is_the_z_table():
    m = fitted("sleepstudy_slope", False)
    t = m.coeftable()
    assert list(t.columns) == ["Coef.", "Std. Error", "z", "Pr(>|z|)"]
    z = m.fixef / m.stderror
    np.testing.assert_allclose(t["z"], z, rtol=1e-12)
    # erfc keeps subnormal p-values that scipy's sf rounds to 0 (2e-314 for z = 37.9)
    np.testing.assert_allclose(t["Pr(>|z|)"], 2 * stats.norm.sf(np.abs(z)), rtol=1e-12, atol=1e-300)


def test_derivatives_match_finite_differences():
    """The Hessian in (θ, σ) and ∂Cov(β̂)/∂(θ, σ) against central differences of the same functions."""
    m = fitted("sleepstudy_slope", True)
    a, layout = m.problem.arrays, m.problem.layout
    v = np.concatenate([m.theta, [m.sigma]])
    parts = satterthwaite_parts(m.theta, m.sigma, m.vcov.to_numpy(), a, layout, True)
    g = jax.jit(jax.grad(_objective_v), static_argnames=("layout", "reml"))
    for i in range(len(v)):
        h = 1e-5 * max(1.0, abs(v[i]))
        e = np.zeros_like(v)
        e[i] = h
        dC = (np.asarray(_vcov_v(jnp.asarray(v + e), a, layout)) - np.asarray(_vcov_v(jnp.asarray(v - e), a, layout))) / (2 * h)
        np.testing.assert_allclose(parts.jac[i], dC, rtol=1e-5, atol=1e-8 * np.abs(dC).max())
        dg = (np.asarray(g(jnp.asarray(v + e), a, layout, True)) - np.asarray(g(jnp.asarray(v - e), a, layout, True))) / (2 * h)
        H = 2 * np.linalg.inv(parts.A)
        np.testing.assert_allclose(H[i], dg, rtol=1e-5, atol=1e-6 * np.abs(dg).max())


def test_summary_shows_the_chosen_table():
    m = fitted("sleepstudy_slope", True)
    s = str(m.summary(ddf="satterthwaite"))
    assert "Pr(>|t|)" in s and " df" in s
    assert "Pr(>|z|)" in str(m.summary())


def test_bad_ddf_is_an_argument_error():
    import mixedjax as mj

    m = fitted("sleepstudy_slope", True)
    with pytest.raises(mj.ArgumentError, match="ddf must be"):
        m.coeftable(ddf="containment")


@pytest.mark.parametrize("reml", [False, True])
def test_satterthwaite_with_prior_weights(reml):
    """weights = 1 + (days %% 3) / 2 (lme4's weights=): df 1e-3 relative; the weighted fits' standard errors agree
    with lme4's to about 1e-4, so 1e-3 here."""
    import mixedjax as mj
    from inference_reference import data

    c = case("sleepstudy_weighted")
    ref = c["REML" if reml else "ML"]["satterthwaite"]
    m = mj.lmm(c["formula"], data(c["data"]), reml=reml, weights=np.asarray(c["weights"], float))
    t = m.coeftable(ddf="satterthwaite")
    np.testing.assert_allclose(t["df"], ref["df"], rtol=1e-3)
    np.testing.assert_allclose(t["Std. Error"], ref["se"], rtol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("reml", [False, True])
def test_closed_form_sigma_row_matches_the_full_hessian(reml):
    """The Hessian in (θ, σ) from the θ block plus σ's closed-form row equals jax.hessian of the objective in all of
    (θ, σ) (ML and REML; sleepstudy's y is rescaled on the host, so c ≠ 1 is exercised)."""
    from mixedjax.inference.satterthwaite import _hessian_v

    m = fitted("sleepstudy_slope", reml)
    a, layout = m.problem.arrays, m.problem.layout
    v = jnp.asarray(np.concatenate([m.theta, [m.sigma]]))
    jit = lambda f: jax.jit(f, static_argnames=("layout", "reml"))  # noqa: E731
    full = np.asarray(jit(jax.hessian(_objective_v))(v, a, layout, reml))
    np.testing.assert_allclose(np.asarray(jit(_hessian_v)(v, a, layout, reml)), full, rtol=1e-9,
                               atol=1e-11 * np.abs(full).max())
