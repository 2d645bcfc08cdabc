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
REF = json.loads((HERE / "logical_columns.json").read_text())["cases"]


def _data(kind):
    d = pd.read_csv(HERE / "logical_columns.csv", dtype={"g": str})
    if kind == "nullable":
        d["lg"] = d["lg"].astype("boolean")
        d["lg2"] = d["lg2"].astype("boolean")
    else:
        d["lg2"] = d["lg2"].astype(object).where(d["lg2"].notna(), None)  # True / False / None
    return d


@pytest.mark.parametrize("kind", ["numpy", "nullable"])
@pytest.mark.parametrize("case", REF, ids=[c["formula"][0] for c in REF])
def test_logical_columns_as_lme4(case, kind):
    """Deviance to 1e-8 relative; β and θ to 1e-4 (lme4 converged with BOBYQA at rhoend 1e-10; `(0 + lg | g)` and
    `(lg | g)` have flat directions); names and the rows used exactly."""
    d = _data(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # boundary fits, as lme4's
        m = mj.lmm(case["formula"][0], d, reml=False)
    assert m.nobs == case["nobs"][0]
    assert list(m.fixef.index) == case["names"]
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
