"""The profiled objective d(θ) as one pure JAX function of θ and the prepared arrays (docs/design.md, section 2).

Blocked right-looking Cholesky of M(θ) = T'AT + diag(I_q, 0) over the block rows of :mod:`mixedjax.blocks.plan`.
The left factor Λ of each block row is kept out of the recursion: with L̃_jk defined by L_jk = Λ_j' L̃_jk,

    L̃_jk = (A_jk Λ_k − Σ_{i<k} L̃_ji L_ki') L_kk^{-T},      L_jj = chol(Λ_j' (A_jj − Σ_{k<j} L̃_jk L̃_jk') Λ_j + I)

so the fill-in products never see θ of the row block.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from ..blocks.plan import Layout
from .cholesky import (_minus_gram_panels, _panel_cuts, block_cholesky, chol_diag, cholesky_from_upper,
                       solve_right_lt)
from .indexing import _scatter_add, _segsum, _take


class Factor(NamedTuple):
    """The blocked Cholesky factor of M(θ), by block rows (the structured terms k < m, then the dense block D).

    lams: λ_k per term (s_k, s_k). Lkk[k]: the diagonal blocks per level (ℓ_k, s_k, s_k). Lt[j][k] (k < j < m): the
    left-unscaled L̃_jk by level of k (ℓ_k, s_j, s_k). LD[k]: L̃_Dk's entries (E_k, s_k) (None without a Z part in D).
    LX[k]: the [X y] rows of block column k by level (ℓ_k, p + 1, s_k). LDD: the dense block's factor (lower; or
    just its diagonal when the objective asked for that alone).
    """

    lams: tuple
    Lkk: tuple
    Lt: tuple
    LD: tuple
    LX: tuple
    LDD: jax.Array


def lambdas(theta, layout: Layout):
    """λ_k (s_k × s_k lower triangular) of every term from θ: numpy arrays for a numpy θ (the host's display and
    inference code: no program per operation), JAX arrays otherwise."""
    if theta.shape != (layout.ntheta,):
        from ..errors import ArgumentError

        raise ArgumentError(f"θ must be a vector of {layout.ntheta} values for this model, not shape {theta.shape}")
    out = []
    for t in layout.terms:
        rows = [r for r, _ in t.pattern]
        cols = [c for _, c in t.pattern]
        vals = theta[t.theta_offset : t.theta_offset + len(t.pattern)]
        if isinstance(theta, np.ndarray):
            lam = np.zeros((t.s, t.s), theta.dtype)
            lam[rows, cols] = vals
            out.append(lam)
        else:
            out.append(jnp.zeros((t.s, t.s), theta.dtype).at[rows, cols].set(vals))
    return out


def _scalar_D(layout: Layout) -> bool:
    return all(t.s == 1 for t in layout.terms[layout.m :])


def _scale_D(S, lams, layout: Layout):
    """Λ_D' S Λ_D on the Z rows and columns of D; the X and y rows are untouched."""
    if _scalar_D(layout):  # scalar terms: one diagonal scaling (keeps the upper triangle in place)
        scale = jnp.concatenate([jnp.broadcast_to(lam[0, 0], (t.nlevels,))
                                 for t, lam in zip(layout.terms[layout.m :], lams[layout.m :])]
                                + [jnp.ones(layout.p + 1, S.dtype)])
        return S * scale[:, None] * scale[None, :]
    for _ in range(2):  # rows, then (after a transpose) columns
        for t, lam, o in zip(layout.terms[layout.m :], lams[layout.m :], layout.d_offsets):
            size = t.nlevels * t.s
            block = S[o : o + size].reshape(t.nlevels, t.s, -1)
            block = jnp.einsum("ab,lac->lbc", lam, block)
            S = S.at[o : o + size].set(block.reshape(size, -1))
        S = S.T
    return S


