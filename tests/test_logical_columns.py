"""Logical (bool) columns in formulas, as R's model.matrix codes them: a factor of FALSE / TRUE in a term (fixed
effects, interactions, random-effects slopes), 0 / 1 as a response and in arithmetic; against lme4
(tests/reference/logical_columns.json, made by make_logical_columns.R)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj

HERE = Path(__file__).parent / "reference"
FULL = json.loads((HERE / "logical_columns.json").read_text())
REF = FULL["cases"]


KINDS = ["numpy", "nullable", "pyarrow"]


def _data(kind):
    d = pd.read_csv(HERE / "logical_columns.csv", dtype={"g": str})
    if kind == "nullable":
        d = d.astype({"lg": "boolean", "lg2": "boolean", "lt": "boolean"})
    elif kind == "pyarrow":
        pytest.importorskip("pyarrow")
        d = d.astype({"lg": "bool[pyarrow]", "lg2": "bool[pyarrow]", "lt": "bool[pyarrow]"})
    else:
        d["lg2"] = d["lg2"].astype(object).where(d["lg2"].notna(), None)  # True / False / None
    return d


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", REF, ids=[c["formula"][0] for c in REF])
def test_logical_columns_as_lme4(case, kind):
    """Deviance to 1e-8 relative; β and θ to 1e-4 (lme4 converged with BOBYQA at rhoend 1e-10; `(0 + lg | g)` and
    `(lg | g)` have flat directions); names and the rows used exactly."""
    d = _data(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # boundary fits and dropped columns, as lme4's
        m = mj.lmm(case["formula"][0], d, reml=False)
    assert m.nobs == case["nobs"][0]
    assert list(m.fixef.index) == case["names"]  # lt, TRUE on every row: ltTRUE dropped as collinear, as lme4
    assert m.objective == pytest.approx(case["deviance"][0], rel=1e-8)
    np.testing.assert_allclose(m.fixef.to_numpy(), case["beta"], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(m.theta, case["theta"], atol=2e-3)


def test_logical_column_predicts_new_rows():
    d = _data("numpy")
    m = mj.lmm("y ~ x + lg + (1 | g)", d, reml=False)
    np.testing.assert_allclose(m.predict(d.head(5)).to_numpy(), m.fitted().head(5).to_numpy(), rtol=1e-12)
    new = d.head(2).assign(lg=[True, False])
    beta = m.fixef
    b = m.ranef()["g"]["(Intercept)"]
    want = beta["(Intercept)"] + beta["x"] * new.x + beta["lgTRUE"] * np.array([1.0, 0.0]) + b[new.g].to_numpy()
    np.testing.assert_allclose(m.predict(new).to_numpy(), want.to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_missing_logical_in_new_data_is_a_missing_row(kind):
    """lme4's predict(na.action = na.exclude) on new rows with lg2 = TRUE, NA, FALSE, TRUE: NA where lg2 is."""
    ref = FULL["predict"]
    d = _data(kind)
    m = mj.lmm(ref["formula"][0], d, reml=False)
    np.testing.assert_allclose(m.predict(d).to_numpy(), m.fitted().to_numpy(), rtol=1e-12)  # the NA row absent
    new = d.head(4).copy()
    new["lg2"] = pd.array([True, None, False, True], dtype="boolean")
    if kind == "numpy":
        new["lg2"] = new["lg2"].astype(object).where(new["lg2"].notna(), None)
    got = m.predict(new)
    assert list(got.index) == [0, 2, 3]
    want = [v for v in ref["values"] if v != "NA"]
    np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-6)


def test_missing_logical_in_an_expression():
    d = _data("nullable")
    np.testing.assert_array_equal(mj.formula.evaluate("lg2", d.head(4)), np.array([False, True, None, True],
                                                                                  dtype=object))
    assert np.isnan(mj.formula.evaluate("I(lg2 * 1)", d.head(4))[2])
    ref = FULL["glmm"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # singular, as glmer says too
        g = mj.glmm(ref["formula"][0], d, "binomial")
    assert g.nobs == ref["nobs"][0]
    assert g.loglik == pytest.approx(ref["loglik"][0], rel=1e-7)
    np.testing.assert_allclose(g.fixef.to_numpy(), ref["beta"], rtol=1e-4, atol=1e-5)


def test_missing_slope_value_drops_the_row_only_where_the_term_is_used():
    d = _data("nullable")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        m = mj.lmm("y ~ x + (1 + lg2 | g)", d, reml=False)
    assert m.nobs == len(d) - 1
    new = d.head(4).assign(lg2=pd.array([True, None, False, True], dtype="boolean"))
    assert list(m.predict(new).index) == [0, 2, 3]  # lg2 read by the term: NA is not FALSE
    population = m.predict(new, re_form="~0")
    assert list(population.index) == [0, 1, 2, 3]  # the fixed part does not read lg2
    np.testing.assert_allclose(population.to_numpy(), m.fixef["(Intercept)"] + m.fixef["x"] * new.x, rtol=1e-12)
