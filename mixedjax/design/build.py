"""From formula and data to host arrays: y, X, and one term object per random-effects term.

Plain numpy/pandas; done once per model. Nothing here depends on θ.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError, mark_formula, mark_position
from ..formula.parse import ParsedFormula, RandomTerm, parse_formula
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

    @property
    def s(self) -> int:
        return self.z.shape[1]

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
        covariate of size 1 (DESIGN.md section 4: an optimiser should run in these coordinates).
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
    terms: tuple[Term, ...]  # in the order of DESIGN.md section 3: ℓ_k s_k descending
    n_dropped: int  # rows dropped for missing values
    rows: np.ndarray  # index labels of the rows used
    weights: np.ndarray | None = None  # prior weights (residual variance σ²/wᵢ), None for all ones
    offset: np.ndarray | None = None  # known part of the linear predictor (formula offsets and offset=), or None

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def p(self) -> int:
        return self.X.shape[1]


def _lme4_name(col: str) -> str:
    """formulaic column names to lme4's: 'Intercept' -> '(Intercept)', 'dept[T.D02]' -> 'deptD02'."""
    if col == "Intercept":
        return "(Intercept)"
    return re.sub(r"\[(?:T\.)?([^\]]*)\]", r"\1", col)


_ANSI = re.compile(r"\x1b\[[0-9;]*m|[\u29da\u29db]")
_NAME = re.compile(r"`([^`]+)`|([A-Za-z_.][A-Za-z0-9_.]*)")


def _clean(err: BaseException) -> str:
    """The first line of another library's message, without terminal colour codes."""
    msg = _ANSI.sub("", str(err)).strip()
    return msg.splitlines()[0] if msg else type(err).__name__


def _names_in(spec: str) -> tuple[set[str], set[str]]:
    """Identifiers in ``spec``: (used as variables, used as functions ``f(``)."""
    variables, functions = set(), set()
    for m in _NAME.finditer(spec):
        if m.group(1) is not None:
            variables.add(m.group(1))
        else:
            rest = spec[m.end() :].lstrip()
            (functions if rest.startswith("(") else variables).add(m.group(2))
    return variables, functions


def _required(spec: str, formula: str, part: str, columns: set[str], start: int = 0) -> tuple[set[str], set[str]]:
    """(columns of the data that ``spec`` uses, names it needs that the data lack)."""
    import formulaic

    try:
        need = {str(v) for v in formulaic.Formula(spec).required_variables}
    except Exception as err:  # formulaic's own parse errors
        raise FormulaError(
            f"cannot read '{spec}': {_clean(err)}\n{mark_formula(formula, part, start)}\n"
            "Use lme4 syntax: terms joined by '+', interactions with '*' or ':', functions like I(x**2) or C(f)."
        ) from err
    # formulaic does not report the arguments of stateful transforms (scale(x), center(x), poly(x, 2)): add every
    # name of the text that is a column
    variables, _ = _names_in(spec)
    need |= variables & columns
    return need & columns, need - columns


def _model_matrix(spec: str, data: pd.DataFrame, formula: str, part: str, start: int = 0):
    import formulaic

    try:
        # ensure_full_rank: treatment contrasts for a factor after an intercept, as R's model.matrix
        mm = formulaic.model_matrix(spec, data, ensure_full_rank=True, na_action="ignore")
    except Exception as err:
        msg = _clean(err)
        name = re.search(r"name '([^']+)' is not defined|`([^`]+)` is not present", msg)
        if name:
            missing = name.group(1) or name.group(2)
            raise DataError(
                f"'{missing}' is neither a column of the data nor a known function (used in '{part}').\n"
                f"{mark_formula(formula, part, start)}\nCheck the spelling against the data's columns."
            ) from err
        raise FormulaError(
            f"cannot build the model matrix for '{spec}': {msg}\n{mark_formula(formula, part, start)}\n"
            "Check that the columns have the types the term needs (numbers for arithmetic, any type for a factor)."
        ) from err
    names = tuple(_lme4_name(c) for c in mm.columns)
    return np.asarray(mm, dtype=np.float64).reshape(len(data), -1), names


