"""A first bootstrap traces its chunk's programs in the caller's thread: the lanes' loop and its checks before the
first chunk, compiled in the background (batch.queue.prefetch_chunk), the simulation at its first call. Each is
traced once, and the chunks use the prefetched programs."""

import threading

import numpy as np
import pytest

import mixedjax as mj
from mixedjax.batch import bootstrap as B
from mixedjax.batch import queue as Q
from mixedjax.fitting import traces


@pytest.fixture
def fresh_programs(tmp_path, monkeypatch):
    monkeypatch.setattr(traces, "directory", lambda: tmp_path)
    for cached in (Q._cached_loop, Q.chunk_finished, B._simulate_chunk):
        cached.cache_clear()
    yield tmp_path
    for cached in (Q._cached_loop, Q.chunk_finished, B._simulate_chunk):
        cached.cache_clear()


def test_first_bootstrap_traces_each_program_once_here(fresh_programs, monkeypatch):
    m = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
    threads = []
    real = traces.CachedProgram._exported

    def spy(self, *a, **k):
        threads.append((self.name, threading.current_thread().name))
        return real(self, *a, **k)

    monkeypatch.setattr(traces.CachedProgram, "_exported", spy)
    before = Q.TRACES["fit_queue"]
    b = m.bootstrap(40, seed=3, progress=False, batch_size=16)  # three chunks, one program each
    main = threading.current_thread().name
    assert sorted(threads) == sorted([("batch_simulate", main), ("batch_loop", main), ("batch_finished", main)])
    assert Q.TRACES["fit_queue"] == before + 1
    # the same replicates as a bootstrap with the cache off (plain jitted programs, no prefetch)
    monkeypatch.setattr(traces, "directory", lambda: None)
    plain = m.bootstrap(40, seed=3, progress=False, batch_size=16)
    np.testing.assert_array_equal(b.fits.theta, plain.fits.theta)
    np.testing.assert_array_equal(b.fits.objective, plain.fits.objective)
