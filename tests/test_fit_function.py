"""m.fit_function: a pure JAX fit whose derivatives come from the implicit function theorem, checked against central
differences of m.refit (β̂, σ̂, θ̂, b̂; in y and in the weights), forward against reverse mode, jit and vmap against
refits, and the boundary rule (θ entries held at zero have derivative 0) on a singular fit.

Every program here runs once, so compiling is nearly all of its time: they are jitted with the quick compile options
(fitting.loop.quick_options, the options of small models' single fits), and each derivative check is one program."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mixedjax as mj
from mixedjax.batch.function import Estimates
from mixedjax.fitting.loop import quick_options

FORMULA = "reaction ~ 1 + days + (1 + days | subj)"


@pytest.fixture(scope="module")
def sleep():
    return mj.lmm(FORMULA, mj.dataset("sleepstudy"))


def jit(fn):
    """jax.jit with the quick compile options (a program run once: its compile is the cost)."""
    return jax.jit(fn, compiler_options=quick_options())


def flat(e):
    """β̂, σ̂, θ̂ and b̂ in one vector."""
    return jnp.concatenate([e.beta, e.sigma[None], e.theta] + [b.reshape(-1) for b in e.b])


def flat_model(m):
    return np.concatenate([m.fixef.to_numpy(), [m.sigma], m.theta] + [r.to_numpy().reshape(-1)
                                                                      for r in m.ranef().values()])


def central(m, v, h, y=None, w=None):
    """Central difference of the refitted (β̂, σ̂, θ̂, b̂) along the direction v of y (w None) or of w."""
    y = np.array(m.problem.design.y if y is None else y, float)
    if w is None:
        return (flat_model(m.refit(y + h * v)) - flat_model(m.refit(y - h * v))) / (2 * h)
    return (flat_model(m.refit(y, weights=w + h * v)) - flat_model(m.refit(y, weights=w - h * v))) / (2 * h)


def directional(g, x0, v, u):
    """(J v, uᵀJ) for the Jacobian J of g at x0, in one jitted program with one fit: jax.linearize's linear map
    (forward mode, what jax.jvp and jax.jacfwd evaluate) and jax.linear_transpose of it (reverse mode: jax.vjp,
    jax.grad and jax.jacrev are this transpose)."""
    def both(x0, v, u):
        _, lin = jax.linearize(g, x0)
        (uJ,) = jax.linear_transpose(lin, x0)(u)
        return lin(v), uJ

    Jv, uJ = jit(both)(x0, v, u)
    return np.asarray(Jv), np.asarray(uJ)


def assert_derivative(J, fd, rtol):
    scale = np.abs(fd) + 1e-3 * np.max(np.abs(fd)) + 1e-12
    assert np.max(np.abs(J - fd) / scale) < rtol, (J, fd)


def check_y_derivatives(m):
    """The Jacobian of m's fit_function in y along a random direction v (forward mode) against the central
    difference of m.refit along v (h = 1e-4 sd(y)), and reverse mode's uᵀJ against it (uᵀ(Jv) = (uᵀJ)v for a
    random u). Returns the function, y and the random generator, for checks that follow."""
    f = m.fit_function()
    y0 = np.asarray(m.problem.design.y, float)
    rng = np.random.default_rng(0)
    v = rng.normal(size=y0.size)
    u = rng.normal(size=flat_model(m).size)
    Jv, uJ = directional(lambda y: flat(f(y)), jnp.asarray(y0), jnp.asarray(v), jnp.asarray(u))
    np.testing.assert_allclose(uJ @ v, u @ Jv, rtol=1e-9)
    assert_derivative(Jv, central(m, v, 1e-4 * np.std(y0)), 1e-4)
    return f, y0, rng


def test_estimates_and_jit(sleep):
    f = sleep.fit_function()
    y = jnp.asarray(sleep.problem.design.y)
    e = jit(f)(y)
    assert isinstance(e, Estimates) and bool(e.converged)
    np.testing.assert_allclose(e.objective, sleep.objective, rtol=1e-9)
    np.testing.assert_allclose(e.theta, sleep.theta, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(e.beta, sleep.fixef.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(e.b[0], sleep.ranef()["subj"].to_numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_derivatives_in_y_against_refits(sleep):
    """The Jacobian of (β̂, σ̂, θ̂, b̂) in y along a random direction v (forward mode) against the central difference
    of m.refit along v (h = 1e-4 sd(y)), and reverse mode's uᵀJ against it (uᵀ(Jv) = (uᵀJ)v for a random u): one
    direction mixes every observation, so two refits check what a column per observation would."""
    check_y_derivatives(sleep)


@pytest.mark.slow
def test_derivatives_in_weights_against_refits(sleep):
    """As in y, in the prior weights (at random weights w0, along a random direction with entries of ±0.5; jacfwd
    alone: forward against reverse mode is checked in y, through the same implicit rule)."""
    f = sleep.fit_function()
    y0 = jnp.asarray(sleep.problem.design.y)
    rng = np.random.default_rng(1)
    w0 = rng.uniform(0.5, 2.0, sleep.nobs)
    v = rng.choice([-0.5, 0.5], sleep.nobs)
    Jv = np.asarray(jit(jax.jacfwd(lambda t: flat(f(y0, jnp.asarray(w0) + t * jnp.asarray(v)))))(0.0))
    assert_derivative(Jv, central(sleep, v, 1e-5, w=w0), 1e-4)


@pytest.mark.slow
def test_vmap_equals_refits(sleep):
    f = sleep.fit_function()
    Y = sleep.simulate(4, seed=5)
    out = jit(jax.vmap(lambda y: f(y).objective))(jnp.asarray(Y))
    np.testing.assert_allclose(out, [sleep.refit(y).objective for y in Y], rtol=1e-10)


@pytest.mark.slow
def test_a_loss_of_the_estimates_has_a_gradient(sleep):
    """jax.grad of a scalar function of the fit, against a central difference along a random direction."""
    f = sleep.fit_function()
    y0 = np.asarray(sleep.problem.design.y, float)

    def loss(y):
        e = f(y)
        return e.beta[1] ** 2 + e.sigma + jnp.sum(e.theta)

    def loss_of_refit(y):  # the same loss of m.refit(y) (whose program the other tests have compiled)
        r = sleep.refit(y)
        return r.fixef.to_numpy()[1] ** 2 + r.sigma + np.sum(r.theta)

    # jitted: a derivative through the fit run op by op costs several times its compile
    g = np.asarray(jit(jax.grad(loss))(jnp.asarray(y0)))
    v = np.random.default_rng(2).normal(size=y0.size)
    h = 1e-3
    fd = (loss_of_refit(y0 + h * v) - loss_of_refit(y0 - h * v)) / (2 * h)
    np.testing.assert_allclose(g @ v, fd, rtol=1e-5)


@pytest.mark.slow
def test_boundary_derivative():
    """dyestuff2 is singular (θ̂ = 0): θ̂ stays 0 under small perturbations of y, and its derivative is 0; β̂'s and
    σ̂'s derivatives are those of the fit without random effects, as refits show (along a random direction v)."""
    m = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff2"))
    assert m.theta[0] == 0
    f = m.fit_function()
    y0 = np.asarray(m.problem.design.y, float)
    v = np.random.default_rng(3).normal(size=y0.size)
    Jv = np.asarray(jit(jax.jacfwd(lambda t: flat(f(jnp.asarray(y0) + t * jnp.asarray(v)))))(0.0))
    fd = central(m, v, 1e-4 * np.std(y0))
    assert fd[2] == 0 and Jv[2] == 0  # θ: held at zero by the refits and by the derivative
    np.testing.assert_allclose(Jv[:2], fd[:2], rtol=1e-6)
    np.testing.assert_allclose(Jv[0], v.sum() / m.nobs, rtol=1e-9)  # β̂ is the mean at θ = 0
