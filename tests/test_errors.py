"""Bad input: every error is a MixedjaxError of the right kind, raised before any tracing, naming the culprit.

Almost everything here stops in the host design (no JAX compilation), so the file runs in a few seconds.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mixedjax as mj
from mixedjax import ArgumentError, DataError, FitError, FormulaError, MixedjaxError
from mixedjax.design.build import build_design
from mixedjax.errors import mark_formula


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    g = np.repeat(list("abcdef"), n // 6)
    x = rng.normal(size=n)
    y = 1.0 + 0.5 * x + rng.normal(size=6)[np.arange(n) // (n // 6)] + rng.normal(size=n)
    return pd.DataFrame(
        {
            "y": y,
            "x": x,
            "g": g,
            "h": np.tile(list("uvw"), n // 3),
            "lab": np.tile(["p", "q"], n // 2),
            "id": np.arange(n),
            "const": 3.0,
            "one": "a",
        }
    )


DF = _data()


def _raises(kind, formula, data=DF, *, fit=False, **kw):
    """Run the failing call; check the family, the kind, and that no raw exception leaked. Returns the message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(kind) as info:
            if fit:
                mj.lmm(formula, data, **kw)
            else:
                build_design(formula, data)
    err = info.value
    assert isinstance(err, MixedjaxError)
    assert type(err).__module__.startswith("mixedjax")
    return str(err)


# ---- the error family ---------------------------------------------------------------------------------------------
def test_family():
    assert issubclass(FormulaError, MixedjaxError) and issubclass(FormulaError, ValueError)
    assert issubclass(DataError, MixedjaxError) and issubclass(DataError, ValueError)
    assert issubclass(FitError, MixedjaxError) and issubclass(FitError, RuntimeError)
    assert issubclass(ArgumentError, MixedjaxError) and issubclass(ArgumentError, TypeError)
    for cls in (MixedjaxError, FormulaError, DataError, FitError, ArgumentError):
        assert getattr(mj, cls.__name__) is cls


def test_mark_formula():
    assert mark_formula("y ~ x + (1 | g)", "(1 | g)") == "y ~ x + (1 | g)\n        ^^^^^^^"
    assert mark_formula("y ~ y + (1 | g)", "y", 3) == "y ~ y + (1 | g)\n    ^"
    assert mark_formula("y ~ x", "zz") == "y ~ x"
    assert mark_formula("y ~ x", "") == "y ~ x"


# ---- the formula --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("formula", [5, None, ["y ~ x + (1 | g)"], b"y ~ 1 + (1 | g)"])
def test_formula_not_a_string(formula):
    msg = _raises(ArgumentError, formula)
    assert "formula must be a string" in msg and type(formula).__name__ in msg


@pytest.mark.parametrize(
    "formula, culprit",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("y + x + (1 | g)", "no '~'"),
        ("y ~ x ~ (1 | g)", "exactly one '~'"),
        ("~ x + (1 | g)", "no response"),
        ("y ~ ", "nothing on the right"),
        ("(1 | g) ~ x", "left of '~'"),
    ],
)
def test_formula_sides(formula, culprit):
    assert culprit in _raises(FormulaError, formula)


def test_unbalanced_parentheses():
    msg = _raises(FormulaError, "y ~ x + (1 | g")
    assert "not closed" in msg and "\n        ^\n" in msg  # marks the '(' that is left open
    msg = _raises(FormulaError, "y ~ x + 1 | g)")
    assert "no matching '('" in msg and "^" in msg
    msg = _raises(FormulaError, "y ~ x + ((1 | g)")
    assert "not closed" in msg


@pytest.mark.parametrize(
    "formula, culprit",
    [
        ("y ~ x + ( | g)", "model side of '(| g)' is empty"),
        ("y ~ x + (1 | )", "grouping side of '(1 |)' is empty"),
        ("y ~ x + (1 || )", "grouping side"),
        ("y ~ x + (1 | g | h)", "'(1 | g | h)'"),
        ("y ~ x + 1 | g", "outside parentheses"),
        ("y ~ x + (1 | g + h)", "'g + h'"),
        ("y ~ x + (1 | log(g))", "'log(g)'"),
        ("y ~ x + + (1 | g)", "empty term"),
        ("y ~ x + (1 | g) +", "empty term"),
        ("y ~ x + (0 | g)", "'(0 | g)' has no columns"),
        ("y ~ x + (1 | g) + (1 | g)", "appears twice"),
        ("y ~ x + (0 || g)", "'(0 || g)' has no columns"),
        ("y ~ x + (1 + x || g) + (0 + x | g)", "appears twice"),
    ],
)
def test_random_term_syntax(formula, culprit):
    msg = _raises(FormulaError, formula)
    assert culprit in msg
    assert "^" in msg or "'|'" in msg or "term" in msg


