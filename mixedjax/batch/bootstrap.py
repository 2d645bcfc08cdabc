"""The parametric bootstrap (lme4's ``bootMer``, MixedModels.jl's ``parametricbootstrap``): responses simulated from
the fitted model and refitted, simulation and fit fused in one compiled program per chunk (the responses never leave
the device); intervals by percentiles or MixedModels.jl's shortest coverage interval."""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import jax
import numpy as np
import pandas as pd

from ..errors import ArgumentError
from ..fitting.blas import single_blas_thread
from ..fitting.options import FitOptions
from ..fitting.solve import diagonal_indices
from ..fitting.loop import quick_options
from .many import FitBatch, batch_of, checked_batch_size, chunk_rows, fit_chunk, prefetch_fits, run_chunks
from .sharding import batch_sharding
from .queue import Fitted
from .simulate import simulate_one, sim_design, split_keys


def _simulate_keys(keys, theta, beta, sigma, d, layout):
    """Responses (N, n) from keys' data (N, 2)."""
    return jax.vmap(lambda k: simulate_one(jax.random.wrap_key_data(k), theta, beta, sigma, d, layout))(keys)


@functools.cache
def _simulate_chunk():
    """:func:`_simulate_keys` compiled with the quick compile options (jax.random's normal sampler is most of this
    program's compile; it runs once a replicate), its traced program kept on disk (fitting.traces.CachedProgram)."""
    from ..fitting.traces import CachedProgram

    return CachedProgram("batch_simulate", _simulate_keys, 5, ("layout",), 0.0, options=quick_options())


@functools.cache
def _simulate_chunk_sharded():
    """:func:`_simulate_keys` jitted with the quick options, for keys split over several devices."""
    return jax.jit(_simulate_keys, static_argnums=(5,), compiler_options=quick_options())


def _boot_chunk(keys, count, theta, beta, sigma, d, ctx, layout, reml, opts, mesh) -> Fitted:
    """One chunk of replicates: responses simulated from the keys on the device, then fit_chunk."""
    simulate = _simulate_chunk() if mesh is None else _simulate_chunk_sharded()
    return fit_chunk(simulate(keys, theta, beta, sigma, d, layout), count, ctx, layout, reml, opts, mesh)


def lme4_terms(design) -> list[tuple[str, int, tuple[int, ...]]]:
    """(lme4's group name, design term, its columns there) of each random-effects term as lme4 keeps it (terms on one
    grouping factor not merged), in lme4's order: findbars' order, reordered by decreasing number of levels when
    some term has more levels than the one before it (mkReTrms: rev(order(nl)), which reverses ties)."""
    index = {t.name: k for k, t in enumerate(design.terms)}
    parts = design.encoding.terms if design.encoding is not None else None
    used, out = {}, []
    for rt in design.formula.random:
        k = index[rt.group_name]
        j = used.get(k, 0)
        used[k] = j + 1
        if parts is None:  # no record of the parts: the merged term as one
            cols = tuple(range(design.terms[k].s)) if j == 0 else ()
        else:
            start = sum(len(parts[k].parts[i].keep) for i in range(j))
            cols = tuple(range(start, start + len(parts[k].parts[j].keep)))
        if cols:
            out.append((rt.lme4_index, rt.label or rt.group_name, k, cols))
    out.sort(key=lambda e: e[0])
    nl = [design.terms[k].nlevels for _, _, k, _ in out]
    if any(b > a for a, b in zip(nl, nl[1:])):
        out = [out[i] for i in reversed(sorted(range(len(out)), key=lambda i: nl[i]))]
    return [(label, k, cols) for _, label, k, cols in out]


def varcomp_names(model) -> list[tuple[str, int, int, int]]:
    """(name, term, row, col) of each random-effect sd (row == col) and correlation, named and ordered as lme4's
    ``confint(oldNames = FALSE)``: 'sd_(Intercept)|subj', 'cor_days.(Intercept)|subj', 'sd_days|subj' (per lme4
    term, column by column: the sd, then the correlations of the later columns with it); (1 | a/b) gives 'b:a'."""
    design = model.problem.design
    out = []
    for label, k, cols in lme4_terms(design):
        t = design.terms[k]
        free = set(t.pattern)
        for i, c in enumerate(cols):
            out.append((f"sd_{t.columns[c]}|{label}", k, c, c))
            out.extend((f"cor_{t.columns[r]}.{t.columns[c]}|{label}", k, r, c) for r in cols[i + 1:] if (r, c) in free)
    return out


