"""``m.refit(y)``: the fitted model of the same design and options for a new response, from one compiled program
(the same one for every response of the model's shape) and no host rebuild: only the y row of A is recomputed."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from ..errors import ArgumentError
from ..fitting.loop import FitOptions, OptSummary, diagonal_indices
from .function import arrays_at, fit_one_jit
from .solve import Result

_arrays_at_jit = jax.jit(arrays_at, static_argnames="layout")

WORDS = {
    Result.CONVERGED_GRADIENT: "converged{b}: the gradient is zero to tolerance",
    Result.CONVERGED_OBJECTIVE: "converged{b}: the objective stopped decreasing",
    Result.MAXITER: "not converged: the iteration limit was reached",
    Result.LINESEARCH: "not converged: the line search could not decrease the objective",
    Result.MAXEVAL: "not converged: the evaluation limit was reached",
    Result.SADDLE: "not converged: the optimiser stopped where the Hessian has a negative eigenvalue",
    Result.NONFINITE: "not converged: the objective, gradient or Hessian at the result is not finite",
}


def response_vector(y, n: int) -> np.ndarray:
    try:
        v = np.asarray(y, dtype=float)
    except (TypeError, ValueError) as err:
        raise ArgumentError(f"y must be a numeric vector of the model's {n} observations, not {type(y).__name__}") \
            from err
    if v.shape != (n,):
        raise ArgumentError(f"y must be a vector of the model's {n} observations (in the model's row order), not "
                            f"shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ArgumentError(f"y must be finite; position {int(np.argmax(~np.isfinite(v)))} is missing or infinite")
    return v


def summary_of(sol, theta0, layout) -> OptSummary:
    """An OptSummary from a traced fit's Solution (host numpy)."""
    sol = jax.device_get(sol)
    th = np.asarray(sol.theta, float)
    code = Result(int(sol.result))
    boundary = " on the boundary (singular fit)" if any(th[i] == 0 for i in diagonal_indices(layout)) else ""
    ne = int(sol.feval)
    H = np.asarray(sol.hessian)
    eig = np.linalg.eigvalsh(H) if np.all(np.isfinite(H)) else np.zeros(0)
    return OptSummary(
        initial=np.asarray(theta0, float), final=th, fmin=float(sol.objective), feval=ne,
        iterations=int(sol.iterations), status=WORDS[code].format(b=boundary), converged=bool(sol.converged),
        fitlog=tuple((np.asarray(sol.log_theta[i]), float(sol.log_f[i])) for i in range(min(ne, len(sol.log_f)))),
        gradient=np.asarray(sol.gradient, float), hessian_eigenvalues=eig)


def refit(model, y, weights=None, opts: FitOptions = FitOptions()):
    """A new LinearMixedModel for response y (same design, reml, start at the fitted θ̂; L-BFGS); ``weights``: new
    prior weights (None: the model's)."""
    from ..model.lmm import LinearMixedModel
    from .function import check_weights

    v = response_vector(y, model.nobs)
    w = check_weights(weights, model.nobs)
    if w is not None and w.shape != (model.nobs,):
        raise ArgumentError(f"weights must be a vector of the model's {model.nobs} observations, not shape {w.shape}")
    problem, ctx = (model.problem, model._batch_context) if w is None else (model._weights_problem,
                                                                             model._weights_context)
    layout = problem.layout
    yd, wd = jax.device_put(v), None if w is None else jax.device_put(w)
    est, sol = fit_one_jit(yd, wd, ctx, layout, bool(model.reml), opts)
    arrays = _arrays_at_jit(ctx, layout, yd, wd)
    v.setflags(write=False)
    design = dataclasses.replace(problem.design, y=v)
    data = problem.data._replace(y=yd)
    if w is not None:
        w.setflags(write=False)
        design, data = dataclasses.replace(design, weights=w), data._replace(weights=wd)
    new = dataclasses.replace(problem, design=design, arrays=arrays, data=data)
    theta = np.asarray(est.theta, float)
    theta.setflags(write=False)
    return LinearMixedModel(problem=new, reml=bool(model.reml), theta=theta, objective=float(est.objective),
                            optsum=summary_of(sol, ctx.theta0, layout))
