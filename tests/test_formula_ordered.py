"""Ordered factors as R codes them: polynomial contrasts (contr.poly, columns .L .Q .C ^4 ...) for an ordered pandas
Categorical or ``ordered(x)`` / ``factor(x, ordered = TRUE)`` in the formula, indicators where R uses indicators,
and the fit's coding for new data of any dtype. Against lme4 1.1-31 on lme4's cake, whose temperature is an ordered
factor in R (tests/reference/lmm_sweep10.json from make_sweep-lmm.R: ordered_cake, ordered_more, contr_poly).
Tolerances: objective 1e-6 relative; β 1e-5 of its scale; SE 1e-4 relative; contr.poly 1e-12.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
from mixedjax.design.model_matrix import contr_poly

REF = Path(__file__).resolve().parent / "reference"
JSON = json.loads((REF / "lmm_sweep10.json").read_text())
FORMULA = "angle ~ recipe*temperature + (1|recipe:replicate)"


def _cake(ordered: bool = True) -> pd.DataFrame:
    d = pd.read_csv(REF / "lmm_sweep10" / "cake.csv")
    if ordered:  # R's cake: temperature an ordered factor, levels 175 < 185 < ... < 225
        d["temperature"] = pd.Categorical(d["temperature"], ordered=True)
    return d


def _check(m, ref, rtol_se=1e-4):
    assert list(m.fixef.index) == ref["beta_names"]
    beta = np.array(ref["beta"])
    np.testing.assert_allclose(m.fixef.to_numpy(), beta, rtol=0, atol=1e-5 * max(1.0, np.abs(beta).max()))
    np.testing.assert_allclose(m.stderror.to_numpy(), ref["se"], rtol=rtol_se)
    assert m.objective == pytest.approx(ref["objective"], rel=1e-6)


@pytest.mark.parametrize("k", range(2, 8))
def test_contr_poly_is_rs(k):
    z, names = contr_poly(k)
    np.testing.assert_allclose(z, np.array(JSON["contr_poly"][k - 2]).reshape(k, k - 1), atol=1e-12)
    assert names == [".L", ".Q", ".C", "^4", "^5", "^6"][: k - 1]


@pytest.mark.parametrize("reml", [True, False])
def test_ordered_categorical_gets_polynomial_contrasts(reml):
    ref = JSON["ordered_cake"]["REML" if reml else "ML"]
    m = mj.lmm(FORMULA, _cake(), reml=reml)
    _check(m, ref)
    np.testing.assert_allclose(m.theta, ref["theta"], rtol=1e-4)
    assert m.sigma == pytest.approx(ref["sigma"], rel=1e-6)
    np.testing.assert_allclose(m.fitted().to_numpy(), ref["fitted"], atol=1e-6)


def test_ordered_in_the_formula():
    ref = JSON["ordered_cake"]["REML"]
    d = _cake(ordered=False)  # the CSV: temperature plain numbers
    for f, name in [("angle ~ recipe*ordered(temperature) + (1|recipe:replicate)", "ordered(temperature)"),
                    ("angle ~ recipe*factor(temperature, ordered = TRUE) + (1|recipe:replicate)",
                     "factor(temperature, ordered = TRUE)")]:
        m = mj.lmm(f, d, reml=True)
        assert list(m.fixef.index) == [n.replace("temperature", name) for n in ref["beta_names"]]
        np.testing.assert_allclose(m.fixef.to_numpy(), ref["beta"], atol=1e-5 * 40)
        assert m.objective == pytest.approx(ref["objective"], rel=1e-6)
    # factor() of an ordered factor stays ordered (R: ordered = is.ordered(x)); ordered = FALSE drops it
    m = mj.lmm("angle ~ recipe*factor(temperature) + (1|recipe:replicate)", _cake(), reml=True)
    assert "factor(temperature).L" in m.fixef.index
    m = mj.lmm("angle ~ recipe*factor(temperature, ordered = FALSE) + (1|recipe:replicate)", _cake(), reml=True)
    assert "factor(temperature, ordered = FALSE)185" in m.fixef.index


@pytest.mark.parametrize("formula", list(JSON["ordered_more"]))
def test_ordered_codings_as_r(formula):
    """No intercept: all indicators; in an interaction whose other factor has its main effect: contrasts."""
    _check(mj.lmm(formula, _cake(), reml=False), JSON["ordered_more"][formula], rtol_se=1e-3)


def test_new_data_are_coded_as_the_fit():
    m = mj.lmm(FORMULA, _cake(), reml=True)
    fitted = JSON["ordered_cake"]["REML"]["fitted"][:12]
    plain = _cake(ordered=False).iloc[:12]  # numbers, text, an unordered categorical: the fit's contrasts all the same
    for nd in (plain, plain.astype({"temperature": str}), plain.astype({"temperature": "category"})):
        np.testing.assert_allclose(m.predict(nd).to_numpy(), fitted, atol=1e-6)


def test_relevel_of_an_ordered_factor_is_an_error():
    with pytest.raises(mj.errors.FormulaError, match="unordered"):
        mj.lmm("angle ~ relevel(temperature, '185') + (1|replicate)", _cake())


# ---- anova: lmerTest's tables do not depend on the contrasts; type III maps the treatment hypotheses to β ----------
def _anova_data(name):
    if name.startswith("cake"):
        d = _cake()
        return d.drop(index=[4, 16, 39, 100, 149, 201, 232, 259]) if name == "cake_unbalanced" else d
    d = pd.read_csv(REF / "lmm_sweep10" / "Oats.csv")
    d["nitro_o"] = pd.Categorical(d["nitro"], ordered=True)
    return d


@pytest.mark.parametrize("key", list(JSON["ordered_anova"]))
def test_anova_with_an_ordered_factor(key):
    ref = JSON["ordered_anova"][key]
    name, type_ = key.split()
    m = mj.lmm(ref["formula"], _anova_data(name), reml=True)
    tab = m.anova(type=int(type_))
    assert list(tab.index) == ref["terms"]
    np.testing.assert_allclose(tab["NumDF"].to_numpy(), ref["NumDF"])
    np.testing.assert_allclose(tab["DenDF"].to_numpy(), ref["DenDF"], rtol=1e-3)
    np.testing.assert_allclose(tab["F value"].to_numpy(), ref["F"], rtol=1e-4)
    np.testing.assert_allclose(tab["Pr(>F)"].to_numpy(), ref["p"], rtol=1e-3)


def _oats():
    d = pd.read_csv(REF / "lmm_sweep10" / "Oats.csv")
    d["nitro_o"] = pd.Categorical(d["nitro"], ordered=True)
    # R: ordered(c("low", "mid", "high")[(1:72 %% 3) + 1], levels = c("low", "mid", "high"))
    d["lev"] = pd.Categorical(np.array(["low", "mid", "high"])[np.arange(1, 73) % 3],
                              categories=["low", "mid", "high"], ordered=True)
    return d


def test_ordered_levels_in_their_order_not_sorted():
    _check(mj.lmm("yield ~ nitro + lev + (1 | Block)", _oats()), JSON["ordered_levels"], rtol_se=1e-3)


def test_ordered_factor_in_a_random_effects_term():
    """lme4 codes a random-effects term's ordered factor as its fixed part would: no intercept, so indicators."""
    ref = JSON["ordered_random"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular, in lme4 too
        m = mj.lmm("yield ~ nitro_o + (1 | Block) + (0 + nitro_o | Variety)", _oats())
    _check(m, ref, rtol_se=1e-2)
    assert list(m.ranef()["Variety"].columns) == ref["ranef_columns"]
