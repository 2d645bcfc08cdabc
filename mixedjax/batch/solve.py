"""One fit as a pure JAX function of (θ₀, arrays): the L-BFGS loop, sign rectification, zero snapping and the
convergence verdict, all traced, so it runs under ``jax.vmap`` (many responses) and ``jax.jit`` (DESIGN.md section 4).

This mirrors fitting/loop.py's host post-fit (``_rectify``, ``_snap``, ``_verdict``) in JAX; the host version stays
the one a single ``lmm`` fit reports. Kept small so it can move onto the engine's ``fitting/solve.py`` when it lands.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..blocks.plan import Layout
from ..core.objective import deviance
from ..fitting.loop import FitOptions, diagonal_indices, fit_loop


class Result(enum.IntEnum):
    """Why a batched fit stopped (the ``result`` array of a FitBatch). CONVERGED_* are converged."""

    CONVERGED_GRADIENT = 1  # the gradient is zero to tolerance
    CONVERGED_OBJECTIVE = 2  # the objective stopped decreasing
    MAXITER = 3  # the iteration limit was reached
    LINESEARCH = 4  # the line search could not decrease the objective
    MAXEVAL = 5  # the evaluation limit was reached
    SADDLE = 6  # stopped where the Hessian in the free directions has a negative eigenvalue
    NONFINITE = 7  # the objective, gradient or Hessian at the result is not finite


class Solution(NamedTuple):
    """A finished fit at one response (every field a JAX array; a leading batch axis under vmap).

    theta: θ̂, rectified (every λ diagonal ≥ 0) and zero-snapped; objective: d(θ̂); result: a Result code (int32);
    converged: bool; iterations, feval: the loop's counts; gradient, hessian: of d in θ at the loop's point (the
    Hessian by forward differences of the gradient); log_theta (maxeval, nθ), log_f (maxeval,): every line-search
    evaluation, NaN past ``feval``.
    """

    theta: jax.Array
    objective: jax.Array
    result: jax.Array
    converged: jax.Array
    iterations: jax.Array
    feval: jax.Array
    gradient: jax.Array
    hessian: jax.Array
    log_theta: jax.Array
    log_f: jax.Array


def rectify_signs(theta, layout: Layout):
    """±1 per θ entry flipping each column of λ_k whose diagonal is negative (d(θ) does not change)."""
    sign = jnp.ones_like(theta)
    for t in layout.terms:
        for j in range(t.s):
            col = [t.theta_offset + i for i, (r, c) in enumerate(t.pattern) if c == j]
            diag = t.theta_offset + t.pattern.index((j, j))
            sign = sign.at[jnp.asarray(col)].set(jnp.where(theta[diag] < 0, -1.0, 1.0))
    return sign


def snap_zeros(theta, f, arrays, layout: Layout, reml: bool, scale, hessian_phi):
    """MixedModels.jl's rule, as fitting/loop._snap: a small diagonal element (or one along a flat direction) is set
    to zero when d rises by at most 1e-5. One extra evaluation of d per diagonal element, in θ order."""
    for i in diagonal_indices(layout):
        flat = jnp.abs(hessian_phi[i, i]) <= 1e-8 * jnp.maximum(1.0, jnp.abs(f))
        small = (theta[i] > 0) & ((theta[i] / scale[i] < 1e-3) | flat)
        trial = theta.at[i].set(0.0)
        ft = deviance(trial, arrays, layout, reml)
        take = small & (ft <= f + 1e-5)
        theta, f = jnp.where(take, trial, theta), jnp.where(take, ft, f)
    return theta, f


def free_mask(theta, layout: Layout):
    """True for the θ entries not held at the boundary (a zero diagonal of λ)."""
    free = jnp.ones(theta.shape, bool)
    for i in diagonal_indices(layout):
        free = free.at[i].set(theta[i] != 0)
    return free


def verdict(status, theta, g, H, layout: Layout):
    """(result code, converged) from the loop's stopping rule and the Hessian in the free directions (_verdict)."""
    free = free_mask(theta, layout)
    finite = jnp.all(jnp.isfinite(g)) & jnp.all(jnp.isfinite(H))
    both = free[:, None] & free[None, :]
    eye = jnp.eye(theta.size, dtype=H.dtype)
    Hf = jnp.where(both, jnp.where(finite, H, 0.0), 0.0)
    # the held-at-zero directions get a large positive curvature so they never count as negative
    big = 1.0 + jnp.max(jnp.abs(Hf))
    eig = jnp.linalg.eigvalsh(jnp.where(both, Hf, eye * big))
    saddle = jnp.min(eig) < -1e-6 * big
    code = jnp.where(~finite, Result.NONFINITE, jnp.where((status == 1) | (status == 2),
                                                          jnp.where(saddle, Result.SADDLE, status), status))
    code = code.astype(jnp.int32)
    return code, (code == Result.CONVERGED_GRADIENT) | (code == Result.CONVERGED_OBJECTIVE)


