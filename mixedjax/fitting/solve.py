"""The fit as a pure solve: ``solve(objective, theta0, args, layout, options) -> Solution`` (docs/design.md, section 6).

The objective is a parameter (the profiled LMM deviance here; the GLMM's Laplace objective plugs in the same way).
The L-BFGS loop (loop.py), the sign rectification, the zero snapping and the convergence verdict from the exact
gradient and the Hessian all run in JAX, so a batch of fits rectifies and verifies itself under ``jax.vmap``. The
host builds the plain-words ``OptSummary`` from a ``Solution`` (summary.py); nothing downstream parses prose.
"""

from __future__ import annotations

import enum
import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..blocks.plan import Layout
from ..core.objective import deviance
from .options import FitOptions


class RESULTS(enum.IntEnum):
    """Why a fit stopped (the ``result`` of a :class:`Solution`). Codes 1 and 2 are converged."""

    running = 0
    gradient_zero = 1  # the gradient is zero to tolerance
    objective_stalled = 2  # an iteration lowered the objective by less than ftol
    max_iterations = 3
    line_search_failed = 4  # the line search could not decrease the objective
    max_evaluations = 5  # the fit log buffer is full
    nonfinite = 6  # the gradient or Hessian at the result is not finite
    saddle_point = 7  # the Hessian in the free directions has a negative eigenvalue
    tolerance_reached = 8  # BOBYQA stopped on its tolerances (derivative-free: not verified)
    failed = 9  # BOBYQA stopped for another reason (NLopt's failure codes)


CONVERGED = (RESULTS.gradient_zero, RESULTS.objective_stalled)


class Solution(NamedTuple):
    """A finished fit, all JAX arrays (batched along a leading axis under ``vmap``).

    theta: the result, rectified (every column of λ with a non-negative diagonal) and zero-snapped.
    value: the objective at ``theta``. result: a :class:`RESULTS` code (int32). converged: result is 1 or 2.
    gradient, hessian: at the optimiser's point before snapping, rectified (the Hessian by forward differences of
        the exact gradient). min_eigenvalue: the smallest eigenvalue of the Hessian in the free directions (those
        not on the boundary θ_ii = 0; +inf when none is free). max_gradient: max |gradient| in the free directions.
    iterations, feval: the optimiser's counts. log_theta, log_value: every line-search evaluation (the first
        ``feval`` rows; NaN after). theta0: the start.
    """

    theta: jax.Array
    value: jax.Array
    result: jax.Array
    converged: jax.Array
    gradient: jax.Array
    hessian: jax.Array
    min_eigenvalue: jax.Array
    max_gradient: jax.Array
    iterations: jax.Array
    feval: jax.Array
    log_theta: jax.Array
    log_value: jax.Array
    theta0: jax.Array


def diagonal_indices(layout: Layout) -> list[int]:
    """θ entries on the diagonal of some λ_k."""
    return [t.theta_offset + i for t in layout.terms for i, (r, c) in enumerate(t.pattern) if r == c]


def lone_diagonals(layout: Layout) -> list[int]:
    """θ entries that are alone in their column of λ (the last column of each term, a scalar term, a diagonal-only
    term): d is even in each of them, so zero is a stationary point in that entry and a boundary optimum can sit
    there. (A diagonal with entries below it is not: d is even in the whole column, not in the diagonal alone.)"""
    out = []
    for t in layout.terms:
        for i, (r, c) in enumerate(t.pattern):
            if r == c and not any(cc == c and rr != r for rr, cc in t.pattern):
                out.append(t.theta_offset + i)
    return out


def _column_of_diagonal(layout: Layout) -> np.ndarray:
    """For each θ entry, the θ index of the diagonal of its column of λ (columns flip sign together)."""
    out = np.empty(layout.ntheta, np.int64)
    for t in layout.terms:
        for i, (r, c) in enumerate(t.pattern):
            out[t.theta_offset + i] = t.theta_offset + t.pattern.index((c, c))
    return out


