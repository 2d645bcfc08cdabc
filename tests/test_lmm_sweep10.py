"""lme4 1.1-31 parity of linear mixed models on datasets of lmerTest, lme4, nlme and mlmRev that no other reference
uses (tests/reference/lmm_sweep10.json and the CSVs in tests/reference/lmm_sweep10/, from make_sweep-lmm.R): the
likelihood, θ, β, standard errors, σ, VarCorr, ranef and conditional sds, fitted values, residuals, leverage, Cook's
distance, predictions (all terms, none, one term, new levels) and the Hessian of the profiled objective in θ.

R fitted the CSVs as read back by read.csv, each fit also refitted with bobyqa and maxfun 1e5 and the better kept.
Tolerances: objective, logLik, AIC, BIC 1e-6 relative; θ, VarCorr 1e-3; β 1e-4 relative (1e-6 of the largest);
SE 1e-3 relative; per-row values and predictions 1e-4 of their scale; leverage 1e-5; Cook's distance 1e-2 relative
(a ratio of small numbers: lme4's optimum is only so close); the Hessian 2e-2 (lme4's deriv12 differences, step 1e-4).
mixedjax orders θ by its terms (ℓ s descending, MixedModels.jl's rule), lme4 by levels descending: θ is compared
term by term through lme4's theta groups. lme4 names a nest's inner term b:a with levels 'B1:A1'; mixedjax a:b with
'A1:B1' (docs/formulas.md): the levels are compared with their parts reversed.
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj

REF = Path(__file__).resolve().parent / "reference"
JSON = json.loads((REF / "lmm_sweep10.json").read_text())
CASES = JSON["cases"]
SLOW = {"Exam", "ScotsSec", "MathAch", "carrots"}  # over a thousand rows: a fit and leverage of all rows


def _ids(c):
    return f"{c['id']}-{'REML' if c['reml'] else 'ML'}"


PARAMS = [pytest.param(c, id=_ids(c), marks=[pytest.mark.slow, pytest.mark.sweep] if c["data"] in SLOW else []) for c in CASES]


@functools.lru_cache(maxsize=None)
def _data(name: str, factors: tuple) -> pd.DataFrame:
    d = pd.read_csv(REF / "lmm_sweep10" / f"{name}.csv")
    for v in factors:  # factors whose labels are numbers: R made them factors again, so do we
        d[v] = d[v].astype(str)
    return d


def data(c) -> pd.DataFrame:
    return _data(c["data"], tuple(c["factors"])).copy()


@functools.lru_cache(maxsize=None)
def _fit(i: int):
    c = CASES[i]
    d = data(c)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MathAch is singular in lme4 too
        return mj.lmm(c["formula"], d, reml=c["reml"], weights=c["weights"])


def fit(c):
    return _fit(CASES.index(c))


def _lme4_theta_order(m, c) -> np.ndarray:
    """Indices into mixedjax's θ in lme4's order (lme4's theta groups matched to mixedjax's terms)."""
    vc = m.varcorr
    start, k = {}, 0
    for t in m.problem.design.terms:
        start[t.name] = k
        k += len(t.pattern)
    used, out = {}, []
    for g in c["theta_groups"]:
        name = vc[g].name  # lme4's name found as mixedjax's
        j = used.get(name, 0)
        out.append(start[name] + j)
        used[name] = j + 1
    return np.array(out)


def _scale(v) -> float:
    return max(1.0, float(np.max(np.abs(v))))


@pytest.mark.parametrize("c", PARAMS)
def test_likelihood(c):
    m = fit(c)
    assert m.nobs == c["nobs"]
    assert m.objective == pytest.approx(c["objective"], rel=1e-6)
    assert m.loglik == pytest.approx(c["loglik"][0], rel=1e-6)
    assert m.aic == pytest.approx(c["aic"], rel=1e-6)
    assert m.bic == pytest.approx(c["bic"], rel=1e-6)


@pytest.mark.parametrize("c", PARAMS)
def test_parameters(c):
    m = fit(c)
    assert list(m.fixef.index) == c["beta_names"]
    beta = np.array(c["beta"])
    np.testing.assert_allclose(m.fixef.to_numpy(), beta, rtol=1e-4, atol=1e-6 * _scale(beta))
    np.testing.assert_allclose(m.stderror.to_numpy(), c["se"], rtol=1e-3)
    assert m.sigma == pytest.approx(c["sigma"], rel=1e-4)
    theta = np.asarray(m.theta)[_lme4_theta_order(m, c)]
    np.testing.assert_allclose(np.abs(theta), np.abs(c["theta"]), atol=1e-3)  # a column of λ may flip its sign


@pytest.mark.parametrize("c", PARAMS)
def test_varcorr(c):
    m = fit(c)
    vc, ref = m.varcorr, c["varcorr"]
    assert len(vc.to_frame()) == len(ref["grp"])
    for grp, v1, v2, sdcor in zip(ref["grp"], ref["var1"], ref["var2"], ref["sdcor"]):
        if grp == "Residual":
            assert vc.residual_sd == pytest.approx(sdcor, rel=1e-4)
            continue
        try:
            g = vc[grp]
        except KeyError:  # lme4 names the blocks of (x || g) 'g', 'g.1', ...: mixedjax has one term (diagonal λ)
            g = vc[grp.rsplit(".", 1)[0]]
        i = list(g.columns).index(v1)
        if not v2:
            assert g.stddevs[i] == pytest.approx(sdcor, rel=1e-3, abs=1e-4 * vc.residual_sd)
        else:
            assert g.corr[i][list(g.columns).index(v2)] == pytest.approx(sdcor, abs=1e-3)


@pytest.mark.parametrize("c", PARAMS)
def test_ranef_and_condsd(c):
    m = fit(c)
    re = m.ranef(condvar=True)
    names = [g.name for g in m.varcorr.groups]
    for r in c["ranef"]:
        ours = re[r["group"]]  # lme4's name of the term finds mixedjax's
        aliased = r["group"] not in names
        levels = [":".join(reversed(lv.split(":"))) if aliased else lv for lv in r["levels"]]
        ours = ours.set_axis([str(i) for i in ours.index])
        assert sorted(ours.index) == sorted(levels)
        vals = np.array(r["values"]).reshape(len(levels), -1)
        sd = np.array(r["condsd"]).reshape(len(levels), -1)
        np.testing.assert_allclose(ours.loc[levels, list(r["columns"])].to_numpy(), vals, atol=1e-4 * _scale(vals))
        np.testing.assert_allclose(ours.loc[levels, ["condsd_" + x for x in r["columns"]]].to_numpy(), sd,
                                   rtol=1e-3)


@pytest.mark.parametrize("c", PARAMS)
def test_rows(c):
    m = fit(c)
    k = c["rows"]
    s = _scale(c["fitted"])
    np.testing.assert_allclose(m.fitted().to_numpy()[:k], c["fitted"], atol=1e-4 * s)
    np.testing.assert_allclose(m.residuals().to_numpy()[:k], c["residuals"], atol=1e-4 * s)
    np.testing.assert_allclose(m.residuals(type="pearson").to_numpy()[:k], c["pearson"], atol=1e-4 * s)
    np.testing.assert_allclose(m.leverage().to_numpy()[:k], c["hat"], atol=1e-5)
    np.testing.assert_allclose(m.cooks_distance().to_numpy()[:k], c["cooks"], rtol=1e-2, atol=1e-8)


@pytest.mark.parametrize("c", PARAMS)
def test_predict(c):
    m = fit(c)
    nd = data(c).iloc[: c["newdata_rows"]]
    pr = c["predict"]
    s = _scale(pr["all"])
    np.testing.assert_allclose(m.predict(nd).to_numpy(), pr["all"], atol=1e-4 * s)
    np.testing.assert_allclose(m.predict(nd, re_form="~0").to_numpy(), pr["population"], atol=1e-4 * s)
    if "one" in pr:
        np.testing.assert_allclose(m.predict(nd, re_form=f"~(1 | {c['re_form_one']})").to_numpy(), pr["one"],
                                   atol=1e-4 * s)
    new = nd.copy()
    for g in c["new_level_columns"]:
        new[g] = 99999 if pd.api.types.is_numeric_dtype(new[g]) else "NEW"
    np.testing.assert_allclose(m.predict(new).to_numpy(), pr["new_levels"], atol=1e-4 * s)


# the ML fits only (REML's Hessian is the same program), where lme4 computed one (θ of 4 or fewer entries)
@pytest.mark.parametrize("c", [p for p in PARAMS if p.values[0]["hessian"] is not None and not p.values[0]["reml"]])
def test_profiled_hessian(c):
    m = fit(c)
    order = _lme4_theta_order(m, c)
    H = np.asarray(m.hessian(profiled=True))[np.ix_(order, order)]
    # a column of λ whose sign differs from lme4's flips the sign of its rows and columns
    sign = np.sign(np.asarray(m.theta)[order]) * np.sign(c["theta"])
    sign[sign == 0] = 1
    ref = np.array(c["hessian"]).reshape(len(order), len(order))
    np.testing.assert_allclose(H * np.outer(sign, sign), ref, rtol=2e-2, atol=2e-3 * np.max(np.abs(ref)))


# ---- lme4's predict takes its own name of a nest's inner term (b:a for (1 | a/b)) in re.form -------------------------
def test_re_form_takes_lme4s_name_of_a_nested_term():
    c = next(c for c in CASES if c["id"] == "Oats" and c["reml"])
    m = fit(c)
    nd = data(c).iloc[:8]
    inner = m.predict(nd, re_form="~(1 | Block:Variety)")
    # lme4 spells the inner term of (1 | Block/Variety) 'Variety:Block'; the same partition in either order
    pd.testing.assert_series_equal(m.predict(nd, re_form="~(1 | Variety:Block)"), inner)
    # lme4: predict(m, re.form = ~(1 | Variety:Block)) is X β + b(Variety:Block); check by parts
    b = m.ranef()["Block:Variety"].iloc[:, 0]
    keys = nd["Block"].astype(str) + ":" + nd["Variety"].astype(str)
    np.testing.assert_allclose(inner.to_numpy(), m.predict(nd, re_form="~0").to_numpy() + b.loc[keys].to_numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(inner.to_numpy(), JSON["oats_inner"], atol=1e-3)
    with pytest.raises(mj.errors.FormulaError, match="Variety:Nope"):
        m.predict(nd, re_form="~(1 | Variety:Nope)")


def test_rows_with_missing_values_are_dropped_as_lme4_does():
    """A missing grouping id (which makes pandas' integer column float), factor level and response drop their rows;
    the ids stay integers in ranef's index (R's levels '1', '2', ...)."""
    ref = JSON["machines_missing"]
    d = pd.read_csv(REF / "lmm_sweep10" / "Machines.csv")
    d.loc[[2, 19], "Worker"] = np.nan
    d.loc[6, "Machine"] = np.nan
    d.loc[29, "score"] = np.nan
    m = mj.lmm("score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", d)
    assert (m.nobs, m.n_dropped) == (ref["nobs"], 4)
    assert m.objective == pytest.approx(ref["objective"], rel=1e-6)
    fitted = m.fitted()
    assert list(fitted.index + 1) == ref["rows"]  # R's row names count from 1
    np.testing.assert_allclose(fitted.to_numpy(), ref["fitted"], atol=1e-4)
    b = m.ranef()["Worker"]
    assert b.index.dtype.kind == "i" and [str(v) for v in b.index] == ref["worker_levels"]
    np.testing.assert_allclose(b.iloc[:, 0].to_numpy(), ref["worker"], atol=1e-4)
