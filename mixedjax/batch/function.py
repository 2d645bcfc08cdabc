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

import functools
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..blocks.plan import Layout
from ..core.derived import estimates
from ..core.objective import deviance
from ..errors import ArgumentError
from ..fitting.options import FitOptions
from ..fitting.start import StartPlan, start_from, start_plan
from ..blocks.assembly import assemble, with_response
from ..blocks.types import Arrays, ModelData, Plan
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
    """The device data a fit function reads besides y (and the weights): the plan, the arrays and the data of the
    model's problem (for new weights a plan that keeps term 0's pairs, ``merge=False``), the design's part of the
    moment start (fitting.start.StartPlan) and θ's units."""

    plan: Plan
    arrays: Arrays
    data: ModelData
    start: StartPlan
    scale: jax.Array


def start_at(ctx: Context, y):
    """The start of the fit of response ``y``: its method-of-moments start (fitting/start.py, the start of a fresh
    ``mj.lmm`` of that response), traced (jax.numpy) from the plan in ``ctx``. Every batched fit starts here
    (``refit``, ``fit_function``, every ``fit_many`` and ``bootstrap`` row): sleepstudy's bootstrap replicates took
    7.4 Newton passes on average from the fitted θ̂ against 2.2 from this start, and kb07's L-BFGS refits 58
    evaluations against 31.5 (docs/batched.md). Weights do not enter, as they do not in the model's own start."""
    return start_from(ctx.start, y, jnp)


def context(model, problem=None) -> Context:
    """The Context of a fitted model (host planning, once per model); ``problem``: another plan of its design."""
    p = model.problem if problem is None else problem
    scale = np.asarray(p.theta_scale, float)
    return Context(p.plan, p.arrays, p.data, jax.device_put(start_plan(p.design)), jax.device_put(scale))


def arrays_at(ctx: Context, layout: Layout, y, weights=None) -> Arrays:
    """The arrays for response y: only its rows re-assembled, or, with weights, every block (blocks/assembly.py)."""
    if weights is None:
        return with_response(ctx.plan, ctx.arrays, ctx.data, y, layout)
    return assemble(ctx.plan, ctx.arrays, ctx.data._replace(y=y, weights=weights), layout)


def _gradient_in_theta(theta, y, w, ctx: Context, layout: Layout, reml: bool):
    return jax.grad(deviance)(theta, arrays_at(ctx, layout, y, w), layout, reml)


@partial(jax.custom_jvp, nondiff_argnums=(4, 5))
def implicit_theta(theta_star, y, w, ctx: Context, layout: Layout, reml: bool):
    """θ̂(y, w) given the solver's θ̂ (``theta_star``): the value is θ̂ itself, the derivative the implicit one."""
    return theta_star


@implicit_theta.defjvp
def _implicit_theta_jvp(layout, reml, primals, tangents):
    th, y, w, ctx = primals
    _, dy, dw, _ = tangents
    H = jax.jacfwd(_gradient_in_theta)(th, y, w, ctx, layout, reml)
    _, cross = jax.jvp(lambda yy, ww: _gradient_in_theta(th, yy, ww, ctx, layout, reml), (y, w), (dy, dw))
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


def _reported(theta, y, w, ctx: Context, layout: Layout, reml: bool) -> Reported:
    arrays = arrays_at(ctx, layout, y, w)
    est = estimates(theta, arrays, layout, reml)
    return Reported(est.beta, jnp.sqrt(est.sigma2), tuple(est.b), deviance(theta, arrays, layout, reml))


@partial(jax.custom_jvp, nondiff_argnums=(4, 5))
def reported(theta, y, w, ctx: Context, layout: Layout, reml: bool) -> Reported:
    """β̂, σ̂, b̂ and d at (θ, y). The objective's dense Cholesky has a reverse-mode rule only (core/cholesky.py), so
    the forward derivative is the transpose of the reverse one (jax.linear_transpose of the VJP): exact, and what
    jax.jacfwd and jax.jvp need."""
    return _reported(theta, y, w, ctx, layout, reml)


@reported.defjvp
def _reported_jvp(layout, reml, primals, tangents):
    theta, y, w, ctx = primals
    out, vjp = jax.vjp(lambda t, yy, ww: _reported(t, yy, ww, ctx, layout, reml), theta, y, w)
    (tan,) = jax.linear_transpose(vjp, out)(tangents[:3])
    return out, tan


