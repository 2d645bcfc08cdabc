"""From formula and data to host arrays: y, X, and one term object per random-effects term.

Plain numpy/pandas; done once per model. Nothing here depends on θ.
"""

from __future__ import annotations

import collections
import functools

import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError, mark_formula, mark_position
from ..formula.evaluate import run
from ..formula.expand import expand
from ..formula.language import Checked, compile_expression, names_used
from ..formula.parse import ParsedFormula, RandomTerm, parse_formula
from ..formula.terms import Atoms, ModelFormula, read_model
from ..formula.values import Factor, Matrix, level_name, missing_values
from .encode import Encoding, PartEncoding, TermEncoding, fit_atoms, part_matrix
from .model_matrix import CONTRASTS, INDICATORS
from .input import as_frame, select_columns
from .sums import sum_by_level
from .weights import check_offset, check_weights, row_values

_HIDDEN = "\x00mixedjax:"  # prefix of columns carried alongside the data's (no user column starts with NUL)


@dataclass(frozen=True, eq=False)
class Term:
    """A random-effects term after merging every term on the same grouping factor.

    ``pattern`` lists the free entries (row, col) of the lower-triangular λ in θ order (column by column).
    """

    name: str  # grouping factor, e.g. "subj" or "batch:cask"
    levels: tuple[str, ...]
    codes: np.ndarray  # (n,) int level index of each row
    z: np.ndarray  # (n, s) model values of the term's columns
    columns: tuple[str, ...]
    pattern: tuple[tuple[int, int], ...]
    correlated: bool  # False when λ has structurally-zero off-diagonal entries everywhere (``||``)
    # the levels as the data hold them (integers stay integers), for ranef's index and for matching new data by
    # value; a combination of several variables is its ``levels`` text ("A:a"). Empty: use ``levels``.
    values: tuple = ()

    @property
    def s(self) -> int:
        return self.z.shape[1]

    @property
    def level_values(self) -> tuple:
        """The levels as values of the data's column (see ``values``)."""
        return self.values if self.values else self.levels

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    @property
    def ntheta(self) -> int:
        return len(self.pattern)

    def column_scale(self) -> np.ndarray:
        """Per column of z: 1 for columns of ordinary size (root mean square in [1e-2, 1e2]), else the rms.

        λ's row j scales by 1 / column_scale[j] when z's column j is multiplied by it, so θ / theta_scale() is
        free of the units of the columns: the fit of a slope on a covariate of size 1e50 is the fit on the
        covariate of size 1 (docs/design.md, section 4: the optimiser runs in these coordinates).
        """
        rms = np.sqrt(np.mean(self.z**2, axis=0)) if len(self.z) else np.ones(self.s)
        ordinary = (rms >= 1e-2) & (rms <= 1e2) | (rms == 0) | ~np.isfinite(rms)
        return np.where(ordinary, 1.0, rms)

    def theta_scale(self) -> np.ndarray:
        """Scale of each θ entry (r, c): 1 / column_scale[r]; all ones for columns of ordinary size."""
        cs = self.column_scale()
        return np.array([1.0 / cs[r] for r, _ in self.pattern])

    def theta0(self) -> np.ndarray:
        """λ = I for columns of ordinary size; λ = diag(1 / column_scale) in general (invariant to units)."""
        scale = self.theta_scale()
        return np.array([scale[i] if r == c else 0.0 for i, (r, c) in enumerate(self.pattern)])


@dataclass(frozen=True, eq=False)
class Design:
    formula: ParsedFormula
    y: np.ndarray
    X: np.ndarray
    xnames: tuple[str, ...]
    dropped_columns: tuple[str, ...]
    terms: tuple[Term, ...]  # in the order of docs/design.md section 3: ℓ_k s_k descending
    n_dropped: int  # rows dropped for missing values
    rows: np.ndarray  # index labels of the rows used
    offset: np.ndarray | None = None  # (n,) the formula's offset(...) terms plus offset=, rows as y; None without
    encoding: Encoding | None = None  # how the fit encoded its data, to encode new data alike (design.encode_new)
    weights: np.ndarray | None = None  # (n,) prior weights (residual variance σ²/wᵢ); None for all ones
    offset_given: bool = False  # offset= was passed (new data cannot have it: predict refuses)
    xgroups: tuple[np.ndarray, np.ndarray] | None = None  # (group of each row, one row of each): X's equal rows

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def p(self) -> int:
        return self.X.shape[1]


