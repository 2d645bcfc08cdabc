"""Boundary (singular) fits: a zero variance, a singular covariance of a vector term, a random effect that duplicates
a fixed effect. The optimum must be right, finite, and flagged; nothing is ever NaN.

The simulated data have the shapes of tests/test_inputs.py (n = 60, 6 groups), so the compiled fits are shared.
"""

import math

import jax
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import mixedjax as mj

N, L = 60, 6
try:  # the fit's own compiled objective: no second compilation per model shape
    from mixedjax.fitting.loop import _deviance_jit as _dev
except ImportError:  # pragma: no cover
    _dev = jax.jit(mj.deviance, static_argnames=("layout", "reml"))


def _no_nan(m):
    assert np.isfinite(m.objective)
    assert np.all(np.isfinite(m.theta))
    assert np.isfinite(m.sigma) and m.sigma > 0
    assert np.all(np.isfinite(m.fixef)) and np.all(np.isfinite(m.stderror))
    for v in m.ranef().values():
        assert np.all(np.isfinite(v.to_numpy()))
    for g in m.varcorr.groups:
        assert np.all(np.isfinite(g.stddevs))
        if g.corr is not None:
            assert np.all(np.isfinite(np.asarray(g.corr)))
    text = str(m)
    assert "nan" not in text.lower()
    return text


def _powell_min(m):
    """The best of Powell and Nelder-Mead on the model's objective, from the fit's start."""
    a, layout = m.problem.arrays, m.problem.layout
    f = lambda t: float(_dev(np.asarray(t, float), a, layout, m.reml))  # noqa: E731
    best = math.inf
    for method in ("Powell", "Nelder-Mead"):
        r = minimize(f, m.optsum.initial, method=method, options={"xtol": 1e-10, "ftol": 1e-12, "maxfev": 4000}
                     if method == "Powell" else {"xatol": 1e-10, "fatol": 1e-12, "maxfev": 4000})
        best = min(best, r.fun)
    return best


# ---- a variance that is zero: dyestuff2 ---------------------------------------------------------------------------
@pytest.mark.parametrize("reml, objective, sigma, se", [(False, 162.873036653826, 3.65323135137465, 0.666985739644326),
                                                        (True, 161.828277812288, 3.71568427447573, 0.678388031232524)])
def test_dyestuff2_zero_variance(reml, objective, sigma, se):
    m = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff2"), reml=reml)
    assert m.theta.tolist() == [0.0]
    assert m.is_singular
    np.testing.assert_allclose(m.objective, objective, rtol=1e-9)
    np.testing.assert_allclose(m.sigma, sigma, rtol=1e-7)
    np.testing.assert_allclose(m.fixef.iloc[0], 5.6656, rtol=1e-9)
    np.testing.assert_allclose(m.stderror.iloc[0], se, rtol=1e-7)
    text = _no_nan(m)
    assert "singular" in text.lower()
    assert np.all(m.ranef()["batch"].to_numpy() == 0)
    assert m.varcorr.groups[0].stddevs[0] == 0
    # the boundary optimum: d does not fall off θ = 0 in either direction
    a, layout = m.problem.arrays, m.problem.layout
    for t in (1e-3, -1e-3, 0.1):
        assert float(_dev(np.array([t]), a, layout, reml)) >= m.objective
    assert np.all(np.isfinite(m.gradient())) and np.all(np.isfinite(m.hessian()))


def test_non_singular_fit_is_not_flagged():
    m = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff"))
    assert not m.is_singular and "singular" not in str(m).lower()


