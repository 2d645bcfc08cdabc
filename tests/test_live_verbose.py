"""verbose=True prints each evaluation from inside the running compiled loop (jax.debug.callback): the line-search
evaluations, the same lines as the fit log."""

import inspect

import numpy as np

import mixedjax as mj
import mixedjax.fitting.bobyqa as bobyqa_mod


def test_lines_come_from_the_running_loop(monkeypatch, capsys):
    callers = []
    original = bobyqa_mod.print_eval

    def spy(k, theta, f):
        callers.append({fr.function for fr in inspect.stack()[1:3]})
        original(k, theta, f)

    monkeypatch.setattr(bobyqa_mod, "print_eval", spy)
    m = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff"), verbose=True)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("f_")]
    assert len(lines) == m.optsum.feval == len(m.optsum.fitlog) > 0
    assert callers and all("_show_live" in c for c in callers)  # printed by the callback, during the loop
    for k, (ln, (theta, f)) in enumerate(zip(lines, m.optsum.fitlog), 1):
        assert ln == f"f_{k}: {f:.5f}, [{', '.join(f'{x:.6g}' for x in theta)}]"
    silent = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff"))
    assert capsys.readouterr().out == ""
    np.testing.assert_allclose(silent.objective, m.objective, rtol=1e-12)