class _Columns:
    """The formula's columns read as a DataFrame is read by the formula language and the grouping factors
    (``columns``, ``[name]``, ``len``, ``index``, ``assign``), without building one: pandas' DataFrame of three
    Series cost 0.2 ms of sleepstudy's 3.5 ms design. Used while every row is kept and no hidden column is added."""

    def __init__(self, series: dict, index: pd.Index):
        self._series, self.index, self.columns = series, index, tuple(series)

    def __getitem__(self, name: str) -> pd.Series:
        return self._series[name]

    def __len__(self) -> int:
        return len(self.index)

    def assign(self, **values) -> "_Columns":
        """DataFrame.assign: a Series as it is, an array as a Series on these rows."""
        new = {c: v if isinstance(v, pd.Series) else pd.Series(v, index=self.index, name=c) for c, v in values.items()}
        return _Columns({**self._series, **new}, self.index)


class _Parts(NamedTuple):
    """The formula read by the formula language, before any data are touched."""

    atoms: Atoms
    response: Checked
    fixed: ModelFormula
    random: tuple[ModelFormula, ...]  # one per RandomTerm of the ParsedFormula
    offsets: tuple[Checked, ...]


@contextmanager
def _reading(formula: str, part: str, start: int = 0):
    """A FormulaError while reading ``part`` says where the part is in the formula."""
    try:
        yield
    except (FormulaError, DataError) as err:
        if "\n" in str(err) and formula in str(err):
            raise  # already marked
        # the same class (an unknown function is both a FormulaError and a DataError), the reason kept
        raise type(err)(f"{err}\n{mark_formula(formula, part, start)}") from (err.__cause__ or err)


@functools.lru_cache(maxsize=256)
def _read_parts(pf: ParsedFormula, rhs0: int) -> _Parts:
    """Every expression of the formula through the allow-list (a FormulaError names what is not allowed). Kept per
    parsed formula: nothing reads the parts but to evaluate them (errors are raised again: lru_cache keeps none)."""
    text, atoms = pf.text, Atoms()
    with _reading(text, pf.response):
        response = compile_expression(pf.response)

    def model(spec: str, part: str, where: str) -> ModelFormula:
        with _reading(text, part, rhs0):
            mf = read_model(spec, atoms, where)
        try:
            expand(mf.placeholder)
        except FormulaError as err:
            raise FormulaError(
                f"cannot read '{spec}': {err}\n{mark_formula(text, part, rhs0)}\n"
                "Use lme4 syntax: terms joined by '+', interactions with '*' or ':', functions like I(x^2) or "
                "factor(f)."
            ) from err
        return mf

    fixed = model(pf.fixed, pf.fixed, "the fixed part")
    random = tuple(model(rt.expr, rt.source, f"the random-effects term '{rt.source}'") for rt in pf.random)
    offsets = []
    for o in pf.offsets:
        with _reading(text, f"offset({o})", rhs0):
            offsets.append(compile_expression(o))
    return _Parts(atoms, response, fixed, random, tuple(offsets))


def _names(atoms: Atoms, model: ModelFormula) -> set[str]:
    by_key = {a.key: a for a in atoms.all()}
    return set().union(*(names_used(by_key[k].checked.tree) for k in model.atoms)) if model.atoms else set()


def _model_matrix(model: ModelFormula, av, formula: str, part: str, start: int = 0):
    """The model matrix of one part from the evaluated atoms: (values, lme4 column names, R's term codings)."""
    with _reading(formula, part, start):
        return part_matrix(model, av)


def _evaluated(checked: Checked, full: pd.DataFrame, complete: np.ndarray, what: str, formula: str, part: str,
               start: int = 0):
    """A numeric expression (the response, an offset) on the rows used, with its recorded state."""
    with _reading(formula, part, start):
        value, recorded = run(checked, full)
    if isinstance(value, Matrix) and value.values.shape[1] == 1:
        value = value.values[:, 0]
    if isinstance(value, Matrix):
        raise DataError(
            f"{what} '{part}' must be one numeric column; it gives {value.values.shape[1]} columns.\n"
            f"{mark_formula(formula, part, start)}\nUse a numeric column or an arithmetic expression of one."
        )
    if isinstance(value, (Factor, str)):
        dtype = f" (dtype {full[part].dtype})" if part in full.columns else ""
        raise DataError(
            f"{what} '{part}' must be numeric; it is text or a factor{dtype}.\n{mark_formula(formula, part, start)}"
            "\nConvert it with pandas.to_numeric, or choose a numeric column."
        )
    # a logical response or offset is 0 / 1, as R's model.response gives it to lmer
    return np.asarray(value, dtype=np.float64)[complete], recorded


