"""The profiled objective d(θ) as one pure JAX function of θ and the prepared arrays (DESIGN.md section 2).

Blocked right-looking Cholesky of M(θ) = T'AT + diag(I_q, 0) over the block rows of :mod:`mixedjax._blocks`.
The left factor Λ of each block row is kept out of the recursion: with L̃_jk defined by L_jk = Λ_j' L̃_jk,

    L̃_jk = (A_jk Λ_k − Σ_{i<k} L̃_ji L_ki') L_kk^{-T},      L_jj = chol(Λ_j' (A_jj − Σ_{k<j} L̃_jk L̃_jk') Λ_j + I)

so the fill-in products never see θ of the row block.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from ._blocks import Layout


def lambdas(theta, layout: Layout):
    """λ_k (s_k × s_k lower triangular) of every term from θ."""
    if theta.shape != (layout.ntheta,):
        from ._errors import ArgumentError

        raise ArgumentError(f"θ must be a vector of {layout.ntheta} values for this model, not shape {theta.shape}")
    out = []
    for t in layout.terms:
        rows = [r for r, _ in t.pattern]
        cols = [c for _, c in t.pattern]
        vals = theta[t.theta_offset : t.theta_offset + len(t.pattern)]
        out.append(jnp.zeros((t.s, t.s), theta.dtype).at[rows, cols].set(vals))
    return out


def _solve_right_lt(Lb, T):
    """T L^{-T} for batched lower-triangular L: Lb (..., s, s), T (..., r, s) -> (..., r, s)."""
    if Lb.shape[-1] == 1:
        return T / Lb
    return jnp.swapaxes(solve_triangular(Lb, jnp.swapaxes(T, -1, -2), lower=True), -1, -2)


@jax.custom_vjp
def chol_diag(S):
    """diag(chol(S)) of a symmetric positive-definite S, with a cheap reverse-mode rule.

    For a cotangent w̄ on diag(L), the generic Cholesky rule (Murray 2016, arXiv 1602.07527, eq. 10)
    S̄ = L^{-T} Φ(L' L̄) L^{-1} collapses, since L̄ = diag(w̄) and L' diag(w̄) is upper triangular, to
    S̄ = L^{-T} diag(L_ii w̄_i / 2) L^{-1}: one triangular inverse and one product instead of the generic rule's
    several full solves.
    """
    return jnp.diagonal(jnp.linalg.cholesky(S))


def _chol_diag_fwd(S):
    L = jnp.linalg.cholesky(S)
    return jnp.diagonal(L), L


def _chol_diag_bwd(L, w):
    Linv = solve_triangular(L, jnp.eye(L.shape[0], dtype=L.dtype), lower=True)
    d = jnp.diagonal(L) * w / 2
    return (Linv.T @ (d[:, None] * Linv),)


chol_diag.defvjp(_chol_diag_fwd, _chol_diag_bwd)


def _segsum(x, ids, num):
    return jax.ops.segment_sum(x, ids, num_segments=num)


def _scale_D(S, lams, layout: Layout):
    """Λ_D' S for the Z rows of D; the X and y rows are untouched."""
    for t, lam, o in zip(layout.terms[layout.m :], lams[layout.m :], layout.d_offsets):
        size = t.nlevels * t.s
        block = S[o : o + size].reshape(t.nlevels, t.s, -1)
        block = jnp.einsum("ab,lac->lbc", lam, block)
        S = S.at[o : o + size].set(block.reshape(size, -1))
    return S


def factor(theta, arrays, layout: Layout, dense=jnp.linalg.cholesky):
    """The blocked Cholesky factor of M(θ) as a dict of pieces; ``dense`` factors the last, dense block."""
    theta = jnp.asarray(theta)
    lams = lambdas(theta, layout)
    m, dz, p = layout.m, layout.dz, layout.p
    Lkk, Lt, LD, LX = [], {}, [], []
    for k in range(m):
        tk, lam = layout.terms[k], lams[k]
        S = arrays["Akk"][k]
        for i in range(k):
            v = Lt[f"{k}_{i}"]
            S = S - _segsum(v @ jnp.swapaxes(v, -1, -2), arrays["maps"][f"{k}_{i}"], tk.nlevels)
        S = lam.T @ S @ lam + jnp.eye(tk.s)
        Lk = jnp.sqrt(S) if tk.s == 1 else jnp.linalg.cholesky(S)
        Lkk.append(Lk)
        # L_ki = λ_k' L̃_ki for i < k (the full factor block), used by the rows below
        Lki = {i: jnp.einsum("ab,lac->lbc", lam, Lt[f"{k}_{i}"]) for i in range(k)}
        for j in range(k + 1, m):
            T = arrays["Ajk"][f"{j}_{k}"] @ lam
            for i in range(k):
                prod = Lt[f"{j}_{i}"] @ jnp.swapaxes(Lki[i], -1, -2)
                T = T - _segsum(prod, arrays["maps"][f"{k}_{i}"], tk.nlevels)
            Lt[f"{j}_{k}"] = _solve_right_lt(Lk, T)
        if dz:
            T = arrays["AD"][k] @ lam
            for i in range(k):
                contrib = jnp.einsum("es,ets->et", LD[i], Lki[i][arrays["Dcol"][i]])
                T = T - _segsum(contrib, arrays["tgt"][f"{i}_{k}"], T.shape[0])
            LD.append(_solve_right_lt(Lk[arrays["Dcol"][k]], T[:, None, :])[:, 0, :])
        else:
            LD.append(None)
        TX = arrays["AX"][k] @ lam
        for i in range(k):
            prod = LX[i] @ jnp.swapaxes(Lki[i], -1, -2)
            TX = TX - _segsum(prod, arrays["maps"][f"{k}_{i}"], tk.nlevels)
        LX.append(_solve_right_lt(Lk, TX))

    # the dense block D = [Z_D X y]
    S = arrays["ADD"]
    for k in range(m):
        H = jnp.einsum("cps,cqs->pq", LX[k], LX[k])
        if dz:
            d = LD[k]
            if layout.dense_fill[k]:
                tk = layout.terms[k]
                W = jnp.zeros((dz, tk.nlevels, tk.s), d.dtype).at[arrays["Drow"][k], arrays["Dcol"][k]].set(d)
                W = W.reshape(dz, -1)
                F = W @ W.T
            else:
                vals = jnp.sum(d[arrays["pair1"][k]] * d[arrays["pair2"][k]], axis=-1)
                F = _segsum(vals, arrays["slot"][k], dz * dz).reshape(dz, dz)
                F = F + F.T - jnp.diag(jnp.diag(F))
            G = _segsum(jnp.einsum("eps,es->ep", LX[k][arrays["Dcol"][k]], d), arrays["Drow"][k], dz)
            S = S - jnp.block([[F, G], [G.T, H]])
        else:
            S = S - H
    if dz:
        S = _scale_D(S, lams, layout)
        S = _scale_D(S.T, lams, layout).T
        S = S + jnp.diag(jnp.concatenate([jnp.ones(dz), jnp.zeros(p + 1)]))
    return {"lams": lams, "Lkk": Lkk, "Lt": Lt, "LD": LD, "LX": LX, "LDD": dense(S)}


def pieces(theta, arrays, layout: Layout):
    """log-determinants and the penalised residual sum of squares r² (y on the host's scale) at θ."""
    f = factor(theta, arrays, layout, dense=chol_diag)  # only diag(L_DD) is needed
    dz, p = layout.dz, layout.p
    logdet = 0.0
    for Lk in f["Lkk"]:
        logdet = logdet + 2.0 * jnp.sum(jnp.log(jnp.diagonal(Lk, axis1=-2, axis2=-1)))
    dg = f["LDD"]
    logdet = logdet + 2.0 * jnp.sum(jnp.log(dg[:dz]))
    logdetx = 2.0 * jnp.sum(jnp.log(dg[dz : dz + p]))
    r2 = dg[-1] ** 2
    return logdet, logdetx, r2


def deviance(theta, arrays, layout: Layout, reml: bool = False):
    """Profiled ML deviance, or the REML criterion, at θ (DESIGN.md section 2)."""
    logdet, logdetx, r2 = pieces(theta, arrays, layout)
    dof = layout.n - layout.p if reml else layout.n
    d = logdet + dof * (1.0 + jnp.log(2.0 * jnp.pi * r2 / dof)) + dof * arrays["log_yscale2"]
    return d + logdetx if reml else d


def fixed_sigma_objective(theta, arrays, layout: Layout, sigma2, reml: bool = False):
    """-2 log-likelihood with σ² held fixed (DESIGN.md 2.1); σ² on the original scale of y."""
    logdet, logdetx, r2 = pieces(theta, arrays, layout)
    dof = layout.n - layout.p if reml else layout.n
    s2 = sigma2 / jnp.exp(arrays["log_yscale2"])  # σ² on the host's scale of y
    f = dof * jnp.log(2.0 * jnp.pi * s2) + logdet + r2 / s2 + dof * arrays["log_yscale2"]
    return f + logdetx if reml else f


def conditional_modes(theta, arrays, layout: Layout):
    """β̂, the spherical modes û of every term (ℓ_k, s_k) and r², by back-substitution through the blocks.

    Values are on the host's scale of y (divide by nothing; the caller multiplies by the y scale).
    """
    f = factor(theta, arrays, layout)
    m, dz = layout.m, layout.dz
    LDD = f["LDD"]
    # [u_D; β] solves L_DD[:-1,:-1]' x = L_DD[-1, :-1]
    xD = solve_triangular(LDD[:-1, :-1], LDD[-1, :-1], lower=True, trans="T")
    beta = xD[dz:]
    # w = Λ_D x_D (the Z part of D scaled back), used with the left-unscaled L̃_Dk
    uD = []
    wz = xD[:dz]
    for t, lam, o in zip(layout.terms[m:], f["lams"][m:], layout.d_offsets):
        u = xD[o : o + t.nlevels * t.s].reshape(t.nlevels, t.s)
        uD.append(u)
        wz = wz.at[o : o + t.nlevels * t.s].set((u @ lam.T).reshape(-1))
    us = [None] * m
    for k in reversed(range(m)):
        tk = layout.terms[k]
        rhs = f["LX"][k][:, -1, :]  # y row of L_Xk (Λ = I there)
        rhs = rhs - jnp.einsum("cps,p->cs", f["LX"][k][:, :-1, :], beta)
        if dz:
            rhs = rhs - _segsum(f["LD"][k] * wz[arrays["Drow"][k]][:, None], arrays["Dcol"][k], tk.nlevels)
        for j in range(k + 1, m):
            Ljk = jnp.einsum("ab,cas->cbs", f["lams"][j], f["Lt"][f"{j}_{k}"])  # (ℓ_k, s_j, s_k)
            uj = us[j][arrays["maps"][f"{j}_{k}"]]  # (ℓ_k, s_j)
            rhs = rhs - jnp.einsum("cbs,cb->cs", Ljk, uj)
        Lk = f["Lkk"][k]
        us[k] = solve_triangular(Lk, rhs[..., None], lower=True, trans="T")[..., 0]
    return beta, us + uD, jnp.diagonal(LDD)[-1] ** 2, f
