"""Properties of the fit on random small designs of every block kind.

- the optimum is no worse than a derivative-free optimiser (Powell, Nelder-Mead) on the same objective, from the
  same start;
- relabelling or reordering the levels and shuffling the rows changes no reported number;
- scaling y by c scales β, σ, the standard errors and the random effects by c and leaves θ unchanged.

Each block kind has one fixed shape (n = 60), so hypothesis varies the values, not the compiled programs.
"""

import math

import jax
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

import mixedjax as mj

try:  # the fit's own compiled objective: no second compilation per model shape
    from mixedjax.fitting.loop import _deviance_jit as _dev
except ImportError:  # pragma: no cover
    _dev = jax.jit(mj.deviance, static_argnames=("layout", "reml"))

N = 60
KINDS = {
    "scalar": "y ~ 1 + x + f + (1 | g)",
    "vector": "y ~ 1 + x + (1 + x | g)",
    "zerocorr": "y ~ 1 + x + (1 + x || g)",
    "crossed": "y ~ 1 + x + (1 | g) + (1 | h)",
    "nested": "y ~ 1 + x + (1 | g/n)",
    "partial": "y ~ 1 + x + (1 | g) + (1 | p)",
    "three": "y ~ 1 + x + (1 | g) + (1 | h) + (1 | k)",
}


