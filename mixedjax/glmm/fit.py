"""Fitting a GLMM: θ with β from PIRLS (stage 1, lme4's nAGQ = 0), then (θ, β) together (stage 2, the default).

Both stages minimise a pure JAX objective with its exact gradient by L-BFGS-B (scipy, on the host: one jitted
value-and-gradient call per evaluation) over unconstrained θ, rectified afterwards. The exact
Hessian in the optimised parameters at the end decides convergence and gives Cov(β̂).
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..fitting.solve import diagonal_indices, rectify
from .laplace import Evaluation, compiled_for, modes_of
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
    needed: stage 1 of a fit that goes on to stage 2); iterations and evaluations; status; the evaluation at x;
    curvature: L-BFGS-B's estimate of the Hessian in x at the end (stage 1: what stage 2 whitens θ with)."""

    x: np.ndarray
    fmin: float
    gradient: np.ndarray
    hessian: np.ndarray | None
    iterations: int
    feval: int
    status: Status
    evaluation: Evaluation
    curvature: np.ndarray | None = None


# a variance parameter that ends at zero is moved to each of these in turn, to see whether the objective decreases:
# it is even in that parameter, so its gradient there is zero whatever the curvature, and an optimum close to zero
# (θ = 0.033 on a 10-group cloglog model, where 0.1 was already higher than 0) is found only by a probe near it
PROBES = (0.1, 0.01, 0.001)
MAX_RESTARTS = 3


def _lbfgs_module():
    from scipy import optimize  # here, not at import: scipy.optimize is 0.5 s of a new process (0.19 s scipy.linalg)

    return optimize


def _lbfgs(f, x0, opts: GlmmOptions):
    return _lbfgs_module().minimize(f, np.asarray(x0, float), jac=True, method="L-BFGS-B",
                    options={"maxiter": opts.maxiter, "gtol": opts.gtol, "ftol": opts.ftol, "maxcor": 20})


def _minimise(fun_grad, x0, plan: GlmmPlan, opts: GlmmOptions, verbose: bool, label: str):
    """L-BFGS-B over unconstrained θ (the objective does not change when a column of λ_k changes sign; the result
    is rectified to non-negative diagonals, as for LMMs). The gradient in a diagonal θ entry is zero where it is 0,
    so a run that stops there (L-BFGS-B's first unit step can land on it exactly: cbpp with a probit link) is
    restarted from the first of PROBES that is lower. ``plan=None``: x is not θ (no probe, no rectification)."""
    log = []
    last = {}  # the last finite evaluation: x -> ((value, Evaluation), gradient), so the end point is not recomputed

    def f(x):
        out = fun_grad(np.asarray(x, float))  # numpy: the jitted call transfers it (jax.device_put: 0.5 ms)
        (val, _), g = out
        val, g = float(val), np.asarray(g, dtype=float)
        log.append(val)
        if np.isfinite(val):
            last.clear()
            last[np.asarray(x, float).tobytes()] = out
        if verbose:
            print(f"{label} {len(log):4d}: {val:.10g}  {np.round(x, 6).tolist()}")
        if not np.isfinite(val):
            return np.inf, np.zeros_like(g)
        return val, g

    res = _lbfgs(f, x0, opts)
    nit = res.nit
    if plan is None:
        return res, np.array(res.x, float), nit, len(log), last
    diag = np.array(diagonal_indices(plan))
    for _ in range(MAX_RESTARTS):
        zero = diag[np.abs(res.x[diag]) < 1e-8]
        if not zero.size:
            break
        for probe in PROBES:
            x1 = np.array(res.x, float)
            x1[zero] = probe
            if f(x1)[0] < res.fun:
                break
        else:
            break
        res = _lbfgs(f, x1, opts)
        nit += res.nit
    x = np.array(res.x, float)
    k = plan.ntheta
    x[:k] = x[:k] * rectify(x[:k], plan.layout)  # on the host: numpy in, numpy out
    return res, x, nit, len(log), last


STEP_TOL = 1e-4  # converged when the Newton step −H⁻¹∇ at the result moves no free parameter by more than this


