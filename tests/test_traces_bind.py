"""fitting.traces.CachedProgram.bind: the program resolved once for arguments of given shapes, with some array
arguments kept, gives what a plain call gives (with the trace cache on and off)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mixedjax.fitting import traces


def _f(x, data, v, scale):
    a, b = data
    return (jnp.sum(a * x) * scale + v @ v, b @ v), x * v[0]


@pytest.mark.parametrize("cache", ["on", "off"])
def test_bind_equals_call(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("MIXEDJAX_CACHE_DIR", str(tmp_path) if cache == "on" else "")
    traces.directory.cache_clear()
    try:
        prog = traces.CachedProgram("test_bind", _f, 3, ("scale",), ((0.0, 0.0), 0.0))
        rng = np.random.default_rng(0)
        data = (jnp.asarray(rng.normal(size=3)), jnp.asarray(rng.normal(size=(2, 2))))
        x0, v0 = rng.normal(size=3), rng.normal(size=2)
        bound = prog.bind(x0, data, v0, 2.0, fixed=(1,))
        for _ in range(2):
            x, v = rng.normal(size=3), rng.normal(size=2)
            got, want = bound(x, v), prog(x, data, v, 2.0)
            for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
                np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
            (s, bv), xv = got
            assert float(s) == pytest.approx(float(np.sum(np.asarray(data[0]) * x) * 2 + v @ v), rel=1e-12)
            np.testing.assert_allclose(np.asarray(xv), x * v[0], rtol=1e-12)
        assert (cache == "on") == any((tmp_path / "traces").glob("test_bind-*.bin"))
    finally:
        traces.directory.cache_clear()
