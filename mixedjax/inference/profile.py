"""Profile likelihood of every parameter (lme4's ``profile``; Bates et al. 2015, J. Stat. Softw. 67(1), section 5.1).

ζ(x) = sign(x − x̂) √(d(x) − d̂), d(x) the ML deviance minimised over all other parameters with this one held at x
(lme4 profiles REML fits through their ML refit, and so does this). The random-effect standard deviations and
correlations and σ are profiled in lme4's parameters ψ = (sd, cor per term, σ), through ``fixed_sigma_objective``;
a fixed effect β_j through the closed form of the penalised residual sum of squares with β_j held at c,

    r²_j(θ, c) = r²(θ) + (c − β̂_j(θ))² / [(L_XX L_XX')⁻¹]_jj,

so the fixed effects' profiles minimise over θ alone. Every inner fit is L-BFGS with the exact gradient of the same
pure objective the model was fitted with.
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
from .lazy import scipy_module as _scipy
from .names import parameter_names


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
    for t, lam in zip(layout.terms, (np.asarray(x) for x in lambdas(jnp.asarray(theta, float), layout))):
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


_psi_vg = jax.jit(jax.value_and_grad(_psi_deviance), static_argnames=("layout",))
_psi_hess = jax.jit(jax.hessian(_psi_deviance), static_argnames=("layout",))
_beta_vg = jax.jit(jax.value_and_grad(_beta_deviance), static_argnames=("layout",))


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
    """min of the ML deviance with parameter ``j`` held at x, warm-started from the last optimum nearest x."""

    arrays: object
    layout: object
    psi_hat: np.ndarray
    theta_hat: np.ndarray
    p: int
    nvar: int  # number of ψ entries (variance parameters and σ)
    starts: dict = field(default_factory=dict)

    def deviance(self, j: int, x: float) -> float:
        if j < self.nvar:
            return self._psi(j, x)
        return self._beta(j - self.nvar, x)

    def _nearest(self, j, x, default):
        near = self.starts.get(j)
        if not near:
            return default
        keys = np.array(list(near))
        return near[float(keys[np.argmin(np.abs(keys - x))])]

    def _psi(self, j, x):
        free = np.delete(np.arange(self.nvar), j)
        lo, hi = _bounds(self.layout, self.psi_hat)
        scale = np.maximum(np.abs(self.psi_hat), 1e-3)
        sd = np.append(self._sd_free(np.arange(self.nvar - 1)), False)
        scale[sd & (np.abs(self.psi_hat) < 1e-4 * self.psi_hat[-1])] = 0.1 * self.psi_hat[-1]  # a zero sd: σ's units
        eps = 1e-8
        bnds = [((lo[i] + eps * (1 if lo[i] == -1 else scale[i])) / scale[i],
                 (hi[i] - eps) / scale[i] if np.isfinite(hi[i]) else None) for i in free]
        x0 = self._nearest(j, x, self.psi_hat[free]) / scale[free]

        def fg(z):
            psi = self.psi_hat.copy()
            psi[free] = z * scale[free]
            psi[j] = x
            v, g = _psi_vg(jnp.asarray(psi), self.arrays, self.layout)
            v, g = float(v), np.asarray(g)[free] * scale[free]
            if not np.isfinite(v):
                return 1e300, np.zeros_like(z)
            return v, g

        best = None
        for start in _starts(x0, self._sd_free(free)):
            res = _scipy('optimize').minimize(fg, start, jac=True, method="L-BFGS-B", bounds=bnds,
                                    options={"maxiter": 500, "ftol": 1e-14, "gtol": 1e-9})
            if best is None or res.fun < best.fun:
                best = res
        self.starts.setdefault(j, {})[float(x)] = best.x * scale[free]
        return float(best.fun)

    def _sd_free(self, free):
        """Mask over ``free``: the random-effect sd's (a zero sd is a stationary point: the deviance is even in it)."""
        mask = []
        for t in self.layout.terms:
            mask.extend(r == c for r, c in t.pattern)
        mask.append(False)
        return np.asarray(mask)[free]

    def _beta(self, k, x):
        e = jnp.asarray(np.eye(self.p)[k])
        x0 = self._nearest(self.nvar + k, x, self.theta_hat)

        def fg(th):
            v, g = _beta_vg(jnp.asarray(th), jnp.float64(x), e, self.arrays, self.layout)
            return float(v), np.asarray(g)

        diag = np.zeros(len(self.theta_hat), bool)
        for t in self.layout.terms:
            for i, (r, c) in enumerate(t.pattern):
                diag[t.theta_offset + i] = r == c
        best = None
        for start in _starts(np.asarray(x0, float), diag):
            res = _scipy('optimize').minimize(fg, start, jac=True, method="L-BFGS-B",
                                    options={"maxiter": 500, "ftol": 1e-14, "gtol": 1e-9})
            if best is None or res.fun < best.fun:
                best = res
        self.starts.setdefault(self.nvar + k, {})[float(x)] = best.x
        return float(best.fun)


