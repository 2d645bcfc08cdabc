"""One batched fit: the engine's Newton solve (fitting/newton.py: a few exact-gradient Newton passes from the
fitted θ̂, then the engine's rectification, zero snapping and verdict, all in JAX, so it runs under ``jax.vmap``)."""

from __future__ import annotations

import jax.numpy as jnp

from ..blocks.plan import Layout
from ..fitting.newton import newton_solve
from ..fitting.options import FitOptions
from ..fitting.solve import RESULTS, Solution, diagonal_indices, lmm_objective, units_shift

Result = RESULTS  # the result codes of a batched fit are the engine's


def free_mask(theta, layout: Layout):
    """True for the θ entries not held at the boundary (a zero diagonal of λ)."""
    free = jnp.ones(theta.shape, bool)
    for i in diagonal_indices(layout):
        free = free.at[i].set(theta[i] != 0)
    return free


def solve(theta0, arrays, layout: Layout, reml: bool, opts: FitOptions, scale) -> Solution:
    """Minimise d(θ) from θ₀ by the engine's Newton solve (pure JAX)."""
    return newton_solve(lmm_objective(layout, reml), theta0, arrays, layout, opts, scale,
                        units_shift(arrays, layout, reml))
