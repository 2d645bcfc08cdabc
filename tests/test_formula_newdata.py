"""encode_new: new data encoded exactly as the fit's data (levels, contrasts, poly and scale coefficients)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixedjax.design import encode_new
from mixedjax.design.build import build_design
from mixedjax.errors import DataError

FORMULA = ("y ~ poly(x, 2) * f + scale(x) + factor(k) + I(x^2) + relevel(f, ref = \"c\") + offset(log(t))"
           " + (1 + x | g) + (1 | h)")


@pytest.fixture(scope="module")
def df():
    rng = np.random.default_rng(5)
    n = 90
    return pd.DataFrame({
        "y": rng.normal(size=n), "x": rng.normal(size=n), "t": rng.uniform(1, 3, size=n),
        "f": pd.Categorical(rng.choice(list("abc"), size=n)), "k": rng.integers(1, 4, size=n),
        "g": np.repeat(np.arange(9), 10), "h": np.tile(list("uvw"), 30),
    })


@pytest.fixture(scope="module")
def design(df):
    # scale(x), I(x^2) and relevel(f) repeat columns of poly(x, 2) * f: dropped, which encode_new must follow
    with pytest.warns(UserWarning, match="rank deficient so dropping 4 columns"):
        return build_design(FORMULA, df)


def _by_name(design, values):
    return {t.name: v for t, v in zip(design.terms, values)}


def test_fit_rows_reencoded(df, design):
    new = encode_new(design, df)
    np.testing.assert_allclose(new.X, design.X, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(new.offset, design.offset, rtol=1e-15)
    for t, z, c in zip(design.terms, new.z, new.codes):
        np.testing.assert_allclose(z, t.z, rtol=1e-13, atol=1e-14)
        np.testing.assert_array_equal(c, t.codes)
    assert not new.missing.any()


def test_a_few_rows_in_another_order_give_the_fit_s_rows(df, design):
    # poly() and scale() use the fit's coefficients, not ones recomputed on the new rows
    idx = [40, 3, 17, 3]
    sub = df.iloc[idx].reset_index(drop=True)
    sub["f"] = sub["f"].astype(str)  # levels matched by value, whatever the dtype
    sub["g"] = sub["g"].astype(float)
    new = encode_new(design, sub)
    np.testing.assert_allclose(new.X, design.X[idx], rtol=1e-13, atol=1e-14)
    for t, z, c in zip(design.terms, new.z, new.codes):
        np.testing.assert_allclose(z, t.z[idx], rtol=1e-13, atol=1e-14)
        np.testing.assert_array_equal(c, t.codes[idx])


def test_unseen_levels(df, design):
    sub = df.iloc[:3].copy()
    sub["g"] = [0, 99, 1]  # a grouping level the fit did not have: code -1
    sub["h"] = ["u", "zz", None]
    new = encode_new(design, sub)
    codes = _by_name(design, new.codes)
    assert codes["g"][1] == -1 and codes["g"][0] == design.terms[[t.name for t in design.terms].index("g")].codes[0]
    assert codes["h"][1] == -1 and codes["h"][2] == -1
    bad = df.iloc[:3].copy()
    bad["f"] = ["a", "d", "b"]
    with pytest.raises(DataError, match=r"'f'.*levels"):
        encode_new(design, bad)
    bad = df.iloc[:3].copy()
    bad["k"] = [1, 7, 2]
    with pytest.raises(DataError, match=r"factor\(k\)"):
        encode_new(design, bad)


def test_without_random_effects_and_missing_values(df, design):
    sub = df.drop(columns=["g", "h", "y"]).iloc[:4].copy()
    sub.loc[sub.index[1], "x"] = np.nan
    new = encode_new(design, sub, random=False)
    assert new.z == () and new.codes == ()
    assert new.missing.tolist() == [False, True, False, False]
    np.testing.assert_allclose(new.X[[0, 2, 3]], design.X[[0, 2, 3]], rtol=1e-13, atol=1e-14)
    with pytest.raises(DataError, match="'g'"):
        encode_new(design, sub)


def test_levels_matched_by_value_whatever_the_dtype(df, design):
    sub = df.iloc[[5, 6, 7]].copy()
    sub["k"] = sub["k"].astype(str)  # numbers in the fit, text of numbers in the new data
    sub["h"] = pd.Categorical(sub["h"])
    new = encode_new(design, sub)
    np.testing.assert_allclose(new.X, design.X[[5, 6, 7]], rtol=1e-13, atol=1e-14)
    sub["k"] = ["one", "two", "three"]
    with pytest.raises(DataError, match="'k'"):
        encode_new(design, sub)


def test_grouping_levels_named_as_r_and_matched_by_value():
    d = pd.DataFrame({"y": np.sin(np.arange(40.0)) + np.repeat(np.arange(4.0), 10), "g": np.repeat([1.0, 2.5, 5.0, 7.0], 10)})
    des = build_design("y ~ 1 + (1 | g)", d)
    assert des.terms[0].levels == ("1", "2.5", "5", "7")  # R's factor() of 1, 2.5, 5, 7
    new = encode_new(des, pd.DataFrame({"g": ["5", 7, 2.5, 3.0]}))
    assert new.codes[0].tolist() == [2, 3, 1, -1]
