"""The blocked matrix A = [Z X y]'[Z X y], its symbolic factorisation and index maps (DESIGN.md section 3).

Everything is numpy on the host, computed once per model. The result is a static :class:`Layout` (hashable; it
decides the traced program) and a pytree of arrays (the data the traced objective reads).

Block rows, in order: the *structured* terms 0..m-1, then one *dense* block D = [Z_D | X | y] holding the remaining
terms (stored dense, scalar rows) and the fixed effects and response.

- Term 0 is always structured: its diagonal block is ℓ small s × s blocks (a diagonal when s = 1).
- Term j > 0 is structured too when every earlier term is structured and nested in it (each level of the earlier
  factor lies in one level of term j). Then every off-diagonal block L_jk has one non-zero s_j × s_k block per
  column level (at row ``maps[j][k][c]``) and no fill-in reaches the diagonal block. Otherwise term j and all later
  ones go to D.
- The rows of D in column block k (k structured) are sparse in their Z part: a list of entries (row r, level c) with
  an s_k-vector each; the X and y rows are dense. Fill-in of the Z part of D, L_Dk L_Dk', is a segment sum over
  pairs of entries that share a column, prepared here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._design import Design


@dataclass(frozen=True)
class TermLayout:
    s: int
    nlevels: int
    theta_offset: int
    pattern: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Layout:
    """Static description of the blocked problem: everything the traced objective branches on."""

    terms: tuple[TermLayout, ...]
    m: int  # number of structured terms (a prefix of ``terms``)
    dense_fill: tuple[bool, ...]  # per structured term: fill-in of D as a dense product (else a pair-list segment sum)
    dz: int  # rows of the Z part of D
    p: int
    n: int
    ntheta: int

    @property
    def d_offsets(self) -> tuple[int, ...]:
        """Row offset in D of each term that lives in D."""
        out, o = [], 0
        for t in self.terms[self.m :]:
            out.append(o)
            o += t.nlevels * t.s
        return tuple(out)


def _nested(inner: np.ndarray, outer: np.ndarray, n_inner: int) -> np.ndarray | None:
    """Map each level of ``inner`` to its one level of ``outer``, or None when some level meets several."""
    pairs = np.unique(np.stack([inner, outer], axis=1), axis=0)
    if len(pairs) != n_inner:
        return None
    out = np.empty(n_inner, dtype=np.int64)
    out[pairs[:, 0]] = pairs[:, 1]
    return out


def _gram_by_level(codes: np.ndarray, left: np.ndarray, right: np.ndarray, nlev: int) -> np.ndarray:
    """G[c] = Σ_{i: codes[i] = c} left[i] right[i]'  → (nlev, left.shape[1], right.shape[1])."""
    a, b = left.shape[1], right.shape[1]
    G = np.empty((nlev, a, b))
    for i in range(a):
        for j in range(b):
            G[:, i, j] = np.bincount(codes, weights=left[:, i] * right[:, j], minlength=nlev)
    return G