def varcomps(theta: np.ndarray, sigma: np.ndarray, model) -> dict[str, np.ndarray]:
    """Random-effect sds and correlations of every replicate from θ (B, nθ) and σ (B,)."""
    layout = model.problem.layout
    covs = []
    for t in layout.terms:
        lam = np.zeros((theta.shape[0], t.s, t.s))
        for i, (r, c) in enumerate(t.pattern):
            lam[:, r, c] = theta[:, t.theta_offset + i]
        covs.append(sigma[:, None, None] ** 2 * lam @ np.swapaxes(lam, 1, 2))
    out = {}
    for name, k, r, c in varcomp_names(model):
        cov = covs[k]
        if r == c:
            out[name] = np.sqrt(cov[:, r, r])
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                v = cov[:, r, c] / np.sqrt(cov[:, r, r] * cov[:, c, c])
            out[name] = np.nan_to_num(v)  # a zero sd: lme4 reports the correlation as 0 there too
    return out


def shortest_interval(v: np.ndarray, level: float) -> tuple[float, float]:
    """The shortest interval holding ceil(level · n) of the sorted values (MixedModels.jl's shortestcovint)."""
    v = np.sort(v[np.isfinite(v)])
    n = v.size
    k = max(1, math.ceil(n * level))
    widths = v[k - 1 :] - v[: n - k + 1]
    i = int(np.argmin(widths))
    return float(v[i]), float(v[i + k - 1])


CONFINT_METHODS = ("percentile", "shortest")