def fit_at(y, w, ctx: Context, layout: Layout, reml: bool, opts: FitOptions, solver=None
           ) -> tuple[Estimates, Solution]:
    """The fit at response y and weights w (None: the model's; pure JAX): the solve without derivatives, then θ̂
    re-attached to (y, w) implicitly. ``solver``: a batch.solve.Solver, None for the layout's own."""
    y = jnp.asarray(y, dtype=jnp.float64)
    w = None if w is None else jnp.asarray(w, dtype=jnp.float64)
    sg = jax.lax.stop_gradient
    sol = solve(start_at(ctx, sg(y)), arrays_at(ctx, layout, sg(y), None if w is None else sg(w)), layout, reml,
                opts, ctx.scale, solver)
    theta = implicit_theta(sg(sol.theta), y, w, ctx, layout, reml)
    r = reported(theta, y, w, ctx, layout, reml)
    return Estimates(theta, r.beta, r.sigma, r.b, r.objective, sol.converged, sol.result), sol


TRACES = {"fit_at": 0}  # times the single-fit program was traced (tests count recompilations with it)


def _fit_one(y, w, ctx, layout, reml, opts, solver=None):
    TRACES["fit_at"] += 1
    return fit_at(y, w, ctx, layout, reml, opts, solver)


_FIT_ONE_STATIC = ("layout", "reml", "opts", "solver")
_fit_one_plain = jax.jit(_fit_one, static_argnames=_FIT_ONE_STATIC)


@functools.cache
def _fit_one_quick():
    """_fit_one jitted with the quick compile options (fitting.loop.quick_options), as the single fit of a small
    model is (fitting.solve.solve): its run is milliseconds, its compile seconds."""
    from ..fitting.loop import quick_options

    return jax.jit(_fit_one, static_argnames=_FIT_ONE_STATIC, compiler_options=quick_options())


def fit_one_jit(y, w, ctx: Context, layout: Layout, reml: bool, opts: FitOptions, solver=None):
    """The compiled single fit (``m.refit``'s program; large models' ``fit_many`` rows, batch/serial.py): with the
    quick compile options where fitting.loop.use_quick says so."""
    from ..fitting.loop import use_quick
    from .solve import batch_solver

    fn = _fit_one_quick() if use_quick(layout) else _fit_one_plain
    # the solver named, never None: None and the layout's own solver named would be two programs of the same fit
    return fn(y, w, ctx, layout, reml, opts, batch_solver(layout) if solver is None else solver)


def check_weights(weights, n: int):
    """None, or n finite non-negative weights (not all zero) as float64."""
    if weights is None:
        return None
    if isinstance(weights, jax.core.Tracer):
        return weights
    try:
        w = np.asarray(weights, dtype=float)
    except (TypeError, ValueError) as err:
        raise ArgumentError(f"weights must be {n} numbers, one per observation, not {type(weights).__name__}") from err
    if w.shape[-1:] != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or not np.all(w.reshape(-1, n).sum(1) > 0):
        raise ArgumentError(f"weights must be {n} finite non-negative numbers per response (not all zero), got "
                            f"shape {w.shape}")
    return w


def make_fit_function(model, reml=None, opts: FitOptions = FitOptions()):
    """``f(y, weights=None) -> Estimates`` for the model's design (see LinearMixedModel.fit_function)."""
    if reml is not None and not isinstance(reml, (bool, np.bool_)):
        raise ArgumentError(f"reml must be True, False or None (the model's own), not {reml!r}")
    reml = bool(model.reml if reml is None else reml)
    layout, n = model.problem.layout, model.nobs
    ctx, wctx = model._batch_context, None

    def f(y, weights=None) -> Estimates:
        nonlocal wctx
        if jnp.shape(y) != (n,):
            raise ArgumentError(f"y must be a vector of the model's {n} observations, not shape {jnp.shape(y)}; "
                                "for many responses use jax.vmap(f) or mj.fit_many")
        if weights is None:
            return fit_at(y, None, ctx, layout, reml, opts)[0]
        if jnp.shape(weights) != (n,):
            raise ArgumentError(f"weights must be a vector of the model's {n} observations, not shape "
                                f"{jnp.shape(weights)}")
        if wctx is None:
            with jax.ensure_compile_time_eval():  # host planning, even when f is first called inside a trace
                wctx = model._weights_context
        return fit_at(y, check_weights(weights, n), wctx, model._weights_problem.layout, reml, opts)[0]

    return f
