"""From a :class:`~mixedjax.fitting.solve.Solution` to the host's ``OptSummary``: the fit log, the result code and
its plain words. ``fit_theta`` drives one fit (L-BFGS through ``solve``'s program, or BOBYQA) and returns both, with
the estimates at the result computed in the same compiled program."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..blocks.plan import Layout
from ..core.derived import Estimates, estimates
from ..errors import FitError
from .bobyqa import ahead_affordable, bobyqa
from .choice import BOBYQA_GTOL, choose_optimizer
from .options import FitOptions
from .solve import CONVERGED, RESULTS, _solve, diagonal_indices, lmm_objective, snap_host, units_shift

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
    words for people. gradient: the exact gradient at the optimiser's result (before zero snapping; NaN for
    ``optimizer="bobyqa"``; for the default's BOBYQA, the one it was checked by, at the snapped result).
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
    optimizer: str = "L-BFGS directions (two-loop recursion), backtracking (Armijo) line search, unconstrained θ"
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


class Fitted(NamedTuple):
    """One finished fit on the host: θ̂ and d(θ̂), the OptSummary, and everything a fitted model reports at θ̂
    (core.derived.Estimates, numpy), computed in the fit's own compiled program so the first printout is free."""

    theta: np.ndarray
    fmin: float
    optsum: OptSummary
    estimates: Estimates


def _solve_estimates(objective, theta0, args, layout: Layout, options: FitOptions, scale, reml: bool):
    """The L-BFGS solve and the estimates at its result, in one program (the units shift too: op by op it would
    compile two tiny programs in a new process)."""
    sol = _solve(objective, theta0, args, layout, options, scale, units_shift(args, layout, reml))
    return sol, estimates(sol.theta, args, layout, reml)


_FIT_STATIC = ("objective", "layout", "options", "reml")
_solve_estimates_jit = jax.jit(_solve_estimates, static_argnames=_FIT_STATIC)


def _fit_program(theta0, args, scale, layout: Layout, options: FitOptions, reml: bool):
    """_solve_estimates of the LMM objective, with only arrays and hashable statics for its arguments (the
    objective is rebuilt from them), so that its traced program can be kept on disk (fitting.traces)."""
    return _solve_estimates(lmm_objective(layout, reml), theta0, args, layout, options, scale, reml)


@functools.cache
def _cached_fit(nterms: int, quick: bool):
    """The silent L-BFGS fit as a fitting.traces.CachedProgram: a new process fitting a model of a shape fitted
    before reads its traced program (and XLA's compile of it) back instead of tracing, lowering and compiling (one
    program: split in two and compiled in threads, it cost a new process more; docs/performance.md)."""
    from . import traces
    from .loop import quick_options
    from .solve import Solution

    k = (0.0,) * nterms
    template = (Solution(*[0.0] * len(Solution._fields)), Estimates(0.0, 0.0, 0.0, k, k, k, 0.0, k))
    return traces.CachedProgram("lmm_fit_quick" if quick else "lmm_fit", _fit_program, 3,
                                ("layout", "options", "reml"), template, options=quick_options() if quick else None)


def _deviance_program(theta, args, layout: Layout, reml: bool):
    return lmm_objective(layout, reml)(theta, args)


def _result_program(theta, args, layout: Layout, reml: bool, check: bool):
    """The estimates at BOBYQA's (snapped) result and, with ``check``, the exact gradient there (NaN when not
    checked), in one program: the gradient's forward pass and the estimates share the dense factor."""
    grad = jax.grad(lmm_objective(layout, reml))(theta, args) if check else jnp.full_like(theta, jnp.nan)
    return estimates(theta, args, layout, reml), grad


@functools.cache
def _cached_bobyqa(nterms: int):
    """BOBYQA's two programs for the LMM (each evaluation's objective, which also makes the zero-snapping trials;
    the estimates and gradient at its result) as fitting.traces.CachedPrograms, like _cached_fit."""
    from . import traces
    from .loop import quick_options

    k = (0.0,) * nterms
    est = Estimates(0.0, 0.0, 0.0, k, k, k, 0.0, k)
    # the result program runs once per fit, the deviance once per evaluation: the former is compiled with the quick
    # options (InstEval, one thread, loaded machine: compile 10.3 -> 2.5 s, run 183 -> 252 ms; docs/performance.md)
    return (traces.CachedProgram("lmm_deviance", _deviance_program, 2, ("layout", "reml"), 0.0, ahead=True),
            traces.CachedProgram("lmm_result", _result_program, 2, ("layout", "reml", "check"), (est, 0.0),
                                 options=quick_options(), ahead=True))


