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


def _read(fname: str) -> pd.DataFrame:
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
    df = pd.read_csv(io.StringIO(text), dtype={c: str for c in text_cols})
    for col in df.columns:
        if col in text_cols or df[col].dtype == object or pd.api.types.is_string_dtype(df[col]):
            levels = _sort_key(pd.unique(df[col].dropna()).tolist())
            df[col] = pd.Categorical(df[col], categories=levels)
    return df


def dataset(name: str) -> pd.DataFrame:
    """Load a packaged example dataset as a :class:`pandas.DataFrame`.

    ``name`` is case-insensitive and may carry a leading ``:`` (as the Julia
    symbols of MixedModels.jl, e.g. ``":sleepstudy"``).  Text columns are
    returned as ``category`` dtype with sorted levels; numeric columns keep
    their numeric dtype.  Each call returns a fresh copy.
    """
    if not isinstance(name, str):
        raise ArgumentError(
            f"dataset name must be a string, got {type(name).__name__}"
        )
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
        _CACHE[key] = _read(files[key])
    return _CACHE[key].copy()
