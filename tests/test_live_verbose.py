"""verbose=True prints each evaluation from inside the running compiled loop (jax.debug.callback), the same lines as
the fit log, and the silent fit is a different compiled program."""

import inspect

import numpy as np

import mixedjax as mj
import mixedjax.fitting.loop as loop


def test_lines_come_from_the_running_loop(monkeypatch, capsys):
    callers = []
    original = loop._print_eval

    def spy(k, theta, f):
        callers.append({fr.function for fr in inspect.stack()[1:4]})
        original(k, theta, f)

    monkeypatch.setattr(loop, "_print_eval", spy)
    m = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff"), verbose=True)
    out = capsys.readouterr().out.splitlines()
    lines = [ln for ln in out if ln.startswith("f_")]
    assert len(lines) == m.optsum.feval == len(m.optsum.fitlog)
    assert all("_live_eval" in c for c in callers)  # printed by the callback, during the loop
    for k, (ln, (theta, f)) in enumerate(zip(lines, m.optsum.fitlog), 1):
        assert ln == f"f_{k}: {f:.5f}, [{', '.join(f'{x:.6g}' for x in theta)}]"
    silent = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff"))
    assert capsys.readouterr().out == ""
    np.testing.assert_allclose(silent.objective, m.objective, rtol=1e-12)
