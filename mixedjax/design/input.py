"""The user's table as a pandas DataFrame: pandas (numpy or pyarrow dtypes), polars, pyarrow, or a dict of arrays.

Everything after this step reads one kind of frame. Other dataframe libraries go through narwhals (a small,
dependency-free layer over pandas, polars, pyarrow and others), so a polars or pyarrow table keeps its column names,
its categorical columns (as pandas categoricals with the same categories) and its missing values. Columns with
pyarrow dtypes become numpy ones, so the formula language and the numeric checks see float, integer, boolean,
object (text) or categorical columns only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError

_HOW = "Pass a pandas or polars DataFrame, a pyarrow Table, or a dict of equal-length columns."


def as_frame(data, numpy: bool = True) -> pd.DataFrame:
    """``data`` as a pandas DataFrame with numpy-backed (or categorical) columns; pandas input keeps its index.
    ``numpy=False``: a pandas frame is returned with its dtypes as they are (the caller converts the columns it
    selects by ``numpy_dtypes``: a wide frame's other columns are never converted)."""
    if isinstance(data, pd.DataFrame):
        return numpy_dtypes(data) if numpy else data
    if data is None or np.isscalar(data):
        raise DataError(f"data must be a table of columns, not {type(data).__name__}.\n{_HOW}\n"
                        "e.g. lmm('y ~ x + (1 | g)', df).")
    if isinstance(data, dict):
        return _from_dict(data)
    native = _via_narwhals(data)
    if native is not None:
        return numpy_dtypes(native)
    try:
        return numpy_dtypes(pd.DataFrame(data))
    except Exception as err:
        raise DataError(f"data must be a table of columns, not {type(data).__name__} ({err}).\n{_HOW}") from err


def _from_dict(data: dict) -> pd.DataFrame:
    lengths = {}
    for k, v in data.items():
        if np.isscalar(v) or v is None:
            raise DataError(f"column '{k}' of the data dict is a single value ({v!r}), not an array of values.\n{_HOW}")
        lengths[k] = len(v)
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"'{k}': {n}" for k, n in lengths.items())
        raise DataError(f"the columns of the data dict have different lengths ({desc}), so they do not make a "
                        "DataFrame.\nGive every column one value per observation.")
    cols = {}
    for k, v in data.items():
        native = _via_narwhals_series(v)
        cols[k] = native if native is not None else v
    return numpy_dtypes(pd.DataFrame(cols))


def _via_narwhals(data) -> pd.DataFrame | None:
    """A polars / pyarrow / other narwhals-supported frame as pandas, or None when narwhals does not know it."""
    try:
        import narwhals as nw
    except ImportError:  # pragma: no cover - narwhals is a dependency
        return None
    try:
        frame = nw.from_native(data, eager_only=True)
    except TypeError:
        return None
    return frame.to_pandas()


def _via_narwhals_series(values):
    """A polars / pyarrow column as a pandas Series, else None (numpy arrays and lists are taken as they are)."""
    if isinstance(values, (np.ndarray, list, tuple, pd.Series, pd.Categorical, range)):
        return None
    try:
        import narwhals as nw

        series = nw.from_native(values, series_only=True)
    except (ImportError, TypeError):
        return None
    return series.to_pandas().reset_index(drop=True)


def numpy_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    """Columns with pyarrow or pandas extension dtypes as numpy (float for numbers with missing values, object for
    text) or categorical ones; a frame that has none is returned as it is (no copy)."""
    convert = [j for j, dt in enumerate(df.dtypes) if _needs_conversion(dt)]  # by position: names may repeat
    if not convert:
        return df
    out = df.copy(deep=False)
    for j in convert:
        out.isetitem(j, _to_numpy_column(df.iloc[:, j]))
    return out


