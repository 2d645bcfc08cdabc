"""From a :class:`~mixedjax.fitting.solve.Solution` to the host's ``OptSummary``: the fit log, the result code and
its plain words. ``fit_theta`` drives one fit (L-BFGS through ``solve``, or BOBYQA) and returns both."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import jax
import numpy as np

from ..blocks.plan import Layout
from ..errors import FitError
from .bobyqa import bobyqa, print_eval
from .options import FitOptions
from .solve import CONVERGED, RESULTS, diagonal_indices, lmm_objective, snap, solve, units_shift

WORDS = {
    RESULTS.running: "running",
    RESULTS.gradient_zero: "the gradient is zero to tolerance",
    RESULTS.objective_stalled: "the objective stopped decreasing",
    RESULTS.max_iterations: "the iteration limit was reached",
    RESULTS.line_search_failed: "the line search could not decrease the objective",
    RESULTS.max_evaluations: "the evaluation limit was reached",
    RESULTS.nonfinite: "the gradient or Hessian at the result is not finite",
    RESULTS.saddle_point: "the optimiser stopped where the Hessian has a negative eigenvalue; this may be a saddle "
                          "point. Try another starting θ (theta0=...)",
    RESULTS.tolerance_reached: "BOBYQA reached its tolerances",
    RESULTS.failed: "BOBYQA failed",
}


def _readonly(a) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class OptSummary:
    """What the optimiser did: start, end, every evaluation, and why it stopped.

    result: the :class:`~mixedjax.fitting.solve.RESULTS` code (what code should test); status: the same in plain
    words for people. gradient: the exact gradient at the optimiser's result (before zero snapping; NaN for BOBYQA).
    hessian_eigenvalues: of the Hessian in the free directions (forward differences of the exact gradient; empty for
    BOBYQA). Arrays are read-only."""

    initial: np.ndarray
    final: np.ndarray
    fmin: float
    feval: int
    iterations: int
    status: str
    converged: bool
    fitlog: tuple[tuple[np.ndarray, float], ...]
    gradient: np.ndarray
    hessian_eigenvalues: np.ndarray
    optimizer: str = "optax L-BFGS directions, backtracking (Armijo) line search, unconstrained θ"
    result: RESULTS = RESULTS.gradient_zero

    def __repr__(self) -> str:
        return (
            f"OptSummary(status={self.status!r}, fmin={self.fmin:.10g}, feval={self.feval}, "
            f"iterations={self.iterations}, initial={np.round(self.initial, 6).tolist()}, "
            f"final={np.round(self.final, 6).tolist()})"
        )


def free_eigenvalues(theta, H, layout: Layout) -> np.ndarray:
    """Eigenvalues of H on the directions not on the boundary (θ_ii = 0)."""
    free = np.ones(theta.size, bool)
    free[[i for i in diagonal_indices(layout) if theta[i] == 0]] = False
    if not free.any() or not np.all(np.isfinite(H)):
        return np.zeros(0)
    return np.linalg.eigvalsh(H[np.ix_(free, free)])


def status_words(result: RESULTS, theta, layout: Layout, gmax: float, emin: float) -> str:
    """The plain-words status of an L-BFGS fit."""
    boundary = " on the boundary (singular fit)" if any(theta[i] == 0 for i in diagonal_indices(layout)) else ""
    if result not in CONVERGED:
        return f"not converged: {WORDS[result]} (max |gradient| {gmax:.2g})"
    how = WORDS[result]
    if not np.isfinite(emin):
        return f"converged{boundary}: {how}; every variance parameter is at zero"
    return (f"converged{boundary}: {how} (max |projected gradient| {gmax:.2g}) and the Hessian is positive "
            f"{'semi-' if emin <= 0 else ''}definite (smallest eigenvalue {emin:.3g})")


def summarize(sol, layout: Layout) -> OptSummary:
    """The OptSummary of a (host-side) Solution."""
    th, H = np.asarray(sol.theta), np.asarray(sol.hessian)
    result = RESULTS(int(sol.result))
    ne = int(sol.feval)
    log = tuple((_readonly(sol.log_theta[i]), float(sol.log_value[i])) for i in range(min(ne, len(sol.log_value))))
    return OptSummary(initial=_readonly(sol.theta0), final=_readonly(th), fmin=float(sol.value), feval=ne,
                      iterations=int(sol.iterations),
                      status=status_words(result, th, layout, float(sol.max_gradient), float(sol.min_eigenvalue)),
                      converged=bool(sol.converged), fitlog=log, gradient=_readonly(sol.gradient),
                      hessian_eigenvalues=_readonly(free_eigenvalues(th, H, layout)), result=result)


@partial(jax.jit, static_argnames=("objective", "layout"))
def _snap_jit(objective, theta, value, args, layout, scale):
    return snap(objective, theta, value, args, layout, scale, None)


def fit_theta(theta0, arrays, layout: Layout, reml: bool, opts: FitOptions, verbose: bool = False, scale=None):
    """Run the optimiser, rectify, snap and verify; returns (θ, d(θ), OptSummary). ``scale``: units of θ."""
    scale = np.ones(layout.ntheta) if scale is None else np.asarray(scale, float)
    objective = lmm_objective(layout, reml)
    if opts.optimizer == "bobyqa":
        return _fit_theta_bobyqa(objective, theta0, arrays, layout, opts, verbose, scale)
    if verbose:  # each evaluation printed as it happens, by a separately compiled loop (FitOptions.live)
        opts = dataclasses.replace(opts, live=True)
    sol = jax.device_get(solve(objective, np.asarray(theta0, float), arrays, layout, opts, scale,
                               units_shift(arrays, layout, reml)))
    summary = summarize(sol, layout)
    if not np.isfinite(summary.fmin):
        raise FitError("the objective is not finite at the optimiser's result; check the data for extreme values")
    return np.asarray(sol.theta), summary.fmin, summary


def _fit_theta_bobyqa(objective, theta0, arrays, layout: Layout, opts: FitOptions, verbose: bool, scale):
    """fit_theta with BOBYQA: no derivatives are taken, so the summary's gradient is NaN and its Hessian eigenvalues
    empty (as in MixedModels.jl; ``m.gradient()`` and ``m.hessian()`` give them exactly)."""
    from .solve import rectify

    th, f, converged, words, log = bobyqa(objective, theta0, arrays, opts, scale, verbose)
    if not np.all(np.isfinite(th)):
        raise FitError(f"BOBYQA found no point with a finite objective ({words}); check the data for extreme values")
    th = th * np.asarray(rectify(th, layout))
    th, fbest = (np.asarray(v) for v in jax.device_get(_snap_jit(objective, th, np.float64(f), arrays, layout,
                                                                  scale)))
    fbest = float(fbest)
    if not np.isfinite(fbest):
        raise FitError("the objective is not finite at the optimiser's result; check the data for extreme values")
    boundary = " on the boundary (singular fit)" if any(th[i] == 0 for i in diagonal_indices(layout)) else ""
    status = (f"converged{boundary}: BOBYQA {words} (derivative-free; gradient and Hessian not checked)" if converged
              else f"not converged: BOBYQA {words}")
    summary = OptSummary(
        initial=_readonly(theta0), final=_readonly(th), fmin=fbest, feval=len(log),
        iterations=len(log),  # NLopt reports no iteration count apart from the evaluations
        status=status, converged=converged, fitlog=tuple((_readonly(t), v) for t, v in log),
        gradient=_readonly(np.full(th.size, np.nan)), hessian_eigenvalues=_readonly(np.zeros(0)),
        optimizer="NLopt LN_BOBYQA (derivative-free), unconstrained θ",
        result=RESULTS.tolerance_reached if converged else RESULTS.failed,
    )
    return th, fbest, summary
