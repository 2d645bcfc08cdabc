"""A fitted model (and a Problem) survives pickle: the unpickled model reports the same numbers."""

import pickle

import numpy as np
import pandas as pd

import mixedjax as mj


def _assert_same_model(a, b):
    assert a.formula == b.formula and a.reml == b.reml and a.nobs == b.nobs
    assert a.objective == b.objective
    np.testing.assert_array_equal(a.theta, b.theta)
    pd.testing.assert_series_equal(a.fixef, b.fixef)
    pd.testing.assert_frame_equal(a.vcov, b.vcov)
    pd.testing.assert_series_equal(a.fitted(), b.fitted())
    for k in a.ranef():
        pd.testing.assert_frame_equal(a.ranef()[k], b.ranef()[k])
    assert str(a) == str(b)
    np.testing.assert_allclose(a.gradient(), b.gradient(), rtol=0, atol=1e-12)


def test_fitted_model_round_trips():
    m = mj.lmm("diameter ~ 1 + (1 | plate) + (1 | sample)", mj.dataset("penicillin"), reml=True)
    m.leverage()  # a cached result travels too
    m2 = pickle.loads(pickle.dumps(m))
    _assert_same_model(m, m2)
    pd.testing.assert_series_equal(m.leverage(), m2.leverage())
    nd = pd.DataFrame({"plate": ["a", "new"], "sample": ["B", "C"]})
    pd.testing.assert_series_equal(m.predict(nd), m2.predict(nd))


def test_problem_round_trips_and_refits():
    p = mj.Problem.build("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
    p2 = pickle.loads(pickle.dumps(p))
    _assert_same_model(mj.fit(p), mj.fit(p2))
