"""Minimise d(θ): optax L-BFGS in one jitted loop, then sign rectification and zero snapping (DESIGN.md section 4).

θ is unconstrained: d(θ) does not change when a column of λ changes sign, so no bounds are needed. The loop is a pure
function of (θ₀, arrays); a host callback records every evaluation for the fit log when ``record=True``.
"""

from __future__ import annotations

import threading
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
}


@dataclass(frozen=True)
class FitOptions:
    maxiter: int = 500
    gtol: float = 1e-8  # stop when max|∇d| <= gtol * max(1, |d|)
    ftol: float = 1e-13  # ... or when an iteration lowers d by less than ftol * |d|
    memory: int = 10


# -- the fit log: a host-side sink that the traced objective reports to ------------------------------------------
# A plain namespace, not threading.local: XLA may run the callback on one of its own threads.
class _Sink:
    log: list | None = None
    verbose: bool = False


_sink = _Sink()
_fit_lock = threading.Lock()  # one logged fit at a time per process


def _record(theta, value):
    log = getattr(_sink, "log", None)
    if log is None:
        return
    theta, value = np.asarray(theta, float).copy(), float(value)
    log.append((theta, value))
    if getattr(_sink, "verbose", False):
        print(f"f_{len(log)}: {value:.5f}, [{', '.join(f'{t:.6g}' for t in theta)}]", flush=True)


def _loop(theta0, arrays, layout: Layout, reml: bool, opts: FitOptions, record: bool):
    def d(th):
        v = deviance(th, arrays, layout, reml)
        if record:
            jax.debug.callback(_record, th, v)
        return v

    # scale so that the first L-BFGS step (along -∇) has unit length in θ
    g0 = jax.grad(lambda th: deviance(th, arrays, layout, reml))(theta0)
    scale = jnp.maximum(jnp.linalg.norm(g0), 1e-12)

    def fs(th):
        return d(th) / scale

    opt = optax.lbfgs(memory_size=opts.memory)
    vg = optax.value_and_grad_from_state(fs)
    state0 = opt.init(theta0)

    def cond(c):
        return c[2] == 0

    def body(c):
        th, st, status, it, f_old = c
        v, g = vg(th, state=st)
        upd, st = opt.update(g, st, th, value=v, grad=g, value_fn=fs)
        th_new = optax.apply_updates(th, upd)
        v_new = optax.tree.get(st, "value") * scale
        g_new = optax.tree.get(st, "grad") * scale
        f_abs = jnp.maximum(1.0, jnp.abs(v_new))
        gmax = jnp.max(jnp.abs(g_new))
        decrease = v * scale - v_new
        bad = ~jnp.isfinite(v_new) | ~jnp.all(jnp.isfinite(th_new))
        status = jnp.where(gmax <= opts.gtol * f_abs, 1, 0).astype(jnp.int32)
        status = jnp.where((status == 0) & (decrease >= 0) & (decrease <= opts.ftol * f_abs) & (it > 0), 2, status)
        status = jnp.where((status == 0) & ((decrease < 0) | bad), 4, status)
        status = jnp.where((status == 0) & (it + 1 >= opts.maxiter), 3, status)
        th_out = jnp.where(bad | (decrease < 0), th, th_new)
        return th_out, st, status.astype(jnp.int32), it + 1, v_new

    th, _, status, it, _ = jax.lax.while_loop(cond, body, (theta0, state0, jnp.int32(0), jnp.int32(0), jnp.asarray(jnp.inf, theta0.dtype)))
    return th, status, it


_loop_jit = jax.jit(_loop, static_argnames=("layout", "reml", "opts", "record"))
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
    optimizer: str = "optax.lbfgs (zoom line search), unconstrained θ"

    def __repr__(self) -> str:
        return (
            f"OptSummary(status={self.status!r}, fmin={self.fmin:.10g}, feval={self.feval}, "
            f"iterations={self.iterations}, initial={np.round(self.initial, 6).tolist()}, "
            f"final={np.round(self.final, 6).tolist()})"
        )


def _rectify(theta: np.ndarray, layout: Layout) -> np.ndarray:
    """Flip every column of λ_k whose diagonal is negative (d(θ) does not change)."""
    theta = theta.copy()
    for t in layout.terms:
        idx = {rc: t.theta_offset + i for i, rc in enumerate(t.pattern)}
        for j in range(t.s):
            if theta[idx[(j, j)]] < 0:
                for (r, c), i in idx.items():
                    if c == j:
                        theta[i] = -theta[i]
    return theta


def diagonal_indices(layout: Layout) -> list[int]:
    return [t.theta_offset + i for t in layout.terms for i, (r, c) in enumerate(t.pattern) if r == c]


def fit_theta(theta0, arrays, layout: Layout, reml: bool, opts: FitOptions, verbose: bool = False):
    """Run the optimiser, rectify and snap; returns (θ, d(θ), OptSummary)."""
    log: list = []
    with _fit_lock:
        _sink.log, _sink.verbose = log, verbose
        try:
            th, status, it = _loop_jit(jnp.asarray(theta0, float), arrays, layout, reml, opts, True)
            th = np.asarray(th)
            jax.effects_barrier()
        finally:
            _sink.log, _sink.verbose = None, False
    status, it = int(status), int(it)

    dev = lambda t: float(_deviance_jit(jnp.asarray(t), arrays, layout, reml))  # noqa: E731
    th = _rectify(th, layout)
    fbest = dev(th)
    # MixedModels.jl's rule: set a small diagonal element to zero when d rises by at most 1e-5
    for i in diagonal_indices(layout):
        if 0 < th[i] < 1e-3:
            trial = th.copy()
            trial[i] = 0.0
            ft = dev(trial)
            if ft <= fbest + 1e-5:
                th, fbest = trial, ft
    if not np.isfinite(fbest):
        from ._errors import FitError

        raise FitError("the objective is not finite at the optimiser's result; check the data for extreme values")
    summary = OptSummary(
        initial=np.asarray(theta0, float),
        final=th,
        fmin=fbest,
        feval=len(log),
        iterations=it,
        status=STATUS[status],
        converged=status in (1, 2),
        fitlog=tuple(log),
    )
    return th, fbest, summary


def refit_loop(theta0, arrays, layout: Layout, reml: bool = False, opts: FitOptions = FitOptions()):
    """The pure fit loop without the host log: usable under ``jax.vmap`` (returns θ, status code, iterations)."""
    return _loop_jit(theta0, arrays, layout, reml, opts, False)