def _verdict(res, g, H, free) -> Status:
    """The status from L-BFGS-B's result and the exact gradient and Hessian at x; ``free``: the parameters not at
    zero on a diagonal of λ (a singular fit), over which the Hessian must be positive semi-definite and the Newton
    step small (lme4's check of the scaled gradient, with the exact Hessian)."""
    if not (np.isfinite(res.fun) and np.all(np.isfinite(g)) and (H is None or np.all(np.isfinite(H)))):
        return Status.NOT_FINITE
    if H is not None and free.any():
        Hf = H[np.ix_(free, free)]
        eig = np.linalg.eigvalsh(Hf)
        if eig.min() < -1e-6 * max(1.0, float(np.abs(eig).max())):
            return Status.SADDLE
        step = np.linalg.lstsq(Hf, g[free], rcond=None)[0]
        if np.max(np.abs(step)) > STEP_TOL:
            return Status.ITERATION_LIMIT if res.status == 1 else Status.LINE_SEARCH  # scipy: 1, a limit reached
    elif not res.success:
        return Status.LINE_SEARCH
    return Status.CONVERGED if free.all() else Status.CONVERGED_BOUNDARY


BOUNDARY = 1e-4  # a diagonal θ entry below this is at the boundary (as LinearMixedModel.is_singular)


def free_parameters(x, plan: GlmmPlan) -> np.ndarray:
    """False for the diagonal θ entries at the boundary (|θ| < BOUNDARY), True for the others and for β."""
    out = np.ones(len(x), bool)
    d = np.array(diagonal_indices(plan))
    out[d[np.abs(x[d]) < BOUNDARY]] = False
    return out


SNAP = 1e-3  # a diagonal θ entry below this is set to zero when the objective rises by at most SNAP_RISE
SNAP_RISE = 1e-5


def _snap(value, x, plan: GlmmPlan) -> np.ndarray:
    """MixedModels.jl's rule, as for LMMs: near-zero diagonal θ entries snapped to zero when the objective (``value``
    of the parameter vector) does not rise by more than SNAP_RISE (the objective is flat there: even in θ_i)."""
    f = None  # evaluated only when an entry is near zero (most fits have none: one evaluation fewer)
    for i in diagonal_indices(plan):
        if 0 < abs(x[i]) < SNAP:
            f = value(x) if f is None else f
            trial = np.array(x, float)
            trial[i] = 0.0
            ft = value(trial)
            if ft <= f + SNAP_RISE:
                x, f = trial, ft
    return x


class WarmStart:
    """Where PIRLS starts: the modes (u, β) of the last evaluation with a finite objective (lme4 likewise carries u
    from one evaluation to the next; β is PIRLS's start only where it is free, stage 1). Successive evaluations of an optimiser are close, so PIRLS then takes 2-3 iterations
    instead of 5-7 from u = 0 (verbagg). The modes' derivatives are implicit, so the start changes nothing but where
    the iterations begin; the fit's result is the same to PIRLS's tolerance."""

    def __init__(self, v0):
        self.v = v0

    def wrap(self, fun):
        """fun(x, v) -> ((value, Evaluation), gradient) as a function of x alone, moving the start to each finite
        evaluation's modes; the gradient's first len(x) entries (the program's has one per (θ, β) entry)."""

        def call(x):
            (val, ev), g = fun(x, self.v)
            # value, gradient and modes to the host in one transfer (they were three, and a program joining u and
            # β: four round trips per evaluation); the start stays on the host, as the first one was: a device
            # array would be another argument type for the compiled program, which XLA would compile a second
            # time (grouseticks: 4 s in a new process)
            host = jax.device_get((val, g, ev.u, ev.beta))
            if np.isfinite(float(host[0])):
                self.v = np.concatenate([np.ravel(h) for h in host[2:]])
            return (host[0], ev), host[1][: np.size(x)]

        return call


def _curvature(res, n: int) -> np.ndarray:
    """L-BFGS-B's estimate of the Hessian (the inverse of its inverse-Hessian product), n × n."""
    B = np.asarray(res.hess_inv.todense(), float) if hasattr(res.hess_inv, "todense") else np.eye(n)
    B = np.linalg.inv((B + B.T) / 2)
    return (B + B.T) / 2


