"""data= as pandas (numpy or pyarrow dtypes), polars, pyarrow or a dict of arrays: one fit, whatever the table."""

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
from mixedjax.design.input import as_frame

FORMULA = "reaction ~ 1 + days + (1 + days | subj)"


@pytest.fixture(scope="module")
def base():
    df = mj.dataset("sleepstudy")
    return df, mj.lmm(FORMULA, df)


def _same_fit(m, ref):
    assert m.nobs == ref.nobs
    assert m.objective == pytest.approx(ref.objective, rel=1e-12)
    np.testing.assert_allclose(m.fixef.to_numpy(), ref.fixef.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(m.theta, ref.theta, rtol=1e-8)
    assert list(m.ranef()["subj"].index) == list(ref.ranef()["subj"].index)


def test_polars(base):
    pl = pytest.importorskip("polars")
    df, ref = base
    _same_fit(mj.lmm(FORMULA, pl.from_pandas(df)), ref)
    # text ids (pl.String) and categorical ones (pl.Categorical) alike
    plain = pl.from_pandas(df.astype({"subj": str}))
    assert plain.schema["subj"] == pl.String
    _same_fit(mj.lmm(FORMULA, plain), ref)


def test_pyarrow_table(base):
    pa = pytest.importorskip("pyarrow")
    df, ref = base
    _same_fit(mj.lmm(FORMULA, pa.Table.from_pandas(df, preserve_index=False)), ref)


def test_pandas_with_pyarrow_dtypes(base):
    pytest.importorskip("pyarrow")
    df, ref = base
    arrow = df.astype({"subj": "string[pyarrow]", "days": "int64[pyarrow]", "reaction": "float64[pyarrow]"})
    _same_fit(mj.lmm(FORMULA, arrow), ref)
    conv = as_frame(arrow)
    assert conv["days"].dtype == np.int64 and conv["reaction"].dtype == np.float64


def test_dict_of_arrays(base):
    df, ref = base
    d = {"subj": df["subj"].astype(str).to_numpy(), "days": df["days"].to_numpy(), "reaction": df["reaction"].tolist()}
    _same_fit(mj.lmm(FORMULA, d), ref)


def test_missing_values_from_polars_are_dropped(base):
    pl = pytest.importorskip("polars")
    df, _ = base
    d = df.copy()
    d["reaction"] = d["reaction"].astype(float)
    d.loc[[3, 10], "reaction"] = np.nan
    ref = mj.lmm(FORMULA, d)
    pdf = pl.from_pandas(d).with_columns(pl.col("reaction").fill_nan(None))  # polars' missing value is null
    m = mj.lmm(FORMULA, pdf)
    assert m.n_dropped == 2
    _same_fit(m, ref)


def test_pandas_index_is_kept():
    df = mj.dataset("sleepstudy")
    df.index = df.index + 1000
    assert as_frame(df).index[0] == 1000


def test_bad_tables_are_data_errors():
    with pytest.raises(mj.DataError, match="different lengths"):
        as_frame({"a": [1, 2], "b": [1]})
    with pytest.raises(mj.DataError, match="single value"):
        as_frame({"a": 1})
    with pytest.raises(mj.DataError, match="table"):
        as_frame(3.0)
