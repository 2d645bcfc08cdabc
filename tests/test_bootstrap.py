"""m.bootstrap: replicates equal refits of m.simulate's responses, lme4's column names, the two interval kinds, the
singular count, the plot, and percentiles against lme4's bootMer (tests/reference/bootmer_sleepstudy.json)."""

import json
from pathlib import Path

import numpy as np
import pytest

import mixedjax as mj
from mixedjax.batch.bootstrap import Bootstrap, shortest_interval
from mixedjax.errors import ArgumentError

REF = Path(__file__).resolve().parent / "reference" / "bootmer_sleepstudy.json"
SLEEP = "reaction ~ 1 + days + (1 + days | subj)"


@pytest.fixture(scope="module")
def dye2():
    return mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff2"))


def test_shortest_interval():
    v = np.array([0.0, 1.0, 2.0, 3.0, 100.0])
    assert shortest_interval(v, 0.6) == (0.0, 2.0)  # 3 of 5 values
    assert shortest_interval(np.array([5.0, -1.0, 0.0, 0.5]), 0.5) == (0.0, 0.5)


def test_replicates_are_refits_of_simulate(dye2):
    b = dye2.bootstrap(8, seed=4, progress=False)
    assert isinstance(b, Bootstrap) and b.n == 8
    Y = dye2.simulate(8, seed=4)
    for i in (0, 5):
        r = dye2.refit(Y[i])
        np.testing.assert_allclose(b.table["objective"][i], r.objective, rtol=1e-10)
        np.testing.assert_allclose(b.table["sd_(Intercept)|batch"][i], r.varcorr.groups[0].stddevs[0],
                                   rtol=1e-7, atol=1e-9)
    assert list(b.table.columns) == ["objective", "(Intercept)", "sigma", "sd_(Intercept)|batch"]
    # dyestuff2's fit is singular, and so are many of its replicates
    sd = b.table["sd_(Intercept)|batch"].to_numpy()
    assert b.nsingular == int(np.sum(sd == 0)) and b.nsingular > 0


def test_confint(dye2):
    b = dye2.bootstrap(8, seed=4, progress=False)
    ci = b.confint(level=0.9)
    assert list(ci.columns) == ["5 %", "95 %"] and list(ci.index) == ["sd_(Intercept)|batch", "sigma", "(Intercept)"]
    v = b.table["sigma"].to_numpy()
    np.testing.assert_allclose(ci.loc["sigma"], np.quantile(v, [0.05, 0.95]))
    sh = b.confint(level=0.9, method="shortest")
    assert tuple(sh.loc["sigma"]) == shortest_interval(v, 0.9)
    assert np.sum((v >= sh.loc["sigma", "5 %"]) & (v <= sh.loc["sigma", "95 %"])) >= np.ceil(0.9 * v.size)
    with pytest.raises(ArgumentError, match="method"):
        b.confint(method="bca")
    with pytest.raises(ArgumentError, match="level"):
        b.confint(level=95)


def test_plot(dye2):
    matplotlib = pytest.importorskip("matplotlib")

    matplotlib.use("Agg")
    fig = dye2.bootstrap(8, seed=4, progress=False).plot()
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 3


def test_bad_arguments(dye2):
    with pytest.raises(ArgumentError, match="n must"):
        dye2.bootstrap(0)
    with pytest.raises(ArgumentError, match="progress"):
        dye2.bootstrap(2, progress="yes")


@pytest.mark.slow
def test_percentiles_agree_with_bootmer():
    """2000 replicates each; every 95% percentile limit within a tenth of lme4's interval width (Monte Carlo error
    of a 2.5% quantile from 2000 draws is a few hundredths of the width)."""
    ref = json.loads(REF.read_text())
    m = mj.lmm(SLEEP, mj.dataset("sleepstudy"))
    b = m.bootstrap(2000, seed=11, progress=False)
    assert list(b.table.columns[1:]) == ["(Intercept)", "days", "sigma", "sd_(Intercept)|subj",
                                         "cor_days.(Intercept)|subj", "sd_days|subj"]
    ci = b.confint()
    for name, lo, hi in zip(ref["names"], ref["q025"], ref["q975"]):
        width = hi - lo
        assert abs(ci.loc[name, "2.5 %"] - lo) <= 0.1 * width, name
        assert abs(ci.loc[name, "97.5 %"] - hi) <= 0.1 * width, name