def fit_fast(plan: GlmmPlan, data: GlmmData, theta0, v0, opts: GlmmOptions, verbose: bool,
             with_hessian: bool) -> StageResult:
    """Stage 1: θ with β and u from PIRLS (the Hessian in θ only when ``with_hessian``: the fit ends here, and a run
    that stops short is run again whitened by that Hessian, as stage 2's)."""
    c = compiled_for(plan)
    _lbfgs_module()  # imported while the programs are read in the background (laplace.prefetch), not after
    # one program for every evaluation, the data and free bound once: no cache key or flattening of the data per call
    k, held = plan.ntheta, np.zeros(plan.p)
    bound = c.value_and_grad.bind(np.zeros(k + plan.p), data, v0, np.ones(plan.p), plan, 1, fixed=(1, 3))
    vg = lambda th, v: bound(np.concatenate([th, held]), v)  # β is PIRLS's: its entries of φ are not used
    start = WarmStart(v0)
    res, x, nit, nf, last = _minimise(start.wrap(vg), theta0, plan, opts, verbose, "θ (β by PIRLS)")
    if with_hessian:  # the fit ends here: snap, and the exact Hessian for the verdict and Cov(β̂)
        x = _snap(lambda t: float(vg(t, v0)[0][0]), x, plan)
    out = last.get(x.tobytes())
    (val, ev), g = out if out is not None else vg(x, start.v)
    H = np.asarray(c.hessian_fast(x, data, modes_of(ev), plan)) if with_hessian else None
    g = np.asarray(g)[:k]
    # rectification flips the signs of some θ entries: the estimate's rows and columns flip with them
    sign = np.where(np.sign(x) == -np.sign(res.x), -1.0, 1.0)
    B = _curvature(res, len(x)) * np.outer(sign, sign)
    first = StageResult(x, float(val), g, H, nit, nf + (out is None), _verdict(res, g, H, free_parameters(x, plan)),
                        ev, B)
    if not with_hessian:
        return first
    hess = lambda th, v: np.asarray(c.hessian_fast(th, data, v, plan))  # at the modes v of θ
    return _rerun(first, plan, lambda o, R: _whitened_run(
        vg, hess, plan, o.x, R, modes_of(o.evaluation), opts, verbose, "θ (β by PIRLS), again"))


def whitening(stage1: StageResult, p: int) -> np.ndarray:
    """R⁻¹ with φ = φ0 + R⁻¹ x̃, from a block-diagonal estimate of the Hessian at stage 1's result in (θ, β):
    L-BFGS-B's estimate in θ (of the Hessian of the profile in θ, the Schur complement of the θ block) and
    2 L L' in β, L the Cholesky factor of the Schur block of PIRLS's system (half the Hessian of the penalised
    deviance in β with u at its modes; the log-determinant's part is small). θ and β can be on very different
    scales (grouseticks' slope of a covariate spread over ±60), so L-BFGS-B's unit first step is then about a Newton
    step. Neither estimate costs an evaluation (the exact Hessian here was a second one per fit: verbagg 160 ms)."""
    k = len(stage1.x)
    L = np.asarray(stage1.evaluation.schur)
    H0 = np.zeros((k + p, k + p))
    H0[:k, :k] = stage1.curvature
    H0[k:, k:] = 2 * L @ L.T
    return _inverse_root(H0)


def _inverse_root(H0) -> np.ndarray:
    """V Λ^(-1/2) for H0 = V Λ V' (eigenvalues floored), so that H0 is the identity in the new coordinates."""
    if not np.all(np.isfinite(H0)):  # a start where an estimate failed: unscaled coordinates
        H0 = np.eye(len(H0))
    lam, V = np.linalg.eigh((H0 + H0.T) / 2)
    lam = np.maximum(lam, 1e-6 * max(float(np.abs(lam).max()), 1e-12))
    return V / np.sqrt(lam)[None, :]


RESTARTS = 2  # reruns whitened by the exact Hessian when a run stops short of the optimum


def fit_joint(plan: GlmmPlan, data: GlmmData, stage1: StageResult, u0, nagq: int, opts: GlmmOptions,
              verbose: bool) -> StageResult:
    """Stage 2: φ = (θ, β) together, with u from PIRLS, from stage 1's result, in coordinates whitened by
    :func:`whitening`; rerun by :func:`_rerun` when it stops short."""
    phi0 = np.concatenate([stage1.x, np.asarray(stage1.evaluation.beta)])
    c = compiled_for(plan)
    held = np.zeros(plan.p)
    vg = c.value_and_grad.bind(phi0, data, u0, held, plan, nagq, fixed=(1, 3))
    hess = lambda ph, v: np.asarray(c.hessian(ph, data, v, plan, nagq))  # at the modes v of φ
    run = lambda x0, R, v0: _whitened_run(vg, hess, plan, x0, R, v0, opts, verbose, "(θ, β)")
    out = run(phi0, whitening(stage1, plan.p), u0)
    return _rerun(out, plan, lambda o, R: run(o.x, R, modes_of(o.evaluation)))