@pytest.mark.parametrize("formula", ["y ~ x", "y ~ 1", "y ~ x + (x)", "y ~ 1 + x + h"])
def test_not_a_mixed_model(formula):
    assert "not a mixed model" in _raises(FormulaError, formula)


@pytest.mark.parametrize("formula, part", [("y ~ x $ h + (1 | g)", "x $ h"), ("y ~ x ** + (1 | g)", "x **")])
def test_formulaic_syntax_error_is_wrapped(formula, part):
    with pytest.raises(FormulaError) as info:
        build_design(formula, DF)
    msg = str(info.value)
    assert part in msg and "^" in msg
    assert "\x1b[" not in msg  # no terminal colour codes from formulaic
    assert info.value.__cause__ is not None  # the original is kept


# ---- unknown columns, in every part -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "formula, column, part",
    [
        ("yy ~ x + (1 | g)", "yy", "the response"),
        ("y ~ xx + (1 | g)", "xx", "the fixed effects"),
        ("y ~ x + xx:h + (1 | g)", "xx", "the fixed effects"),
        ("y ~ log(xx) + (1 | g)", "xx", "the fixed effects"),
        ("y ~ x + (1 + xx | g)", "xx", "(1 + xx | g)"),
        ("y ~ x + (1 + xx || g)", "xx", "(1 + xx || g)"),
        ("y ~ x + (1 | gg)", "gg", "(1 | gg)"),
        ("y ~ x + (1 | g:hh)", "hh", "(1 | g:hh)"),
        ("y ~ x + (1 | gg/h)", "gg", "(1 | gg/h)"),
        ("y ~ x + (1 | g/hh)", "hh", "(1 | g/hh)"),
    ],
)
def test_unknown_column(formula, column, part):
    msg = _raises(DataError, formula)
    assert f"'{column}'" in msg and "not found" in msg and part in msg
    assert "Available columns: y, x, g" in msg
    assert "^" in msg


def test_unknown_function_and_stateful_transform():
    msg = _raises(DataError, "y ~ foo(x) + (1 | g)")
    assert "'foo'" in msg and "function" in msg
    # formulaic does not list the arguments of stateful transforms: still a DataError naming the column
    msg = _raises(DataError, "y ~ scale(xx) + (1 | g)")
    assert "'xx'" in msg


def test_unknown_column_marks_right_hand_side():
    # the column 'y' exists; 'yy' in the fixed part is marked there, not in the response
    msg = _raises(DataError, "y ~ 1 + yy + (1 | g)")
    assert "y ~ 1 + yy + (1 | g)\n        ^^\n" in msg
    msg = _raises(DataError, "x ~ 1 + x:xx + (1 | g)")
    assert "x ~ 1 + x:xx + (1 | g)\n          ^^\n" in msg


# ---- the response -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("col", ["lab", "g"])
def test_non_numeric_response(col):
    msg = _raises(DataError, f"{col} ~ x + (1 | h)")
    assert f"'{col}'" in msg and "numeric" in msg


def test_categorical_response():
    d = DF.assign(yc=pd.Categorical(np.round(DF.y)))
    assert "'yc'" in _raises(DataError, "yc ~ x + (1 | g)", d)


def test_constant_response():
    msg = _raises(DataError, "const ~ x + (1 | g)")
    assert "'const'" in msg and "constant" in msg
    # constant only after dropping the missing rows
    d = DF.assign(y2=np.where(DF.index < 50, 1.0, np.nan))
    assert "constant" in _raises(DataError, "y2 ~ x + (1 | g)", d)


def test_response_fitted_exactly():
    msg = _raises(DataError, "y ~ y + (1 | g)")
    assert "exact linear combination" in msg
    d = DF.assign(y2=2.0 * DF.x + 1.0)
    assert "'y2'" in _raises(DataError, "y2 ~ x + (1 | g)", d)
    # fixed + random effects reproduce the response: the residual variance would be zero
    codes = pd.factorize(DF.g)[0]
    d = DF.assign(y3=np.array([0.3, -1.0, 2.0, 0.1, 0.5, -0.7])[codes] + 0.5 * DF.x)
    msg = _raises(DataError, "y3 ~ x + (1 | g)", d)
    assert "fitted exactly" in msg and "'g'" in msg


# ---- the data -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [None, 5, 2.5, "y,x,g"])
def test_data_not_a_frame(data):
    msg = _raises(DataError, "y ~ x + (1 | g)", data)
    assert "DataFrame" in msg and type(data).__name__ in msg


def test_data_not_convertible():
    msg = _raises(DataError, "y ~ x + (1 | g)", {"y": [1, 2, 3], "x": [1, 2]})
    assert "DataFrame" in msg


