"""m.fit_function: a pure JAX fit whose derivatives come from the implicit function theorem, checked against central
differences of m.refit (β̂, σ̂, θ̂, b̂; in y and in the weights), forward against reverse mode, jit and vmap against
refits, and the boundary rule (θ entries held at zero have derivative 0) on a singular fit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mixedjax as mj
from mixedjax.batch.function import Estimates

FORMULA = "reaction ~ 1 + days + (1 + days | subj)"


@pytest.fixture(scope="module")
def sleep():
    return mj.lmm(FORMULA, mj.dataset("sleepstudy"))


def flat(e):
    """β̂, σ̂, θ̂ and b̂ in one vector."""
    return jnp.concatenate([e.beta, e.sigma[None], e.theta] + [b.reshape(-1) for b in e.b])


def flat_model(m):
    return np.concatenate([m.fixef.to_numpy(), [m.sigma], m.theta] + [r.to_numpy().reshape(-1)
                                                                      for r in m.ranef().values()])


def central(m, i, h, y=None, w=None):
    """Central difference of the refitted (β̂, σ̂, θ̂, b̂) in y_i (w None) or in w_i."""
    y = np.array(m.problem.design.y if y is None else y, float)
    if w is None:
        yp, ym = y.copy(), y.copy()
        yp[i] += h
        ym[i] -= h
        return (flat_model(m.refit(yp)) - flat_model(m.refit(ym))) / (2 * h)
    wp, wm = w.copy(), w.copy()
    wp[i] += h
    wm[i] -= h
    return (flat_model(m.refit(y, weights=wp)) - flat_model(m.refit(y, weights=wm))) / (2 * h)


def assert_derivative(J, fd, rtol):
    scale = np.abs(fd) + 1e-3 * np.max(np.abs(fd)) + 1e-12
    assert np.max(np.abs(J - fd) / scale) < rtol, (J, fd)


def test_estimates_and_jit(sleep):
    f = sleep.fit_function()
    y = jnp.asarray(sleep.problem.design.y)
    e = jax.jit(f)(y)
    assert isinstance(e, Estimates) and bool(e.converged)
    np.testing.assert_allclose(e.objective, sleep.objective, rtol=1e-9)
    np.testing.assert_allclose(e.theta, sleep.theta, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(e.beta, sleep.fixef.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(e.b[0], sleep.ranef()["subj"].to_numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_derivatives_in_y_against_refits(sleep):
    """jax.jacrev of (β̂, σ̂, θ̂, b̂) in y against central differences of m.refit (h = 1e-4 sd(y)), and jacfwd."""
    f = sleep.fit_function()
    y0 = np.asarray(sleep.problem.design.y, float)
    J = np.asarray(jax.jit(jax.jacrev(lambda y: flat(f(y))))(jnp.asarray(y0)))
    Jf = np.asarray(jax.jit(jax.jacfwd(lambda y: flat(f(y))))(jnp.asarray(y0)))
    np.testing.assert_allclose(Jf, J, rtol=1e-9, atol=1e-12 * np.abs(J).max())
    h = 1e-4 * np.std(y0)
    for i in (3, 77, 150):
        assert_derivative(J[:, i], central(sleep, i, h), 1e-4)


@pytest.mark.slow
def test_derivatives_in_weights_against_refits(sleep):
    f = sleep.fit_function()
    y0 = jnp.asarray(sleep.problem.design.y)
    w0 = np.random.default_rng(1).uniform(0.5, 2.0, sleep.nobs)
    J = np.asarray(jax.jacrev(lambda w: flat(f(y0, w)))(jnp.asarray(w0)))
    for i in (10, 100):
        assert_derivative(J[:, i], central(sleep, i, 1e-5, w=w0), 1e-4)


@pytest.mark.slow
def test_vmap_equals_refits(sleep):
    f = sleep.fit_function()
    Y = sleep.simulate(4, seed=5)
    out = jax.jit(jax.vmap(lambda y: f(y).objective))(jnp.asarray(Y))
    np.testing.assert_allclose(out, [sleep.refit(y).objective for y in Y], rtol=1e-10)


@pytest.mark.slow
def test_a_loss_of_the_estimates_has_a_gradient(sleep):
    """jax.grad of a scalar function of the fit, against a central difference along a random direction."""
    f = sleep.fit_function()
    y0 = np.asarray(sleep.problem.design.y, float)

    def loss(y):
        e = f(y)
        return e.beta[1] ** 2 + e.sigma + jnp.sum(e.theta)

    g = np.asarray(jax.grad(loss)(jnp.asarray(y0)))
    v = np.random.default_rng(2).normal(size=y0.size)
    h = 1e-3
    fd = (float(loss(jnp.asarray(y0 + h * v))) - float(loss(jnp.asarray(y0 - h * v)))) / (2 * h)
    np.testing.assert_allclose(g @ v, fd, rtol=1e-5)


@pytest.mark.slow
def test_boundary_derivative():
    """dyestuff2 is singular (θ̂ = 0): θ̂ stays 0 under small perturbations of y, and its derivative is 0; β̂'s and
    σ̂'s derivatives are those of the fit without random effects, as refits show."""
    m = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff2"))
    assert m.theta[0] == 0
    f = m.fit_function()
    y0 = np.asarray(m.problem.design.y, float)
    J = np.asarray(jax.jacrev(lambda y: flat(f(y)))(jnp.asarray(y0)))
    h = 1e-4 * np.std(y0)
    for i in (0, 17):
        fd = central(m, i, h)
        assert fd[2] == 0 and J[2, i] == 0  # θ: held at zero by the refits and by the derivative
        np.testing.assert_allclose(J[:2, i], fd[:2], rtol=1e-6)
        np.testing.assert_allclose(J[0, i], 1 / m.nobs, rtol=1e-9)  # β̂ is the mean at θ = 0
