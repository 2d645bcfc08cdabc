"""Conditional covariances of the random effects given y (lme4's ``postVar``, MixedModels.jl's ``condVar``):
Var(b | y) = σ² Λ M⁻¹ Λ' with M = Λ'Z'ZΛ + I, per level the s × s diagonal block, without a q × q matrix.

M's factor has the block rows of the structured terms S (0 … m−1, each level of term k inside one level of every
later structured term) and then the Z part of the dense block D: L = [L_S 0; L_DS L_DD]. Its inverse is
[L_S⁻¹ 0; −L_DD⁻¹ L_DS L_S⁻¹  L_DD⁻¹], so with E the s_k columns of level c of term k:

- a structured term: y = L_S⁻¹ E is nonzero only at level c of term k (L_kk,c⁻¹) and at the one level of each
  later structured term j that contains c (y_j = −L_jj⁻¹ Σ_{k≤i<j} L_ji y_i, forward substitution along the chain),
  and (M⁻¹)_cc = Σ_j y_j'y_j + Y'Y with Y = L_DD⁻¹ L_DS y (one triangular solve for all levels at once);
- a term in D: (M⁻¹)_DD = L_DD⁻ᵀ L_DD⁻¹, the column blocks of L_DD⁻¹.

This holds for every layout the engine fits (structured terms only, a dense block only, or both).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from ..core.indexing import _take
from ..core.objective import factor


def _lower_inverse(L):
    """L⁻¹ for batched lower-triangular blocks (ℓ, s, s)."""
    eye = jnp.broadcast_to(jnp.eye(L.shape[-1], dtype=L.dtype), L.shape)
    return solve_triangular(L, eye, lower=True)


def _chain(k, f, arrays, layout):
    """For every level c of structured term k: the nonzero blocks y_j (ℓ_k, s_j, s_k), j = k … m−1, of L_S⁻¹ E_c,
    and each level's level of term j (ℓ_k,)."""
    m = layout.m
    lev = {k: jnp.arange(layout.terms[k].nlevels)}
    ys = {k: _lower_inverse(f.Lkk[k])}
    for j in range(k + 1, m):
        lev[j] = arrays.maps[j][k]  # level of k -> the level of j that contains it
        rhs = 0.0
        for i in range(k, j):
            Lji = jnp.einsum("ab,cas->cbs", f.lams[j], _take(f.Lt[j][i], lev[i]))  # L_ji = λ_j' L̃_ji at c's level
            rhs = rhs + Lji @ ys[i]
        ys[j] = -solve_triangular(_take(f.Lkk[j], lev[j]), rhs, lower=True)
    return ys, lev


def _scale_rows_D(V, lams, layout):
    """Λ_D' V on D's Z rows: V (dz, …)."""
    for t, lam, o in zip(layout.terms[layout.m :], lams[layout.m :], layout.d_offsets):
        size = t.nlevels * t.s
        blk = V[o : o + size].reshape((t.nlevels, t.s) + V.shape[1:])
        V = V.at[o : o + size].set(jnp.einsum("ab,la...->lb...", lam, blk).reshape((size,) + V.shape[1:]))
    return V


def _structured_block(k, f, L22, arrays, layout):
    """(M⁻¹)_cc for every level c of structured term k (ℓ_k, s_k, s_k)."""
    ys, lev = _chain(k, f, arrays, layout)
    tk, dz = layout.terms[k], layout.dz
    out = sum(jnp.swapaxes(y, -1, -2) @ y for y in ys.values())
    if not dz:
        return out
    # L_DS y = Λ_D' Σ_i L̃_Di y_i: term i's entries (D row, level of i) times y_i at that level, for every c
    V = jnp.zeros((dz, tk.nlevels, tk.s), L22.dtype)
    for i, y in ys.items():
        Bi = jnp.zeros((dz, layout.terms[i].nlevels, layout.terms[i].s), L22.dtype)
        Bi = Bi.at[arrays.Drow[i], arrays.Dcol[i]].add(f.LD[i])  # L̃_Di as (D row, level, s_i)
        V = V + jnp.einsum("rcs,csk->rck", Bi[:, lev[i], :], y)
    V = _scale_rows_D(V, f.lams, layout)
    Y = solve_triangular(L22, V.reshape(dz, -1), lower=True).reshape(dz, tk.nlevels, tk.s)
    return out + jnp.einsum("rca,rcb->cab", Y, Y)


def _dense_blocks(L22, layout):
    """(M⁻¹)_DD's diagonal level blocks of every term in D (ℓ, s, s): the column blocks of L_DD⁻¹."""
    dz = layout.dz
    Linv = solve_triangular(L22, jnp.eye(dz, dtype=L22.dtype), lower=True)
    out = []
    for t, o in zip(layout.terms[layout.m :], layout.d_offsets):
        cols = Linv[:, o : o + t.nlevels * t.s].reshape(dz, t.nlevels, t.s)
        out.append(jnp.einsum("rla,rlb->lab", cols, cols))
    return out


def _condvar(theta, sigma2, arrays, layout):
    f = factor(theta, arrays, layout)
    dz = layout.dz
    L22 = f.LDD[:dz, :dz]
    blocks = [_structured_block(k, f, L22, arrays, layout) for k in range(layout.m)]
    if dz:
        blocks += _dense_blocks(L22, layout)
    return [sigma2 * lam @ ((b + jnp.swapaxes(b, -1, -2)) / 2) @ lam.T for lam, b in zip(f.lams, blocks)]


_condvar_jit = jax.jit(_condvar, static_argnames=("layout",))


def condvar(theta, sigma, arrays, layout) -> list[np.ndarray]:
    """Per term (layout order) the (levels, s, s) conditional covariances of b given y at (θ, σ)."""
    out = _condvar_jit(jnp.asarray(theta), jnp.float64(sigma) ** 2, arrays, layout)
    return [np.array(b) for b in out]
