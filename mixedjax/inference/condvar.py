"""Conditional covariances of the random effects given y (lme4's ``postVar``, MixedModels.jl's ``condVar``):
Var(b | y) = σ² Λ M⁻¹ Λ' with M = Λ'Z'ZΛ + I, per level the s × s diagonal block, without a q × q matrix.

- A structured term k (its diagonal block of Z'Z is ``arrays["Akk"][k]``, one s × s block per level): the block of
  Λ M⁻¹ Λ' at level c is ∂ log|M| / ∂(Z'Z)_cc, since d log|Λ'AΛ + I| = tr(Λ M⁻¹ Λ' dA). One reverse pass of the
  log-determinant gives every level at once. (Term 0's fill-in of the dense block shares one V_c between levels with
  equal (Z'Z)_cc, so this is used for term 0 only when there is no dense block.)
- A term in the dense block D: (M⁻¹)_DD = (L_DD L_DD')⁻¹ on D's random-effect rows, from the dense factor itself.
- Term 0 when there is a dense block (crossed terms, m = 1): with L_c its diagonal factor block and Y_c = L_DD⁻¹ L_D0,c
  (its column of the factor below, carried into D), (M⁻¹)_cc = L_c⁻ᵀ (I + Y_c'Y_c) L_c⁻¹.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from ..core.indexing import _segsum, _take
from ..core.objective import factor
from ..errors import ArgumentError


def _get(arrays, name):
    """A field of the prepared arrays (a dict, or a NamedTuple with the same field names)."""
    return getattr(arrays, name) if hasattr(arrays, "_fields") else arrays[name]


def _with_akk(arrays, akk):
    if hasattr(arrays, "_replace"):
        return arrays._replace(Akk=akk)
    out = dict(arrays)
    out["Akk"] = akk
    return out


def _logdet_M(theta, akk, arrays, layout):
    f = factor(theta, _with_akk(arrays, akk), layout)
    out = sum(2.0 * jnp.sum(jnp.log(jnp.diagonal(Lk, axis1=-2, axis2=-1))) for Lk in f.Lkk)
    return out + 2.0 * jnp.sum(jnp.log(jnp.diagonal(f.LDD)[: layout.dz]))


def _structured_blocks(theta, arrays, layout):
    """Λ M⁻¹ Λ' diagonal blocks of every structured term (valid for term 0 only without a dense block)."""
    g = jax.grad(_logdet_M, argnums=1)(theta, list(_get(arrays, "Akk")), arrays, layout)
    return [(b + jnp.swapaxes(b, -1, -2)) / 2 for b in g]


def _dense_blocks(theta, arrays, layout):
    """Λ M⁻¹ Λ' diagonal blocks of the terms in D, and term 0's when D exists and term 0 is the only structured
    term."""
    f = factor(theta, arrays, layout)
    dz, m = layout.dz, layout.m
    L22 = f.LDD[:dz, :dz]
    Linv = solve_triangular(L22, jnp.eye(dz), lower=True)
    out = []
    for t, lam, o in zip(layout.terms[m:], f.lams[m:], layout.d_offsets):
        cols = Linv[:, o : o + t.nlevels * t.s].reshape(dz, t.nlevels, t.s)
        Minv = jnp.einsum("rla,rlb->lab", cols, cols)  # per level: the s × s diagonal block of (L L')⁻¹
        out.append(lam @ Minv @ lam.T)
    first = None
    if m == 1:
        t0, lam0, Lc = layout.terms[0], f.lams[0], f.Lkk[0]
        # L_D0 = Λ_D' L̃_D0 (rows of D's Z part); K = L_DD⁻¹ Λ_D' applied to each entry's row
        scale_rows = _lambda_D_transpose_columns(Linv, f.lams, layout)  # (dz, dz): L⁻¹ Λ_D'
        rows, cols = _get(arrays, "Drow")[0], _get(arrays, "Dcol")[0]
        contrib = _take(scale_rows.T, rows)[:, :, None] * f.LD[0][:, None, :]  # (E, dz, s)
        Y = _segsum(contrib, cols, t0.nlevels, sorted_=True)  # (ℓ, dz, s)
        inner = jnp.eye(t0.s) + jnp.einsum("lra,lrb->lab", Y, Y)
        Lci = solve_triangular(Lc, jnp.broadcast_to(jnp.eye(t0.s), Lc.shape), lower=True)  # L_c⁻¹
        Minv0 = jnp.swapaxes(Lci, -1, -2) @ inner @ Lci
        first = lam0 @ Minv0 @ lam0.T
    return out, first


def _lambda_D_transpose_columns(Linv, lams, layout):
    """L⁻¹ Λ_D': the columns of L⁻¹ for each level block of a D term multiplied by λ_d'."""
    out = Linv
    for t, lam, o in zip(layout.terms[layout.m :], lams[layout.m :], layout.d_offsets):
        size = t.nlevels * t.s
        blk = out[:, o : o + size].reshape(-1, t.nlevels, t.s)
        out = out.at[:, o : o + size].set(jnp.einsum("rla,ba->rlb", blk, lam).reshape(-1, size))
    return out


def _condvar(theta, sigma2, arrays, layout):
    m, dz = layout.m, layout.dz
    blocks = [None] * len(layout.terms)
    if m and (dz == 0 or m > 1):
        for k, b in enumerate(_structured_blocks(theta, arrays, layout)):
            if k > 0 or dz == 0:
                blocks[k] = b
    if dz:
        dense, first = _dense_blocks(theta, arrays, layout)
        for k, b in zip(range(m, len(layout.terms)), dense):
            blocks[k] = b
        if first is not None:
            blocks[0] = first
    return [None if b is None else sigma2 * b for b in blocks]


_condvar_jit = jax.jit(_condvar, static_argnames=("layout",))


def condvar(theta, sigma, arrays, layout) -> list[np.ndarray]:
    """Per term (layout order) the (levels, s, s) conditional covariances of b given y at (θ, σ)."""
    if layout.dz and layout.m > 1:
        raise ArgumentError(
            "conditional variances are not available yet for a model whose first grouping factor is nested in a "
            "second one while another is crossed with them (structured terms and a dense block together)")
    out = _condvar_jit(jnp.asarray(theta), jnp.float64(sigma) ** 2, arrays, layout)
    return [np.array(b) for b in out]
