"""Satterthwaite's degrees of freedom, exactly (lmerTest's method, Kuznetsova et al. 2017, J. Stat. Softw. 82(13)).

The variance parameters are v = (θ, σ) as in lmerTest. Their asymptotic covariance is A = 2 H⁻¹, with H the Hessian
of the objective in v (the deviance for ML fits, the REML criterion for REML fits, σ not profiled). For a contrast
l, with C(v) = Cov(β̂) = σ² (X'V⁻¹X)⁻¹ and g_i = l' ∂C/∂v_i l, the df are ν = 2 (l'Cl)² / (g'Ag). H is jax.hessian of
``fixed_sigma_objective`` and ∂C/∂v is jax.jacfwd of ``vcov_beta``: both exact.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..core.derived import vcov_beta
from ..core.objective import fixed_sigma_objective


class SatterthwaiteParts(NamedTuple):
    """What Satterthwaite's df of any contrast need, at the fit.

    vcov: Cov(β̂) (p, p); A: asymptotic covariance of v = (θ, σ), 2 H⁻¹ (k, k); jac: ∂Cov(β̂)/∂v_i (k, p, p).
    """

    vcov: np.ndarray
    A: np.ndarray
    jac: np.ndarray


def _objective_v(v, arrays, layout, reml):
    """-2 log-likelihood (or the REML criterion) in v = (θ, σ)."""
    return fixed_sigma_objective(v[:-1], arrays, layout, v[-1] ** 2, reml)


def _vcov_v(v, arrays, layout):
    return vcov_beta(v[:-1], v[-1], arrays, layout)


_hessian = jax.jit(jax.hessian(_objective_v), static_argnames=("layout", "reml"))
_jacobian = jax.jit(jax.jacfwd(_vcov_v), static_argnames=("layout",))  # k tangents: p × p outputs, k inputs


def covariance_from_hessian(H: np.ndarray, what: str, tol: float = 1e-6) -> np.ndarray:
    """2 H⁺ over H's eigenvalues above ``tol``, as lmerTest (absolute tolerance 1e-6 in the same (θ, σ)), with its
    warnings when some eigenvalue is negative or near zero (a boundary or unconverged fit)."""
    H = (H + H.T) / 2
    w, U = np.linalg.eigh(H)
    if not np.all(np.isfinite(w)):
        from ..errors import FitError

        raise FitError(f"the Hessian of the {what} in the variance parameters is not finite at the fit")
    neg, zero = int(np.sum(w < -tol)), int(np.sum(np.abs(w) <= tol))
    if neg or zero:
        warnings.warn(f"the Hessian of the {what} in the variance parameters (θ, σ) has {neg} negative and {zero} "
                      f"near-zero eigenvalue(s) at the fit: the degrees of freedom use its pseudo-inverse over the "
                      f"positive ones, as lmerTest does", stacklevel=4)
    pos = w > tol
    return 2.0 * (U[:, pos] / w[pos]) @ U[:, pos].T


def satterthwaite_parts(theta, sigma, vcov, arrays, layout, reml) -> SatterthwaiteParts:
    """A and ∂Cov(β̂)/∂v at the fit (θ, σ); ``vcov`` is Cov(β̂) there."""
    v = jnp.concatenate([jnp.asarray(theta, dtype=jnp.float64), jnp.asarray([sigma], dtype=jnp.float64)])
    H = np.asarray(_hessian(v, arrays, layout, reml))
    J = np.moveaxis(np.asarray(_jacobian(v, arrays, layout)), -1, 0)
    return SatterthwaiteParts(np.asarray(vcov, float), covariance_from_hessian(H, "REML criterion" if reml else "deviance"), J)


def contrast_df(parts: SatterthwaiteParts, l: np.ndarray) -> float:
    """ν = 2 (l'Cl)² / (g'Ag) for one contrast row l (p,)."""
    var = float(l @ parts.vcov @ l)
    g = np.einsum("i,kij,j->k", l, parts.jac, l)
    denom = float(g @ parts.A @ g)
    return 2.0 * var**2 / denom if denom > 0 else np.inf