def select_columns(data: pd.DataFrame, positions: list[int], names: list[str]) -> dict[str, pd.Series]:
    """The columns of ``data`` at ``positions``, by ``names``, each converted as ``numpy_dtypes`` converts it (a
    label lookup per column: pandas' positional selection and renaming of a frame cost 0.4 ms on sleepstudy)."""
    labels = data.columns
    out = {}
    for j, name in zip(positions, names):
        label = labels[j]
        # by label when it is text (the caller has refused names that occur twice), else by position as before
        col = data[label] if isinstance(label, str) else data.iloc[:, j]
        out[name] = _to_numpy_column(col) if _needs_conversion(col.dtype) else col
    return out


def _needs_conversion(dt) -> bool:
    """Is a column of this dtype converted (an extension dtype, or a categorical whose levels have one)?"""
    if isinstance(dt, pd.CategoricalDtype):
        dt = dt.categories.dtype  # a factor's levels as text or numbers of an extension dtype are converted too
        if isinstance(dt, pd.StringDtype):
            return False  # text levels (pandas 3's default str) are read as Python strings already
    return isinstance(dt, pd.api.extensions.ExtensionDtype) and not isinstance(dt, pd.CategoricalDtype)


# A frame's categorical dtype converted before, by the identity of the dtype object (refitting the same frame
# converts each column again; building the new dtype validates its categories: 0.9 ms for 2,972 levels).
_CONVERTED: dict[int, tuple[pd.CategoricalDtype, pd.CategoricalDtype]] = {}


def _numpy_categorical(dt: pd.CategoricalDtype) -> pd.CategoricalDtype:
    """The categorical dtype with its levels as numpy values (object text, numbers)."""
    hit = _CONVERTED.get(id(dt))
    if hit is not None and hit[0] is dt:
        return hit[1]
    if isinstance(dt.categories.dtype, pd.StringDtype) and not dt.categories.hasnans:
        cats = dt.categories.to_numpy(dtype=object)  # text levels (pandas' default str dtype): as they are
    else:
        cats = _to_numpy_column(pd.Series(dt.categories)).tolist()
    out = pd.CategoricalDtype(cats, ordered=dt.ordered)
    if len(_CONVERTED) >= 64:
        _CONVERTED.clear()
    _CONVERTED[id(dt)] = (dt, out)  # the key's dtype is kept alive with it, so its id is not reused
    return out


def _to_numpy_column(col: pd.Series) -> pd.Series:
    dt = col.dtype
    if isinstance(dt, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()  # valid codes of the same categories: no validation needed
        return pd.Series(pd.Categorical.from_codes(codes, dtype=_numpy_categorical(dt), validate=False),
                         index=col.index, name=col.name)
    arrow = getattr(dt, "pyarrow_dtype", None)
    if arrow is not None:
        import pyarrow as pa

        if pa.types.is_dictionary(arrow):  # a pyarrow dictionary column is a factor
            values = col.astype(object).where(col.notna(), None)
            cats = pd.unique(values.dropna())
            return pd.Series(pd.Categorical(values, categories=_sorted(cats)), index=col.index, name=col.name)
    if pd.api.types.is_bool_dtype(dt):
        if not col.isna().any():
            return pd.Series(col.to_numpy(dtype=bool), index=col.index, name=col.name)
        # R's logical with NA: True / False / None, so that it stays logical (not 0 / 1 numbers) with its rows missing
        return pd.Series(np.asarray(col.astype(object).where(col.notna(), None), dtype=object), index=col.index,
                         name=col.name)
    if pd.api.types.is_integer_dtype(dt) and not col.isna().any():
        return pd.Series(col.to_numpy(dtype=np.int64), index=col.index, name=col.name)
    if pd.api.types.is_numeric_dtype(dt):
        return pd.Series(col.to_numpy(dtype=np.float64, na_value=np.nan), index=col.index, name=col.name)
    # text and anything else: Python objects, None for missing
    values = col.astype(object)
    return pd.Series(np.asarray(values.where(col.notna(), None), dtype=object), index=col.index, name=col.name)


def _sorted(values) -> list:
    try:
        return sorted(values)
    except TypeError:
        return list(values)
