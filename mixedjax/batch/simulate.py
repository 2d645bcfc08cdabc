"""Responses drawn from a fitted model (lme4's and MixedModels.jl's ``simulate``): new random effects for every
level of every term plus noise, y = offset + Xβ + Σ_k Z_k b_k + σ ε / √w with b_k's rows ~ N(0, σ² λ_k λ_k') and ε ~ N(0, I)."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..blocks.plan import Layout
from ..core.objective import lambdas
from ..errors import ArgumentError


class SimDesign(NamedTuple):
    """The model's design on the device: X (n, p), per term its rows' levels (n,) and columns (n, s_k), the prior
    weights (n,) (residual variance σ²/wᵢ) and the offset (n,)."""

    X: jax.Array
    codes: tuple
    z: tuple
    weights: jax.Array
    offset: jax.Array


def sim_design(problem, weighted_noise=True) -> SimDesign:
    """The design to simulate from; ``weighted_noise=False``: unit weights for the noise (lme4's simulate)."""
    if not isinstance(weighted_noise, (bool, np.bool_)):
        raise ArgumentError(f"weighted_noise must be True or False, not {weighted_noise!r}")
    design, data = problem.design, problem.data
    weights = data.weights if weighted_noise else jnp.ones_like(data.weights)
    return SimDesign(data.X, tuple(jax.device_put(t.codes.astype(np.int32)) for t in design.terms), data.z,
                     weights, data.offset)


def simulate_one(key, theta, beta, sigma, d: SimDesign, layout: Layout):
    """One response (n,), a pure function of the key and the parameters (θ relative to σ, as in the fit)."""
    keys = jax.random.split(key, len(layout.terms) + 1)
    eta = d.offset + d.X @ beta
    for k, (t, lam) in enumerate(zip(layout.terms, lambdas(theta, layout))):
        u = jax.random.normal(keys[k], (t.nlevels, t.s), dtype=jnp.float64)
        b = sigma * u @ lam.T  # rows ~ N(0, σ² λ λ')
        eta = eta + jnp.sum(d.z[k] * b[d.codes[k]], axis=1)
    noise = jax.random.normal(keys[-1], eta.shape, dtype=jnp.float64)
    # a zero weight has infinite residual variance; its row does not enter the fit, so it gets no noise
    return eta + jnp.where(d.weights > 0, sigma * noise / jnp.sqrt(jnp.where(d.weights > 0, d.weights, 1.0)), 0.0)


@functools.cache
def simulate_many():
    """simulate_one vmapped over keys, compiled with the quick options, as the bootstrap's simulation is (one run a
    call, and jax.random's normal sampler is most of its compile)."""
    from ..fitting.loop import quick_options

    return jax.jit(jax.vmap(simulate_one, in_axes=(0, None, None, None, None, None)), static_argnames="layout",
                   compiler_options=quick_options())


@functools.cache
def _split_data():
    """The data of jax.random.split(key, n), compiled with the quick options (a program run once a call: with XLA's
    optimisations its compile was 0.4 s of a cold 1,000-replicate bootstrap)."""
    from ..fitting.loop import quick_options

    return jax.jit(lambda key, n: jax.random.key_data(jax.random.split(key, n)), static_argnums=1,
                   compiler_options=quick_options())


def split_keys(seed, n: int) -> np.ndarray:
    """The data (n, 2) of ``jax.random.split(as_key(seed), n)``: the keys of n replicates."""
    return np.asarray(_split_data()(as_key(seed), int(n)))


def as_key(seed):
    """A jax.random key from None (fresh entropy), an integer seed or a key."""
    if seed is None:
        return jax.random.key(int(np.random.SeedSequence().generate_state(1)[0]))
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        return jax.random.key(int(seed))
    if isinstance(seed, jax.Array) and jnp.issubdtype(seed.dtype, jax.dtypes.prng_key):
        return seed
    if isinstance(seed, jax.Array) and seed.dtype == jnp.uint32 and seed.shape == (2,):
        return jax.random.wrap_key_data(seed)
    raise ArgumentError(f"seed must be None, an integer or a jax.random key, not {seed!r}")


def parameters(model, theta=None, beta=None, sigma=None):
    """The fitted (θ, β, σ), each replaced by the override when given, as float64 arrays of the right shape."""
    def vec(name, value, default, size):
        if value is None:
            return np.asarray(default, float)
        try:
            v = np.asarray(value, float).reshape(-1)
        except (TypeError, ValueError) as err:
            raise ArgumentError(f"{name} must be a sequence of {size} numbers, not {value!r}") from err
        if v.size != size or not np.all(np.isfinite(v)):
            raise ArgumentError(f"{name} must be {size} finite numbers for this model, not {v.tolist()}")
        return v

    th = vec("theta", theta, model.theta, model.problem.layout.ntheta)
    be = vec("beta", beta, model.fixef.to_numpy(), model.problem.design.p)
    if sigma is None:
        s = float(model.sigma)
    else:
        if isinstance(sigma, (bool, np.bool_)) or not np.isscalar(sigma) or not (np.isfinite(sigma) and sigma > 0):
            raise ArgumentError(f"sigma must be a positive finite number, not {sigma!r}")
        s = float(sigma)
    return th, be, s


def simulate(model, nsim=1, seed=None, *, theta=None, beta=None, sigma=None, weighted_noise=True) -> np.ndarray:
    """nsim responses (nsim, nobs) from the model, with the parameters optionally overridden (power analysis)."""
    if isinstance(nsim, (bool, np.bool_)) or not isinstance(nsim, (int, np.integer)) or nsim < 1:
        raise ArgumentError(f"nsim must be a positive integer, not {nsim!r}")
    th, be, s = parameters(model, theta, beta, sigma)
    d = sim_design(model.problem, weighted_noise)
    keys = jax.random.wrap_key_data(split_keys(seed, nsim))
    Y = simulate_many()(keys, jnp.asarray(th), jnp.asarray(be), jnp.float64(s), d,
                      model.problem.layout)
    out = np.asarray(Y)
    out.setflags(write=False)
    return out
