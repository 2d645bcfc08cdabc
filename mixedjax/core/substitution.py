"""Forward and back substitution through the engine's blocked factor (docs/design.md, section 3): L x = b and
L' x = y for the leading rows of M(θ) = T'AT + diag(I_q, 0), pure JAX.

The unknowns are ordered as the factor's rows: the structured terms' levels (k < m, level by level), then the rows of
the dense block D = [Z_D | X | y]. ``nd`` says how many of D's rows take part: dz (the random effects alone, with the
fixed effects held: the leading q × q block of M) or dz + p (random and fixed effects). The factor of a leading block
of M is the leading block of M's factor, so one factor serves both. The left factors Λ kept out of the recursion
(L_jk = Λ_j' L̃_jk, and Λ_D' on D's Z rows) are applied here.

The LMM's conditional modes are the back substitution of the y row of the factor (:func:`backward`); PIRLS solves
its penalised weighted system with both (:func:`solve`).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from ..blocks.plan import Layout
from .indexing import _segsum, _take


def _tri(L, r, trans: bool):
    """L⁻¹ r (or L⁻ᵀ r) per level: L (ℓ, s, s), r (ℓ, s)."""
    if L.shape[-1] == 1:
        return r / L[:, :, 0]
    return solve_triangular(L, r[..., None], lower=True, trans="T" if trans else "N")[..., 0]


def _lambda_D(x, lams, layout: Layout, transpose: bool):
    """Λ_D x (or Λ_D' x) on the Z part of D: per level of each term in D, λ x_l (or λ' x_l)."""
    out = x
    for t, lam, o in zip(layout.terms[layout.m :], lams[layout.m :], layout.d_offsets):
        size = t.nlevels * t.s
        block = x[o : o + size].reshape(t.nlevels, t.s)
        out = out.at[o : o + size].set((block @ (lam if transpose else lam.T)).reshape(-1))
    return out


def split(b, layout: Layout):
    """The structured terms' parts (ℓ_k, s_k) of a vector in the factor's row order, and the rest (D's rows)."""
    parts, o = [], 0
    for t in layout.terms[: layout.m]:
        parts.append(b[o : o + t.nlevels * t.s].reshape(t.nlevels, t.s))
        o += t.nlevels * t.s
    return parts, b[o:]


def forward(f, b, arrays, layout: Layout, nd: int):
    """y = L⁻¹ b for the leading rows of M (all structured rows and the first ``nd`` rows of D): the structured
    parts (ℓ_k, s_k) and D's part (nd,)."""
    m, dz, p = layout.m, layout.dz, layout.p
    bs, bD = split(b, layout)
    ys = []
    for k in range(m):
        t, lam = layout.terms[k], f.lams[k]
        r = bs[k]
        for i in range(k):  # L_ki y_i = λ_k' Σ_{levels c of i in each level of k} L̃_ki[c] y_i[c]
            r = r - _segsum(jnp.einsum("lab,lb->la", f.Lt[k][i], ys[i]), arrays.maps[k][i], t.nlevels) @ lam
        ys.append(_tri(f.Lkk[k], r, False))
    if not nd:
        return ys, bD[:0]
    r = bD
    if dz:
        z = jnp.zeros(dz, b.dtype)
        for k in range(m):
            z = z + _segsum(jnp.sum(f.LD[k] * _take(ys[k], arrays.Dcol[k]), axis=1), arrays.Drow[k], dz)
        r = r.at[:dz].add(-_lambda_D(z, f.lams, layout, transpose=True))
    if nd > dz:  # the fixed effects' rows of block column k: L_Xk (Λ = I there)
        for k in range(m):
            r = r.at[dz:].add(-jnp.einsum("cps,cs->p", f.LX[k][:, :p, :], ys[k]))
    return ys, solve_triangular(f.LDD[:nd, :nd], r, lower=True)


def backward(f, ys, yD, arrays, layout: Layout):
    """x = L⁻ᵀ y for the leading rows of M (D's first len(yD) rows): the structured parts (ℓ_k, s_k) and D's (nd,)."""
    m, dz, p = layout.m, layout.dz, layout.p
    nd = yD.shape[0]
    xD = solve_triangular(f.LDD[:nd, :nd], yD, lower=True, trans="T") if nd else yD
    wz = _lambda_D(xD[:dz], f.lams, layout, transpose=False) if dz and nd else None
    xs = [None] * m
    for k in reversed(range(m)):
        tk = layout.terms[k]
        r = ys[k]
        if nd > dz:
            r = r - jnp.einsum("cps,p->cs", f.LX[k][:, :p, :], xD[dz:])
        if wz is not None:
            r = r - _segsum(f.LD[k] * _take(wz, arrays.Drow[k])[:, None], arrays.Dcol[k], tk.nlevels, sorted_=True)
        for j in range(k + 1, m):
            Ljk = jnp.einsum("ab,cas->cbs", f.lams[j], f.Lt[j][k])  # λ_j' L̃_jk by level of k (ℓ_k, s_j, s_k)
            r = r - jnp.einsum("cbs,cb->cs", Ljk, _take(xs[j], arrays.maps[j][k]))
        xs[k] = _tri(f.Lkk[k], r, True)
    return xs, xD


def solve(f, b, arrays, layout: Layout, nd: int):
    """M₁⁻¹ b for the leading block M₁ of M(θ) (all structured rows and D's first ``nd``), as one vector in the
    factor's row order."""
    ys, yD = forward(f, b, arrays, layout, nd)
    xs, xD = backward(f, ys, yD, arrays, layout)
    return jnp.concatenate([x.reshape(-1) for x in xs] + [xD])


def logdet_z(f, layout: Layout):
    """log |L_Z|², the log-determinant of the random-effects block Λ'Z'WZΛ + I (the factor's first q rows)."""
    out = 0.0
    for Lk in f.Lkk:
        out = out + 2.0 * jnp.sum(jnp.log(jnp.diagonal(Lk, axis1=-2, axis2=-1)))
    return out + 2.0 * jnp.sum(jnp.log(jnp.diagonal(f.LDD)[: layout.dz]))