def _independent_columns(X: np.ndarray, tol: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a maximal set of linearly independent columns, keeping earlier columns first (as lme4 does),
    and an orthonormal basis Q of their span (n × rank). Classical Gram-Schmidt with reorthogonalisation."""
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
    """Integer codes and level names of a grouping factor (a combination when several variables)."""
    codes_list, levels_list = [], []
    for v in group:
        col = data[v]
        if isinstance(col.dtype, pd.CategoricalDtype):
            col = col.cat.remove_unused_categories()
            codes_list.append(np.asarray(col.cat.codes, dtype=np.int64))
            levels_list.append([str(c) for c in col.cat.categories])
        else:
            c, u = pd.factorize(col, sort=True)
            codes_list.append(np.asarray(c, dtype=np.int64))
            levels_list.append([str(x) for x in u])
    if len(group) == 1:
        return codes_list[0], tuple(levels_list[0])
    stacked = np.stack(codes_list, axis=1)
    uniq, codes = np.unique(stacked, axis=0, return_inverse=True)
    levels = tuple(":".join(levels_list[i][k] for i, k in enumerate(row)) for row in uniq)
    return codes.reshape(-1).astype(np.int64), levels


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


def _as_frame(data) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if data is None or np.isscalar(data):
        raise DataError(
            f"data must be a pandas DataFrame (or a dict of columns), not {type(data).__name__}.\n"
            "Pass the table whose columns the formula names, e.g. lmm('y ~ x + (1 | g)', df)."
        )
    try:
        return pd.DataFrame(data)
    except Exception as err:
        raise DataError(
            f"data must be a pandas DataFrame (or something pandas.DataFrame() accepts, like a dict of columns), "
            f"not {type(data).__name__}: {_clean(err)}"
        ) from err


_NUMBER_KINDS = ("floating", "integer", "mixed-integer-float", "decimal")
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


def _span_residual(Q: np.ndarray, y: np.ndarray) -> np.ndarray:
    r = y - Q @ (Q.T @ y)
    return r - Q @ (Q.T @ r)


def _sum_by_level(codes: np.ndarray, left: np.ndarray, right: np.ndarray, nlev: int) -> np.ndarray:
    """S[c] = Σ_{i: codes[i] = c} left[i] right[i]'  → (nlev, left.shape[1], right.shape[1])."""
    out = np.empty((nlev, left.shape[1], right.shape[1]))
    for a in range(left.shape[1]):
        for b in range(right.shape[1]):
            out[:, a, b] = np.bincount(codes, weights=left[:, a] * right[:, b], minlength=nlev)
    return out


def _exact_fit(term: "Term", X: np.ndarray, y: np.ndarray, tol: float) -> bool:
    """Is y (numerically) in the span of [X Z_k]? Z_k is projected out level by level, then X."""
    Xy = np.column_stack([X, y])
    G = _sum_by_level(term.codes, term.z, term.z, term.nlevels)
    B = _sum_by_level(term.codes, term.z, Xy, term.nlevels)
    W = np.linalg.pinv(G) @ B  # (ℓ, s, p+1)
    R = Xy.copy()
    for a in range(term.s):
        R -= term.z[:, a : a + 1] * W[term.codes, a, :]
    _, Q = _independent_columns(R[:, :-1])
    r = _span_residual(Q, R[:, -1])
    return bool(np.linalg.norm(r) <= tol * np.linalg.norm(y))


def _confounded(term: "Term", Q: np.ndarray) -> bool:
    """Does every column of Z_k (one per level and term column) lie in the span of X (orthonormal basis Q)?

    ‖(I − QQ')z‖² = ‖z‖² − ‖Q'z‖², with Q'Z_k formed by sums over the rows of each level.
    """
    if Q.shape[1] == 0:
        return False
    znorm2 = np.stack([np.bincount(term.codes, weights=term.z[:, a] ** 2, minlength=term.nlevels)
                       for a in range(term.s)], axis=1)
    qz = _sum_by_level(term.codes, term.z, Q, term.nlevels)
    resid2 = znorm2 - np.sum(qz**2, axis=-1)
    return bool(np.all(resid2 <= 1e-10 * np.maximum(znorm2, 1e-300)))


def build_design(formula, data, *, weights=None, offset=None) -> Design:
    """The design of an lme4 formula on the data; ``weights`` and ``offset``: None, a column name or one value per
    row (see design/weights.py). Rows with zero weight carry no information and are dropped with the missing ones."""
    pf = parse_formula(formula)
    text = pf.text
    rhs0 = text.find("~") + 1  # mark parts of the right-hand side there, not in the response
    data = _as_frame(data)
    if data.shape[0] == 0:
        raise DataError("the data have no rows; pass the table of observations the model is fitted to")

    # which columns each part of the formula needs, checked before any computation
    columns = set(map(str, data.columns))
    # (what, part of the formula, columns, where to mark it, grouping factor?)
    parts: list[tuple[str, str, set[str], int, bool]] = []

    def need(what, spec, part, extra=(), start=rhs0, grouping=False):
        have, missing = _required(spec, text, part, columns, start) if spec is not None else (set(), set())
        missing |= set(extra) - columns
        have |= set(extra) & columns
        if missing:
            _, functions = _names_in(spec or "")
            miss = sorted(missing)
            avail = ", ".join(map(str, data.columns[:20])) + (", ..." if data.shape[1] > 20 else "")
            fn = [m for m in miss if m in functions]
            if fn == miss:
                head = f"{', '.join(repr(m) for m in miss)} {'are' if len(miss) > 1 else 'is'} neither a column of "
                head += "the data nor a known function"
            else:
                head = f"{'columns' if len(miss) > 1 else 'column'} {', '.join(repr(m) for m in miss)} "
                head += f"{'are' if len(miss) > 1 else 'is'} not found in the data"
            raise DataError(
                f"{head} (used in {what} '{part}').\n"
                f"{_mark_name(text, part, start, miss[0])}\nAvailable columns: {avail}."
            )
        parts.append((what, part, have, start, grouping))

    need("the response", pf.response, pf.response, start=0)
    need("the fixed effects", pf.fixed, pf.fixed)
    for rt in pf.random:
        need("the random-effects term", rt.expr, rt.source)
        need("the random-effects term", None, rt.source, rt.group, grouping=True)
    used = sorted(set().union(*(cols for _, _, cols, _, _ in parts)))
    counts = pd.Index(map(str, data.columns)).value_counts()
    dup = [c for c in used if counts[c] > 1]
    if dup:
        raise DataError(
            f"the data have more than one column named {', '.join(repr(c) for c in dup)}; "
            "rename them so that each name the formula uses is unique."
        )
    df = data.loc[:, [c for c in data.columns if str(c) in set(used)]]
    df.columns = [str(c) for c in df.columns]
    df = df[used]
    # prior weights and offset given as arguments: carried as hidden columns so missing values drop their rows
    extra = {"weights": row_values(weights, data, "weights"), "offset": row_values(offset, data, "offset")}
    for key, values in extra.items():
        if values is not None:
            df = df.assign(**{_HIDDEN + key: values.to_numpy()})

    # missing values: drop the rows, count them
    na = df.isna()
    complete = ~na.any(axis=1).to_numpy()
    n_dropped = int((~complete).sum())
    if not complete.any():
        per = ", ".join(f"{c}: {int(k)}" for c, k in na.sum().items() if k)
        raise DataError(
            f"no rows left after dropping the {n_dropped} rows with a missing value in the columns the formula "
            f"uses (missing per column: {per}).\nFill in or drop the columns with missing values."
        )
    df = df.loc[complete]
    w_arg = df.pop(_HIDDEN + "weights").to_numpy(float) if extra["weights"] is not None else None
    off_arg = df.pop(_HIDDEN + "offset").to_numpy(float) if extra["offset"] is not None else None
    if w_arg is not None:
        check_weights(w_arg)
        if (w_arg == 0).any():  # zero weight: no information; dropped and counted with the missing rows
            keep = w_arg > 0
            df, w_arg, n_dropped = df.loc[keep], w_arg[keep], n_dropped + int((~keep).sum())
            off_arg = off_arg[keep] if off_arg is not None else None
    if off_arg is not None:
        check_offset(off_arg)
    # levels that no longer occur (or never did) are not levels of the model
    grouping_only = set(used) - set().union(*(cols for _, _, cols, _, grp in parts if not grp))
    for c in df.columns:
        if isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].cat.remove_unused_categories()
        elif df[c].dtype == object and c not in grouping_only:
            # an object column holding only numbers (e.g. after None was stored in it) is numeric, not a factor
            if pd.api.types.infer_dtype(df[c], skipna=True) in _NUMBER_KINDS:
                df[c] = df[c].to_numpy(dtype=np.float64)
    labels = df.index

    # infinite values in a column the formula uses, named before any model matrix is built
    for what, part, cols, start, grp in parts:
        if grp:
            continue  # any value, infinite ones included, is a level
        for c in sorted(cols):
            v = _numeric_values(df[c])
            if v is not None and np.isinf(v).any():
                raise DataError(
                    f"column '{c}' (used in {what} '{part}') has infinite values in "
                    f"{_first_bad(np.isinf(v), labels)}.\n{mark_formula(text, part, start)}\n"
                    "Remove or recode those rows; missing values (NaN, None) are dropped automatically."
                )

    # response
    if pf.response in df.columns:
        ycol = df[pf.response]
        y = _numeric_values(ycol)
        if y is None:
            raise DataError(
                f"the response '{pf.response}' must be numeric; it has dtype {ycol.dtype}.\n"
                f"{mark_formula(text, pf.response)}\nConvert it with pandas.to_numeric, or choose a numeric column."
            )
    else:
        ym, _ = _model_matrix(f"0 + {pf.response}", df, text, pf.response)
        if ym.shape[1] != 1:
            raise DataError(
                f"the response '{pf.response}' must be one numeric column; it gives {ym.shape[1]} columns.\n"
                f"{mark_formula(text, pf.response)}\nUse a numeric column or an arithmetic expression of one."
            )
        y = ym[:, 0]
    _check_finite(y, f"the response '{pf.response}'", labels, text, pf.response)
    if np.ptp(y) == 0:
        raise DataError(
            f"the response '{pf.response}' is constant ({y[0]:g} in all {len(y)} rows used); there is nothing to "
            f"model.\n{mark_formula(text, pf.response)}\nChoose a response that varies."
        )

    # fixed effects
    X, xnames = _model_matrix(pf.fixed, df, text, pf.fixed, rhs0)
    for j, name in enumerate(xnames):
        _check_finite(X[:, j], f"the fixed-effect column '{name}'", labels, text, pf.fixed, rhs0)
    if X.shape[1] > len(y):
        raise DataError(
            f"the fixed part '{pf.fixed}' has {X.shape[1]} columns but there are only {len(y)} observations.\n"
            f"{mark_formula(text, pf.fixed, rhs0)}\n"
            "Simplify the fixed part (fewer terms or interactions), or use more data."
        )
    keep, Q = _independent_columns(X)
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
    if np.linalg.norm(_span_residual(Q, y)) <= 1e-12 * np.linalg.norm(y):
        raise DataError(
            f"the response '{pf.response}' is an exact linear combination of the fixed-effect columns "
            f"({', '.join(xnames)}): the residual variance would be zero.\n{mark_formula(text, pf.fixed, rhs0)}\n"
            "Remove the response (or what determines it) from the fixed part."
        )

    # random-effects terms, merged per grouping factor
    groups: dict[tuple[str, ...], list[tuple[RandomTerm, np.ndarray, tuple[str, ...]]]] = {}
    for rt in pf.random:
        z, znames = _model_matrix(rt.expr, df, text, rt.source, rhs0)
        if z.shape[1] == 0:
            raise FormulaError(
                f"the random-effects term '{rt.source}' has no columns.\n{mark_formula(text, rt.source, rhs0)}\n"
                "Put at least one column before '|', e.g. '(1 | g)' or '(0 + x | g)'."
            )
        for j, name in enumerate(znames):
            _check_finite(z[:, j], f"the column '{name}' of the random-effects term", labels, text, rt.source)
        groups.setdefault(rt.group, []).append((rt, z, znames))
    terms = []
    for group, members in groups.items():
        codes, levels = _group_codes(df, group)
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
        if t.nlevels >= n:
            raise DataError(
                f"the grouping factor '{t.name}' has {t.nlevels} levels for {n} observations, so its random "
                f"effect cannot be told apart from the residual (lme4 refuses this too).{where}"
                "Use a coarser grouping factor, or drop the term."
            )
        if t.nlevels * t.s >= n:
            raise DataError(
                f"the term for '{t.name}' has {t.nlevels * t.s} random effects ({t.nlevels} levels × {t.s} columns) "
                f"for {n} observations: its variances and the residual variance cannot be told apart (lme4 refuses "
                f"this too).{where}Use fewer columns in the term, e.g. '(1 | {t.name})', or more data."
            )
        if _exact_fit(t, X, y, 1e-12):
            raise DataError(
                f"the response '{pf.response}' is fitted exactly by the fixed effects and the random effects for "
                f"'{t.name}': the residual variance would be zero and the likelihood unbounded.{where}"
                "Check that the response is not a function of the grouping factor (and the fixed effects)."
            )
        if _confounded(t, Q):
            warnings.warn(
                f"the random effects of '{src}' are confounded with the fixed effects: every column of "
                f"their model matrix is a combination of fixed-effect columns, so their variance is not identified "
                f"(the ML estimate is 0; REML does not depend on it). Drop the term or its fixed-effect counterpart.",
                stacklevel=3,
            )
    terms.sort(key=lambda t: -t.nlevels * t.s)  # stable: ties keep formula order
    return Design(
        formula=pf,
        y=y,
        X=X,
        xnames=xnames,
        dropped_columns=dropped,
        terms=tuple(terms),
        n_dropped=n_dropped,
        rows=np.asarray(labels),
        weights=w_arg,
        offset=off_arg,
    )
