"""m.simulate: shape, seeds, and the moments of the model it draws from (checked against the model's own formulas
for E[y] = offset + Xβ and Var[y_i] = σ² (1/wᵢ + z_i' λλ' z_i), within Monte Carlo error)."""

import jax
import numpy as np
import pytest

import mixedjax as mj
from mixedjax.errors import ArgumentError

FORMULA = "reaction ~ 1 + days + (1 + days | subj)"


@pytest.fixture(scope="module")
def sleep():
    return mj.lmm(FORMULA, mj.dataset("sleepstudy"))


def _lam(theta):
    return np.array([[theta[0], 0.0], [theta[1], theta[2]]])


def test_shape_seed_and_readonly(sleep):
    Y = sleep.simulate(5, seed=1)
    assert Y.shape == (5, sleep.nobs) and Y.dtype == np.float64
    assert not Y.flags.writeable
    np.testing.assert_array_equal(Y, sleep.simulate(5, seed=1))
    np.testing.assert_array_equal(Y, sleep.simulate(5, seed=jax.random.key(1)))
    assert not np.allclose(Y, sleep.simulate(5, seed=2))
    assert sleep.simulate(seed=3).shape == (1, sleep.nobs)
    a, b = sleep.simulate(2), sleep.simulate(2)  # seed=None: fresh draws
    assert not np.allclose(a, b)


def test_moments_match_the_model(sleep):
    """Mean Xβ and variance σ²(1 + z'λλ'z) per observation, over 4000 draws (5 standard errors)."""
    nsim = 4000
    Y = sleep.simulate(nsim, seed=0)
    d = sleep.problem.design
    z = d.terms[0].z
    lam = _lam(sleep.theta)
    var = sleep.sigma**2 * (1 + np.einsum("ia,ab,ib->i", z, lam @ lam.T, z))
    mean = d.X @ sleep.fixef.to_numpy()
    assert np.max(np.abs(Y.mean(0) - mean) / np.sqrt(var / nsim)) < 5
    # the variance estimate's standard error is about var * sqrt(2 / nsim)
    assert np.max(np.abs(Y.var(0) - var) / (var * np.sqrt(2 / nsim))) < 5
    # rows of one subject share its random effects: the covariance of days 0 and 9 of subject 1
    i, j = 0, 9
    cov = sleep.sigma**2 * z[i] @ lam @ lam.T @ z[j]
    assert abs(np.cov(Y[:, i], Y[:, j])[0, 1] - cov) < 5 * np.sqrt(var[i] * var[j] / nsim)


def test_overrides(sleep):
    """theta = 0 leaves only the noise; sigma and beta override the fitted values."""
    Y = sleep.simulate(3000, seed=4, theta=[0, 0, 0], sigma=2.0, beta=[1.0, 0.5])
    mean = sleep.problem.design.X @ np.array([1.0, 0.5])
    assert np.max(np.abs(Y.mean(0) - mean)) < 5 * 2.0 / np.sqrt(3000)
    np.testing.assert_allclose(Y.var(0).mean(), 4.0, rtol=0.02)
    # observations of one subject are independent without random effects
    assert abs(np.corrcoef(Y[:, 0], Y[:, 9])[0, 1]) < 5 / np.sqrt(3000)


def test_weights_and_offset():
    """Residual variance σ²/wᵢ and the offset in the mean."""
    df = mj.dataset("sleepstudy")
    w = np.where(np.arange(len(df)) % 2 == 0, 1.0, 4.0)
    m = mj.lmm("reaction ~ 1 + days + (1 | subj)", df, weights=w, offset=np.full(len(df), 100.0))
    Y = m.simulate(4000, seed=5, theta=[0.0])
    np.testing.assert_allclose(Y.mean(0).mean(), 100 + (m.problem.design.X @ m.fixef.to_numpy()).mean(), rtol=1e-3)
    v = Y.var(0)
    np.testing.assert_allclose(v[::2].mean() / v[1::2].mean(), 4.0, rtol=0.05)


@pytest.mark.parametrize("kwargs, words", [
    ({"nsim": 0}, "nsim"), ({"nsim": 2.5}, "nsim"), ({"theta": [1.0]}, "theta"), ({"beta": [1, 2, 3]}, "beta"),
    ({"sigma": -1.0}, "sigma"), ({"seed": "abc"}, "seed"),
])
def test_bad_arguments(sleep, kwargs, words):
    with pytest.raises(ArgumentError, match=words):
        sleep.simulate(**kwargs)
