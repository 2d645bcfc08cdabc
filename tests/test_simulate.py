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


def implied_moments(m, theta, beta, sigma, weighted_noise=True):
    """E[y] = offset + Xβ and Cov[y] = σ² (Σ_k [same level of k] z_i λ_k λ_k' z_j + diag(1/w)) from the design."""
    d, layout = m.problem.design, m.problem.layout
    mean = d.X @ beta + (0.0 if d.offset is None else d.offset)
    cov = np.zeros((d.n, d.n))
    for t, lt in zip(d.terms, layout.terms):
        lam = np.zeros((lt.s, lt.s))
        for i, (r, c) in enumerate(lt.pattern):
            lam[r, c] = theta[lt.theta_offset + i]
        same = t.codes[:, None] == t.codes[None, :]
        cov += same * (t.z @ lam @ lam.T @ t.z.T)
    w = np.ones(d.n) if d.weights is None or not weighted_noise else d.weights
    return mean, sigma**2 * (cov + np.diag(1 / w))


def check_moments(Y, mean, cov, pairs=200, z=5.0):
    """Means, variances and covariances of random pairs of rows within z standard errors (Gaussian y)."""
    nsim = Y.shape[0]
    var = np.diag(cov)
    assert np.max(np.abs(Y.mean(0) - mean) / np.sqrt(var / nsim)) < z
    assert np.max(np.abs(Y.var(0) - var) / (var * np.sqrt(2 / nsim))) < z
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(mean), (2, pairs))
    keep = i != j
    i, j = i[keep], j[keep]
    C = ((Y[:, i] - Y[:, i].mean(0)) * (Y[:, j] - Y[:, j].mean(0))).mean(0)
    se = np.sqrt((var[i] * var[j] + cov[i, j] ** 2) / nsim)  # the variance of a Gaussian product's mean
    assert np.max(np.abs(C - cov[i, j]) / se) < z


MOMENT_CASES = {
    "crossed_reml": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin", {}),
    "nested_ml": ("strength ~ 1 + (1 | batch/cask)", "pastes", {"reml": False}),
    "uncorrelated": ("reaction ~ 1 + days + (1 + days || subj)", "sleepstudy", {}),
}


@pytest.mark.parametrize("name", sorted(MOMENT_CASES))
def test_moments_on_designs(name):
    formula, data, kw = MOMENT_CASES[name]
    m = mj.lmm(formula, mj.dataset(data), **kw)
    mean, cov = implied_moments(m, m.theta, m.fixef.to_numpy(), m.sigma)
    check_moments(m.simulate(4000, seed=11), mean, cov)
    th = np.asarray(m.theta) * 0.5 + 0.3  # overrides: a different model, the same formulas
    be = m.fixef.to_numpy() + 1.0
    mean, cov = implied_moments(m, th, be, 2.0)
    check_moments(m.simulate(4000, seed=12, theta=th, beta=be, sigma=2.0), mean, cov)


def test_weighted_and_offset_moments():
    """Noise variance σ²/wᵢ (weighted_noise=False: σ², lme4's simulate), the offset in the mean."""
    df = mj.dataset("sleepstudy")
    rng = np.random.default_rng(3)
    w, off = rng.uniform(0.3, 4.0, len(df)), rng.normal(0, 20, len(df))
    m = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", df, weights=w, offset=off)
    for weighted in (True, False):
        mean, cov = implied_moments(m, m.theta, m.fixef.to_numpy(), m.sigma, weighted)
        check_moments(m.simulate(4000, seed=13, weighted_noise=weighted), mean, cov)
    with pytest.raises(ArgumentError, match="weighted_noise"):
        m.simulate(2, weighted_noise="no")
