"""Penalised iteratively reweighted least squares (PIRLS) for the conditional modes, as pure JAX functions.

For fixed θ and given β, the modes v = (u, b) minimise the penalised deviance

    g(v) = Σ dev_resid(y, μ(η)) + ‖u‖² + ‖(1 − f) ⊙ (b − β)‖²,    η = offset + X (f ⊙ b + (1 − f) ⊙ β) + Z Λ u,

with ``free`` f over the fixed effects: f = 1 solves for β too (stage 1, ``fast``: lme4's nAGQ = 0), f = 0 holds b
at the given β (stage 2, u alone). ``free`` is a 0/1 array, data of the call, so that one value-and-gradient
program serves both stages (a second one was a second XLA compile of the same loop: grouseticks 3-5 s of a new
process with empty caches); or a Python bool, all or none free, known when tracing, which leaves out the products
that are zero (the Hessian programs, one per fit: with the held rows computed, grouseticks' took 18 ms, not 9).

by Fisher scoring with step halving (Bates et al., lme4's PIRLS; McCullagh & Nelder 1989, section 2.5). The
iterations are a ``lax.while_loop``; derivatives of the modes in (θ, β) are not taken through them but by the
implicit function theorem at the fixed point ∇g(v̂) = 0: v̂' = −H⁻¹ ∂_(θ,β) ∇g, with H the exact Hessian of g/2.

Each step's system Λ'Z'WZΛ + I (with the X rows when β is solved for too) is the engine's M(θ): its blocks are
re-assembled on the device from the working weights (``blocks.assembly.assemble``), factored by
``core.objective.factor`` and solved by ``core.substitution``, the functions the LMM's objective uses.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from ..blocks.assembly import assemble
from ..blocks.types import ModelData
from ..core import substitution
from ..core.indexing import _segsum
from ..core.objective import factor
from .family import eta_second_derivative
from .plan import GlmmData, GlmmPlan, z_lambda

MAXITER = 60  # PIRLS iterations (Newton steps converge in well under 20 from u = 0 in practice)
MAXHALVE = 20  # step halvings per iteration
TOL = 1e-13  # stop when the Newton decrement δ'∇ is below TOL · (1 + g): g is then within that of its minimum
STEP_TOL = 1e-10  # ... and the last step moved no unknown by more than STEP_TOL · (1 + max |v|): the Laplace term is
# not stationary in v, so it is only as accurate as v itself (the decrement alone left v 1e-5 off with a probit link
# and the objective 1e-9 noisy in relative terms, too noisy for the optimiser's line search)


def _mask(free, p: int):
    """``free`` as a 0/1 array of p values."""
    return (jnp.ones(p) if free else jnp.zeros(p)) if isinstance(free, bool) else free


def system(theta, w, data: GlmmData, plan: GlmmPlan, free):
    """The engine's blocked factor of M(θ) for the rows weighted by w (n,): the random-effects block Λ'Z'WZΛ + I and
    the fixed effects' rows, X'WX for the free ones (``free`` = 1) and the identity, uncoupled, for the others. The
    response column is a unit one (y = 0, its diagonal 1), so the factor's y row plays no part; the leading q rows
    are Λ'Z'WZΛ + I's factor whatever ``free`` is."""
    layout = plan.layout
    n, dz, p = layout.n, layout.dz, layout.p
    X = data.X if free is True else jnp.zeros_like(data.X) if free is False else data.X * free[None, :]
    md = ModelData(z=data.z, X=X, y=jnp.zeros(n), weights=w, offset=jnp.zeros(n))
    arrays = assemble(data.blocks, data.skeleton, md, layout)
    ADD = arrays.ADD.at[-1, -1].set(1.0)
    if free is not True:
        ADD = ADD.at[dz : dz + p, dz : dz + p].add(jnp.diag(1.0 - _mask(free, p)))
    return factor(theta, arrays._replace(ADD=ADD), layout)


