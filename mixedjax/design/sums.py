"""Sums over the rows of each level (host numpy): the Gram blocks and cross products the design checks and the
block plan need, by ``np.bincount`` (no scipy on the fit's path).

When the right factor's rows take few distinct values (X of factor columns: InstEval's 28 columns have 28
distinct rows in 73,421), the rows are first summed per (level, group) cell and then multiplied by the distinct
rows, so the work over the n rows is one bincount per left column instead of one per pair of columns.
"""

from __future__ import annotations

import numpy as np

# Most (level, group) cells for the grouped sum, relative to the rows: beyond it the cell table costs more than it saves.
CELLS_PER_ROW = 4


def sum_by_level(codes: np.ndarray, left: np.ndarray, right: np.ndarray, nlev: int,
                 right_groups: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """S[c] = Σ_{i: codes[i] = c} left[i] right[i]'  → (nlev, left.shape[1], right.shape[1]).

    ``right_groups`` (group, rep): right's rows are equal within each group (right[i] = right[rep[group[i]]]).
    """
    a, b = left.shape[1], right.shape[1]
    n = len(codes)
    if right_groups is not None and nlev * len(right_groups[1]) <= CELLS_PER_ROW * max(n, 1024):
        group, rep = right_groups
        G = len(rep)
        cell = codes.astype(np.int64) * G + group
        C = np.stack([np.bincount(cell, weights=left[:, i], minlength=nlev * G) for i in range(a)], axis=1)
        # one 2-D product: numpy's stacked matmul over tiny (a × G) matrices is several times slower
        C = C.reshape(nlev, G, a).transpose(0, 2, 1).reshape(nlev * a, G)
        return (C @ right[rep]).reshape(nlev, a, b)
    out = np.empty((nlev, a, b))
    for i in range(a):
        for j in range(b):
            out[:, i, j] = np.bincount(codes, weights=left[:, i] * right[:, j], minlength=nlev)
    return out


def sum_by_row(rows: np.ndarray, left: np.ndarray, right: np.ndarray, nrows: int,
               right_groups: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """S[r] = Σ_{i, a: rows[i, a] = r} left[i, a] right[i]  → (nrows, right.shape[1]): Z'R for a Z with one nonzero
    left[i, a] in column rows[i, a] of each row i and each a (the random-effect columns of the dense block)."""
    if left.shape[1] == 1:
        return sum_by_level(rows[:, 0], left, right, nrows, right_groups)[:, 0, :]
    return sum(sum_by_level(rows[:, a], left[:, a : a + 1], right, nrows, right_groups)[:, 0, :]
               for a in range(left.shape[1]))
