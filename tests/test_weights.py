"""Prior weights and offsets: lme4's fits of sleepstudy with weights and with an offset, and the checks of bad input.

References: lme4 1.1-31, copied into tests/reference/lme4_weights_offsets.json. Tolerances: the objective equal to
1e-9 relative or lower (our optimiser stops later than lme4's), β to 1e-6, standard errors to 2e-4 relative and θ to
2e-4 absolute (lme4's θ stops about 1e-4 short of the optimum on the weighted case)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj

REF = json.loads((Path(__file__).parent / "reference" / "lme4_weights_offsets.json").read_text())["cases"]
CASES = {c["id"]: c for c in REF}


def _check(m, e):
    assert m.objective <= e["objective"] * (1 + 1e-9)
    assert m.objective == pytest.approx(e["objective"], rel=1e-6)
    np.testing.assert_allclose(m.fixef.to_numpy(), e["beta"], rtol=1e-6)
    names = e["beta_names"]
    assert list(m.fixef.index) == ([names] if isinstance(names, str) else names)  # R's JSON unboxes length 1
    np.testing.assert_allclose(m.stderror.to_numpy(), e["se"], rtol=2e-4)
    np.testing.assert_allclose(np.abs(m.theta), np.abs(e["theta"]), atol=2e-4)
    assert m.sigma == pytest.approx(e["sigma"], rel=2e-4)
    assert m.nobs == e["nobs"]


@pytest.mark.parametrize("reml", [False, True])
def test_weighted_fit_matches_lme4(reml):
    c = CASES["sleepstudy_weighted"]
    df = mj.dataset("sleepstudy")
    w = np.asarray(c["weights"], float)
    np.testing.assert_allclose(w, 1 + (df["days"].to_numpy() % 3) / 2)  # the reference's weights expression
    m = mj.lmm(c["formula"], df, weights=w, reml=reml)
    _check(m, c["REML" if reml else "ML"])
    # a column name gives the same fit
    m2 = mj.lmm(c["formula"], df.assign(w=w), weights="w", reml=reml)
    assert m2.objective == m.objective


@pytest.mark.parametrize("reml", [False, True])
def test_offset_fit_matches_lme4(reml):
    """offset(10 * days) in the formula, and the same offset as an argument (array or column), give lme4's fit."""
    c = CASES["sleepstudy_offset"]
    df = mj.dataset("sleepstudy")
    e = c["REML" if reml else "ML"]
    m = mj.lmm(c["formula"], df, reml=reml)
    _check(m, e)
    plain = c["formula"].replace(" + offset(10 * days)", "")
    for off in (10 * df["days"].to_numpy(), "ten_days"):
        m2 = mj.lmm(plain, df.assign(ten_days=10 * df["days"]), offset=off, reml=reml)
        assert m2.objective == pytest.approx(m.objective, rel=1e-12)
    # fitted values include the offset
    np.testing.assert_allclose(m.fitted().to_numpy() - 10 * df["days"].to_numpy(),
                               m.fixef.iloc[0] + m.ranef()["subj"].loc[df["subj"], "(Intercept)"].to_numpy(),
                               rtol=1e-10)


def test_formula_and_argument_offsets_add_up():
    df = mj.dataset("sleepstudy")
    a = mj.lmm("reaction ~ 1 + offset(4 * days) + (1 | subj)", df, offset=6 * df["days"].to_numpy())
    b = mj.lmm("reaction ~ 1 + offset(10 * days) + (1 | subj)", df)
    assert a.objective == pytest.approx(b.objective, rel=1e-12)


def test_unit_weights_change_nothing():
    df = mj.dataset("sleepstudy")
    f = "reaction ~ 1 + days + (1 + days | subj)"
    assert mj.lmm(f, df, weights=np.ones(len(df))).objective == pytest.approx(mj.lmm(f, df).objective, rel=1e-12)


def test_weights_scale_like_lme4():
    """Multiplying every weight by c multiplies σ² by c and changes nothing else (the deviance included)."""
    df = mj.dataset("sleepstudy")
    f = "reaction ~ 1 + days + (1 | subj)"
    w = np.asarray(CASES["sleepstudy_weighted"]["weights"], float)
    a, b = mj.lmm(f, df, weights=w), mj.lmm(f, df, weights=3 * w)
    np.testing.assert_allclose(a.fixef, b.fixef, rtol=1e-8)
    assert b.sigma**2 == pytest.approx(3 * a.sigma**2, rel=1e-6)
    assert b.objective == pytest.approx(a.objective, rel=1e-10)  # the same model: σ² absorbs c, Σ log w cancels it


@pytest.mark.parametrize("bad, match", [
    (-1.0, "negative"),
    (np.inf, "infinite"),
])
def test_bad_weights_are_data_errors(bad, match):
    df = mj.dataset("sleepstudy")
    w = np.ones(len(df))
    w[5] = bad
    with pytest.raises(mj.DataError, match=match):
        mj.lmm("reaction ~ 1 + days + (1 | subj)", df, weights=w)


def test_weights_of_the_wrong_length_all_zero_or_not_a_column():
    df = mj.dataset("sleepstudy")
    f = "reaction ~ 1 + days + (1 | subj)"
    with pytest.raises(mj.DataError, match="one value per row"):
        mj.lmm(f, df, weights=np.ones(len(df) - 1))
    with pytest.raises(mj.DataError, match="all weights are zero"):
        mj.lmm(f, df, weights=np.zeros(len(df)))
    with pytest.raises(mj.DataError, match="names no column"):
        mj.lmm(f, df, weights="nope")
    with pytest.raises(mj.DataError, match="numbers"):
        mj.lmm(f, df, weights=["a"] * len(df))
    with pytest.raises(mj.DataError, match="offset"):
        mj.lmm(f, df, offset=np.full(len(df), np.inf))


def test_missing_and_zero_weights_drop_their_rows():
    """A missing weight or offset drops its row, counted like a missing value; so does a zero weight (no
    information). The fit equals the fit of the remaining rows."""
    df = mj.dataset("sleepstudy")
    f = "reaction ~ 1 + days + (1 | subj)"
    w = np.ones(len(df))
    w[[3, 10]] = np.nan
    w[20] = 0.0
    off = np.zeros(len(df))
    off[40] = np.nan
    m = mj.lmm(f, df, weights=w, offset=off)
    assert m.n_dropped == 4 and m.nobs == len(df) - 4
    keep = np.ones(len(df), bool)
    keep[[3, 10, 20, 40]] = False
    ref = mj.lmm(f, df[keep])
    assert m.objective == pytest.approx(ref.objective, rel=1e-12)
    assert list(m.fitted().index) == list(df.index[keep])


def test_missing_weight_in_a_pandas_column():
    df = mj.dataset("sleepstudy").assign(w=1.0)
    df.loc[df.index[7], "w"] = None
    m = mj.lmm("reaction ~ 1 + days + (1 | subj)", df, weights="w")
    assert m.n_dropped == 1 and isinstance(m.fitted(), pd.Series)
