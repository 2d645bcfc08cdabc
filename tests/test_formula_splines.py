"""R's splines::ns and splines::bs in formulas, against R (tests/reference/lmm_sweep10.json, "splines", from
make_sweep-lmm.R): the bases on nlme's BodyWeight Time (df, knots, intercept, degree), the fit's knots reused for new
values inside and outside the boundary knots (predict.ns: linear beyond them; predict.bs: its Taylor expansion), and
lmer fits with them. Tolerances: bases 1e-12; objective 1e-6 relative (ours may be lower: lme4 stops early on the bs
fit); β 1e-4 of its scale; predictions 1e-3 (lme4's optimum).
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
from mixedjax.design.encode import encode_new

REF = Path(__file__).resolve().parent / "reference"
SPL = json.loads((REF / "lmm_sweep10.json").read_text())["splines"]


def _bw() -> pd.DataFrame:
    d = pd.read_csv(REF / "lmm_sweep10" / "BodyWeight.csv")
    d["Diet"] = d["Diet"].astype(str)
    return d


@pytest.mark.parametrize("expr", list(SPL["bases"]))
def test_basis_and_new_values_as_r(expr):
    ref = SPL["bases"][expr]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bs with an intercept column: one column is dropped for rank, not here
        design = build_design(f"weight ~ 0 + {expr} + (1 | Rat)", _bw())
    fit = np.array(ref["fit"])
    assert design.xnames == tuple(f"{expr}{k}" for k in range(1, fit.shape[1] + 1))
    np.testing.assert_allclose(np.asarray(design.X), fit, atol=1e-12)
    new = encode_new(design, pd.DataFrame({"Time": SPL["new"], "Rat": 1}))
    np.testing.assert_allclose(np.asarray(new.X), np.array(ref["new"]), atol=1e-12)


@pytest.mark.parametrize("formula", list(SPL["fits"]))
def test_lmer_fits_with_splines(formula):
    ref = SPL["fits"][formula]
    m = mj.lmm(formula, _bw())
    assert list(m.fixef.index) == ref["beta_names"]
    assert m.objective <= ref["objective"] * (1 + 1e-6) and m.objective >= ref["objective"] * (1 - 1e-6)
    beta = np.array(ref["beta"])
    np.testing.assert_allclose(m.fixef.to_numpy(), beta, atol=1e-4 * np.abs(beta).max())
    nd = pd.DataFrame({"Time": SPL["new"], "Diet": "1", "Rat": 1})
    np.testing.assert_allclose(m.predict(nd).to_numpy(), ref["predict"], atol=1e-3)


def test_spline_arguments_are_checked():
    with pytest.raises(mj.errors.FormulaError, match="df"):
        build_design("weight ~ ns(Time, 2.5) + (1 | Rat)", _bw())
    with pytest.raises(mj.errors.FormulaError, match="degree"):
        build_design("weight ~ bs(Time, degree = 0) + (1 | Rat)", _bw())


def test_namespaced_spelling():
    """lme4 users write splines::ns(...): the same basis, named as R names it; any other pkg::fn is refused."""
    d = _bw()
    a = mj.lmm("weight ~ splines::ns(Time, 3) + Diet + (1 | Rat)", d)
    b = mj.lmm("weight ~ ns(Time, 3) + Diet + (1 | Rat)", d)
    assert list(a.fixef.index)[1] == "splines::ns(Time, 3)1"
    np.testing.assert_array_equal(a.fixef.to_numpy(), b.fixef.to_numpy())
    with pytest.raises(mj.errors.FormulaError, match="os::system"):
        build_design("weight ~ os::system(1) + (1 | Rat)", d)
