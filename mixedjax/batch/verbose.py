"""Live verbose: the objective with a ``jax.debug.callback`` that prints each evaluation as the compiled loop makes
it (``f_k: value, [θ...]``, MixedModels.jl's layout). A separate objective is a separate compiled program, so the
silent fit stays cacheable on disk. Every evaluation is printed: the line-search trials (the fit log, in order,
first), then the Hessian probes and the snapping trials."""

from __future__ import annotations

import functools

import jax
import numpy as np

from ..blocks.plan import Layout
from ..core.objective import deviance
from ..fitting.bobyqa import print_eval

COUNTER = [0]  # evaluations printed in the current verbose fit (reset by start())


def start() -> None:
    COUNTER[0] = 0


def _show(theta, value) -> None:
    COUNTER[0] += 1
    print_eval(COUNTER[0], np.asarray(theta), float(value))


@functools.cache
def live_objective(layout: Layout, reml: bool):
    """d(θ) as ``f(theta, arrays)`` that prints each evaluation; one function object per (layout, reml)."""
    def f(theta, arrays):
        value = deviance(theta, arrays, layout, reml)
        jax.debug.callback(_show, theta, value, ordered=True)
        return value

    return f