@functools.cache
def _solve_estimates_jit_quick():
    """_solve_estimates with the small-model compiler options, as fitting.solve.solve picks them."""
    from .loop import quick_options

    return jax.jit(_solve_estimates, static_argnames=_FIT_STATIC, compiler_options=quick_options())


def fit_theta(theta0, arrays, layout: Layout, reml: bool, opts: FitOptions, verbose: bool = False,
              scale=None) -> Fitted:
    """Run the optimiser, rectify, snap and verify, and compute the estimates at the result; ``scale``: units of
    θ. ``opts.optimizer`` "auto" picks one by fitting.choice.choose_optimizer. L-BFGS runs through fitting.solve's
    ``_solve`` (the same solve as ``solve``), BOBYQA on the host; an "auto" BOBYQA result is verified by the exact
    gradient and refined by L-BFGS when that check fails."""
    from .loop import use_quick
    from .mappings import guard

    guard()  # a long process compiling many shapes frees its programs before Linux's mapping limit
    scale = np.ones(layout.ntheta) if scale is None else np.asarray(scale, float)
    objective = lmm_objective(layout, reml)
    chosen = choose_optimizer(layout, opts)
    if chosen == "bobyqa":
        return _fit_theta_bobyqa(objective, theta0, arrays, layout, opts, verbose, scale, reml,
                                 check=opts.optimizer == "auto")
    # one compiled program for "auto" and "lbfgs"; verbose: each evaluation printed as it happens, by a separately
    # compiled loop (FitOptions.live)
    opts = dataclasses.replace(opts, optimizer="lbfgs", live=bool(verbose))
    quick = use_quick(layout)
    # numpy in: the compiled program takes host arrays without a separate transfer per argument
    if opts.live:
        fn = _solve_estimates_jit_quick() if quick else _solve_estimates_jit
        out = fn(objective, np.asarray(theta0, float), arrays, layout, opts, scale, reml)
    else:
        out = _cached_fit(len(layout.terms), quick)(np.asarray(theta0, float), arrays, scale, layout, opts, reml)
    # per leaf, synchronously: jax.device_get's batched transfer of the 21 small results took 0.45 ms more
    sol, est = jax.tree_util.tree_map(np.asarray, out)
    summary = summarize(sol, layout)
    if not np.isfinite(summary.fmin):
        raise FitError("the objective is not finite at the optimiser's result; check the data for extreme values")
    return Fitted(np.asarray(sol.theta), summary.fmin, summary, est)


def gradient_check(theta, grad, fmin: float, layout: Layout, scale) -> tuple[bool, float]:
    """Does the exact gradient vanish at BOBYQA's result: max |∂d/∂φ| over the free directions (those not on the
    boundary θ_ii = 0; φ = θ / scale, the optimiser's units) at most BOBYQA_GTOL · max(1, |d|)? Returns (passed,
    that maximum)."""
    free = np.ones(theta.size, bool)
    free[[i for i in diagonal_indices(layout) if theta[i] == 0]] = False
    g = np.abs(np.asarray(grad) * scale)[free]
    if not np.all(np.isfinite(g)):
        return False, float("nan")
    gmax = float(g.max()) if g.size else 0.0
    return gmax <= BOBYQA_GTOL * max(1.0, abs(fmin)), gmax


