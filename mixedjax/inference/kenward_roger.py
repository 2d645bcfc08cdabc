"""Kenward–Roger (1997, Biometrics 53:983) adjusted Cov(β̂) and degrees of freedom, as pbkrtest computes them, without
any n × n matrix.

pbkrtest writes Σ = Σ_i φ_i G_i, linear in the covariance parameters φ (each term's covariance entries σ² λλ' and the
residual variance σ²), and needs for every pair (i, j)

    P_i = −X'Σ⁻¹G_iΣ⁻¹X,   Q_ij = X'Σ⁻¹G_iΣ⁻¹G_jΣ⁻¹X,   tr(Σ⁻¹G_iΣ⁻¹G_j).

All three are derivatives of two functions of φ that the blocked factor gives cheaply:

    F(φ) = X'Σ⁻¹X = L_XX L_XX' / σ²:                    ∂F/∂φ_i = P_i,   ∂²F/∂φ_i∂φ_j = Q_ij + Q_ji,
    h(φ) = log|Σ| + log|X'Σ⁻¹X|:                        −∂²h/∂φ_i∂φ_j = tr(Π G_i Π G_j),   Π = Σ⁻¹ − Σ⁻¹XΦX'Σ⁻¹,

the last being pbkrtest's expected REML information (tr(Σ⁻¹G_iΣ⁻¹G_j) − 2 tr(ΦQ_ij) + tr(ΦP_iΦP_j)). ∂F is
jax.jacfwd (k tangents), ∂²h is jax.hessian (forward over reverse, like the fit's own Hessian), and the only
combination of the second derivatives of F that is needed, Σ_ij W_ij ∂²F/∂φ_i∂φ_j, is k second-order forward
passes along W's eigenvectors: exact, and about 3k factorisations in all. Then (Φ = F⁻¹, W = 2 (−∂²h)⁻¹, R_ij = 0
for a linear Σ)

    Φ_A = Φ + 2 Φ [Σ_ij W_ij (Q_ij − P_i Φ P_j)] Φ,

and the df of a hypothesis L follow from A1 and A2 (Kenward & Roger 1997, section 4; pbkrtest's ``.KR_adjust``).
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..core.derived import xx_factor
from ..core.objective import factor, lambdas, pieces


class KenwardRogerParts(NamedTuple):
    """Kenward–Roger's pieces at a REML fit.

    vcov: Φ, the unadjusted Cov(β̂) (p, p); vcov_adj: Φ_A, the adjusted one (p, p); P: ∂(X'Σ⁻¹X)/∂φ_i (k, p, p);
    W: 2 (expected REML information)⁻¹ in φ (k, k); phi: the covariance parameters φ at the fit (k,).
    """

    vcov: np.ndarray
    vcov_adj: np.ndarray
    P: np.ndarray
    W: np.ndarray
    phi: np.ndarray


def phi_from_theta(theta, sigma, layout) -> np.ndarray:
    """φ: per term the entries of σ² λλ' at λ's free positions (θ's order), then σ²."""
    out = []
    for t, lam in zip(layout.terms, lambdas(np.asarray(theta, float), layout)):
        cov = sigma**2 * lam @ lam.T
        out.extend(cov[r, c] for r, c in t.pattern)
    return np.array(out + [sigma**2])


def _theta_from_phi(phi, layout):
    """θ of the covariance parameters: λ_k = chol(Σ_k / σ²) (block diagonal Σ_k gives block diagonal λ_k)."""
    s2 = phi[-1]
    parts = []
    for t in layout.terms:
        rows = [r for r, _ in t.pattern]
        cols = [c for _, c in t.pattern]
        vals = phi[t.theta_offset : t.theta_offset + len(t.pattern)] / s2
        S = jnp.zeros((t.s, t.s), phi.dtype).at[rows, cols].set(vals).at[cols, rows].set(vals)
        lam = jnp.sqrt(S) if t.s == 1 else jnp.linalg.cholesky(S)
        parts.append(lam[rows, cols])
    return jnp.concatenate(parts)


def _F(phi, arrays, layout):
    """F(φ) = X'Σ⁻¹X = L_XX L_XX' / σ²."""
    LXX = xx_factor(factor(_theta_from_phi(phi, layout), arrays, layout), layout)
    return LXX @ LXX.T / phi[-1]


def _h(phi, arrays, layout):
    """h(φ) = log|Σ| + log|X'Σ⁻¹X| = (n − p) log σ² + log|Λ'Z'ZΛ + I| + log|X'V⁻¹X| (V = Σ / σ²)."""
    logdet, logdetx, _ = pieces(_theta_from_phi(phi, layout), arrays, layout)
    return (layout.n - layout.p) * jnp.log(phi[-1]) + logdet + logdetx


def _first(phi, arrays, layout):
    """F, ∂F/∂φ (k forward tangents) and the Hessian of h (forward over reverse, as the fit's own Hessian)."""
    fn = lambda ph: _F(ph, arrays, layout)  # noqa: E731
    return fn(phi), jax.jacfwd(fn)(phi), jax.hessian(_h)(phi, arrays, layout)


def _second(phi, directions, arrays, layout):
    """D²F(φ)[u, u] for each row u of ``directions``: Σ_ij W_ij ∂²F/∂φ_i∂φ_j = Σ_r w_r D²F[u_r, u_r] with
    W = Σ_r w_r u_r u_r', so r = k second-order forward passes instead of k²."""
    fn = lambda ph: _F(ph, arrays, layout)  # noqa: E731

    def along(u):
        return jax.jvp(lambda ph: jax.jvp(fn, (ph,), (u,))[1], (phi,), (u,))[1]

    return jax.vmap(along)(directions)


@functools.cache
def _programs():
    """_first and _second as fitting.traces.CachedPrograms (a new process reads their traced programs back; JAX's
    persistent cache holds their compiles)."""
    from ..fitting import traces
    from ..fitting.loop import quick_options

    # run once per table, so compiled with the quick options (InstEval REML, fresh caches, load 4: the first table
    # 27.9 -> 12.8 s, a later one 4.7 -> 5.9 s; docs/inference.md)
    q = quick_options()
    return (traces.CachedProgram("kr_first", _first, 2, ("layout",), (0.0, 0.0, 0.0), options=q),
            traces.CachedProgram("kr_second", _second, 3, ("layout",), 0.0, options=q))


def kenward_roger_parts(theta, sigma, arrays, layout) -> KenwardRogerParts:
    """Φ, Φ_A, P and W at a REML fit (θ, σ); at a boundary fit, just off it (:func:`off_boundary`)."""
    phi = phi_from_theta(off_boundary(theta, layout), float(sigma), layout)
    F, dF, d2h = (np.asarray(a) for a in _programs()[0](jnp.asarray(phi), arrays, layout))
    P = np.moveaxis(dF, -1, 0)  # (k, p, p)
    Phi = np.linalg.inv(F)
    Phi = (Phi + Phi.T) / 2
    info = -(d2h + d2h.T) / 2
    w = np.linalg.eigvalsh(info)
    if np.min(np.abs(w)) > 1e-10:
        W = 2.0 * np.linalg.inv(info)
    else:  # pbkrtest's fallback on a (near) singular information
        warnings.warn("the expected REML information of the covariance parameters is (near) singular: its "
                      "pseudo-inverse is used for Kenward-Roger", stacklevel=3)
        W = 2.0 * np.linalg.pinv(info)
    W = (W + W.T) / 2
    wr, Ur = np.linalg.eigh(W)
    D2 = np.asarray(_programs()[1](jnp.asarray(phi), jnp.asarray(Ur.T), arrays, layout))  # (k, p, p)
    Q = np.einsum("r,rab->ab", wr, D2) / 2  # Σ_ij W_ij Q_ij (W symmetric)
    U = Q - np.einsum("ij,iab,bc,jcd->ad", W, P, Phi, P)
    PhiA = Phi + 2.0 * Phi @ U @ Phi
    return KenwardRogerParts(Phi, (PhiA + PhiA.T) / 2, P, W, phi)


BOUNDARY_STEP = 1e-4  # a zero pivot of λ_k is evaluated at this (relative) value: Σ_k moves by ~1e-8 relative


def off_boundary(theta, layout) -> np.ndarray:
    """θ with every zero diagonal entry of λ_k (a variance estimated as zero, a correlation as ±1) moved to
    BOUNDARY_STEP times the term's largest one (or BOUNDARY_STEP where all are zero).

    Kenward–Roger's quantities are smooth (analytic) in φ wherever Σ = Σ_i φ_i G_i is positive definite, also where
    some Σ_k is singular (pbkrtest evaluates them there), but mixedjax reaches φ through λ_k = chol(Σ_k / σ²), whose
    Jacobian is singular there. Just off the boundary the chain rule is exact again; Σ_k changes by about
    BOUNDARY_STEP² relative, and the rounding error of the chain rule's cancellation is about 1e-16 / BOUNDARY_STEP²,
    so both stay near 1e-8 of the result (measured against pbkrtest in tests/test_inference_kenward_roger.py).
    """
    theta = np.array(theta, float)
    for t in layout.terms:
        diag = [t.theta_offset + i for i, (r, c) in enumerate(t.pattern) if r == c]
        d = np.abs(theta[diag])
        big = max(1.0, d.max(initial=0.0))
        for i in diag:
            if abs(theta[i]) <= 1e-6 * big:
                theta[i] = BOUNDARY_STEP * big
    return theta


def _div_zero(x, y, tol=1e-14):
    """pbkrtest's .divZero: x / y, and 0 when both are (near) zero."""
    return 0.0 if abs(x) < tol and abs(y) < tol else x / y


class KenwardRogerTest(NamedTuple):
    """Kenward–Roger's F test of L β = 0: F (scaled, F = λ F_U), its unscaled form, the scaling λ, and the df."""

    F: float
    F_unscaled: float
    scaling: float
    ndf: int
    ddf: float


def kr_ddf(parts: KenwardRogerParts, L: np.ndarray) -> tuple[float, float]:
    """(denominator df m, F scaling λ) for the hypothesis rows L (q, p) (Kenward & Roger 1997, eqs. 7–11)."""
    L = np.atleast_2d(L)
    Phi = parts.vcov
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    q = np.linalg.matrix_rank(L)
    u = np.einsum("ab,ibc,cd->iad", Theta @ Phi, parts.P, Phi)  # Θ Φ P_i Φ
    tr = np.einsum("iaa->i", u)
    A1 = float(tr @ parts.W @ tr)
    A2 = float(np.einsum("ij,iab,jba->", parts.W, u, u))
    B = (A1 + 6 * A2) / (2 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    c1 = g / (3 * q + 2 * (1 - g))
    c2 = (q - g) / (3 * q + 2 * (1 - g))
    c3 = (q + 2 - g) / (3 * q + 2 * (1 - g))
    V0 = 1 + c1 * B
    V0 = 0.0 if abs(V0) < 1e-10 else V0
    V1, V2 = 1 - c2 * B, 1 - c3 * B
    rho = (1 / q) * _div_zero(1 - A2 / q, V1) ** 2 * V0 / V2
    m = 4 + (q + 2) / (q * rho - 1)
    scaling = 1.0 if abs(m - 2) < 1e-2 else m * (1 - A2 / q) / (m - 2)
    return float(m), float(scaling)


def kr_test(parts: KenwardRogerParts, L: np.ndarray, beta: np.ndarray, rhs=None) -> KenwardRogerTest:
    """Kenward–Roger's F test of L β = rhs with the adjusted covariance Φ_A."""
    L = np.atleast_2d(L)
    d = L @ beta - (0.0 if rhs is None else np.asarray(rhs, float))
    q = int(np.linalg.matrix_rank(L))
    m, scaling = kr_ddf(parts, L)
    FU = float(d @ np.linalg.solve(L @ parts.vcov_adj @ L.T, d)) / q
    return KenwardRogerTest(scaling * FU, FU, scaling, q, m)