def _pairs(rows: np.ndarray, cols: np.ndarray, dz: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs (e1, e2) of entries in the same column with rows[e1] >= rows[e2]; entries sorted by (col, row)."""
    E = len(rows)
    if E == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    start_of_col = np.searchsorted(cols, cols, side="left")
    local = np.arange(E) - start_of_col
    reps = local + 1
    e1 = np.repeat(np.arange(E), reps)
    first = np.cumsum(reps) - reps
    e2 = start_of_col[e1] + (np.arange(len(e1)) - np.repeat(first, reps))
    slot = rows[e1] * dz + rows[e2]
    return e1, e2, slot


def build_blocks(design: Design):
    """Return (layout, arrays) for the design."""
    terms = design.terms
    K = len(terms)
    n, p = design.n, design.p
    yscale = float(np.std(design.y)) or 1.0
    Xy = np.column_stack([design.X, design.y / yscale])

    # structured prefix: each later term must contain every earlier one
    maps: dict[tuple[int, int], np.ndarray] = {}
    m = 1
    for j in range(1, K):
        found = {}
        for k in range(j):
            mp = _nested(terms[k].codes, terms[j].codes, terms[k].nlevels)
            if mp is None:
                break
            found[(j, k)] = mp
        if len(found) != j:
            break
        maps.update(found)
        m = j + 1

    toff, tl = 0, []
    for t in terms:
        tl.append(TermLayout(t.s, t.nlevels, toff, t.pattern))
        toff += t.ntheta
    d_terms = terms[m:]
    d_off = []
    dz = 0
    for t in d_terms:
        d_off.append(dz)
        dz += t.nlevels * t.s

    arrays: dict = {"Akk": [], "Ajk": {}, "maps": {}, "AX": [], "AD": [], "Drow": [], "Dcol": [], "tgt": {},
                    "pair1": [], "pair2": [], "slot": []}
    for k in range(m):
        t = terms[k]
        arrays["Akk"].append(_gram_by_level(t.codes, t.z, t.z, t.nlevels))
        arrays["AX"].append(_gram_by_level(t.codes, Xy, t.z, t.nlevels))  # (ℓ_k, p+1, s_k)
        for j in range(k + 1, m):
            arrays["Ajk"][f"{j}_{k}"] = _gram_by_level(t.codes, terms[j].z, t.z, t.nlevels)
            arrays["maps"][f"{j}_{k}"] = maps[(j, k)]

    # sparse Z part of D in each structured column block, with fill from earlier blocks
    entry_keys: list[np.ndarray] = []
    dense_fill: list[bool] = []
    for k in range(m):
        t = terms[k]
        keys, vals = [], []
        for td, o in zip(d_terms, d_off):
            key = td.codes * t.nlevels + t.codes
            uk, inv = np.unique(key, return_inverse=True)
            inv = inv.reshape(-1)
            G = _gram_by_level(inv, td.z, t.z, len(uk))  # (E_t, s_d, s_k)
            lev_d, c = uk // t.nlevels, uk % t.nlevels
            for a in range(td.s):
                r = o + lev_d * td.s + a
                keys.append(c * max(dz, 1) + r)
                vals.append(G[:, a, :])
        akeys = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
        avals = np.concatenate(vals) if vals else np.zeros((0, t.s))
        allkeys = [akeys]
        for i in range(k):
            ki = entry_keys[i]
            r_i, c_i = ki % max(dz, 1), ki // max(dz, 1)
            allkeys.append(maps[(k, i)][c_i] * max(dz, 1) + r_i)
        ukeys = np.unique(np.concatenate(allkeys))
        AD = np.zeros((len(ukeys), t.s))
        AD[np.searchsorted(ukeys, akeys)] = avals
        for i in range(k):
            ki = entry_keys[i]
            r_i, c_i = ki % max(dz, 1), ki // max(dz, 1)
            arrays["tgt"][f"{i}_{k}"] = np.searchsorted(ukeys, maps[(k, i)][c_i] * max(dz, 1) + r_i)
        entry_keys.append(ukeys)
        rows, cols = ukeys % max(dz, 1), ukeys // max(dz, 1)
        # fill-in L_Dk L_Dk': a segment sum over the pairs of entries sharing a column costs about one scattered
        # product per pair; a dense product W W' (W = L_Dk scattered into dz × ℓ_k s_k) costs dz² ℓ_k s_k flops at
        # BLAS speed (measured here: one scattered pair product costs about as much as 125 BLAS flops). Choose the
        # cheaper one, per block.
        counts = np.bincount(cols, minlength=t.nlevels).astype(np.int64)
        npairs = int(np.sum(counts * (counts + 1) // 2))
        dense = dz > 0 and npairs * t.s * 125 > dz * dz * t.nlevels * t.s
        dense_fill.append(bool(dense))
        e1, e2, slot = _pairs(rows, cols, dz) if not dense else (np.zeros(0, np.int64),) * 3
        arrays["AD"].append(AD)
        arrays["Drow"].append(rows)
        arrays["Dcol"].append(cols)
        arrays["pair1"].append(e1)
        arrays["pair2"].append(e2)
        arrays["slot"].append(slot)

    # the dense block D = [Z_D X y]'[Z_D X y]
    if dz:
        ri, ci, vi = [], [], []
        for td, o in zip(d_terms, d_off):
            for a in range(td.s):
                ri.append(np.arange(n))
                ci.append(o + td.codes * td.s + a)
                vi.append(td.z[:, a])
        ZD = sp.csr_matrix((np.concatenate(vi), (np.concatenate(ri), np.concatenate(ci))), shape=(n, dz))
        ZZ = (ZD.T @ ZD).toarray()
        ZX = np.asarray(ZD.T @ Xy)
        ADD = np.block([[ZZ, ZX], [ZX.T, Xy.T @ Xy]])
    else:
        ADD = Xy.T @ Xy
    arrays["ADD"] = ADD
    layout = Layout(terms=tuple(tl), m=m, dense_fill=tuple(dense_fill), dz=dz, p=p, n=n, ntheta=toff)
    arrays["log_yscale2"] = np.float64(2 * np.log(yscale))  # y was divided by this scale on the host
    return layout, arrays, yscale
