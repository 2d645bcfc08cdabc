"""The profile's inner fits as one compiled, batched solve (issue 16): every lane holds one parameter at one value
and minimises the ML deviance over all the others, with the exact gradient, by the fit's own L-BFGS loop
(fitting/loop.py), under ``jax.vmap``.

Two groups of lanes, each one compiled program per model shape (the held parameter and its value are traced, so no
grid point, parameter or confint root step compiles anything):

- ψ lanes (the random-effect sd's and cor's and σ, lme4's parameters): ψ_j = x, the others free through
  sd = scale·z², σ = scale·z², cor = sin(z). Both maps are unconstrained and smooth, and put each bound (sd 0, cor
  ±1) at a stationary point where the deviance is quadratic in z, so a minimum on a bound is reached as an interior
  one (what L-BFGS-B's box did before, without the host loop).
- β lanes (the fixed effects): the closed form of profile.py's ``_beta_deviance`` over θ, unconstrained as in the
  fit.

Each lane runs from two starts, its warm start and that start with its near-zero sd-like entries moved off zero (a
zero sd is a stationary point a gradient method cannot leave), and keeps the lower minimum.
"""

from __future__ import annotations

import collections
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..fitting.loop import lbfgs_loop, quick_options, use_quick
from ..fitting.options import FitOptions
from ..fitting.solve import units_shift

# inner-fit tolerances: tighter than the model fit's (ζ is a square root of deviance differences near 0)
OPTIONS = FitOptions(maxiter=300, gtol=1e-10, ftol=1e-14, maxeval=400)
OFF_ZERO = 0.5  # the second start's value of a near-zero sd-like entry (z units for ψ, θ for β)
# the loop's units (φ = z / STEP): its first step has length 1 in φ, and a first step from OFF_ZERO of 1 in z lands on
# −OFF_ZERO, where the deviance (even in that entry) repeats, and the secant step then goes exactly to the stationary 0
STEP = 0.2

TRACES: collections.Counter = collections.Counter()  # group -> times its batched solve was traced (tests count these)


class LaneResults(NamedTuple):
    """One batched solve: ``value`` (lanes,) the minimal ML deviance of each lane, ``free`` (lanes, k) the
    minimiser's free parameters (ψ for ψ lanes, θ for β lanes)."""

    value: jax.Array
    free: jax.Array


# ---- ψ lanes ----------------------------------------------------------------------------------------------------
def psi_kinds(layout) -> np.ndarray:
    """Per ψ entry: True for an sd or σ (positive), False for a correlation."""
    return np.array([r == c for t in layout.terms for r, c in t.pattern] + [True])


def _psi_of_z(z, j, x, scale, layout):
    kinds = jnp.asarray(psi_kinds(layout))
    free = jnp.where(kinds, scale * z * z, jnp.sin(z))
    return jnp.where(jnp.arange(z.size) == j, x, free)


def _z_of_psi(psi, scale, layout):
    kinds = psi_kinds(layout)
    return jnp.where(kinds, jnp.sqrt(jnp.maximum(psi, 0.0) / scale), jnp.arcsin(jnp.clip(psi, -1.0, 1.0)))


def _psi_objective(layout):
    from .profile import _psi_deviance

    def f(z, args):
        j, x, scale, arrays = args
        return _psi_deviance(_psi_of_z(z, j, x, scale, layout), arrays, layout)

    return f


def _psi_lane(psi0, j, x, scale, arrays, layout):
    """One ψ lane from both starts: (value, ψ at the better minimum)."""
    f = _psi_objective(layout)
    z0 = _z_of_psi(psi0, scale, layout)
    kinds = jnp.asarray(psi_kinds(layout))
    near_zero = kinds & (jnp.abs(z0) < 1e-2) & (jnp.arange(z0.size) != j)
    starts = jnp.stack([z0, jnp.where(near_zero, OFF_ZERO, z0)])
    shift = units_shift(arrays, layout, False)
    args = (j, x, scale, arrays)
    out = jax.vmap(lambda s: lbfgs_loop(f, s, jnp.full_like(s, STEP), args, OPTIONS, shift))(starts)
    values = jnp.where(jnp.isfinite(out.value), out.value, jnp.inf)
    k = jnp.argmin(values)
    return values[k], _psi_of_z(out.theta[k], j, x, scale, layout)


def _psi_batch(psi0, js, xs, scale, arrays, layout):
    TRACES["psi"] += 1
    v, psi = jax.vmap(_psi_lane, in_axes=(0, 0, 0, None, None, None))(psi0, js, xs, scale, arrays, layout)
    return LaneResults(v, psi)


# ---- β lanes ----------------------------------------------------------------------------------------------------
def _beta_objective(layout):
    from .profile import _beta_deviance

    def f(theta, args):
        e, c, arrays = args
        return _beta_deviance(theta, c, e, arrays, layout)

    return f


def _beta_lane(theta0, k, c, arrays, layout):
    f = _beta_objective(layout)
    e = (jnp.arange(layout.p) == k).astype(theta0.dtype)
    diag = jnp.asarray([r == cc for t in layout.terms for r, cc in t.pattern])
    starts = jnp.stack([theta0, jnp.where(diag & (jnp.abs(theta0) < 1e-4), OFF_ZERO, theta0)])
    shift = units_shift(arrays, layout, False)
    out = jax.vmap(lambda s: lbfgs_loop(f, s, jnp.full_like(s, STEP), (e, c, arrays), OPTIONS, shift))(starts)
    values = jnp.where(jnp.isfinite(out.value), out.value, jnp.inf)
    i = jnp.argmin(values)
    return values[i], out.theta[i]


def _beta_batch(theta0, ks, cs, arrays, layout):
    TRACES["beta"] += 1
    v, th = jax.vmap(_beta_lane, in_axes=(0, 0, 0, None, None))(theta0, ks, cs, arrays, layout)
    return LaneResults(v, th)


@functools.cache
def _compiled(group: str, quick: bool):
    """The group's batched solve as a fitting.traces.CachedProgram: a new process profiling a model of a shape
    profiled before reads the traced program (and XLA's compile of it) back."""
    from ..fitting import traces

    fn, narrays = (_psi_batch, 5) if group == "psi" else (_beta_batch, 4)
    return traces.CachedProgram(f"profile_{group}" + ("_quick" if quick else ""), fn, narrays, ("layout",),
                                LaneResults(0.0, 0.0), options=quick_options() if quick else None)


def psi_solve(psi0, js, xs, scale, arrays, layout) -> LaneResults:
    """ψ lanes: lane i holds ψ_{js[i]} at xs[i], starts from ψ0[i] (its held entry is ignored)."""
    return _compiled("psi", use_quick(layout))(jnp.asarray(psi0, float), jnp.asarray(js, jnp.int32),
                                               jnp.asarray(xs, float), jnp.asarray(scale, float), arrays, layout)


def beta_solve(theta0, ks, cs, arrays, layout) -> LaneResults:
    """β lanes: lane i holds β_{ks[i]} at cs[i], minimising over θ from θ0[i]."""
    return _compiled("beta", use_quick(layout))(jnp.asarray(theta0, float), jnp.asarray(ks, jnp.int32),
                                                jnp.asarray(cs, float), arrays, layout)
