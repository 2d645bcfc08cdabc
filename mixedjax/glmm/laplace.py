"""The GLMM objectives: the Laplace approximation to the deviance and adaptive Gauss–Hermite quadrature.

All are pure JAX functions of the parameters (jit/grad/hessian-able); the modes come from :func:`pirls.modes`,
whose derivatives are implicit. On lme4's scale (Bates et al. 2015, section 5; lme4's ``glmerLaplace`` and
``glmerAGQ``):

    Laplace:  Σ dev_resid(y, μ̂) + ‖û‖² + log|L|²,      L L' = Λ'Z' W(μ̂) Z Λ + I,  W Fisher's working weights
    AGQ:      Σ_j [devc_j(û) + log L_jj² − 2 log Σ_k w_k exp(−(devc_j(û_j + z_k/L_jj) − devc_j(û))/2 + z_k²/2)]

with devc_j(u) the deviance residuals of group j plus u_j², and (z_k, w_k) the Gauss–Hermite rule for the
standard normal density. The normalising constants of log p(y | μ) (:func:`family.loglik_constant`) are added for
the log-likelihood on the host; they do not depend on the parameters.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..core.indexing import _segsum
from ..core.substitution import logdet_z
from .pirls import linear_predictor, modes, split, system
from .plan import GlmmData, GlmmPlan, z_lambda


class Evaluation(NamedTuple):
    """Everything at one parameter value. objective: the minimised criterion (Laplace or AGQ deviance, without
    the normalising constant); u: spherical modes (q,); beta (p,); eta: linear predictor (n,); mu (n,);
    logdet: log|L|²; pwrss: Σ dev_resid + ‖u‖²; schur: the lower Cholesky factor (p, p) of the fixed effects'
    block of the penalised system given u, X'WX − X'WZΛ(Λ'Z'WZΛ + I)⁻¹Λ'Z'WX (half the Laplace objective's Hessian
    in β, less the log-determinant's part: what stage 2 whitens β with), from stage 1's evaluations (all fixed
    effects free); the identity in stage 2's, whose factor has no X rows."""

    objective: jax.Array
    u: jax.Array
    beta: jax.Array
    eta: jax.Array
    mu: jax.Array
    logdet: jax.Array
    pwrss: jax.Array
    schur: jax.Array


def _laplace_parts(theta, beta, u, free, plan: GlmmPlan, data: GlmmData):
    fam = plan.family
    A, _ = z_lambda(theta, plan, data)
    eta = linear_predictor(A, u, beta, data)
    mu = fam.linkinv(eta)
    dev = fam.dev_resid(data.y, mu, data.wt)
    # the leading q rows, hence log|L|², do not depend on the X rows (with the free ones: the Schur block)
    F = system(theta, fam.working_weights(eta, data.wt), data, plan, free)
    return A, eta, mu, dev, F, logdet_z(F, plan.layout)


def evaluate(theta, beta, free, data: GlmmData, v0, plan: GlmmPlan, nagq: int = 1,
             fisher: bool = False, given: bool = False) -> Evaluation:
    """The objective in (θ, β) with the modes by PIRLS in (u, the ``free`` fixed effects) from v0 (q + p): free all
    ones (or True) is the objective of ``fast`` in θ (lme4's nAGQ = 0, MixedModels.jl's fast = true; β from
    PIRLS), all zeros (or False) lme4's default second stage (β given, u by PIRLS); pirls.py on the two forms. ``fisher``: the modes' derivative rule in the form that
    shares the Laplace term's factor (pirls.exact_hessian; the gradient programs take it, the Hessian programs not:
    forward over reverse through it was slower, verbagg 159 -> 256 ms). ``given``: v0 is already the modes at
    (θ, β) (pirls.modes: no iterations)."""
    v = modes(theta, beta, free, data, v0, plan, fisher, given)
    u, b = split(v, free, beta)
    A, eta, mu, dev, F, logdet = _laplace_parts(theta, b, u, free, plan, data)
    pwrss = jnp.sum(dev) + u @ u
    obj = pwrss + logdet + _rounding(mu, data) if nagq == 1 else _agq(A, u, eta, dev, F, plan, data, nagq)
    dz = plan.layout.dz
    schur = lax.stop_gradient(F.LDD[dz : dz + plan.p, dz : dz + plan.p])
    return Evaluation(obj, u, b, eta, mu, logdet, pwrss, schur)


def _rounding(mu, data: GlmmData):
    """lme4's Laplace deviance takes its family's aic (R's binomial()$aic, as lme4 computes it), which rounds
    successes and trials that are not whole numbers: its difference from Σ dev_resid (less the constant) is
    −2 Σ (a log μ + b log(1 − μ)); none otherwise
    (the AGQ deviance sums dev_resid alone, as lme4's)."""
    if data.rounding is None:
        return 0.0
    return -2.0 * jnp.sum(data.rounding[:, 0] * jnp.log(mu) + data.rounding[:, 1] * jnp.log1p(-mu))


def gauss_hermite(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the k-point Gauss–Hermite rule for the standard normal density (weights sum to 1)."""
    z, w = np.polynomial.hermite_e.hermegauss(k)
    return z, w / np.sqrt(2.0 * np.pi)


def _agq(A, u, eta, dev, F, plan: GlmmPlan, data: GlmmData, nagq: int):
    """The adaptive Gauss–Hermite deviance for one scalar term (the factor is then diagonal: L_jj)."""
    fam = plan.family
    q = plan.q
    g = data.cols[:, 0]
    devc0 = _segsum(dev, g, q) + u**2
    Ljj2 = F.Lkk[0][:, 0, 0] ** 2
    sd = 1.0 / jnp.sqrt(Ljj2)
    z, w = gauss_hermite(nagq)
    a = A[:, 0]

    def node(zk):
        # the linear predictor with u_j moved to û_j + z_k sd_j in every group
        e = eta + a * (zk * sd)[g]
        return _segsum(fam.dev_resid(data.y, fam.linkinv(e), data.wt), g, q) + (u + zk * sd) ** 2

    devc = jax.vmap(node)(jnp.asarray(z))  # (k, q)
    mult = jnp.sum(jnp.asarray(w)[:, None] * jnp.exp(-(devc - devc0[None, :]) / 2 + jnp.asarray(z)[:, None] ** 2 / 2),
                   axis=0)
    return jnp.sum(devc0) + jnp.sum(jnp.log(Ljj2)) - 2.0 * jnp.sum(jnp.log(mult))


def objective(phi, data: GlmmData, v0, free, plan: GlmmPlan, nagq: int = 1, given: bool = False):
    """The criterion as a function of φ = (θ, β) alone (β is not used where ``free``: PIRLS solves for it)."""
    return evaluate(phi[: plan.ntheta], phi[plan.ntheta :], free, data, v0, plan, nagq, given=given).objective


def _with_aux(phi, data, v0, free, plan, nagq):
    ev = evaluate(phi[: plan.ntheta], phi[plan.ntheta :], free, data, v0, plan, nagq, fisher=True)
    return ev.objective, ev


def objective_joint(phi, data: GlmmData, v0, plan: GlmmPlan, nagq: int = 1):
    """The criterion of the default fit in φ = (θ, β), u by PIRLS from v0 (q + p values, or u's q)."""
    v0 = jnp.asarray(v0)
    v0 = jnp.concatenate([v0, jnp.zeros(plan.p)]) if v0.shape[0] == plan.q else v0
    return objective(phi, data, v0, False, plan, nagq)


def objective_fast(theta, data: GlmmData, v0, plan: GlmmPlan):
    """The criterion of ``fast`` in θ alone, (u, β) by PIRLS from v0."""
    return evaluate(theta, jnp.zeros(plan.p), True, data, v0, plan).objective


def objective_joint_at(phi, data: GlmmData, v, plan: GlmmPlan, nagq: int = 1):
    """:func:`objective_joint` with v (q + p values) the modes (u, β) at φ, where a fit's evaluation found them:
    the same value and derivatives, without PIRLS's iterations (what the Hessian programs differentiate)."""
    return objective(phi, data, v, False, plan, nagq, given=True)


def objective_fast_at(theta, data: GlmmData, v, plan: GlmmPlan):
    """:func:`objective_fast` with v (q + p values) the modes (u, β) at θ."""
    return evaluate(theta, jnp.zeros(plan.p), True, data, v, plan, given=True).objective


def hessian_of(f, pairs: bool = False):
    """The exact Hessian of f(x, data, start, plan, ...) in x, forward over reverse (jax.hessian) on every fill-in
    path. Reverse over reverse (jax.jacrev(jax.jacrev(f)), what the dense-product path used to take) came out all
    NaN on verbagg under XLA's --xla_cpu_multi_thread_eigen=false and in processes that read the program from JAX's
    compilation cache, with every gather and scatter index checked in bounds: an XLA CPU miscompile of that
    program, not arithmetic (docs/glmm.md, "The NaN Hessian"); forward over reverse is finite there, and cheaper.
    ``pairs`` (small models, compiled quick): forward over forward, one second directional derivative per entry
    of the upper triangle, a program without the reverse pass (grouseticks: executable 2.48 MB against 4.07 MB,
    read back 0.62 s against 1.63 s, run 9.3 ms against 11.4 ms; the same Hessian to 1.2e-15)."""
    if not pairs:
        return jax.hessian(f)

    def hessian(x, *args, **kw):
        n = x.shape[0]
        iu, ju = np.triu_indices(n)
        eye = jnp.eye(n)
        along = lambda y, a: jax.jvp(lambda z: f(z, *args, **kw), (y,), (a,))[1]
        d2 = jax.vmap(lambda a, b: jax.jvp(lambda y: along(y, a), (x,), (b,))[1])(eye[iu], eye[ju])
        upper = jnp.zeros((n, n)).at[iu, ju].set(d2)
        return upper + jnp.triu(upper, 1).T

    return hessian


class Compiled(NamedTuple):
    """The jitted functions a fit calls: value_and_grad(φ, data, v0, free, plan, nagq) -> ((value, Evaluation),
    ∇ in φ), one program for both stages (``free`` data of the call); the exact Hessians, one per kind of fit,
    hessian(φ, data, v, plan, nagq) of the default fit and hessian_fast(θ, data, v, plan) of ``fast``, each at the
    modes v = (û, β̂) that value_and_grad's Evaluation at that point gave (:func:`modes_of`; no PIRLS in them)."""

    value_and_grad: object
    hessian: object
    hessian_fast: object

    def joint(self, phi, data, v0, plan: GlmmPlan, nagq: int = 1):
        """value_and_grad of the default fit (β given), u by PIRLS from v0 (q + p values, or u's q)."""
        return self.value_and_grad(phi, data, host_start(v0, plan), np.zeros(plan.p), plan, nagq)

    def fast(self, theta, data, v0, plan: GlmmPlan):
        """value_and_grad of ``fast`` in θ alone: ((value, Evaluation), ∇ in θ)."""
        phi = np.concatenate([np.asarray(theta, float), np.zeros(plan.p)])
        (val, ev), g = self.value_and_grad(phi, data, v0, np.ones(plan.p), plan, 1)
        return (val, ev), np.asarray(g)[: plan.ntheta]


def modes_of(ev: Evaluation) -> np.ndarray:
    """The modes (u, β) of an evaluation (q + p values): PIRLS's start from it, and the Hessians' modes."""
    return np.concatenate([np.asarray(ev.u, float), np.asarray(ev.beta, float)])


def host_start(v0, plan: GlmmPlan) -> np.ndarray:
    """PIRLS's start (q + p values) from stage 2's u alone (q): the fixed effects' part is not used there."""
    v0 = np.asarray(v0, float)
    return np.concatenate([v0, np.zeros(plan.p)]) if v0.shape[0] == plan.q else v0


# flops-like sizes of one PIRLS step (see work) below which the quick compile options are used: they halve the
# compile but make the run several times slower (verbagg, 7,584 rows: value and gradient 5 ms -> 134 ms). The
# Hessian runs once a fit, the value and gradient 20-30 times: its threshold is the higher
QUICK_WORK = 20_000
QUICK_WORK_EVAL = 1_000
# ... and below which the value and gradient, where not quick, is compiled with XLA's fusion emitters off (LLVM
# still optimises): its compile 35-40% shorter for a run 0-14% longer (grouseticks 10.3 -> 6.3 s, 0.56 -> 0.64 ms
# at load 5). Not above QUICK_WORK: verbagg's compile 8.1 -> 4.7 s, but its warm fit 0.184 -> 0.218 s of CPU
LEAN_WORK = QUICK_WORK


def work(plan: GlmmPlan) -> float:
    """A rough size of one PIRLS step: the per-row products and the dense block's Cholesky."""
    return plan.n * plan.S**2 + (plan.layout.dz + plan.p + 1) ** 3 / 3


def _options(tier: str):
    """XLA's options of a tier: "quick" (fitting.loop.QUICK_OPTIONS, those this XLA takes), "light"
    (fitting.loop.LIGHT_OPTIONS: for the Hessian, which runs once a fit), "lean" (the fusion emitters off alone) or
    "full" (XLA's defaults)."""
    from ..fitting.loop import light_options, quick_options

    if tier == "full":
        return None
    if tier == "light":
        return light_options() or None
    options = quick_options()
    if tier == "lean":
        options = {k: v for k, v in options.items() if k == "xla_cpu_use_fusion_emitters"}
    return options or None


def _program(name, fn, narrays, statics, out, tier: str):
    from ..fitting.traces import CachedProgram

    return CachedProgram(f"{name}_{tier}", fn, narrays, statics, out, _options(tier), ahead=True)


@functools.cache
def compiled(eval_tier: str, hessian_tier: str) -> Compiled:
    """The jitted functions, the value and gradient and the Hessians each compiled with the options of its tier
    (:func:`_options`: small models' compile, not their run, is what a fit waits for; the Hessian, run once a fit,
    takes the quick or the light options). Their traced programs are
    kept on disk (fitting.traces): a new process fitting a model of a shape seen before neither traces nor
    compiles. The Hessian of small models (quick) is forward over forward (:func:`hessian_of`)."""
    ev = Evaluation(*[0.0] * len(Evaluation._fields))
    pairs = hessian_tier == "quick"
    return Compiled(
        _program("glmm_vg", jax.value_and_grad(_with_aux, has_aux=True), 4, ("plan", "nagq"), ((0.0, ev), 0.0),
                 eval_tier),
        _program("glmm_hessian", hessian_of(objective_joint_at, pairs), 3, ("plan", "nagq"), 0.0, hessian_tier),
        _program("glmm_hessian_fast", hessian_of(objective_fast_at, pairs), 3, ("plan",), 0.0, hessian_tier),
    )


def _tier(w: float, quick: float) -> str:
    return "quick" if w <= quick else "lean" if w <= LEAN_WORK else "full"


def compiled_for(plan: GlmmPlan) -> Compiled:
    w = work(plan)
    return compiled(_tier(w, QUICK_WORK_EVAL), "quick" if w <= QUICK_WORK else "light")


def prefetch(plan: GlmmPlan, data: GlmmData, nagq: int, fast: bool) -> None:
    """Make the programs a fit will call, in the order it calls them: traced here (a program traced before is
    read back in the background), each compiled in the background while the next is traced (fitting.traces), so
    that a new process with empty caches traces the Hessian while the value and gradient compile. The shapes and
    dtypes are those the fit passes (φ, v0 and free as numpy; stage 1 is the Laplace program, nagq = 1)."""
    c = compiled_for(plan)
    k, q, p = plan.ntheta, plan.q, plan.p
    v0 = np.zeros(q + p)
    c.value_and_grad.prefetch(np.zeros(k + p), data, v0, np.zeros(p), plan, 1)
    if fast:
        c.hessian_fast.prefetch(np.zeros(k), data, v0, plan)
        return
    if nagq > 1:
        c.value_and_grad.prefetch(np.zeros(k + p), data, v0, np.zeros(p), plan, nagq)
    c.hessian.prefetch(np.zeros(k + p), data, v0, plan, nagq)
