"""A fit as a pure JAX function of the response: ``f(y) -> Estimates``, with exact derivatives by the implicit
function theorem (Krantz & Parks 2002; as in optimistix's ImplicitAdjoint), not through the optimiser's iterations.

At the optimum ∇_θ d(θ̂(y), y) = 0, so dθ̂ = −H⁻¹ (∂∇_θ d/∂y) dy with H = ∇²_θ d at θ̂. β̂, σ̂ and b̂ are explicit
functions of (θ, y) (core/derived.py), so their total derivatives follow by the chain rule; so does d(θ̂(y), y).

Boundary: the entries of θ̂ held at zero (a zero diagonal of λ, a singular fit) are treated as active constraints:
their derivative is 0 and the free entries solve the IFT system restricted to the free directions. This is the
derivative of the constrained optimum for perturbations small enough that the fit stays on the same face of the
boundary (a θ diagonal at zero stays at zero), which is what refits under small perturbations do.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..blocks.plan import Layout
from ..core.derived import estimates
from ..core.objective import deviance
from ..errors import ArgumentError
from ..fitting.loop import FitOptions, diagonal_indices
from .response import ResponsePlan, response_plan, with_response
from .solve import Solution, free_mask, solve


class Estimates(NamedTuple):
    """What a fit reports at one response (JAX arrays; a leading batch axis under vmap).

    theta: θ̂ (nθ,); beta: β̂ (p,); sigma: σ̂; b: the conditional modes b̂, a tuple with one (levels, s_k) array per
    random-effects term in the model's term order; objective: d(θ̂) (−2 log-likelihood, or the REML criterion);
    converged: bool; result: a :class:`mixedjax.batch.solve.Result` code (int32).
    """

    theta: jax.Array
    beta: jax.Array
    sigma: jax.Array
    b: tuple
    objective: jax.Array
    converged: jax.Array
    result: jax.Array


class Context(NamedTuple):
    """The device data a fit function reads besides y: the model's arrays, how y enters them, the start and the
    units of θ."""

    arrays: dict
    rplan: ResponsePlan
    theta0: jax.Array
    scale: jax.Array


def start_theta(theta, layout: Layout, scale) -> np.ndarray:
    """The start of refits: the fitted θ̂, with every zero diagonal of λ moved to 0.1 of its units (a zero diagonal
    is a stationary point of d by symmetry, so a gradient method would never leave it)."""
    th = np.array(theta, float)
    for i in diagonal_indices(layout):
        if th[i] == 0:
            th[i] = 0.1 * scale[i]
    return th


def context(model) -> Context:
    """The Context of a fitted model (host planning, once per model)."""
    p = model.problem
    scale = np.asarray(p.theta_scale, float)
    return Context(p.arrays, response_plan(p), jax.device_put(start_theta(model.theta, p.layout, scale)),
                   jax.device_put(scale))


def _gradient_in_theta(theta, y, ctx: Context, layout: Layout, reml: bool):
    return jax.grad(deviance)(theta, with_response(ctx.rplan, ctx.arrays, layout, y), layout, reml)


@partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def implicit_theta(theta_star, y, ctx: Context, layout: Layout, reml: bool):
    """θ̂(y) given the solver's θ̂ (``theta_star``): the value is θ̂ itself, the derivative the implicit one."""
    return theta_star


@implicit_theta.defjvp
def _implicit_theta_jvp(layout, reml, primals, tangents):
    th, y, ctx = primals
    dy = tangents[1]
    H = jax.jacfwd(_gradient_in_theta)(th, y, ctx, layout, reml)
    _, cross = jax.jvp(lambda yy: _gradient_in_theta(th, yy, ctx, layout, reml), (y,), (dy,))
    free = free_mask(th, layout)
    both = free[:, None] & free[None, :]
    Hf = jnp.where(both, H, jnp.eye(th.size, dtype=H.dtype))  # held-at-zero entries: an identity row, zero rhs
    dth = -jnp.linalg.solve(Hf, jnp.where(free, cross, 0.0))
    return th, dth


class Reported(NamedTuple):
    """The explicit functions of (θ, y) a fit reports: β̂, σ̂, b̂ per term and d."""

    beta: jax.Array
    sigma: jax.Array
    b: tuple
    objective: jax.Array


def _reported(theta, y, ctx: Context, layout: Layout, reml: bool) -> Reported:
    arrays = with_response(ctx.rplan, ctx.arrays, layout, y)
    est = estimates(theta, arrays, layout, reml)
    return Reported(est.beta, jnp.sqrt(est.sigma2), tuple(est.b), deviance(theta, arrays, layout, reml))


@partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def reported(theta, y, ctx: Context, layout: Layout, reml: bool) -> Reported:
    """β̂, σ̂, b̂ and d at (θ, y). The objective's dense Cholesky has a reverse-mode rule only (core/cholesky.py), so
    the forward derivative is the transpose of the reverse one (jax.linear_transpose of the VJP): exact, and what
    jax.jacfwd and jax.jvp need."""
    return _reported(theta, y, ctx, layout, reml)


@reported.defjvp
def _reported_jvp(layout, reml, primals, tangents):
    theta, y, ctx = primals
    out, vjp = jax.vjp(lambda t, yy: _reported(t, yy, ctx, layout, reml), theta, y)
    (tan,) = jax.linear_transpose(vjp, out)((tangents[0], tangents[1]))
    return out, tan


def fit_at(y, ctx: Context, layout: Layout, reml: bool, opts: FitOptions) -> tuple[Estimates, Solution]:
    """The fit at response y (pure JAX): the solve on y without derivatives, then θ̂ re-attached to y implicitly."""
    y = jnp.asarray(y, dtype=jnp.float64)
    sol = solve(ctx.theta0, with_response(ctx.rplan, ctx.arrays, layout, jax.lax.stop_gradient(y)), layout, reml,
                opts, ctx.scale)
    theta = implicit_theta(jax.lax.stop_gradient(sol.theta), y, ctx, layout, reml)
    r = reported(theta, y, ctx, layout, reml)
    return Estimates(theta, r.beta, r.sigma, r.b, r.objective, sol.converged, sol.result), sol


TRACES = {"fit_at": 0}  # times the single-fit program was traced (tests count recompilations with it)


def _fit_one(y, ctx, layout, reml, opts):
    TRACES["fit_at"] += 1
    return fit_at(y, ctx, layout, reml, opts)


fit_one_jit = jax.jit(_fit_one, static_argnames=("layout", "reml", "opts"))


def check_weights(weights, n: int):
    """Weights need the engine's weighted assembly (issue 13), which this branch does not have yet."""
    if weights is not None:
        raise ArgumentError("weights are not supported by fit_function/fit_many yet: they need the engine's weighted "
                            "assembly (blocks/assembly.py); fit weighted models one at a time")


def make_fit_function(model, reml=None, opts: FitOptions = FitOptions()):
    """``f(y, weights=None) -> Estimates`` for the model's design (see LinearMixedModel.fit_function)."""
    if reml is not None and not isinstance(reml, (bool, np.bool_)):
        raise ArgumentError(f"reml must be True, False or None (the model's own), not {reml!r}")
    reml = bool(model.reml if reml is None else reml)
    ctx, layout, n = context(model), model.problem.layout, model.nobs

    def f(y, weights=None) -> Estimates:
        check_weights(weights, n)
        if jnp.shape(y) != (n,):
            raise ArgumentError(f"y must be a vector of the model's {n} observations, not shape {jnp.shape(y)}; "
                                "for many responses use jax.vmap(f) or mj.fit_many")
        return fit_at(y, ctx, layout, reml, opts)[0]

    return f
