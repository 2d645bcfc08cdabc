"""R's meaning for R idioms in formulas, against lme4 (tests/reference/lme4_r_formulas.json, lme4's lmer by ML) and
against values computed here with numpy from their definitions.

Tolerances: deviance 1e-6 absolute (lme4 prints it to ~1e-10), fixed effects 1e-6 relative, θ 1e-3 (optimiser
stopping differences); model-matrix columns to 1e-12.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
from mixedjax.design.build import build_design
from mixedjax.errors import DataError, FormulaError

REF = Path(__file__).resolve().parent / "reference"
CASES = json.loads((REF / "lme4_r_formulas.json").read_text())


def _alfalfa() -> pd.DataFrame:
    # as R's read.csv: only "NA" is missing (the level "None" is a level); text columns are factors
    d = pd.read_csv(REF / "alfalfa.csv", dtype={"Variety": str, "Date": str, "Block": str}, keep_default_na=False,
                    na_values=["NA"])
    for c in ("Variety", "Date", "Block"):
        d[c] = d[c].astype("category")
    return d


DATA = {"sleepstudy": mj.dataset("sleepstudy"), "alfalfa": _alfalfa()}


def _design(formula, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lme4 drops rank-deficient columns too (the %in% case)
        return build_design(formula, data)


@pytest.mark.parametrize("case", CASES, ids=[c["formula"] for c in CASES])
def test_lme4_r_formulas(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mj.lmm(case["formula"], DATA[case["data"]], reml=False)
    assert list(m.fixef.index) == case["beta_names"]
    assert m.nobs == case["nobs"]
    assert abs(m.deviance - case["deviance"]) < 1e-6, (m.deviance, case["deviance"])
    np.testing.assert_allclose(m.fixef.to_numpy(), case["beta"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(m.theta, np.atleast_1d(case["theta"]), rtol=1e-3, atol=1e-4)


# ---- '^' is a power inside I() and any call; outside, the formula operator ------------------------------------------
@pytest.mark.parametrize("kind", ["int64", "int32", "float64", "Int64"])
def test_power_inside_calls_is_a_power(kind):
    d = DATA["sleepstudy"].copy()
    d["days"] = d["days"].astype(kind)
    days = d["days"].to_numpy(dtype=float)
    des = build_design("reaction ~ I(days^2) + I((days - 4)^3) + sqrt(days^2 + 1) + I(days ^ 0.5) + (1 | subj)", d)
    X = pd.DataFrame(des.X, columns=des.xnames)
    assert des.xnames == ("(Intercept)", "I(days^2)", "I((days - 4)^3)", "sqrt(days^2 + 1)", "I(days^0.5)")
    np.testing.assert_allclose(X["I(days^2)"], days * days, rtol=1e-15)  # 2 XOR 2 would be 0, 3 XOR 2 = 1, ...
    np.testing.assert_allclose(X["I((days - 4)^3)"], (days - 4) ** 3, rtol=1e-15)
    np.testing.assert_allclose(X["sqrt(days^2 + 1)"], np.sqrt(days * days + 1), rtol=1e-15)
    np.testing.assert_allclose(X["I(days^0.5)"], np.sqrt(days), rtol=1e-15)
    # the Python spelling keeps working and is the same column, named as R deparses it
    des2 = build_design("reaction ~ I(days**2) + (1 | subj)", d)
    assert des2.xnames == ("(Intercept)", "I(days^2)")
    np.testing.assert_array_equal(des2.X[:, 1], days * days)


def test_power_outside_calls_is_the_formula_operator():
    d = DATA["alfalfa"]
    a = _design("Yield ~ (Date + Variety)^2 + (1 | Block)", d)
    b = _design("Yield ~ Date * Variety + (1 | Block)", d)
    assert a.xnames == b.xnames
    assert _design("Yield ~ Date^2 + (1 | Block)", d).xnames == _design("Yield ~ Date + (1 | Block)", d).xnames


# ---- TRUE/FALSE, %in%, factor, as.numeric, relevel --------------------------------------------------------------
def test_logical_constants_and_logical_terms():
    d = DATA["sleepstudy"]
    days = d["days"].to_numpy()
    des = build_design("reaction ~ I(days > 4) + (1 | subj)", d)
    assert des.xnames == ("(Intercept)", "I(days > 4)TRUE")  # R: a logical term is a factor with levels FALSE, TRUE
    np.testing.assert_array_equal(des.X[:, 1], (days > 4).astype(float))
    for spelling in ("TRUE", "T", "True"):
        des = build_design(f"reaction ~ poly(days, 2, raw = {spelling}) + (1 | subj)", d)
        np.testing.assert_array_equal(des.X[:, 2], days.astype(float) ** 2)


def test_in_is_an_interaction_without_main_effects():
    d = DATA["alfalfa"]
    assert _design("Yield ~ Date %in% Variety + (1 | Block)", d).xnames == \
        _design("Yield ~ Date:Variety + (1 | Block)", d).xnames
    # a + b %in% a is a + a:b (R's nesting)
    assert _design("Yield ~ Variety + Date %in% Variety + (1 | Block)", d).xnames == \
        _design("Yield ~ Variety + Variety:Date + (1 | Block)", d).xnames


def test_factor_of_numbers_has_sorted_numeric_levels():
    d = pd.DataFrame({"y": np.arange(40.0) % 7, "k": np.tile([10, 2, 1, 2.5], 10), "g": np.repeat(list("abcd"), 10)})
    des = build_design("y ~ factor(k) + (1 | g)", d)
    assert des.xnames == ("(Intercept)", "factor(k)2", "factor(k)2.5", "factor(k)10")
    np.testing.assert_array_equal(des.X[:, 3], (d["k"] == 10).to_numpy(float))


def test_as_numeric():
    d = DATA["alfalfa"]
    des = build_design("Yield ~ as.numeric(Date) + (1 | Block)", d)
    codes = d["Date"].cat.codes.to_numpy() + 1.0  # R's level codes 1, 2, ...
    np.testing.assert_array_equal(des.X[:, 1], codes)
    # text that holds numbers is parsed, as R's as.numeric of a character vector
    t = pd.DataFrame({"y": np.arange(30.0) ** 1.5, "s": [str(v) for v in np.arange(30) * 0.5],
                      "g": np.repeat(list("abc"), 10)})
    np.testing.assert_array_equal(build_design("y ~ as.numeric(s) + (1 | g)", t).X[:, 1], np.arange(30) * 0.5)
    with pytest.raises(DataError, match="as.numeric"):
        build_design("Yield ~ as.numeric(Variety2) + (1 | Block)", d.assign(Variety2=d["Variety"].astype(str)))


def test_relevel_positional_and_named():
    d = DATA["alfalfa"]
    a = _design('Yield ~ relevel(Date, "S1") + (1 | Block)', d)
    b = _design('Yield ~ relevel(Date, ref = "S1") + (1 | Block)', d)
    assert a.xnames[1:] == ('relevel(Date, "S1")None', 'relevel(Date, "S1")O7', 'relevel(Date, "S1")S20')
    assert b.xnames[1:] == tuple(n.replace('"S1")', 'ref = "S1")') for n in a.xnames[1:])
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.X[:, 1], (d["Date"] == "None").to_numpy(float))
    with pytest.raises(DataError, match=r"'S9' is not a level.*None, O7, S1, S20"):
        _design('Yield ~ relevel(Date, ref = "S9") + (1 | Block)', d)


# ---- poly, scale ---------------------------------------------------------------------------------------------------
def test_orthogonal_poly_is_r_s():
    # R: poly(1:10, 2)[1, ] = (-4.5 / sqrt(82.5), 12 / sqrt(528)) = (-0.4954337, 0.5222330), by its definition
    d = pd.DataFrame({"y": np.sin(np.arange(40.0)), "x": np.tile(np.arange(1.0, 11.0), 4),
                      "g": np.repeat(list("abcd"), 10)})
    des = build_design("y ~ poly(x, 2) + (1 | g)", d)
    assert des.xnames == ("(Intercept)", "poly(x, 2)1", "poly(x, 2)2")
    np.testing.assert_allclose(des.X[0, 1:] * 2, [-4.5 / np.sqrt(82.5), 12 / np.sqrt(528)], rtol=1e-13)
    P = des.X[:, 1:]
    np.testing.assert_allclose(P.T @ P, np.eye(2), atol=1e-13)
    np.testing.assert_allclose(P.sum(axis=0), 0, atol=1e-13)


def test_orthogonal_poly_fits_lme4_s_raw_poly_model():
    # the same column space as poly(days, 2, raw = TRUE): lme4's deviance for that model
    ref = next(c for c in CASES if c["formula"] == "reaction ~ poly(days, 2, raw = TRUE) + (1 | subj)")
    m = mj.lmm("reaction ~ poly(days, 2) + (1 | subj)", DATA["sleepstudy"], reml=False)
    assert abs(m.deviance - ref["deviance"]) < 1e-6


def test_scale_as_r():
    d = DATA["sleepstudy"].copy()
    x = d["days"].to_numpy(float)
    sd = np.std(x, ddof=1)
    rms = np.sqrt(np.sum(x**2) / (len(x) - 1))
    for expr, want in {"scale(days)": (x - x.mean()) / sd, "scale(days, center = FALSE)": x / rms,
                       "scale(days, center = 2, scale = 3)": (x - 2) / 3}.items():
        des = build_design(f"reaction ~ {expr} + (1 | subj)", d)
        assert des.xnames == ("(Intercept)", expr)
        np.testing.assert_allclose(des.X[:, 1], want, rtol=1e-14)
    # R evaluates scale() on all rows before dropping those with a missing value elsewhere
    d.loc[[0, 5, 9], "reaction"] = np.nan
    des = build_design("reaction ~ scale(days, scale = FALSE) + (1 | subj)", d)
    np.testing.assert_allclose(des.X[:, 1], np.delete(x, [0, 5, 9]) - x.mean(), rtol=1e-14)


# ---- elementary functions, response expressions --------------------------------------------------------------------
def test_elementary_functions():
    d = DATA["sleepstudy"]
    x, r = d["days"].to_numpy(float), d["reaction"].to_numpy()
    exprs = {"log(days + 1)": np.log(x + 1), "log2(days + 1)": np.log2(x + 1), "log10(days + 1)": np.log10(x + 1),
             "log1p(days)": np.log1p(x), "exp(days/10)": np.exp(x / 10), "sqrt(days)": np.sqrt(x),
             "abs(days - 4.5)": np.abs(x - 4.5), "sin(days)": np.sin(x), "cos(days)": np.cos(x),
             "pmin(days, 3)": np.minimum(x, 3), "pmax(days, 3, 5)": np.maximum(np.maximum(x, 3), 5),
             "log(days + 1, base = 2)": np.log2(x + 1), "np.log1p(days)": np.log1p(x),
             "arctan(days)": np.arctan(x)}
    for expr, want in exprs.items():
        des = build_design(f"reaction ~ {expr.replace('/', ' / ')} + (1 | subj)", d)
        assert des.xnames == ("(Intercept)", expr)  # named as R deparses the call ('days/10')
        np.testing.assert_allclose(des.X[:, 1], want, rtol=1e-14, atol=1e-15)
    for resp, y in {"sqrt(reaction)": np.sqrt(r), "abs(reaction - 300)": np.abs(r - 300),
                    "log(reaction)": np.log(r), "reaction / 1000": r / 1000}.items():
        np.testing.assert_allclose(build_design(f"{resp} ~ days + (1 | subj)", d).y, y, rtol=1e-15)


# ---- names as R writes them ----------------------------------------------------------------------------------------
def test_dotted_and_backquoted_names_everywhere():
    base = DATA["sleepstudy"]
    ref = build_design("reaction ~ days + I(days^2) + (1 + days | subj)", base)
    dotted = base.rename(columns={"subj": "subj.id", "days": "days.n", "reaction": "total.fruits"})
    for formula in ("total.fruits ~ days.n + I(days.n^2) + (1 + days.n | subj.id)",
                    "`total.fruits` ~ `days.n` + I(`days.n`^2) + (1 + `days.n` | `subj.id`)"):
        des = build_design(formula, dotted)
        np.testing.assert_array_equal(des.X, ref.X)
        np.testing.assert_array_equal(des.y, ref.y)
        np.testing.assert_array_equal(des.terms[0].z, ref.terms[0].z)
        assert des.xnames == ("(Intercept)", "days.n", "I(days.n^2)") and des.terms[0].name == "subj.id"
    spaced = base.rename(columns={"subj": "the subject", "days": "days of study", "reaction": "reaction time"})
    des = build_design("`reaction time` ~ `days of study` + log(`days of study` + 1) + (1 + `days of study` | "
                       "`the subject`)", spaced)
    assert des.xnames == ("(Intercept)", "days of study", "log(`days of study` + 1)")
    assert des.terms[0].columns == ("(Intercept)", "days of study") and des.terms[0].name == "the subject"
    np.testing.assert_array_equal(des.X[:, 1], ref.X[:, 1])


def test_interaction_column_order_and_names_follow_r():
    d = DATA["alfalfa"]
    des = _design("Yield ~ Variety * Date + (1 | Block)", d)
    v, t = ["Ladak", "Ranger"], ["O7", "S1", "S20"]
    inter = [f"Variety{a}:Date{b}" for b in t for a in v]  # the first variable varies fastest
    assert des.xnames == ("(Intercept)", *[f"Variety{a}" for a in v], *[f"Date{b}" for b in t], *inter)
    x = d.assign(x=np.arange(len(d)) % 5)
    des = _design("Yield ~ poly(x, 2):Variety + (1 | Block)", x)
    assert des.xnames[1:4] == ("poly(x, 2)1:VarietyCossack", "poly(x, 2)2:VarietyCossack",
                               "poly(x, 2)1:VarietyLadak")


# ---- no silent reinterpretation ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "formula, words",
    [
        ("reaction ~ I(subj + 1) + (1 | subj)", "as.numeric"),
        ("reaction ~ I(days %in% subj) + (1 | subj)", "must be constants"),
        ("reaction ~ I(days * 2 %in% c(4)) + (1 | subj)", "needs parentheses"),  # R's %in% binds tighter than *
        ("reaction ~ days == 2 + (1 | subj)", "I()"),
        ("reaction ~ I(1:3) + (1 | subj)", "sequence"),
        ("reaction ~ . + (1 | subj)", "all other columns"),
        ("reaction ~ I(days < 2 < 3) + (1 | subj)", "chained comparison"),
        ("reaction ~ relevel(subj) + (1 | subj)", "needs the argument 'ref'"),
        ("reaction ~ poly(days, 2.5) + (1 | subj)", "whole number"),
        ('reaction ~ I("a") + (1 | subj)', "string"),
        ("reaction ~ I(days * 2 %% 3) + (1 | subj)", "needs parentheses"),  # R's %% binds tighter than *
        ("reaction ~ I(days<-3) + (1 | subj)", "assignment"),
    ],
)
def test_constructs_without_r_meaning_are_refused(formula, words):
    with pytest.raises(FormulaError) as info:
        build_design(formula, DATA["sleepstudy"])
    assert words in str(info.value), str(info.value)


def test_reductions_and_factor_levels():
    d = DATA["sleepstudy"]
    x = d["days"].to_numpy(float)
    des = build_design("reaction ~ I(days - mean(days)) + (1 | subj)", d)
    np.testing.assert_allclose(des.X[:, 1], x - x.mean(), rtol=1e-14, atol=1e-14)
    des = build_design("reaction ~ I((days - median(days)) / sd(days)) + (1 | subj)", d)
    np.testing.assert_allclose(des.X[:, 1], (x - np.median(x)) / np.std(x, ddof=1), rtol=1e-14, atol=1e-14)
    a = DATA["alfalfa"]
    des = _design('Yield ~ factor(Date, levels = c("S1", "None", "O7", "S20")) + (1 | Block)', a)
    assert des.xnames[1:] == tuple(f'factor(Date, levels = c("S1", "None", "O7", "S20")){lv}'
                                   for lv in ("None", "O7", "S20"))
    np.testing.assert_array_equal(des.X[:, 1], (a["Date"] == "None").to_numpy(float))
    with pytest.raises(DataError, match="not among the levels given"):
        _design('Yield ~ factor(Date, levels = c("S1", "None")) + (1 | Block)', a)
    with pytest.raises(FormulaError, match="constant"):
        _design("Yield ~ I(c(1, 2)) + (1 | Block)", a)


def test_membership_and_as_character():
    a = DATA["alfalfa"]
    des = _design('Yield ~ I(Date %in% c("S1", "S20")) + (1 | Block)', a)
    assert des.xnames == ("(Intercept)", 'I(Date %in% c("S1", "S20"))TRUE')
    np.testing.assert_array_equal(des.X[:, 1], a["Date"].isin(["S1", "S20"]).to_numpy(float))
    d = DATA["sleepstudy"]
    des = _design("reaction ~ I(days %in% c(0, 9)) + (1 | subj)", d)
    np.testing.assert_array_equal(des.X[:, 1], d["days"].isin([0, 9]).to_numpy(float))
    # R's idiom for a factor whose labels are numbers: as.numeric(as.character(f)) gives the numbers
    f = pd.DataFrame({"y": np.arange(30.0) ** 1.2, "g": np.repeat(list("abc"), 10),
                      "k": pd.Categorical(np.tile(["10", "2", "2.5"], 10), categories=["2", "2.5", "10"])})
    np.testing.assert_array_equal(_design("y ~ as.numeric(as.character(k)) + (1 | g)", f).X[:, 1],
                                  np.tile([10, 2, 2.5], 10))
    np.testing.assert_array_equal(_design("y ~ as.numeric(k) + (1 | g)", f).X[:, 1], np.tile([3.0, 1, 2], 10))
