"""``fit_many``: one design fitted to every row of Y in one compiled program (the solve of ``fit_function``: on
refilling lanes for small models, batch/queue.py, one row after another for large ones, batch/serial.py), in
chunks of ``batch_size`` rows so memory stays bounded, each chunk split across the devices when there are several.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import numpy as np
import pandas as pd

from ..errors import ArgumentError
from ..fitting.blas import single_blas_thread
from ..fitting.options import FitOptions
from .function import check_weights
from .queue import Fitted, chunk_finished, chunk_finished_sharded, chunk_loop, prefetch_chunk
from .sharding import batch_sharding, put, round_up
from .serial import chunk_serial
from .solve import Result, Solver, batch_solver



def fit_chunk(rows, count, ctx, layout, reml, opts, mesh) -> Fitted:
    """One chunk of rows (responses, or responses and weights), the data staying on the device, each row from the
    moment start of its response (function.start_at, computed on the device): for the Newton solve (small models)
    fitted on refilling lanes (batch/queue.py), then checked and summarised, two compiled programs; for the L-BFGS
    solve (large models, batch.solve.batch_solver) the single fit's program row by row (batch/serial.py)."""
    solver = batch_solver(layout)
    if solver != Solver.newton:
        return chunk_serial(rows, count, ctx, layout, reml, opts, solver, mesh)
    per_device = rows.shape[0] // (1 if mesh is None else mesh.size)
    raw = chunk_loop(rows, count, ctx, layout, reml, opts, min(LANES, per_device), mesh)
    return (chunk_finished() if mesh is None else chunk_finished_sharded())(raw, rows, ctx, layout, reml)


MEMORY_TARGET = 256e6  # default chunk memory: about this many bytes of per-fit state
MAX_BATCH = 8192  # fits per compiled chunk at most (a chunk returns to the host once, when all its fits are done)
LANES = 32  # fits advanced together by each pass of the compiled loop (lanes refill as fits finish; every lane is
# computed on every pass, done or not, so fewer lanes make the slowest fits of a chunk, which finish alone, cheaper).
# From each response's moment start (2.2 passes a fit, the slowest 19) the loop of 1,000 sleepstudy replicates took
# 0.11-0.14 s at 32 lanes against 0.13-0.22 s at 64 and 0.18-0.20 s at 128 (min of 7, three runs, load 9-10: roughly;
# docs/batched.md); from θ̂ (7.5 passes) 0.35 s at 32, 0.51 s at 64, 0.54 s at 128, 0.90 s at 256 (load 6)


