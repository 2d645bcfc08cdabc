"""Cholesky rules with cheap derivatives, and the panelled dense update S − W W' (docs/design.md, section 3)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from ..blocks.plan import Layout

# Stacks of small blocks (a level's s × s block of a vector-valued term) are factored and solved by unrolled
# elementwise formulas up to this size: XLA's CPU Cholesky and triangular solve call LAPACK once per matrix, about
# 0.2 µs each, which dominated the value and gradient of a batch of sleepstudy fits (256 lanes × 18 levels × 6 calls:
# 12.9 µs a lane; unrolled, every call is a handful of vectorised multiplies and adds). Their derivatives are the
# elementwise ones, in forward and reverse mode.
SMALL_BLOCK = 4


@jax.custom_jvp
def cholesky_from_upper(S):
    """Cholesky factor of the symmetric matrix whose upper triangle is that of S (the lower one is not read).

    LAPACK works on column-major arrays and JAX's are row-major: the transpose of S is S's own buffer read
    column-major, so factoring S' (its lower triangle is S's upper one) lets XLA skip a copy.
    """
    return jnp.linalg.cholesky(S.T, symmetrize_input=False)


@cholesky_from_upper.defjvp
def _cholesky_from_upper_jvp(primals, tangents):
    """L̇ = L Φ(L⁻¹ Ṡ L⁻ᵀ) (Murray 2016, eq. 8), Φ = lower triangle with half the diagonal, for the symmetric
    tangent that Ṡ's upper triangle stands for (JAX's own rule would read both triangles of Ṡ). Used when a
    derivative is differentiated again (Hessians through chol_diag's reverse rule)."""
    (S,), (dS,) = primals, tangents
    L = cholesky_from_upper(S)
    dS = jnp.triu(dS) + jnp.triu(dS, 1).T
    A = solve_triangular(L, dS, lower=True)
    X = solve_triangular(L, A.T, lower=True)  # L⁻¹ Ṡ L⁻ᵀ (symmetric)
    return L, L @ (jnp.tril(X) - 0.5 * jnp.diag(jnp.diagonal(X)))


@jax.custom_vjp
def chol_diag(S):
    """diag(L) for L = cholesky_from_upper(S) (S's upper triangle only), with a cheap reverse-mode rule.

    For a cotangent w̄ on diag(L), the generic Cholesky rule (Murray 2016, arXiv 1602.07527, eq. 10)
    Σ̄ = L^{-T} Φ(L' L̄) L^{-1} collapses, since L̄ = diag(w̄) and L' diag(w̄) is upper triangular, to
    Σ̄ = L^{-T} diag(L_ii w̄_i / 2) L^{-1} (computed by :func:`_inv_gram`) instead of the generic rule's several
    full solves. Σ̄ is the cotangent of the symmetric matrix; for S, whose upper triangle stands for
    both, it is 2 Σ̄ above the diagonal, Σ̄ on it and 0 below.
    """
    return jnp.diagonal(cholesky_from_upper(S))


def _chol_diag_fwd(S):
    L = cholesky_from_upper(S)
    return jnp.diagonal(L), L


def _inv_gram(L, c):
    """L^{-T} diag(c) L^{-1} for a lower-triangular L, by 2 × 2 block recursion without forming L^{-1}.

    With L = [A 0; B C] and K = B A^{-1} (a triangular solve), the lower blocks are Σ_C = C^{-T} diag(c_C) C^{-1}
    (recursion), Σ_CA = −Σ_C K and Σ_A = A^{-T} diag(c_A) A^{-1} − K' Σ_CA: about 5n³/6 flops, most of them in matrix
    products, against 4n³/3 for forming L^{-1} and then its weighted Gram matrix by the same recursion.
    """
    n = L.shape[0]
    if n < 256:
        R = solve_triangular(L, jnp.eye(n, dtype=L.dtype), lower=True)
        return R.T @ (c[:, None] * R)
    h = n // 2
    A, B, C = L[:h, :h], L[h:, :h], L[h:, h:]
    SC = _inv_gram(C, c[h:])
    K = solve_triangular(A, B.T, lower=True, trans="T").T  # B A^{-1}
    SCA = -(SC @ K)
    SA = _inv_gram(A, c[:h]) - K.T @ SCA
    return jnp.block([[SA, SCA.T], [SCA, SC]])


def _chol_diag_bwd(L, w):
    sym = _inv_gram(L, jnp.diagonal(L) * w / 2)
    return (jnp.triu(2 * sym, 1) + jnp.diag(jnp.diagonal(sym)),)


chol_diag.defvjp(_chol_diag_fwd, _chol_diag_bwd)


PANEL_ROWS = 512  # the dense fill-in product W W' is taken in row panels of about this many rows, at most 8


def _panel_cuts(layout: Layout, n: int) -> tuple[int, ...]:
    """Row cuts of the D × D block into about n / PANEL_ROWS panels (at most 8), each at the start of a level block
    of the vector terms in D (so each panel's diagonal block holds whole level blocks)."""
    starts = np.ones(n, bool)
    for t, o in zip(layout.terms[layout.m :], layout.d_offsets):
        starts[o : o + t.nlevels * t.s] = False
        starts[o : o + t.nlevels * t.s : t.s] = True
    k = min(8, max(1, n // PANEL_ROWS))
    cuts = [0]
    for i in range(1, k):
        c = int(np.argmax(starts[round(i * n / k) :])) + round(i * n / k)
        if c > cuts[-1]:
            cuts.append(c)
    return tuple(cuts) + (n,)


def _panels(S, W, cuts):
    for a, b in zip(cuts[:-1], cuts[1:]):
        S = S.at[a:b, a:].add(-(W[a:b] @ W[a:].T))
    return S


def _updated(cuts, n):
    """The entries the panels update: row i's columns from its panel's start on (built by XLA, not embedded)."""
    start = jnp.asarray(np.repeat(np.asarray(cuts[:-1]), np.diff(cuts)))
    return jnp.arange(n)[None, :] >= start[:, None]


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def _minus_gram_panels(S, W, cuts):
    """S − W W' on the row panels [c_i, c_i+1) × [c_i, n) only: the upper triangle and the diagonal blocks, which
    is all that the dense factor reads (k panels cost (k + 1) / 2k of the full product). The rest of S is returned
    as it is."""
    return _panels(S, W, cuts)


@_minus_gram_panels.defjvp
def _mgp_jvp(cuts, primals, tangents):
    """Ṡ − R ⊙ (P + P'), P = Ẇ W', R the updated entries: one product per tangent. The map is linear in (Ṡ, Ẇ), so
    JAX transposes it for reverse mode into W̄ = −(A + A') W, A = R ⊙ S̄ (again one product, where autodiff of the
    panels takes two), and the same rule serves forward mode (jacfwd), reverse mode and Hessians."""
    (S, W), (dS, dW) = primals, tangents
    P = dW @ W.T
    return _panels(S, W, cuts), dS - jnp.where(_updated(cuts, W.shape[0]), P + P.T, 0.0)


def block_cholesky(S):
    """Lower Cholesky factors of a stack of symmetric s × s matrices S (..., s, s), both triangles read as given
    (S symmetric): unrolled (Cholesky–Banachiewicz) for s <= SMALL_BLOCK, LAPACK's otherwise. A matrix that is not
    positive definite gives NaN entries, as LAPACK's does under jit."""
    s = S.shape[-1]
    if s == 1:
        return jnp.sqrt(S)
    if s > SMALL_BLOCK:
        return jnp.linalg.cholesky(S)
    L = [[None] * s for _ in range(s)]
    for j in range(s):
        d = S[..., j, j]
        for k in range(j):
            d = d - L[j][k] * L[j][k]
        L[j][j] = jnp.sqrt(d)
        for i in range(j + 1, s):
            v = S[..., i, j]
            for k in range(j):
                v = v - L[i][k] * L[j][k]
            L[i][j] = v / L[j][j]
    zero = jnp.zeros_like(S[..., 0, 0])
    return jnp.stack([jnp.stack([L[i][j] if j <= i else zero for j in range(s)], -1) for i in range(s)], -2)


def solve_right_lt(L, T):
    """T L^{-T} for a stack of lower-triangular L (..., s, s) and T (..., r, s) -> (..., r, s): forward
    substitution unrolled over the s columns for s <= SMALL_BLOCK, LAPACK's triangular solve otherwise."""
    s = L.shape[-1]
    if s == 1:
        return T / L
    if s > SMALL_BLOCK:
        return jnp.swapaxes(solve_triangular(L, jnp.swapaxes(T, -1, -2), lower=True), -1, -2)
    cols = []
    for i in range(s):
        v = T[..., :, i]
        for k in range(i):
            v = v - cols[k] * L[..., i, k][..., None]
        cols.append(v / L[..., i, i][..., None])
    return jnp.stack(cols, -1)