def _starts(x0, scale_like):
    """The warm start, and, where some sd-like entry of it is (near) zero, also one with those entries moved off
    zero: the deviance is even in them, so zero is a stationary point a gradient method cannot leave."""
    out = [x0]
    small = scale_like & (np.abs(x0) < 1e-4)
    if np.any(small):
        x1 = np.array(x0, float)
        x1[small] = 0.5
        out.append(x1)
    return out


@dataclass(frozen=True, eq=False)
class Profile:
    """ζ against each parameter: ``table`` has columns ``parameter``, ``value``, ``zeta`` (lme4's profile as a data
    frame), one block per parameter in lme4's order. ``confint(level)`` gives the intervals, ``plot()`` the ζ plots.
    """

    table: pd.DataFrame
    estimates: pd.Series  # the ML estimates, by parameter name
    deviance: float  # the minimal ML deviance
    _evaluate: Callable = field(repr=False)
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
        grid points (NaN where ζ does not reach it before the parameter's bound, which is then reported)."""
        if not (0 < level < 1):
            raise ArgumentError(f"level must be between 0 and 1, not {level!r}")
        z = _scipy('stats').norm.ppf((1 + level) / 2)
        rows = []
        for name in self.parameters:
            block = self.table[self.table["parameter"] == name].sort_values("value")
            x, zeta = block["value"].to_numpy(), block["zeta"].to_numpy()
            rows.append((self._end(name, x, zeta, -z), self._end(name, x, zeta, z)))
        return pd.DataFrame(rows, index=self.parameters, columns=["lower", "upper"])

    def _end(self, name, x, zeta, target):
        above = zeta >= target if target > 0 else zeta <= target
        idx = np.flatnonzero(above)
        if not len(idx):
            bound = self._upper[name] if target > 0 else self._lower[name]
            return bound if np.isfinite(bound) else np.nan
        i = idx[0] if target > 0 else idx[-1]
        j = i - 1 if target > 0 else i + 1
        if j < 0 or j >= len(x):
            return float(x[i])
        a, b = sorted((x[i], x[j]))
        try:
            return float(_scipy('optimize').brentq(lambda v: self.zeta(name, v) - target, a, b, xtol=1e-10 * max(1, abs(b)),
                                         rtol=1e-12))
        except ValueError:
            return float(np.interp(target, sorted((zeta[i], zeta[j])), [x[i], x[j]] if zeta[i] < zeta[j] else
                                   [x[j], x[i]]))

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


def profile(model, threshold: float = 4.0, npoints: int = 8) -> Profile:
    """Profile every parameter of ``model`` until |ζ| > threshold (or a bound) in both directions."""
    if not (isinstance(threshold, (int, float)) and threshold > 0):
        raise ArgumentError(f"threshold must be a positive number, not {threshold!r}")
    ml = model if not model.reml else _ml_refit(model)
    layout, arrays, design = ml.problem.layout, ml.problem.arrays, ml.problem.design
    psi_hat = psi_from_theta(np.asarray(ml.theta), ml.sigma, layout)
    nvar, p = len(psi_hat), design.p
    ev = _Evaluator(arrays, layout, psi_hat, np.asarray(ml.theta, float), p, nvar)
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
    rows = []
    for j, name in enumerate(names):
        rows.append((name, est[j], 0.0))
        for direction in (-1, 1):
            x_prev, z_prev = est[j], 0.0
            step = se[j] * threshold / npoints * 2
            for _ in range(4 * npoints):
                x = x_prev + direction * step
                bound = lower[name] if direction < 0 else upper[name]
                if np.isfinite(bound) and (x - bound) * direction >= 0:
                    x = bound - direction * (1e-6 * max(abs(est[j]), 1e-3) if name.startswith("sd_") or
                                             name == "sigma" else 1e-6)
                    if (x - x_prev) * direction <= 0:
                        break
                d = ev.deviance(j, x)
                zeta = direction * math.sqrt(max(d - dmin, 0.0))
                rows.append((name, x, zeta))
                if abs(zeta) > threshold or (np.isfinite(bound) and abs(x - bound) < 1e-5 * max(1, abs(bound))):
                    break
                # next step aims at ζ + threshold / npoints, from the local slope
                slope = abs(zeta - z_prev) / abs(x - x_prev)
                step = (threshold / npoints) / slope if slope > 1e-12 else step * 2
                step = min(step, 4 * se[j] + abs(x - est[j]))
                x_prev, z_prev = x, zeta
    table = pd.DataFrame(rows, columns=["parameter", "value", "zeta"])
    return Profile(table, pd.Series(est, index=names, name="estimate"), dmin, ev.deviance, lower, upper)


def _ml_refit(model):
    from ..model.lmm import fit

    return fit(model.problem, reml=False, theta0=np.asarray(model.theta))
