"""Type II and III F tables of fixed parts whose terms lack a margin (x1 + x1:f, f + x1:f, f + f:h, x1:f alone)
against lmerTest (tests/reference/nonhierarchical_anova.json, make_nonhierarchical_anova.R): F, DenDF and p to
1e-5 relative, NumDF exact. lmerTest's containment counts only the variables R codes by contrasts in a term, and a
full column such as I(f = a) I(h = A) under f + f:h is written through f's baseline indicator."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj

HERE = Path(__file__).parent / "reference"
REF = json.loads((HERE / "nonhierarchical_anova.json").read_text())["cases"]


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(HERE / "nonhierarchical_anova.csv")


@pytest.mark.parametrize("case", REF, ids=[c["formula"] for c in REF])
def test_type2_and_type3_match_lmertest(case, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        m = mj.lmm(case["formula"], data, reml=True)
    for typ in (2, 3):
        ref = case[f"type{typ}"]
        a = m.anova(type=typ)
        assert list(a.index) == ref["terms"]
        np.testing.assert_array_equal(a["NumDF"].to_numpy(), ref["NumDF"])
        for col, key in (("F value", "F"), ("DenDF", "DenDF"), ("Pr(>F)", "p")):
            np.testing.assert_allclose(a[col].to_numpy(), ref[key], rtol=1e-5, err_msg=f"type {typ} {col}")
