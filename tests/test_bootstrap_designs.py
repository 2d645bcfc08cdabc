"""m.bootstrap against lme4's bootMer on a crossed (penicillin), a nested (pastes), a correlated-vector, a weighted
and offset, and REML and ML fits (tests/reference/bootmer_designs.R → .json; the simulated data in .csv), and the
bootstrap's column names against lme4's confint(oldNames = FALSE) names on those and other term shapes.

The percentile check is distribution-free. R's q-quantile x_R of n_R replicates has F(x_R) = q ± sqrt(q(1-q)/n_R)
(F: the true bootstrap distribution), and the fraction of our n_J replicates at or below x_R estimates F(x_R) with
standard error sqrt(F(1-F)/n_J); so that fraction differs from q by a standard error of sqrt(q(1-q)(1/n_R + 1/n_J))
(0.0050 at q = 0.025 and 0.016 at the median for 2,000 each). Each fraction must be within 4.5 such errors of q
(175 comparisons, each failing by chance with probability 7e-6). Ties (a sd at exactly 0 in many singular
replicates, a correlation at ±1) are an atom: q must lie between the fractions below and at or below x_R; lme4's
optimiser stops a boundary replicate a little off zero (R's 25 % quantile of pastes' batch sd is 1.3e-5, its 10 %
exactly 0), so a sd below a thousandth of the replicates' median counts as zero on both sides.

lme4's simulate draws the noise with variance σ² whatever the prior weights (lme4 issue 386), so bootMer of a
weighted model bootstraps another model than the fitted one; mixedjax draws σ²/wᵢ unless weighted_noise=False. The
weighted case is compared with weighted_noise=False, and the default is checked to differ from bootMer there."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
from bootstrap_percentiles import percentile_fractions
from mixedjax.batch.bootstrap import varcomp_names

HERE = Path(__file__).resolve().parent / "reference"
REF = json.loads((HERE / "bootmer_designs.json").read_text())
SIM = pd.read_csv(HERE / "bootmer_designs.csv")
Z = 4.5
NBOOT = 2000


def data(name):
    return SIM if name == "sim" else mj.dataset(name)


def fit(case, reml=True):
    d = data(case["data"])
    kw = {}
    if case.get("weights"):
        kw["weights"] = d[case["weights"]].to_numpy(float)
    if case.get("offset"):
        kw["offset"] = d[case["offset"]].to_numpy(float)
    return mj.lmm(case["formula"], d, reml=reml, **kw)


@pytest.mark.parametrize("name", sorted(REF["names"]))
def test_column_names_are_lme4s(name):
    case = REF["names"][name]
    m = fit(case)
    assert [n for n, *_ in varcomp_names(m)] + ["sigma"] + list(m.fixef.index) == case["names"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REF["cases"]))
def test_percentiles_agree_with_bootmer(name):
    case = REF["cases"][name]
    m = fit(case, case["reml"])
    np.testing.assert_allclose(m.theta, case["theta"], rtol=2e-4, atol=1e-5)  # the same model as R's
    weighted = bool(case.get("weights"))
    b = m.bootstrap(NBOOT, seed=100 + len(name), progress=False, weighted_noise=not weighted)
    assert b.nconverged == NBOOT
    assert b.parameters == case["names"]
    assert list(b.confint().index) == case["names"]
    for pname, qs in zip(case["names"], case["quantiles"]):
        for q, x, below, at, tol in fractions(b, pname, qs, case["nfinite"]):
            assert below - tol <= q <= at + tol, (pname, q, x, below, at, tol)
    if weighted:  # the fitted model's noise σ²/w: sigma's replicates are not bootMer's
        sigma = fractions(m.bootstrap(NBOOT, seed=7, progress=False), "sigma",
                          case["quantiles"][case["names"].index("sigma")], case["nfinite"])
        assert any(not (below - tol <= q <= at + tol) for q, x, below, at, tol in sigma)


def fractions(b, pname, qs, nr):
    """(q, R's quantile x, our fractions below and at or below x, the tolerance) for each probability q."""
    return percentile_fractions(b.table[pname].to_numpy(float), pname.startswith("sd_"), REF["probs"], qs, nr, Z)


NAMES = json.loads((HERE / "lme4_names.json").read_text())
NAMES_DATA = pd.read_csv(HERE / "lme4_names.csv", dtype={v: str for v in "abch"})


@pytest.mark.parametrize("formula", sorted(NAMES["names"]))
def test_names_of_nests_and_term_orders(formula):
    """lme4_names.R: nests (a/b/c → 'c:(b:a)'), interactions as written, || on a nest, lme4's term order."""
    m = mj.lmm(formula, NAMES_DATA)
    assert [n for n, *_ in varcomp_names(m)] + ["sigma"] + list(m.fixef.index) == NAMES["names"][formula]
