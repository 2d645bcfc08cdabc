"""The L-BFGS loop: L-BFGS directions (Nocedal & Wright's two-loop recursion) and a backtracking line search, in one
pure ``lax.while_loop``.

θ is unconstrained: d(θ) does not change when a column of λ changes sign, so no bounds are needed (solve.py
rectifies the signs afterwards). Every evaluation is written to a buffer in the loop state, which becomes the fit
log without a host callback, so the compiled loop can be cached on disk. Kept instead of optimistix's BFGS / L-BFGS:
it needed 1.2–7× fewer evaluations on every benchmark model (docs/performance.md).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..blocks.plan import Layout
from ..core.objective import deviance
from .options import OPTIMIZERS, FitOptions  # noqa: F401  (re-exported)

NOISE = 1e-12  # relative rounding noise of d allowed in the line search's sufficient-decrease test
SEARCH, PROBE, DONE = 0, 1, 2  # the loop's modes: line search, Hessian probes, finished


class Memory(NamedTuple):
    """The L-BFGS memory: the last steps ds = Δθ, gradient changes dg and weights rho = 1 / dg'ds (0 where dg'ds = 0)
    in a ring of ``m`` slots (slot count % m is the oldest), and the point and gradient of the last update."""

    count: jax.Array
    params: jax.Array
    grads: jax.Array
    ds: jax.Array
    dg: jax.Array
    rho: jax.Array


def memory_init(theta, m: int) -> Memory:
    """The empty memory of m pairs for θ like ``theta``."""
    z = jnp.zeros((m,) + theta.shape, theta.dtype)
    return Memory(jnp.asarray(0, jnp.int32), jnp.zeros_like(theta), jnp.zeros_like(theta), z, z,
                  jnp.zeros(m, theta.dtype))


def lbfgs_direction(g, mem: Memory, th) -> tuple[jax.Array, Memory]:
    """The L-BFGS direction H g at (th, g) after adding the step to th to the memory: the two-loop recursion of
    Nocedal & Wright (Algorithm 7.4), H₀ = γ I with γ = ds'dg / dg'dg of the newest pair, and min(1, 1/‖g‖) before
    any (the first step then stays within a unit ball). The same arithmetic as optax's ``scale_by_lbfgs``, which
    the loop used before: importing optax cost a new process 0.07 s."""
    m = mem.rho.shape[0]
    first = mem.count == 0
    oldest, newest = mem.count % m, (mem.count - 1) % m
    s, y = th - mem.params, g - mem.grads
    sy = jnp.tensordot(y, s, 1)
    w = jnp.where(sy == 0.0, 0.0, 1.0 / sy)
    s, y, w = (jnp.where(first, jnp.zeros_like(v), v) for v in (s, y, w))
    ds, dg, rho = mem.ds.at[newest].set(s), mem.dg.at[newest].set(y), mem.rho.at[newest].set(w)
    yy = jnp.sum(jnp.square(y))
    gamma = jnp.where(yy > 0.0, jnp.tensordot(y, s, 1) / yy, 1.0)
    gamma = jnp.where(first, jnp.minimum(1.0, 1.0 / jnp.sqrt(jnp.sum(jnp.square(g)))), gamma)
    order = (oldest + jnp.arange(m)) % m

    def newest_first(v, i):
        a = rho[i] * jnp.tensordot(ds[i], v, 1)
        return v + (-a) * dg[i], a

    def oldest_first(v, ia):
        i, a = ia
        b = rho[i] * jnp.tensordot(dg[i], v, 1)
        return v + (a - b) * ds[i], b

    v, alphas = jax.lax.scan(newest_first, g, order, reverse=True)
    v, _ = jax.lax.scan(oldest_first, gamma * v, (order, alphas))
    return v, Memory(mem.count + 1, th, g, ds, dg, rho)


class LoopState(NamedTuple):
    """The loop's carry. mode: SEARCH, PROBE or DONE. th, f, g: the accepted point, its value and gradient (in the
    optimiser's units φ = θ / scale). lb: the L-BFGS memory. dirn, slope: the search direction and its slope.
    t, k: the trial step and the line search's trial count. it: iterations. status: the stopping rule's code
    (solve.RESULTS). j, gs: the Hessian probe index and the probed gradients. buf_th, buf_f: the fit log. ne: its
    length (line-search evaluations)."""

    mode: jax.Array
    th: jax.Array
    f: jax.Array
    g: jax.Array
    lb: Memory
    dirn: jax.Array
    slope: jax.Array
    t: jax.Array
    k: jax.Array
    it: jax.Array
    status: jax.Array
    j: jax.Array
    gs: jax.Array
    buf_th: jax.Array
    buf_f: jax.Array
    ne: jax.Array


class LoopResult(NamedTuple):
    """What the loop returns: θ (θ units), its value, the stopping code, iterations, the gradient and the Hessian by
    forward differences of it (θ units, and ``hessian_phi`` in the optimiser's), the fit log and its length."""

    theta: jax.Array
    value: jax.Array
    status: jax.Array
    iterations: jax.Array
    gradient: jax.Array
    hessian: jax.Array
    hessian_phi: jax.Array
    log_theta: jax.Array
    log_value: jax.Array
    feval: jax.Array


def _show_live(search, ne, theta, value) -> None:
    """One live verbose line: line-search evaluation ne + 1 (Hessian probes are not printed, as not logged)."""
    from .bobyqa import print_eval

    if search:
        print_eval(int(ne) + 1, np.asarray(theta), float(value))


def lbfgs_loop(objective, theta0, scale, args, opts: FitOptions, shift=0.0):
    """The whole fit as one pure function: L-BFGS directions (lbfgs_direction), a backtracking (Armijo) line search,
    then the Hessian by forward differences of the exact gradient (n more gradients; it serves the convergence check,
    while ``LinearMixedModel.hessian`` gives the exact one).

    The loop is flat: each pass evaluates d and ∇d once, at a line-search trial or at a Hessian probe, so the
    value-and-gradient is compiled once (compile time is most of a cold start) and ``jax.vmap`` over fits runs no
    nested loops. Every line-search evaluation (θ, d) is written to a fixed-size buffer in the loop state, so the fit
    log needs no host callback and the compiled loop can be cached on disk. A trial whose objective or gradient is
    not finite (a failed Cholesky gives NaN under jit) is rejected and the step shortened.
    """
    dtype = theta0.dtype
    # optimise over φ = θ / scale (scale is 1 except for random-effects columns of extreme size); ``shift`` is the
    # objective's dependence on the units of the data, which the relative tolerances ignore
    theta0 = theta0 / scale

    def plain(phi):
        return objective(phi * scale, args)

    vg = jax.value_and_grad(plain)
    n, cap = theta0.size, opts.maxeval

    def direction(th, g, lb, it):
        """The L-BFGS direction at an accepted point; iteration 0 evaluates θ₀ itself (a zero direction)."""
        first = it == 0
        dirn, lb_new = lbfgs_direction(g, lb, th)
        slope = -jnp.vdot(g, dirn)
        restart = ~first & ~(slope < 0)  # not a descent direction: restart from the scaled gradient
        dirn = jnp.where(restart, g / jnp.maximum(1.0, jnp.linalg.norm(g)), dirn)
        slope = jnp.where(restart, -jnp.vdot(g, dirn), slope)
        dirn = jnp.where(first, jnp.zeros_like(dirn), dirn)
        lb = jax.tree.map(lambda old, new: jnp.where(first, old, new), lb, lb_new)
        return dirn, slope, lb

    def probe_step(th, j):
        """Forward-difference probe j of n: h_j e_j."""
        return (jnp.arange(n) == j) * (1e-5 * jnp.maximum(1.0, jnp.abs(th)))

    def body(c: LoopState) -> LoopState:
        mode, th, f, g, lb, dirn, slope, t, k, it, status, j, gs, buf_th, buf_f, ne = c
        search = mode == SEARCH
        x = jnp.where(search, th - t * dirn, th + probe_step(th, j))
        fx, gx = vg(x)
        if opts.live:  # verbose: the evaluation printed as it happens (the log below holds the same ones)
            jax.debug.callback(_show_live, search, ne, x, fx, ordered=True)
        # line search: log the trial, test the Armijo condition, or shorten the step by quadratic interpolation
        i = jnp.minimum(ne, cap - 1)
        buf_th = jnp.where(search, buf_th.at[i].set(x), buf_th)
        buf_f = jnp.where(search, buf_f.at[i].set(fx), buf_f)
        ne = ne + search
        finite = jnp.isfinite(fx) & jnp.all(jnp.isfinite(gx))
        # Armijo, with room for the objective's rounding noise (about 1e-12 of |d| as computed, the units' shift
        # included, since that is what gets rounded): near the optimum a trial at a zero gradient can come out a few
        # 1e-10 above a worse point (penicillin), and rejecting it sent the search wandering among noise
        ok = finite & (fx <= f + 1e-4 * t * slope + NOISE * jnp.abs(f))
        tq = -slope * t * t / (2.0 * (fx - f - slope * t))
        t_short = jnp.where(finite, jnp.clip(tq, 0.1 * t, 0.5 * t), 0.1 * t)
        ended = search & (ok | (k + 1 >= opts.max_linesearch))
        # the end of an iteration: keep the curvature pairs positive (else restart the L-BFGS memory), test the
        # stopping rules, accept the point if the search succeeded
        sy = jnp.vdot(x - th, gx - g)
        lb = jax.tree.map(lambda fresh, cur: jnp.where(ended & (it > 0) & ~(sy > 0), fresh, cur),
                          memory_init(th, opts.memory), lb)
        f_abs = jnp.maximum(1.0, jnp.abs(fx - shift))
        new = jnp.where(jnp.max(jnp.abs(gx)) <= opts.gtol * f_abs, 1, 0)
        new = jnp.where((new == 0) & (it > 0) & (f - fx <= opts.ftol * f_abs), 2, new)
        new = jnp.where(~ok, 4, new)
        new = jnp.where((new == 0) & (it + 1 >= opts.maxiter), 3, new)
        new = jnp.where((new == 0) & (ne >= cap), 5, new)
        status = jnp.where(ended, new, status).astype(jnp.int32)
        take = ended & ok
        th, f, g = (jnp.where(take, a, b) for a, b in ((x, th), (fx, f), (gx, g)))
        it = it + ended
        # the next iteration's direction, used only when an iteration has just ended without stopping
        d_new, s_new, lb_new = direction(th, g, lb, it)
        nxt = ended & (status == 0)
        dirn, slope = jnp.where(nxt, d_new, dirn), jnp.where(nxt, s_new, slope)
        lb = jax.tree.map(lambda a, b: jnp.where(nxt, a, b), lb_new, lb)
        t = jnp.where(ended, jnp.asarray(1.0, dtype), jnp.where(search, t_short, t))
        k = jnp.where(ended, 0, k + search)
        # Hessian probes after the search has stopped
        gs = jnp.where(search, gs, gs.at[j].set(gx))
        j = j + ~search
        mode = jnp.where(ended & (status != 0), PROBE, mode)
        mode = jnp.where((mode == PROBE) & (j >= n), DONE, mode)
        return LoopState(mode, th, f, g, lb, dirn, slope, t, k, it, status, j, gs, buf_th, buf_f, ne)

    # iteration 0 evaluates θ₀ itself: a zero direction and the empty memory (what direction() gives there, without
    # a second copy of the recursion: its two copies were 0.2 s of the loop's 0.49 s compile on sleepstudy)
    th0, f0, g0, it0 = theta0, jnp.asarray(jnp.inf, dtype), jnp.zeros_like(theta0), 0
    lb0 = memory_init(theta0, opts.memory)
    dirn0, slope0 = jnp.zeros_like(theta0), jnp.zeros((), dtype)
    init = LoopState(jnp.int32(SEARCH), th0, f0, g0, lb0, dirn0, slope0, jnp.asarray(1.0, dtype), jnp.int32(0), jnp.int32(it0),
            jnp.int32(0), jnp.int32(0), jnp.zeros((n, n), dtype), jnp.zeros((cap, n), dtype),
            jnp.full((cap,), jnp.nan, dtype), jnp.int32(0))
    out = jax.lax.while_loop(lambda c: c.mode != DONE, body, init)
    th, f, g, it, status, gs, buf_th, buf_f, ne = out.th, out.f, out.g, out.it, out.status, out.gs, out.buf_th, \
        out.buf_f, out.ne
    h = 1e-5 * jnp.maximum(1.0, jnp.abs(th))
    H = (gs - g) / h[:, None]
    H = (H + H.T) / 2
    return LoopResult(th * scale, f, status, it, g / scale, H / jnp.outer(scale, scale), H, buf_th * scale, buf_f, ne)



# For a small model the compiled loop runs in about a millisecond whatever the code generator does, while its
# optimisation passes are about a quarter of a cold start (sleepstudy: compile 1.44 s -> 1.05 s, fit 1.1 -> 1.6 ms;
# kb07, above the threshold, would run twice as slow). Such models are compiled without LLVM's optimisations and
# without XLA's fusion emitters, which halves the compile again (in one process: sleepstudy 1.30 -> 0.45 s,
# penicillin 1.19 -> 0.58 s, dyestuff 0.98 -> 0.45 s; the loop itself ran in 0.26-0.81 ms either way).
QUICK_OPTIONS = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


@functools.cache
def quick_options() -> dict:
    """QUICK_OPTIONS less any option this XLA rejects (these are XLA's debug options, which come and go between
    versions, and an unknown name or a changed type fails the compile): each is tried on an identity function. The
    answer is kept beside the traced programs (fitting.traces), keyed by the options and the JAX and jaxlib
    versions: the probe's compile was 0.02-0.03 s of every new process's fit."""
    from . import traces

    return traces.remembered("quick-options", QUICK_OPTIONS, _accepted_options)


# For a program that runs once a fit (a GLMM's exact Hessian) LLVM's first optimisation level and no fusion emitters:
# its compile 30-50% shorter than XLA's defaults for a run 8-40% longer (verbagg: 7.8 -> 3.8-6.2 s, 54 -> 73 ms;
# the 100,000-row crossed logistic model 5.9 -> 3.7 s, 290 -> 313 ms; docs/glmm.md, "Performance")
LIGHT_OPTIONS = {"xla_backend_optimization_level": 1, "xla_cpu_use_fusion_emitters": False}


@functools.cache
def light_options() -> dict:
    """LIGHT_OPTIONS less any option this XLA rejects (as quick_options)."""
    from . import traces

    return traces.remembered("light-options", LIGHT_OPTIONS, _accepted_options)


def _accepted_options(options: dict) -> dict:
    def accepted(opts):
        try:
            jax.jit(lambda x: x, compiler_options=opts).lower(0.0).compile()
        except Exception:  # jax.errors.JaxRuntimeError: "No such compile option", "not a valid bool value", ...
            return False
        return True

    if accepted(options):
        return dict(options)
    return {k: v for k, v in options.items() if accepted({k: v})}


QUICK_WORK = 20_000  # flops-like size of one evaluation (see _work) below which quick_options() are used


class WorkParts(NamedTuple):
    """Flops-like parts of one evaluation (fitting.choice weighs them too)."""

    cholesky: float  # the dense block's Cholesky, D³/3
    levels: float  # the per-level diagonal blocks
    pairs: int  # the fill-in pairs (a count: the weight of one is the caller's)
    heavy: float  # the heavy columns' dense product


def work_parts(layout: Layout) -> WorkParts:
    D = layout.dz + layout.p + 1
    return WorkParts(D**3 / 3, sum(t.nlevels * t.s**3 for t in layout.terms), sum(layout.npairs),
                     sum(h * D * D for h in layout.nheavy))


def _work(layout: Layout) -> float:
    """A rough size of one evaluation: the dense Cholesky, the per-level blocks and the fill-in products."""
    return sum(work_parts(layout))


def use_quick(layout: Layout) -> bool:
    """Compile this layout's fit with quick_options()?"""
    return _work(layout) <= QUICK_WORK


_deviance_jit = jax.jit(deviance, static_argnames=("layout", "reml"))