def solve(F, b, data: GlmmData, plan: GlmmPlan, free):
    """H⁻¹ b for the factor F of :func:`system` (b: q + p values; none free: the fixed effects' rows are the
    identity, uncoupled, and the substitution stops before them)."""
    layout = plan.layout
    if free is False:
        q = plan.q
        return jnp.concatenate([substitution.solve(F, b[:q], data.skeleton, layout, layout.dz), b[q:]])
    return substitution.solve(F, b, data.skeleton, layout, layout.dz + layout.p)


def split(v, free, beta):
    """(u, b) from the unknowns v: the fixed effects in η are v's where ``free``, the given β elsewhere."""
    q = v.shape[0] - beta.shape[0]
    if isinstance(free, bool):
        return v[:q], v[q:] if free else beta
    return v[:q], free * v[q:] + (1.0 - free) * beta


def linear_predictor(A, u, beta, data: GlmmData):
    """η = offset + X β + Σ_entries (Z Λ)_ie u_cols(ie)."""
    return data.offset + data.X @ beta + jnp.sum(A * u[data.cols], axis=1)


def _held(v, free, beta):
    """‖(1 − f) ⊙ (b − β)‖²: holds the fixed effects that are not free at β."""
    if free is True:
        return 0.0
    d = (1.0 - _mask(free, beta.shape[0])) * (v[v.shape[0] - beta.shape[0] :] - beta)
    return d @ d


def penalised_deviance(v, theta, beta, free, plan: GlmmPlan, data: GlmmData):
    """g(v) = Σ dev_resid + ‖u‖² + ‖(1 − f) ⊙ (b − β)‖²."""
    A, _ = z_lambda(theta, plan, data)
    u, b = split(v, free, beta)
    eta = linear_predictor(A, u, b, data)
    fam = plan.family
    return jnp.sum(fam.dev_resid(data.y, fam.linkinv(eta), data.wt)) + u @ u + _held(v, free, beta)


def _score(A, v, eta, beta, free, plan: GlmmPlan, data: GlmmData):
    """−∇(g/2): [Z Λ, X f]' r − (u, (1 − f)(b − β)) with r = wt (y − μ) μ'(η) / V(μ)."""
    fam = plan.family
    mu = fam.linkinv(eta)
    r = data.wt * (data.y - mu) * fam.mu_eta(eta) / fam.variance(mu)
    q = plan.q
    gu = _segsum((A * r[:, None]).reshape(-1), data.cols.reshape(-1), q) - v[:q]
    if isinstance(free, bool):
        return jnp.concatenate([gu, data.X.T @ r if free else beta - v[q:]])
    return jnp.concatenate([gu, free * (data.X.T @ r) - (1.0 - free) * (v[q:] - beta)])


def _pirls(theta, beta, free, data: GlmmData, v0, plan: GlmmPlan):
    """The PIRLS iterations from v0 (its held fixed effects moved to β); returns v̂ and the number of iterations."""
    fam = plan.family
    A, _ = z_lambda(theta, plan, data)
    q = plan.q
    v0 = jnp.concatenate(split(v0, free, beta))

    def g_of(v):
        u, b = split(v, free, beta)
        eta = linear_predictor(A, u, b, data)
        return jnp.sum(fam.dev_resid(data.y, fam.linkinv(eta), data.wt)) + u @ u + _held(v, free, beta), eta

    def cond(c):
        v, g, dec, step, it = c
        return (it < MAXITER) & ((dec > TOL * (1.0 + jnp.abs(g))) | (step > STEP_TOL * (1.0 + jnp.max(jnp.abs(v)))))

    def body(c):
        v, g, _, _, it = c
        u, b = split(v, free, beta)
        eta = linear_predictor(A, u, b, data)
        F = system(theta, fam.working_weights(eta, data.wt), data, plan, free)
        rhs = _score(A, v, eta, beta, free, plan, data)
        delta = solve(F, rhs, data, plan, free)
        dec = delta @ rhs

        def halve(h):
            t, gt, k = h
            t = t / 2
            return t, g_of(v + t * delta)[0], k + 1

        # step halving until g does not increase (beyond rounding); a non-finite g counts as an increase
        t, gt, _ = lax.while_loop(lambda h: ~(h[1] <= g + 1e-12 * jnp.abs(g)) & (h[2] < MAXHALVE), halve,
                                  (1.0, g_of(v + delta)[0], 0))
        ok = gt <= g + 1e-12 * jnp.abs(g)
        # no step taken (g cannot decrease beyond rounding): stop, whatever the step's size
        return (jnp.where(ok, v + t * delta, v), jnp.where(ok, gt, g), jnp.where(ok, dec, 0.0),
                jnp.where(ok, t * jnp.max(jnp.abs(delta)), 0.0), it + 1)

    g0 = g_of(v0)[0]
    v, g, dec, _, it = lax.while_loop(cond, body, (v0, g0, jnp.inf, jnp.inf, 0))
    return v, it


