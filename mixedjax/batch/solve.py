"""One batched fit: the engine's pure ``fitting.solve`` (L-BFGS loop, rectification, zero snapping, verdict, all in
JAX, so it runs under ``jax.vmap``), then Newton polishing of θ̂ so that refits resolve dθ̂/dy."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..blocks.plan import Layout
from ..core.objective import deviance
from ..fitting.options import FitOptions
from ..fitting.solve import RESULTS, Solution, diagonal_indices, lmm_objective, solve as engine_solve, units_shift

Result = RESULTS  # the result codes of a batched fit are the engine's

NEWTON_STEPS = 2
NOISE = 1e-11  # relative rounding noise of d allowed when accepting a Newton step


def free_mask(theta, layout: Layout):
    """True for the θ entries not held at the boundary (a zero diagonal of λ)."""
    free = jnp.ones(theta.shape, bool)
    for i in diagonal_indices(layout):
        free = free.at[i].set(theta[i] != 0)
    return free


def polish(theta, f, H, arrays, layout: Layout, reml: bool, scale):
    """Newton steps θ − H⁻¹∇d with the loop's Hessian (forward differences of the exact gradient, about 1e-5
    relative), each kept only when it lowers max|∇d| without raising d beyond rounding noise. The loop stops at
    max|∇d| ≤ gtol·|d|, which leaves θ̂ about 1e-6 from the optimum; two steps bring it to about 1e-11, so central
    differences of refits resolve dθ̂/dy (and agree with the implicit derivatives). Diagonal entries near zero (on
    or near the boundary) are held."""
    vg = jax.value_and_grad(deviance)
    near = jnp.zeros(theta.shape, bool)
    for i in diagonal_indices(layout):
        near = near.at[i].set(jnp.abs(theta[i] / scale[i]) < 1e-3)
    both = ~near[:, None] & ~near[None, :]
    Hf = jnp.where(both, H, jnp.eye(theta.size, dtype=H.dtype))
    _, g = vg(theta, arrays, layout, reml)
    for _ in range(NEWTON_STEPS):
        step = jnp.linalg.solve(Hf, jnp.where(near, 0.0, g))
        trial = theta - step
        ft, gt = vg(trial, arrays, layout, reml)
        ok = (jnp.isfinite(ft) & jnp.all(jnp.isfinite(gt)) & (jnp.vdot(g, step) > 0)
              & (jnp.max(jnp.abs(gt)) < jnp.max(jnp.abs(g))) & (ft <= f + NOISE * jnp.abs(f)))
        theta, f, g = jnp.where(ok, trial, theta), jnp.where(ok, ft, f), jnp.where(ok, gt, g)
    return theta, f


def solve(theta0, arrays, layout: Layout, reml: bool, opts: FitOptions, scale) -> Solution:
    """Minimise d(θ) from θ₀ with the engine's solve, then polish θ̂ (pure JAX)."""
    sol = engine_solve(lmm_objective(layout, reml), theta0, arrays, layout, opts, scale,
                       units_shift(arrays, layout, reml))
    theta, value = polish(sol.theta, sol.value, sol.hessian, arrays, layout, reml, scale)
    return sol._replace(theta=theta, value=value)
