"""The persistent cache of traced programs (mixedjax/fitting/traces.py): a program exported by one CachedProgram is
read back by a new one (as a new process would) and gives the jitted function's results; a damaged file is traced
again; with the cache off the function is simply jitted."""

import threading
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mixedjax.fitting import traces


class Pair(NamedTuple):
    a: jax.Array
    b: jax.Array


def f(x, data: Pair, scale):
    """A pytree argument and a static one; a pytree result."""
    return (jnp.sum(x * data.a) * scale, data.b @ x), jnp.cumsum(x)


TEMPLATE = ((0.0, 0.0), 0.0)


def _args():
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.normal(size=5)), Pair(jnp.asarray(rng.normal(size=5)), jnp.asarray(rng.normal(size=(3, 5))))


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(traces, "directory", lambda: tmp_path)
    return tmp_path


def _same(got, want):
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)


def test_exported_then_read_back(cache_dir):
    x, data = _args()
    want = jax.jit(f, static_argnames=("scale",))(x, data, scale=2.0)
    first = traces.CachedProgram("test_f", f, 2, ("scale",), TEMPLATE)
    _same(first(x, data, 2.0), want)  # static argument by position
    files = list(cache_dir.glob("test_f-*.bin"))
    assert len(files) == 1
    fresh = traces.CachedProgram("test_f", f, 2, ("scale",), TEMPLATE)  # as in a new process
    _same(fresh(x, data, scale=2.0), want)
    assert list(cache_dir.glob("test_f-*.bin")) == files  # read, not written again
    # another static value or shape is another program
    fresh(x, data, scale=3.0)
    fresh(jnp.ones(5), Pair(jnp.ones(5), jnp.ones((4, 5))), scale=2.0)
    assert len(list(cache_dir.glob("test_f-*.bin"))) == 3


def test_damaged_file_is_traced_again(cache_dir):
    x, data = _args()
    traces.CachedProgram("test_g", f, 2, ("scale",), TEMPLATE)(x, data, 2.0)
    (path,) = cache_dir.glob("test_g-*.bin")
    path.write_bytes(b"not a program")
    got = traces.CachedProgram("test_g", f, 2, ("scale",), TEMPLATE)(x, data, 2.0)
    _same(got, jax.jit(f, static_argnames=("scale",))(x, data, scale=2.0))
    assert path.read_bytes() != b"not a program"


def test_cache_off_is_plain_jit(monkeypatch, tmp_path):
    monkeypatch.setattr(traces, "directory", lambda: None)
    x, data = _args()
    got = traces.CachedProgram("test_h", f, 2, ("scale",), TEMPLATE)(x, data, 2.0)
    _same(got, jax.jit(f, static_argnames=("scale",))(x, data, scale=2.0))
    assert not list(tmp_path.iterdir())


def test_ahead_and_prefetch(cache_dir):
    """ahead=True compiles ahead (lower().compile()) and gives the jitted function's results; prefetch makes the
    program in the background worker, which the call then uses (the trace written once, read by a new one)."""
    x, data = _args()
    want = jax.jit(f, static_argnames=("scale",))(x, data, scale=2.0)
    p = traces.CachedProgram("test_p", f, 2, ("scale",), TEMPLATE, ahead=True)
    p.prefetch(x, data, 2.0, trace="background")
    (fut,) = p._calls.values()
    fut.result(timeout=120)
    _same(p(x, data, 2.0), want)
    _same(p.bind(x, data, 2.0, fixed=(1,))(x), want)
    assert len(list(cache_dir.glob("test_p-*.bin"))) == 1
    fresh = traces.CachedProgram("test_p", f, 2, ("scale",), TEMPLATE, ahead=True)
    _same(fresh.bind(x, data, scale=2.0)(x, data), want)


def _export_threads(monkeypatch) -> list:
    """The names of the threads CachedProgram._exported runs in from now on (a list that fills as it runs)."""
    names = []
    real = traces.CachedProgram._exported

    def spy(self, *a, **k):
        names.append(threading.current_thread().name)
        return real(self, *a, **k)

    monkeypatch.setattr(traces.CachedProgram, "_exported", spy)
    return names


def test_prefetch_reads_a_trace_on_disk_back_in_the_background(cache_dir, monkeypatch):
    """A program whose trace is on disk is read back (and compiled) by the worker, whatever ``trace`` says: the
    caller's thread exports nothing."""
    x, data = _args()
    want = jax.jit(f, static_argnames=("scale",))(x, data, scale=2.0)
    p = traces.CachedProgram("test_t", f, 2, ("scale",), TEMPLATE, ahead=True)
    _same(p(x, data, 2.0), want)  # traced and exported by the caller
    assert len(list(cache_dir.glob("test_t-*.bin"))) == 1
    exported_in = _export_threads(monkeypatch)
    fresh = traces.CachedProgram("test_t", f, 2, ("scale",), TEMPLATE, ahead=True)
    fresh.prefetch(x, data, 2.0, trace="here")
    (fut,) = fresh._calls.values()
    fut.result(timeout=120)
    assert exported_in and threading.current_thread().name not in exported_in
    _same(fresh(x, data, 2.0), want)


