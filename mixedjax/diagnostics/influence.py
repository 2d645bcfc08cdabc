"""Leverage (the diagonal of the hat matrix) through the blocked factor, without an n × n matrix.

The fitted values of a linear mixed model are the solution of the penalised least-squares problem
min ‖y − ZΛu − Xβ‖² + ‖u‖², whose hat matrix is H = [ZΛ X] M⁻¹ [ZΛ X]' with M = L L' the matrix the objective
factors (DESIGN.md section 2). So h_i = ‖L⁻¹ [Λ'z_i; x_i]‖², lme4's ``hatvalues`` (the columns of
``solve(L, Λ'Z')`` and of ``solve(R_X', X' − R_ZX' C_L)``, squared and summed). The forward substitution is done
for all rows at once: in the structured (nested) blocks row i touches one level per term, so its solution there is
one s_k-vector per term; in the dense block it is a dense vector, solved for a chunk of rows at a time.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from ..blocks.plan import Layout
from ..core.objective import factor


class HatRows(NamedTuple):
    """The rows whose leverage is computed, as the factor's blocks see them (host arrays, planned once).

    codes: per term (in the layout's order) the level index of each row (r,); z: per term the term's model
    values (r, s_k); X: the fixed-effect model matrix (r, p).
    """

    codes: tuple
    z: tuple
    X: np.ndarray


def hat_rows(design, start: int = 0, stop: int | None = None, pad_to: int | None = None) -> HatRows:
    """Rows ``start:stop`` of the design (padded with zero rows, whose leverage is 0, up to ``pad_to``)."""
    stop = design.n if stop is None else stop
    pad = 0 if pad_to is None else pad_to - (stop - start)

    def cut(a):
        a = np.asarray(a[start:stop])
        return np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)]) if pad > 0 else a

    # prior weights: the hat matrix of the weighted problem, rows scaled by √wᵢ (lme4's sqrtW)
    weights = design.weights
    sw = np.ones(design.n) if weights is None else np.sqrt(np.asarray(weights, dtype=float))
    return HatRows(tuple(cut(t.codes).astype(np.int32) for t in design.terms),
                   tuple(cut(t.z * sw[:, None]) for t in design.terms), cut(design.X * sw[:, None]))


def _solve_lower_batched(L, v):
    """L⁻¹ v for a batch of small lower-triangular L (r, s, s) and vectors v (r, s)."""
    if L.shape[-1] == 1:
        return v / L[..., 0]
    return solve_triangular(L, v[..., None], lower=True)[..., 0]


def _dense_columns(f, arrays, layout: Layout, k: int):
    """L_Dk's column blocks, one per level of structured term k: (ℓ_k, dz + p, s_k), Z rows scaled by Λ_D'."""
    tk, dz, p = layout.terms[k], layout.dz, layout.p
    P = jnp.zeros((tk.nlevels, dz, tk.s))
    if dz:
        P = P.at[arrays.Dcol[k], arrays.Drow[k]].add(f.LD[k])
        # L_Dk = Λ_D' L̃_Dk on the Z rows of D (the factor keeps Λ_D out of the recursion)
        for t, lam, o in zip(layout.terms[layout.m :], f.lams[layout.m :], layout.d_offsets):
            size = t.nlevels * t.s
            block = P[:, o : o + size].reshape(tk.nlevels, t.nlevels, t.s, tk.s)
            P = P.at[:, o : o + size].set(jnp.einsum("ab,clas->clbs", lam, block).reshape(tk.nlevels, size, tk.s))
    return jnp.concatenate([P, f.LX[k][:, :p, :]], axis=1)


def leverage(theta, arrays, layout: Layout, rows: HatRows):
    """h_i = ‖L⁻¹ [Λ'z_i; x_i]‖² for the given rows, a pure function of θ (lme4's ``hatvalues``)."""
    f = factor(jnp.asarray(theta), arrays, layout)
    lams, m, dz, p = f.lams, layout.m, layout.dz, layout.p
    r = rows.X.shape[0]
    h = jnp.zeros(r)
    ws = []
    for k in range(m):
        rhs = rows.z[k] @ lams[k]  # (λ_k' z_i)' per row
        for j in range(k):
            # L_kj = λ_k' L̃_kj has one block per level of term j, in the row of the level of term k that holds it
            Lkj = jnp.einsum("ab,rac->rbc", lams[k], f.Lt[k][j][rows.codes[j]])
            rhs = rhs - jnp.einsum("rbc,rc->rb", Lkj, ws[j])
        w = _solve_lower_batched(f.Lkk[k][rows.codes[k]], rhs)
        ws.append(w)
        h = h + jnp.sum(w**2, axis=1)
    if dz + p == 0:
        return h
    # the dense block: [Λ_D'z_i; x_i] − Σ_k L_Dk w_k(i), then L_DD⁻¹ (without the response's row)
    zd = jnp.zeros((r, dz))
    for t, lam, o, k in zip(layout.terms[m:], lams[m:], layout.d_offsets, range(m, len(layout.terms))):
        cols = o + rows.codes[k][:, None] * t.s + jnp.arange(t.s)[None, :]
        zd = zd.at[jnp.arange(r)[:, None], cols].add(rows.z[k] @ lam)
    v = jnp.concatenate([zd, rows.X], axis=1)
    for k in range(m):
        P = _dense_columns(f, arrays, layout, k)
        v = v - jnp.einsum("rds,rs->rd", P[rows.codes[k]], ws[k])
    L = f.LDD[:-1, :-1]
    w = solve_triangular(L, v.T, lower=True)
    return h + jnp.sum(w**2, axis=0)


leverage_jit = jax.jit(leverage, static_argnames=("layout",))

# rows per call: a chunk's dense part holds rows × (dz + p) × max s_k numbers
_CHUNK_ELEMENTS = 2**23


def leverage_all(theta, problem) -> np.ndarray:
    """Leverage of every row of the fit, in chunks of rows of one fixed size (one compilation per model)."""
    design, layout = problem.design, problem.layout
    n = design.n
    smax = max(t.s for t in layout.terms)
    chunk = int(max(1, min(n, _CHUNK_ELEMENTS // max(1, (layout.dz + layout.p) * smax))))
    out = []
    th = jnp.asarray(theta)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        rows = hat_rows(design, start, stop, pad_to=chunk)
        out.append(np.asarray(leverage_jit(th, problem.arrays, layout, rows))[: stop - start])
    return np.concatenate(out)


def cooks_distance(residuals: np.ndarray, hat: np.ndarray, sigma: float, p: int) -> np.ndarray:
    """Cook's distance as lme4's ``cooks.distance`` for a linear mixed model: r_i² h_i / (p σ² (1 − h_i)²), with r
    the (unscaled) Pearson residual √wᵢ (yᵢ − ŷᵢ)."""
    return residuals**2 * hat / (p * sigma**2 * (1.0 - hat) ** 2)