def test_data_without_the_columns():
    assert "'y'" in _raises(DataError, "y ~ x + (1 | g)", [1.0, 2.0, 3.0])


def test_empty_data():
    assert "no rows" in _raises(DataError, "y ~ x + (1 | g)", DF.iloc[:0])


def test_empty_after_dropping_missing():
    d = DF.assign(x=np.where(DF.index % 2 == 0, np.nan, DF.x), y=np.where(DF.index % 2 == 1, np.nan, DF.y))
    msg = _raises(DataError, "y ~ x + (1 | g)", d)
    assert "no rows left" in msg and "y: 30" in msg and "x: 30" in msg


def test_duplicated_column_names():
    d = pd.concat([DF, DF[["x"]]], axis=1)
    assert "'x'" in _raises(DataError, "y ~ x + (1 | g)", d)


@pytest.mark.parametrize(
    "column, formula, part",
    [
        ("y", "y ~ x + (1 | g)", "the response"),
        ("x", "y ~ x + (1 | g)", "the fixed effects"),
        ("x", "y ~ 1 + (1 + x | g)", "(1 + x | g)"),
        ("x", "y ~ 1 + (0 + x || g)", "(0 + x || g)"),
    ],
)
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_values(column, formula, part, value):
    d = DF.copy()
    d.loc[7, column] = value
    msg = _raises(DataError, formula, d)
    assert f"'{column}'" in msg and "infinite" in msg and part in msg and "index 7" in msg


@pytest.mark.parametrize(
    "formula, culprit",
    [
        ("y ~ log(x) + (1 | g)", "'log(x)'"),
        ("log(x) ~ 1 + (1 | g)", "'log(x)'"),
        ("y ~ 1 + (1 + log(x) | g)", "log(x)"),
    ],
)
def test_transformation_creates_nan(formula, culprit):
    msg = _raises(DataError, formula)
    assert culprit in msg and "NaN or infinite" in msg


# ---- grouping factors ---------------------------------------------------------------------------------------------
def test_grouping_factor_with_one_level():
    msg = _raises(DataError, "y ~ x + (1 | one)")
    assert "'one'" in msg and "1 level" in msg
    # one level left after dropping missing values
    d = DF.assign(g=DF.g.where(DF.g == "a"))
    assert "'g'" in _raises(DataError, "y ~ x + (1 | g)", d)


def test_grouping_factor_with_a_level_per_observation():
    msg = _raises(DataError, "y ~ x + (1 | id)")
    assert "'id'" in msg and "60 levels for 60 observations" in msg
    msg = _raises(DataError, "y ~ x + (1 | g:id)")
    assert "'g:id'" in msg


def test_vector_term_with_too_many_random_effects():
    # 30 levels × 2 columns = 60 random effects for 60 observations (lme4's check.nobs.vs.nRE)
    d = DF.assign(k=np.arange(60) // 2)
    msg = _raises(DataError, "y ~ x + (1 + x | k)", d)
    assert "'k'" in msg and "60 random effects" in msg


def test_dense_block_too_large():
    # two crossed factors: b (47,000 levels) goes to the dense block, past its 46,340-row limit; the error comes
    # before anything of that size is allocated
    n = 200_000
    d = pd.DataFrame({"y": np.sin(np.arange(n)), "a": (np.arange(n) * 7) % 60_000, "b": np.arange(n) % 47_000})
    msg = _raises(DataError, "y ~ 1 + (1 | a) + (1 | b)", d, fit=True)
    assert "b (47,000 levels" in msg and "46,340 rows" in msg and "47,002 rows" in msg


# ---- the fixed part -----------------------------------------------------------------------------------------------
def test_more_fixed_effects_than_observations():
    d = DF.iloc[:12].assign(g=np.tile(["a", "b"], 6), f=[f"l{i}" for i in range(12)])
    msg = _raises(DataError, "y ~ x + f + (1 | g)", d)
    assert "13 columns" in msg and "12 observations" in msg and "x + f" in msg


def test_no_residual_degrees_of_freedom():
    d = DF.iloc[:12].assign(g=np.tile(["a", "b"], 6), f=[f"l{i}" for i in range(12)])
    msg = _raises(DataError, "y ~ 0 + f + (1 | g)", d)
    assert "12 observations" in msg


# ---- keyword arguments (validated before any work) ----------------------------------------------------------------
@pytest.mark.parametrize(
    "kw, culprit",
    [
        ({"reml": "yes"}, "reml"),
        ({"reml": 1}, "reml"),
        ({"verbose": "loud"}, "verbose"),
        ({"REML": True}, "REML"),
        ({"optimizer": "newton"}, "optimizer"),
        ({"solver": "bobyqa"}, "solver"),
        ({"maxiter": 0}, "maxiter"),
        ({"maxiter": 2.5}, "maxiter"),
        ({"maxiter": "many"}, "maxiter"),
        ({"theta0": [1.0, 2.0, 3.0]}, "theta0"),
    ],
)
def test_bad_keywords(kw, culprit):
    # the formula is valid but the data are not: the keyword is checked first, without building anything
    msg = _raises(ArgumentError, "y ~ x + (1 | g)", DF if "theta0" in kw else None, fit=True, **kw)
    assert culprit in msg


@pytest.mark.parametrize(
    "kw, culprit",
    [
        ({"gtol": "tight"}, "gtol"),
        ({"ftol": -1.0}, "ftol"),
        ({"gtol": float("nan")}, "gtol"),
        ({"theta0": "start"}, "theta0"),
        ({"theta0": [np.nan]}, "theta0"),
    ],
)
def test_bad_tolerances_and_start(kw, culprit):
    # data=None: the keyword must be refused before the data are looked at (and no fit runs if it is not)
    msg = _raises(ArgumentError, "y ~ x + (1 | g)", None, fit=True, **kw)
    assert culprit in msg


# ---- nothing but MixedjaxError, whatever the formula --------------------------------------------------------------
_TOKENS = ["y", "x", "g", "h", "lab", "zz", "~", " ~ ", "+", " + ", "(", ")", "|", "||", "1", "0", "-1", ":", "/",
           "*", "**", "-", "log(", "I(", "C(", "$", "`", " ", ",", "^", ".", "[", "]", "2", "(1 | g)", "(x || h)"]


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), min_size=0, max_size=12))
def test_fuzzed_formulas_fail_cleanly(tokens):
    formula = "".join(tokens)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            build_design(formula, DF)
        except MixedjaxError:
            pass