def rectify(theta, layout: Layout):
    """±1 per θ entry: −1 on every column of λ_k whose diagonal is negative (d(θ) does not change). A numpy θ gets a
    numpy answer (host callers: no small eager JAX programs to compile in a new process)."""
    xp = np if isinstance(theta, np.ndarray) else jnp
    return xp.where(theta[_column_of_diagonal(layout)] < 0, -1.0, 1.0)


SNAP_SMALL = 1e-3  # a diagonal θ entry below this (in the optimiser's units) is tried at zero ...
SNAP_RISE = 1e-5  # ... and set to zero when the objective rises by at most this (MixedModels.jl's rule)


def snap(objective, theta, value, args, layout: Layout, scale, hess_phi):
    """MixedModels.jl's rule: set a small diagonal element to zero when the objective rises by at most SNAP_RISE;
    also try zero along a direction where the objective is flat (a zero Hessian diagonal in the optimiser's units:
    e.g. a random effect that duplicates a fixed one; ``hess_phi`` None skips that test). The diagonals are tried in
    turn by one loop, so the program holds one copy of the objective, not one per diagonal (sleepstudy's fit
    program: 204 -> 186 kernels), and each trial is evaluated only when its condition holds (lax.cond)."""
    diag = np.asarray(diagonal_indices(layout), np.int32)

    def trial_at(k, c):
        theta, value = c
        i = jnp.asarray(diag)[k]
        flat = False if hess_phi is None else jnp.abs(hess_phi[i, i]) <= 1e-8 * jnp.maximum(1.0, jnp.abs(value))
        try_it = (theta[i] > 0) & ((theta[i] / scale[i] < SNAP_SMALL) | flat)
        trial = theta.at[i].set(0.0)
        ft = jax.lax.cond(try_it, lambda t: objective(t, args), lambda t: jnp.asarray(jnp.inf, value.dtype), trial)
        take = try_it & (ft <= value + SNAP_RISE)
        return jnp.where(take, trial, theta), jnp.where(take, ft, value)

    if diag.size == 0:
        return theta, value
    return jax.lax.fori_loop(0, diag.size, trial_at, (theta, value))


def snap_host(deviance, theta: np.ndarray, value: float, layout: Layout, scale) -> tuple[np.ndarray, float]:
    """:func:`snap` without the flatness test, on the host, for a host optimiser's result: each trial is one call
    of ``deviance(theta) -> d`` (BOBYQA's compiled objective), made only for an entry below SNAP_SMALL (most fits
    have none, so no program holds the trials' objectives)."""
    theta = np.array(theta, float)
    for i in diagonal_indices(layout):
        if theta[i] > 0 and theta[i] / scale[i] < SNAP_SMALL:
            trial = theta.copy()
            trial[i] = 0.0
            ft = float(deviance(trial))
            if ft <= value + SNAP_RISE:
                theta, value = trial, ft
    return theta, value


CURVATURE_TOL = 1e-6  # negative curvature below −this × the Hessian's scale is not rounding noise


def verdict(code, theta, g, H, layout: Layout):
    """The result code after the checks (finite derivatives, no negative curvature in the free directions), the
    max |gradient| and the smallest Hessian eigenvalue over the free directions."""
    diag = np.asarray(diagonal_indices(layout), np.int64)
    free = jnp.ones(theta.shape, bool).at[diag].set(theta[diag] != 0)
    finite = jnp.all(jnp.isfinite(g)) & jnp.all(jnp.isfinite(H))
    gmax = jnp.max(jnp.where(free, jnp.abs(g), 0.0))
    # eigenvalues of H on the free directions: the fixed ones get a diagonal c above every free eigenvalue (Gershgorin:
    # |λ| ≤ n·max|H|) and no coupling. c stays of H's magnitude, since eigvalsh's absolute error is eps·‖Hf‖.
    Hfree = jnp.where(free[:, None] & free[None, :], jnp.where(finite, H, 0.0), 0.0)
    c = 2.0 * (1.0 + theta.size * jnp.max(jnp.abs(Hfree)))
    eig = jnp.linalg.eigvalsh(Hfree + jnp.diag(jnp.where(free, 0.0, c)))
    emin = jnp.where(jnp.any(free), jnp.min(eig), jnp.inf)
    escale = jnp.max(jnp.where(eig < c / 2, jnp.abs(eig), 0.0))
    converged = (code == RESULTS.gradient_zero) | (code == RESULTS.objective_stalled)
    code = jnp.where(converged & ~finite, RESULTS.nonfinite, code)
    tol = CURVATURE_TOL * jnp.maximum(1.0, escale)
    # a lone diagonal held at zero (d even in it, so its gradient is zero) must curve upwards there, else zero is a
    # maximum along it and an interior optimum lies lower
    lone = np.zeros(theta.shape, bool)
    lone[np.asarray(lone_diagonals(layout), np.int64)] = True
    trapped = jnp.any(jnp.asarray(lone) & (theta == 0) & (jnp.diagonal(H) < -tol))
    code = jnp.where(converged & finite & ((emin < -tol) | trapped), RESULTS.saddle_point, code)
    return code.astype(jnp.int32), gmax, emin


