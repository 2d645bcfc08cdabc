"""Many fits on a fixed set of lanes that refill as fits finish: the compiled program behind ``fit_many`` and
``bootstrap``.

``jax.vmap`` of a fit's while loop runs every lane until the slowest one stops: a sleepstudy bootstrap's Newton
refits from θ̂ needed 7.5 passes on average but 40–60 for the slowest of 256, so a vmapped chunk made about 8 times
the passes it needed (from each response's moment start, the start now: 2.2 on average, 19 at most of 1,000). Here a single ``lax.while_loop`` carries ``lanes`` fits, each pass advances every lane by one
Newton pass (fitting/newton.newton_step under vmap, the same step the single fit runs), and a lane whose fit is
done writes its result and takes the next response of the queue. The program ends when the queue is empty and
every lane is done, so its passes are about (Σ passes) / lanes plus one slowest fit. Each row starts at its
response's moment start (function.start_at), computed for the whole chunk before the loop. After the loop, each fit is
rectified, snapped and verified and its β̂, σ̂ and d are computed (vmapped over the items, no loop).

Each row is a response (or a response and its weights); the bootstrap's are simulated on the device by a program
of their own, so responses never leave the device, and nothing returns to the host until the whole chunk is done.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..blocks.plan import Layout
from ..fitting.loop import quick_options
from ..fitting.newton import DONE, loop_result, newton_start, newton_step
from ..fitting.options import FitOptions
from ..fitting.solve import finish, lmm_objective, units_shift
from .function import Context, _reported, arrays_at, start_at
from .sharding import on_devices


class Fitted(NamedTuple):
    """What a batch keeps of each fit (no conditional modes and no log, which would grow with the batch)."""

    theta: jax.Array
    beta: jax.Array
    sigma: jax.Array
    objective: jax.Array
    converged: jax.Array
    result: jax.Array
    iterations: jax.Array
    feval: jax.Array


class Raw(NamedTuple):
    """A finished loop's state kept per item (θ units): θ, d, the stopping code, iterations, passes, ∇d, the
    Hessian (θ units and the optimiser's) and the start."""

    theta: jax.Array
    value: jax.Array
    status: jax.Array
    iterations: jax.Array
    feval: jax.Array
    gradient: jax.Array
    hessian: jax.Array
    hessian_phi: jax.Array
    theta0: jax.Array


def _raw(st, scale, theta0) -> Raw:
    r = loop_result(st, scale)
    return Raw(r.theta, r.value, r.status, r.iterations, r.feval, r.gradient, r.hessian, r.hessian_phi, theta0)


def _chunk_loop(rows, count, ctx, layout, reml, opts, lanes, mesh) -> Raw:
    return on_devices(lambda r, c, cx: fit_queue(r, c, cx, layout, reml, opts, lanes), mesh, rows, count, ctx)


# The loop is the hot part (about 8 passes a fit, each nθ + 1 gradients), compiled with LLVM's optimisations but
# without XLA's fusion emitters (sleepstudy, 1,000 replicates at 64 lanes, load 6-7, min of 5: compile 3.4 s of CPU
# against 5.4-5.7 s with them, run 0.21-0.23 s against 0.26-0.34 s); the post-loop checks run once a fit, and
# compile with the quick options (loop.quick_options: a third of the compile)
@functools.cache
def loop_options() -> dict:
    """XLA options of the lanes' loop: quick_options' fusion-emitter switch alone (where this XLA has it)."""
    return {k: v for k, v in quick_options().items() if k == "xla_cpu_use_fusion_emitters"}


@functools.cache
def _chunk_loop_jit():
    return jax.jit(_chunk_loop, static_argnums=(3, 4, 5, 6, 7), compiler_options=loop_options())


def _loop_one_device(rows, count, ctx, layout, reml, opts, lanes) -> Raw:
    return fit_queue(rows, count, ctx, layout, reml, opts, lanes)


@functools.cache
def _cached_loop():
    """The one-device loop as a fitting.traces.CachedProgram: a new process reads its traced program (and XLA's
    compile of it, from JAX's cache) back instead of tracing and lowering it again."""
    from ..fitting.traces import CachedProgram

    return CachedProgram("batch_loop", _loop_one_device, 3, ("layout", "reml", "opts", "lanes"),
                         Raw(*[0.0] * len(Raw._fields)), options=loop_options(), ahead=True)


def chunk_loop(rows, count, ctx, layout, reml, opts, lanes, mesh) -> Raw:
    """The compiled loop of a chunk (:func:`fit_queue`; with a mesh of several devices, each device's lanes)."""
    if mesh is None:
        return _cached_loop()(rows, count, ctx, layout, reml, opts, lanes)
    return _chunk_loop_jit()(rows, count, ctx, layout, reml, opts, lanes, mesh)


@functools.cache
def chunk_finished():
    """:func:`finished` compiled with the quick compile options, its traced program kept on disk
    (fitting.traces.CachedProgram)."""
    from ..fitting.traces import CachedProgram

    return CachedProgram("batch_finished", finished, 3, ("layout", "reml"), Fitted(*[0.0] * len(Fitted._fields)),
                         options=quick_options(), ahead=True)


def prefetch_chunk(rows, ctx, layout: Layout, reml: bool, opts: FitOptions, lanes: int) -> None:
    """Trace the one-device loop and its post-loop checks for chunks like ``rows`` (arrays or
    jax.ShapeDtypeStruct) here, their XLA compiles in the background (fitting.traces.CachedProgram.prefetch): the
    checks are traced while the loop compiles (sleepstudy, a first bootstrap: docs/batched.md)."""
    count = np.int32(0)
    loop = _cached_loop()
    loop.prefetch(rows, count, ctx, layout, reml, opts, lanes)
    raw = loop.out_specs(rows, count, ctx, layout, reml, opts, lanes)
    chunk_finished().prefetch(raw, rows, ctx, layout, reml)


@functools.cache
def chunk_finished_sharded():
    """:func:`finished` jitted with the quick compile options, for rows split over several devices."""
    return jax.jit(finished, static_argnums=(3, 4), compiler_options=quick_options())


def _source(row):
    """A row's response and weights: rows (n,) are responses, rows (2, n) a response and its weights."""
    return (row, None) if row.ndim == 1 else (row[0], row[1])


def fit_queue(rows, count, ctx: Context, layout: Layout, reml: bool, opts: FitOptions, lanes: int) -> Raw:
    """The Newton loop of the first ``count`` of ``rows`` (responses (N, n), or responses and weights (N, 2, n)) on
    ``lanes`` refilling lanes (pure JAX); rows from ``count`` on are not fitted (their Raw rows are zeros)."""
    TRACES["fit_queue"] += 1
    N = rows.shape[0]
    L = min(lanes, N)
    objective = lmm_objective(layout, reml)
    scale = ctx.scale
    idle = N  # the lane item of an idle lane (a scatter to it is dropped)

    def step(st, row):
        y, w = _source(row)
        a = arrays_at(ctx, layout, y, w)
        return newton_step(st, objective, a, scale, layout, opts, units_shift(a, layout, reml))

    # every row's own start (its moment start), before the loop, in slices as the post-loop checks (the
    # eigendecompositions of vector terms: docs/batched.md, "The stalled fits")
    starts = jax.lax.map(lambda row: start_at(ctx, _source(row)[0]), rows, batch_size=min(POST_SLICE, N))
    fresh = newton_start(starts[0], scale)
    # every lane starts idle and done; the first pass's refill loads the first L rows
    state = jax.vmap(lambda th: newton_start(th, scale))(starts[:L])._replace(mode=jnp.full((L,), DONE, jnp.int32))
    out = jax.tree.map(lambda x: jnp.zeros((N,) + x.shape, x.dtype), _raw(fresh, scale, starts[0]))

    def refill(state, lane_rows, lane_item, nxt):
        free = lane_item >= idle
        new_item = nxt + jnp.cumsum(free, dtype=jnp.int32) - 1
        take = free & (new_item < count)
        lane_item = jnp.where(take, new_item, lane_item)
        pick = lambda a, b: jnp.where(take.reshape((L,) + (1,) * (a.ndim - 1)), a, b)  # noqa: E731
        item = jnp.minimum(lane_item, N - 1)
        state = jax.tree.map(pick, jax.vmap(lambda th: newton_start(th, scale))(starts[item]), state)
        lane_rows = pick(rows[item], lane_rows)
        return state, lane_rows, lane_item, nxt + jnp.sum(take, dtype=jnp.int32)

    def body(carry):
        state, lane_rows, lane_item, nxt, out = carry
        state, lane_rows, lane_item, nxt = refill(state, lane_rows, lane_item, nxt)
        state = jax.vmap(step)(state, lane_rows)
        fin = (state.mode == DONE) & (lane_item < idle)
        slot = jnp.where(fin, lane_item, idle)
        done = jax.vmap(lambda s, th: _raw(s, scale, th))(state, starts[jnp.minimum(lane_item, N - 1)])
        out = jax.tree.map(lambda o, r: o.at[slot].set(r, mode="drop"), out, done)
        lane_item = jnp.where(fin, idle, lane_item)
        return state, lane_rows, lane_item, nxt, out

    carry = (state, jnp.zeros((L,) + rows.shape[1:], rows.dtype), jnp.full((L,), idle, jnp.int32), jnp.int32(0), out)
    # run while some lane is busy or the queue holds rows
    *_, raw = jax.lax.while_loop(lambda c: jnp.any(c[2] < idle) | (c[3] < count), body, carry)
    return raw


POST_SLICE = 16  # rows checked together after the loop
TRACES = {"fit_queue": 0}  # times the queue program was traced (tests count recompilations with it)


def finished(raw: Raw, rows, ctx: Context, layout: Layout, reml: bool) -> Fitted:
    """Each row's Fitted from its loop state (vmapped over the rows): the engine's rectification, snapping and
    verdict, then β̂, σ̂ and d."""
    # in slices of POST_SLICE rows (lax.map): jaxlib's batched LAPACK kernels split a large batch over XLA's
    # intra-op threads and wait for the parts from inside a pool thread, so two such calls running at once can take
    # every thread of a 2-thread pool and wait for each other for ever (docs/batched.md, "The stalled fits")
    return jax.lax.map(lambda a: _finished(*a, ctx, layout, reml), (raw, rows), batch_size=POST_SLICE)


def _finished(r: Raw, row, ctx: Context, layout: Layout, reml: bool) -> Fitted:
    from ..fitting.loop import LoopResult

    y, w = _source(row)
    a = arrays_at(ctx, layout, y, w)
    n = r.theta.shape[0]
    loop = LoopResult(r.theta, r.value, r.status, r.iterations, r.gradient, r.hessian, r.hessian_phi,
                      jnp.zeros((1, n), r.theta.dtype), jnp.zeros((1,), r.theta.dtype), r.feval)
    sol = finish(loop, lmm_objective(layout, reml), a, layout, ctx.scale, r.theta0)
    rep = _reported(sol.theta, y, w, ctx, layout, reml)
    return Fitted(sol.theta, rep.beta, rep.sigma, rep.objective, sol.converged, sol.result, sol.iterations,
                  sol.feval)
