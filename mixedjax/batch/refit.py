"""``m.refit(y)``: the fitted model of the same design and options for a new response, from one compiled program
(the same one for every response of the model's shape) and no host rebuild: only the y row of A is recomputed."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from ..errors import ArgumentError
from ..fitting.blas import single_blas_thread
from ..fitting.options import FitOptions
from ..fitting.summary import summarize
from .function import arrays_at, fit_one_jit

_arrays_at_jit = jax.jit(arrays_at, static_argnames="layout")

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


@single_blas_thread
def refit(model, y, weights=None, opts: FitOptions = FitOptions()):
    """A new LinearMixedModel for response y (same design and reml; the batched fits' solve, batch/solve.py);
    ``weights``: new prior weights (None: the model's). The fit starts at the moment start of y (function.start_at,
    computed in the compiled program), as a fresh fit of y and ``fit_many``'s rows do."""
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
                            optsum=summarize(jax.device_get(sol), layout))
