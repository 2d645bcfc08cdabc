"""Many fits one after another in one compiled program (``lax.map``): ``fit_many`` and ``bootstrap`` of models whose
one evaluation is large (batch.solve.batch_solver chooses the L-BFGS solve for them).

Refilling lanes (batch/queue.py) pay off where a vmapped evaluation of many lanes costs little more than one (small
models: per-call overhead dominates). For a large model every lane costs its full work on a CPU (kb07: 21 gradients
vmapped took as long as 21 one by one), so the lanes would only add the slowest fit's passes to everyone's; here each
row runs the single fit's program body (the same solve as ``m.refit``) inside one ``lax.map``, and the padding rows
of the last chunk are skipped by a ``lax.cond``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ..blocks.plan import Layout
from ..fitting.options import FitOptions
from .function import Context, fit_at
from .queue import Fitted, _source
from .sharding import on_devices
from .solve import Solver

TRACES = {"fit_serial": 0}  # times the serial program was traced (tests count recompilations with it)


def _one(row, ctx: Context, layout: Layout, reml: bool, opts: FitOptions, solver: Solver) -> Fitted:
    y, w = _source(row)
    est, sol = fit_at(y, w, ctx, layout, reml, opts, solver)
    return Fitted(est.theta, est.beta, est.sigma, est.objective, est.converged, est.result, sol.iterations,
                  sol.feval)


def fit_serial(rows, count, ctx: Context, layout: Layout, reml: bool, opts: FitOptions, solver: Solver) -> Fitted:
    """The fits of the first ``count`` of ``rows`` (responses (N, n), or responses and weights (N, 2, n)), one after
    another (pure JAX); rows from ``count`` on are not fitted (their rows are zeros)."""
    TRACES["fit_serial"] += 1
    template = jax.eval_shape(lambda r: _one(r, ctx, layout, reml, opts, solver), rows[0])
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), template)

    def each(item):
        i, row = item
        return jax.lax.cond(i < count, lambda r: _one(r, ctx, layout, reml, opts, solver), lambda r: zeros, row)

    return jax.lax.map(each, (jnp.arange(rows.shape[0], dtype=jnp.int32), rows))


def _chunk_serial(rows, count, ctx, layout, reml, opts, solver, mesh) -> Fitted:
    return on_devices(lambda r, c, cx: fit_serial(r, c, cx, layout, reml, opts, solver), mesh, rows, count, ctx)


_chunk_serial_jit = jax.jit(_chunk_serial, static_argnums=(3, 4, 5, 6, 7))


@functools.cache
def _cached_serial():
    """The one-device program as a fitting.traces.CachedProgram (kept on disk, as batch/queue.py's loop)."""
    from ..fitting.traces import CachedProgram

    return CachedProgram("batch_serial", fit_serial, 3, ("layout", "reml", "opts", "solver"),
                         Fitted(*[0.0] * len(Fitted._fields)))


def chunk_serial(rows, count, ctx, layout, reml, opts, solver, mesh) -> Fitted:
    """The compiled chunk (:func:`fit_serial`; with a mesh of several devices, each device's share)."""
    if mesh is None:
        return _cached_serial()(rows, count, ctx, layout, reml, opts, solver)
    return _chunk_serial_jit(rows, count, ctx, layout, reml, opts, solver, mesh)
