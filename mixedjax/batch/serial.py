"""Many fits by the single fit's program: ``fit_many`` and ``bootstrap`` of models whose one evaluation is large
(batch.solve.batch_solver chooses the L-BFGS solve for them).

Refilling lanes (batch/queue.py) pay off where a vmapped evaluation of many lanes costs little more than one (small
models: per-call overhead dominates). For a large model every lane costs its full work on a CPU (kb07: 21 gradients
vmapped took as long as 21 one by one), so lanes would only add the slowest fit's passes to everyone's. Each row is
fitted by the single fit's compiled program (``m.refit``'s, one program for every row), called from the host row by
row with the data on the device. Not one ``lax.map`` of it: on the kb07-shaped design that program (the L-BFGS loop
inside a cond inside a map) ran 7.8 s a fit against 0.69 s for the same fit called on its own (100 responses, at a
load average of 6–12 on the 2-core machine).

Each row starts at the moment start of its own response (function.start_at, inside the compiled fit), as
``m.refit`` does, so the rows equal refits. On a CPU the rows are fitted a core's worth at a time, each in a thread
of its own (:func:`_threads`), with BLAS on one thread (fitting/blas.py, which ``fit_many`` and ``bootstrap``
hold): on the 2-core machine, kb07's rows took 34-35 ms a fit against 60-61 ms for a loop of ``m.refit``
(docs/batched.md).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np

from ..blocks.plan import Layout
from ..fitting.options import FitOptions
from .function import Context, fit_one_jit
from .queue import Fitted, _source
from .solve import Solver

MAX_THREADS = 4  # rows fitted at once at most (one per core)


def _threads(layout: Layout) -> int:
    """Rows in flight at once: one per core on a CPU (calls dispatched from one thread run one after another, and
    each fit runs mostly on one core), while one evaluation's temporaries are small (fitting.bobyqa's
    ahead_affordable, the bound BOBYQA's two evaluations at once use) and no term's per-level blocks go through
    LAPACK's batched kernels (s above core.cholesky.SMALL_BLOCK): two of those running at once can deadlock XLA's
    CPU thread pool (docs/batched.md, "The stalled fits"). One elsewhere (a GPU runs one at a time)."""
    import os

    from ..core.cholesky import SMALL_BLOCK
    from ..fitting.bobyqa import ahead_affordable

    if jax.default_backend() != "cpu" or not ahead_affordable(layout) or any(t.s > SMALL_BLOCK for t in layout.terms):
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_THREADS))


def chunk_serial(rows, count, ctx: Context, layout: Layout, reml: bool, opts: FitOptions, solver: Solver,
                 mesh=None) -> Fitted:
    """The fits of the first ``count`` of ``rows`` (responses (N, n), or responses and weights (N, 2, n)) by the
    single fit's program, :func:`_threads` of them at a time; rows from ``count`` on are not fitted (their rows are
    zeros). ``mesh`` is not used: each fit runs where its row is."""

    def one(i):
        y, w = _source(rows[i])
        est, sol = fit_one_jit(y, w, ctx, layout, reml, opts, solver)
        return jax.block_until_ready(Fitted(est.theta, est.beta, est.sigma, est.objective, est.converged, est.result,
                                            sol.iterations, sol.feval))

    x64 = bool(jax.config.jax_enable_x64)  # the caller's (a context manager's setting is its thread's alone)

    def in_thread(i):
        with jax.enable_x64(x64):
            return one(i)

    n = int(count)
    out = [one(0)]  # alone: the first call may compile the program, which two threads would do twice
    threads = _threads(layout)
    if threads > 1 and n > 1:
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mixedjax-fits")
        try:
            out += list(pool.map(in_thread, range(1, n)))
        finally:  # an error or an interrupt: the rows not started are dropped, not fitted first
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        out += [one(i) for i in range(1, n)]
    # stacked on the host: stacking on the device compiled a small program per field and chunk shape (kb07, the
    # first fit_many of 10 rows: 0.8 s on top of its 0.65 s of fits)
    host = jax.device_get(out)
    pad = rows.shape[0] - len(host)
    return Fitted(*(np.concatenate([np.stack(f), np.zeros((pad,) + np.shape(f[0]), np.asarray(f[0]).dtype)])
                    for f in zip(*host)))