def _fit_theta_bobyqa(objective, theta0, arrays, layout: Layout, opts: FitOptions, verbose: bool, scale,
                      reml: bool, check: bool = False) -> Fitted:
    """fit_theta with BOBYQA. Asked for by name, no derivatives are taken, so the summary's gradient is NaN and
    its Hessian eigenvalues empty (as in MixedModels.jl; ``m.gradient()`` and ``m.hessian()`` give them exactly).
    ``check`` (the default optimiser's BOBYQA): the exact gradient at the result must pass ``gradient_check``, else
    the L-BFGS loop continues from BOBYQA's result and verifies it in full."""
    from .solve import rectify

    deviance_program, result_program = _cached_bobyqa(len(layout.terms))
    # on the device once: BOBYQA calls the program once an evaluation, and host arrays would be copied every call
    arrays = jax.device_put(arrays)
    # XLA's compiles in the background, the traces here (two threads tracing under one GIL slowed a first fit):
    # the deviance's compile overlaps the result program's trace, and the result program's compile BOBYQA's
    # evaluations; programs traced before are read back there too (InstEval, a new process: docs/performance.md)
    th0 = np.asarray(theta0, float)
    deviance_program.prefetch(th0, arrays, layout, reml)
    result_program.prefetch(th0, arrays, layout, reml, check)
    # bound once to the model's arrays: each evaluation then skips the arguments' flattening and signature
    # (sleepstudy: about 0.1 ms of each of its 23 evaluations)
    bound = deviance_program.bind(th0, arrays, layout, reml, fixed=(1,))

    def deviance(theta, args):  # args: the same arrays, which ``bound`` holds
        return bound(theta)

    th, f, converged, words, log = bobyqa(objective, theta0, arrays, opts, scale, verbose, program=deviance,
                                          ahead=ahead_affordable(layout))
    if not np.all(np.isfinite(th)):
        raise FitError(f"BOBYQA found no point with a finite objective ({words}); check the data for extreme values")
    th = th * np.asarray(rectify(th, layout))
    # the trials by the deviance program, on the host: in the result program they were two objectives more to trace
    # and compile (InstEval: compile 0.32-0.51 -> 0.21-0.26 s) for a test that most fits do not need
    th, fbest = snap_host(lambda t: deviance(t, arrays), th, float(f), layout, np.asarray(scale, float))
    est, grad = jax.tree_util.tree_map(np.asarray, result_program(th, arrays, layout, reml, check))
    if not np.isfinite(fbest):
        raise FitError("the objective is not finite at the optimiser's result; check the data for extreme values")
    boundary = " on the boundary (singular fit)" if any(th[i] == 0 for i in diagonal_indices(layout)) else ""
    optimizer = "NLopt LN_BOBYQA (derivative-free), unconstrained θ"
    if check:
        passed, gmax = gradient_check(th, grad, fbest, layout, scale) if converged else (False, float("nan"))
        if not passed:
            return _refine_by_lbfgs(th, theta0, log, arrays, layout, reml, opts, verbose, scale)
        status = (f"converged{boundary}: BOBYQA {words}, and the exact gradient is zero to tolerance (max "
                  f"|gradient| {gmax:.2g}; the Hessian is not checked)")
        optimizer += "; the exact gradient checked at the result"
    else:
        status = (f"converged{boundary}: BOBYQA {words} (derivative-free; gradient and Hessian not checked)"
                  if converged else f"not converged: BOBYQA {words}")
    summary = OptSummary(
        initial=_readonly(theta0), final=_readonly(th), fmin=fbest, feval=len(log),
        iterations=len(log),  # NLopt reports no iteration count apart from the evaluations
        status=status, converged=converged, fitlog=tuple((_readonly(t), v) for t, v in log),
        gradient=_readonly(grad), hessian_eigenvalues=_readonly(np.zeros(0)),
        optimizer=optimizer,
        result=RESULTS.tolerance_reached if converged else RESULTS.failed,
    )
    return Fitted(th, fbest, summary, est)


def _refine_by_lbfgs(theta, theta0, log, arrays, layout: Layout, reml: bool, opts: FitOptions, verbose: bool,
                     scale) -> Fitted:
    """The L-BFGS loop from BOBYQA's result (which failed the gradient check): its verdict is the fit's; the fit
    log holds both optimisers' evaluations."""
    lb = fit_theta(theta, arrays, layout, reml, dataclasses.replace(opts, optimizer="lbfgs"), verbose, scale)
    s = lb.optsum
    summary = dataclasses.replace(
        s, initial=_readonly(theta0), feval=len(log) + s.feval, iterations=len(log) + s.iterations,
        fitlog=tuple((_readonly(t), v) for t, v in log) + s.fitlog,
        optimizer=f"NLopt LN_BOBYQA, then ({s.optimizer}) from its result, whose exact gradient was not zero",
    )
    return lb._replace(optsum=summary)