def _independent_columns(X: np.ndarray, tol: float = 1e-7, groups=False) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a maximal set of linearly independent columns, keeping earlier columns first (as lme4 does),
    and an orthonormal basis Q of their span (n × rank).

    Fixed-effect matrices of factors have few distinct rows (InstEval's service * dept: 28 in 73,421), so the
    columns are judged on the distinct rows, each scaled by √(its count): that matrix has the same inner products
    between columns as X, hence the same dependencies and the same residual norms, exactly.
    """
    n, p = X.shape
    if groups is False:  # not given: ``_row_groups(X)`` or None
        groups = _row_groups(X) if n > 2 * p else None
    if groups is None:
        return _independent_columns_of(X, tol)
    group, rep = groups
    sw = np.sqrt(np.bincount(group, minlength=len(rep)))
    keep, Qc = _independent_columns_of(sw[:, None] * X[rep], tol)
    return keep, (Qc / sw[:, None])[group]


def _groups_of_key(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Groups of equal values of an integer key, numbered by first appearance (as ``_row_groups`` numbers them):
    (group of each row, the last row of each group)."""
    group, uniq = pd.factorize(key)
    rep = np.empty(len(uniq), dtype=np.int64)
    rep[group] = np.arange(len(key))
    return group.astype(np.int64), rep


def _combined_codes(codes: list[np.ndarray], sizes: list[int]) -> np.ndarray | None:
    """One integer per row for a combination of level codes (mixed radix), or None when it would not fit int64."""
    key, total = np.zeros(len(codes[0]) if codes else 0, dtype=np.int64), 1
    for c, size in zip(codes, sizes):
        total *= max(size, 1)
        if total >= 2**62:
            return None
        key = key * max(size, 1) + c
    return key


def _factor_row_groups(X: np.ndarray, xterms, values: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """``_row_groups(X)`` when every column of X is a function of factors (indicators, contrasts, the intercept):
    rows with the same codes are equal, so the codes group them without comparing rows, and a check that the
    groups' rows differ from each other makes the groups X's groups of equal rows exactly."""
    if any(c != CONTRASTS and c != INDICATORS for t in xterms for c in t.codings):
        return _row_groups(X)
    keys = sorted({k for t in xterms for k in t.keys})
    key = _combined_codes([values[k].codes for k in keys], [len(values[k].levels) for k in keys]) if keys else \
        np.zeros(len(X), dtype=np.int64)
    if key is None:
        return _row_groups(X)
    group, rep = _groups_of_key(key)
    n = len(X)
    if len(rep) > n // 2:
        return _row_groups(X)
    h = X[rep] @ np.random.default_rng(20261201).uniform(1.0, 2.0, X.shape[1])
    if len(pd.unique(h)) != len(rep):  # two combinations give equal rows (or the projection cannot tell)
        return _row_groups(X)
    return group, rep


def _row_groups(*blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows that are equal in every block (2-D arrays or 1-D codes, n rows each): (group of each row, one row of
    each group), or None when the rows do not compress (more than n / 2 groups).

    Rows are grouped by one random projection of their values and each group is then checked to hold equal rows
    only, so a group never mixes different rows; equal rows split over two groups would only cost speed.
    """
    n = len(blocks[0])
    rng = np.random.default_rng(20261201)
    h = np.zeros(n)
    for b in blocks:
        b2 = b.reshape(n, -1)
        h += b2 @ rng.uniform(1.0, 2.0, b2.shape[1])
    group, uniq = pd.factorize(h)
    k = len(uniq)
    if k > n // 2:
        return None
    rep = np.empty(k, dtype=np.int64)
    rep[group] = np.arange(n)  # any row of each group
    for b in blocks:
        b2 = b.reshape(n, -1)
        u = b2[rep]
        # column by column: a column gather is contiguous, a row gather of a Fortran-ordered X is not
        if not all(np.array_equal(b2[:, j], u[:, j][group]) for j in range(b2.shape[1])):
            return None  # two different rows projected to the same value: use the rows as they are
    return group.astype(np.int64), rep


def _independent_columns_of(X: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """``_independent_columns`` on the rows as given: classical Gram-Schmidt with reorthogonalisation, after a
    Cholesky QR fast path for clearly independent columns."""
    n, p = X.shape
    norms = np.linalg.norm(X, axis=0)
    if 0 < p <= n and np.all(norms > 0):
        # fast path for clearly independent columns: Cholesky QR, twice (CholQR2). L_jj of the Gram matrix of the
        # unit-norm columns is the norm of column j orthogonal to the earlier ones; accept only when every one is
        # far above tol (so round-off in the Gram matrix cannot matter), else do Gram-Schmidt column by column.
        Q1 = X / norms
        try:
            L1 = np.linalg.cholesky(Q1.T @ Q1)
            if np.all(np.diagonal(L1) > max(1e-4, 10 * tol)):
                Q1 = Q1 @ np.linalg.inv(L1).T
                L2 = np.linalg.cholesky(Q1.T @ Q1)
                return np.arange(p), Q1 @ np.linalg.inv(L2).T
        except np.linalg.LinAlgError:
            pass
    X = np.asfortranarray(X)
    Q = np.empty((n, min(n, p)), order="F")
    keep: list[int] = []
    for j in range(p):
        x = X[:, j]
        nx = np.linalg.norm(x)
        if nx == 0 or len(keep) == Q.shape[1]:
            continue
        Qk = Q[:, : len(keep)]
        r = x - Qk @ (Qk.T @ x)
        r -= Qk @ (Qk.T @ r)  # second pass for stability
        nr = np.linalg.norm(r)
        if nr > tol * nx:
            Q[:, len(keep)] = r / nr
            keep.append(j)
    return np.array(keep, dtype=int), Q[:, : len(keep)]


def _group_codes(data: pd.DataFrame, group: tuple[str, ...]):
    """Integer codes, level names and level values of a grouping factor (a combination when several variables)."""
    codes_list, levels_list, values_list = [], [], []
    for v in group:
        col = data[v]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = np.asarray(col.cat.codes, dtype=np.int64)
            if not np.bincount(codes[codes >= 0], minlength=len(col.cat.categories)).all():
                col = col.cat.remove_unused_categories()  # (pandas' copy of the column only when needed)
                codes = np.asarray(col.cat.codes, dtype=np.int64)
            codes_list.append(codes)
            values_list.append(col.cat.categories.tolist())  # Python scalars (np.int64(3) -> 3)
        else:
            c, u = pd.factorize(col, sort=True)
            codes_list.append(np.asarray(c, dtype=np.int64))
            u = [_plain(x) for x in u]
            if u and all(isinstance(x, float) and x.is_integer() for x in u):
                u = [int(x) for x in u]  # integer ids in a float column (a missing id makes pandas' ints floats)
            values_list.append(u)
        vals = values_list[-1]
        text = all(type(x) is str for x in vals)  # text levels are their own names (InstEval: 4,100 of them)
        levels_list.append(vals if text else [level_name(x) for x in vals])  # as R prints them: 5, not 5.0; TRUE
    if len(group) == 1:
        return codes_list[0], tuple(levels_list[0]), tuple(values_list[0])
    sizes = [len(v) for v in values_list]
    key = _combined_codes(codes_list, sizes)  # mixed radix: its numeric order is the rows' lexicographic order
    total = int(np.prod(sizes, dtype=np.float64))
    if key is not None and total <= 4 * len(key) + 1024:
        # the combinations that occur, in order, by a bincount over all of them (np.unique(axis=0) sorts rows)
        present = np.bincount(key, minlength=total) > 0
        codes = (np.cumsum(present) - 1)[key]
        uniq = np.stack(np.unravel_index(np.flatnonzero(present), sizes), axis=1)
    else:
        uniq, codes = np.unique(np.stack(codes_list, axis=1), axis=0, return_inverse=True)
    levels = tuple(":".join(levels_list[i][k] for i, k in enumerate(row)) for row in uniq.tolist())
    return codes.reshape(-1).astype(np.int64), levels, levels


def _plain(x):
    """A numpy scalar as the Python value (np.int64(3) -> 3), so an index of levels holds the data's values."""
    return x.item() if isinstance(x, np.generic) else x


def _lower_pattern(offset: int, s: int) -> list[tuple[int, int]]:
    return [(offset + r, offset + c) for c in range(s) for r in range(c, s)]


def _mark_name(formula: str, part: str, start: int, name: str) -> str:
    """Mark ``name`` as a whole word inside ``part`` (found at or after ``start``), else the whole part."""
    i = formula.find(part, start)
    if i < 0:
        i = start
    for m in re.finditer(rf"(?<![\w.`]){re.escape(name)}(?![\w.`])|`{re.escape(name)}`", formula[i:]):
        return mark_position(formula, i + m.start(), m.end() - m.start())
    return mark_formula(formula, part, start)


_NUMBER_KINDS = ("floating", "integer", "mixed-integer-float", "decimal")
_CONSTANT_NAMES = {"pi", "T", "F"}  # names the formula language knows when no column has them
_NUMERIC_KINDS = _NUMBER_KINDS + ("boolean",)


def _numeric_values(col: pd.Series) -> np.ndarray | None:
    """The column as float64 when it holds numbers (or booleans), else None."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return None
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=np.float64)
    if col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) in _NUMERIC_KINDS:
        return col.to_numpy(dtype=np.float64)
    return None


def _first_bad(rows: np.ndarray, labels) -> str:
    k = int(rows.sum())
    first = labels[np.flatnonzero(rows)[0]]
    return f"{k} row{'s' if k > 1 else ''} (the first has index {first!r})"


def _check_finite(values: np.ndarray, what: str, labels, formula: str, part: str, start: int = 0) -> None:
    bad = ~np.isfinite(values)
    if bad.ndim > 1:
        bad = bad.any(axis=1)
    if bad.any():
        raise DataError(
            f"{what} has NaN or infinite values in {_first_bad(bad, labels)}.\n{mark_formula(formula, part, start)}\n"
            "Remove or recode those rows (missing values, NaN or None, are dropped automatically; "
            "infinite ones and those a transformation like log() creates are not)."
        )


def _span_residual(Q: np.ndarray, y: np.ndarray, groups=None) -> np.ndarray:
    """y − QQ'y for an orthonormal Q, projected twice so that the residual is accurate when it is tiny.
    ``groups`` (group, rep): Q's rows are equal within each group, so Q'y is a product with y's group sums and
    QQ'y a gather of the groups' values (no pass over the n × rank matrix)."""
    if groups is None:
        r = y - Q @ (Q.T @ y)
        return r - Q @ (Q.T @ r)
    group, rep = groups
    Qg = Q[rep]

    def projected(v):
        return (Qg @ (Qg.T @ np.bincount(group, weights=v, minlength=len(rep))))[group]

    r = y - projected(y)
    return r - projected(r)


def _exact_fit(term: "Term", X: np.ndarray, y: np.ndarray, tol: float, xgroup: np.ndarray | None = None) -> bool:
    """Is y (numerically) in the span of [X Z_k]: ‖(I − P)y‖ ≤ tol ‖y‖ for the projection P on that span?

    Rows equal in X, in the level and in z span the same group indicator, and [X Z_k] lies in the span of these
    indicators; so ‖(I − P)y‖² = Σ (y − its group mean)² + the same residual for the group means (each row
    scaled by √(its count)), and the first sum alone, cheap and exact, rules out most models. ``xgroup``: the
    groups of equal rows of X when known (rows in one group are equal in X, so they stand for X's columns).
    """
    ymax = np.max(np.abs(y))
    if ymax == 0:
        return True  # y = 0 lies in every span
    y = y / ymax  # the decision does not depend on y's units; squares of 1e200 would overflow
    bound = tol * np.linalg.norm(y)
    if xgroup is not None and np.all(term.z == term.z[:1]):
        # z the same on every row (an intercept): the groups are those of (X's group, level), integers compared
        # exactly (the rows split as ``_row_groups`` splits them, numbered alike)
        key = _combined_codes([xgroup, term.codes], [int(xgroup.max()) + 1, term.nlevels])
        groups = _groups_of_key(key) if key is not None else _row_groups(xgroup, term.codes, term.z)
        if len(groups[1]) > len(y) // 2:
            groups = None
    else:
        groups = _row_groups(X if xgroup is None else xgroup, term.codes, term.z)
    if groups is None:
        return bool(np.linalg.norm(_fit_residual(term.codes, term.z, X, y, term.nlevels)) <= bound)
    group, rep = groups
    count = np.bincount(group, minlength=len(rep)).astype(float)
    ybar = np.bincount(group, weights=y, minlength=len(rep)) / count
    within = y - ybar[group]
    within2 = float(within @ within)
    if within2 > bound**2:
        return False
    sw = np.sqrt(count)
    between = _fit_residual(term.codes[rep], sw[:, None] * term.z[rep], sw[:, None] * X[rep], sw * ybar,
                            term.nlevels)
    return bool(within2 + float(between @ between) <= bound**2)


def _fit_residual(codes: np.ndarray, z: np.ndarray, X: np.ndarray, y: np.ndarray, nlev: int) -> np.ndarray:
    """(I − P)y for the projection P on the span of [X Z]: Z (levels × columns of z) is projected out level by
    level, then X."""
    Xy = np.column_stack([X, y])
    G = sum_by_level(codes, z, z, nlev)
    B = sum_by_level(codes, z, Xy, nlev)
    if z.shape[1] == 1:  # the pseudo-inverse of a 1 × 1 Gram matrix, without a batched SVD
        g = G[:, 0, 0]
        W = np.divide(B, g[:, None, None], out=np.zeros_like(B), where=g[:, None, None] > 0)
    else:
        W = np.linalg.pinv(G) @ B  # (ℓ, s, p+1)
    R = Xy.copy()
    for a in range(z.shape[1]):
        R -= z[:, a : a + 1] * W[codes, a, :]
    _, Q = _independent_columns(R[:, :-1])
    return _span_residual(Q, R[:, -1])


def _confounded(term: "Term", Q: np.ndarray, qgroups=None) -> bool:
    """Does every column of Z_k (one per level and term column) lie in the span of X (orthonormal basis Q)?

    ‖(I − QQ')z‖² = ‖z‖² − ‖Q'z‖², with Q'Z_k formed by sums over the rows of each level.
    """
    if Q.shape[1] == 0:
        return False
    znorm2 = np.stack([np.bincount(term.codes, weights=term.z[:, a] ** 2, minlength=term.nlevels)
                       for a in range(term.s)], axis=1)
    qz = sum_by_level(term.codes, term.z, Q, term.nlevels, qgroups)
    resid2 = znorm2 - np.sum(qz**2, axis=-1)
    return bool(np.all(resid2 <= 1e-10 * np.maximum(znorm2, 1e-300)))


def build_design(formula, data, *, weights=None, offset=None, residual: bool = True) -> Design:
    """The design of an lme4 formula on the data; ``weights`` and ``offset``: None, a column name or one value per
    row (see design/weights.py). Rows with zero weight carry no information and are dropped with the missing ones.
    ``residual=False`` (GLMMs: no residual variance) skips the checks that the random effects and the fixed effects
    leave a residual variance to estimate."""
    pf = parse_formula(formula)
    text = pf.text
    rhs0 = text.find("~") + 1  # mark parts of the right-hand side there, not in the response
    data = as_frame(data, numpy=False)  # the columns the formula uses are converted once selected
    if data.shape[0] == 0:
        raise DataError("the data have no rows; pass the table of observations the model is fitted to")

    # which columns each part of the formula needs, checked before any computation
    columns = set(map(str, data.columns))
    # (what, part of the formula, columns, where to mark it, grouping factor?)
    parts: list[tuple[str, str, set[str], int, bool]] = []

    read = _read_parts(pf, rhs0)

    def need(what, names, part, extra=(), start=rhs0, grouping=False):
        names = set(names) | set(extra)
        have = names & columns
        missing = {m for m in names - columns if m not in _CONSTANT_NAMES}
        if missing:
            miss = sorted(missing)
            avail = ", ".join(map(str, data.columns[:20])) + (", ..." if data.shape[1] > 20 else "")
            head = f"{'columns' if len(miss) > 1 else 'column'} {', '.join(repr(m) for m in miss)} "
            head += f"{'are' if len(miss) > 1 else 'is'} not found in the data"
            raise DataError(
                f"{head} (used in {what} '{part}').\n"
                f"{_mark_name(text, part, start, miss[0])}\nAvailable columns: {avail}."
            )
        parts.append((what, part, have, start, grouping))

    need("the response", names_used(read.response.tree), pf.response, start=0)
    need("the fixed effects", _names(read.atoms, read.fixed), pf.fixed)
    for arg, checked in zip(pf.offsets, read.offsets):
        need("the offset", names_used(checked.tree), f"offset({arg})")
    for rt, mf in zip(pf.random, read.random):
        need("the random-effects term", _names(read.atoms, mf), rt.source)
        need("the random-effects term", (), rt.source, rt.group, grouping=True)
    used = sorted(set().union(*(cols for _, _, cols, _, _ in parts)))
    names = [str(c) for c in data.columns]
    counts = collections.Counter(names)
    dup = [c for c in used if counts[c] > 1]
    if dup:
        raise DataError(
            f"the data have more than one column named {', '.join(repr(c) for c in dup)}; "
            "rename them so that each name the formula uses is unique."
        )
    position = {c: j for j, c in enumerate(names)}
    selected = select_columns(data, [position[c] for c in used], used)
    # prior weights and offset given as arguments: carried as hidden columns so missing values drop their rows
    extra = {"weights": row_values(weights, data, "weights"), "offset": row_values(offset, data, "offset")}
    hidden_values = {_HIDDEN + key: values.to_numpy() for key, values in extra.items() if values is not None}
    df = _Columns(selected, data.index)  # a frame is made only where rows or hidden columns are dropped below
    if hidden_values:
        df = pd.DataFrame(selected, copy=False).assign(**hidden_values)

    # missing values: drop the rows, count them
    # each column's Series once (pandas' iloc is slow): the selected ones as they are
    series = dict(selected) if not hidden_values else {c: df.iloc[:, j] for j, c in enumerate(df.columns)}
    missing = {c: missing_values(col) for c, col in series.items()}
    complete = ~np.logical_or.reduce([np.zeros(len(df), bool), *missing.values()])
    if not complete.all() and isinstance(df, _Columns):
        df = pd.DataFrame(selected, copy=False)
    if extra["weights"] is not None:
        w_all = extra["weights"].to_numpy()
        check_weights(w_all[complete])
        complete &= w_all != 0  # zero weight: no information; dropped and counted with the missing rows
    n_dropped = int((~complete).sum())
    if not complete.any():
        per = ", ".join(f"{c}: {int(k.sum())}" for c, k in missing.items() if k.any())
        raise DataError(
            f"no rows left after dropping the {n_dropped} rows with a missing value in the columns the formula "
            f"uses (missing per column: {per}).\nFill in or drop the columns with missing values."
        )
    hidden = [_HIDDEN + key for key, values in extra.items() if values is not None]
    w_arg = df.loc[complete, _HIDDEN + "weights"].to_numpy(float) if extra["weights"] is not None else None
    off_arg = df.loc[complete, _HIDDEN + "offset"].to_numpy(float) if extra["offset"] is not None else None
    if off_arg is not None:
        check_offset(off_arg)
    if hidden:
        df = df.drop(columns=hidden)
    full = df
    if not complete.all():
        df = df.loc[complete]
    # levels that no longer occur (or never did) are not levels of the model
    grouping_only = set(used) - set().union(*(cols for _, _, cols, _, grp in parts if not grp))
    changed = {}
    if not complete.all() or hidden:
        series = {c: df.iloc[:, j] for j, c in enumerate(df.columns)}  # the rows (and columns) kept
    for c, col in series.items():
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy()
            if not np.bincount(codes[codes >= 0], minlength=len(col.cat.categories)).all():
                changed[c] = col.cat.remove_unused_categories()
        elif col.dtype == object and c not in grouping_only:
            # an object column holding only numbers (e.g. after None was stored in it) is numeric, not a factor
            if pd.api.types.infer_dtype(col, skipna=True) in _NUMBER_KINDS:
                changed[c] = col.to_numpy(dtype=np.float64)
    if changed:
        df = df.assign(**changed)
        series.update({c: df[c] for c in changed})
    labels = df.index

    # infinite values in a column the formula uses, named before any model matrix is built
    for what, part, cols, start, grp in parts:
        if grp:
            continue  # any value, infinite ones included, is a level
        for c in sorted(cols):
            v = _numeric_values(series[c])
            if v is not None and np.isinf(v).any():
                raise DataError(
                    f"column '{c}' (used in {what} '{part}') has infinite values in "
                    f"{_first_bad(np.isinf(v), labels)}.\n{mark_formula(text, part, start)}\n"
                    "Remove or recode those rows; missing values (NaN, None) are dropped automatically."
                )

    # every atom of the terms, evaluated on all rows (state such as scale()'s centre as R computes it)
    av, states = fit_atoms(read.atoms.all(), full, complete, lambda atom: _reading(text, atom.checked.text, rhs0))

    # response
    y, _ = _evaluated(read.response, full, complete, "the response", text, pf.response)
    _check_finite(y, f"the response '{pf.response}'", labels, text, pf.response)
    if np.ptp(y) == 0:
        raise DataError(
            f"the response '{pf.response}' is constant ({y[0]:g} in all {len(y)} rows used); there is nothing to "
            f"model.\n{mark_formula(text, pf.response)}\nChoose a response that varies."
        )

    # offsets: they add up; not columns of X
    offset, offset_states = None, []
    for o, checked in zip(pf.offsets, read.offsets):
        value, recorded = _evaluated(checked, full, complete, "the offset", text, f"offset({o})", rhs0)
        _check_finite(value, f"the offset 'offset({o})'", labels, text, f"offset({o})", rhs0)
        offset = value if offset is None else offset + value
        offset_states.append((checked, recorded))

    # fixed effects
    X, xnames, xterms = _model_matrix(read.fixed, av, text, pf.fixed, rhs0)
    if not np.isfinite(X).all():  # one pass over X; the column is named below
        for j, name in enumerate(xnames):
            _check_finite(X[:, j], f"the fixed-effect column '{name}'", labels, text, pf.fixed, rhs0)
    if X.shape[1] > len(y):
        raise DataError(
            f"the fixed part '{pf.fixed}' has {X.shape[1]} columns but there are only {len(y)} observations.\n"
            f"{mark_formula(text, pf.fixed, rhs0)}\n"
            "Simplify the fixed part (fewer terms or interactions), or use more data."
        )
    # equal rows of X, reused by the checks below
    xgroups = _factor_row_groups(X, xterms, av.values) if len(X) > 2 * X.shape[1] else None
    keep, Q = _independent_columns(X, groups=xgroups)
    fixed_encoding = PartEncoding(read.fixed, xterms, np.array(keep))
    dropped = tuple(xnames[j] for j in range(len(xnames)) if j not in set(keep.tolist()))
    if dropped:
        warnings.warn(
            f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
            f"column{'s' if len(dropped) > 1 else ''}: {', '.join(dropped)}",
            stacklevel=3,
        )
        X = X[:, keep]
        xnames = tuple(xnames[j] for j in keep)
    if X.shape[1] >= len(y):
        raise DataError(
            f"{X.shape[1]} independent fixed-effect columns for {len(y)} observations leave no residual degrees of "
            f"freedom.\n{mark_formula(text, pf.fixed, rhs0)}\nSimplify the fixed part '{pf.fixed}', or use more data."
        )
    ys = y / np.max(np.abs(y))  # in y's own units: the squares of a response of 1e200 would overflow
    if residual and np.linalg.norm(_span_residual(Q, ys, xgroups)) <= 1e-12 * np.linalg.norm(ys):
        raise DataError(
            f"the response '{pf.response}' is an exact linear combination of the fixed-effect columns "
            f"({', '.join(xnames)}): the residual variance would be zero.\n{mark_formula(text, pf.fixed, rhs0)}\n"
            "Remove the response (or what determines it) from the fixed part."
        )

    # random-effects terms, merged per grouping factor
    groups: dict[tuple[str, ...], list[tuple[RandomTerm, np.ndarray, tuple[str, ...]]]] = {}
    part_encodings: dict[tuple[str, ...], list[PartEncoding]] = {}
    for rt, mf in zip(pf.random, read.random):
        z, znames, zterms = _model_matrix(mf, av, text, rt.source, rhs0)
        part_encodings.setdefault(rt.group, []).append(PartEncoding(mf, zterms, np.arange(z.shape[1])))
        if z.shape[1] == 0:
            raise FormulaError(
                f"the random-effects term '{rt.source}' has no columns.\n{mark_formula(text, rt.source, rhs0)}\n"
                "Put at least one column before '|', e.g. '(1 | g)' or '(0 + x | g)'."
            )
        if not np.isfinite(z).all():
            for j, name in enumerate(znames):
                _check_finite(z[:, j], f"the column '{name}' of the random-effects term", labels, text, rt.source)
        groups.setdefault(rt.group, []).append((rt, z, znames))
    terms = []
    for group, members in groups.items():
        codes, levels, values = _group_codes(df, group)
        zs, names, pattern, off = [], [], [], 0
        for rt, z, znames in members:
            dup = set(znames) & set(names)
            if dup:
                raise FormulaError(
                    f"the column{'s' if len(dup) > 1 else ''} {', '.join(sorted(dup))} "
                    f"appear{'' if len(dup) > 1 else 's'} twice for grouping factor '{':'.join(group)}'.\n"
                    f"{mark_formula(text, rt.source, rhs0)}\n"
                    "Remove the repeated term."
                )
            zs.append(z)
            names.extend(znames)
            pattern.extend(_lower_pattern(off, z.shape[1]))
            off += z.shape[1]
        pattern.sort(key=lambda rc: (rc[1], rc[0]))
        s = off
        correlated = len(pattern) == s * (s + 1) // 2
        terms.append(
            Term(
                name=":".join(group),
                levels=levels,
                codes=codes,
                z=np.column_stack(zs),
                columns=tuple(names),
                pattern=tuple(pattern),
                correlated=correlated,
                values=values,
            )
        )
    sources = {}
    for rt in pf.random:
        sources.setdefault(rt.group_name, rt.source)
    n = len(y)
    for t in terms:
        src = sources[t.name]
        where = f"\n{mark_formula(text, src, rhs0)}\n"
        if t.nlevels < 2:
            raise DataError(
                f"the grouping factor '{t.name}' has only {t.nlevels} level in the rows used; a random effect needs at "
                f"least 2.{where}Use it as a fixed effect, or drop the term."
            )
        if residual and t.nlevels >= n:
            raise DataError(
                f"the grouping factor '{t.name}' has {t.nlevels} levels for {n} observations, so its random "
                f"effect cannot be told apart from the residual (lme4 refuses this too).{where}"
                "Use a coarser grouping factor, or drop the term."
            )
        if residual and t.nlevels * t.s >= n:
            raise DataError(
                f"the term for '{t.name}' has {t.nlevels * t.s} random effects ({t.nlevels} levels × {t.s} columns) "
                f"for {n} observations: its variances and the residual variance cannot be told apart (lme4 refuses "
                f"this too).{where}Use fewer columns in the term, e.g. '(1 | {t.name})', or more data."
            )
        if residual and _exact_fit(t, X, y, 1e-12, None if xgroups is None else xgroups[0]):
            raise DataError(
                f"the response '{pf.response}' is fitted exactly by the fixed effects and the random effects for "
                f"'{t.name}': the residual variance would be zero and the likelihood unbounded.{where}"
                "Check that the response is not a function of the grouping factor (and the fixed effects)."
            )
        if _confounded(t, Q, xgroups):
            warnings.warn(
                f"the random effects of '{src}' are confounded with the fixed effects: every column of "
                f"their model matrix is a combination of fixed-effect columns, so their variance is not identified "
                f"(the ML estimate is 0; REML does not depend on it). Drop the term or its fixed-effect counterpart.",
                stacklevel=3,
            )
    terms.sort(key=lambda t: -t.nlevels * t.s)  # stable: ties keep formula order
    by_name = {":".join(g): g for g in part_encodings}
    encoding = Encoding(
        atoms=states,
        fixed=fixed_encoding,
        terms=tuple(TermEncoding(tuple(part_encodings[by_name[t.name]]), by_name[t.name], t.levels) for t in terms),
        offsets=tuple(offset_states),
    )
    return Design(
        formula=pf,
        y=y,
        X=X,
        xnames=xnames,
        dropped_columns=dropped,
        terms=tuple(terms),
        n_dropped=n_dropped,
        rows=np.asarray(labels),
        offset=offset if off_arg is None else (off_arg if offset is None else offset + off_arg),
        encoding=encoding,
        weights=w_arg,
        offset_given=off_arg is not None,
        xgroups=xgroups,
    )
