"""The response forms lme4 takes for binomial and Poisson GLMMs, and the errors for bad input."""

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
from mixedjax.errors import ArgumentError, DataError, FormulaError
from mixedjax.glmm.family import Dist, make_family
from mixedjax.glmm.response import response_values, split_response


@pytest.fixture(scope="module")
def cbpp():
    df = mj.dataset("cbpp")
    return df.assign(herd=df.herd.astype(str), period=df.period.astype(str))


def _values(formula, df, family, weights=None):
    spec, _ = split_response(formula)
    return response_values(spec, make_family(family), df, weights, formula)


def test_cbind_is_proportion_and_trials(cbpp):
    r = _values("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, "binomial")
    np.testing.assert_allclose(r.y, cbpp.incidence / cbpp["size"])
    np.testing.assert_allclose(r.weights, cbpp["size"])


def test_factor_response_second_level_is_success():
    df = pd.DataFrame({"r": pd.Categorical(["no", "yes", "no", "yes"], categories=["yes", "no"])})
    np.testing.assert_array_equal(_values("r ~ 1", df, "bernoulli").y, [1, 0, 1, 0])  # "no" is the second level
    df = pd.DataFrame({"r": ["b", "a", "b"]})  # strings: levels sorted as R's factor()
    np.testing.assert_array_equal(_values("r ~ 1", df, "binomial").y, [1, 0, 1])
    df = pd.DataFrame({"r": [True, False, True]})
    np.testing.assert_array_equal(_values("r ~ 1", df, "binomial").y, [1, 0, 1])


@pytest.mark.parametrize("formula, family, column, weights", [
    ("y ~ 1 + (1 | g)", "binomial", "y", None),            # 0/1 expected
    ("k ~ 1 + (1 | g)", "poisson", "k", None),            # negative count
    ("c ~ 1 + (1 | g)", "poisson", "c", None),            # non-integer count
    ("cbind(s, t - s) ~ 1 + (1 | g)", "binomial", "t - s", None),  # successes greater than trials
    ("p ~ 1 + (1 | g)", "binomial", "p", "w"),             # proportion above 1
])
def test_bad_responses_are_data_errors_naming_the_column(formula, family, column, weights):
    df = pd.DataFrame({"g": list("aabbcc"), "y": [0, 1, 2, 0, 1, 0], "k": [0, 1, -1, 2, 3, 0],
                       "c": [0, 1.5, 2, 2, 3, 0], "s": [1, 2, 5, 0, 1, 1], "t": [2, 2, 4, 3, 3, 3],
                       "p": [0.5, 1.5, 0.2, 0, 1, 0.5], "w": [2, 2, 5, 1, 1, 2]})
    with pytest.raises(DataError) as err:
        mj.glmm(formula, df, family, weights=None if weights is None else df[weights])
    assert column in str(err.value)


def test_bad_arguments():
    df = mj.dataset("cbpp")
    f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    with pytest.raises(ArgumentError, match="reml"):
        mj.glmm(f, df, "binomial", reml=True)
    with pytest.raises(ArgumentError, match="dispersion"):
        mj.glmm("incidence ~ period + (1 | herd)", df, "gaussian")
    with pytest.raises(ArgumentError, match="Gamma|dispersion"):
        mj.glmm("incidence ~ period + (1 | herd)", df, "Gamma")
    with pytest.raises(ArgumentError, match="link"):
        mj.glmm(f, df, "binomial", link="identity")  # R's binomial has it; μ = η leaves (0, 1) (not fitted here)
    with pytest.raises(ArgumentError, match="nagq"):
        mj.glmm(f, df, "binomial", nagq=-1)
    with pytest.raises(ArgumentError, match="nagq"):
        mj.glmm(f, df, "binomial", nagq=26)
    with pytest.raises(ArgumentError, match="exclude"):
        mj.glmm(f, df, "binomial", nagq=3, fast=True)
    with pytest.raises(FormulaError, match="cbind"):
        mj.glmm("cbind(incidence) ~ period + (1 | herd)", df, "binomial")
    with pytest.raises(FormulaError, match="binomial"):
        mj.glmm(f, df, "poisson")


def test_agq_needs_one_scalar_term():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"g": rng.integers(0, 5, 60).astype(str), "h": rng.integers(0, 4, 60).astype(str),
                       "y": rng.integers(0, 2, 60)})
    with pytest.raises(ArgumentError, match="single scalar"):
        mj.glmm("y ~ 1 + (1 | g) + (1 | h)", df, "binomial", nagq=5)


def test_family_names():
    assert make_family("bernoulli") == make_family("binomial")
    assert make_family("binomial").link.value == "logit"
    assert make_family("poisson").link.value == "log"
    assert make_family("Binomial", "probit").dist is Dist.BINOMIAL


def test_design_errors_show_the_formula_as_written():
    df = mj.dataset("cbpp")
    f = "cbind(incidence, size - incidence) ~ 1 + nope + (1 | herd)"
    with pytest.raises(DataError) as err:
        mj.glmm(f, df, "binomial")
    msg = str(err.value)
    assert "nope" in msg and f in msg and "mixedjax_glmm_response_" not in msg
    line = msg.split("\n")[msg.split("\n").index(f) + 1]
    assert line.index("^") == f.index("nope")


@pytest.mark.parametrize("values, count", [(["a", "a", "a"], "one level ('a')"),
                                           (["a", "b", "c"], "3 levels ('a', 'b', 'c')")])
def test_factor_response_needs_two_levels(values, count):
    df = pd.DataFrame({"r": values})
    with pytest.raises(DataError) as err:
        _values("r ~ 1", df, "binomial")
    assert f"response 'r' is a factor with {count}" in str(err.value)
    assert "needs exactly two" in str(err.value) and "?" not in str(err.value)


def test_missing_offset_column_is_named_as_the_offset():
    df = pd.DataFrame({"g": list("aabbcc"), "k": [0, 1, 1, 2, 3, 0], "x": [0.1, 0.5, 0.2, 0.3, 0.9, 0.4]})
    f = "k ~ x + offset(log(tt)) + (1 | g)"
    for fit in (lambda: mj.glmm(f, df, "poisson"), lambda: mj.lmm(f, df)):
        with pytest.raises(DataError) as err:
            fit()
        msg = str(err.value)
        assert "column 'tt' is not found in the data (used in the offset 'offset(log(tt))')" in msg
        line = msg.split("\n")[msg.split("\n").index(f) + 1]
        assert line.index("^") == f.index("tt")