def _solve(objective, theta0, args, layout: Layout, options: FitOptions, scale, shift):
    """solve, unjitted (see :func:`solve`)."""
    from .loop import lbfgs_loop

    return finish(lbfgs_loop(objective, theta0, scale, args, options, shift), objective, args, layout, scale, theta0)


def finish(out, objective, args, layout: Layout, scale, theta0) -> Solution:
    """A Solution from an optimiser's result (a loop.LoopResult, θ units): rectified, snapped and verified. The
    L-BFGS solve and the batched Newton solve (newton.py) both end here."""
    flips = rectify(out.theta, layout)
    th, g, H = out.theta * flips, out.gradient * flips, out.hessian * jnp.outer(flips, flips)
    th, value = snap(objective, th, out.value, args, layout, scale, out.hessian_phi)
    code, gmax, emin = verdict(out.status, th, g, H, layout)
    converged = (code == RESULTS.gradient_zero) | (code == RESULTS.objective_stalled)
    return Solution(th, value, code, converged, g, H, emin, gmax, out.iterations, out.feval, out.log_theta,
                    out.log_value, theta0)


_STATIC = ("objective", "layout", "options")
_solve_jit = jax.jit(_solve, static_argnames=_STATIC)


@functools.cache
def _solve_jit_quick():
    """_solve jitted with the small-model compiler options (loop.quick_options)."""
    from .loop import quick_options

    return jax.jit(_solve, static_argnames=_STATIC, compiler_options=quick_options())


def solve(objective: Callable, theta0, args, layout: Layout, options: FitOptions = FitOptions(), scale=None,
          shift=0.0) -> Solution:
    """Minimise ``objective(theta, args)`` from ``theta0`` and verify the result, all in JAX.

    ``objective`` must be hashable and stable (it is a static argument: use :func:`lmm_objective` or a module-level
    function); ``args`` is a pytree of arrays. ``scale``: the units of θ the optimiser works in (default 1).
    ``shift``: the objective's dependence on the units of the data, which the relative tolerances ignore. Under a
    user's ``jax.jit`` or ``jax.vmap`` it runs the plain loop; at top level, small models get the quick-compile
    variant (loop.QUICK_WORK).
    """
    from .loop import use_quick

    theta0 = jnp.asarray(theta0, float)
    scale = jnp.ones_like(theta0) if scale is None else jnp.asarray(scale, float)
    traced = any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves((theta0, scale, args, shift)))
    fn = _solve_jit if traced or not use_quick(layout) else _solve_jit_quick()
    return fn(objective, theta0, args, layout, options, scale, shift)


@functools.cache
def lmm_objective(layout: Layout, reml: bool):
    """The profiled LMM deviance (or REML criterion) as ``f(theta, arrays)``: one function object per (layout, reml),
    so equal designs share their compiled fits."""
    def f(theta, arrays):
        return deviance(theta, arrays, layout, reml)

    return f


def units_shift(arrays, layout: Layout, reml: bool):
    """The LMM deviance's dependence on the units of y and on the weights (ignored by the relative tolerances)."""
    dof = layout.n - layout.p if reml else layout.n
    return dof * arrays.log_yscale2 - arrays.log_wdet
