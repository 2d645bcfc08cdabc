"""Conditional covariances of the random effects against lme4's postVar (tests/reference/lme4_inference.json), to
1e-4 of their largest entry (the fits agree to about that), and ranef(condvar=True)."""

import numpy as np
import pytest
from inference_reference import case, fitted


def _reference(case_id):
    out = {}
    for g in case(case_id)["ML"]["condvar"]:
        cols = g["columns"] if isinstance(g["columns"], list) else [g["columns"]]
        out[g["group"]] = (g["levels"], np.asarray(g["postvar"], float).reshape(len(g["levels"]), len(cols), len(cols)))
    return out


def _check(case_id, names):
    m = fitted(case_id, False)
    mine = m.condvar()
    ref = _reference(case_id)
    levels_of = {t.name: list(t.levels) for t in m.problem.design.terms}
    for ours, theirs in names.items():
        levels, pv = ref[theirs]
        v = mine[ours]
        assert v.shape == pv.shape
        if ours == theirs:  # level by level
            v = v[[levels_of[ours].index(lev) for lev in levels]]
            np.testing.assert_allclose(v, pv, atol=1e-4 * np.abs(pv).max())
        else:  # lme4 names nested levels inner:outer; compare the sorted values
            np.testing.assert_allclose(np.sort(v.ravel()), np.sort(pv.ravel()), atol=1e-4 * np.abs(pv).max())


def test_condvar_vector_term():
    _check("sleepstudy_slope", {"subj": "subj"})


def test_condvar_crossed_terms():
    """Term 0 (plate) with a dense block (sample): the L_DD⁻¹ route."""
    _check("penicillin_crossed", {"plate": "plate", "sample": "sample"})


def test_condvar_nested_terms():
    _check("pastes_nested", {"batch:cask": "cask:batch", "batch": "batch"})


def test_ranef_condvar_adds_standard_deviations():
    m = fitted("sleepstudy_slope", False)
    r = m.ranef(condvar=True)["subj"]
    assert list(r.columns) == ["(Intercept)", "days", "condsd_(Intercept)", "condsd_days"]
    v = m.condvar()["subj"]
    np.testing.assert_allclose(r["condsd_days"], np.sqrt(v[:, 1, 1]), rtol=1e-12)
    assert list(m.ranef()["subj"].columns) == ["(Intercept)", "days"]
    with pytest.raises(ValueError):
        m.condvar()["subj"][0, 0, 0] = 1.0


def test_condvar_with_prior_weights():
    """lme4's postVar of the weighted sleepstudy fit (weights = 1 + (days %% 3) / 2), level by level."""
    from inference_reference import data

    import mixedjax as mj

    c = case("sleepstudy_weighted")
    m = mj.lmm(c["formula"], data(c["data"]), weights=np.asarray(c["weights"], float))
    levels, pv = _reference("sleepstudy_weighted")["subj"]
    t = m.problem.design.terms[0]
    v = m.condvar()["subj"][[list(t.levels).index(lev) for lev in levels]]
    np.testing.assert_allclose(v, pv, atol=1e-4 * np.abs(pv).max())


# ---- nested structured terms with a crossed dense block; every layout kind against a dense computation ----------
def _nested_crossed():
    import json
    from pathlib import Path

    import pandas as pd

    ref_dir = Path(__file__).resolve().parent / "reference"
    with open(ref_dir / "condvar_nested_crossed.json", encoding="utf-8") as fh:
        ref = json.load(fh)
    return ref, pd.read_csv(ref_dir / "nested_plus_crossed.csv")


def _lme4_name(ours):
    """lme4 writes the nested factor a:b as b:a, and its levels b00:a00."""
    return ":".join(reversed(ours.split(":")))


@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
def test_condvar_nested_and_crossed_terms(reml):
    """y ~ 1 + x + (1 | a/b) + (1 | c): a:b and a in structured block rows, c in the dense block (the layout that
    needs both parts of the factor); against lme4's postVar (tests/reference/make_condvar_nested_crossed.R), level by
    level, at lme4's own θ and σ to 1e-10 of the largest entry and at mixedjax's fit to 1e-4."""
    import mixedjax as mj
    from mixedjax.inference.condvar import condvar

    ref, df = _nested_crossed()
    fit = next(f for f in ref["fits"] if f["reml"] == reml)
    m = mj.lmm(ref["formula"], df, reml=reml)
    lay = m.problem.layout
    assert lay.m == 2 and lay.dz > 0
    terms = m.problem.design.terms
    theta = np.array([fit["theta"][f"{_lme4_name(t.name)}.(Intercept)"] for t in terms])
    at_lme4 = condvar(theta, fit["sigma"], m.problem.arrays, lay)
    groups = {g["group"]: g for g in fit["groups"]}
    for t, mine_at_ref, mine in zip(terms, at_lme4, m.condvar().values()):
        g = groups[_lme4_name(t.name)]
        order = [list(t.levels).index(_lme4_name(lev)) for lev in g["levels"]]
        pv = np.asarray(g["postvar"], float)
        np.testing.assert_allclose(mine_at_ref[order, 0, 0], pv, rtol=0, atol=1e-10 * pv.max())
        np.testing.assert_allclose(mine[order, 0, 0], pv, rtol=0, atol=1e-4 * pv.max())


def _dense_condvar(design, theta, sigma):
    """σ² Λ (Λ'Z'ZΛ + I)⁻¹ Λ' from dense Z and Λ, cut into each term's level blocks."""
    from test_objective import dense_zlambda

    Z, Lam = dense_zlambda(design, theta)
    ZL = Z @ Lam
    C = sigma**2 * Lam @ np.linalg.solve(ZL.T @ ZL + np.eye(ZL.shape[1]), Lam.T)
    out, o = [], 0
    for t in design.terms:
        out.append(np.stack([C[o + i * t.s : o + (i + 1) * t.s, o + i * t.s : o + (i + 1) * t.s]
                             for i in range(t.nlevels)]))
        o += t.nlevels * t.s
    return out


CONDVAR_FILLS = [(kind, "auto") for kind in
                 ["scalar", "vector", "crossed", "nested", "nested3", "nested_vector", "nested_plus_crossed",
                  "partially_crossed", "three", "zerocorr", "vector_crossed_scalar", "vector_in_dense",
                  "vector3_in_dense"]] + [("nested_plus_crossed", "pairs"), ("nested_plus_crossed", "dense"),
                                          ("vector3_in_dense", "pairs")]


@pytest.mark.parametrize("kind,fill", CONDVAR_FILLS)
def test_condvar_blocked_equals_dense(kind, fill):
    """Every layout kind of tests/test_objective.py (and the fill-in methods of the dense block), at a generic θ and
    one with a zero diagonal entry: the blocked computation equals the dense one to 1e-10 of the largest entry."""
    from test_objective import KINDS, make_case, random_thetas

    import mixedjax as mj
    from mixedjax.inference.condvar import condvar

    problem = mj.Problem.build(*make_case(kind, 0), fill=fill)
    assert len(problem.design.terms) == len(problem.layout.terms)
    for th in random_thetas(problem, seed=KINDS.index(kind))[:2]:
        ours = condvar(th, 1.7, problem.arrays, problem.layout)
        ref = _dense_condvar(problem.design, th, 1.7)
        scale = max(np.abs(r).max() for r in ref)
        for a, b in zip(ours, ref):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * scale)
