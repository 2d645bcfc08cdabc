"""m.refit and mj.fit_many: each batched row equals a refit one by one, a refit equals a fresh fit of the new data,
no recompilation between refits or batches (counted traces), chunking and weights."""

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
from mixedjax.batch import function, queue
from mixedjax.batch.solve import Result
from mixedjax.errors import ArgumentError

FORMULA = "yield ~ 1 + (1 | batch)"


@pytest.fixture(scope="module")
def dye():
    return mj.lmm(FORMULA, mj.dataset("dyestuff"))


@pytest.fixture(scope="module")
def Y(dye):
    return np.asarray(dye.simulate(8, seed=3))


def test_refit_equals_a_fresh_fit(dye, Y):
    """A refit of a new response equals lmm on a data frame holding it (objective to 1e-8, θ and β to 1e-5)."""
    df = mj.dataset("dyestuff").assign(**{"yield": Y[0]})
    fresh = mj.lmm(FORMULA, df)
    r = dye.refit(Y[0])
    assert isinstance(r, mj.LinearMixedModel) and r.optsum.converged
    np.testing.assert_allclose(r.objective, fresh.objective, rtol=1e-8)
    np.testing.assert_allclose(r.theta, fresh.theta, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r.fixef, fresh.fixef, rtol=1e-6)
    np.testing.assert_allclose(r.sigma, fresh.sigma, rtol=1e-5)
    np.testing.assert_allclose(r.residuals() + r.fitted(), Y[0])
    assert "converged" in r.optsum.status and str(r).startswith("Linear mixed model")


def test_refit_compiles_once(dye, Y):
    dye.refit(Y[1])
    before = function.TRACES["fit_at"]
    for y in Y[2:5]:
        dye.refit(y)
    assert function.TRACES["fit_at"] == before


def test_fit_many_equals_refits(dye, Y):
    b = mj.fit_many(dye, Y)
    assert isinstance(b, mj.FitBatch) and len(b) == 8
    assert b.theta.shape == (8, 1) and b.beta.shape == (8, 1) and b.sigma.shape == (8,)
    assert b.converged.all() and set(b.result) <= {Result.gradient_zero, Result.objective_stalled}
    for i in range(8):
        r = dye.refit(Y[i])
        np.testing.assert_allclose(b.objective[i], r.objective, rtol=1e-10)
        np.testing.assert_allclose(b.theta[i], r.theta, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(b.beta[i], r.fixef.to_numpy(), rtol=1e-9)
        np.testing.assert_allclose(b.sigma[i], r.sigma, rtol=1e-9)
    with pytest.raises(ValueError):
        b.theta[0, 0] = 1.0  # read-only


def test_chunks_and_no_recompilation(dye, Y):
    """Chunks of 3 (the last one padded) give the same fits; a second batch of the same chunk size traces nothing."""
    one = mj.fit_many(dye, Y)
    chunked = mj.fit_many(dye, Y, batch_size=3)
    np.testing.assert_allclose(chunked.objective, one.objective, rtol=1e-12)
    before = queue.TRACES["fit_queue"]
    mj.fit_many(dye, Y[::-1].copy(), batch_size=3)
    assert queue.TRACES["fit_queue"] == before


def test_to_frame(dye, Y):
    f = mj.fit_many(dye, Y).to_frame()
    assert isinstance(f, pd.DataFrame) and len(f) == 8
    assert list(f.columns) == ["objective", "(Intercept)", "sigma", "batch:(Intercept)", "converged", "result"]
    assert set(f["result"]) <= {"gradient_zero", "objective_stalled"}


@pytest.mark.slow
def test_problem_and_reml(Y):
    p = mj.Problem.build(FORMULA, mj.dataset("dyestuff"))
    b = mj.fit_many(p, Y[:2], reml=True)
    assert b.reml
    for i in range(2):
        fresh = mj.lmm(FORMULA, mj.dataset("dyestuff").assign(**{"yield": Y[i]}), reml=True)
        np.testing.assert_allclose(b.objective[i], fresh.objective, rtol=1e-8)


@pytest.mark.slow
def test_weights(dye, Y):
    """Per-response weights: each row equals lmm(weights=...) of that response."""
    rng = np.random.default_rng(0)
    W = rng.uniform(0.5, 2.0, Y[:2].shape)
    b = mj.fit_many(dye, Y[:2], weights=W)
    for i in range(2):
        fresh = mj.lmm(FORMULA, mj.dataset("dyestuff").assign(**{"yield": Y[i]}), weights=W[i])
        np.testing.assert_allclose(b.objective[i], fresh.objective, rtol=1e-8)
        np.testing.assert_allclose(b.beta[i], fresh.fixef.to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("bad, words", [(np.zeros((2, 5)), "shape"), (np.full((1, 30), np.nan), "finite"),
                                        ("abc", "Y must")])
def test_bad_responses(dye, bad, words):
    with pytest.raises(ArgumentError, match=words):
        mj.fit_many(dye, bad)


def test_bad_arguments(dye, Y):
    with pytest.raises(ArgumentError, match="batch_size"):
        mj.fit_many(dye, Y, batch_size=0)
    with pytest.raises(ArgumentError, match="weights"):
        mj.fit_many(dye, Y, weights=np.ones(3))
    with pytest.raises(ArgumentError, match="LinearMixedModel or a Problem"):
        mj.fit_many("yield ~ 1", Y)
    with pytest.raises(ArgumentError, match="observations"):
        dye.refit(np.ones(3))
