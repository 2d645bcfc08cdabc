"""The persistent cache of traced programs (mixedjax/fitting/traces.py): a program exported by one CachedProgram is
read back by a new one (as a new process would) and gives the jitted function's results; a damaged file is traced
again; with the cache off the function is simply jitted."""

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


def test_start_traces_now_compiles_in_a_thread(cache_dir):
    """CachedProgram.start traces and writes the program in the caller's thread, compiles it in another, and a
    later call of that signature runs the compiled program; a started signature is not started again."""
    x, data = _args()
    want = jax.jit(f, static_argnames=("scale",))(x, data, scale=2.0)
    prog = traces.CachedProgram("test_start", f, 2, ("scale",), TEMPLATE)
    like = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), (x, data))
    wait = prog.start(*like, 2.0)
    assert len(list(cache_dir.glob("test_start-*.bin"))) == 1  # exported before start returns
    wait()
    assert prog.start(*like, scale=2.0) is traces._done
    _same(prog(x, data, 2.0), want)
    # a new CachedProgram (a new process) reads the program back through start as well
    fresh = traces.CachedProgram("test_start", f, 2, ("scale",), TEMPLATE)
    fresh.start(x, data, 2.0)()
    _same(fresh(x, data, scale=2.0), want)


def test_start_with_the_cache_off_leaves_it_to_the_call(monkeypatch):
    monkeypatch.setattr(traces, "directory", lambda: None)
    x, data = _args()
    prog = traces.CachedProgram("test_start_off", f, 2, ("scale",), TEMPLATE)
    assert prog.start(x, data, 2.0) is traces._done
    _same(prog(x, data, 2.0), jax.jit(f, static_argnames=("scale",))(x, data, scale=2.0))


def test_a_failed_compile_in_the_thread_is_raised_by_wait(cache_dir, monkeypatch):
    x, data = _args()
    prog = traces.CachedProgram("test_start_err", f, 2, ("scale",), TEMPLATE)

    class Boom(RuntimeError):
        pass

    def fail(self):
        raise Boom("compile failed")

    monkeypatch.setattr(jax.stages.Lowered, "compile", fail)
    wait = prog.start(x, data, 2.0)
    with pytest.raises(Boom):
        wait()
    wait(quiet=True)  # only waits


def test_free_compiled_forgets_started_programs(cache_dir):
    """jax.clear_caches() does not free what start compiled; traces.free_compiled does (fitting.mappings calls
    both), and the program is read back at its next call."""
    x, data = _args()
    prog = traces.CachedProgram("test_free", f, 2, ("scale",), TEMPLATE)
    prog.start(x, data, 2.0)()
    assert prog._by_signature
    traces.free_compiled()
    assert not prog._by_signature and not prog._calls
    _same(prog(x, data, 2.0), jax.jit(f, static_argnames=("scale",))(x, data, scale=2.0))
