"""Prior weights and offsets given as arguments: a column name or an array, checked and aligned with the data's rows.

lme4's meaning: weights wᵢ make the residual variance σ²/wᵢ; an offset is a known term added to the linear predictor.
Missing values (NaN, None) drop the row like a missing value in any column the formula uses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError


def row_values(arg, data: pd.DataFrame, what: str) -> pd.Series | None:
    """``arg`` (None, a column name or an array of one value per row) as a float Series on the data's index."""
    if arg is None:
        return None
    if isinstance(arg, str):
        if arg not in data.columns:
            raise DataError(f"{what}={arg!r} names no column of the data; pass a column name or an array of "
                            f"{len(data)} values (one per row).")
        values = data[arg]
    else:
        values = np.asarray(arg)
        if values.ndim != 1 or len(values) != len(data):
            raise DataError(f"{what} must have one value per row of the data ({len(data)}), not shape "
                            f"{values.shape}; pass a column name or an array of that length.")
    try:
        out = pd.Series(pd.to_numeric(pd.Series(np.asarray(values), dtype=object)), dtype=float)
    except (TypeError, ValueError) as err:
        raise DataError(f"{what} must be numbers; {err}") from err
    out.index = data.index
    return out


def check_weights(w: np.ndarray) -> None:
    """Weights left after dropping missing rows: finite, non-negative and not all zero."""
    if np.isinf(w).any():
        raise DataError(f"the weights have infinite values in {int(np.isinf(w).sum())} rows; weights must be finite "
                        "and non-negative.")
    if (w < 0).any():
        raise DataError(f"the weights have negative values in {int((w < 0).sum())} rows (the first is "
                        f"{w[w < 0][0]:g}); weights must be non-negative (residual variance σ²/wᵢ).")
    if not (w > 0).any():
        raise DataError("all weights are zero: there is nothing to fit. Weights must be non-negative and not all "
                        "zero.")


def check_offset(off: np.ndarray) -> None:
    if np.isinf(off).any():
        raise DataError(f"the offset has infinite values in {int(np.isinf(off).sum())} rows; it must be finite.")