NEWTON_STEPS = 2
NOISE = 1e-11  # relative rounding noise of d allowed when accepting a Newton step


def polish(theta, f, g, H, arrays, layout: Layout, reml: bool, scale):
    """Newton steps θ − H⁻¹∇d with the loop's Hessian (forward differences of the exact gradient, about 1e-5
    relative), each kept only when it lowers max|∇d| without raising d beyond rounding noise. The loop stops at
    max|∇d| ≤ gtol·|d|, which leaves θ̂ about 1e-6 from the optimum; two steps bring it to about 1e-11, so that
    central differences of refits resolve dθ̂/dy (refits then agree with the implicit derivatives). Diagonal entries
    near zero (candidates for the boundary) are left to the snapping rule."""
    vg = jax.value_and_grad(deviance)
    near = jnp.zeros(theta.shape, bool)
    for i in diagonal_indices(layout):
        near = near.at[i].set(jnp.abs(theta[i] / scale[i]) < 1e-3)
    both = ~near[:, None] & ~near[None, :]
    Hf = jnp.where(both, H, jnp.eye(theta.size, dtype=H.dtype))
    for _ in range(NEWTON_STEPS):
        step = jnp.linalg.solve(Hf, jnp.where(near, 0.0, g))
        trial = theta - step
        ft, gt = vg(trial, arrays, layout, reml)
        ok = (jnp.isfinite(ft) & jnp.all(jnp.isfinite(gt)) & (jnp.vdot(g, step) > 0)
              & (jnp.max(jnp.abs(gt)) < jnp.max(jnp.abs(g))) & (ft <= f + NOISE * jnp.abs(f)))
        theta, f, g = jnp.where(ok, trial, theta), jnp.where(ok, ft, f), jnp.where(ok, gt, g)
    return theta, f, g


def solve(theta0, arrays, layout: Layout, reml: bool, opts: FitOptions, scale) -> Solution:
    """Minimise d(θ) from θ₀ and finish the result, all in JAX."""
    out = fit_loop(theta0, arrays, layout, reml, opts, scale)
    th, f, g = polish(out["theta"], out["f"], out["gradient"], out["hessian"], arrays, layout, reml, scale)
    H = out["hessian"]
    flips = rectify_signs(th, layout)
    th, g, H = th * flips, g * flips, H * jnp.outer(flips, flips)
    th, f = snap_zeros(th, f, arrays, layout, reml, scale, out["hessian_phi"])
    code, converged = verdict(out["status"], th, g, H, layout)
    code = jnp.where(jnp.isfinite(f), code, jnp.int32(Result.NONFINITE))
    converged = converged & jnp.isfinite(f)
    return Solution(th, f, code, converged, out["iterations"], out["feval"], g, H, out["log_theta"], out["log_f"])


solve_jit = jax.jit(solve, static_argnames=("layout", "reml", "opts"))