def test_prefetch_here_traces_in_the_caller_and_compiles_in_the_background(cache_dir, monkeypatch):
    """trace="here": the trace is exported before prefetch returns, in the caller's thread, and the worker is
    given only XLA's compile; the call then uses what the worker made, and a second prefetch adds nothing."""
    x, data = _args()
    want = jax.jit(f, static_argnames=("scale",))(x, data, scale=2.0)
    p = traces.CachedProgram("test_u", f, 2, ("scale",), TEMPLATE, ahead=True)
    exported_in = _export_threads(monkeypatch)
    p.prefetch(x, data, 2.0, trace="here")
    assert exported_in == [threading.current_thread().name]
    assert len(list(cache_dir.glob("test_u-*.bin"))) == 1  # written before the compile finishes
    (fut,) = p._calls.values()
    fut.result(timeout=120)
    p.prefetch(x, data, 2.0, trace="here")
    assert len(p._calls) == 1 and exported_in == [threading.current_thread().name]
    _same(p(x, data, 2.0), want)
    with pytest.raises(ValueError, match="trace must be"):
        p.prefetch(x, data, 2.0, trace="later")


def test_failed_prefetch_is_made_by_the_caller(cache_dir, monkeypatch):
    """A prefetch whose worker fails leaves the program to the caller, which makes it (and sees its own errors)."""
    x, data = _args()
    p = traces.CachedProgram("test_q", f, 2, ("scale",), TEMPLATE, ahead=True)
    real = traces.CachedProgram._load_or_export
    calls = []

    def flaky(self, *a, **k):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("worker failed")
        return real(self, *a, **k)

    monkeypatch.setattr(traces.CachedProgram, "_load_or_export", flaky)
    p.prefetch(x, data, 2.0, trace="background")
    _same(p(x, data, 2.0), jax.jit(f, static_argnames=("scale",))(x, data, scale=2.0))
    assert len(calls) == 2


def test_prefetch_with_the_cache_off(monkeypatch):
    monkeypatch.setattr(traces, "directory", lambda: None)
    x, data = _args()
    p = traces.CachedProgram("test_r", f, 2, ("scale",), TEMPLATE, ahead=True)
    p.prefetch(x, data, 2.0)
    assert not p._calls
    _same(p(x, data, 2.0), jax.jit(f, static_argnames=("scale",))(x, data, scale=2.0))


def test_clear_drops_held_programs(cache_dir):
    """traces.clear() (called by fitting.mappings.guard with jax.clear_caches()) drops the compiled-ahead programs;
    the next call makes them again from the trace on disk."""
    x, data = _args()
    p = traces.CachedProgram("test_s", f, 2, ("scale",), TEMPLATE, ahead=True)
    want = p(x, data, 2.0)
    assert p._calls
    traces.clear()
    assert not p._calls and not p._by_signature
    _same(p(x, data, 2.0), want)
    assert len(list(cache_dir.glob("test_s-*.bin"))) == 1


def test_remembered_answer_is_read_back_and_a_damaged_one_worked_out_again(cache_dir, monkeypatch):
    """traces.remembered (loop.quick_options' probe): worked out once, then read from disk; another question is
    another file; an unreadable file is worked out and rewritten; with the cache off, worked out every time."""
    calls = []

    def answer(q):
        calls.append(q)
        return {k: v for k, v in q.items() if k != "dropped"}

    question = {"kept": 0, "flag": False, "dropped": 1}
    want = {"kept": 0, "flag": False}
    assert traces.remembered("probe", question, answer) == want
    assert traces.remembered("probe", question, answer) == want
    assert len(calls) == 1
    (path,) = cache_dir.glob("probe-*.json")
    assert traces.remembered("probe", {"kept": 1}, answer) == {"kept": 1}
    assert len(calls) == 2 and len(list(cache_dir.glob("probe-*.json"))) == 2
    path.write_text("{not json")
    assert traces.remembered("probe", question, answer) == want
    assert len(calls) == 3
    assert traces.remembered("probe", question, answer) == want and len(calls) == 3  # rewritten
    monkeypatch.setattr(traces, "directory", lambda: None)
    traces.remembered("probe", question, answer)
    traces.remembered("probe", question, answer)
    assert len(calls) == 5


def _specs(tree):
    return [(tuple(x.shape), np.dtype(x.dtype)) for x in jax.tree_util.tree_leaves(tree)]


def test_out_specs_from_the_trace_the_file_and_eval_shape(cache_dir, monkeypatch):
    """out_specs gives the result's shapes and dtypes (as jax.eval_shape does) from this process's trace, from the
    file a fresh program reads, and, with the cache off, from eval_shape; with the tree of the result."""
    x, data = _args()
    want = jax.eval_shape(lambda a, b: f(a, b, scale=2.0), x, data)
    p = traces.CachedProgram("test_v", f, 2, ("scale",), TEMPLATE, ahead=True)
    p.prefetch(x, data, 2.0, trace="here")
    got = p.out_specs(x, data, 2.0)
    assert _specs(got) == _specs(want) and jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    fresh = traces.CachedProgram("test_v", f, 2, ("scale",), TEMPLATE, ahead=True)
    assert not fresh._exports
    assert _specs(fresh.out_specs(x, data, 2.0)) == _specs(want)
    monkeypatch.setattr(traces, "directory", lambda: None)
    assert _specs(traces.CachedProgram("test_w", f, 2, ("scale",), TEMPLATE).out_specs(x, data, 2.0)) == _specs(want)