def _fill_into(S, k, d, LX, Lk, lam, arrays, layout: Layout):
    """S − [F G; · ·] for structured term k: F = L_Dk L_Dk' (Z part of D) and G = L_Dk L_Xk', from its entries
    d = L_Dk, written into the D × D block S where they belong (no block assembly, whose reverse pass would copy
    the whole block)."""
    dz, tk, f = layout.dz, layout.terms[k], arrays.fill[k]
    rows, cols = arrays.Drow[k], arrays.Dcol[k]
    n = S.shape[0]
    products = k == 0
    if products:
        # V_c = λ (λ' A_cc λ + I)^{-1} λ' per level (see build_blocks), flattened to s² values
        M = solve_right_lt(Lk, jnp.broadcast_to(lam, (tk.nlevels, tk.s, tk.s)))
        V = (M @ jnp.swapaxes(M, -1, -2)).reshape(tk.nlevels, -1)
    if layout.npairs[k]:
        if products:
            vals = jnp.sum(f.P * _take(V, f.pcol), axis=-1)
        else:
            vals = jnp.sum(_take(d, f.e1) * _take(d, f.e2), axis=-1)
        F = _segsum(vals, f.seg, f.uslot.shape[0], sorted_=True)
        S = _scatter_add(S.reshape(-1), f.uslot, -F, sorted_=True, unique=True).reshape(n, n)
    if layout.nheavy[k]:
        # W = the heavy columns' entries scattered into D × (columns · s_k), at host-computed flat rows
        W = _scatter_add(jnp.zeros((n * layout.nheavy[k], tk.s), d.dtype), f.hslot, _take(d, f.hent),
                         unique=True)
        S = _minus_gram_panels(S, W.reshape(n, -1), _panel_cuts(layout, n))
    if products and layout.products:
        G = _segsum(jnp.einsum("eqx,ex->eq", arrays.Q0, _take(V, arrays.Q0col)), arrays.Q0row, dz,
                    sorted_=True)
    else:
        G = _segsum(jnp.einsum("eps,es->ep", _take(LX, cols), d), rows, dz)
    return S.at[:dz, dz:].add(-G)


def factor(theta, arrays, layout: Layout, dense=cholesky_from_upper):
    """The blocked Cholesky factor of M(θ) (a :class:`Factor`); ``dense`` factors the last, dense block.

    The dense block is built in its upper triangle only (its lower triangle holds nothing meaningful), so ``dense``
    must read the upper triangle alone.
    """
    theta = jnp.asarray(theta)
    lams = lambdas(theta, layout)
    m, dz, p = layout.m, layout.dz, layout.p
    Lkk, LD, LX = [], [], []
    Lt = [[None] * m for _ in range(m)]  # Lt[j][k], k < j
    for k in range(m):
        tk, lam = layout.terms[k], lams[k]
        S = arrays.Akk[k]
        for i in range(k):
            v = Lt[k][i]
            S = S - _segsum(v @ jnp.swapaxes(v, -1, -2), arrays.maps[k][i], tk.nlevels)
        S = lam.T @ S @ lam + jnp.eye(tk.s)
        Lk = block_cholesky(S)
        Lkk.append(Lk)
        # L_ki = λ_k' L̃_ki for i < k (the full factor block), used by the rows below
        Lki = {i: jnp.einsum("ab,lac->lbc", lam, Lt[k][i]) for i in range(k)}
        for j in range(k + 1, m):
            T = arrays.Ajk[j][k] @ lam
            for i in range(k):
                prod = Lt[j][i] @ jnp.swapaxes(Lki[i], -1, -2)
                T = T - _segsum(prod, arrays.maps[k][i], tk.nlevels)
            Lt[j][k] = solve_right_lt(Lk, T)
        if dz:
            T = arrays.AD[k] @ lam
            for i in range(k):
                contrib = jnp.einsum("es,ets->et", LD[i], _take(Lki[i], arrays.Dcol[i]))
                T = T - _segsum(contrib, arrays.tgt[k][i], T.shape[0])
            LD.append(solve_right_lt(_take(Lk, arrays.Dcol[k]), T[:, None, :])[:, 0, :])
        else:
            LD.append(None)
        TX = arrays.AX[k] @ lam
        for i in range(k):
            prod = LX[i] @ jnp.swapaxes(Lki[i], -1, -2)
            TX = TX - _segsum(prod, arrays.maps[k][i], tk.nlevels)
        LX.append(solve_right_lt(Lk, TX))

    # the dense block D = [Z_D X y] (upper triangle, and the diagonal level blocks of vector terms in D)
    S = arrays.ADD
    for k in range(m):
        if dz:
            S = _fill_into(S, k, LD[k], LX[k], Lkk[k], lams[k], arrays, layout)
        S = S.at[dz:, dz:].add(-jnp.einsum("cps,cqs->pq", LX[k], LX[k]))
    if dz:
        S = _scale_D(S, lams, layout)
        S = S + jnp.diag(jnp.concatenate([jnp.ones(dz), jnp.zeros(p + 1)]))
    return Factor(tuple(lams), tuple(Lkk), tuple(tuple(r) for r in Lt), tuple(LD), tuple(LX), dense(S))


