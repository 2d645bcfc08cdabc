"""``Problem``: what a model is before it is fitted: the design, the plan of its blocks and their arrays."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import jax
import numpy as np
import pandas as pd

from ..blocks.plan import FILL_MODES, Layout, build_blocks
from ..blocks.types import Arrays, ModelData, Plan
from ..design.build import Design, build_design
from ..errors import ArgumentError
from ..fitting.start import moment_start


class _OnDevice:
    """A field of pytrees kept as given (the build's read-only numpy) and handed out on the device: one
    ``jax.device_put`` of the tree on first access. A fit reads the host tree (``Problem.host``) instead: a jitted
    call takes numpy leaves in its C++ dispatch without a copy on the CPU (sleepstudy's 26 leaves: 0.04 ms a call,
    where their device_put took 1.2-1.7 ms of a 10 ms ``mj.lmm``), so a model whose arrays nobody asks for never
    moves them. A data descriptor, so the dataclass's __init__ and ``dataclasses.replace`` set it as a field."""

    def __set_name__(self, owner, name):
        self.host, self.device = f"_host_{name}", f"_device_{name}"

    def __get__(self, obj, owner=None):
        if obj is None:
            raise AttributeError  # no default: the dataclass makes it a required field
        d = obj.__dict__
        if self.device not in d:
            with jax.ensure_compile_time_eval():  # first asked for inside a trace: concrete arrays, not tracers
                d[self.device] = jax.device_put(d[self.host])
        return d[self.device]

    def __set__(self, obj, value):
        obj.__dict__[self.host] = value
        obj.__dict__.pop(self.device, None)


class HostArrays(NamedTuple):
    """A Problem's arrays, plan and data as built (read-only numpy, or the device arrays it was made with)."""

    arrays: Arrays
    plan: Plan
    data: ModelData


@dataclass(frozen=True, eq=False)
class Problem:
    """Everything about a model that does not depend on θ: the design, the static layout, the plan that assembles
    the blocks from the data, the data on the device and the assembled arrays (docs/design.md, section 5).
    ``arrays``, ``plan`` and ``data`` are moved to the device on first access; ``host`` has them as built."""

    design: Design
    layout: Layout
    arrays: Arrays = _OnDevice()
    yscale: float
    plan: Plan = _OnDevice()
    data: ModelData = _OnDevice()
    merged: bool = True  # term-0 levels with equal Gram blocks share their products (see blocks.plan.build_blocks)

    @property
    def host(self) -> HostArrays:
        """``arrays``, ``plan`` and ``data`` as built (read-only numpy), for jitted calls: no device_put first."""
        d = self.__dict__
        return HostArrays(d["_host_arrays"], d["_host_plan"], d["_host_data"])

    def __repr__(self) -> str:
        from ..display.text import problem_repr

        return problem_repr(self)

    @cached_property
    def coef_names(self) -> pd.Index:
        """The fixed-effect names as the index of ``fixef``, ``stderror``, ``vcov`` and ``coeftable``, made at build
        time: pandas keeps text as pyarrow strings, and the first such index took 0.16 s after ml1m's fit against
        3 ms before it (most of ml1m's first printout)."""
        return pd.Index(list(self.design.xnames))

    @cached_property
    def theta_scale(self) -> np.ndarray:
        """Units of each θ entry: 1 except for random-effects columns of extreme size (see Term.column_scale).
        Kept (read-only): each term's rms is a pass over its rows (ml1m's first printout spent 25-50 ms on it)."""
        return _readonly(np.concatenate([t.theta_scale() for t in self.design.terms]))

    def start(self, kind: str = "moments") -> np.ndarray:
        """A starting θ: "moments" (the default of a fit: a method-of-moments estimate of each term's covariance from
        least-squares residuals, see fitting/start.py) or "identity" (λ = I, lme4's and MixedModels.jl's start)."""
        if kind == "identity":
            return np.concatenate([t.theta0() for t in self.design.terms])
        if kind == "moments":
            return moment_start(self.design)
        raise ArgumentError(f"the start must be 'moments' or 'identity', not {kind!r}")

    @classmethod
    def build(cls, formula, data, *, weights=None, offset=None, fill: str = "auto", merge: bool = True) -> "Problem":
        """Parse, build the design and plan the blocks. ``weights`` and ``offset``: None, a column name or one value
        per row (lme4's meaning: residual variance σ²/wᵢ; a known term of the linear predictor, added to any
        ``offset(...)`` in the formula). ``fill`` (a tuning and testing knob): how the fill-in of the dense block is
        computed, "auto" (per column by cost), "pairs", "dense" or "mixed". ``merge=False`` plans for weights that
        change after the build (``blocks.assembly.assemble``): see blocks.plan.build_blocks."""
        if fill not in FILL_MODES:
            raise ArgumentError(f"fill must be one of {', '.join(map(repr, FILL_MODES))}, not {fill!r}")
        design = build_design(formula, data, weights=weights, offset=offset)
        return cls.from_design(design, fill=fill, merge=merge)

    @classmethod
    def from_design(cls, design: Design, *, fill: str = "auto", merge: bool = True) -> "Problem":
        """Plan and assemble the blocks of a built design."""
        layout, arrays, plan, yscale = build_blocks(design, fill, weights=design.weights, offset=design.offset,
                                                    merge=merge)
        # read-only host arrays; moved to the device when asked for (_OnDevice)
        arrays, plan, data = jax.tree_util.tree_map(_readonly, (arrays, plan, model_data(design)))
        problem = cls(design, layout, arrays, yscale, plan, data, merge)
        problem.coef_names  # made before any fit (see coef_names)
        return problem


def _readonly(x):
    """A read-only view of a numpy leaf (the design's own arrays keep their flags); scalars as they are."""
    if isinstance(x, np.ndarray):
        x = x.view()
        x.setflags(write=False)
    return x


def model_data(design: Design) -> ModelData:
    """The design's numbers as the assembly takes them (numpy; unit weights and a zero offset when none)."""
    n = design.n
    return ModelData(z=tuple(t.z for t in design.terms), X=design.X, y=design.y,
                     weights=np.ones(n) if design.weights is None else design.weights,
                     offset=np.zeros(n) if design.offset is None else design.offset)
