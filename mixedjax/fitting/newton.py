"""The batched fits' solve: damped Newton steps with the Hessian by forward differences of the exact gradient, in
one flat ``lax.while_loop`` (Nocedal & Wright 2006, sections 3.1 and 3.4: a modified-Hessian line-search Newton).

Why not the L-BFGS loop (loop.py) under ``jax.vmap``: a vmapped while loop runs every lane until the slowest one
stops, and L-BFGS's slowest refit of a sleepstudy bootstrap took 68 iterations (mean 13), each lane paying for them
all; its fit log (``maxeval`` rows per lane, rewritten on every pass under vmap) grew with the batch. Newton from
each response's moment start (every refit's start, fitting/start.py) converges quadratically in a few steps:
sleepstudy's bootstrap replicates take 2.2 passes on average (7.4 from the fitted θ̂). Each pass evaluates the value and gradient at the point and at nθ forward probes, one
vmapped call, so the program holds a single copy of the objective's value and gradient (compile time is most of a
cold bootstrap).

Every pass is one evaluation of (d, ∇d, H) at a trial point: a line-search trial on the Newton direction (the
Hessian's eigenvalues floored at a small positive value, so the direction descends; its largest entry capped), and
after convergence one polishing Newton step, kept only when it lowers max|∇d| without raising d beyond rounding
noise (it takes θ̂ from about 1e-7 to about 1e-12 of the optimum, so central differences of refits resolve dθ̂/dy).
The sign rectification, MixedModels.jl's zero snapping and the verdict are the engine's (solve.py).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..blocks.plan import Layout
from .options import FitOptions
from .solve import CURVATURE_TOL, RESULTS, Solution, diagonal_indices, finish, lone_diagonals

SEARCH, POLISH, DONE = 0, 1, 2  # the loop's modes
MAX_EVAL = 100  # passes (each nθ + 1 gradients) before the fit stops with max_evaluations; the log's length
MAX_STEP = 1.0  # the largest entry of a step, in the optimiser's units φ = θ / scale
EIG_FLOOR = 1e-8  # eigenvalues of H below this fraction of its largest |eigenvalue| are raised to it
NOISE = 1e-12  # relative rounding noise of d allowed in the sufficient-decrease test (as loop.py's)
POLISH_NOISE = 1e-11  # ... and when accepting the polishing step
NEGATIVE_STEP = 0.1  # the step along a direction of negative curvature (φ units)
BOUNDARY = 0.1  # diagonal entries below this (φ units) that a step moves towards zero are tried at zero


class NewtonState(NamedTuple):
    """The loop's carry (φ units). mode: SEARCH, POLISH or DONE. th, f, g, H: the accepted point, its value,
    gradient and Hessian. dirn, slope: the step direction and gᵀ·(−dirn). t: the trial step; k: trials in this line
    search. it: accepted iterations. status: the stopping rule's code (solve.RESULTS). ne: passes made.
    buf_th, buf_f: every pass's trial point and value (the fit log). plain, plain_slope: the unmodified Newton
    direction and its slope, tried next when a trial at the boundary (to_boundary) fails. at_zero: the current trial
    is such a boundary trial. gate: per θ entry, the size below which a boundary trial is made (BOUNDARY, halved
    to half the entry's size each time its trial fails)."""

    mode: jax.Array
    th: jax.Array
    f: jax.Array
    g: jax.Array
    H: jax.Array
    dirn: jax.Array
    slope: jax.Array
    t: jax.Array
    k: jax.Array
    it: jax.Array
    status: jax.Array
    ne: jax.Array
    buf_th: jax.Array
    buf_f: jax.Array
    plain: jax.Array
    plain_slope: jax.Array
    at_zero: jax.Array
    gate: jax.Array


def probes(phi):
    """The forward-difference steps h_j (the loop's: 1e-5 · max(1, |φ_j|))."""
    return 1e-5 * jnp.maximum(1.0, jnp.abs(phi))


def value_gradient_hessian(vg, phi):
    """d, ∇d and the symmetrised forward-difference Hessian at φ, from vg at φ and at its nθ probes (one vmapped
    call, so one copy of the value and gradient in the compiled program)."""
    h = probes(phi)
    pts = jnp.concatenate([phi[None, :], phi[None, :] + jnp.diag(h)])
    fs, gs = jax.vmap(vg)(pts)
    H = (gs[1:] - gs[0][None, :]) / h[:, None]
    return fs[0], gs[0], (H + H.T) / 2


def newton_direction(g, H, held):
    """The modified Newton direction: Σ v vᵀg / λ over H's positive eigenvalues (floored at a small fraction of the
    largest), and along each eigenvector of negative (or negligible) curvature a step of NEGATIVE_STEP downhill, so
    the direction descends whatever H's inertia and leaves a saddle (at a zero diagonal of λ with negative curvature,
    1/|λ| steps would only double θ_ii each pass); zero in the ``held`` entries, its largest entry capped at
    MAX_STEP."""
    both = ~held[:, None] & ~held[None, :]
    Hf = jnp.where(both, H, jnp.eye(g.size, dtype=H.dtype))
    lam, V = jnp.linalg.eigh(jnp.where(jnp.isfinite(Hf), Hf, 0.0))
    floor = EIG_FLOOR * jnp.maximum(jnp.max(jnp.abs(lam)), 1e-300)
    c = V.T @ jnp.where(held, 0.0, g)
    c = jnp.where(lam > floor, c / jnp.where(lam > floor, lam, 1.0), jnp.sign(c) * NEGATIVE_STEP)
    d = jnp.where(held, 0.0, V @ c)
    big = jnp.max(jnp.abs(d))
    return jnp.where(big > MAX_STEP, d * (MAX_STEP / big), d)


def trapped(phi, H, lone):
    """Lone diagonal entries at zero where d curves downwards: d is even in such an entry, so its gradient there is
    zero, but zero is a maximum along it, not a boundary minimum (a lane that tried zero and held it would stop
    there, converged, while an interior optimum lies lower). The threshold is the verdict's (solve.verdict)."""
    return lone & (phi == 0) & (jnp.diagonal(H) < -CURVATURE_TOL * jnp.maximum(1.0, jnp.max(jnp.abs(H))))


def to_boundary(phi, d, lone, gate):
    """The direction with every small lone diagonal entry that it moves towards zero sent all the way to zero.

    Where the optimum is on the boundary (a singular fit), d is even in the diagonal θ_ii and often close to
    quartic there (sleepstudy's replicates: d − d(0) ≈ 0.17 θ² + 4000 θ⁴), so Newton approaches zero linearly, about
    0.7 a step, and the slowest lane keeps the whole vmapped batch running (23 passes against a mean of 6). The line
    search tries zero first; when zero is not low enough, the next trial is the plain Newton step, and that entry is
    tried at zero again only once it has halved (``gate``)."""
    toward = lone & (jnp.abs(phi) < gate) & (phi * d > 0)
    return jnp.where(toward, phi, d)


def newton_step(c: NewtonState, objective, args, scale, layout: Layout, opts: FitOptions, shift=0.0) -> NewtonState:
    """One pass of the loop (pure; a state already DONE is returned unchanged)."""
    n, cap = c.th.size, c.buf_f.shape[0]
    diag = jnp.zeros(n, bool).at[jnp.asarray(diagonal_indices(layout), jnp.int32)].set(True)
    lone = jnp.zeros(n, bool).at[jnp.asarray(lone_diagonals(layout), jnp.int32)].set(True)

    def plain(phi):
        return objective(phi * scale, args)

    vg = jax.value_and_grad(plain)
    search = c.mode == SEARCH
    x = jnp.where(search, c.th - c.t * c.dirn, c.th - c.dirn)
    fx, gx, Hx = value_gradient_hessian(vg, x)
    i = jnp.minimum(c.ne, cap - 1)
    buf_th, buf_f = c.buf_th.at[i].set(x), c.buf_f.at[i].set(fx)
    ne = c.ne + 1
    finite = jnp.isfinite(fx) & jnp.all(jnp.isfinite(gx))
    first = c.it == 0
    # a line-search trial: Armijo with room for rounding noise, or a shorter step (quadratic interpolation);
    # a failed boundary trial is followed by the plain Newton step instead
    ok = finite & (fx <= c.f + 1e-4 * c.t * c.slope + NOISE * jnp.abs(c.f))
    tq = -c.slope * c.t * c.t / (2.0 * (fx - c.f - c.slope * c.t))
    t_short = jnp.where(finite & (tq > 0), jnp.clip(tq, 0.1 * c.t, 0.5 * c.t), 0.1 * c.t)
    retry = search & ~ok & c.at_zero
    ended = (ok | (c.k + 1 >= opts.max_linesearch) | first) & ~retry
    f_abs = jnp.maximum(1.0, jnp.abs(fx - shift))
    # a zero diagonal with negative curvature is no optimum, however small the gradient or the last decrease
    stuck = jnp.any(trapped(x, Hx, lone))
    new = jnp.where((jnp.max(jnp.abs(gx)) <= opts.gtol * f_abs) & ~stuck, RESULTS.gradient_zero, RESULTS.running)
    new = jnp.where((new == 0) & ~first & ~stuck & (c.f - fx <= opts.ftol * f_abs), RESULTS.objective_stalled, new)
    new = jnp.where(~ok, jnp.where(first, RESULTS.nonfinite, RESULTS.line_search_failed), new)
    new = jnp.where((new == 0) & (c.it + 1 >= opts.maxiter), RESULTS.max_iterations, new)
    new = jnp.where((new == 0) & (ne >= cap), RESULTS.max_evaluations, new)
    status = jnp.where(search & ended, new, c.status).astype(jnp.int32)
    # the polishing step: kept when it lowers max|∇d| without raising d beyond rounding noise
    better = finite & (jnp.max(jnp.abs(gx)) < jnp.max(jnp.abs(c.g))) & (fx <= c.f + POLISH_NOISE * jnp.abs(c.f))
    take = jnp.where(search, ended & ok, better)
    th, f, g, H = (jnp.where(take, a, b) for a, b in ((x, c.th), (fx, c.f), (gx, c.g), (Hx, c.H)))
    it = c.it + (search & ended & ok)
    # what comes next: another trial, a new direction, the polishing step or the end
    converged = (status == RESULTS.gradient_zero) | (status == RESULTS.objective_stalled)
    gate = jnp.where(retry & (c.dirn != c.plain), 0.5 * jnp.abs(c.th), c.gate)
    # both directions from one batched eigendecomposition (two independent LAPACK calls in one program can
    # deadlock jaxlib's CPU kernels: docs/batched.md, "The stalled fits")
    escape = trapped(th, H, lone)
    held = jnp.stack([lone & (th == 0) & ~escape, diag & (jnp.abs(th) < 1e-3)])
    d_plain, d_polish = jax.vmap(newton_direction, in_axes=(None, None, 0))(g, H, held)
    # leave a zero maximum by NEGATIVE_STEP into θ_ii > 0 (its gradient is zero, so the direction has no sign there)
    d_plain = jnp.where(escape, -NEGATIVE_STEP, d_plain)
    d_next = to_boundary(th, d_plain, lone, gate)
    go_on = search & ended & (status == 0)
    dirn = jnp.where(go_on, d_next, jnp.where(search & ended & converged, d_polish, c.dirn))
    dirn = jnp.where(retry, c.plain, dirn)
    slope = jnp.where(go_on, -jnp.vdot(g, d_next), jnp.where(retry, c.plain_slope, c.slope))
    plain_dir = jnp.where(go_on, d_plain, c.plain)
    plain_slope = jnp.where(go_on, -jnp.vdot(g, d_plain), c.plain_slope)
    at_zero = jnp.where(go_on, jnp.any(d_next != d_plain), c.at_zero & ~retry)
    # the next line search starts at twice the step just accepted (at most 1; a zero trial at 1): where the
    # curvature is negative (leaving a saddle at a zero diagonal), a fixed step overshoots and each iteration would
    # otherwise pay for a rejected trial
    t0 = jnp.minimum(1.0, 2.0 * c.t)
    t_new = jnp.where(at_zero, 1.0, jnp.where(first, 1.0, t0))
    t = jnp.where(search & ended, t_new, jnp.where(retry, t0, jnp.where(search, t_short, c.t)))
    k = jnp.where(search & ended, 0, c.k + search)
    mode = jnp.where(search & ended & (status != 0), jnp.where(converged, POLISH, DONE), c.mode)
    mode = jnp.where(c.mode == POLISH, DONE, mode)
    out = NewtonState(mode.astype(jnp.int32), th, f, g, H, dirn, slope, t, k.astype(jnp.int32),
                      it.astype(jnp.int32), status, ne.astype(jnp.int32), buf_th, buf_f, plain_dir,
                      plain_slope, at_zero, gate)
    return jax.tree.map(lambda new, old: jnp.where(c.mode == DONE, old, new), out, c)



def newton_start(theta0, scale) -> NewtonState:
    """The loop's state before pass 0, which evaluates θ₀ itself (a zero direction, accepted when finite)."""
    dtype = theta0.dtype
    phi0 = theta0 / scale
    n = phi0.size
    return NewtonState(jnp.int32(SEARCH), phi0, jnp.asarray(jnp.inf, dtype), jnp.zeros_like(phi0),
                       jnp.eye(n, dtype=dtype), jnp.zeros_like(phi0), jnp.asarray(0.0, dtype),
                       jnp.asarray(1.0, dtype), jnp.int32(0), jnp.int32(0), jnp.int32(0), jnp.int32(0),
                       jnp.zeros((MAX_EVAL, n), dtype), jnp.full((MAX_EVAL,), jnp.nan, dtype), jnp.zeros_like(phi0),
                       jnp.asarray(0.0, dtype), jnp.asarray(False), jnp.full((n,), BOUNDARY, dtype))


def loop_result(c: NewtonState, scale):
    """What loop.lbfgs_loop returns (a loop.LoopResult, θ units) from a finished state."""
    from .loop import LoopResult

    return LoopResult(c.th * scale, c.f, c.status, c.it, c.g / scale, c.H / jnp.outer(scale, scale), c.H,
                      c.buf_th * scale, c.buf_f, c.ne)


def newton_loop(objective, theta0, scale, args, layout: Layout, opts: FitOptions, shift=0.0):
    """The fit from θ₀ (θ units) as one pure function; returns a loop.LoopResult."""
    out = jax.lax.while_loop(lambda c: c.mode != DONE,
                             lambda c: newton_step(c, objective, args, scale, layout, opts, shift),
                             newton_start(theta0, scale))
    return loop_result(out, scale)


def newton_solve(objective, theta0, args, layout: Layout, options: FitOptions, scale, shift=0.0) -> Solution:
    """Minimise ``objective(theta, args)`` from θ₀ by :func:`newton_loop`, then rectify, snap and verify as the
    engine's ``solve`` does (pure JAX; vmappable)."""
    return finish(newton_loop(objective, theta0, scale, args, layout, options, shift), objective, args, layout,
                  scale, theta0)
