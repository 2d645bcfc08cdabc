"""Results by grouping factor are found by mixedjax's names (a nest's inner term of (1 | a/b) is ``a:b``, as in
MixedModels.jl) and by lme4's (``b:a``; ``c:(b:a)`` for a/b/c), for LMMs and GLMMs, with lme4's values under lme4's
names (tests/reference/group_names.json, from make_group_names.R: lmer and glmer converged tightly)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
from mixedjax.model.groups import ByGroup

REF = Path(__file__).parent / "reference"
CASES = json.loads((REF / "group_names.json").read_text())
pytestmark = pytest.mark.filterwarnings("ignore:.*singular")  # a/b/c: c adds nothing here (lme4 agrees)


@pytest.fixture(scope="module")
def data():
    d = pd.read_csv(REF / "lme4_names.csv")
    for v in "abch":
        d[v] = d[v].astype(str).astype("category")
    return d.assign(k=CASES["k"])


def _ours(level: str, aliased: bool) -> str:
    """mixedjax's level of an lme4 level: lme4's 'b:a' levels are written inner factor first."""
    return ":".join(reversed(level.split(":"))) if aliased else level


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["kind"] + ": " + c["formula"] for c in CASES["cases"]])
def test_lme4_names_find_lme4_values(case, data):
    if case["kind"] == "lmm":
        m = mj.lmm(case["formula"], data, reml=False)
    else:
        m = mj.glmm(case["formula"], data, "poisson")
    re, vc = m.ranef(), m.varcorr
    cv = m.condvar() if case["kind"] == "lmm" else None
    assert sorted(re) == sorted(g.name for g in vc.groups)  # the keys stay mixedjax's
    for name in case["names"]:
        ref = case["groups"][name]
        aliased = ":" in name and name not in [g.name for g in vc.groups]
        assert name in re and re.get(name) is not None
        levels = [_ours(lv, aliased) for lv in ref["levels"]]
        np.testing.assert_allclose(re[name].loc[levels].iloc[:, 0].to_numpy(), ref["values"], rtol=2e-3, atol=2e-4)
        assert vc[name].stddevs[0] == pytest.approx(ref["sd"], rel=2e-3, abs=2e-4)
        if cv is not None:
            idx = [list(re[name].index).index(lv) for lv in levels]
            np.testing.assert_allclose(cv[name][idx, 0, 0], ref["condvar"], rtol=2e-3, atol=2e-5)
        assert re[name] is re[re.resolve(name)]
    assert "nope" not in re and re.get("nope") is None
    with pytest.raises(KeyError):
        re["nope"]
    with pytest.raises(KeyError):
        vc["nope"]


def test_mixedjax_names_are_the_keys(data):
    """Both model kinds name the inner terms outer factor first: a:b, a:b:c."""
    m = mj.lmm("y ~ 1 + (1 | a/b/c)", data, reml=False)
    assert list(m.ranef()) == ["a:b:c", "a:b", "a"]
    assert [g.name for g in m.varcorr.groups] == ["a:b:c", "a:b", "a"]
    g = mj.glmm("k ~ x + (1 | a/b)", data, "poisson")
    assert list(g.ranef()) == ["a:b", "a"] and [t.name for t in g.varcorr.groups] == ["a:b", "a"]
    assert isinstance(g.ranef(), ByGroup) and g.ranef()["b:a"] is not None