def pieces(theta, arrays, layout: Layout):
    """log-determinants and the penalised residual sum of squares r² (y on the host's scale) at θ."""
    f = factor(theta, arrays, layout, dense=chol_diag)  # only diag(L_DD) is needed
    dz, p = layout.dz, layout.p
    logdet = 0.0
    for Lk in f.Lkk:
        logdet = logdet + 2.0 * jnp.sum(jnp.log(jnp.diagonal(Lk, axis1=-2, axis2=-1)))
    dg = f.LDD
    logdet = logdet + 2.0 * jnp.sum(jnp.log(dg[:dz]))
    logdetx = 2.0 * jnp.sum(jnp.log(dg[dz : dz + p]))
    r2 = dg[-1] ** 2
    return logdet, logdetx, r2


def deviance(theta, arrays, layout: Layout, reml: bool = False):
    """Profiled ML deviance, or the REML criterion, at θ (docs/design.md, section 2)."""
    logdet, logdetx, r2 = pieces(theta, arrays, layout)
    dof = layout.n - layout.p if reml else layout.n
    # the response was divided by its scale on the host; prior weights enter as lme4's −Σ log wᵢ
    d = logdet + dof * (1.0 + jnp.log(2.0 * jnp.pi * r2 / dof)) + dof * arrays.log_yscale2 - arrays.log_wdet
    return d + logdetx if reml else d


def fixed_sigma_objective(theta, arrays, layout: Layout, sigma2, reml: bool = False):
    """-2 log-likelihood with σ² held fixed (docs/design.md, section 2); σ² on the original scale of y."""
    logdet, logdetx, r2 = pieces(theta, arrays, layout)
    dof = layout.n - layout.p if reml else layout.n
    s2 = sigma2 / jnp.exp(arrays.log_yscale2)  # σ² on the host's scale of y
    f = dof * jnp.log(2.0 * jnp.pi * s2) + logdet + r2 / s2 + dof * arrays.log_yscale2 - arrays.log_wdet
    return f + logdetx if reml else f


def conditional_modes(theta, arrays, layout: Layout):
    """β̂, the spherical modes û of every term (ℓ_k, s_k) and r², by back-substitution through the blocks.

    Values are on the host's scale of y (divide by nothing; the caller multiplies by the y scale). The y row of the
    factor is L⁻¹ of the system's right-hand side, so one back substitution (core.substitution) gives the modes.
    """
    from .substitution import backward

    f = factor(theta, arrays, layout)
    m, dz = layout.m, layout.dz
    LDD = f.LDD
    us, xD = backward(f, [f.LX[k][:, -1, :] for k in range(m)], LDD[-1, :-1], arrays, layout)
    uD = [xD[o : o + t.nlevels * t.s].reshape(t.nlevels, t.s) for t, o in zip(layout.terms[m:], layout.d_offsets)]
    return xD[dz:], list(us) + uD, jnp.diagonal(LDD)[-1] ** 2, f
