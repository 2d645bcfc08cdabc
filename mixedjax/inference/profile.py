"""Profile likelihood of every parameter (lme4's ``profile``; Bates et al. 2015, J. Stat. Softw. 67(1), section 5.1).

ζ(x) = sign(x − x̂) √(d(x) − d̂), d(x) the ML deviance minimised over all other parameters with this one held at x
(lme4 profiles REML fits through their ML refit, and so does this). The random-effect standard deviations and
correlations and σ are profiled in lme4's parameters ψ = (sd, cor per term, σ), through ``fixed_sigma_objective``;
a fixed effect β_j through the closed form of the penalised residual sum of squares with β_j held at c,

    r²_j(θ, c) = r²(θ) + (c − β̂_j(θ))² / [(L_XX L_XX')⁻¹]_jj,

so the fixed effects' profiles minimise over θ alone. Every inner fit is the fit's own L-BFGS loop with the exact
gradient of the same pure objective, batched (profile_fit.py): each step of the grid walk, and each step of the
intervals' root-finding, is one compiled call for every parameter and direction at once, and the programs are
traced once per model shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ..core.derived import estimates
from ..core.objective import deviance, fixed_sigma_objective, lambdas
from ..errors import ArgumentError
from ..fitting.blas import single_blas_thread
from .lazy import scipy_module as _scipy
from .names import parameter_names
from .profile_fit import psi_kinds


# ---- the parameterisation ψ = (sd, cor of every term, σ) ------------------------------------------------------------
def theta_sigma_from_psi(psi, layout):
    """(θ, σ) of ψ: Σ_k = D R D from the sd's (diagonal entries) and cor's (below), λ_k = chol(Σ_k) / σ."""
    sigma = psi[-1]
    parts = []
    for t in layout.terms:
        vals = psi[t.theta_offset : t.theta_offset + len(t.pattern)]
        if t.s == 1:
            parts.append(vals / sigma)
            continue
        sd = jnp.ones(t.s, psi.dtype)
        R = jnp.eye(t.s, dtype=psi.dtype)
        for (r, c), v in zip(t.pattern, vals):
            if r == c:
                sd = sd.at[r].set(v)
            else:
                R = R.at[r, c].set(v).at[c, r].set(v)
        lam = jnp.linalg.cholesky(R) * sd[:, None] / sigma  # chol(D R D) = D chol(R)
        parts.append(jnp.stack([lam[r, c] for r, c in t.pattern]))
    return jnp.concatenate(parts), sigma


def psi_from_theta(theta, sigma, layout) -> np.ndarray:
    out = []
    for t, lam in zip(layout.terms, lambdas(np.asarray(theta, float), layout)):
        cov = sigma**2 * lam @ lam.T
        sd = np.sqrt(np.diag(cov))
        for r, c in t.pattern:
            out.append(sd[r] if r == c else (cov[r, c] / (sd[r] * sd[c]) if sd[r] * sd[c] > 0 else 0.0))
    return np.array(out + [sigma])


def _psi_deviance(psi, arrays, layout):
    theta, sigma = theta_sigma_from_psi(psi, layout)
    return fixed_sigma_objective(theta, arrays, layout, sigma**2, False)


def _beta_deviance(theta, c, e, arrays, layout):
    """ML deviance at θ with the fixed effect e'β held at c (e a unit vector), β's others and σ profiled:
    d(θ) + n log(r²_j / r²), r²_j = r² + (c − β̂_j)² / [(L_XX L_XX')⁻¹]_jj (Cov(β̂) / σ̂² is that inverse)."""
    est = estimates(theta, arrays, layout, False)
    v = e @ est.vcov @ e / est.sigma2
    gap = (c - est.beta @ e) ** 2 / v
    return deviance(theta, arrays, layout, False) + layout.n * jnp.log1p(gap / est.r2)


_psi_hess = jax.jit(jax.hessian(_psi_deviance), static_argnames=("layout",))


def _bounds(layout, psi_hat):
    """Box for ψ: sd and σ positive, |cor| < 1."""
    lo, hi = [], []
    for t in layout.terms:
        for r, c in t.pattern:
            lo.append(0.0 if r == c else -1.0)
            hi.append(np.inf if r == c else 1.0)
    return np.array(lo + [0.0]), np.array(hi + [np.inf])


@dataclass
class _Evaluator:
    """min of the ML deviance with parameter ``j`` held at x, for many (j, x) at once: one batched solve per group
    (profile_fit.py), each lane warm-started from the optimum stored nearest its x for its parameter."""

    arrays: object
    layout: object
    psi_hat: np.ndarray
    theta_hat: np.ndarray
    p: int
    nvar: int  # number of ψ entries (variance parameters and σ)
    scale: np.ndarray  # units of the free sd's and σ in the ψ lanes
    starts: dict = field(default_factory=dict)  # parameter index -> {x: free parameters at its optimum}

    def deviance(self, j: int, x: float) -> float:
        return float(self.deviances([j], [x])[0])

    def deviances(self, js, xs) -> np.ndarray:
        """The profiled ML deviance at each (js[i], xs[i]): the ψ entries' lanes in batches of 2·nvar, the fixed
        effects' in batches of 2·p (fixed sizes: one compiled program per group)."""
        from .profile_fit import beta_solve, psi_solve

        js, xs = np.asarray(js, int), np.asarray(xs, float)
        out = np.empty(len(js))
        for is_psi, lanes in ((True, 2 * self.nvar), (False, 2 * self.p)):
            idx = np.flatnonzero((js < self.nvar) == is_psi)
            for chunk in (idx[i : i + lanes] for i in range(0, len(idx), lanes)):
                pad = np.concatenate([chunk, np.full(lanes - len(chunk), chunk[0])])
                j, x = js[pad], xs[pad]
                if is_psi:
                    x0 = np.stack([_feasible_start(self._nearest(a, b, self.psi_hat), a, b, self.layout)
                                   for a, b in zip(j, x)])
                    res = psi_solve(x0, j, x, self.scale, self.arrays, self.layout)
                else:
                    x0 = np.stack([self._nearest(a, b, self.theta_hat) for a, b in zip(j, x)])
                    res = beta_solve(x0, j - self.nvar, x, self.arrays, self.layout)
                value, free = np.asarray(res.value), np.asarray(res.free)
                for i in range(len(chunk)):
                    if np.isfinite(value[i]) and np.all(np.isfinite(free[i])):  # only real optima warm-start others
                        self.starts.setdefault(int(j[i]), {})[float(x[i])] = free[i]
                out[chunk] = value[: len(chunk)]
        return out

    def _nearest(self, j, x, default):
        near = self.starts.get(int(j))
        if not near:
            return default
        keys = np.array(list(near))
        return near[float(keys[np.argmin(np.abs(keys - x))])]


def _feasible_start(psi0, j, x, layout) -> np.ndarray:
    """ψ0 with entry j set to x and, in j's term, the other correlations shrunk towards 0 until the term's correlation
    matrix is positive definite. A warm start taken at another value of a correlation may not be (a 3 × 3 correlation
    matrix's entries constrain each other), and the inner fit cannot leave a start whose deviance is not finite; with
    |x| < 1 and the others 0 it always is."""
    psi = np.array(psi0, float)
    psi[j] = x
    for t in layout.terms:
        idx = range(t.theta_offset, t.theta_offset + len(t.pattern))
        if t.s == 1 or j not in idx:
            continue
        others = [i for i, (r, c) in zip(idx, t.pattern) if r != c and i != j]
        for shrink in (1.0, 0.9, 0.7, 0.5, 0.25, 0.0):
            R = np.eye(t.s)
            for i, (r, c) in zip(idx, t.pattern):
                if r != c:
                    R[r, c] = R[c, r] = psi[i] * (shrink if i in others else 1.0)
            if np.linalg.eigvalsh(R)[0] > 1e-8:
                psi[others] *= shrink
                break
    return psi


def _psi_scale(layout, psi_hat) -> np.ndarray:
    """Units of the free sd's and σ: their estimates, and a tenth of σ̂ for an sd estimated as (near) zero."""
    scale = np.maximum(np.abs(psi_hat), 1e-3)
    sd = np.array([r == c for t in layout.terms for r, c in t.pattern] + [False])
    scale[sd & (np.abs(psi_hat) < 1e-4 * psi_hat[-1])] = 0.1 * psi_hat[-1]
    return scale


@dataclass(frozen=True, eq=False)
class Profile:
    """ζ against each parameter: ``table`` has columns ``parameter``, ``value``, ``zeta`` (lme4's profile as a data
    frame), one block per parameter in lme4's order. ``confint(level)`` gives the intervals, ``plot()`` the ζ plots.
    """

    table: pd.DataFrame
    estimates: pd.Series  # the ML estimates, by parameter name
    deviance: float  # the minimal ML deviance
    _evaluate: Callable = field(repr=False)  # (j, x) -> profiled deviance
    _deviances: Callable = field(repr=False)  # (js, xs) -> profiled deviances, batched
    _lower: dict = field(repr=False)  # parameter -> lowest value it may take (0 for sd's and σ, −1 for cor's)
    _upper: dict = field(repr=False)

    @property
    def parameters(self) -> list[str]:
        return list(self.estimates.index)

    def zeta(self, name: str, x: float) -> float:
        """ζ at x, by one more profiled fit (exact, not interpolated)."""
        j = self.parameters.index(name)
        d = self._evaluate(j, x)
        return math.copysign(math.sqrt(max(d - self.deviance, 0.0)), x - self.estimates.iloc[j])

    def confint(self, level: float = 0.95) -> pd.DataFrame:
        """Profile intervals: where ζ = ∓ z_{(1+level)/2}, found by root-finding on the exact ζ between the profile's
        grid points, every end at once (one batched solve per step); an end that ζ does not reach before the
        parameter's bound is that bound."""
        if not (0 < level < 1):
            raise ArgumentError(f"level must be between 0 and 1, not {level!r}")
        z = _scipy('stats').norm.ppf((1 + level) / 2)
        ends = np.full((len(self.parameters), 2), np.nan)
        brackets = []  # (row, column, parameter index, a, b, ζ(a) − target, ζ(b) − target)
        for k, name in enumerate(self.parameters):
            block = self.table[self.table["parameter"] == name].sort_values("value")
            x, zeta = block["value"].to_numpy(), block["zeta"].to_numpy()
            for col, target in enumerate((-z, z)):
                end = self._end(name, x, zeta, target)
                if isinstance(end, tuple):
                    brackets.append((k, col, k, *end))
                else:
                    ends[k, col] = end
        for (k, col, *_), root in zip(brackets, self._roots(brackets, z)):
            ends[k, col] = root
        return pd.DataFrame(ends, index=self.parameters, columns=["lower", "upper"])

    def _end(self, name, x, zeta, target):
        """The end's value when the grid decides it (a bound, or a grid point at the table's edge), else the
        bracket (a, b, ζ(a) − target, ζ(b) − target) around it."""
        above = zeta >= target if target > 0 else zeta <= target
        idx = np.flatnonzero(above)
        if not len(idx):
            bound = self._upper[name] if target > 0 else self._lower[name]
            return bound if np.isfinite(bound) else np.nan
        i = idx[0] if target > 0 else idx[-1]
        j = i - 1 if target > 0 else i + 1
        if j < 0 or j >= len(x):
            return float(x[i])
        (a, fa), (b, fb) = sorted([(x[i], zeta[i] - target), (x[j], zeta[j] - target)])
        return a, b, fa, fb

    def _roots(self, brackets, z, maxiter: int = 60) -> np.ndarray:
        """ζ(x) = ∓z in every bracket at once, by the Illinois variant of regula falsi (Dowell & Jarratt 1971) on
        the exact ζ: each step is one batched set of inner fits."""
        if not brackets:
            return np.empty(0)
        j = np.array([b[2] for b in brackets])
        a, b, fa, fb = (np.array([br[i] for br in brackets], float) for i in range(3, 7))
        target = np.array([z if br[1] == 1 else -z for br in brackets])
        side = np.zeros(len(j))  # which end moved last (−1 a, +1 b), for Illinois's halving
        done = np.zeros(len(j), bool)
        root = np.where(np.abs(fa) < np.abs(fb), a, b)
        for _ in range(maxiter):
            denom = fb - fa
            c = np.where(denom != 0, b - fb * (b - a) / np.where(denom != 0, denom, 1.0), 0.5 * (a + b))
            c = np.clip(c, np.minimum(a, b), np.maximum(a, b))
            live = np.flatnonzero(~done)
            d = self._deviances(j[live], c[live])
            fc = np.full(len(j), np.nan)
            est = self.estimates.to_numpy()[j[live]]
            fc[live] = np.copysign(np.sqrt(np.maximum(d - self.deviance, 0.0)), c[live] - est) - target[live]
            for i in live:
                root[i] = c[i]
                if fc[i] == 0 or abs(b[i] - a[i]) <= 1e-9 * max(1.0, abs(b[i])) or abs(fc[i]) < 1e-7:
                    done[i] = True
                elif np.sign(fc[i]) == np.sign(fb[i]):
                    b[i], fb[i] = c[i], fc[i]
                    if side[i] == 1:
                        fa[i] /= 2
                    side[i] = 1
                else:
                    a[i], fa[i] = c[i], fc[i]
                    if side[i] == -1:
                        fb[i] /= 2
                    side[i] = -1
            if done.all():
                break
        return root

    def plot(self, parameters=None, ax=None):
        """ζ against each parameter (matplotlib, optional dependency); returns the figure."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as err:  # pragma: no cover - matplotlib is optional
            raise ArgumentError("Profile.plot needs matplotlib: pip install matplotlib") from err
        names = self.parameters if parameters is None else list(parameters)
        ncol = min(len(names), 4)
        nrow = math.ceil(len(names) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(3 * ncol, 2.6 * nrow), squeeze=False)
        for a, name in zip(axes.ravel(), names):
            block = self.table[self.table["parameter"] == name].sort_values("value")
            a.plot(block["value"], block["zeta"], "-", color="C0")
            a.axhline(0, color="0.7", lw=0.8)
            a.set_title(name, fontsize=9)
            a.set_ylabel("ζ")
        for a in axes.ravel()[len(names):]:
            a.set_visible(False)
        fig.tight_layout()
        return fig


@single_blas_thread
def profile(model, threshold: float = 4.0, npoints: int = 8) -> Profile:
    """Profile every parameter of ``model`` until |ζ| > threshold (or a bound) in both directions."""
    if not (isinstance(threshold, (int, float)) and threshold > 0):
        raise ArgumentError(f"threshold must be a positive number, not {threshold!r}")
    ml = model if not model.reml else _ml_refit(model)
    layout, arrays, design = ml.problem.layout, ml.problem.arrays, ml.problem.design
    psi_hat = psi_from_theta(np.asarray(ml.theta), ml.sigma, layout)
    nvar, p = len(psi_hat), design.p
    ev = _Evaluator(arrays, layout, psi_hat, np.asarray(ml.theta, float), p, nvar, _psi_scale(layout, psi_hat))
    names = parameter_names(design)
    est = np.concatenate([psi_hat, ml.fixef.to_numpy()])
    # approximate standard errors for the step sizes: the ML Hessian in ψ, Cov(β̂) for the fixed effects
    H = np.asarray(_psi_hess(jnp.asarray(psi_hat), arrays, layout))
    try:
        se_psi = np.sqrt(np.abs(np.diag(2 * np.linalg.pinv(H))))
    except np.linalg.LinAlgError:
        se_psi = np.abs(psi_hat) * 0.2
    se = np.concatenate([np.where(np.isfinite(se_psi) & (se_psi > 0), se_psi, np.abs(psi_hat) * 0.2 + 1e-3),
                         ml.stderror.to_numpy()])
    lo, hi = _bounds(layout, psi_hat)
    lower = dict(zip(names, np.concatenate([lo, np.full(p, -np.inf)])))
    upper = dict(zip(names, np.concatenate([hi, np.full(p, np.inf)])))
    dmin = float(ml.objective)
    # every (parameter, direction) walks out in lockstep: each step is one batched set of inner fits
    lanes = [(j, direction) for j in range(len(names)) for direction in (-1, 1)]
    x_prev = np.array([est[j] for j, _ in lanes])
    z_prev = np.zeros(len(lanes))
    step = np.array([se[j] * threshold / npoints * 2 for j, _ in lanes])
    live = np.ones(len(lanes), bool)
    walked = [[] for _ in lanes]
    for _ in range(4 * npoints):
        xs = np.full(len(lanes), np.nan)
        for i, (j, direction) in enumerate(lanes):
            if not live[i]:
                continue
            x = x_prev[i] + direction * step[i]
            bound = lower[names[j]] if direction < 0 else upper[names[j]]
            if np.isfinite(bound) and (x - bound) * direction >= 0:
                x = bound - direction * (1e-6 * max(abs(est[j]), 1e-3) if j < nvar and psi_kinds(layout)[j] else 1e-6)
                if (x - x_prev[i]) * direction <= 0:
                    live[i] = False
                    continue
            xs[i] = x
        todo = np.flatnonzero(live)
        if not len(todo):
            break
        d = ev.deviances([lanes[i][0] for i in todo], xs[todo])
        for i, di in zip(todo, d):
            j, direction = lanes[i]
            x, bound = xs[i], lower[names[j]] if direction < 0 else upper[names[j]]
            zeta = direction * math.sqrt(max(di - dmin, 0.0))
            walked[i].append((names[j], x, zeta))
            if abs(zeta) > threshold or (np.isfinite(bound) and abs(x - bound) < 1e-5 * max(1, abs(bound))):
                live[i] = False
                continue
            # next step aims at ζ + threshold / npoints, from the local slope
            slope = abs(zeta - z_prev[i]) / abs(x - x_prev[i])
            step[i] = (threshold / npoints) / slope if slope > 1e-12 else step[i] * 2
            step[i] = min(step[i], 4 * se[j] + abs(x - est[j]))
            x_prev[i], z_prev[i] = x, zeta
    rows = []
    for j, name in enumerate(names):
        rows.append((name, est[j], 0.0))
        for i in (2 * j, 2 * j + 1):
            rows.extend(walked[i])
    table = pd.DataFrame(rows, columns=["parameter", "value", "zeta"])
    return Profile(table, pd.Series(est, index=names, name="estimate"), dmin, ev.deviance, ev.deviances, lower,
                   upper)


def _ml_refit(model):
    from ..model.lmm import fit

    return fit(model.problem, reml=False, theta0=np.asarray(model.theta))
