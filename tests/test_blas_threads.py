"""fitting/blas.py: BLAS on one thread while a fit runs, the counts found given back after it (nested fits, fits in
two threads), and a count set in the environment left alone."""

import threading

import numpy as np
import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")

import mixedjax as mj  # noqa: E402
import mixedjax.model.lmm as lmm_module  # noqa: E402
from mixedjax.fitting.blas import _ENV, one_blas_thread  # noqa: E402

FORMULA = "reaction ~ 1 + days + (1 + days | subj)"


def _counts():
    return [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]


@pytest.fixture
def two_threads(monkeypatch):
    """Every BLAS at two threads (a known count to give back), no thread count in the environment; SciPy's LAPACK
    loaded by a first fit."""
    for k in _ENV:
        monkeypatch.delenv(k, raising=False)
    data = mj.dataset("sleepstudy")
    mj.lmm(FORMULA, data)
    if not _counts():
        pytest.skip("no BLAS library that threadpoolctl controls")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        assert set(_counts()) == {2}
        yield data


def _recording(monkeypatch):
    """Record the BLAS thread counts while fit_theta (the optimiser) runs."""
    seen, inner = [], lmm_module.fit_theta

    def fit_theta(*args, **kwargs):
        seen.append(_counts())
        return inner(*args, **kwargs)

    monkeypatch.setattr(lmm_module, "fit_theta", fit_theta)
    return seen


def test_one_thread_during_a_fit_and_the_count_given_back(two_threads, monkeypatch):
    seen = _recording(monkeypatch)
    m = mj.lmm(FORMULA, two_threads)
    assert seen and all(set(c) == {1} for c in seen)
    assert set(_counts()) == {2}
    np.testing.assert_allclose(m.objective, 1751.9393444, rtol=1e-9)


def test_nested_blocks_give_the_count_back_once(two_threads):
    with one_blas_thread():
        with one_blas_thread():
            assert set(_counts()) == {1}
        assert set(_counts()) == {1}  # the outer block still runs
    assert set(_counts()) == {2}


def test_fits_in_two_threads_give_the_count_back_at_the_end(two_threads):
    barrier, errors = threading.Barrier(2), []

    def work():
        try:
            barrier.wait()
            for _ in range(3):
                mj.lmm(FORMULA, two_threads)
        except Exception as err:  # reported below, in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert set(_counts()) == {2}


def test_a_count_set_in_the_environment_is_left_alone(two_threads, monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    seen = _recording(monkeypatch)
    mj.lmm(FORMULA, two_threads)
    assert seen and all(set(c) == {2} for c in seen)