# ---- a vector term whose covariance is singular -------------------------------------------------------------------
def _no_slope_variation(seed):
    """Random intercepts, a common slope: the true slope variance is 0 (a zero diagonal in λ)."""
    rng = np.random.default_rng(seed)
    gi = np.repeat(np.arange(L), N // L)
    x = np.tile(np.linspace(-1, 1, N // L), L)
    y = 1.0 + 0.8 * x + rng.normal(scale=1.5, size=L)[gi] + rng.normal(scale=0.5, size=N)
    return pd.DataFrame({"y": y, "x": x, "g": np.array(list("abcdef"))[gi]})


def _singular_seed():
    # a seed whose ML estimate of the slope variance is exactly on the boundary (found once, kept fixed)
    return 2


@pytest.mark.parametrize("formula", ["y ~ 1 + x + (1 + x | g)", "y ~ 1 + x + (1 + x || g)"])
def test_vector_term_singular_covariance(formula):
    d = _no_slope_variation(_singular_seed())
    m = mj.lmm(formula, d)
    lam = m._solution["lams"][0]
    assert lam[1, 1] == 0.0, f"expected a zero diagonal in λ, got {lam}"
    assert m.is_singular
    text = _no_nan(m)
    assert "singular" in text.lower()
    # the optimum is correct: no derivative-free optimiser from the same start does better
    assert m.objective <= _powell_min(m) + 1e-6 * abs(m.objective)
    # it contains the intercept-only model, so it can be no worse than that
    m0 = mj.lmm("y ~ 1 + x + (1 | g)", d)
    assert m.objective <= m0.objective + 1e-7 * abs(m0.objective)
    # with a zero slope variance, the slope's random effects are all equal to a multiple of the intercept's
    b = m.ranef()["g"].to_numpy()
    if "||" in formula:
        np.testing.assert_allclose(m.objective, m0.objective, rtol=1e-9)
        assert np.all(b[:, 1] == 0)
        np.testing.assert_allclose(m.fixef.to_numpy(), m0.fixef.to_numpy(), rtol=1e-6)


# ---- a random effect that duplicates a fixed effect ---------------------------------------------------------------
def _duplicated():
    rng = np.random.default_rng(5)
    gi = np.repeat(np.arange(L), N // L)
    return pd.DataFrame({"y": rng.normal(size=L)[gi] + rng.normal(size=N), "g": np.array(list("abcdef"))[gi]}), gi


def test_random_effect_duplicating_a_fixed_effect():
    d, gi = _duplicated()
    with pytest.warns(UserWarning, match=r"random effects of '\(1 \| g\)' are confounded with the fixed effects"):
        m = mj.lmm("y ~ 1 + g + (1 | g)", d)
    # the random intercept is not identified: the ML optimum of its variance is 0
    assert m.theta.tolist() == [0.0]
    assert m.is_singular
    text = _no_nan(m)
    assert "singular" in text.lower()
    assert np.all(m.ranef()["g"].to_numpy() == 0)
    # β is the cell means' treatment contrasts, σ² the within-group ML variance
    means = d.groupby("g").y.mean().to_numpy()
    np.testing.assert_allclose(m.fixef.to_numpy(), np.r_[means[0], means[1:] - means[0]], rtol=1e-8)
    resid = d.y.to_numpy() - means[gi]
    np.testing.assert_allclose(m.sigma**2, resid @ resid / N, rtol=1e-8)
    assert m.objective <= _powell_min(m) + 1e-6 * abs(m.objective)


def test_reml_with_a_duplicated_effect_is_finite():
    # the REML criterion does not depend on the confounded variance at all: finite, and a warning says why
    d, _ = _duplicated()
    with pytest.warns(UserWarning, match="confounded"):
        m = mj.lmm("y ~ 1 + g + (1 | g)", d, reml=True)
    _no_nan(m)
    a, layout = m.problem.arrays, m.problem.layout
    flat = [float(_dev(np.array([t]), a, layout, True)) for t in (0.0, 0.5, 1.0, 3.0)]
    np.testing.assert_allclose(flat, m.objective, rtol=1e-10)


def test_reml_with_a_duplicated_effect_is_singular():
    d, _ = _duplicated()
    with pytest.warns(UserWarning, match="confounded"):
        m = mj.lmm("y ~ 1 + g + (1 | g)", d, reml=True)
    assert m.theta.tolist() == [0.0] and m.is_singular
