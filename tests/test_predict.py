"""predict against lme4's predict (all terms, population level, a subset of terms) and the traps of encoding new
data: the fit's own fixed-effect encoding, unseen levels, integer ids, missing values, other table types."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj

CASES = {c["id"]: c for c in json.loads((Path(__file__).parent / "reference" / "lme4_predict.json").read_text())["cases"]}
_FITS = {}


def _fit(formula, data):
    key = (formula, data)
    if key not in _FITS:
        _FITS[key] = mj.lmm(formula, mj.dataset(data))
    return _FITS[key]


@pytest.mark.parametrize("cid", [k for k, c in CASES.items() if "newdata" in c])
def test_predict_matches_lme4(cid):
    # lme4's predict(m, newdata, allow.new.levels=TRUE), predict(m, newdata, re.form=NA) and, for penicillin,
    # re.form=~(1 | plate); our optimum's θ is within about 1e-5 of lme4's, so 1e-5 relative
    c = CASES[cid]
    m = _fit(c["formula"], c["data"])
    nd = pd.DataFrame(c["newdata"])
    p = m.predict(nd)
    assert isinstance(p, pd.Series) and list(p.index) == list(nd.index)
    np.testing.assert_allclose(p.to_numpy(), c["predict_all"], rtol=1e-5)
    np.testing.assert_allclose(m.predict(nd, re_form="~0").to_numpy(), c["predict_population"], rtol=1e-9)
    np.testing.assert_allclose(m.predict(nd, re_form="NA").to_numpy(), c["predict_population"], rtol=1e-9)
    if "predict_partial" in c:
        np.testing.assert_allclose(m.predict(nd, re_form=c["re_form"]).to_numpy(), c["predict_partial"], rtol=1e-5)


def test_predict_without_newdata_is_fitted():
    m = _fit("reaction ~ 1 + days + (1 + days | subj)", "sleepstudy")
    np.testing.assert_allclose(m.predict().to_numpy(), m.fitted().to_numpy(), rtol=1e-13)
    X = m.problem.design.X
    np.testing.assert_allclose(m.predict(re_form="~0").to_numpy(), X @ m.fixef.to_numpy(), rtol=1e-13)


def test_partial_re_form_selects_term_columns():
    # re_form "~(1 | subj)" on the slope model keeps the intercept of the subj term only
    m = _fit("reaction ~ 1 + days + (1 + days | subj)", "sleepstudy")
    nd = pd.DataFrame({"days": [2.0, 7.0], "subj": ["S309", "S337"]})
    b = m.ranef()["subj"]
    expect = m.fixef["(Intercept)"] + m.fixef["days"] * nd["days"] + b.loc[nd["subj"], "(Intercept)"].to_numpy()
    np.testing.assert_allclose(m.predict(nd, re_form="~(1 | subj)").to_numpy(), expect.to_numpy(), rtol=1e-13)
    with pytest.raises(mj.FormulaError, match="plate"):
        m.predict(nd, re_form="~(1 | plate)")


def test_new_levels_population_and_error():
    m = _fit("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin")
    nd = pd.DataFrame({"plate": ["a", "zz", "zz"], "sample": ["A", "A", "Q"]})
    p = m.predict(nd)
    b = m.ranef()
    beta0 = m.fixef.iloc[0]
    np.testing.assert_allclose(p.to_numpy(), [beta0 + b["plate"].loc["a"].iloc[0] + b["sample"].loc["A"].iloc[0],
                                              beta0 + b["sample"].loc["A"].iloc[0], beta0], rtol=1e-13)
    with pytest.raises(mj.DataError, match=r"column 'plate'.*'zz'"):
        m.predict(nd, new_levels="error")
    # unseen levels only matter for the terms used
    m.predict(nd.iloc[:2], re_form="~(1 | sample)", new_levels="error")
    with pytest.raises(mj.ArgumentError, match="new_levels"):
        m.predict(nd, new_levels="allow")


def test_population_prediction_needs_no_grouping_column_nor_response():
    m = _fit("reaction ~ 1 + days + (1 + days | subj)", "sleepstudy")
    p = m.predict({"days": [0.0, 10.0]}, re_form="~0")
    np.testing.assert_allclose(p.to_numpy(), m.fixef.iloc[0] + m.fixef.iloc[1] * np.array([0.0, 10.0]), rtol=1e-13)
    with pytest.raises(mj.DataError, match="'subj'"):
        m.predict({"days": [0.0]})


def test_fixed_factor_uses_the_fits_encoding():
    # new data holding one level of a factor: its contrast columns are kept (the fit's ModelSpec), not dropped
    df = mj.dataset("alfalfa")
    m = mj.lmm("Yield ~ 1 + Date * Variety + (1 | Block/Variety)", df)
    rows = df[(df["Date"] == "S20") & (df["Variety"] == "Ranger")]
    p = m.predict(rows)
    np.testing.assert_allclose(p.to_numpy(), m.fitted().loc[rows.index].to_numpy(), rtol=1e-12)
    # text columns (not categorical) with the same values encode alike
    plain = rows.astype({"Date": object, "Variety": object, "Block": object})
    np.testing.assert_allclose(m.predict(plain).to_numpy(), p.to_numpy(), rtol=1e-13)
    bad = rows.iloc[:1].astype({"Date": object}).copy()
    bad["Date"] = "S99"
    with pytest.raises(mj.DataError, match=r"column 'Date'.*'S99'"):
        m.predict(bad)


def test_stateful_transforms_use_the_fits_values():
    # scale(x) and poly(x, 2) use the fit's coefficients, I(x^2) and factor(f) are evaluated as in the fit; an
    # offset term of the formula is added
    rng = np.random.default_rng(3)
    n = 90
    df = pd.DataFrame({"x": rng.normal(5, 2, n), "f": rng.integers(0, 3, n), "g": rng.integers(0, 9, n),
                       "t": rng.uniform(1, 2, n)})
    df["y"] = 1 + 0.3 * df.x - 0.05 * df.x**2 + 0.5 * df.f + rng.normal(size=9)[df.g] + rng.normal(size=n)
    m = mj.lmm("y ~ 1 + scale(x) + I(x^2) + factor(f) + offset(log(t)) + (1 | g)", df)
    m2 = mj.lmm("y ~ 1 + poly(x, 2) + factor(f) + (1 | g)", df)
    sub = df.iloc[[4, 17, 50]].drop(columns="y")
    for model in (m, m2):
        np.testing.assert_allclose(model.predict(sub).to_numpy(), model.fitted().iloc[[4, 17, 50]].to_numpy(),
                                   rtol=1e-12)
    # the offset is part of the fitted values and of the predictions
    np.testing.assert_allclose(m.fitted().to_numpy() - m.predict(re_form="~0").to_numpy(),
                               [m.ranef()["g"].loc[g].iloc[0] for g in df["g"]], rtol=1e-9, atol=1e-12)


def test_integer_ids_stay_integers():
    df = mj.dataset("sleepstudy")
    df["id"] = df["subj"].cat.codes.astype(int) + 100
    m = mj.lmm("reaction ~ 1 + days + (1 + days | id)", df)
    b = m.ranef()["id"]
    assert b.index.dtype.kind == "i" and b.index[0] == 100
    assert b.loc[101].shape == (2,)
    nd = pd.DataFrame({"days": [3.0], "id": [101]})
    expect = m.fixef.iloc[0] + b.loc[101].iloc[0] + 3.0 * (m.fixef.iloc[1] + b.loc[101].iloc[1])
    assert m.predict(nd, new_levels="error").iloc[0] == pytest.approx(expect, rel=1e-13)
    # the id given as text names the same level
    assert m.predict(pd.DataFrame({"days": [3.0], "id": ["101"]}), new_levels="error").iloc[0] == pytest.approx(
        expect, rel=1e-13)


def test_rows_with_missing_predictors_are_absent():
    m = _fit("reaction ~ 1 + days + (1 + days | subj)", "sleepstudy")
    nd = pd.DataFrame({"days": [1.0, np.nan, 2.0], "subj": ["S308", "S308", None]}, index=["a", "b", "c"])
    p = m.predict(nd)
    assert list(p.index) == ["a", "c"]
    # a missing grouping level is predicted at the population value (or is an error)
    assert p.loc["c"] == pytest.approx(m.fixef.iloc[0] + 2 * m.fixef.iloc[1], rel=1e-13)
    with pytest.raises(mj.DataError, match="None"):
        m.predict(nd, new_levels="error")


def test_predict_from_polars_and_pyarrow():
    pl = pytest.importorskip("polars")
    pa = pytest.importorskip("pyarrow")
    m = _fit("reaction ~ 1 + days + (1 + days | subj)", "sleepstudy")
    nd = pd.DataFrame({"days": [0.0, 5.0, 9.0], "subj": ["S308", "S309", "NEW"]})
    want = m.predict(nd).to_numpy()
    np.testing.assert_allclose(m.predict(pl.from_pandas(nd)).to_numpy(), want, rtol=1e-13)
    np.testing.assert_allclose(m.predict(pa.Table.from_pandas(nd)).to_numpy(), want, rtol=1e-13)
