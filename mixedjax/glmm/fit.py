"""Fitting a GLMM: θ with β from PIRLS (stage 1, lme4's nAGQ = 0), then (θ, β) together (stage 2, the default).

Both stages minimise a pure JAX objective with its exact gradient by L-BFGS-B (scipy, on the host: one jitted
value-and-gradient call per evaluation), with θ's diagonal entries bounded below by 0 as in lme4. The exact
Hessian in the optimised parameters at the end decides convergence and gives Cov(β̂).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize

from .laplace import Evaluation, compiled_for
from .plan import GlmmData, GlmmPlan


class Status(enum.Enum):
    CONVERGED = "converged"
    CONVERGED_BOUNDARY = "converged on the boundary (singular fit)"
    ITERATION_LIMIT = "not converged: the iteration limit was reached"
    LINE_SEARCH = "not converged: the line search could not decrease the objective"
    NOT_FINITE = "not converged: the objective or its gradient is not finite"
    SADDLE = "not converged: the Hessian at the result has a negative eigenvalue"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class GlmmOptions:
    maxiter: int = 1000
    gtol: float = 1e-7  # L-BFGS-B stops when every projected gradient entry is below this
    ftol: float = 1e-14  # ... or when an iteration lowers the objective by less than this relative amount


class StageResult(NamedTuple):
    """One stage's result: x the optimised parameters; fmin; gradient and Hessian at x (exact; None where not
    needed: stage 1 of a fit that goes on to stage 2); iterations and evaluations; status; the evaluation at x."""

    x: np.ndarray
    fmin: float
    gradient: np.ndarray
    hessian: np.ndarray | None
    iterations: int
    feval: int
    status: Status
    evaluation: Evaluation


def theta_bounds(plan: GlmmPlan) -> list[tuple[float | None, float | None]]:
    """0 below for the diagonal entries of each λ_k, unbounded otherwise (lme4's lower bounds)."""
    out = []
    for t in plan.terms:
        out.extend((0.0, None) if r == c else (None, None) for r, c in t.pattern)
    return out


def _minimise(fun_grad, x0, bounds, opts: GlmmOptions, verbose: bool, label: str):
    log = []

    def f(x):
        (val, _), g = fun_grad(jnp.asarray(x))
        val, g = float(val), np.asarray(g, dtype=float)
        log.append(val)
        if verbose:
            print(f"{label} {len(log):4d}: {val:.10g}  {np.round(x, 6).tolist()}")
        if not np.isfinite(val):
            return np.inf, np.zeros_like(g)
        return val, g

    res = minimize(f, np.asarray(x0, float), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": opts.maxiter, "gtol": opts.gtol, "ftol": opts.ftol, "maxcor": 20})
    return res, len(log)


def _verdict(res, g, H, free) -> Status:
    if not (np.isfinite(res.fun) and np.all(np.isfinite(g)) and (H is None or np.all(np.isfinite(H)))):
        return Status.NOT_FINITE
    eig = np.linalg.eigvalsh(H[np.ix_(free, free)]) if H is not None and free.any() else np.zeros(0)
    if eig.size and eig.min() < -1e-6 * max(1.0, float(np.abs(eig).max())):
        return Status.SADDLE
    if res.status == 1 or res.nit >= res.get("maxiter", 10**9):
        return Status.ITERATION_LIMIT
    if not res.success:
        # L-BFGS-B's "abnormal termination in line search" at an optimum whose gradient is at rounding level
        gmax = float(np.max(np.abs(g[free]))) if free.any() else 0.0
        if gmax > 1e-4 * max(1.0, abs(res.fun)) ** 0.5:
            return Status.LINE_SEARCH
    return Status.CONVERGED if free.all() else Status.CONVERGED_BOUNDARY


def _free(x, bounds) -> np.ndarray:
    return np.array([not (lo is not None and xi <= lo) for xi, (lo, _) in zip(x, bounds)])


def fit_fast(plan: GlmmPlan, data: GlmmData, theta0, v0, opts: GlmmOptions, verbose: bool,
             with_hessian: bool) -> StageResult:
    """Stage 1: θ with β and u from PIRLS (the Hessian in θ only when ``with_hessian``: the fit ends here)."""
    c = compiled_for(plan)
    bounds = theta_bounds(plan)
    res, nf = _minimise(lambda th: c.value_and_grad_fast(th, data, v0, plan), theta0, bounds, opts, verbose,
                        "θ (β by PIRLS)")
    x = np.asarray(res.x, float)
    (val, ev), g = c.value_and_grad_fast(jnp.asarray(x), data, v0, plan)
    H = np.asarray(c.hessian_fast(jnp.asarray(x), data, v0, plan)) if with_hessian else None
    g = np.asarray(g)
    return StageResult(x, float(val), g, H, int(res.nit), nf + 1, _verdict(res, g, H, _free(x, bounds)), ev)


def fit_joint(plan: GlmmPlan, data: GlmmData, phi0, u0, nagq: int, opts: GlmmOptions, verbose: bool) -> StageResult:
    """Stage 2: φ = (θ, β) together, with u from PIRLS."""
    c = compiled_for(plan)
    bounds = theta_bounds(plan) + [(None, None)] * plan.p
    res, nf = _minimise(lambda ph: c.value_and_grad(ph, data, u0, plan, nagq), phi0, bounds, opts, verbose,
                        "(θ, β)")
    x = np.asarray(res.x, float)
    (val, ev), g = c.value_and_grad(jnp.asarray(x), data, u0, plan, nagq)
    H = np.asarray(c.hessian(jnp.asarray(x), data, u0, plan, nagq))
    g = np.asarray(g)
    return StageResult(x, float(val), g, H, int(res.nit), nf + 1, _verdict(res, g, H, _free(x, bounds)), ev)


def glm_start(X, y, wt, offset, family, iters: int = 50) -> np.ndarray:
    """β of the GLM without random effects by IRLS on the host (numpy): where stage 1's PIRLS starts."""
    # R's family()$initialize starting values
    if family.dist.value == "binomial":
        mu = (wt * y + 0.5) / (wt + 1.0)
    else:
        mu = y + 0.1
    eta = np.asarray(family.linkfun(jnp.asarray(mu)))
    beta = np.zeros(X.shape[1])
    for _ in range(iters):
        me = np.asarray(family.mu_eta(jnp.asarray(eta)))
        mu = np.asarray(family.linkinv(jnp.asarray(eta)))
        w = wt * me**2 / np.asarray(family.variance(jnp.asarray(mu)))
        z = eta - offset + (y - mu) / me
        sw = np.sqrt(w)
        new = np.linalg.lstsq(X * sw[:, None], z * sw, rcond=None)[0]
        done = np.max(np.abs(new - beta)) < 1e-10 * (1 + np.max(np.abs(beta)))
        beta = new
        eta = offset + X @ beta
        if done:
            break
    return beta
