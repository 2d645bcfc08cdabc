"""The typed pytrees of the blocked problem (docs/design.md, section 3).

``Layout`` (in plan.py) is static: it decides the traced program. ``Arrays`` holds what the traced objective reads;
``Plan`` holds the host-planned index maps that assemble ``Arrays`` from the data; ``ModelData`` is the data. The
index fields of ``Arrays`` and everything in ``Plan`` depend on the grouping structure alone; the block fields of
``Arrays`` are numbers computed from ``ModelData`` by :func:`mixedjax.blocks.assembly.assemble` (or by the host path
in plan.py, which gives the same blocks).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax


class Fill(NamedTuple):
    """The fill-in L_Dk L_Dk' of D's Z part from structured term k, split by column (plan.py, ``_heavy_columns``).

    hent, hslot: the entries of heavy columns and their flat rows in the dense product's W.
    seg, uslot: for each pair product (term 0: each merged product), its target slot's segment; the distinct flat
        target slots in D (upper triangle, and within a vector level also the lower one), sorted.
    e1, e2: the two entries of each pair (terms k > 0; term 0 only in a plan that keeps its pairs).
    pcol: term 0: the level whose V_c each product gathers. P: term 0: the products A_D0[e1] ⊗ A_D0[e2] (data).
    """

    hent: jax.Array
    hslot: jax.Array
    seg: jax.Array
    uslot: jax.Array
    e1: Optional[jax.Array] = None
    e2: Optional[jax.Array] = None
    pcol: Optional[jax.Array] = None
    P: Optional[jax.Array] = None


class Arrays(NamedTuple):
    """What the traced objective reads. Per-term tuples run over the structured terms k < m in layout order.

    Akk[k]: A_kk by level (ℓ_k, s_k, s_k). Ajk[j][k] (k < j): A_jk by level of k (ℓ_k, s_j, s_k).
    maps[j][k] (k < j): the level of term j that holds each level of term k (ℓ_k,).
    AX[k]: [X y]' Z_k by level (ℓ_k, p + 1, s_k); row p is the response's.
    AD[k]: D's Z rows in column block k, one s_k-vector per entry (E_k, s_k); Drow[k], Dcol[k]: each entry's row of D
        and level of k, sorted by (level, row). tgt[k][i] (i < k): where term i's entries land among term k's.
    fill[k]: the fill-in of D from term k (:class:`Fill`).
    ADD: the dense block [Z_D X y]'[Z_D X y] (both triangles).
    Q0, Q0row, Q0col: term 0's G-block products A_X0[c] ⊗ A_D0[e], merged, with their D row and level (or None).
    log_yscale2: 2 log of the scale the response was divided by. log_wdet: Σ log wᵢ of the prior weights (0 without);
        lme4's deviance subtracts it.
    """

    Akk: tuple
    Ajk: tuple
    maps: tuple
    AX: tuple
    AD: tuple
    Drow: tuple
    Dcol: tuple
    tgt: tuple
    fill: tuple
    ADD: jax.Array
    Q0: Optional[jax.Array]
    Q0row: Optional[jax.Array]
    Q0col: Optional[jax.Array]
    log_yscale2: jax.Array
    log_wdet: jax.Array


class Plan(NamedTuple):
    """Index maps that assemble the blocks of :class:`Arrays` from :class:`ModelData` (structure only).

    codes[k]: each row's level of structured term k (n,). ad_entry[k]: (n, c_D) the entry of AD[k] that row i's
    D column c adds to (c_D = Σ s_d over the terms in D). drow: (n, c_D) row i's row of D for each D column.
    p0_e1, p0_e2, p0_index: term 0's entry pairs and the product each adds to (None when the plan does not keep
    them: then the products cannot be re-assembled, only reused). q0_index: each term-0 entry's row of Q0 (or None).
    """

    codes: tuple
    ad_entry: tuple
    drow: jax.Array
    p0_e1: Optional[jax.Array]
    p0_e2: Optional[jax.Array]
    p0_index: Optional[jax.Array]
    q0_index: Optional[jax.Array]


class ModelData(NamedTuple):
    """The data of one fit, as given (unweighted): the z values of each term (n, s_k) in layout order, X (n, p), the
    response y (n,), the prior weights (n,) and the offset (n,)."""

    z: tuple
    X: jax.Array
    y: jax.Array
    weights: jax.Array
    offset: jax.Array