_COLUMN_KINDS = st.sampled_from(["float", "int", "bool", "str", "cat", "nan", "inf", "const", "obj", "empty"])


def _column(kind, n, rng):
    if kind == "float":
        return rng.normal(size=n)
    if kind == "int":
        return rng.integers(0, 5, size=n)
    if kind == "bool":
        return rng.random(n) < 0.5
    if kind == "str":
        return rng.choice(["a", "b", "c"], size=n)
    if kind == "cat":
        return pd.Categorical(rng.choice(["a", "b"], size=n), categories=["a", "b", "z"])
    if kind == "nan":
        return np.where(rng.random(n) < 0.5, np.nan, rng.normal(size=n))
    if kind == "inf":
        return np.where(rng.random(n) < 0.1, np.inf, rng.normal(size=n))
    if kind == "const":
        return np.ones(n)
    if kind == "obj":
        return np.array([None, 1, "a", 2.5] * (n // 4 + 1), dtype=object)[:n]
    return np.full(n, np.nan)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.tuples(_COLUMN_KINDS, _COLUMN_KINDS, _COLUMN_KINDS, _COLUMN_KINDS),
    st.integers(0, 12),
    st.sampled_from(["y ~ x + (1 | g)", "y ~ x * f + (1 + x | g)", "y ~ 1 + (1 | g) + (1 | f)", "y ~ f + (x || g/f)"]),
    st.integers(0, 2**16),
)
def test_fuzzed_data_fail_cleanly(kinds, n, formula, seed):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({name: _column(k, n, rng) for name, k in zip(["y", "x", "g", "f"], kinds)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            design = build_design(formula, d)
        except MixedjaxError:
            return
    assert np.all(np.isfinite(design.y)) and np.all(np.isfinite(design.X))
    assert design.n > design.p and np.ptp(design.y) > 0
    for t in design.terms:
        assert 2 <= t.nlevels < design.n and np.all(np.isfinite(t.z))


def test_no_tracing_before_validation(monkeypatch):
    """Bad input is refused on the host: the objective is never called."""
    import mixedjax.model.lmm as results
    import mixedjax.model.problem as problem

    def boom(*a, **k):  # pragma: no cover - must not run
        raise AssertionError("traced before validation")

    monkeypatch.setattr(results, "fit_theta", boom)
    monkeypatch.setattr(problem, "build_blocks", boom)
    for formula, data in [("y ~ x + (1 | id)", DF), ("y ~ x + (1 | gg)", DF), ("y ~ x", DF), ("y ~ x + (1 | g)", None)]:
        with pytest.raises(MixedjaxError):
            mj.lmm(formula, data)


def test_messages_are_single_clean_text():
    msg = _raises(DataError, "y ~ x + (1 | gg)")
    assert not re.search(r"Traceback|KeyError|formulaic\.", msg)
