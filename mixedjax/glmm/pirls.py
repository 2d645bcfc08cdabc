"""Penalised iteratively reweighted least squares (PIRLS) for the conditional modes, as pure JAX functions.

For fixed θ (and β, unless β is solved for too: ``fast``), the modes minimise the penalised deviance

    g(v) = Σ dev_resid(y, μ(η)) + ‖u‖²,    η = offset + X β + Z Λ u,     v = u  or  v = (u, β),

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


def system(theta, w, data: GlmmData, plan: GlmmPlan, with_beta: bool):
    """The engine's blocked factor of M(θ) for the rows weighted by w (n,): the random-effects block Λ'Z'WZΛ + I and,
    ``with_beta``, the fixed effects' rows X'WX. The response column is a unit one (y = 0, its diagonal 1), so the
    factor's y row plays no part; without β, X's rows are the identity, uncoupled (the leading q rows are then
    Λ'Z'WZΛ + I's factor whatever the signs of w)."""
    layout = plan.layout
    n, dz, p = layout.n, layout.dz, layout.p
    md = ModelData(z=data.z, X=data.X if with_beta else jnp.zeros_like(data.X), y=jnp.zeros(n), weights=w,
                   offset=jnp.zeros(n))
    arrays = assemble(data.blocks, data.skeleton, md, layout)
    ADD = arrays.ADD.at[-1, -1].set(1.0)
    if not with_beta:
        ADD = ADD.at[dz : dz + p, dz : dz + p].set(jnp.eye(p))
    return factor(theta, arrays._replace(ADD=ADD), layout)


def solve(F, b, data: GlmmData, plan: GlmmPlan, fast: bool):
    """H⁻¹ b for the factor F of :func:`system` (b: q values, or q + p when ``fast``)."""
    layout = plan.layout
    return substitution.solve(F, b, data.skeleton, layout, layout.dz + (layout.p if fast else 0))


def split(v, plan: GlmmPlan, fast: bool, beta):
    """(u, β) from the unknowns v (β is the given one unless it is solved for)."""
    return (v[: plan.q], v[plan.q :]) if fast else (v, beta)


def linear_predictor(A, u, beta, data: GlmmData):
    """η = offset + X β + Σ_entries (Z Λ)_ie u_cols(ie)."""
    return data.offset + data.X @ beta + jnp.sum(A * u[data.cols], axis=1)


def penalised_deviance(v, theta, beta, plan: GlmmPlan, data: GlmmData, fast: bool):
    """g(v) = Σ dev_resid + ‖u‖²."""
    A, _ = z_lambda(theta, plan, data)
    u, b = split(v, plan, fast, beta)
    eta = linear_predictor(A, u, b, data)
    fam = plan.family
    return jnp.sum(fam.dev_resid(data.y, fam.linkinv(eta), data.wt)) + u @ u


def _score(A, u, eta, plan: GlmmPlan, data: GlmmData, fast: bool):
    """−∇(g/2): [Z Λ, X]' r − (u, 0) with r = wt (y − μ) μ'(η) / V(μ)."""
    fam = plan.family
    mu = fam.linkinv(eta)
    r = data.wt * (data.y - mu) * fam.mu_eta(eta) / fam.variance(mu)
    gu = _segsum((A * r[:, None]).reshape(-1), data.cols.reshape(-1), plan.q) - u
    return jnp.concatenate([gu, data.X.T @ r]) if fast else gu


def _pirls(theta, beta, data: GlmmData, v0, plan: GlmmPlan, fast: bool):
    """The PIRLS iterations from v0; returns v̂ and the number of iterations."""
    fam = plan.family
    A, _ = z_lambda(theta, plan, data)

    def g_of(v):
        u, b = split(v, plan, fast, beta)
        eta = linear_predictor(A, u, b, data)
        return jnp.sum(fam.dev_resid(data.y, fam.linkinv(eta), data.wt)) + u @ u, eta

    def cond(c):
        v, g, dec, step, it = c
        return (it < MAXITER) & ((dec > TOL * (1.0 + jnp.abs(g))) | (step > STEP_TOL * (1.0 + jnp.max(jnp.abs(v)))))

    def body(c):
        v, g, _, _, it = c
        u, b = split(v, plan, fast, beta)
        eta = linear_predictor(A, u, b, data)
        F = system(theta, fam.working_weights(eta, data.wt), data, plan, fast)
        rhs = _score(A, u, eta, plan, data, fast)
        delta = solve(F, rhs, data, plan, fast)
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


def exact_hessian(v, theta, beta, plan: GlmmPlan, data: GlmmData, fast: bool, fisher: bool = False):
    """The blocked factor of the Hessian of g/2 in v at v (observed, not expected, information of the unit
    deviances: the two differ for non-canonical links). ``fisher`` with a canonical link: the weights written as
    Fisher's working weights, the same numbers by the expression the Laplace term's factor uses, so that XLA computes
    that factor once for both (a value-and-gradient program: 1 factorisation fewer per evaluation)."""
    A, _ = z_lambda(theta, plan, data)
    u, b = split(v, plan, fast, beta)
    eta = linear_predictor(A, u, b, data)
    fam = plan.family
    w = fam.working_weights(eta, data.wt) if fisher and fam.canonical else eta_second_derivative(fam, data.y, eta,
                                                                                                   data.wt)
    return system(theta, w, data, plan, fast)


@partial(jax.custom_jvp, nondiff_argnums=(4, 5, 6))
def modes(theta, beta, data: GlmmData, v0, plan: GlmmPlan, fast: bool, fisher: bool = False):
    """The conditional modes v̂(θ, β) (u, or (u, β) when ``fast``) by PIRLS from v0; differentiable in θ, β and the
    data by the implicit function theorem (v0 only chooses where the iterations start). ``fisher``: how the rule's
    Hessian is written (:func:`exact_hessian`; the same numbers either way)."""
    return _pirls(theta, beta, data, lax.stop_gradient(v0), plan, fast)[0]


@modes.defjvp
def _modes_jvp(plan, fast, fisher, primals, tangents):
    theta, beta, data, v0 = primals
    dtheta, dbeta, ddata, _ = tangents
    v = modes(theta, beta, data, v0, plan, fast, fisher)
    grad = lambda th, be, d: jax.grad(penalised_deviance)(v, th, be, plan, d, fast) / 2
    _, dF = jax.jvp(grad, (theta, beta, data), (dtheta, dbeta, ddata))
    return v, -solve(exact_hessian(v, theta, beta, plan, data, fast, fisher), dF, data, plan, fast)


def pirls_iterations(theta, beta, data, v0, plan: GlmmPlan, fast: bool):
    """How many PIRLS iterations the modes take at (θ, β) (diagnostics and tests)."""
    return _pirls(theta, beta, data, v0, plan, fast)[1]
