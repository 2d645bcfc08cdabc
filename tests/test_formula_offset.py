"""offset(expr) terms of the fixed part: evaluated by the formula language, summed, rows aligned with y."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixedjax.design.build import build_design
from mixedjax.errors import DataError, FormulaError


@pytest.fixture(scope="module")
def df():
    rng = np.random.default_rng(3)
    n = 60
    return pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n), "t": rng.uniform(1, 5, size=n),
                         "u": rng.uniform(1, 2, size=n), "g": np.repeat(list("abcdef"), 10)})


def test_offset_is_not_a_column(df):
    d = build_design("y ~ 1 + x + offset(log(t)) + (1 | g)", df)
    assert d.xnames == ("(Intercept)", "x")
    np.testing.assert_allclose(d.offset, np.log(df["t"].to_numpy()), rtol=0, atol=0)
    assert build_design("y ~ 1 + x + (1 | g)", df).offset is None


def test_offsets_add_up(df):
    d = build_design("y ~ offset(log(t)) + x + offset(2 * u) + (1 | g)", df)
    np.testing.assert_allclose(d.offset, np.log(df["t"]) + 2 * df["u"], rtol=1e-15)
    assert d.xnames == ("(Intercept)", "x")


def test_offset_rows_follow_y(df):
    d0 = df.copy()
    d0.loc[[3, 7], "t"] = np.nan  # missing in the offset's column: the rows are dropped like any other
    d0.loc[11, "y"] = np.nan
    d = build_design("y ~ x + offset(t) + (1 | g)", d0)
    keep = ~d0.index.isin([3, 7, 11])
    assert d.n_dropped == 3 and len(d.offset) == len(d.y) == keep.sum()
    np.testing.assert_array_equal(d.offset, d0.loc[keep, "t"].to_numpy())
    np.testing.assert_array_equal(d.rows, d0.index[keep])


def test_offset_errors(df):
    with pytest.raises(FormulaError, match="offset"):
        build_design("y ~ x + x:offset(t) + (1 | g)", df)
    with pytest.raises(DataError, match="'tt'"):
        build_design("y ~ x + offset(log(tt)) + (1 | g)", df)
    with pytest.raises(DataError, match="NaN or infinite"):
        build_design("y ~ x + offset(log(x)) + (1 | g)", df)
    with pytest.raises(FormulaError, match="not allowed"):
        build_design("y ~ x + offset(t.__class__) + (1 | g)", df)
