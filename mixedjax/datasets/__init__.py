"""Example datasets shipped with mixedjax (from lme4 / MixedModels.jl)."""

from __future__ import annotations

import csv
import gzip
import io
from importlib import resources

import pandas as pd

from ..errors import ArgumentError, DataError

__all__ = ["dataset", "datasets"]

_SUFFIXES = (".csv.gz", ".csv")
_CACHE: dict[str, pd.DataFrame] = {}
NAMES = ("mixedmodels", "lme4")

# Factors whose R levels are in the order of first appearance rather than sorted (nlme's Alfalfa$Date, lme4's
# VerbAgg$item and $mode), so treatment contrasts take R's reference level.
_APPEARANCE_ORDER = {"alfalfa": ("Date",), "verbagg": ("item", "mode")}

# Column names of lme4's copies of the datasets (R's column order) where they differ from MixedModels.jl's.
_LME4_COLUMNS = {
    "sleepstudy": {"reaction": "Reaction", "days": "Days", "subj": "Subject"},
    "dyestuff": {"batch": "Batch", "yield": "Yield"},
    "dyestuff2": {"batch": "Batch", "yield": "Yield"},
}
_LME4_ORDER = {"sleepstudy": ("Reaction", "Days", "Subject")}


def _files() -> dict[str, str]:
    """Map dataset name -> file name inside ``mixedjax/data``."""
    out: dict[str, str] = {}
    for entry in resources.files("mixedjax.datasets").joinpath("data").iterdir():
        fname = entry.name
        for suf in _SUFFIXES:
            if fname.endswith(suf):
                out[fname[: -len(suf)].lower()] = fname
                break
    return out


def datasets() -> list[str]:
    """Sorted names of the datasets available to :func:`dataset`."""
    return sorted(_files())


def _sort_key(values):
    """Numeric order when every level looks like a number (R factor of ints)."""
    try:
        keys = [float(v) for v in values]
    except ValueError:
        return sorted(values)
    return [v for _, v in sorted(zip(keys, values))]


def _read(fname: str, appearance: tuple[str, ...] = ()) -> pd.DataFrame:
    raw = resources.files("mixedjax.datasets").joinpath("data", fname).read_bytes()
    if fname.endswith(".gz"):
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8")
    # Quoted fields are R factors/characters; unquoted ones are numbers.
    # pandas would parse a quoted "1" as a number, so look at the quoting
    # of the first data row to decide which columns are text.
    lines = text.splitlines()
    header = next(csv.reader([lines[0]]))
    text_cols: list[str] = []
    if len(lines) > 1:
        first = next(csv.reader([lines[1]], quoting=csv.QUOTE_NONNUMERIC))
        text_cols = [h for h, v in zip(header, first) if isinstance(v, str)]
    # only R's NA (and an empty field) is missing: "None" is a level (alfalfa's Date), not a missing value
    df = pd.read_csv(io.StringIO(text), dtype={c: str for c in text_cols}, keep_default_na=False, na_values=["NA", ""])
    for col in df.columns:
        if col in text_cols or df[col].dtype == object or pd.api.types.is_string_dtype(df[col]):
            levels = pd.unique(df[col].dropna()).tolist()
            levels = levels if col in appearance else _sort_key(levels)
            df[col] = pd.Categorical(df[col], categories=levels)
    return df


def dataset(name: str, names: str = "mixedmodels") -> pd.DataFrame:
    """Load a packaged example dataset as a :class:`pandas.DataFrame`.

    ``name`` is case-insensitive and may carry a leading ``:`` (as the Julia
    symbols of MixedModels.jl, e.g. ``":sleepstudy"``).  Text columns are
    returned as ``category`` dtype (sorted levels, or R's order where R's
    factor is not sorted); numeric columns keep their numeric dtype.  Each
    call returns a fresh copy.

    ``names="mixedmodels"`` (the default) gives MixedModels.jl's column names
    (sleepstudy: ``reaction``, ``days``, ``subj``); ``names="lme4"`` gives
    lme4's (sleepstudy: ``Reaction``, ``Days``, ``Subject``, with lme4's
    subject levels ``"308"``, ...; dyestuff: ``Batch``, ``Yield``), so lme4's
    formulas run as written.  Datasets whose names agree are the same either way.
    """
    if not isinstance(name, str):
        raise ArgumentError(
            f"dataset name must be a string, got {type(name).__name__}"
        )
    if names not in NAMES:
        raise ArgumentError(f"names must be one of {', '.join(map(repr, NAMES))}, not {names!r}")
    key = name.strip().lower()
    if key.startswith(":"):
        key = key[1:].strip()
    if key not in _CACHE:
        files = _files()
        if key not in files:
            raise DataError(
                f"unknown dataset {name!r}; available datasets: "
                + ", ".join(sorted(files))
            )
        _CACHE[key] = _read(files[key], _APPEARANCE_ORDER.get(key, ()))
    df = _CACHE[key].copy()
    return _as_lme4(key, df) if names == "lme4" else df


def _as_lme4(key: str, df: pd.DataFrame) -> pd.DataFrame:
    """lme4's column names (and sleepstudy's subject levels without MixedModels.jl's "S")."""
    df = df.rename(columns=_LME4_COLUMNS.get(key, {}))
    if key == "sleepstudy":
        df["Subject"] = df["Subject"].cat.rename_categories(lambda s: s[1:] if s.startswith("S") else s)
    if key in _LME4_ORDER:
        df = df[list(_LME4_ORDER[key])]
    return df
