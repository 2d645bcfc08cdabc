"""The numeric assembly of A = [Z X y]' W [Z X y] on the device: pure JAX functions of the data and the plan.

The host (plan.py) decides the structure once per design: index maps, pairs, heavy columns, merges. These functions
compute the numbers from :class:`~mixedjax.blocks.types.ModelData`, so a new response or new weights re-assemble
under ``jax.jit`` and ``jax.vmap`` with no host work, and derivatives with respect to y and the weights flow through
them (docs/design.md, section 5). They give the blocks plan.py's host path gives (tests/test_assembly.py).

- :func:`with_response`: only the rows that depend on y (the response rows of A_Xk, of D and of term 0's G-block
  products, and the response's scale); everything else is reused.
- :func:`assemble`: every block, weights included. It needs a plan that keeps term 0's pairs (``merge=False``): a
  merged plan sums products over levels with equal Gram blocks, which new weights would no longer share.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from ..core.indexing import _scatter_add, _segsum, _take
from ..errors import ArgumentError
from .plan import Layout
from .types import Arrays, ModelData, Plan


def _rows(data: ModelData, y=None):
    """z, X and (y − offset) / c, unweighted, with the weights w and 2 log c: every block is a sum of w_i times a
    product of two rows, linear in w (so weights of either sign assemble: PIRLS's observed information). c is the
    scale of √|w| (y − offset), as the host path's."""
    w = data.weights
    r = (data.y if y is None else y) - data.offset
    yw = jnp.sqrt(jnp.abs(w)) * r
    big = jnp.max(jnp.abs(yw))
    big = jnp.where(big > 0, big, 1.0)
    c = big * jnp.std(yw / big)  # as the host path: no squares of huge values
    # every quantity is homogeneous in the scale (y / c with log c² beside it), so holding c constant is exact for
    # derivatives, and avoids std's infinite derivative where √|w| (y − offset) is constant (PIRLS's y = 0)
    c = lax.stop_gradient(jnp.where(c > 0, c, 1.0))
    return data.z, data.X, r / c, w, 2 * jnp.log(c)


def _gram(codes, w, left, right, nlevels):
    """Σ_{i: codes[i] = c} w_i left[i] right[i]' → (nlevels, a, b)."""
    return _segsum((w[:, None] * left)[:, :, None] * right[:, None, :], codes, nlevels)


def _dense_z(zs, layout: Layout):
    """The terms in D side by side: (n, c_D), matching the columns of ``plan.drow``."""
    d = zs[layout.m :]
    return jnp.concatenate(d, axis=1) if d else jnp.zeros((layout.n, 0))


def _response_column(plan: Plan, zD, X, yv, w, layout: Layout):
    """The response's column of D: [Z_D' W y; X' W y; y' W y]."""
    wy = w * yv
    zy = (zD * wy[:, None]).reshape(-1)
    top = _segsum(zy, plan.drow.reshape(-1), layout.dz) if layout.dz else jnp.zeros(0)
    return jnp.concatenate([top, X.T @ wy, jnp.atleast_1d(yv @ wy)])


def _q0_response(plan: Plan, arrays: Arrays, AX0y, layout: Layout):
    """The response row of term 0's merged G-block products: Σ A_y0[c] ⊗ A_D0[e] over each merged group."""
    s = layout.terms[0].s
    AD0, cols = arrays.AD[0], arrays.Dcol[0]
    prod = (_take(AX0y, cols)[:, :, None] * AD0[:, None, :]).reshape(-1, s * s)
    return _segsum(prod, plan.q0_index, arrays.Q0.shape[0])


def with_response(plan: Plan, arrays: Arrays, data: ModelData, y, layout: Layout) -> Arrays:
    """``arrays`` for the response ``y`` (the weights and offset of ``data``): the y-dependent parts re-assembled."""
    zs, X, yv, w, log_c2 = _rows(data, y)
    p = layout.p
    AX = tuple(a.at[:, p, :].set(_segsum((w * yv)[:, None] * zs[k], plan.codes[k], layout.terms[k].nlevels))
               for k, a in enumerate(arrays.AX))
    col = _response_column(plan, _dense_z(zs, layout), X, yv, w, layout)
    ADD = arrays.ADD.at[:, -1].set(col).at[-1, :].set(col)
    Q0 = arrays.Q0
    if layout.products:
        Q0 = Q0.at[:, p, :].set(_q0_response(plan, arrays, AX[0][:, p, :], layout))
    return arrays._replace(AX=AX, ADD=ADD, Q0=Q0, log_yscale2=log_c2)


def _dense_block(plan: Plan, zD, Xy, w, layout: Layout):
    """D = [Z_D X y]' W [Z_D X y] (both triangles)."""
    n, dz = layout.n, layout.dz
    XX = (w[:, None] * Xy).T @ Xy
    if not dz:
        return XX
    cD = zD.shape[1]
    Dn = dz + Xy.shape[1]
    # every pair of D columns of a row lands at (drow[i, a], drow[i, b]) of the Z part
    slots = (plan.drow[:, :, None] * Dn + plan.drow[:, None, :]).reshape(-1)
    wzD = w[:, None] * zD
    vals = (wzD[:, :, None] * zD[:, None, :]).reshape(-1)
    S = _scatter_add(jnp.zeros(Dn * Dn, zD.dtype), slots, vals).reshape(Dn, Dn)
    ZX = _segsum((wzD[:, :, None] * Xy[:, None, :]).reshape(n * cD, -1), plan.drow.reshape(-1), dz)
    S = S.at[:dz, dz:].set(ZX).at[dz:, :dz].set(ZX.T)
    return S.at[dz:, dz:].set(XX)


def assemble(plan: Plan, arrays: Arrays, data: ModelData, layout: Layout) -> Arrays:
    """Every block of ``arrays`` from ``data`` (weights, z values, X, y, offset); the index fields are reused."""
    if layout.m and layout.npairs[0] and plan.p0_index is None:
        raise ArgumentError("this plan merges term 0's products over levels with equal Gram blocks, which holds only "
                            "for the weights it was built with; build it with merge=False "
                            "(mj.Problem.build(..., merge=False)) to assemble new weights")
    zs, X, yv, w, log_c2 = _rows(data)
    Xy = jnp.concatenate([X, yv[:, None]], axis=1)
    zD = _dense_z(zs, layout)
    wzD = w[:, None] * zD
    m = layout.m
    Akk = tuple(_gram(plan.codes[k], w, zs[k], zs[k], layout.terms[k].nlevels) for k in range(m))
    AX = tuple(_gram(plan.codes[k], w, Xy, zs[k], layout.terms[k].nlevels) for k in range(m))
    Ajk = tuple(tuple(_gram(plan.codes[k], w, zs[j], zs[k], layout.terms[k].nlevels) for k in range(j))
                for j in range(m))
    AD = []
    for k in range(m):
        s, E = layout.terms[k].s, arrays.AD[k].shape[0]
        contrib = (wzD[:, :, None] * zs[k][:, None, :]).reshape(-1, s)
        AD.append(_segsum(contrib, plan.ad_entry[k].reshape(-1), E))
    fill = list(arrays.fill)
    Q0 = arrays.Q0
    if m and layout.npairs[0]:
        s = layout.terms[0].s
        prod = (_take(AD[0], plan.p0_e1)[:, :, None] * _take(AD[0], plan.p0_e2)[:, None, :]).reshape(-1, s * s)
        fill[0] = fill[0]._replace(P=_segsum(prod, plan.p0_index, fill[0].P.shape[0]))
    if layout.products:
        s = layout.terms[0].s
        cols = arrays.Dcol[0]
        prod = (_take(AX[0], cols)[:, :, :, None] * AD[0][:, None, None, :]).reshape(cols.shape[0],
                                                                                   (layout.p + 1) * s * s)
        Q0 = _segsum(prod, plan.q0_index, Q0.shape[0]).reshape(Q0.shape)
    return arrays._replace(Akk=Akk, Ajk=Ajk, AX=AX, AD=tuple(AD), fill=tuple(fill),
                           ADD=_dense_block(plan, zD, Xy, w, layout), Q0=Q0, log_yscale2=log_c2,
                           log_wdet=jnp.sum(jnp.log(data.weights)))
