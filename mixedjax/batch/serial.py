"""Many fits one after another: ``fit_many`` and ``bootstrap`` of models whose one evaluation is large
(batch.solve.batch_solver chooses the L-BFGS solve for them).

Refilling lanes (batch/queue.py) pay off where a vmapped evaluation of many lanes costs little more than one (small
models: per-call overhead dominates). For a large model every lane costs its full work on a CPU (kb07: 21 gradients
vmapped took as long as 21 one by one), so lanes would only add the slowest fit's passes to everyone's. Each row is
fitted by the single fit's compiled program (``m.refit``'s, one program for every row), called from the host row by
row with the data on the device. Not one ``lax.map`` of it: on the kb07-shaped design that program (the L-BFGS loop
inside a cond inside a map) ran 7.8 s a fit against 0.69 s for the same fit called on its own (100 responses, at a
load average of 6–12 on the 2-core machine).

Each row starts at the moment start of its own response (function.start_at, inside the compiled fit), as
``m.refit`` does, so the rows equal refits.
"""

from __future__ import annotations

import jax
import numpy as np

from ..blocks.plan import Layout
from ..fitting.options import FitOptions
from .function import Context, fit_one_jit
from .queue import Fitted, _source
from .solve import Solver


def chunk_serial(rows, count, ctx: Context, layout: Layout, reml: bool, opts: FitOptions, solver: Solver,
                 mesh=None) -> Fitted:
    """The fits of the first ``count`` of ``rows`` (responses (N, n), or responses and weights (N, 2, n)), one after
    another by the single fit's program; rows from ``count`` on are not fitted (their rows are zeros). ``mesh`` is
    not used: each fit runs where its row is."""
    out = []
    for i in range(int(count)):
        y, w = _source(rows[i])
        est, sol = fit_one_jit(y, w, ctx, layout, reml, opts, solver)
        out.append(Fitted(est.theta, est.beta, est.sigma, est.objective, est.converged, est.result, sol.iterations,
                          sol.feval))
    # stacked on the host: stacking on the device compiled a small program per field and chunk shape (kb07, the
    # first fit_many of 10 rows: 0.8 s on top of its 0.65 s of fits)
    host = jax.device_get(out)
    pad = rows.shape[0] - len(host)
    return Fitted(*(np.concatenate([np.stack(f), np.zeros((pad,) + np.shape(f[0]), np.asarray(f[0]).dtype)])
                    for f in zip(*host)))
