"""Leverage, Cook's distance and residuals against lme4 (hatvalues, cooks.distance, residuals) and against the
dense hat matrix; pandas results indexed by the data's rows."""

import inspect
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
from mixedjax.diagnostics import influence
from mixedjax.diagnostics.influence import leverage_all

REF = json.loads((Path(__file__).parent / "reference" / "lme4_predict.json").read_text())
CASES = REF["cases"]
_FITS = {}


def _fit(case):
    if case["id"] not in _FITS:
        _FITS[case["id"]] = mj.lmm(case["formula"], mj.dataset(case["data"]))
    return _FITS[case["id"]]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_leverage_at_lme4_theta_matches_hatvalues(case):
    # at lme4's own θ the leverage is a function of θ alone: it must agree to rounding (lme4 stores 15 digits)
    m = _fit(case)
    h = leverage_all(np.atleast_1d(np.asarray(case["theta"], float)), m.problem)
    np.testing.assert_allclose(h, case["hatvalues"], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_public_leverage_and_cooks_distance_match_lme4(case):
    # at our optimum: θ agrees with lme4's to about 1e-5 (sleepstudy's slope is the loosest), hence the tolerances
    m = _fit(case)
    h, d = m.leverage(), m.cooks_distance()
    assert isinstance(h, pd.Series) and isinstance(d, pd.Series)
    np.testing.assert_allclose(h.to_numpy(), case["hatvalues"], rtol=1e-4)
    np.testing.assert_allclose(d.to_numpy(), case["cooks_distance"], rtol=1e-3)
    np.testing.assert_allclose(m.fitted().to_numpy(), case["fitted"], rtol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_cooks_formula_on_lme4_quantities(case):
    # lme4's cooks.distance.merMod from lme4's own hatvalues, fitted values and σ: the formula, exactly
    y = mj.dataset(case["data"])[case["formula"].split("~")[0].strip()].to_numpy(float)
    r = y - np.asarray(case["fitted"])
    d = influence.cooks_distance(r, np.asarray(case["hatvalues"]), case["sigma"], np.atleast_1d(case["beta"]).size)
    np.testing.assert_allclose(d, case["cooks_distance"], rtol=1e-7)


def _dense_hat(m):
    """diag([ZΛ X] M⁻¹ [ZΛ X]') with M = [ZΛ X]'[ZΛ X] + diag(I, 0), from dense matrices."""
    d = m.problem.design
    lams = m._solution["lams"]
    blocks = []
    for t, lam in zip(d.terms, lams):
        Z = np.zeros((d.n, t.nlevels * t.s))
        for a in range(t.s):
            Z[np.arange(d.n), t.codes * t.s + a] = t.z[:, a]
        blocks.append(Z @ np.kron(np.eye(t.nlevels), lam))
    A = np.column_stack(blocks + [d.X])
    q = A.shape[1] - d.p
    M = A.T @ A + np.diag(np.r_[np.ones(q), np.zeros(d.p)])
    return np.einsum("ij,ji->i", A, np.linalg.solve(M, A.T))


def _crossed_vector_data(seed=0):
    # a vector-valued term that is not nested in the first one goes to the dense block (Λ_D of a 2 × 2 λ)
    rng = np.random.default_rng(seed)
    n = 120
    g = rng.integers(0, 15, n)
    h = rng.integers(0, 6, n)
    x = rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(size=15)[g] + rng.normal(size=6)[h] + rng.normal(size=6)[h] * x + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{v}" for v in g], "h": [f"h{v}" for v in h]})


@pytest.mark.parametrize("formula, data", [
    ("y ~ 1 + x + (1 | g) + (1 + x | h)", "crossed"),
    ("strength ~ 1 + (1 | batch/cask)", "pastes"),
    ("reaction ~ 1 + days + (1 + days | subj)", "sleepstudy"),
])
def test_leverage_equals_dense_hat_matrix(formula, data):
    df = _crossed_vector_data() if data == "crossed" else mj.dataset(data)
    m = mj.lmm(formula, df)
    np.testing.assert_allclose(m.leverage().to_numpy(), _dense_hat(m), rtol=1e-9, atol=1e-12)


def test_leverage_in_chunks_equals_one_chunk(monkeypatch):
    m = mj.lmm("y ~ 1 + x + (1 | g) + (1 + x | h)", _crossed_vector_data(1))
    whole = leverage_all(m.theta, m.problem)
    monkeypatch.setattr(influence, "_CHUNK_ELEMENTS", 7 * 50)  # 50 rows of 7 dense columns: 3 chunks, one padded
    np.testing.assert_allclose(leverage_all(m.theta, m.problem), whole, rtol=1e-12, atol=1e-15)


def test_residual_types():
    m = _fit(CASES[0])
    y = mj.dataset("sleepstudy")["reaction"].to_numpy()
    r = m.residuals()
    np.testing.assert_allclose(r.to_numpy(), y - m.fitted().to_numpy(), rtol=1e-12)
    # lme4: the Pearson residual of an unweighted LMM is the response residual; scaled=True divides by σ
    np.testing.assert_allclose(m.residuals(type="pearson").to_numpy(), r.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(m.residuals(type="pearson", scaled=True).to_numpy(), r.to_numpy() / m.sigma,
                               rtol=1e-12)
    with pytest.raises(mj.ArgumentError, match="pearson"):
        m.residuals(type="deviance")


def test_series_indexed_by_rows_used():
    df = mj.dataset("sleepstudy")
    df.index = [f"r{i}" for i in range(len(df))]
    df.loc["r3", "reaction"] = np.nan  # dropped for a missing value
    m = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", df)
    for s in (m.fitted(), m.residuals(), m.leverage(), m.cooks_distance(), m.predict()):
        assert isinstance(s, pd.Series)
        assert list(s.index) == [f"r{i}" for i in range(len(df)) if i != 3]
    np.testing.assert_allclose(m.predict().to_numpy(), m.fitted().to_numpy(), rtol=1e-13)
    assert m.fitted().loc["r4"] == pytest.approx(m.predict(df.loc[["r4"]]).loc["r4"], rel=1e-12)
    # the leverages of a mixed model sum to the trace of the hat matrix: between p and p + q
    total = m.leverage().sum()
    assert 2 < total < 2 + 36


def test_results_are_copies():
    m = _fit(CASES[0])
    h = m.leverage()
    h.iloc[0] = 99.0
    assert m.leverage().iloc[0] != 99.0


@pytest.mark.skipif("weights" not in inspect.signature(mj.lmm).parameters, reason="lmm(weights=) is the engine issue's")
def test_weighted_fit_matches_lme4():
    # lme4's hatvalues and cooks.distance of a weighted fit: rows scaled by √w, Pearson residuals √w (y − ŷ)
    c = REF["weighted"]
    m = mj.lmm(c["formula"], mj.dataset(c["data"]), weights=np.asarray(c["weights"], float))
    h = leverage_all(np.asarray(c["theta"], float), m.problem)
    np.testing.assert_allclose(h, c["hatvalues"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(m.leverage().to_numpy(), c["hatvalues"], rtol=1e-4)
    # at our optimum (θ within 1e-5 of lme4's, our objective 2e-7 lower) the smallest distances move most
    np.testing.assert_allclose(m.cooks_distance().to_numpy(), c["cooks_distance"], rtol=1e-3,
                               atol=1e-4 * max(c["cooks_distance"]))
    y = mj.dataset(c["data"])["reaction"].to_numpy()
    r = np.sqrt(c["weights"]) * (y - np.asarray(c["fitted"]))
    d = influence.cooks_distance(r, np.asarray(c["hatvalues"]), c["sigma"], len(c["beta"]))
    np.testing.assert_allclose(d, c["cooks_distance"], rtol=1e-7)
