"""The penalised weighted system of PIRLS, factored by blocks (pure JAX; DESIGN.md section 3 in small).

The unknowns are ordered [u_0 | u_rest | β_free]: term 0's modes (ℓ_0 blocks of s_0), the other terms' modes and,
when β is solved for too, the fixed effects. With a = the rows of Z Λ and x = those of X,

    H = [D_0  B; B'  C] + diag(1_q, 0),   D_0 = blockdiag_c Σ_{i in c} w_i a_i0 a_i0',   B, C the rest,

is factored as L_0 = chol(D_0 + I) level by level, B̃ = L_0⁻¹ B, and L_S = chol(C − B̃'B̃), so the cost is linear in
ℓ_0 and cubic only in the size of the remaining block (r = q − ℓ_0 s_0 + p_free). Everything is rebuilt from the
weights on the device at each PIRLS step; the index arrays come from the host plan.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from ..core.indexing import _scatter_add, _segsum
from .plan import GlmmData, GlmmPlan


class Factor(NamedTuple):
    """L0: (ℓ_0, s_0, s_0) lower-triangular blocks; Bt: L_0⁻¹ B as (ℓ_0, s_0, r); LS: (r, r) lower triangular."""

    L0: jax.Array
    Bt: jax.Array
    LS: jax.Array


def rest_size(plan: GlmmPlan, fast: bool) -> int:
    t0 = plan.terms[0]
    return plan.q - t0.nlevels * t0.s + (plan.p if fast else 0)


def factor(A, w, plan: GlmmPlan, data: GlmmData, fast: bool) -> Factor:
    """The blocked Cholesky factor of H for working weights w (n,) and the entries A (n, S) of Z Λ."""
    t0 = plan.terms[0]
    l0, s0 = t0.nlevels, t0.s
    q0 = l0 * s0
    r = rest_size(plan, fast)
    lev = data.cols[:, 0] // s0  # term 0's level of each row
    a0 = A[:, :s0]
    D0 = _segsum(w[:, None, None] * a0[:, :, None] * a0[:, None, :], lev, l0) + jnp.eye(s0)
    L0 = jnp.sqrt(D0) if s0 == 1 else jnp.linalg.cholesky(D0)
    if r == 0:
        return Factor(L0, jnp.zeros((l0, s0, 0)), jnp.zeros((0, 0)))
    # the other random-effects entries of each row (at cols − q0); X's columns are dense and follow them
    ar, cr = A[:, s0:], data.cols[:, s0:] - q0
    nz = plan.q - q0
    wa0 = w[:, None] * a0
    slots = ((lev[:, None] * s0 + jnp.arange(s0)[None, :]) * nz)[:, :, None] + cr[:, None, :]  # (n, s0, S − s0)
    B = _scatter_add(jnp.zeros((q0 * nz,)), slots.reshape(-1), (wa0[:, :, None] * ar[:, None, :]).reshape(-1))
    B = B.reshape(l0, s0, nz)
    C = _scatter_add(jnp.zeros((nz * nz,)), (cr[:, :, None] * nz + cr[:, None, :]).reshape(-1),
                     (w[:, None, None] * ar[:, :, None] * ar[:, None, :]).reshape(-1)).reshape(nz, nz)
    C = C + jnp.eye(nz)
    if fast:
        wX = w[:, None] * data.X
        BX = _segsum(a0[:, :, None] * wX[:, None, :], lev, l0)  # (ℓ_0, s_0, p)
        CZX = _segsum((ar[:, :, None] * wX[:, None, :]).reshape(-1, plan.p), cr.reshape(-1), nz)
        B = jnp.concatenate([B, BX], axis=2)
        C = jnp.block([[C, CZX], [CZX.T, data.X.T @ wX]])
    Bt = B / L0 if s0 == 1 else solve_triangular(L0, B, lower=True)
    S = C - jnp.einsum("lar,las->rs", Bt, Bt)
    return Factor(L0, Bt, jnp.linalg.cholesky(S))


def solve(F: Factor, b, plan: GlmmPlan):
    """H⁻¹ b by forward and back substitution through the blocks."""
    l0, s0 = F.L0.shape[0], F.L0.shape[1]
    q0 = l0 * s0
    b0 = b[:q0].reshape(l0, s0)
    y0 = b0 / F.L0[:, :, 0] if s0 == 1 else solve_triangular(F.L0, b0[..., None], lower=True)[..., 0]
    if F.LS.shape[0] == 0:
        x0 = y0 / F.L0[:, :, 0] if s0 == 1 else solve_triangular(F.L0, y0[..., None], lower=True, trans="T")[..., 0]
        return x0.reshape(-1)
    y1 = solve_triangular(F.LS, b[q0:] - jnp.einsum("lar,la->r", F.Bt, y0), lower=True)
    x1 = solve_triangular(F.LS, y1, lower=True, trans="T")
    z0 = y0 - jnp.einsum("lar,r->la", F.Bt, x1)
    x0 = z0 / F.L0[:, :, 0] if s0 == 1 else solve_triangular(F.L0, z0[..., None], lower=True, trans="T")[..., 0]
    return jnp.concatenate([x0.reshape(-1), x1])


def logdet_z(F: Factor, plan: GlmmPlan):
    """log|L|² of the random-effects block (the first q unknowns)."""
    t0 = plan.terms[0]
    nrest = plan.q - t0.nlevels * t0.s
    out = 2.0 * jnp.sum(jnp.log(jnp.diagonal(F.L0, axis1=-2, axis2=-1)))
    if nrest:
        out = out + 2.0 * jnp.sum(jnp.log(jnp.diagonal(F.LS)[:nrest]))
    return out
