"""The guard against Linux's memory-mapping limit (mixedjax.fitting.mappings): it frees JAX's compiled programs and
warns once when the process nears the limit, and does nothing below it."""

import sys
import warnings

import jax
import jax.numpy as jnp
import pytest

from mixedjax.fitting import mappings


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(mappings, "_state", mappings._State())
    return mappings


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_counts_this_process_mappings():
    n = mappings.count_mappings()
    assert isinstance(n, int) and n > 10
    assert mappings._limit() > 0


def test_below_the_limit_nothing_is_freed(fresh, monkeypatch):
    monkeypatch.setattr(mappings, "_limit", lambda: 1000)
    monkeypatch.setattr(mappings, "count_mappings", lambda: 700)  # under 75 %
    called = []
    monkeypatch.setattr(jax, "clear_caches", lambda: called.append(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not any(fresh.guard() for _ in range(2 * mappings.CHECK_EVERY))
    assert not called


def test_near_the_limit_programs_are_freed_and_it_warns_once(fresh, monkeypatch):
    monkeypatch.setattr(mappings, "_limit", lambda: 1000)
    monkeypatch.setattr(mappings, "count_mappings", lambda: 800)
    f = jax.jit(lambda x: x + 1)
    f(jnp.ones(3))
    assert f._cache_size() == 1
    with pytest.warns(RuntimeWarning, match="vm.max_map_count"):
        freed = [fresh.guard() for _ in range(mappings.CHECK_EVERY)]
    assert freed[-1] and not any(freed[:-1])  # counted only every CHECK_EVERY fits
    assert f._cache_size() == 0  # the compiled program was dropped
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second time it frees silently
        assert fresh.guard(force=True)
