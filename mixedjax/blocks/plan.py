"""The plan of the blocked matrix A = [Z X y]'[Z X y] and its host assembly (docs/design.md, sections 3 and 5).

Computed once per design on the host, in numpy: the static :class:`Layout` (hashable; it decides the traced program),
the :class:`~mixedjax.blocks.types.Plan` (index maps for the device assembly in assembly.py) and the
:class:`~mixedjax.blocks.types.Arrays` the traced objective reads, assembled here without compiling anything.

Block rows, in order: the *structured* terms 0..m-1, then one *dense* block D = [Z_D | X | y] holding the remaining
terms (stored dense, scalar rows) and the fixed effects and response.

- Term 0 is always structured: its diagonal block is ℓ small s × s blocks (a diagonal when s = 1).
- Term j > 0 is structured too when every earlier term is structured and nested in it (each level of the earlier
  factor lies in one level of term j). Then every off-diagonal block L_jk has one non-zero s_j × s_k block per
  column level (at row ``maps[j][k][c]``) and no fill-in reaches the diagonal block. Otherwise term j and all later
  ones go to D.
- The rows of D in column block k (k structured) are sparse in their Z part: a list of entries (row r, level c) with
  an s_k-vector each; the X and y rows are dense. Fill-in of the Z part of D, L_Dk L_Dk', is split by column: a
  column with many entries goes into a dense product W W', the others into a segment sum over the pairs of entries
  that share a column (its upper triangle), prepared here. For term 0 the pair products are fixed numbers times a
  per-level s × s matrix V_c(θ), so they are multiplied out here once.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from ..design.build import Design
from ..design.sums import sum_by_level, sum_by_row
from .types import Arrays, Fill, Plan


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
    nheavy: tuple[int, ...]  # per structured term: columns whose fill-in of D is a dense product W W'
    npairs: tuple[int, ...]  # per structured term: entry pairs of the other columns (a segment sum), before merging
    products: bool  # term 0's fill-in and G block from host-side entry products (see build_blocks)
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
    """Map each level of ``inner`` to its one level of ``outer``, or None when some level meets several.

    One scatter and one gather (O(n), no sort): the level of ``outer`` last written for each inner level is the
    only one exactly when every row agrees with it."""
    out = np.zeros(n_inner, dtype=np.int64)
    out[inner] = outer
    every = np.bincount(inner, minlength=n_inner).all()  # a level with no rows has no outer level
    return out if every and np.array_equal(out[inner], outer) else None


def _column_runs(cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, length) of each run of equal values in ``cols`` (entries grouped by column)."""
    new = np.empty(len(cols), bool)
    new[:1] = True
    np.not_equal(cols[1:], cols[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    return starts, np.diff(np.append(starts, len(cols)))


def _by_representative(cols: np.ndarray, rep: np.ndarray) -> np.ndarray:
    """The order of entries grouped by column that puts the columns by their representative level, keeping the
    columns' order within one representative and each column's entries as they are (a sort of columns, not entries)."""
    starts, counts = _column_runs(cols)
    border = np.argsort(rep[cols[starts]], kind="stable")
    counts = counts[border]
    return np.repeat(starts[border] - (np.cumsum(counts) - counts), counts) + np.arange(len(cols))


KEY_BITS = 63  # a packed sort key's bits (a non-negative int64)


def _sorted_pairs(rows: np.ndarray, cols: np.ndarray, stride: int, rowblock: np.ndarray | None):
    """All pairs (i1, i2) of entries in the same column with rows[i1] >= rows[i2], sorted by (slot, i1); entries
    grouped by column, each column's rows ascending. Returns (i1, i2, slot).

    ``slot`` is the pair's position (rows[i2], rows[i1]) in a row-major matrix of row length ``stride``: the upper
    triangle; with ``rowblock`` (each row's level block), a pair within one level block is also mirrored into the
    lower triangle. One pair per (slot, i1), so the sort key (slot, i1, i1 − i2) is packed into one int64 where it
    fits: the pairs come out sorted without an index permutation or a gather of the pair arrays."""
    L = len(rows)
    if L == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    starts, counts = _column_runs(cols)
    reps = np.arange(1, L + 1) - np.repeat(starts, counts)  # each entry pairs with its column's entries up to it
    first = np.cumsum(reps) - reps  # where entry i's pairs start
    # four pair-sized arrays, reused in place (fresh memory costs a page fault per 4 KB)
    rows = rows.astype(np.int64, copy=False)
    k = np.arange(int(first[-1] + reps[-1]))
    bd = int(reps.max() - 1).bit_length()  # bits of d = i1 − i2
    low = np.repeat((np.arange(L) << bd) - first, reps)
    low += k  # (i1 << bd) | d
    i2 = np.repeat(np.arange(L) + first, reps)
    i2 -= k
    r1 = np.repeat(rows, reps)
    slot = np.take(rows, i2, out=k)
    slot *= stride
    slot += r1
    if rowblock is not None:
        r2 = slot // stride
        mirror = np.flatnonzero((rowblock[r1] == rowblock[r2]) & (r1 != r2))
        slot = np.concatenate([slot, r1[mirror] * stride + r2[mirror]])
        low = np.concatenate([low, low[mirror]])
        r1 = np.empty_like(slot)
    bl = bd + (L - 1).bit_length()
    if int(slot.max()).bit_length() + bl <= KEY_BITS:
        key = slot
        key <<= bl
        key |= low
        key.sort()
        low = np.bitwise_and(key, (1 << bl) - 1, out=low)
        slot = np.right_shift(key, bl, out=key)
    else:  # too many bits for one key: sort the two fields
        order = np.lexsort((low, slot))
        slot, low = slot[order], low[order]
    i1 = np.right_shift(low, bd, out=r1)
    np.bitwise_and(low, (1 << bd) - 1, out=low)
    return i1, np.subtract(i1, low, out=low), slot


# One scattered pair product costs about as much as 125 flops of a dense matrix product (measured on the development
# machine). A column with c entries in D's rows has c (c + 1) / 2 pairs; its share of a dense product W W' costs about
# dz² flops per random-effect column.
PAIR_COST = 125
# Most pairs kept as lists: each costs about 16 bytes of index and product arrays plus as much again while the
# objective runs; beyond this the heaviest columns go to the dense product, whatever the flop count says.
PAIR_CAP = 25_000_000
# Most elements of term 0's precomputed G-block products (E × (p+1) × s²); beyond this G is built by gathers.
PRODUCT_CAP = 25_000_000
FILL_MODES = ("auto", "pairs", "dense", "mixed")
# Most rows of the dense block D: its slots then fit in int32 (46,340² < 2³¹), and it would take 17 GB in float64.
MAX_DENSE = 46_340


def _heavy_columns(counts: np.ndarray, dz: int, fill: str) -> np.ndarray:
    """Columns (levels of a structured term) whose fill-in of D is taken as a dense product; the rest as pairs.

    ``fill`` is "auto" (the cost rule above, per column, with the pair cap), or, to exercise every code path in
    tests, "pairs" (all pairs, no cap), "dense" (all dense) or "mixed" (every other occupied column dense).
    """
    occupied = counts > 0
    if dz == 0 or fill == "pairs":
        return np.zeros(counts.size, bool)
    if fill == "dense":
        return occupied
    if fill == "mixed":
        return occupied & (np.cumsum(occupied) % 2 == 1)
    pairs = counts * (counts + 1) // 2
    heavy = pairs * PAIR_COST > dz * dz
    light_total = int(pairs[~heavy].sum())
    if light_total > PAIR_CAP:
        order = np.argsort(-np.where(heavy, -1, pairs), kind="stable")  # light columns, most pairs first
        over = np.cumsum(pairs[order]) <= light_total - PAIR_CAP
        over = np.concatenate([[True], over[:-1]])  # move columns until the remaining light pairs fit the cap
        heavy[order[over]] = True
    return heavy


def _merge(outer: np.ndarray, level: np.ndarray, nlevels: int, values: np.ndarray):
    """Sum the rows of ``values`` that share (outer, level): returns the sorted distinct outer and level indices, the
    sums (one row each) and, for each input row, the output row it went to (a sort, then one bincount per column:
    several times faster than a reduceat over the rows of a 2-D array)."""
    key = outer.astype(np.int64) * nlevels + level
    presorted = bool(np.all(key[1:] >= key[:-1]))  # term 0's pairs arrive sorted (see build_blocks)
    order = None
    if not presorted:
        order, key = _sort(key)
    first = np.concatenate([[True], key[1:] != key[:-1]]) if len(key) else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    index = _run_index(first)
    if order is not None:
        index[order] = index.copy()
    sums = _sums(index, values, len(starts))
    key = key[starts]
    return key // nlevels, key % nlevels, sums, index


def _sums(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Σ of the rows of ``values`` by ``index`` (one bincount per column, rows added in order)."""
    if not values.shape[1]:
        return np.zeros((size, 0))
    index = index.astype(np.intp, copy=False)  # once, not in every bincount
    return np.stack([np.bincount(index, weights=values[:, j], minlength=size) for j in range(values.shape[1])],
                    axis=1).astype(values.dtype, copy=False)


def _run_index(new: np.ndarray) -> np.ndarray:
    """Each element's run (0, 1, ...) from the flags ``new`` that start the runs; an int32 count where it fits
    (numpy's cumsum of bool into int64 is several times slower than into int32)."""
    index = np.cumsum(new, dtype=np.int32 if len(new) < 2**31 else np.int64)
    index -= 1
    return index


def _sort(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, key[order]) for a non-negative int64 ``key`` (equal keys in any order): one plain sort of key·n + i
    when that fits in int64 (numpy's vectorised sort of int64 is several times faster than its argsort), else
    argsort."""
    n = len(key)
    if not n:
        return np.zeros(0, dtype=np.int64), key
    key = key.astype(np.int64, copy=False)  # the packing needs 64 bits
    top, b = int(key.max()), max(n - 1, 1).bit_length()
    if top < 2 ** (62 - b):  # i in the low b bits: shifts and masks instead of int64 divisions, the same order
        packed = np.sort((key << b) | np.arange(n))
        return packed & ((1 << b) - 1), packed >> b
    if top < (2**62) // n:
        packed = np.sort(key * n + np.arange(n))
        return packed % n, packed // n
    order = np.argsort(key)
    return order, key[order]


def _unique_inverse(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(a, return_inverse=True) for a non-negative integer ``a``, by one sort (no binary searches)."""
    order, a = _sort(a)
    new = np.empty(len(a), bool)
    new[:1] = True
    np.not_equal(a[1:], a[:-1], out=new[1:])
    inverse = np.empty(len(a), dtype=np.int32 if len(a) < 2**31 else np.int64)
    inverse[order] = _run_index(new)
    return a[new], inverse


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """np.unique of a 1-D integer array by a sort (numpy 2's np.unique hashes: 11 ms for 73,421 keys against
    0.7 ms for the sort)."""
    a = np.sort(a)
    return a[np.concatenate([[True], a[1:] != a[:-1]])] if len(a) else a


def _representatives(Akk0: np.ndarray, merge: bool) -> np.ndarray:
    """Per level of term 0, the first level with the same Gram block A_cc (itself when not ``merge``)."""
    nlev = len(Akk0)
    if not merge:
        return np.arange(nlev)
    if Akk0.shape[1] * Akk0.shape[2] == 1 and nlev:
        # one number per level: a stable sort puts each value's first level at the start of its run
        v = Akk0.reshape(nlev)
        order = np.argsort(v, kind="stable")
        vs = v[order]
        run = np.cumsum(np.concatenate([[True], vs[1:] != vs[:-1]])) - 1
        rep = np.empty(nlev, dtype=np.int64)
        rep[order] = order[np.flatnonzero(np.concatenate([[True], vs[1:] != vs[:-1]]))][run]
        return rep
    _, first, same = np.unique(Akk0.reshape(nlev, -1), axis=0, return_index=True, return_inverse=True)
    return first[same.reshape(-1)]


def _weighted(design: Design, weights, offset):
    """The rows as the blocks see them: z, X and y − offset multiplied by √wᵢ (residual variance σ²/wᵢ)."""
    n = design.n
    w = np.ones(n) if weights is None else np.asarray(weights, float)
    off = np.zeros(n) if offset is None else np.asarray(offset, float)
    if weights is None and offset is None:  # multiplying by √1 and subtracting 0 change no bit: skip the passes
        return [t.z for t in design.terms], design.X, design.y, w, off
    sw = np.sqrt(w)
    zs = [sw[:, None] * t.z for t in design.terms]
    return zs, sw[:, None] * design.X, sw * (design.y - off), w, off


def _cross_X(codes, z, sw, design: Design, Xy, nlev: int) -> np.ndarray:
    """Σ over each level's rows of [√w X, y] z' → (ℓ, p+1, s), z already weighted by √w: X's part through its
    groups of equal rows (design.xgroups), the response's directly."""
    ZX = sum_by_level(codes, z if sw is None else z * sw[:, None], design.X, nlev, design.xgroups)
    Zy = sum_by_level(codes, z, Xy[:, -1:], nlev)
    return np.concatenate([ZX, Zy], axis=2).transpose(0, 2, 1)


def _structured_prefix(terms):
    """The number m of structured terms and the nesting maps maps[(j, k)] (level of j holding each level of k)."""
    maps: dict[tuple[int, int], np.ndarray] = {}
    m = 1
    for j in range(1, len(terms)):
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
    return m, maps


def _check_dense_size(d_terms, dz: int, p: int) -> None:
    Dn = dz + p + 1
    if Dn > MAX_DENSE:
        from ..errors import DataError

        parts = ", ".join(f"{t.name} ({t.nlevels:,} levels × {t.s})" for t in d_terms)
        raise DataError(f"this model's dense block would have {Dn:,} rows ({8 * Dn * Dn / 1e9:.0f} GB): the random "
                        f"effects of {parts} go there (every term from the first one that an earlier term is not "
                        f"nested in), together with the {p} fixed-effect columns, and mixedjax supports at most "
                        f"{MAX_DENSE:,} rows. Fit fewer or smaller crossed terms.")


def build_blocks(design: Design, fill: str = "auto", *, weights=None, offset=None, merge: bool = True):
    """Plan the blocked problem of ``design`` and assemble its blocks on the host.

    Returns (layout, arrays, plan, yscale): the static :class:`Layout`, the :class:`~mixedjax.blocks.types.Arrays`
    the objective reads (numpy), the :class:`~mixedjax.blocks.types.Plan` that re-assembles them on the device
    (:mod:`mixedjax.blocks.assembly`) and the scale the weighted response was divided by. ``fill`` picks the fill-in
    method (see _heavy_columns). ``weights`` are prior weights (residual variance σ²/wᵢ), ``offset`` is subtracted
    from y.

    ``merge``: sum term 0's pair products over levels with equal Gram blocks A_cc (they share V_c). That grouping
    depends on the z values and the weights, not on y: a merged plan re-assembles a new response
    (``with_response``) but not new weights. ``merge=False`` keeps term 0's pairs one by one (more memory), which is
    what a plan for traced weights needs (``assemble``).
    """
    if fill not in FILL_MODES:
        raise ValueError(f"fill must be one of {FILL_MODES}, not {fill!r}")
    terms = design.terms
    n, p = design.n, design.p
    zs, Xw, yw, w, off = _weighted(design, weights, offset)
    sw = None if weights is None else np.sqrt(w)  # None: unit weights (nothing to multiply)
    big = float(np.max(np.abs(yw))) or 1.0
    yscale = big * float(np.std(yw / big)) or 1.0  # std without squaring huge values
    Xy = np.column_stack([Xw, yw / yscale])

    m, maps = _structured_prefix(terms)
    toff, tl = 0, []
    for t in terms:
        tl.append(TermLayout(t.s, t.nlevels, toff, t.pattern))
        toff += t.ntheta
    d_terms, d_z = terms[m:], zs[m:]
    d_off, dz = [], 0
    for t in d_terms:
        d_off.append(dz)
        dz += t.nlevels * t.s
    _check_dense_size(d_terms, dz, p)
    Dn = dz + p + 1  # rows of the dense block
    # the first row of each D row's level block (a vector term's level spans s rows)
    rowblock = np.concatenate([o + np.repeat(np.arange(t.nlevels) * t.s, t.s) for t, o in zip(d_terms, d_off)]
                              + [np.zeros(0, np.int64)])
    # each row's D row for each column of the terms in D
    drow = np.stack([o + td.codes * td.s + a for td, o in zip(d_terms, d_off) for a in range(td.s)], axis=1) \
        if d_terms else np.zeros((n, 0), np.int64)
    zD = np.column_stack(d_z) if d_terms else np.zeros((n, 0))
    vector_d = any(t.s > 1 for t in d_terms)

    Akk, AX, AD, Drow, Dcol, fills, ad_entry = [], [], [], [], [], [], []
    Ajk = [[None] * j for j in range(m)]
    mapsT = [[maps[(j, k)] for k in range(j)] for j in range(m)]
    tgt = [[None] * k for k in range(m)]
    for k in range(m):
        t = terms[k]
        Akk.append(sum_by_level(t.codes, zs[k], zs[k], t.nlevels))
        AX.append(_cross_X(t.codes, zs[k], sw, design, Xy, t.nlevels))  # (ℓ_k, p+1, s_k)
        for j in range(k + 1, m):
            Ajk[j][k] = sum_by_level(t.codes, zs[j], zs[k], t.nlevels)

    # sparse Z part of D in each structured column block, with fill from earlier blocks
    entry_keys: list[np.ndarray] = []
    nheavy, npairs, products = [], [], False
    q0_index = p0 = None
    stride = max(dz, 1)
    for k in range(m):
        t = terms[k]
        keys = (t.codes[:, None] * stride + drow).reshape(-1)  # (row i, D column) -> its entry's key
        allkeys = [keys]
        for i in range(k):
            ki = entry_keys[i]
            allkeys.append(maps[(k, i)][ki // stride] * stride + ki % stride)
        ukeys, inverse = _unique_inverse(np.concatenate(allkeys) if k else keys)
        ent, cut = inverse[: len(keys)], np.cumsum([len(a) for a in allkeys])
        ad_entry.append(ent.reshape(n, -1))
        # z_D z_k' of each (row, D column), one contiguous column of z_k at a time for the bincounts
        ADk = np.stack([np.bincount(ent, weights=(zD * zs[k][:, a : a + 1]).reshape(-1), minlength=len(ukeys))
                        for a in range(t.s)], axis=1) if len(ukeys) else np.zeros((0, t.s))
        for i in range(k):
            tgt[k][i] = inverse[cut[i] : cut[i + 1]]
        entry_keys.append(ukeys)
        rows, cols = ukeys % stride, ukeys // stride  # sorted by (column, row)
        AD.append(ADk)
        Drow.append(rows)
        Dcol.append(cols)

        # fill-in L_Dk L_Dk' of D's Z part, split by column: heavy columns as a dense product W W' (W = their
        # entries scattered into D × (columns · s_k)), the others as a segment sum over pairs of entries that share
        # a column, sorted by target slot in the D × D block: the upper triangle, and within one level of a vector
        # term also the lower one (Λ_D' · Λ_D reads that level's whole s × s block).
        heavy = _heavy_columns(np.bincount(cols, minlength=t.nlevels), dz, fill)
        hent = np.flatnonzero(heavy[cols])
        hcol = (np.cumsum(heavy) - 1)[cols[hent]]
        light = np.flatnonzero(~heavy[cols])  # entries of the light columns
        rep = _representatives(Akk[0], merge) if k == 0 else None
        if k == 0 and merge:
            # term 0's pairs are merged below by (slot, representative level): with the columns put by their
            # representative, the pairs sorted by (slot, entry) are the cells' runs, each in column order
            light = light[_by_representative(cols[light], rep)]
        # a level block of one row has no lower triangle: only vector terms in D mirror pairs
        i1, i2, slot = _sorted_pairs(rows[light], cols[light], Dn, rowblock if vector_d else None)
        # term 0 merged needs only the pairs' products and levels, read through the entries' positions
        e1, e2 = (None, None) if k == 0 and merge else (light[i1], light[i2])
        npairs.append(int(len(slot)))
        if k == 0:
            pcol = rep[cols[light]][i1]
            cnew = np.empty(len(slot), bool)
            cnew[:1] = True
            np.not_equal(slot[1:], slot[:-1], out=cnew[1:])
            snew_all = cnew.copy()
            cnew[1:] |= pcol[1:] != pcol[:-1]
            starts = np.flatnonzero(cnew)
            cindex = _run_index(cnew)  # each pair's cell
            del cnew
            pcol, snew = pcol[starts], snew_all[starts]
            del snew_all
            uslot, seg = slot[starts][snew], _run_index(snew)
        else:
            new = np.empty(len(slot), bool)
            new[:1] = True
            np.not_equal(slot[1:], slot[:-1], out=new[1:])
            uslot, seg = slot[new], _run_index(new)  # slot is sorted: its runs are the distinct slots
        del slot
        f = {"hent": hent, "hslot": rows[hent] * int(heavy.sum()) + hcol, "seg": seg.reshape(-1), "uslot": uslot}
        if k == 0:
            # term 0 has no earlier fill: L_D0[e] = A_D0[e] λ L_c^{-T}, so the pair product L_D0[e1] L_D0[e2]' is
            # A_D0[e1] V_c A_D0[e2]' with V_c = λ (λ' A_cc λ + I)^{-1} λ', linear in the s × s matrix V_c of the
            # column: the products of A's entries are prepared here, and the objective gathers V.
            # V_c depends on the level only through A_cc, so with ``merge`` levels with equal A_cc share it (InstEval:
            # 2,972 students, 86 distinct counts): the pairs of one slot whose columns share A_cc are summed into one
            # product, gathered from the first such level (InstEval: 1,286,575 pairs become 831,629).
            s2 = t.s * t.s
            # built transposed (s² contiguous columns for the sums), from the light entries' columns of A_D0
            aT = np.ascontiguousarray(ADk[light].T)
            g1, g2 = [np.take(aT[u], i1) for u in range(t.s)], [np.take(aT[v], i2) for v in range(t.s)]
            del i1, i2  # free them before the merge's temporaries (ml1m: 25 million pairs)
            PT = np.empty((s2, len(g1[0])))
            for u in range(t.s):
                for v in range(t.s):
                    np.multiply(g1[u], g2[v], out=PT[u * t.s + v])
            del g1, g2
            P = PT.T
            del PT
            f["pcol"], f["P"] = pcol, _sums(cindex, P, len(starts))  # seg: each cell's slot run
            p0 = None if merge else (e1, e2, cindex)
            del P, starts
            # likewise the G block L_X0[c] L_D0[e]' = A_X0[c] V_c A_D0[e]', summed per row of D over the entries whose
            # columns share A_cc (InstEval: 73,421 entries become 28,474)
            if len(rows) * (p + 1) * s2 <= PRODUCT_CAP:
                # built transposed, so that each column the merge sums is contiguous
                QT = np.take(np.ascontiguousarray(AX[0].transpose(1, 2, 0)), cols, axis=2)  # (p+1, s, entries)
                if t.s == 1:
                    QT = QT.reshape(p + 1, len(rows))
                    QT *= ADk[:, 0]  # in place: a scalar term's product needs no broadcast temporary
                else:
                    QT = (QT[:, :, None, :] * np.ascontiguousarray(ADk.T)).reshape((p + 1) * s2, len(rows))
                Q = QT.T
                del QT
                qrow, qcol, Q, q0_index = _merge(rows, rep[cols], t.nlevels, Q)
                Q0 = (Q.reshape(-1, p + 1, s2), qrow, qcol)
                products = True
            del seg
        else:
            f["e1"], f["e2"] = e1, e2
            del seg, i1, i2
        fills.append(Fill(**f))
        nheavy.append(int(heavy.sum()))

    # the dense block D = [Z_D X y]'[Z_D X y]
    if dz:
        # Z_D'Z_D and Z_D'[X y] by sums over the rows' nonzeros (each row has one per column of the terms in D)
        flat = (drow[:, :, None] * dz + drow[:, None, :]).reshape(-1)
        ZZ = np.bincount(flat, weights=(zD[:, :, None] * zD[:, None, :]).reshape(-1), minlength=dz * dz)
        ZZ = ZZ.reshape(dz, dz)  # one dz × dz temporary, as a sparse product's dense result would be
        del flat
        ZX = np.concatenate([sum_by_row(drow, zD if sw is None else zD * sw[:, None], design.X, dz, design.xgroups),
                             sum_by_row(drow, zD, Xy[:, -1:], dz)], axis=1)
        ADD = np.block([[ZZ, ZX], [ZX.T, Xy.T @ Xy]])
    else:
        ADD = Xy.T @ Xy
    layout = Layout(terms=tuple(tl), m=m, nheavy=tuple(nheavy), npairs=tuple(npairs), products=products, dz=dz, p=p,
                    n=n, ntheta=toff)
    q0 = Q0 if products else (None, None, None)
    arrays = Arrays(Akk=tuple(Akk), Ajk=tuple(tuple(r) for r in Ajk), maps=tuple(tuple(r) for r in mapsT),
                    AX=tuple(AX), AD=tuple(AD), Drow=tuple(Drow), Dcol=tuple(Dcol), tgt=tuple(tuple(r) for r in tgt),
                    fill=tuple(fills), ADD=ADD, Q0=q0[0], Q0row=q0[1], Q0col=q0[2],
                    log_yscale2=np.float64(2 * np.log(yscale)),  # y was divided by this scale on the host
                    log_wdet=np.float64(np.sum(np.log(w))))
    plan = Plan(codes=tuple(terms[k].codes for k in range(m)), ad_entry=tuple(ad_entry), drow=drow,
                p0_e1=None if p0 is None else p0[0], p0_e2=None if p0 is None else p0[1],
                p0_index=None if p0 is None else p0[2], q0_index=q0_index if products else None)
    return layout, _int32(arrays), _int32(plan), yscale


def _int32(tree):
    """Every index array as int32 where its values fit (the objective gathers and scatters with them as they are;
    see core/indexing.py), else int64 (the heavy columns' flat slots of a huge W)."""
    def conv(x):
        if isinstance(x, np.ndarray) and x.dtype.kind in "iu":
            fits = not x.size or (x.min() >= 0 and x.max() < 2**31)
            return x.astype(np.int32 if fits else np.int64)
        return x

    return jax.tree_util.tree_map(conv, tree)
