"""The values an expression of a formula takes: numbers, logicals, factors, matrices (poly, cbind), strings.

Numbers are float64 (integer columns too, so that ``x^2`` is a square and never an XOR), NaN where a value is missing.
"""

from __future__ import annotations

from typing import NamedTuple, Union

import numpy as np
import pandas as pd

from ..errors import DataError


class Factor(NamedTuple):
    """A factor: a level index per row (-1 where missing) and the level names as R prints them."""

    codes: np.ndarray  # (n,) int64
    levels: tuple[str, ...]
    from_text: bool  # True for a column of text (R's character vector): as.numeric() parses it, it has no codes
    ordered: bool = False  # R's ordered factor (an ordered pandas Categorical, ordered()): polynomial contrasts


class Matrix(NamedTuple):
    """Several model columns from one expression (``poly(x, 2)``, ``cbind(a, b)``): suffix k names column k."""

    values: np.ndarray  # (n, k) float64
    suffixes: tuple[str, ...]


Value = Union[np.ndarray, float, bool, str, Factor, Matrix]


def level_name(v) -> str:
    """A level as R prints it: 3 (not 3.0), 2.5, TRUE, text as is."""
    if isinstance(v, (bool, np.bool_)):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else f"{f:.15g}"
    return str(v)


_NUMBER_KINDS = ("floating", "integer", "mixed-integer-float", "decimal", "empty")


def column_value(col: pd.Series) -> Value:
    """A data column as a value: numbers as float64, booleans as bool (R's logical: a factor of FALSE / TRUE in a
    term, 0 / 1 in arithmetic, as an ``I(x > 2)``), anything else as a factor."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        levels = tuple(level_name(c) for c in col.cat.categories)
        return Factor(np.asarray(col.cat.codes, dtype=np.int64), levels, False, bool(col.cat.ordered))
    if pd.api.types.is_bool_dtype(col) or (col.dtype == object and
                                           pd.api.types.infer_dtype(col, skipna=True) == "boolean"):
        # a missing value reads as False here; every reader marks its row missing from the column (missing_rows)
        return np.asarray(col.fillna(False) if col.dtype == object else col, dtype=bool)
    if pd.api.types.is_numeric_dtype(col):
        if pd.api.types.is_complex_dtype(col):
            raise DataError(f"column '{col.name}' holds complex numbers; a formula needs real numbers")
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    if col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) in _NUMBER_KINDS:
        return pd.to_numeric(col).to_numpy(dtype=np.float64, na_value=np.nan)
    # text (or anything else): a factor with levels in sorted order, as R's factor() of a character vector
    codes, uniques = pd.factorize(col, sort=False)
    names = [level_name(u) for u in uniques]
    levels = tuple(sorted(set(names)))
    return Factor(_codes_of(codes, names, levels), levels, True)


def missing_values(col: pd.Series) -> np.ndarray:
    """Which values of a column are missing (NaN, None, NA; a categorical's code −1), as a numpy bool array."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.codes.to_numpy() < 0
    values = col.to_numpy()
    if values.dtype.kind in "biu":
        return np.zeros(len(values), bool)
    if values.dtype.kind == "f":
        return np.isnan(values)
    return np.asarray(pd.isna(values), bool)


def missing_rows(data: pd.DataFrame, names) -> np.ndarray:
    """The rows of ``data`` with a missing value in any of the columns ``names`` (names that are not columns, such
    as pi, are skipped): rows an expression of those columns has no value for, whatever it computes there."""
    out = np.zeros(len(data), bool)
    for name in names:
        if name in data.columns:
            out |= missing_values(data[name])
    return out


def _codes_of(codes: np.ndarray, names: list[str], levels: tuple[str, ...]) -> np.ndarray:
    """Codes into ``names`` (-1 missing) as codes into ``levels`` (-2 for a name not among them)."""
    index = {lv: i for i, lv in enumerate(levels)}
    lookup = np.array([index.get(nm, -2) for nm in names] + [-1], dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    return lookup[np.where(codes >= 0, codes, len(names))]


def used_codes(codes: np.ndarray, nlevels: int) -> np.ndarray:
    """The distinct non-negative codes, ascending (np.unique of codes[codes >= 0] by a bincount: numpy 2's
    np.unique hashes, several times slower on 73,421 codes)."""
    return np.flatnonzero(np.bincount(codes[codes >= 0], minlength=nlevels))


def factor_of(v: Value, levels: tuple[str, ...] | None = None) -> Factor:
    """``factor(v)``: levels sorted (numbers in numeric order), or the given ``levels`` (matched by name)."""
    if isinstance(v, Factor):
        if levels is None:
            levels = tuple(v.levels[i] for i in used_codes(v.codes, len(v.levels)))
        return recode(v, levels)
    arr = np.asarray(v)
    if arr.dtype == bool or arr.dtype.kind == "f":
        vals = np.atleast_1d(arr.astype(np.float64))
        missing = np.isnan(vals)
        uniq, inv = np.unique(np.where(missing, 0.0, vals), return_inverse=True)
        names = [level_name(bool(u)) if arr.dtype == bool else level_name(u) for u in uniq]
        codes = np.where(missing, -1, inv.reshape(-1))
        if levels is None:
            levels = tuple(names[i] for i in used_codes(codes, len(names)))
        return Factor(_codes_of(codes, names, levels), levels, False)
    raise TypeError(f"cannot make a factor of {type(v).__name__}")


def recode(f: Factor, levels: tuple[str, ...]) -> Factor:
    """The same values with the level set ``levels`` (matched by name; -2 for a value not among them)."""
    if levels == f.levels:
        return f
    lookup = np.array([{lv: i for i, lv in enumerate(levels)}.get(lv, -2) for lv in f.levels] + [-1], dtype=np.int64)
    codes = np.where(f.codes >= 0, lookup[np.where(f.codes >= 0, f.codes, len(f.levels))], f.codes)
    return f._replace(codes=codes, levels=levels)


def value_key(name: str) -> str:
    """A level name compared by value: '3', '3.0' and 3 are one level; text stays as it is."""
    try:
        return level_name(float(name))
    except ValueError:
        return name


def recode_by_value(f: Factor, levels: tuple[str, ...]) -> Factor:
    """``recode`` matching level names by value (new data whose column has another dtype than the fit's)."""
    index = {value_key(lv): i for i, lv in enumerate(levels)}
    lookup = np.array([index.get(value_key(lv), -2) for lv in f.levels] + [-1], dtype=np.int64)
    codes = np.where(f.codes >= 0, lookup[np.where(f.codes >= 0, f.codes, len(f.levels))], f.codes)
    return f._replace(codes=codes, levels=levels)