def _rerun(out: StageResult, plan: GlmmPlan, run) -> StageResult:
    """A run whose verdict is not converged but whose exact Hessian (computed for the verdict anyway) is positive
    definite over the free parameters is run again from its end, whitened by that Hessian (``run(out, R)``), at most
    RESTARTS times, and kept when it is not higher: L-BFGS-B's estimate of the curvature that whitened the first run
    can be far off (stage 1's last steps at one θ), and the run then stalls in the badly scaled coordinates (a
    cloglog model: estimate 3.4e6 against the exact 159, θ stuck 7e-4 short)."""
    for _ in range(RESTARTS):
        if out.status not in (Status.LINE_SEARCH, Status.ITERATION_LIMIT):
            break
        free = free_parameters(out.x, plan)
        Hf = out.hessian[np.ix_(free, free)]
        if not free.any() or np.linalg.eigvalsh(Hf).min() <= 0:
            break
        R = np.zeros((len(out.x), int(free.sum())))
        R[free] = _inverse_root(Hf)  # parameters at the boundary stay there
        again = run(out, R)
        if not again.fmin <= out.fmin:
            break
        out = again._replace(iterations=out.iterations + again.iterations, feval=out.feval + again.feval)
    return out


def _whitened_run(vg, hessian, plan: GlmmPlan, x0, Rinv, v0, opts: GlmmOptions, verbose: bool,
                  label: str) -> StageResult:
    """One L-BFGS-B run in x = x0 + R⁻¹ x̃ from x̃ = 0 (x: θ, then β unless PIRLS solves for β: stage 1), then
    the exact Hessian (``hessian(x, v)``, at the modes v of x's evaluation) and the verdict at its end."""
    start = WarmStart(v0)
    call = start.wrap(vg)
    last = {}  # x -> its evaluation, so that the end point is not evaluated again

    def whitened(xt):
        x = x0 + Rinv @ np.asarray(xt)
        out = call(x)
        (val, ev), g = out
        last.clear()
        last[x.tobytes()] = out
        return (val, ev), Rinv.T @ np.asarray(g)

    res, xt, nit, nf, _ = _minimise(whitened, np.zeros(Rinv.shape[1]), None, opts, verbose, label)
    x = x0 + Rinv @ np.asarray(res.x)
    k = plan.ntheta
    x[:k] = x[:k] * rectify(x[:k], plan.layout)  # on the host: numpy in, numpy out
    x = _snap(lambda t: float(vg(t, start.v)[0][0]), x, plan)
    out = last.get(x.tobytes())
    (val, ev), g = out if out is not None else vg(x, start.v)
    H = hessian(x, modes_of(ev))
    g = np.asarray(g)[: len(x)]
    return StageResult(x, float(val), g, H, nit, nf + (out is None), _verdict(res, g, H, free_parameters(x, plan)),
                       ev)


def glm_start(X, y, wt, offset, family, iters: int = 50) -> np.ndarray:
    """β of the GLM without random effects by IRLS: where stage 1's PIRLS starts (one compiled program: the family's
    functions called eagerly would compile one per operation, a second of a new process's fit; kept on disk with
    its compiled form read from JAX's cache in the background, fitting.traces: tracing it each time was most of
    its 0.4 s in a new process)."""
    return np.asarray(_glm_program()(*(np.asarray(a, dtype=float) for a in (X, y, wt, offset)), family, iters))


def glm_prefetch(X, family, iters: int = 50) -> None:
    """Start making glm_start's program for a design like X: traced here, compiled (or read back) in the background
    (fitting.traces.CachedProgram.prefetch)."""
    z = np.zeros(len(X))
    _glm_program().prefetch(np.zeros(np.shape(X)), z, z, z, family, iters)


@functools.cache
def _glm_program():
    from ..fitting.traces import CachedProgram

    return CachedProgram("glmm_glm_start", _glm_irls, 4, ("family", "iters"), 0.0, ahead=True)


def _glm_irls(X, y, wt, offset, family, iters):
    # R's family()$initialize starting values
    if family.dist.value == "binomial":
        mu = (wt * y + 0.5) / (wt + 1.0)
    else:
        mu = y + 0.1
    eta0 = family.linkfun(mu)

    def step(c):
        beta, eta, it, _ = c
        me = family.mu_eta(eta)
        mu = family.linkinv(eta)
        sw = jnp.sqrt(wt * me**2 / family.variance(mu))
        z = eta - offset + (y - mu) / me
        new = jnp.linalg.lstsq(X * sw[:, None], z * sw)[0]
        done = jnp.max(jnp.abs(new - beta)) < 1e-10 * (1 + jnp.max(jnp.abs(beta)))
        return new, offset + X @ new, it + 1, done

    beta, _, _, _ = lax.while_loop(lambda c: (c[2] < iters) & ~c[3], step,
                                   (jnp.zeros(X.shape[1]), eta0, 0, False))
    return beta
