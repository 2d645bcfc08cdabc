"""From formula and data to host arrays: y, X, and one term object per random-effects term.

Plain numpy/pandas; done once per model. Nothing here depends on θ.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._errors import DataError, FormulaError, mark_formula
from ._formula import ParsedFormula, RandomTerm, parse_formula


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

    def theta0(self) -> np.ndarray:
        return np.array([1.0 if r == c else 0.0 for r, c in self.pattern])


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


def _required(spec: str, formula: str, part: str) -> set[str]:
    import formulaic

    try:
        return {str(v) for v in formulaic.Formula(spec).required_variables}
    except Exception as err:  # formulaic's own parse errors
        raise FormulaError(
            f"cannot read '{spec}': {err}\n{mark_formula(formula, part)}\n"
            "Use lme4 syntax: terms joined by '+', interactions with '*' or ':', functions like I(x**2) or C(f)."
        ) from err


def _model_matrix(spec: str, data: pd.DataFrame, formula: str, part: str, full_rank: bool = True):
    import formulaic

    try:
        mm = formulaic.model_matrix(spec, data, ensure_full_rank=full_rank, na_action="ignore")
    except Exception as err:
        raise FormulaError(
            f"cannot build the model matrix for '{spec}': {err}\n{mark_formula(formula, part)}"
        ) from err
    names = tuple(_lme4_name(c) for c in mm.columns)
    return np.asarray(mm, dtype=np.float64).reshape(len(data), -1), names


def _independent_columns(X: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Indices of a maximal set of linearly independent columns, keeping earlier columns first (as lme4 does)."""
    keep: list[int] = []
    Q = np.zeros((X.shape[0], 0))
    for j in range(X.shape[1]):
        x = X[:, j]
        nx = np.linalg.norm(x)
        if nx == 0:
            continue
        r = x - Q @ (Q.T @ x)
        r = r - Q @ (Q.T @ r)  # second pass for stability
        nr = np.linalg.norm(r)
        if nr > tol * nx:
            keep.append(j)
            Q = np.column_stack([Q, r / nr])
    return np.array(keep, dtype=int)


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


def build_design(formula, data) -> Design:
    pf = parse_formula(formula)
    text = pf.text
    if not isinstance(data, pd.DataFrame):
        try:
            data = pd.DataFrame(data)
        except Exception as err:
            raise DataError(
                f"data must be a pandas DataFrame (or something pandas.DataFrame() accepts), "
                f"not {type(data).__name__}"
            ) from err
    if data.shape[0] == 0:
        raise DataError("the data frame has no rows")

    # which columns each part of the formula needs, checked before any computation
    parts: list[tuple[str, set[str]]] = [(pf.response, _required(pf.response, text, pf.response))]
    parts.append((pf.fixed, _required(pf.fixed, text, pf.fixed)))
    for rt in pf.random:
        parts.append((rt.source, _required(rt.expr, text, rt.source)))
        parts.append((rt.source, set(rt.group)))
    columns = set(map(str, data.columns))
    for part, need in parts:
        missing = sorted(need - columns)
        if missing:
            avail = ", ".join(map(str, data.columns[:20])) + (", ..." if data.shape[1] > 20 else "")
            raise DataError(
                f"column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
                f"not found in the data (used in '{part}').\n{mark_formula(text, part)}\n"
                f"Available columns: {avail}."
            )
    used = sorted(set().union(*(need for _, need in parts)))
    df = data[used]
    complete = ~df.isna().any(axis=1).to_numpy()
    n_dropped = int((~complete).sum())
    df = df.loc[complete]
    if df.shape[0] == 0:
        raise DataError(
            f"no rows left after dropping the {n_dropped} rows with a missing value in "
            f"the columns the formula uses ({', '.join(used)})"
        )

    # response
    if pf.response in df.columns:
        ycol = df[pf.response]
        if not (pd.api.types.is_numeric_dtype(ycol) or pd.api.types.is_bool_dtype(ycol)):
            raise DataError(
                f"the response '{pf.response}' must be numeric; it has dtype {ycol.dtype}.\n"
                f"{mark_formula(text, pf.response)}\nConvert it with pandas.to_numeric, or choose a numeric column."
            )
        y = ycol.to_numpy(dtype=np.float64)
    else:
        ym, _ = _model_matrix(f"0 + {pf.response}", df, text, pf.response)
        if ym.shape[1] != 1:
            raise DataError(f"the response '{pf.response}' must be one numeric column")
        y = ym[:, 0]
    if not np.all(np.isfinite(y)):
        raise DataError(f"the response '{pf.response}' has infinite values; remove or recode those rows")
    if np.ptp(y) == 0:
        raise DataError(f"the response '{pf.response}' is constant ({y[0]:g}); there is nothing to model")

    # fixed effects
    X, xnames = _model_matrix(pf.fixed, df, text, pf.fixed)
    if not np.all(np.isfinite(X)):
        raise DataError(f"the fixed-effects part '{pf.fixed}' has infinite values")
    keep = _independent_columns(X)
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
            f"{X.shape[1]} fixed-effect columns but only {len(y)} observations; simplify the fixed part '{pf.fixed}'"
        )

    # random-effects terms, merged per grouping factor
    groups: dict[tuple[str, ...], list[tuple[RandomTerm, np.ndarray, tuple[str, ...]]]] = {}
    for rt in pf.random:
        z, znames = _model_matrix(rt.expr, df, text, rt.source, full_rank=False)
        if z.shape[1] == 0:
            raise FormulaError(f"the random-effects term '{rt.source}' has no columns\n{mark_formula(text, rt.source)}")
        if not np.all(np.isfinite(z)):
            raise DataError(f"the random-effects term '{rt.source}' has infinite values")
        groups.setdefault(rt.group, []).append((rt, z, znames))
    terms = []
    for group, members in groups.items():
        codes, levels = _group_codes(df, group)
        zs, names, pattern, off = [], [], [], 0
        for rt, z, znames in members:
            dup = set(znames) & set(names)
            if dup:
                raise FormulaError(
                    f"the column{'s' if len(dup) > 1 else ''} {', '.join(sorted(dup))} appear twice for grouping "
                    f"factor '{':'.join(group)}'.\n{mark_formula(text, rt.source)}\nRemove the repeated term."
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
    for t in terms:
        if t.nlevels < 2:
            raise DataError(
                f"the grouping factor '{t.name}' has only {t.nlevels} level; a random effect needs at least 2.\n"
                f"Use it as a fixed effect, or drop the term."
            )
        if t.s == 1 and t.nlevels >= len(y):
            raise DataError(
                f"the grouping factor '{t.name}' has {t.nlevels} levels for {len(y)} observations, so its random "
                f"effect cannot be told apart from the residual (lme4 refuses this too). Use a coarser grouping."
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
        rows=np.asarray(df.index),
    )