def _data(kind, seed, sd):
    """60 rows; g: 6 levels (10 rows each); h: 5 levels crossed with g; n: 2 levels within each g;
    p: 9 levels, each g meets 3 of them (partially crossed); k: 4 levels crossed with g and h."""
    rng = np.random.default_rng(seed)
    i = np.arange(N)
    gi = i // 10
    hi = i % 5
    ni = (i % 10) // 5
    pi = (gi * 2 + (i % 10) // 4) % 9
    ki = (i * 7) % 4
    x = np.round(rng.normal(size=N), 2)
    y = 1.0 + 0.5 * x + rng.normal(scale=0.7, size=N)
    effects = {"g": (gi, 6), "h": (hi, 5), "p": (pi, 9), "k": (ki, 4)}
    for name in ("g", "h", "p", "k"):
        codes, nl = effects[name]
        y = y + sd[name] * rng.normal(size=nl)[codes]
    y = y + sd["n"] * rng.normal(size=12)[gi * 2 + ni] + sd["slope"] * rng.normal(size=6)[gi] * x
    return pd.DataFrame(
        {
            "y": y,
            "x": x,
            "f": np.array(["lo", "mid", "hi"])[i % 3],
            "g": np.array([f"G{j}" for j in range(6)])[gi],
            "h": np.array([f"H{j}" for j in range(5)])[hi],
            "n": np.array(["a", "b"])[ni],
            "p": np.array([f"P{j}" for j in range(9)])[pi],
            "k": np.array([f"K{j}" for j in range(4)])[ki],
        }
    )


_SD = st.fixed_dictionaries(
    {name: st.sampled_from([0.0, 0.3, 1.0, 2.5]) for name in ("g", "h", "n", "p", "k", "slope")}
)
_SETTINGS = settings(max_examples=2, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _fit(formula, d, **kw):
    return mj.lmm(formula, d, **kw)


def _best_derivative_free(m):
    a, layout = m.problem.arrays, m.problem.layout
    f = lambda t: float(_dev(np.asarray(t, float), a, layout, m.reml))  # noqa: E731
    best = math.inf
    for method, options in (("Powell", {"xtol": 1e-8, "ftol": 1e-12, "maxfev": 3000}),
                            ("Nelder-Mead", {"xatol": 1e-8, "fatol": 1e-12, "maxfev": 3000})):
        best = min(best, minimize(f, m.optsum.initial, method=method, options=options).fun)
    return best


# ---- the optimum --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
@_SETTINGS
@given(seed=st.integers(0, 2**20), sd=_SD, reml=st.booleans())
def test_optimum_no_worse_than_derivative_free(kind, seed, sd, reml):
    m = _fit(KINDS[kind], _data(kind, seed, sd), reml=reml)
    assert np.isfinite(m.objective) and np.all(np.isfinite(m.theta))
    best = _best_derivative_free(m)
    assert m.objective <= best + 1e-6 * abs(best), (m.objective, best, m.theta)


def test_objective_function_is_the_fits_objective():
    m = _fit(KINDS["crossed"], _data("crossed", 1, {"g": 1.0, "h": 0.5, "n": 0, "p": 0, "k": 0, "slope": 0}))
    f = m.objective_function()
    np.testing.assert_allclose(float(f(m.theta)), m.objective, rtol=1e-12)
    np.testing.assert_allclose(float(f(m.optsum.initial)), m.optsum.fitlog[0][1], rtol=1e-12)


# ---- invariance to labels and order -------------------------------------------------------------------------------
def _relabel_and_shuffle(d, seed):
    """New level names whose sort order differs from the old one, and the rows in a random order."""
    rng = np.random.default_rng(seed)
    out, maps = d.copy(), {}
    for col in ("g", "h", "n", "p", "k"):
        levels = sorted(d[col].unique())
        new = [f"L{j:02d}" for j in rng.permutation(len(levels))]
        maps[col] = dict(zip(levels, new))
        out[col] = d[col].map(maps[col])
    out["g"] = pd.Categorical(out["g"], categories=list(rng.permutation(sorted(out["g"].unique()))))
    out = out.iloc[rng.permutation(len(out))].reset_index(drop=True)
    return out, maps


def _level_map(name, maps):
    parts = name.split(":")

    def f(level):
        return ":".join(maps[p][v] for p, v in zip(parts, level.split(":")))

    return f


def _assert_same(m1, m2, maps, rtol=1e-6):
    np.testing.assert_allclose(m2.objective, m1.objective, rtol=1e-9)
    np.testing.assert_allclose(m2.theta, m1.theta, rtol=rtol, atol=1e-7)
    np.testing.assert_allclose(m2.fixef.to_numpy(), m1.fixef.to_numpy(), rtol=rtol, atol=1e-9)
    np.testing.assert_allclose(m2.sigma, m1.sigma, rtol=rtol)
    np.testing.assert_allclose(m2.stderror.to_numpy(), m1.stderror.to_numpy(), rtol=rtol)
    r1, r2 = m1.ranef(), m2.ranef()
    assert set(r1) == set(r2)
    for name, v1 in r1.items():
        v2 = r2[name].copy()
        v2.index = v2.index.astype(str)
        v1 = v1.rename(index=_level_map(name, maps))
        np.testing.assert_allclose(v2.loc[v1.index].to_numpy(), v1.to_numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", ["vector", "crossed", "nested", "partial"])
@_SETTINGS
@given(seed=st.integers(0, 2**20), sd=_SD)
def test_relabelling_and_reordering_change_nothing(kind, seed, sd):
    d = _data(kind, seed, sd)
    d2, maps = _relabel_and_shuffle(d, seed + 1)
    m1, m2 = _fit(KINDS[kind], d), _fit(KINDS[kind], d2)
    _assert_same(m1, m2, maps)


# ---- scaling the response -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["scalar", "vector", "crossed"])
@_SETTINGS
@given(seed=st.integers(0, 2**20), sd=_SD, c=st.sampled_from([1e-3, 0.37, 42.0, 1e3]))
def test_scaling_the_response(kind, seed, sd, c):
    d = _data(kind, seed, sd)
    m1, m2 = _fit(KINDS[kind], d), _fit(KINDS[kind], d.assign(y=d.y * c))
    np.testing.assert_allclose(m2.objective, m1.objective + 2 * N * math.log(c), rtol=1e-10)
    np.testing.assert_allclose(m2.theta, m1.theta, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(m2.fixef.to_numpy(), c * m1.fixef.to_numpy(), rtol=1e-6, atol=1e-9 * c)
    np.testing.assert_allclose(m2.sigma, c * m1.sigma, rtol=1e-6)
    np.testing.assert_allclose(m2.stderror.to_numpy(), c * m1.stderror.to_numpy(), rtol=1e-6)
    for name, v1 in m1.ranef().items():
        np.testing.assert_allclose(m2.ranef()[name].to_numpy(), c * v1.to_numpy(), rtol=1e-5, atol=1e-7 * c)