def default_batch_size(n: int, ntheta: int, p: int, opts: FitOptions) -> int:
    """Fits per chunk: per fit, its response, a few copies of its y-dependent arrays and Hessians in the post-loop
    checks (8 bytes a number)."""
    per = 8 * (16 * n + 8 * ntheta * ntheta + 4 * p * p)
    return int(max(1, min(MAX_BATCH, MEMORY_TARGET // per)))


@dataclass(frozen=True, eq=False)
class FitBatch:
    """Many fits of one design (numpy arrays, read-only, one row per response).

    theta (B, nθ), beta (B, p), sigma (B,), objective (B,), converged (B,) bool, result (B,) int codes of
    :class:`Result`, iterations (B,), feval (B,); names of the fixed effects and θ entries; reml; seconds: the wall
    time of the fits.
    """

    theta: np.ndarray
    beta: np.ndarray
    sigma: np.ndarray
    objective: np.ndarray
    converged: np.ndarray
    result: np.ndarray
    iterations: np.ndarray
    feval: np.ndarray
    fixef_names: tuple[str, ...]
    theta_names: tuple[str, ...]
    reml: bool
    seconds: float

    def __len__(self) -> int:
        return len(self.objective)

    @property
    def nconverged(self) -> int:
        return int(self.converged.sum())

    def results(self) -> pd.Series:
        """The result codes by name (Result's member names)."""
        return pd.Series([Result(int(c)).name for c in self.result], name="result")

    def to_frame(self) -> pd.DataFrame:
        """One row per response: objective, the fixed effects by name, sigma, θ entries, converged, result."""
        cols = {"objective": self.objective}
        cols.update({name: self.beta[:, j] for j, name in enumerate(self.fixef_names)})
        cols["sigma"] = self.sigma
        cols.update({name: self.theta[:, j] for j, name in enumerate(self.theta_names)})
        cols["converged"] = self.converged
        cols["result"] = self.results().to_numpy()
        return pd.DataFrame(cols)

    def __repr__(self) -> str:
        return (f"FitBatch({len(self)} fits by {'REML' if self.reml else 'ML'}, {self.nconverged} converged, "
                f"{self.seconds:.3g} s)")


def theta_names(model) -> tuple[str, ...]:
    """θ entries named by term and λ position, e.g. 'subj:(Intercept)', 'subj:days,(Intercept)'."""
    out = []
    for t in model.problem.design.terms:
        for r, c in t.pattern:
            out.append(f"{t.name}:{t.columns[r]}" if r == c else f"{t.name}:{t.columns[r]},{t.columns[c]}")
    return tuple(out)


def _readonly(a, dtype=None):
    a = np.array(a, dtype=dtype)
    a.setflags(write=False)
    return a


def chunk_rows(B: int, batch_size: int, sharding) -> int:
    """Rows of each compiled chunk: a power of two (at most batch_size), so batches of other sizes reuse the
    compiled programs; a multiple of the device count."""
    return round_up(min(batch_size, 1 << (B - 1).bit_length()), sharding)


def prefetch_fits(rows_shape: tuple, dtype, ctx, layout, reml: bool, opts: FitOptions) -> None:
    """Before the first chunk of rows of ``rows_shape`` on one device with the Newton solve: its programs traced
    here and compiled in the background (batch.queue.prefetch_chunk); nothing otherwise."""
    if batch_sharding() is not None or batch_solver(layout) != Solver.newton:
        return
    prefetch_chunk(jax.ShapeDtypeStruct(rows_shape, dtype), ctx, layout, reml, opts, min(LANES, rows_shape[0]))


def run_chunks(rows: np.ndarray, call, batch_size: int, on_chunk=None):
    """``call(chunk, count, mesh)`` (a compiled chunk of fits on refilling lanes) on every chunk of ``rows``
    (responses, or random keys' data), the last chunk padded (its ``count`` real rows alone are fitted) so one
    program serves every chunk (and, the chunk size being a power of two, batches of similar sizes); returns the
    concatenated Fitted as numpy. ``on_chunk(rows_done)`` is called after each chunk. With several devices each
    chunk is split across them (``mesh``), each running its own lanes."""
    sharding = batch_sharding()
    mesh = None if sharding is None else sharding.mesh
    B = rows.shape[0]
    size = chunk_rows(B, batch_size, sharding)
    parts = []
    for start in range(0, B, size):
        chunk = rows[start : start + size]
        real = chunk.shape[0]
        if real < size:
            chunk = np.concatenate([chunk, np.broadcast_to(rows[:1], (size - real,) + rows.shape[1:])])
        out = call(put(chunk, sharding), np.int32(real), mesh)
        parts.append(jax.tree.map(lambda a: np.asarray(a)[:real], out))
        if on_chunk is not None:
            on_chunk(start + real)
    return jax.tree.map(lambda *a: np.concatenate(a), *parts)


def as_responses(Y, n: int) -> np.ndarray:
    try:
        Y = np.asarray(Y, dtype=float)
    except (TypeError, ValueError) as err:
        raise ArgumentError(f"Y must be a numeric array of shape (B, {n}), not {type(Y).__name__}") from err
    if Y.ndim == 1:
        Y = Y[None, :]
    if Y.ndim != 2 or Y.shape[1] != n or Y.shape[0] == 0:
        raise ArgumentError(f"Y must have shape (B, {n}): one response of the model's {n} observations per row; "
                            f"got shape {Y.shape}")
    if not np.all(np.isfinite(Y)):
        r = int(np.argwhere(~np.isfinite(Y))[0, 0])
        raise ArgumentError(f"Y must be finite; row {r} has a missing or infinite value")
    return Y


@single_blas_thread
def fit_many(model_or_problem, Y, *, reml=None, weights=None, batch_size=None, on_chunk=None) -> FitBatch:
    """Fit the design of a model (or of a Problem, which is fitted once first) to every row of Y (B × nobs) in one
    compiled program: the solve of ``fit_function`` on every row (small models: its Newton pass on refilling lanes,
    batch/queue.py; large ones: its L-BFGS fit one row after another, batch/serial.py), not ``jax.vmap`` of it, with
    the same fits. Each row equals ``m.refit(Y[i])``. ``weights``: prior
    weights, (nobs,) for every response or (B, nobs) one row each (None: the model's own). ``batch_size``: rows
    per compiled chunk (default: about 256 MB of per-fit state); with several devices each chunk is split across
    them. ``reml``: None fits as the model was fitted (ML for a Problem)."""
    from ..model.lmm import LinearMixedModel, Problem, fit

    if isinstance(model_or_problem, Problem):
        model = fit(model_or_problem, reml=bool(reml) if reml is not None else False)
    elif isinstance(model_or_problem, LinearMixedModel):
        model = model_or_problem
    else:
        raise ArgumentError(f"fit_many takes a fitted LinearMixedModel or a Problem, not "
                            f"{type(model_or_problem).__name__}")
    if reml is not None and not isinstance(reml, (bool, np.bool_)):
        raise ArgumentError(f"reml must be True, False or None (the model's own), not {reml!r}")
    reml = bool(model.reml if reml is None else reml)
    Y = as_responses(Y, model.nobs)
    layout, opts, ctx, rows = model.problem.layout, FitOptions(), model._batch_context, Y
    w = check_weights(weights, model.nobs)
    if w is not None:
        if w.ndim == 1:
            w = np.broadcast_to(w, Y.shape)
        if w.shape != Y.shape:
            raise ArgumentError(f"weights must have shape ({model.nobs},) (the same for every response) or "
                                f"{Y.shape} (one row per response), not {w.shape}")
        layout, ctx, rows = model._weights_problem.layout, model._weights_context, np.stack([Y, w], axis=1)
    batch_size = checked_batch_size(batch_size, model, opts)
    t0 = time.perf_counter()
    prefetch_fits((chunk_rows(len(rows), batch_size, batch_sharding()),) + rows.shape[1:], rows.dtype, ctx, layout,
                  reml, opts)
    est = run_chunks(rows, lambda chunk, count, mesh: fit_chunk(chunk, count, ctx, layout, reml, opts, mesh),
                     int(batch_size), on_chunk)
    return batch_of(est, model, reml, time.perf_counter() - t0)


def checked_batch_size(batch_size, model, opts: FitOptions) -> int:
    layout = model.problem.layout
    if batch_size is None:
        return default_batch_size(model.nobs, layout.ntheta, layout.p, opts)
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ArgumentError(f"batch_size must be a positive integer, not {batch_size!r}")
    return int(batch_size)


def batch_of(est: Fitted, model, reml: bool, seconds: float) -> FitBatch:
    """A FitBatch of the host arrays ``est``."""
    ro = _readonly
    return FitBatch(theta=ro(est.theta), beta=ro(est.beta), sigma=ro(est.sigma), objective=ro(est.objective),
                    converged=ro(est.converged, bool), result=ro(est.result, np.int32),
                    iterations=ro(est.iterations, np.int32), feval=ro(est.feval, np.int32),
                    fixef_names=tuple(model.problem.design.xnames), theta_names=theta_names(model), reml=reml,
                    seconds=float(seconds))
