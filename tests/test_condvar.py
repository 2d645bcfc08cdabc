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
    import mixedjax as mj
    from inference_reference import data

    c = case("sleepstudy_weighted")
    m = mj.lmm(c["formula"], data(c["data"]), weights=np.asarray(c["weights"], float))
    levels, pv = _reference("sleepstudy_weighted")["subj"]
    t = m.problem.design.terms[0]
    v = m.condvar()["subj"][[list(t.levels).index(lev) for lev in levels]]
    np.testing.assert_allclose(v, pv, atol=1e-4 * np.abs(pv).max())