def exact_hessian(v, theta, beta, free, plan: GlmmPlan, data: GlmmData, fisher: bool = False):
    """The blocked factor of the Hessian of g/2 in v at v (observed, not expected, information of the unit
    deviances: the two differ for non-canonical links). ``fisher`` with a canonical link: the weights written as
    Fisher's working weights, the same numbers by the expression the Laplace term's factor uses, so that XLA computes
    that factor once for both (a value-and-gradient program: 1 factorisation fewer per evaluation)."""
    A, _ = z_lambda(theta, plan, data)
    u, b = split(v, free, beta)
    eta = linear_predictor(A, u, b, data)
    fam = plan.family
    w = fam.working_weights(eta, data.wt) if fisher and fam.canonical else eta_second_derivative(fam, data.y, eta,
                                                                                                   data.wt)
    return system(theta, w, data, plan, free)


def modes(theta, beta, free, data: GlmmData, v0, plan: GlmmPlan, fisher: bool = False,
          given: bool = False):
    """The conditional modes v̂ = (û, b̂)(θ, β) by PIRLS from v0 (b̂ = β where not ``free``); differentiable in θ,
    β and the data by the implicit function theorem (v0 only chooses where the iterations start). ``fisher``: how
    the rule's Hessian is written (:func:`exact_hessian`; the same numbers either way). ``given``: v0 already is
    v̂ at (θ, β) (PIRLS converged there, as at the end of a fit): no iterations, the same derivatives (the Hessian
    programs: no PIRLS loop to compile, docs/glmm.md)."""
    if isinstance(free, bool):  # known when tracing: a static argument of the rule
        return _modes(theta, beta, jnp.zeros(0), data, v0, plan, free, fisher, given)
    return _modes(theta, beta, lax.stop_gradient(free), data, v0, plan, None, fisher, given)


@partial(jax.custom_jvp, nondiff_argnums=(5, 6, 7, 8))
def _modes(theta, beta, free, data: GlmmData, v0, plan: GlmmPlan, static, fisher: bool, given: bool):
    free = free if static is None else static
    if given:  # the held fixed effects are β's, as PIRLS's start sets them
        return jnp.concatenate(split(lax.stop_gradient(v0), free, beta))
    return _pirls(theta, beta, free, data, lax.stop_gradient(v0), plan)[0]


@_modes.defjvp
def _modes_jvp(plan, static, fisher, given, primals, tangents):
    theta, beta, free, data, v0 = primals
    dtheta, dbeta, _, ddata, _ = tangents
    v = _modes(theta, beta, free, data, v0, plan, static, fisher, given)
    free = lax.stop_gradient(free) if static is None else static
    grad = lambda th, be, d: jax.grad(penalised_deviance)(v, th, be, free, plan, d) / 2
    _, dF = jax.jvp(grad, (theta, beta, data), (dtheta, dbeta, ddata))
    return v, -solve(exact_hessian(v, theta, beta, free, plan, data, fisher), dF, data, plan, free)


def pirls_iterations(theta, beta, free, data, v0, plan: GlmmPlan):
    """How many PIRLS iterations the modes take at (θ, β) (diagnostics and tests)."""
    return _pirls(theta, beta, free, data, v0, plan)[1]