@dataclass(frozen=True, eq=False)
class Bootstrap:
    """A parametric bootstrap of a fitted model.

    fits: the FitBatch of the replicates; table: one row per replicate (objective, the fixed effects by name, sigma,
    the random-effect sds and correlations named as lme4's confint(oldNames=FALSE)); nsingular: replicates with a
    zero diagonal of some λ (a singular refit); seed: the seed given; seconds: wall time of simulation and fits.
    """

    fits: FitBatch
    table: pd.DataFrame
    nsingular: int
    seed: object
    seconds: float

    @property
    def n(self) -> int:
        return len(self.table)

    @property
    def nconverged(self) -> int:
        return self.fits.nconverged

    @property
    def parameters(self) -> list[str]:
        """The parameters with intervals, in lme4's order: the variance components, sigma, the fixed effects."""
        fixed = list(self.fits.fixef_names)
        vc = [c for c in self.table.columns if c.startswith(("sd_", "cor_"))]
        return vc + ["sigma"] + fixed

    def confint(self, level: float = 0.95, method: str = "percentile") -> pd.DataFrame:
        """Intervals from the replicates: ``"percentile"`` (the (1 ± level)/2 quantiles, as lme4's
        ``confint(bootMer(...), type = "perc")``) or ``"shortest"`` (MixedModels.jl's shortest coverage interval).
        Columns are named as lme4's: '2.5 %', '97.5 %'."""
        if isinstance(level, (bool, np.bool_)) or not isinstance(level, (int, float, np.floating)) or not (
                0 < level < 1):
            raise ArgumentError(f"level must be a number between 0 and 1, not {level!r}")
        if method not in CONFINT_METHODS:
            raise ArgumentError(f"method must be one of {', '.join(map(repr, CONFINT_METHODS))}, not {method!r}")
        a = (1 - level) / 2
        rows = []
        for name in self.parameters:
            v = self.table[name].to_numpy(float)
            if method == "percentile":
                lo, hi = np.quantile(v[np.isfinite(v)], [a, 1 - a])
            else:
                lo, hi = shortest_interval(v, level)
            rows.append((float(lo), float(hi)))
        labels = [f"{100 * a:.3g} %", f"{100 * (1 - a):.3g} %"]
        return pd.DataFrame(rows, index=pd.Index(self.parameters, name="parameter"), columns=labels)

    def plot(self, columns=None, *, bins: int = 40):
        """Histograms with a kernel density of each parameter's replicates (matplotlib, an optional extra:
        pip install 'mixedjax[plot]'); returns the Figure."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as err:
            raise ArgumentError("Bootstrap.plot needs matplotlib: pip install matplotlib (or mixedjax[plot])") from err
        from scipy.stats import gaussian_kde

        columns = self.parameters if columns is None else list(columns)
        unknown = [c for c in columns if c not in self.table]
        if unknown:
            raise ArgumentError(f"no bootstrap column {unknown[0]!r}; the columns are {', '.join(self.table)}")
        ncol = min(3, len(columns))
        nrow = -(-len(columns) // ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3 * nrow), squeeze=False)
        for ax, name in zip(axes.flat, columns):
            v = self.table[name].to_numpy(float)
            v = v[np.isfinite(v)]
            ax.hist(v, bins=bins, density=True, alpha=0.4)
            if v.size > 1 and np.ptp(v) > 0:
                grid = np.linspace(v.min(), v.max(), 200)
                ax.plot(grid, gaussian_kde(v)(grid))
            ax.set_title(name, fontsize=9)
        for ax in list(axes.flat)[len(columns):]:
            ax.set_visible(False)
        fig.tight_layout()
        return fig

    def __repr__(self) -> str:
        return (f"Bootstrap({self.n} replicates, {self.nconverged} converged, {self.nsingular} singular, "
                f"{self.seconds:.3g} s)")


def table_of(fits: FitBatch, model) -> pd.DataFrame:
    cols = {"objective": fits.objective}
    cols.update({name: fits.beta[:, j] for j, name in enumerate(fits.fixef_names)})
    cols["sigma"] = fits.sigma
    cols.update(varcomps(np.asarray(fits.theta), np.asarray(fits.sigma), model))
    return pd.DataFrame(cols)


def count_singular(theta: np.ndarray, model) -> int:
    """Replicates with some λ diagonal (near) zero, by the rule of LinearMixedModel.is_singular."""
    d = diagonal_indices(model.problem.layout)
    scale = np.asarray(model.problem.theta_scale)[d]
    return int(np.any(np.abs(theta[:, d] / scale) < 1e-4, axis=1).sum())


PROGRESS_DELAY = 0.5  # seconds before a progress bar appears: a short run shows none


@single_blas_thread
def bootstrap(model, n, seed=None, *, progress=True, batch_size=None, weighted_noise=True) -> Bootstrap:
    """``n`` parametric bootstrap replicates of the model (see LinearMixedModel.bootstrap)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ArgumentError(f"n must be a positive integer, not {n!r}")
    if not isinstance(progress, (bool, np.bool_)):
        raise ArgumentError(f"progress must be True or False, not {progress!r}")
    opts = FitOptions()
    size = checked_batch_size(batch_size, model, opts)
    t0 = time.perf_counter()
    ctx, layout, reml = model._batch_context, model.problem.layout, bool(model.reml)
    # the lanes' loop (the longest compile) and its checks traced first, each compiled in the background while the
    # caller goes on: the simulation's inputs and its program (compiled by its first call) meanwhile
    prefetch_fits((chunk_rows(int(n), size, batch_sharding()), model.nobs), np.float64, ctx, layout, reml, opts)
    keys = split_keys(seed, n)
    th = jax.numpy.asarray(model.theta)
    be = jax.numpy.asarray(model.fixef.to_numpy())
    sg = jax.numpy.float64(model.sigma)
    d = sim_design(model.problem, weighted_noise)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(n), unit="fit", desc="bootstrap", delay=PROGRESS_DELAY, leave=False)
    done = [0]

    def tick(rows):
        if bar is not None:
            bar.update(rows - done[0])
        done[0] = rows

    try:
        est = run_chunks(keys, lambda chunk, count, mesh: _boot_chunk(chunk, count, th, be, sg, d, ctx, layout, reml,
                                                                       opts, mesh), size, tick)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    fits = batch_of(est, model, reml, seconds)
    return Bootstrap(fits=fits, table=table_of(fits, model), nsingular=count_singular(fits.theta, model), seed=seed,
                     seconds=seconds)
