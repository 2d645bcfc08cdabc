"""Formula parsing and the host design: random-effects terms, grouping factors, fixed-effects column names, missing
values and rank deficiency."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
from mixedjax.design.build import build_design
from mixedjax.formula.parse import parse_formula

_DEV = jax.jit(mj.deviance, static_argnames=("layout", "reml"))


@pytest.fixture(scope="module")
def df():
    rng = np.random.default_rng(42)
    n = 120
    d = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "f": rng.choice(["A", "B", "C"], size=n),
            "a": rng.choice(["a1", "a2", "a3", "a4"], size=n),
            "b": rng.choice(["b1", "b2", "b3"], size=n),
            "g": rng.choice([f"g{i}" for i in range(8)], size=n),
            "num": rng.integers(1, 13, size=n),  # numeric grouping column with levels 1..12
        }
    )
    d["y"] = 3 + d["x"] + rng.normal(size=n) + d["g"].map({f"g{i}": rng.normal() for i in range(8)})
    return d


# ---------------------------------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, canonical",
    [
        ("y~1+(1|g)", "y ~ 1 + (1 | g)"),
        ("y  ~ x+ ( 1 + x || g )", "y ~ x + (1 + x || g)"),
        ("y~x+I(x**2)+(1|a/b)", "y ~ x + I(x**2) + (1 | a/b)"),
        ("y ~ 1 + (1 | g)", "y ~ 1 + (1 | g)"),
    ],
)
def test_canonical_spacing(text, canonical):
    assert parse_formula(text).text == canonical


def test_nested_grouping_expands():
    pf = parse_formula("y ~ 1 + (1 | a/b)")
    assert [rt.group for rt in pf.random] == [("a",), ("a", "b")]
    assert [rt.group_name for rt in pf.random] == ["a", "a:b"]
    assert [rt.expr for rt in pf.random] == ["1", "1"]
    pf3 = parse_formula("y ~ 1 + (1 | a/b/c)")
    assert [rt.group_name for rt in pf3.random] == ["a", "a:b", "a:b:c"]


def test_double_bar_splits_columns():
    pf = parse_formula("y ~ 1 + x + (1 + x || g)")
    assert [rt.expr for rt in pf.random] == ["1", "0 + x"]
    assert all(rt.group == ("g",) for rt in pf.random)
    pf0 = parse_formula("y ~ 1 + (0 + x + w || g)")
    assert [rt.expr for rt in pf0.random] == ["0 + x", "0 + w"]


def test_fixed_and_response():
    pf = parse_formula("y ~ 1 + x + (1 | g)")
    assert pf.response == "y"
    assert pf.fixed == "1 + x"
    pf = parse_formula("y ~ (1 | g)")
    assert pf.fixed == "1"


# ---------------------------------------------------------------------------------------------------------------
# random-effects terms in the design
# ---------------------------------------------------------------------------------------------------------------
def test_nested_design_terms(df):
    d = build_design("y ~ 1 + (1 | a/b)", df)
    names = [t.name for t in d.terms]
    assert names == ["a:b", "a"]  # ordered by number of levels, largest first
    ab = d.terms[0]
    pairs = sorted(set(zip(df["a"], df["b"])))
    assert ab.levels == tuple(f"{x}:{y}" for x, y in pairs)
    assert ab.nlevels == len(pairs)
    # the codes index the right combination, row by row
    lev = np.array(ab.levels)[ab.codes]
    np.testing.assert_array_equal(lev, (df["a"] + ":" + df["b"]).to_numpy())
    problem = mj.Problem.build("y ~ 1 + (1 | a/b)", df)
    assert problem.layout.m == 2


def test_combination_grouping(df):
    d = build_design("y ~ 1 + (1 | a:b)", df)
    assert len(d.terms) == 1
    t = d.terms[0]
    assert t.name == "a:b"
    assert set(t.levels) == {f"{x}:{y}" for x, y in zip(df["a"], df["b"])}
    np.testing.assert_array_equal(np.array(t.levels)[t.codes], (df["a"] + ":" + df["b"]).to_numpy())


def test_vector_term_pattern(df):
    d = build_design("y ~ 1 + x + (1 + x | g)", df)
    (t,) = d.terms
    assert t.columns == ("(Intercept)", "x")
    assert t.pattern == ((0, 0), (1, 0), (1, 1))  # lower triangle, column by column
    assert t.correlated
    np.testing.assert_array_equal(t.theta0(), [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(t.z[:, 0], 1.0)
    np.testing.assert_array_equal(t.z[:, 1], df["x"].to_numpy())


def test_zerocorr_term(df):
    d = build_design("y ~ 1 + x + (1 + x || g)", df)
    assert len(d.terms) == 1
    (t,) = d.terms
    assert t.s == 2
    assert t.columns == ("(Intercept)", "x")
    assert t.pattern == ((0, 0), (1, 1))  # λ diagonal
    assert not t.correlated
    assert t.ntheta == 2
    problem = mj.Problem.build("y ~ 1 + x + (1 + x || g)", df)
    assert problem.layout.ntheta == 2


def test_separate_terms_on_one_factor_merge_into_zerocorr(df):
    a = mj.Problem.build("y ~ 1 + x + (1 | g) + (0 + x | g)", df)
    b = mj.Problem.build("y ~ 1 + x + (1 + x || g)", df)
    assert len(a.design.terms) == 1
    ta, tb = a.design.terms[0], b.design.terms[0]
    assert ta.pattern == tb.pattern == ((0, 0), (1, 1))
    assert ta.columns == tb.columns
    np.testing.assert_array_equal(ta.z, tb.z)
    np.testing.assert_array_equal(ta.codes, tb.codes)
    assert a.layout == b.layout
    for th in ([1.0, 1.0], [0.7, 0.2], [0.0, 1.3]):
        for reml in (False, True):
            va = float(_DEV(jnp.asarray(th), a.arrays, a.layout, reml))
            vb = float(_DEV(jnp.asarray(th), b.arrays, b.layout, reml))
            assert va == pytest.approx(vb, rel=1e-13)


def test_no_intercept_random_term(df):
    d = build_design("y ~ 1 + x + (0 + x | g)", df)
    (t,) = d.terms
    assert t.columns == ("x",)
    assert t.s == 1
    np.testing.assert_array_equal(t.z[:, 0], df["x"].to_numpy())


def test_numeric_grouping_column_is_categorical(df):
    d = build_design("y ~ 1 + (1 | num)", df)
    (t,) = d.terms
    uniq = np.unique(df["num"])
    assert t.nlevels == len(uniq)
    # levels in numeric order (as R's factor() of a number): 1, 2, ..., 10, 11, 12, not "1", "10", "11", "2"
    assert t.levels == tuple(str(v) for v in uniq)
    np.testing.assert_array_equal(np.array(t.levels)[t.codes], df["num"].astype(str).to_numpy())
    assert np.all(t.z == 1.0)


# ---------------------------------------------------------------------------------------------------------------
# fixed-effects columns, named like lme4
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fixed, names",
    [
        ("x", ("(Intercept)", "x")),
        ("1 + x", ("(Intercept)", "x")),
        ("0 + x", ("x",)),
        ("x - 1", ("x",)),
        ("-1 + x", ("x",)),
        ("x * f", ("(Intercept)", "x", "fB", "fC", "x:fB", "x:fC")),
        ("x + f + x:f", ("(Intercept)", "x", "fB", "fC", "x:fB", "x:fC")),
        ("x:f", ("(Intercept)", "x:fA", "x:fB", "x:fC")),
        ("f * b", ("(Intercept)", "fB", "fC", "bb2", "bb3", "fB:bb2", "fC:bb2", "fB:bb3", "fC:bb3")),
        ("C(num)", ("(Intercept)",) + tuple(f"C(num){i}" for i in range(2, 13))),
        ("x + I(x**2)", ("(Intercept)", "x", "I(x^2)")),  # R deparses ** as ^, as lme4 names it
    ],
)
def test_fixed_effect_names(df, fixed, names):
    d = build_design(f"y ~ {fixed} + (1 | g)", df)
    assert d.xnames == names, d.xnames
    assert d.X.shape == (len(df), len(names))
    if "(Intercept)" in names:
        np.testing.assert_array_equal(d.X[:, names.index("(Intercept)")], 1.0)


def test_fixed_effect_values(df):
    d = build_design("y ~ x * f + I(x**2) + (1 | g)", df)
    X = pd.DataFrame(d.X, columns=d.xnames)
    x = df["x"].to_numpy()
    np.testing.assert_allclose(X["x"], x)
    np.testing.assert_array_equal(X["fB"], (df["f"] == "B").astype(float))
    np.testing.assert_allclose(X["x:fC"], x * (df["f"] == "C"))
    np.testing.assert_allclose(X["I(x^2)"], x**2)
    np.testing.assert_allclose(d.y, df["y"].to_numpy())


def test_implicit_intercept_in_fit_matches_explicit(df):
    a = mj.Problem.build("y ~ x + (1 | g)", df)
    b = mj.Problem.build("y ~ 1 + x + (1 | g)", df)
    assert a.design.xnames == b.design.xnames == ("(Intercept)", "x")
    np.testing.assert_array_equal(a.design.X, b.design.X)


# ---------------------------------------------------------------------------------------------------------------
# missing values and rank deficiency (one fit)
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def messy():
    rng = np.random.default_rng(7)
    n = 90
    d = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice([f"g{i}" for i in range(9)], size=n)})
    d["x2"] = 2.0 * d["x"]  # duplicates x
    d["y"] = 1 + d["x"] + rng.normal(size=n) + d["g"].map({f"g{i}": 2 * rng.normal() for i in range(9)})
    d["unused"] = 1.0
    d.loc[[2, 5], "y"] = np.nan
    d.loc[11, "x"] = np.nan
    d.loc[13, "g"] = None
    d.loc[20, "unused"] = np.nan  # not used by the formula: must not drop the row
    before = d.copy(deep=True)
    with pytest.warns(UserWarning, match=r"x2"):
        m = mj.lmm("y ~ 1 + x + x2 + (1 | g)", d)
    return d, before, m


def test_missing_rows_dropped(messy):
    d, before, m = messy
    assert m.n_dropped == 4
    assert m.nobs == len(d) - 4
    np.testing.assert_array_equal(np.sort(m.problem.design.rows), np.setdiff1d(d.index, [2, 5, 11, 13]))
    text = str(m)
    assert "dropped" in text.lower()
    assert "4" in [tok.strip(".,:;()") for tok in text.split()]
    pd.testing.assert_frame_equal(d, before)


def test_rank_deficient_column_dropped(messy):
    d, _, m = messy
    assert "x2" not in m.fixef.index
    assert list(m.fixef.index) == ["(Intercept)", "x"]
    assert m.dropped_columns == ("x2",)
    assert list(m.stderror.index) == ["(Intercept)", "x"]
    assert m.dof == 2 + 1 + 1


def test_rank_deficient_fit_equals_fit_without_the_column(messy):
    d, _, m = messy
    ref = mj.lmm("y ~ 1 + x + (1 | g)", d)
    assert m.objective == pytest.approx(ref.objective, rel=1e-12)
    np.testing.assert_allclose(m.fixef.to_numpy(), ref.fixef.to_numpy(), rtol=1e-8)
