"""Ordered factors (pandas' ordered Categorical) are coded as R codes them: contr.poly, the orthonormal polynomials
in the level scores, columns named .L, .Q, .C, ^4, ...; all indicators where R gives a factor all its levels
(no intercept); new data coded as the fit's column was, whatever their dtype. Values from R 4.2's contr.poly and
model.matrix(~ Age * Holders, MASS::Insurance[c(1, 2, 3, 4, 6, 11), ])."""

import importlib
from pathlib import Path

import numpy as np
import pandas as pd

import mixedjax as mj

contr_poly = importlib.import_module("mixedjax.design.model_matrix").contr_poly
INSURANCE = Path(__file__).parent / "reference" / "sweep_glmm" / "insurance.csv"
AGE = ["<25", "25-29", "30-35", ">35"]


def test_contr_poly_is_r_s():
    C, names = contr_poly(4)
    assert names == [".L", ".Q", ".C"]
    np.testing.assert_allclose(C, [[-0.670820393249937, 0.5, -0.223606797749979],
                                   [-0.223606797749979, -0.5, 0.670820393249937],
                                   [0.223606797749979, -0.5, -0.670820393249937],
                                   [0.670820393249937, 0.5, 0.223606797749979]], atol=1e-14)
    C6, names6 = contr_poly(6)
    assert names6 == [".L", ".Q", ".C", "^4", "^5"]
    np.testing.assert_allclose(C6[:, 4], [-0.0629940788349, 0.3149703941744, -0.6299407883487, 0.6299407883487,
                                          -0.3149703941744, 0.0629940788349], atol=1e-12)
    np.testing.assert_allclose(contr_poly(2)[0].ravel(), [-2 ** -0.5, 2 ** -0.5], atol=1e-15)


def _insurance(ordered=True):
    d = pd.read_csv(INSURANCE)
    d["Age"] = pd.Categorical(d["Age"], categories=AGE, ordered=ordered)
    return d


def test_model_matrix_of_an_ordered_factor_and_its_interaction():
    p = mj.Problem.build("Claims ~ Age * Holders + (1 | District)", _insurance())
    assert list(p.design.xnames) == ["(Intercept)", "Age.L", "Age.Q", "Age.C", "Holders", "Age.L:Holders",
                                     "Age.Q:Holders", "Age.C:Holders"]
    X = np.asarray(p.design.X)[[0, 1, 2, 3, 5, 10]]
    np.testing.assert_allclose(X[:, 5], [-132.1516174702376, -59.0321946059944, 55.0072722464948,
                                         1126.9782606598940, -119.8532435939887, 79.3804132012425], rtol=1e-13)
    np.testing.assert_allclose(X[:, 7], [-44.0505391567458, 177.0965838179833, -165.0218167394845,
                                         375.6594202199647, 359.5597307819662, -238.1412396037276], rtol=1e-13)


def test_no_intercept_gives_every_level_and_unordered_keeps_treatment():
    p = mj.Problem.build("Claims ~ 0 + Age + (1 | District)", _insurance())
    assert list(p.design.xnames) == ["Age<25", "Age25-29", "Age30-35", "Age>35"]
    p = mj.Problem.build("Claims ~ Age + (1 | District)", _insurance(ordered=False))
    assert list(p.design.xnames) == ["(Intercept)", "Age25-29", "Age30-35", "Age>35"]


def test_new_data_are_coded_as_the_fit_s_ordered_column():
    """Text in the new data (as a CSV gives it) is coded by contr.poly because the fit's column was ordered."""
    d = _insurance()
    m = mj.lmm("Claims ~ Age + (1 | District)", d)
    new = pd.read_csv(INSURANCE).iloc[:4]  # Age as text
    C, _ = contr_poly(4)
    expect = m.fixef.iloc[0] + C[[AGE.index(a) for a in new["Age"]]] @ m.fixef.iloc[1:].to_numpy()
    np.testing.assert_allclose(m.predict(new, re_form="~0").to_numpy(), expect, rtol=1e-12)
    np.testing.assert_allclose(m.predict(d.iloc[:4], re_form="~0").to_numpy(), expect, rtol=1e-12)
