"""fitting.collector.paused: Python's garbage collector off over a trace or an import, and back as it was."""

import gc
import subprocess
import sys
import threading

import pytest

from mixedjax.fitting import collector


@pytest.fixture(autouse=True)
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()


def test_off_inside_on_after():
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nested_pauses_end_with_the_outermost():
    with collector.paused():
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause is still on
    assert gc.isenabled()


def test_an_error_inside_restores_it():
    with pytest.raises(RuntimeError):
        with collector.paused():
            raise RuntimeError("inside")
    assert gc.isenabled()


def test_the_users_choice_is_kept():
    gc.disable()
    with collector.paused():
        pass
    assert not gc.isenabled()


def test_overlapping_pauses_in_two_threads():
    """A pause in another thread that outlives this one's keeps the collector off until it ends."""
    inside, release = threading.Event(), threading.Event()

    def other():
        with collector.paused():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other)
    with collector.paused():
        t.start()
        assert inside.wait(10)
    assert not gc.isenabled()  # the other thread's pause has not ended
    release.set()
    t.join(10)
    assert gc.isenabled()


def test_a_trace_runs_paused(monkeypatch, tmp_path):
    """CachedProgram's trace (jax.export) runs with the collector off, and leaves it on."""
    import jax
    import jax.numpy as jnp

    from mixedjax.fitting import traces

    seen = []
    real = jax.export.export

    def spy(f, *a, **k):
        g = real(f, *a, **k)

        def traced(*specs):
            seen.append(gc.isenabled())
            return g(*specs)

        return traced

    monkeypatch.setattr(jax.export, "export", spy)
    monkeypatch.setattr(traces, "directory", lambda: tmp_path)
    prog = traces.CachedProgram("collector-test", lambda x: jnp.sin(x) * 2.0, 1, (), jnp.zeros(()))
    assert float(prog(jnp.asarray(0.5))) == pytest.approx(2 * 0.479425538604203)
    assert seen == [False]
    assert gc.isenabled()


@pytest.mark.parametrize("before, after", [("", "True"), ("gc.disable(); ", "False")])
def test_import_leaves_the_collector_as_it_found_it(before, after):
    code = f"import gc; {before}import mixedjax; print(gc.isenabled())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == after
