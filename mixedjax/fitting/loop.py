"""Minimise d(θ): optax L-BFGS in one jitted loop, then sign rectification and zero snapping (DESIGN.md section 4).

θ is unconstrained: d(θ) does not change when a column of λ changes sign, so no bounds are needed. The loop is a pure
function of (θ₀, arrays); every evaluation is written to a buffer in its state, which becomes the fit log.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..blocks.plan import Layout
from ..core.objective import deviance

STATUS = {
    0: "running",
    1: "converged: the gradient is zero to tolerance",
    2: "converged: the objective stopped decreasing",
    3: "not converged: the iteration limit was reached",
    4: "not converged: the line search could not decrease the objective",
    5: "not converged: the evaluation limit was reached",
}


@dataclass(frozen=True)
class FitOptions:
    maxiter: int = 500
    gtol: float = 1e-8  # stop when max|∇d| <= gtol * max(1, |d|)
    ftol: float = 1e-12  # ... or when an iteration lowers d by less than ftol * |d| (MixedModels.jl's ftol_rel)
    # (1e-13 lay below the objective's rounding noise, about 1e-12 of d: penicillin then wandered 27 evaluations
    # at the optimum, accepting noise as descent, before the rule fired)
    memory: int = 10
    maxeval: int = 2000  # size of the fit log buffer; the fit stops when it is full
    max_linesearch: int = 30
    optimizer: str = "lbfgs"  # or "bobyqa": NLopt's derivative-free BOBYQA on the host (see _bobyqa)


OPTIMIZERS = ("lbfgs", "bobyqa")
NOISE = 1e-12  # relative rounding noise of d allowed in the line search's sufficient-decrease test


def _loop(theta0, scale, arrays, layout: Layout, reml: bool, opts: FitOptions, verbose: bool = False):
    """The whole fit as one pure function: L-BFGS directions from optax, a backtracking (Armijo) line search, then
    the Hessian by forward differences of the exact gradient (n more gradients; it serves the convergence check,
    while ``LinearMixedModel.hessian`` gives the exact one).

    The loop is flat: each pass evaluates d and ∇d once, at a line-search trial or at a Hessian probe, so the
    value-and-gradient is compiled once (compile time is most of a cold start) and ``jax.vmap`` over fits runs no
    nested loops. Every line-search evaluation (θ, d) is written to a fixed-size buffer in the loop state, so the fit
    log needs no host callback and the compiled loop can be cached on disk. A trial whose objective or gradient is
    not finite (a failed Cholesky gives NaN under jit) is rejected and the step shortened.
    """
    dtype = theta0.dtype
    # optimise over φ = θ / scale (scale is 1 except for random-effects columns of extreme size)
    theta0 = theta0 / scale
    dof = layout.n - layout.p if reml else layout.n
    shift = dof * arrays.log_yscale2 - arrays.log_wdet  # d's dependence on the units of y; tolerances ignore it

    def plain(phi):
        return deviance(phi * scale, arrays, layout, reml)

    vg = jax.value_and_grad(plain)
    lbfgs = optax.scale_by_lbfgs(memory_size=opts.memory)
    n, cap = theta0.size, opts.maxeval
    SEARCH, PROBE, DONE = 0, 1, 2

    def direction(th, g, lb, it):
        """The L-BFGS direction at an accepted point; iteration 0 evaluates θ₀ itself (a zero direction)."""
        first = it == 0
        dirn, lb_new = lbfgs.update(g, lb, th)
        slope = -jnp.vdot(g, dirn)
        restart = ~first & ~(slope < 0)  # not a descent direction: restart from the scaled gradient
        dirn = jnp.where(restart, g / jnp.maximum(1.0, jnp.linalg.norm(g)), dirn)
        slope = jnp.where(restart, -jnp.vdot(g, dirn), slope)
        dirn = jnp.where(first, jnp.zeros_like(dirn), dirn)
        lb = jax.tree.map(lambda old, new: jnp.where(first, old, new), lb, lb_new)
        return dirn, slope, lb

    def probe_step(th, j):
        """Forward-difference probe j of n: h_j e_j."""
        return (jnp.arange(n) == j) * (1e-5 * jnp.maximum(1.0, jnp.abs(th)))

    def body(c):
        mode, th, f, g, lb, dirn, slope, t, k, it, status, j, gs, buf_th, buf_f, ne = c
        search = mode == SEARCH
        x = jnp.where(search, th - t * dirn, th + probe_step(th, j))
        fx, gx = vg(x)
        if verbose:  # the live log: a separately compiled variant, so the silent loop stays cacheable on disk
            jax.debug.callback(_live_eval, search, ne, x, fx, ordered=True)
        # line search: log the trial, test the Armijo condition, or shorten the step by quadratic interpolation
        i = jnp.minimum(ne, cap - 1)
        buf_th = jnp.where(search, buf_th.at[i].set(x), buf_th)
        buf_f = jnp.where(search, buf_f.at[i].set(fx), buf_f)
        ne = ne + search
        finite = jnp.isfinite(fx) & jnp.all(jnp.isfinite(gx))
        # Armijo, with room for the objective's rounding noise (about 1e-12 of |d| as computed, the units' shift
        # included, since that is what gets rounded): near the optimum a trial at a zero gradient can come out a few
        # 1e-10 above a worse point (penicillin), and rejecting it sent the search wandering among noise
        ok = finite & (fx <= f + 1e-4 * t * slope + NOISE * jnp.abs(f))
        tq = -slope * t * t / (2.0 * (fx - f - slope * t))
        t_short = jnp.where(finite, jnp.clip(tq, 0.1 * t, 0.5 * t), 0.1 * t)
        ended = search & (ok | (k + 1 >= opts.max_linesearch))
        # the end of an iteration: keep the curvature pairs positive (else restart the L-BFGS memory), test the
        # stopping rules, accept the point if the search succeeded
        sy = jnp.vdot(x - th, gx - g)
        lb = jax.tree.map(lambda fresh, cur: jnp.where(ended & (it > 0) & ~(sy > 0), fresh, cur), lbfgs.init(th), lb)
        f_abs = jnp.maximum(1.0, jnp.abs(fx - shift))
        new = jnp.where(jnp.max(jnp.abs(gx)) <= opts.gtol * f_abs, 1, 0)
        new = jnp.where((new == 0) & (it > 0) & (f - fx <= opts.ftol * f_abs), 2, new)
        new = jnp.where(~ok, 4, new)
        new = jnp.where((new == 0) & (it + 1 >= opts.maxiter), 3, new)
        new = jnp.where((new == 0) & (ne >= cap), 5, new)
        status = jnp.where(ended, new, status).astype(jnp.int32)
        take = ended & ok
        th, f, g = (jnp.where(take, a, b) for a, b in ((x, th), (fx, f), (gx, g)))
        it = it + ended
        # the next iteration's direction, used only when an iteration has just ended without stopping
        d_new, s_new, lb_new = direction(th, g, lb, it)
        nxt = ended & (status == 0)
        dirn, slope = jnp.where(nxt, d_new, dirn), jnp.where(nxt, s_new, slope)
        lb = jax.tree.map(lambda a, b: jnp.where(nxt, a, b), lb_new, lb)
        t = jnp.where(ended, jnp.asarray(1.0, dtype), jnp.where(search, t_short, t))
        k = jnp.where(ended, 0, k + search)
        # Hessian probes after the search has stopped
        gs = jnp.where(search, gs, gs.at[j].set(gx))
        j = j + ~search
        mode = jnp.where(ended & (status != 0), PROBE, mode)
        mode = jnp.where((mode == PROBE) & (j >= n), DONE, mode)
        return mode, th, f, g, lb, dirn, slope, t, k, it, status, j, gs, buf_th, buf_f, ne

    th0, f0, g0, lb0, it0 = theta0, jnp.asarray(jnp.inf, dtype), jnp.zeros_like(theta0), lbfgs.init(theta0), 0
    dirn0, slope0, lb0 = direction(th0, g0, lb0, it0)
    init = (jnp.int32(SEARCH), th0, f0, g0, lb0, dirn0, slope0, jnp.asarray(1.0, dtype), jnp.int32(0), jnp.int32(it0),
            jnp.int32(0), jnp.int32(0), jnp.zeros((n, n), dtype), jnp.zeros((cap, n), dtype),
            jnp.full((cap,), jnp.nan, dtype), jnp.int32(0))
    out = jax.lax.while_loop(lambda c: c[0] != DONE, body, init)
    _, th, f, g, _, _, _, _, _, it, status, _, gs, buf_th, buf_f, ne = out
    h = 1e-5 * jnp.maximum(1.0, jnp.abs(th))
    H = (gs - g) / h[:, None]
    H = (H + H.T) / 2
    return {"theta": th * scale, "f": f, "status": status, "iterations": it, "gradient": g / scale,
            "hessian": H / jnp.outer(scale, scale), "hessian_phi": H, "log_theta": buf_th * scale, "log_f": buf_f,
            "feval": ne}


_loop_jit = jax.jit(_loop, static_argnames=("layout", "reml", "opts", "verbose"))


def _live_eval(search, ne, theta, f) -> None:
    """Print a line-search evaluation as it happens (the loop's log holds the same ones)."""
    if search:
        _print_eval(int(ne) + 1, np.asarray(theta), float(f))
# For a small model the compiled loop runs in about a millisecond whatever the code generator does, while its
# optimisation passes are about a quarter of a cold start (sleepstudy: compile 1.44 s -> 1.05 s, fit 1.1 -> 1.6 ms;
# kb07, above the threshold, would run twice as slow). Such models are compiled without LLVM's optimisations and
# without XLA's fusion emitters, which halves the compile again (in one process: sleepstudy 1.30 -> 0.45 s,
# penicillin 1.19 -> 0.58 s, dyestuff 0.98 -> 0.45 s; the loop itself ran in 0.26-0.81 ms either way).
QUICK_OPTIONS = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


@functools.cache
def _quick_options() -> dict:
    """QUICK_OPTIONS less any option this XLA rejects (these are XLA's debug options, which come and go between
    versions, and an unknown name or a changed type fails the compile): each is tried on an identity function."""
    def accepted(options):
        try:
            jax.jit(lambda x: x, compiler_options=options).lower(0.0).compile()
        except Exception:  # jax.errors.JaxRuntimeError: "No such compile option", "not a valid bool value", ...
            return False
        return True

    if accepted(QUICK_OPTIONS):
        return dict(QUICK_OPTIONS)
    return {k: v for k, v in QUICK_OPTIONS.items() if accepted({k: v})}


@functools.cache
def _loop_jit_quick():
    """The loop jitted with _quick_options()."""
    return jax.jit(_loop, static_argnames=("layout", "reml", "opts"), compiler_options=_quick_options())


QUICK_WORK = 20_000  # flops-like size of one evaluation (see _work) below which _loop_jit_quick is used


def _work(layout: Layout) -> float:
    """A rough size of one evaluation: the dense Cholesky, the per-level blocks and the fill-in products."""
    D = layout.dz + layout.p + 1
    return (D**3 / 3 + sum(t.nlevels * t.s**3 for t in layout.terms) + sum(layout.npairs)
            + sum(h * D * D for h in layout.nheavy))


def loop_for(layout: Layout):
    """The jitted fit loop to use for this layout (see _loop_jit_quick)."""
    return _loop_jit_quick() if _work(layout) <= QUICK_WORK else _loop_jit


_deviance_jit = jax.jit(deviance, static_argnames=("layout", "reml"))


@dataclass(frozen=True)
class OptSummary:
    """What the optimiser did: start, end, every evaluation, and why it stopped."""

    initial: np.ndarray
    final: np.ndarray
    fmin: float
    feval: int
    iterations: int
    status: str
    converged: bool
    fitlog: tuple[tuple[np.ndarray, float], ...]
    gradient: np.ndarray  # exact gradient of d(θ) at the optimiser's result (before zero snapping)
    hessian_eigenvalues: np.ndarray  # of d's Hessian in the free directions (forward differences of the gradient)
    optimizer: str = "optax L-BFGS directions, backtracking (Armijo) line search, unconstrained θ"

    def __repr__(self) -> str:
        return (
            f"OptSummary(status={self.status!r}, fmin={self.fmin:.10g}, feval={self.feval}, "
            f"iterations={self.iterations}, initial={np.round(self.initial, 6).tolist()}, "
            f"final={np.round(self.final, 6).tolist()})"
        )


def _rectify(theta: np.ndarray, layout: Layout) -> np.ndarray:
    """±1 per θ entry: flips every column of λ_k whose diagonal is negative (d(θ) does not change)."""
    sign = np.ones_like(theta)
    for t in layout.terms:
        for j in range(t.s):
            col = [t.theta_offset + i for i, (r, c) in enumerate(t.pattern) if c == j]
            diag = t.theta_offset + t.pattern.index((j, j))
            if theta[diag] < 0:
                sign[col] = -1.0
    return sign


def diagonal_indices(layout: Layout) -> list[int]:
    return [t.theta_offset + i for t in layout.terms for i, (r, c) in enumerate(t.pattern) if r == c]


def _verdict(code: int, theta: np.ndarray, g: np.ndarray, H: np.ndarray, layout: Layout):
    """Plain-words status from the loop's stopping rule, the projected gradient and the Hessian's eigenvalues."""
    free = np.ones(theta.size, bool)
    free[[i for i in diagonal_indices(layout) if theta[i] == 0]] = False  # boundary: θ_i = 0 on a diagonal
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
        return False, "not converged: the gradient or Hessian at the result is not finite", float("nan"), np.zeros(0)
    gmax = float(np.max(np.abs(g[free]))) if free.any() else 0.0
    eig = np.linalg.eigvalsh(H[np.ix_(free, free)]) if free.any() else np.zeros(0)
    emin = float(eig.min()) if eig.size else 0.0
    boundary = " on the boundary (singular fit)" if not free.all() else ""
    if code not in (1, 2):
        return False, f"{STATUS[code]} (max |gradient| {gmax:.2g})", gmax, eig
    if eig.size and emin < -1e-6 * max(1.0, float(np.abs(eig).max())):
        return False, (
            f"not converged: the optimiser stopped where the Hessian has a negative eigenvalue ({emin:.3g}); "
            "this may be a saddle point. Try another starting θ (theta0=...)."
        ), gmax, eig
    how = "the gradient is zero to tolerance" if code == 1 else "the objective stopped decreasing"
    if not eig.size:
        return True, f"converged{boundary}: {how}; every variance parameter is at zero", gmax, eig
    return True, (
        f"converged{boundary}: {how} (max |projected gradient| {gmax:.2g}) and the Hessian is positive "
        f"{'semi-' if eig.size and emin <= 0 else ''}definite (smallest eigenvalue {emin:.3g})"
    ), gmax, eig


def _print_eval(k: int, theta, f: float) -> None:
    """One line of the verbose fit log, in MixedModels.jl's layout."""
    print(f"f_{k}: {f:.5f}, [{', '.join(f'{x:.6g}' for x in theta)}]")


BOBYQA_STEP = 0.1  # BOBYQA's first trust region: this fraction of each |θ| in the optimiser's units (at least 0.1)
# BOBYQA's last trust region (NLopt's xtol_abs), in the optimiser's units. MixedModels.jl uses 1e-10, but steps below
# about 1e-6 change InstEval's deviance (2.4e5, curvature about 2e4) by less than its rounding noise (about 1e-8), and
# BOBYQA then samples noise until a lucky decrease meets ftol: the three-term model took 29 to 52 evaluations from
# starts 1e-9 apart with 1e-10, 29 to 35 with 1e-7 (1e-6: 34 or 35), all at the same objective
# (benchmarks/bobyqa_paths.py). lme4 stops far earlier (nloptr's default xtol_rel 1e-4).
BOBYQA_XTOL = 1e-7

# NLopt's return codes that mean BOBYQA stopped on one of its tolerances
_NLOPT_DONE = {1: "success", 2: "stopval reached", 3: "ftol reached", 4: "xtol reached"}


def _bobyqa(theta0, arrays, layout: Layout, reml: bool, opts: FitOptions, scale, verbose: bool):
    """Minimise d(θ) with NLopt's BOBYQA (Powell 2009; MixedModels.jl's default optimiser), derivative-free, on the
    host: each evaluation calls the jitted objective. θ is unconstrained, in the units ``scale``; tolerances on d as in
    MixedModels.jl (ftol_rel 1e-12, ftol_abs 1e-8), on θ BOBYQA_XTOL; the first trust region is BOBYQA_STEP (a tenth)
    of each θ's size. Returns (θ, d, converged, status words, log); the log holds every evaluation."""
    try:
        import nlopt
    except ImportError as err:
        from ..errors import ArgumentError

        raise ArgumentError("optimizer='bobyqa' needs NLopt's Python package: pip install nlopt (or install "
                            "mixedjax with its bobyqa extra: pip install 'mixedjax[bobyqa]')") from err
    log = []

    def objective(phi, grad):
        th = phi * scale
        v = float(_deviance_jit(th, arrays, layout, reml))  # numpy in: no separate device_put (0.1 ms a call)
        log.append((th, v))
        if verbose:
            _print_eval(len(log), th, v)
        # a failed factorisation (NaN) is a very bad point, not a crash: BOBYQA's models cannot take NaN or inf
        return v if np.isfinite(v) else 1e300

    phi0 = np.asarray(theta0, float) / scale
    o = nlopt.opt(nlopt.LN_BOBYQA, phi0.size)
    o.set_min_objective(objective)
    o.set_ftol_rel(1e-12)
    o.set_ftol_abs(1e-8)
    o.set_xtol_abs(BOBYQA_XTOL)
    o.set_maxeval(opts.maxeval)
    o.set_initial_step(BOBYQA_STEP * np.maximum(np.abs(phi0), 0.1))
    try:
        o.optimize(phi0)
        code = int(o.last_optimize_result())
    except nlopt.RoundoffLimited:
        code = -4
    except (RuntimeError, ValueError):  # NLopt's other failure codes come as exceptions
        code = -1
    finite = [(v, i) for i, (_, v) in enumerate(log) if np.isfinite(v)]
    th, f = log[min(finite)[1]] if finite else (np.full(phi0.size, np.nan), np.nan)
    words = {**_NLOPT_DONE, 5: "evaluation limit reached", 6: "time limit reached",
             -4: "stopped by round-off"}.get(code, f"failed (NLopt return code {code})")
    converged = code in _NLOPT_DONE or code == -4  # round-off: no further progress possible at float64
    return np.asarray(th, float), float(f), converged, words, tuple(log)


def fit_theta(theta0, arrays, layout: Layout, reml: bool, opts: FitOptions, verbose: bool = False, scale=None):
    """Run the optimiser, rectify and snap; returns (θ, d(θ), OptSummary). ``scale``: units of θ (default 1)."""
    scale = np.ones(layout.ntheta) if scale is None else np.asarray(scale, float)
    if opts.optimizer == "bobyqa":
        return _fit_theta_bobyqa(theta0, arrays, layout, reml, opts, verbose, scale)
    loop = functools.partial(_loop_jit, verbose=True) if verbose else loop_for(layout)
    out = jax.device_get(loop(jax.device_put(np.asarray(theta0, float)), jax.device_put(scale), arrays, layout, reml,
                              opts))
    ne = int(out["feval"])
    log = tuple((out["log_theta"][i], float(out["log_f"][i])) for i in range(min(ne, opts.maxeval)))
    th, g, H = np.asarray(out["theta"]), np.asarray(out["gradient"]), np.asarray(out["hessian"])
    status, it = int(out["status"]), int(out["iterations"])

    flips = _rectify(th, layout)
    th, g, H = th * flips, g * flips, H * np.outer(flips, flips)  # derivatives change sign with θ
    # d does not change with the flips, so the loop's value stands (evaluating it again would compile the objective
    # on its own: a tenth of a small model's cold start)
    th, fbest = _snap(th, float(out["f"]), arrays, layout, reml, scale, np.asarray(out["hessian_phi"]))
    converged, verdict, gmax, eig = _verdict(status, th, g, H, layout)
    summary = OptSummary(
        initial=np.asarray(theta0, float),
        final=th,
        fmin=fbest,
        feval=ne,
        iterations=it,
        status=verdict,
        converged=converged,
        fitlog=log,
        gradient=g,
        hessian_eigenvalues=eig,
    )
    return th, fbest, summary


def _fit_theta_bobyqa(theta0, arrays, layout: Layout, reml: bool, opts: FitOptions, verbose: bool, scale):
    """fit_theta with BOBYQA: no derivatives are taken, so the summary's gradient is NaN and its Hessian eigenvalues
    empty (as in MixedModels.jl; ``m.gradient()`` and ``m.hessian()`` give them exactly)."""
    th, f, converged, words, log = _bobyqa(theta0, arrays, layout, reml, opts, scale, verbose)
    if not np.all(np.isfinite(th)):
        from ..errors import FitError

        raise FitError(f"BOBYQA found no point with a finite objective ({words}); check the data for extreme values")
    th = th * _rectify(th, layout)
    th, fbest = _snap(th, f, arrays, layout, reml, scale, None)
    boundary = " on the boundary (singular fit)" if any(th[i] == 0 for i in diagonal_indices(layout)) else ""
    status = (f"converged{boundary}: BOBYQA {words} (derivative-free; gradient and Hessian not checked)" if converged
              else f"not converged: BOBYQA {words}")
    summary = OptSummary(
        initial=np.asarray(theta0, float),
        final=th,
        fmin=fbest,
        feval=len(log),
        iterations=len(log),  # NLopt reports no iteration count apart from the evaluations
        status=status,
        converged=converged,
        fitlog=log,
        gradient=np.full(th.size, np.nan),
        hessian_eigenvalues=np.zeros(0),
        optimizer="NLopt LN_BOBYQA (derivative-free), unconstrained θ",
    )
    return th, fbest, summary


def _snap(th, fbest, arrays, layout: Layout, reml: bool, scale, Hphi):
    """MixedModels.jl's rule: set a small diagonal element to zero when d rises by at most 1e-5; with a Hessian
    (``Hphi``, in the optimiser's units), also try zero along a direction where d is flat (a zero Hessian diagonal:
    e.g. a random effect that duplicates a fixed one)."""
    dev = lambda t: float(_deviance_jit(np.asarray(t, float), arrays, layout, reml))  # noqa: E731
    for i in diagonal_indices(layout):
        flat = Hphi is not None and abs(Hphi[i, i]) <= 1e-8 * max(1.0, abs(fbest))
        if th[i] > 0 and (th[i] / scale[i] < 1e-3 or flat):
            trial = th.copy()
            trial[i] = 0.0
            ft = dev(trial)
            if ft <= fbest + 1e-5:
                th, fbest = trial, ft
    if not np.isfinite(fbest):
        from ..errors import FitError

        raise FitError("the objective is not finite at the optimiser's result; check the data for extreme values")
    return th, fbest


def fit_loop(theta0, arrays, layout: Layout, reml: bool = False, opts: FitOptions = FitOptions(), scale=None):
    """The pure, jitted fit loop (no rectification): a dict with θ, d, status code, gradient, Hessian and the log.

    Usable under ``jax.vmap`` (e.g. over many responses of one design) and inside ``jax.jit``. It always runs the
    L-BFGS loop, whatever ``opts.optimizer`` says: BOBYQA runs on the host.
    """
    scale = jnp.ones_like(theta0) if scale is None else scale
    # compiler options are allowed on a top-level jit only: inside a user's transformation, the plain loop
    traced = any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves((theta0, scale, arrays)))
    loop = _loop_jit if traced else loop_for(layout)
    return loop(theta0, scale, arrays, layout, reml, opts)
