import numpy as np
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
    "alfalfa": ((72, 4), {"Variety", "Date", "Block"}),
    "verbagg": ((7584, 9), {"Gender", "item", "resp", "id", "btype", "situ", "mode", "r2"}),
    "grouseticks": ((403, 7), {"INDEX", "BROOD", "YEAR", "LOCATION"}),
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


def test_lme4_names():
    df = mj.dataset("sleepstudy", names="lme4")
    assert list(df.columns) == ["Reaction", "Days", "Subject"]
    assert list(df["Subject"].cat.categories[:2]) == ["308", "309"]  # lme4's levels
    np.testing.assert_array_equal(df["Reaction"].to_numpy(), mj.dataset("sleepstudy")["reaction"].to_numpy())
    assert list(mj.dataset("dyestuff", names="lme4").columns) == ["Batch", "Yield"]
    assert list(mj.dataset("penicillin", names="lme4").columns) == list(mj.dataset("penicillin").columns)
    with pytest.raises(mj.ArgumentError, match="names"):
        mj.dataset("sleepstudy", names="R")


def test_lme4_formula_runs_on_lme4_names(reference_lme4):
    # lme4's own formula as written; the objective is lme4's (tests/reference/lme4.json)
    ref = next(r for r in reference_lme4
               if r["formula"] == "reaction ~ 1 + days + (1 + days | subj)" and not r["reml"])
    m = mj.lmm("Reaction ~ Days + (Days | Subject)", mj.dataset("sleepstudy", names="lme4"))
    assert m.objective == pytest.approx(ref["objective"], rel=1e-8)


def test_new_datasets_levels_in_rs_order():
    a = mj.dataset("alfalfa")
    assert list(a["Date"].cat.categories) == ["None", "S1", "S20", "O7"]  # "None" is a level, not missing
    assert list(a["Variety"].cat.categories) == ["Cossack", "Ladak", "Ranger"]
    v = mj.dataset("verbagg")
    assert list(v["mode"].cat.categories) == ["want", "do"]
    assert list(v["item"].cat.categories[:2]) == ["S1WantCurse", "S1WantScold"]
    assert list(v["resp"].cat.categories) == ["no", "perhaps", "yes"]
    g = mj.dataset("grouseticks")
    assert list(g["YEAR"].cat.categories) == ["95", "96", "97"]
    assert g["TICKS"].dtype.kind == "i"


def test_package_data_stays_small():
    from importlib import resources

    sizes = {e.name: len(e.read_bytes()) for e in resources.files("mixedjax.datasets").joinpath("data").iterdir()}
    assert sum(sizes.values()) < 600_000, sizes
    assert all(n.endswith(".gz") for n, s in sizes.items() if s > 100_000), sizes
