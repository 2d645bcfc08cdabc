"""Inputs that must simply work: missing values, integer/float32/boolean/nullable columns, numeric grouping,
categoricals with unused levels, string factors, rank-deficient X, extreme scales, implicit intercepts.

Every variant has the shape of one of two base models (n = 60, 6 groups), so each compiles once: the design is
checked on the host, and the fit is compared with the base fit.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
from mixedjax.design.build import build_design

N, L = 60, 6
SCALAR = "y ~ 1 + x + f + (1 | g)"
VECTOR = "y ~ 1 + x + (1 + x | g)"


def _base(seed=3):
    rng = np.random.default_rng(seed)
    gi = np.repeat(np.arange(L), N // L)
    x = np.round(rng.normal(size=N), 1)
    f = np.tile(["a", "b", "c"], N // 3)
    b0, b1 = rng.normal(size=L), 0.5 * rng.normal(size=L)
    y = 2.0 + 0.7 * x + (f == "b") * 0.5 + b0[gi] + b1[gi] * x + rng.normal(scale=0.8, size=N)
    return pd.DataFrame({"y": y, "x": x, "f": f, "g": np.array(["g%d" % i for i in range(L)])[gi]})


BASE = _base()


def _lmm(formula, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a must-work input gives no warning unless the test expects one
        return mj.lmm(formula, data, **kw)


@pytest.fixture(scope="module")
def base_scalar():
    return _lmm(SCALAR, BASE)


@pytest.fixture(scope="module")
def base_vector():
    return _lmm(VECTOR, BASE)


def _same_fit(m, ref, rtol=1e-8, ranef=True):
    assert np.isfinite(m.objective)
    np.testing.assert_allclose(m.objective, ref.objective, rtol=rtol)
    np.testing.assert_allclose(m.theta, ref.theta, rtol=max(rtol, 1e-6), atol=1e-6)
    np.testing.assert_allclose(m.fixef.to_numpy(), ref.fixef.to_numpy(), rtol=max(rtol, 1e-6))
    np.testing.assert_allclose(m.stderror.to_numpy(), ref.stderror.to_numpy(), rtol=max(rtol, 1e-6))
    np.testing.assert_allclose(m.sigma, ref.sigma, rtol=max(rtol, 1e-6))
    assert list(m.fixef.index) == list(ref.fixef.index)
    if ranef:
        for k, v in ref.ranef().items():
            w = m.ranef()[k]
            w.index = w.index.astype(str)
            v = v.copy()
            v.index = v.index.astype(str)
            np.testing.assert_allclose(w.loc[v.index].to_numpy(), v.to_numpy(), rtol=1e-5, atol=1e-8)


# ---- missing values -----------------------------------------------------------------------------------------------
def _with_missing_rows():
    """BASE plus 7 rows, each missing a value in one used column (NaN, None, pd.NA); n after dropping is 60."""
    extra = BASE.iloc[:7].copy().astype(object)
    extra.loc[0, "y"] = np.nan
    extra.loc[1, "x"] = None
    extra.loc[2, "f"] = None
    extra.loc[3, "g"] = np.nan
    extra.loc[4, "y"] = pd.NA
    extra.loc[5, "g"] = None
    extra.loc[6, "x"] = np.nan
    extra.index = range(1000, 1007)
    d = pd.concat([extra.iloc[:4], BASE, extra.iloc[4:]])
    d["y"] = pd.to_numeric(d["y"])
    d["x"] = pd.to_numeric(d["x"])
    d["unused"] = np.nan  # a column the formula does not use: its missing values drop nothing
    return d


def test_missing_values_are_dropped_and_counted(base_scalar):
    d = _with_missing_rows()
    m = _lmm(SCALAR, d)
    assert m.n_dropped == 7 and m.nobs == N
    _same_fit(m, base_scalar)
    assert "dropped" in str(m) and "7" in str(m)
    assert base_scalar.n_dropped == 0


def test_missing_values_in_nullable_columns():
    d = BASE.copy()
    d["y"] = pd.array(np.round(d.y * 10), dtype="Int64")
    d.loc[[3, 9], "y"] = pd.NA
    d["x"] = d["x"].astype("Float64")
    d.loc[11, "x"] = pd.NA
    design = build_design(SCALAR, d)
    assert design.n_dropped == 3 and design.n == N - 3
    assert design.y.dtype == np.float64 and np.all(np.isfinite(design.X))


# ---- column types -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "convert",
    [
        lambda s: s.astype(np.float32),
        lambda s: np.round(s * 10).astype(np.int64),
        lambda s: np.round(s * 10).astype(np.int32),
        lambda s: pd.array(np.round(s * 10), dtype="Int64"),
        lambda s: s > s.median(),
        lambda s: pd.array(s > s.median(), dtype="boolean"),
        lambda s: s.astype(object),
    ],
    ids=["float32", "int64", "int32", "Int64", "bool", "boolean", "object"],
)
@pytest.mark.parametrize("column", ["y", "x"])
def test_numeric_kinds_in_response_fixed_and_slope(convert, column):
    d = BASE.copy()
    d[column] = convert(d[column])
    expected = np.asarray(pd.Series(d[column]).to_numpy(dtype=np.float64))
    # a logical covariate is R's factor of FALSE / TRUE (model.matrix's xTRUE: the same 0 / 1 column with an
    # intercept); a logical response is 0 / 1, as lmer takes it
    name = "xTRUE" if pd.api.types.is_bool_dtype(d[column]) else "x"
    for formula in (SCALAR, VECTOR):
        design = build_design(formula, d)
        got = design.y if column == "y" else design.X[:, list(design.xnames).index(name)]
        np.testing.assert_array_equal(got, expected)
        if column == "x" and formula == VECTOR:
            np.testing.assert_array_equal(design.terms[0].z[:, 1], expected)
    m = _lmm(VECTOR, d)
    assert np.isfinite(m.objective) and np.all(np.isfinite(m.theta)) and np.all(np.isfinite(m.fixef))


@pytest.mark.parametrize(
    "convert",
    [
        lambda s: s.str[1:].astype(int),
        lambda s: s.str[1:].astype(float) * 2.5,
        lambda s: s.str[1:].astype(int) + 5,  # levels 5..10: numeric order differs from text order
        lambda s: pd.Categorical(s),
        lambda s: s.astype(object),
        lambda s: s.str[1:].astype(int) % 2 == 0,  # boolean: only two levels
    ],
    ids=["int", "float", "int-order", "categorical", "object", "bool"],
)
def test_grouping_column_types(convert, base_scalar):
    d = BASE.copy()
    d["g"] = convert(d["g"])
    m = _lmm(SCALAR, d)
    if d["g"].nunique() == L:
        _same_fit(m, base_scalar, ranef=False)
        b = m.ranef()["g"].iloc[:, 0].to_numpy()
        assert sorted(np.round(b, 6)) == sorted(np.round(base_scalar.ranef()["g"].iloc[:, 0].to_numpy(), 6))
    else:
        assert m.ngroups == {"g": 2} and np.isfinite(m.objective)


def test_categoricals_with_unused_levels(base_scalar):
    d = BASE.copy()
    d["g"] = pd.Categorical(d.g, categories=["zz"] + sorted(d.g.unique()) + ["unused"])
    d["f"] = pd.Categorical(d.f, categories=["a", "b", "never", "c"])
    m = _lmm(SCALAR, d)  # no rank-deficiency warning: unused levels are not columns
    assert m.ngroups == {"g": L}
    assert list(m.fixef.index) == ["(Intercept)", "x", "fb", "fc"]
    assert list(m.ranef()["g"].index) == sorted(BASE.g.unique())
    _same_fit(m, base_scalar)


def test_levels_unused_after_dropping_missing_rows():
    d = BASE.copy()
    d["f"] = pd.Categorical(d.f)
    d.loc[d.f == "c", "y"] = np.nan  # level 'c' of f only occurs in dropped rows
    design = build_design(SCALAR, d)
    assert design.xnames == ("(Intercept)", "x", "fb") and design.dropped_columns == ()
    assert design.n_dropped == 20


@pytest.mark.parametrize("kind", ["object", "str", "category"])
def test_string_columns_are_treatment_coded_factors(kind):
    d = BASE.assign(f=BASE.f.astype(kind))
    design = build_design(SCALAR, d)
    assert design.xnames == ("(Intercept)", "x", "fb", "fc")
    np.testing.assert_array_equal(design.X[:, 2], (BASE.f == "b").to_numpy(float))
    np.testing.assert_array_equal(design.X[:, 3], (BASE.f == "c").to_numpy(float))


def test_factor_in_random_slope_is_treatment_coded():
    design = build_design("y ~ 1 + (1 + f | g)", BASE)
    assert design.terms[0].columns == ("(Intercept)", "fb", "fc")
    design = build_design("y ~ 1 + (0 + f | g)", BASE)
    assert design.terms[0].columns == ("fa", "fb", "fc")


def test_data_as_dict(base_scalar):
    m = _lmm(SCALAR, {c: BASE[c].to_list() for c in BASE.columns})
    _same_fit(m, base_scalar)


def test_column_with_a_space():
    d = BASE.rename(columns={"x": "my x", "g": "my g"})
    design = build_design("y ~ 1 + `my x` + f + (1 | `my g`)", d)
    assert design.xnames[1] == "my x" and design.terms[0].name == "my g"


# ---- rank-deficient X ---------------------------------------------------------------------------------------------
def test_rank_deficient_fixed_effects(base_scalar):
    d = BASE.assign(x2=2.0 * BASE.x - 1.0, f2=BASE.f)
    with pytest.warns(UserWarning, match=r"rank deficient so dropping 3 columns: x2, f2b, f2c"):
        m = mj.lmm("y ~ 1 + x + f + x2 + f2 + (1 | g)", d)
    assert m.dropped_columns == ("x2", "f2b", "f2c")
    assert list(m.fixef.index) == ["(Intercept)", "x", "fb", "fc"]
    _same_fit(m, base_scalar)


# ---- extreme scales -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c", [1e-100, 1e-30, 1e30, 1e100])
def test_response_on_extreme_scales(c, base_scalar):
    m = _lmm(SCALAR, BASE.assign(y=BASE.y * c))
    ref = base_scalar
    # d(θ) shifts by n log c² exactly
    np.testing.assert_allclose(m.objective - 2 * N * np.log(c), ref.objective, rtol=1e-9)
    # θ to the optimiser's tolerance (its stopping rule ignores the n log c² shift, so it does not depend on c)
    np.testing.assert_allclose(m.theta, ref.theta, rtol=1e-6)
    np.testing.assert_allclose(m.fixef.to_numpy() / c, ref.fixef.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(m.sigma / c, ref.sigma, rtol=1e-6)
    np.testing.assert_allclose(m.stderror.to_numpy() / c, ref.stderror.to_numpy(), rtol=1e-6)
    assert np.all(np.isfinite(m.ranef()["g"].to_numpy()))


@pytest.mark.parametrize("c", [1e-50, 1e-20, 1e20, 1e50])
def test_covariate_on_extreme_scales(c, base_scalar):
    m = _lmm(SCALAR, BASE.assign(x=BASE.x * c))
    ref = base_scalar
    np.testing.assert_allclose(m.objective, ref.objective, rtol=1e-10)
    np.testing.assert_allclose(m.theta, ref.theta, rtol=1e-6)
    scale = np.array([1.0, c, 1.0, 1.0])
    np.testing.assert_allclose(m.fixef.to_numpy() * scale, ref.fixef.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(m.stderror.to_numpy() * scale, ref.stderror.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(m.sigma, ref.sigma, rtol=1e-6)


@pytest.mark.parametrize(
    "c",
    [
        1e-4,
        1e4,
        1e-6,
        1e6,
        1e-50,
        1e50,
    ],
)
def test_random_slope_on_extreme_scales(c, base_vector):
    m = _lmm(VECTOR, BASE.assign(x=BASE.x * c))
    ref = base_vector
    np.testing.assert_allclose(m.objective, ref.objective, rtol=1e-8)
    # λ's row and column of the slope scale by 1/c; the intercept's entry is unchanged
    np.testing.assert_allclose(m.theta * np.array([1.0, c, c]), ref.theta, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(m.fixef.to_numpy() * [1.0, c], ref.fixef.to_numpy(), rtol=1e-5)


# ---- implicit intercepts ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "formula, xnames, columns",
    [
        ("y ~ x + f + (1 | g)", ("(Intercept)", "x", "fb", "fc"), ("(Intercept)",)),
        ("y ~ x + (x | g)", ("(Intercept)", "x"), ("(Intercept)", "x")),
        ("y ~ 0 + x + (1 | g)", ("x",), ("(Intercept)",)),
        ("y ~ x - 1 + (0 + x | g)", ("x",), ("x",)),
        ("y ~ (1 | g)", ("(Intercept)",), ("(Intercept)",)),
        ("y ~ x + (x || g)", ("(Intercept)", "x"), ("(Intercept)", "x")),
        ("y ~ x + (x - 1 || g)", ("(Intercept)", "x"), ("x",)),
        ("y~x+(1|g)", ("(Intercept)", "x"), ("(Intercept)",)),
        ("y ~ 0 + f + (1 | g)", ("fa", "fb", "fc"), ("(Intercept)",)),
    ],
)
def test_implicit_intercepts(formula, xnames, columns):
    design = build_design(formula, BASE)
    assert design.xnames == xnames and design.terms[0].columns == columns


def test_implicit_intercepts_fit_the_same(base_scalar, base_vector):
    _same_fit(_lmm("y ~ x + f + (1 | g)", BASE), base_scalar, rtol=1e-12)
    _same_fit(_lmm("y ~ x + (x | g)", BASE), base_vector, rtol=1e-12)


def test_zerocorr_interaction_is_split_like_lme4():
    d = BASE.assign(z=np.round(np.cos(np.arange(N)), 2))
    design = build_design("y ~ 1 + (x * z || g)", d)
    t = design.terms[0]
    assert t.columns == ("(Intercept)", "x", "z", "x:z")
    assert not t.correlated and len(t.pattern) == 4
