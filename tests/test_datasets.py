import pandas as pd
import pytest

import mixedjax as mj

EXPECTED = {
    "cbpp": ((56, 4), {"herd", "period"}),
    "dyestuff": ((30, 2), {"batch"}),
    "dyestuff2": ((30, 2), {"batch"}),
    "insteval": ((73421, 7), {"s", "d", "dept", "studage", "lectage", "service"}),
    "pastes": ((60, 3), {"batch", "cask"}),
    "penicillin": ((144, 3), {"plate", "sample"}),
    "sleepstudy": ((180, 3), {"subj"}),
}


def test_datasets_list():
    names = mj.datasets()
    assert names == sorted(names)
    assert set(EXPECTED) <= set(names)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dataset_loads(name):
    df = mj.dataset(name)
    shape, text_cols = EXPECTED[name]
    assert isinstance(df, pd.DataFrame)
    assert df.shape == shape
    for col in df.columns:
        if col in text_cols:
            assert isinstance(df[col].dtype, pd.CategoricalDtype), col
            assert not df[col].isna().any()
        else:
            assert pd.api.types.is_numeric_dtype(df[col]), col


def test_every_listed_dataset_loads():
    for name in mj.datasets():
        assert len(mj.dataset(name)) > 0


def test_sleepstudy_columns():
    df = mj.dataset("sleepstudy")
    assert list(df.columns) == ["subj", "days", "reaction"]
    assert df["subj"].cat.categories.size == 18
    assert df["reaction"].dtype.kind == "f"


def test_categories_sorted():
    df = mj.dataset("dyestuff")
    assert list(df["batch"].cat.categories) == list("ABCDEF")
    # quoted numeric codes stay factors, in numeric order like lme4
    herd = mj.dataset("cbpp")["herd"]
    assert list(herd.cat.categories) == [str(i) for i in range(1, 16)]


def test_case_insensitive_and_julia_symbol():
    ref = mj.dataset("sleepstudy")
    for name in ["SleepStudy", "  SLEEPSTUDY ", ":sleepstudy"]:
        pd.testing.assert_frame_equal(mj.dataset(name), ref)


def test_returns_copy():
    a = mj.dataset("dyestuff")
    a["yield"] = 0.0
    assert mj.dataset("dyestuff")["yield"].iloc[0] != 0.0


def test_unknown_name():
    with pytest.raises(mj.DataError) as info:
        mj.dataset("nosuchdata")
    err = info.value
    assert isinstance(err, ValueError)
    assert isinstance(err, mj.MixedjaxError)
    msg = str(err)
    assert "nosuchdata" in msg
    for name in mj.datasets():
        assert name in msg


@pytest.mark.parametrize("bad", [None, 3, ["sleepstudy"]])
def test_non_string_name(bad):
    with pytest.raises(mj.ArgumentError) as info:
        mj.dataset(bad)
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, mj.MixedjaxError)
