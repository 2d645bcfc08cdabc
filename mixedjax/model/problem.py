"""``Problem``: what a model is before it is fitted: the design, the plan of its blocks and their arrays."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from ..blocks.plan import FILL_MODES, Layout, build_blocks
from ..design.build import Design, build_design
from ..errors import ArgumentError
from ..fitting.start import moment_start


@dataclass(frozen=True, eq=False)
class Problem:
    """Everything about a model that does not depend on θ: the design, the static layout and the device arrays."""

    design: Design
    layout: Layout
    arrays: dict
    yscale: float

    def __repr__(self) -> str:
        from ..display.text import problem_repr

        return problem_repr(self)

    @property
    def theta_scale(self) -> np.ndarray:
        """Units of each θ entry: 1 except for random-effects columns of extreme size (see Term.column_scale)."""
        return np.concatenate([t.theta_scale() for t in self.design.terms])

    def start(self, kind: str = "moments") -> np.ndarray:
        """A starting θ: "moments" (the default of a fit: a method-of-moments estimate of each term's covariance from
        least-squares residuals, see mixedjax/_start.py) or "identity" (λ = I, lme4's and MixedModels.jl's start)."""
        if kind == "identity":
            return np.concatenate([t.theta0() for t in self.design.terms])
        if kind == "moments":
            return moment_start(self.design)
        raise ArgumentError(f"the start must be 'moments' or 'identity', not {kind!r}")

    @classmethod
    def build(cls, formula, data, *, fill: str = "auto") -> "Problem":
        """Parse, build the design and the blocked layout. ``fill`` (a tuning and testing knob): how the fill-in
        of the dense block is computed, "auto" (per column by cost), "pairs", "dense" or "mixed"."""
        if fill not in FILL_MODES:
            raise ArgumentError(f"fill must be one of {', '.join(map(repr, FILL_MODES))}, not {fill!r}")
        design = build_design(formula, data)
        layout, arrays, yscale = build_blocks(design, fill)
        # device_put, not jnp.asarray: the latter compiles a small program per array shape (a cold-start cost)
        return cls(design, layout, jax.device_put(jax.tree_util.tree_map(np.asarray, arrays)), yscale)

