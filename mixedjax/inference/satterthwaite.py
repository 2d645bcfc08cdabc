"""Satterthwaite's degrees of freedom, exactly (lmerTest's method, Kuznetsova et al. 2017, J. Stat. Softw. 82(13)).

The variance parameters are v = (θ, σ) as in lmerTest. Their asymptotic covariance is A = 2 H⁻¹, with H the Hessian
of the objective in v (the deviance for ML fits, the REML criterion for REML fits, σ not profiled). For a contrast
l, with C(v) = Cov(β̂) = σ² (X'V⁻¹X)⁻¹ and g_i = l' ∂C/∂v_i l, the df are ν = 2 (l'Cl)² / (g'Ag). H is the Hessian of
``fixed_sigma_objective`` (its θ block by jax.hessian at σ held, σ's row in closed form) and ∂C/∂v is jax.jacfwd of
``vcov_beta``: both exact.
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..core.derived import vcov_beta
from ..core.objective import fixed_sigma_objective, pieces


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


def _hessian_v(v, arrays, layout, reml):
    """The Hessian of ``_objective_v`` in v = (θ, σ): the θ block forward over reverse at σ held (dim θ tangents,
    one fewer than jax.hessian in v), σ's row in closed form. With s² = σ²/c² (c the scale y was divided by) the
    objective is dof log(2π s²) + log-determinants(θ) + r²(θ)/s², so
    ∂²/∂σ² = −2 dof/σ² + 6 c² r²/σ⁴ and ∂²/∂σ∂θ = −2 c² ∇r²/σ³ (one more gradient, of r²)."""
    theta, sigma = v[:-1], v[-1]
    dof = layout.n - layout.p if reml else layout.n
    c2 = jnp.exp(arrays.log_yscale2)
    Htt = jax.hessian(lambda t: fixed_sigma_objective(t, arrays, layout, sigma**2, reml))(theta)
    r2, g = jax.value_and_grad(lambda t: pieces(t, arrays, layout)[2])(theta)
    hss = -2.0 * dof / sigma**2 + 6.0 * c2 * r2 / sigma**4
    hst = -2.0 * c2 * g / sigma**3
    return jnp.block([[Htt, hst[:, None]], [hst[None, :], hss[None, None]]])


def _derivatives(v, arrays, layout, reml):
    """H (k, k) and ∂Cov(β̂)/∂v (p, p, k), k forward tangents, at v: one program for the whole table."""
    return _hessian_v(v, arrays, layout, reml), jax.jacfwd(_vcov_v)(v, arrays, layout)


@functools.cache
def _derivatives_program():
    """_derivatives as a fitting.traces.CachedProgram: a new process reads the traced program (and, from JAX's
    persistent cache, its compile) back instead of tracing, lowering and compiling it again (most of a cold table
    on InstEval)."""
    from ..fitting import traces

    # XLA's default options: with the quick ones the first table compiles 3x faster (InstEval, load 4: 22.2 -> 7.2 s)
    # but a later one runs 40 % slower, and the warm table is what issue 16's target (≥ 20× lmerTest) measures
    return traces.CachedProgram("satterthwaite_derivatives", _derivatives, 2, ("layout", "reml"), (0.0, 0.0))


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
    H, J = _derivatives_program()(v, arrays, layout, reml)
    H, J = np.asarray(H), np.moveaxis(np.asarray(J), -1, 0)
    return SatterthwaiteParts(np.asarray(vcov, float), covariance_from_hessian(H, "REML criterion" if reml else "deviance"), J)


def contrast_df(parts: SatterthwaiteParts, l: np.ndarray) -> float:
    """ν = 2 (l'Cl)² / (g'Ag) for one contrast row l (p,)."""
    var = float(l @ parts.vcov @ l)
    g = np.einsum("i,kij,j->k", l, parts.jac, l)
    denom = float(g @ parts.A @ g)
    return 2.0 * var**2 / denom if denom > 0 else np.inf
