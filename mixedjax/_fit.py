"""Minimise d(θ): optax L-BFGS in one jitted loop, then sign rectification and zero snapping (DESIGN.md section 4).

θ is unconstrained: d(θ) does not change when a column of λ changes sign, so no bounds are needed. The loop is a pure
function of (θ₀, arrays); every evaluation is written to a buffer in its state, which becomes the fit log.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._blocks import Layout
from ._objective import deviance

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
    ftol: float = 1e-13  # ... or when an iteration lowers d by less than ftol * |d|
    memory: int = 10
    maxeval: int = 2000  # size of the fit log buffer; the fit stops when it is full
    max_linesearch: int = 30


def _loop(theta0, scale, arrays, layout: Layout, reml: bool, opts: FitOptions):
    """The whole fit as one pure function: L-BFGS directions from optax, a backtracking (Armijo) line search.

    Every evaluation (θ, d) is written to a fixed-size buffer in the loop state, so the fit log needs no host
    callback: the compiled loop can be cached on disk and batched with ``jax.vmap``. A trial whose objective or
    gradient is not finite (a failed Cholesky gives NaN under jit) is rejected and the step shortened.
    """
    dtype = theta0.dtype
    # optimise over φ = θ / scale (scale is 1 except for random-effects columns of extreme size)
    theta0 = theta0 / scale
    dof = layout.n - layout.p if reml else layout.n
    shift = dof * arrays["log_yscale2"]  # d's dependence on the units of y; tolerances ignore it

    def plain(phi):
        return deviance(phi * scale, arrays, layout, reml)

    vg = jax.value_and_grad(plain)
    lbfgs = optax.scale_by_lbfgs(memory_size=opts.memory)
    n, cap = theta0.size, opts.maxeval

    def log(buf_th, buf_f, ne, th, f):
        i = jnp.minimum(ne, cap - 1)
        return buf_th.at[i].set(th), buf_f.at[i].set(f), ne + 1

    def line_search(th, f, slope, dirn, buf_th, buf_f, ne):
        def cond(c):
            return ~c[1] & (c[2] < opts.max_linesearch)

        def body(c):
            t, _, k, _, _, _, buf_th, buf_f, ne = c
            tr = th - t * dirn
            ft, gt = vg(tr)
            buf_th, buf_f, ne = log(buf_th, buf_f, ne, tr, ft)
            finite = jnp.isfinite(ft) & jnp.all(jnp.isfinite(gt))
            ok = finite & (ft <= f + 1e-4 * t * slope)
            # quadratic interpolation of the step, kept within [0.1 t, 0.5 t]
            tq = -slope * t * t / (2.0 * (ft - f - slope * t))
            t_new = jnp.where(finite, jnp.clip(tq, 0.1 * t, 0.5 * t), 0.1 * t)
            return jnp.where(ok, t, t_new), ok, k + 1, tr, ft, gt, buf_th, buf_f, ne

        init = (jnp.asarray(1.0, dtype), jnp.bool_(False), jnp.int32(0), th, f, jnp.zeros_like(th))
        return jax.lax.while_loop(cond, body, init + (buf_th, buf_f, ne))

    def cond(c):
        return c[-1] == 0

    def body(c):
        th, f, g, lb, buf_th, buf_f, ne, it, status = c
        first = it == 0
        dirn, lb_new = lbfgs.update(g, lb, th)
        slope = -jnp.vdot(g, dirn)
        # not a descent direction: restart from the scaled gradient
        restart = ~first & ~(slope < 0)
        dirn = jnp.where(restart, g / jnp.maximum(1.0, jnp.linalg.norm(g)), dirn)
        slope = jnp.where(restart, -jnp.vdot(g, dirn), slope)
        dirn = jnp.where(first, jnp.zeros_like(dirn), dirn)  # iteration 0 evaluates θ₀ itself
        lb = jax.tree.map(lambda old, new: jnp.where(first, old, new), lb, lb_new)
        _, ok, _, th_new, f_new, g_new, buf_th, buf_f, ne = line_search(th, f, slope, dirn, buf_th, buf_f, ne)
        # keep the curvature pairs positive: otherwise restart the L-BFGS memory
        sy = jnp.vdot(th_new - th, g_new - g)
        lb = jax.tree.map(lambda fresh, cur: jnp.where(~first & ~(sy > 0), fresh, cur), lbfgs.init(th), lb)
        f_abs = jnp.maximum(1.0, jnp.abs(f_new - shift))
        decrease = f - f_new
        status = jnp.where(jnp.max(jnp.abs(g_new)) <= opts.gtol * f_abs, 1, 0)
        status = jnp.where((status == 0) & ~first & (decrease <= opts.ftol * f_abs), 2, status)
        status = jnp.where(~ok, 4, status)
        status = jnp.where((status == 0) & (it + 1 >= opts.maxiter), 3, status)
        status = jnp.where((status == 0) & (ne >= cap), 5, status)
        keep = ok
        th, f, g = (jnp.where(keep, a, b) for a, b in ((th_new, th), (f_new, f), (g_new, g)))
        return th, f, g, lb, buf_th, buf_f, ne, it + 1, status.astype(jnp.int32)

    init = (theta0, jnp.asarray(jnp.inf, dtype), jnp.zeros_like(theta0), lbfgs.init(theta0),
            jnp.zeros((cap, n), dtype), jnp.full((cap,), jnp.nan, dtype), jnp.int32(0), jnp.int32(0), jnp.int32(0))
    th, f, g, _, buf_th, buf_f, ne, it, status = jax.lax.while_loop(cond, body, init)
    # diagnostics: the Hessian by central differences of the exact gradient
    h = 1e-5 * jnp.maximum(1.0, jnp.abs(th))
    steps = jnp.concatenate([jnp.diag(h), -jnp.diag(h)])
    gs = jax.lax.map(lambda dth: vg(th + dth)[1], steps)
    H = (gs[:n] - gs[n:]) / (2 * h[:, None])
    H = (H + H.T) / 2
    return {"theta": th * scale, "f": f, "status": status, "iterations": it, "gradient": g / scale,
            "hessian": H / jnp.outer(scale, scale), "hessian_phi": H, "log_theta": buf_th * scale, "log_f": buf_f,
            "feval": ne}


_loop_jit = jax.jit(_loop, static_argnames=("layout", "reml", "opts"))
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
    hessian_eigenvalues: np.ndarray  # of d's Hessian in the free directions (central differences of the gradient)
    optimizer: str = "optax.lbfgs (zoom line search), unconstrained θ"

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


def fit_theta(theta0, arrays, layout: Layout, reml: bool, opts: FitOptions, verbose: bool = False, scale=None):
    """Run the optimiser, rectify and snap; returns (θ, d(θ), OptSummary). ``scale``: units of θ (default 1)."""
    scale = np.ones(layout.ntheta) if scale is None else np.asarray(scale, float)
    out = jax.device_get(_loop_jit(jnp.asarray(theta0, float), jnp.asarray(scale), arrays, layout, reml, opts))
    ne = int(out["feval"])
    log = tuple((out["log_theta"][i], float(out["log_f"][i])) for i in range(min(ne, opts.maxeval)))
    if verbose:
        for k, (t, v) in enumerate(log, 1):
            print(f"f_{k}: {v:.5f}, [{', '.join(f'{x:.6g}' for x in t)}]")
    th, g, H = np.asarray(out["theta"]), np.asarray(out["gradient"]), np.asarray(out["hessian"])
    status, it = int(out["status"]), int(out["iterations"])

    dev = lambda t: float(_deviance_jit(jnp.asarray(t), arrays, layout, reml))  # noqa: E731
    flips = _rectify(th, layout)
    th, g, H = th * flips, g * flips, H * np.outer(flips, flips)  # derivatives change sign with θ
    fbest = dev(th)
    # MixedModels.jl's rule: set a small diagonal element to zero when d rises by at most 1e-5; also try zero
    # along a direction where d is flat (a zero Hessian diagonal: e.g. a random effect that duplicates a fixed one)
    Hphi = np.asarray(out["hessian_phi"])
    for i in diagonal_indices(layout):
        flat = abs(Hphi[i, i]) <= 1e-8 * max(1.0, abs(fbest))
        if th[i] > 0 and (th[i] / scale[i] < 1e-3 or flat):
            trial = th.copy()
            trial[i] = 0.0
            ft = dev(trial)
            if ft <= fbest + 1e-5:
                th, fbest = trial, ft
    if not np.isfinite(fbest):
        from ._errors import FitError

        raise FitError("the objective is not finite at the optimiser's result; check the data for extreme values")
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


def fit_loop(theta0, arrays, layout: Layout, reml: bool = False, opts: FitOptions = FitOptions(), scale=None):
    """The pure, jitted fit loop (no rectification): a dict with θ, d, status code, gradient, Hessian and the log.

    Usable under ``jax.vmap`` (e.g. over many responses of one design).
    """
    scale = jnp.ones_like(theta0) if scale is None else scale
    return _loop_jit(theta0, scale, arrays, layout, reml, opts)
