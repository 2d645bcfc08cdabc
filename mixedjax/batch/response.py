"""The y-dependent blocks of A = [Z X y]'[Z X y] as a pure JAX function of a new response (same design, same plan).

A new response changes only the y row and column of A: the y row of each structured term's A_Xk, the last row and
column of the dense block, and (term 0's host products, see blocks/plan.py) the y slice of Q0. Everything else is
reused, so a refit needs no host rebuild and the arrays are a differentiable function of y. y keeps the fitted
model's scale divisor (``log_yscale2`` unchanged): the scale only conditions the arithmetic, d(θ) does not depend on it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..blocks.plan import Layout
from ..core.indexing import _segsum


class ResponsePlan(NamedTuple):
    """How y enters the arrays, planned once per problem on the host (device arrays).

    codes: per term (layout order) the level of each row (n,); z: per term its model columns (n, s_k);
    X: the fixed-effects matrix (n, p); q0_target: per entry of term 0 in D the row of Q0 it was merged into (E,),
    or an empty array when the plan has no Q0; yscale: the divisor of y in the arrays (a 0-d array).
    """

    codes: tuple
    z: tuple
    X: jax.Array
    q0_target: jax.Array
    yscale: jax.Array


def response_plan(problem) -> ResponsePlan:
    """The host side: the rows' levels and columns, and the Q0 merge map (recomputed as build_blocks made it)."""
    design, layout, arrays = problem.design, problem.layout, problem.arrays
    target = np.zeros(0, np.int32)
    if layout.products:
        akk = np.asarray(arrays["Akk"][0])
        t0 = layout.terms[0]
        _, first, same = np.unique(akk.reshape(t0.nlevels, -1), axis=0, return_index=True, return_inverse=True)
        rep = first[same.reshape(-1)]
        rows, cols = np.asarray(arrays["Drow"][0]).astype(np.int64), np.asarray(arrays["Dcol"][0]).astype(np.int64)
        merged = np.asarray(arrays["Q0row"]).astype(np.int64) * t0.nlevels + np.asarray(arrays["Q0col"])
        target = np.searchsorted(merged, rows * t0.nlevels + rep[cols]).astype(np.int32)
    return ResponsePlan(
        codes=tuple(jax.device_put(t.codes.astype(np.int32)) for t in design.terms),
        z=tuple(jax.device_put(np.asarray(t.z, float)) for t in design.terms),
        X=jax.device_put(np.asarray(design.X, float)),
        q0_target=jax.device_put(target),
        yscale=jax.device_put(np.float64(problem.yscale)),
    )


def with_response(rplan: ResponsePlan, arrays: dict, layout: Layout, y) -> dict:
    """``arrays`` with the y row and column of A recomputed for the response ``y`` (n,): pure JAX in y."""
    yt = jnp.asarray(y) / rplan.yscale
    out = dict(arrays)
    m, dz, p = layout.m, layout.dz, layout.p
    yrows = []  # per structured term: Σ_{i in level c} ỹ_i z_i  (ℓ_k, s_k)
    for k in range(m):
        t = layout.terms[k]
        yrows.append(_segsum(yt[:, None] * rplan.z[k], rplan.codes[k], t.nlevels))
    out["AX"] = [ax.at[:, p, :].set(yr) for ax, yr in zip(arrays["AX"], yrows)]
    # the last column of the dense block: [Z_D'ỹ; X'ỹ; ỹ'ỹ]
    zy = [(_segsum(yt[:, None] * rplan.z[k], rplan.codes[k], t.nlevels)).reshape(-1)
          for k, t in zip(range(m, len(layout.terms)), layout.terms[m:])]
    col = jnp.concatenate(zy + [rplan.X.T @ yt, jnp.vdot(yt, yt)[None]])
    add = arrays["ADD"].at[:, -1].set(col)
    out["ADD"] = add.at[-1, :].set(col)
    if layout.products:
        # Q0[e', p] = Σ over entries e merged into e' of A_X0[col(e)]'s y row ⊗ A_D0[e] (build_blocks' products)
        s = layout.terms[0].s
        prod = (yrows[0][arrays["Dcol"][0]][:, :, None] * arrays["AD"][0][:, None, :]).reshape(-1, s * s)
        q = _segsum(prod, rplan.q0_target, arrays["Q0"].shape[0])
        out["Q0"] = arrays["Q0"].at[:, p, :].set(q)
    return out
