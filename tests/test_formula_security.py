"""Formulas are data, not code: injection attempts through every part of a formula, mj.lmm, evaluate and the CLI.

Each attempt must be refused with a FormulaError before anything is evaluated; none may run code or touch a file.
Tripwires on os.system, subprocess, open and the writers of numpy and pandas record any call, and the temporary
directory the attempts name must stay empty.
"""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mixedjax as mj
from mixedjax.__main__ import main as cli
from mixedjax.design.build import build_design
from mixedjax.errors import DataError, FormulaError
from mixedjax.formula import evaluate

# {p} is a path in the test's temporary directory
_EXPRESSIONS = [
    # attribute chains from a column to Python's builtins
    "I(days.apply.__globals__['__builtins__']['__import__']('os').system('touch {p}'))",
    "I(days.__class__.__init__.__globals__)",
    "days.__class__",
    "__import__('os').system('touch {p}')",
    "I(__builtins__)",
    # methods of columns that write files
    "I(days.to_csv('{p}') or days)",
    "I(days.to_pickle('{p}'))",
    "days.values.tofile('{p}')",
    "I(days).to_csv('{p}')",
    "I(days.pipe(open, '{p}', 'w'))",
    "`days`.to_csv('{p}')",
    # numpy and pandas I/O functions
    "np.save('{p}', days)",
    "numpy.savetxt('{p}', days)",
    "np.lib.npyio.savetxt('{p}', days)",
    "pd.read_csv('{p}')",
    "pd.DataFrame.to_csv(days, '{p}')",
    "np.loadtxt('{p}')",
    # builtins
    "open('{p}', 'w')",
    "eval(\"open('{p}', 'w')\")",
    "exec(\"open('{p}', 'w')\")",
    "getattr(days, 'to_csv')('{p}')",
    "compile('1', '{p}', 'eval')",
    "globals()",
    "os.system('touch {p}')",
    "subprocess.run(['touch', '{p}'])",
    # comprehensions, lambdas, subscripts, conditionals, assignments, f-strings, star-args
    "I([open('{p}', 'w') for k in days])",
    "I(sum(open('{p}', 'w') for k in days))",
    "I({{k: open('{p}', 'w') for k in days}})",
    "I((lambda: open('{p}', 'w'))())",
    "I(days[0])",
    "I(days[::2])",
    "I(days if open('{p}', 'w') else days)",
    "I((k := open('{p}', 'w')))",
    "I(f\"{{open('{p}', 'w')}}\")",
    "pmax(*[days, days])",
    "poly(days, **{{'degree': 2}})",
    "I(days @ days)",
    "I(\"\\x41\")",
    "I(days); open('{p}', 'w')",
    # nested calls: allowed outside, forbidden inside
    "log(exp(open('{p}', 'w')))",
    "scale(days, center = open('{p}', 'w'))",
    "C(days, open('{p}', 'w'))",
    "relevel(subj, ref = open('{p}').read())",
    "poly(days, degree = eval('2'))",
    "sqrt(abs(np.save('{p}', days)))",
]


@pytest.fixture
def tripwires(monkeypatch, tmp_path):
    """Record every call, with the attempts' target among its arguments, of a function that could run a command or
    touch a file (libraries may call some of them for themselves, e.g. namedtuple's exec); work in a fresh
    directory."""
    calls = []

    def wire(owner, name):
        original = getattr(owner, name)

        def tripped(*args, **kwargs):
            if "pwned" in repr(args) + repr(kwargs):
                calls.append(name)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, tripped)

    for owner, name in [(os, "system"), (os, "popen"), (subprocess, "Popen"), (builtins, "open"), (builtins, "eval"),
                        (builtins, "exec"), (np, "save"), (np, "savetxt"), (np, "load"), (np, "loadtxt"),
                        (pd.Series, "to_csv"), (pd.Series, "to_pickle"), (pd.DataFrame, "to_csv"),
                        (pd, "read_csv"), (np, "fromfile")]:
        wire(owner, name)
    monkeypatch.chdir(tmp_path)
    yield calls, tmp_path
    assert list(tmp_path.iterdir()) == [], "an attempt touched a file"
    assert calls == [], f"an attempt called {calls}"


@pytest.fixture(scope="module")
def sleep():
    return mj.dataset("sleepstudy")


def _formulas(expr: str):
    """The expression in the fixed part, the response, a random-effects term, an offset and a '||' term."""
    yield f"reaction ~ 1 + {expr} + (1 | subj)"
    yield f"{expr} ~ 1 + days + (1 | subj)"
    yield f"reaction ~ days + (1 + {expr} | subj)"
    yield f"reaction ~ days + offset({expr}) + (1 | subj)"
    yield f"reaction ~ days + (0 + {expr} || subj)"
    yield f"reaction ~ days + (1 | subj) + (1 | {expr})"


@pytest.mark.parametrize("expr", _EXPRESSIONS)
def test_injection_refused_in_every_part(expr, tripwires, sleep):
    _, tmp = tripwires
    e = expr.format(p=tmp / "pwned")
    for formula in _formulas(e):
        with pytest.raises(FormulaError):
            build_design(formula, sleep)
    with pytest.raises(FormulaError):
        evaluate(e, sleep)


@pytest.mark.parametrize("expr", _EXPRESSIONS[:12:3])
def test_injection_refused_by_lmm(expr, tripwires, sleep):
    _, tmp = tripwires
    with pytest.raises(FormulaError):
        mj.lmm(f"reaction ~ 1 + {expr.format(p=tmp / 'pwned')} + (1 | subj)", sleep)


@pytest.mark.parametrize("expr", _EXPRESSIONS[::5])
def test_injection_refused_by_the_cli(expr, tripwires, capsys):
    _, tmp = tripwires
    formula = f"reaction ~ 1 + {expr.format(p=tmp / 'pwned')} + (1 | subj)"
    assert cli(["fit", formula, "--data", "sleepstudy"]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_process_exit_status(tmp_path):
    """The real command line, in a fresh process: exit status 2 and no file."""
    target = tmp_path / "pwned"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for expr in (f"I(days.to_csv('{target}') or days)", f"np.save('{target}', days)"):
        r = subprocess.run([sys.executable, "-m", "mixedjax", "fit", f"reaction ~ {expr} + (1 | subj)",
                            "--data", "sleepstudy"], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": root, "JAX_PLATFORMS": "cpu"}, timeout=120)
        assert r.returncode == 2, r.stderr
        assert "error:" in r.stderr and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_refusal_names_the_construct(sleep):
    cases = {
        "reaction ~ I(days[0]) + (1 | subj)": "subscripts",
        "reaction ~ np.save('x', days) + (1 | subj)": "'np.save' is not a function a formula may call",
        "reaction ~ I(days.__class__) + (1 | subj)": "'days.__class__' is not allowed",
        "reaction ~ I((lambda: 1)()) + (1 | subj)": "':'",
        "reaction ~ I([k for k in days]) + (1 | subj)": "subscripts",
        "reaction ~ poly(days, **{'degree': 2}) + (1 | subj)": "braces",
        "reaction ~ scale(days, centre = 1) + (1 | subj)": "has no argument 'centre'",
        "reaction ~ I(days) + (1 | subj.to_csv('x'))": "grouping factor",
    }
    for formula, words in cases.items():
        with pytest.raises(FormulaError) as info:
            build_design(formula, sleep)
        assert words in str(info.value), (formula, str(info.value))
        assert "^" in str(info.value) or "grouping" in str(info.value)


def test_bitwise_operators_never_reach_the_model_matrix(sleep):
    # '^' is a power inside calls, never XOR; '&' and '|' are logical, never bitwise; '<<', '~' are refused
    d = build_design("reaction ~ I(days^2) + I(days > 2 & days < 7) + (1 | subj)", sleep)
    X = pd.DataFrame(d.X, columns=d.xnames)
    days = sleep["days"].to_numpy()
    np.testing.assert_array_equal(X["I(days^2)"], days.astype(float) ** 2)
    np.testing.assert_array_equal(X["I(days > 2 & days < 7)TRUE"], ((days > 2) & (days < 7)).astype(float))
    for expr in ("I(days << 1)", "I(~days)", "I(days >> 1)"):
        with pytest.raises(FormulaError):
            build_design(f"reaction ~ {expr} + (1 | subj)", sleep)


@pytest.mark.parametrize(
    "formula, kind",
    [
        ("reaction ~ I(" + "(" * 300 + "days" + ")" * 300 + ") + (1 | subj)", FormulaError),
        ("reaction ~ I(" + "-" * 3000 + "days) + (1 | subj)", FormulaError),
        ("reaction ~ poly(days, 1e9) + (1 | subj)", FormulaError),
        ("reaction ~ round(days, 1e300) + (1 | subj)", FormulaError),
        ("reaction ~ (" + " + ".join(f"I(days + {k})" for k in range(20)) + ")^20 + (1 | subj)", FormulaError),
        ("reaction ~ factor(reaction):factor(I(reaction + 1)) + (1 | subj)", DataError),
    ],
    ids=["parentheses", "unary", "poly-degree", "round-digits", "term-explosion", "columns-explosion"],
)
def test_resource_exhaustion_refused(formula, kind, sleep):
    with pytest.raises(kind):
        build_design(formula, sleep)


_FRAGMENTS = ["days", "reaction", "subj", ".", "__class__", "(", ")", "[", "]", "'pwned'", '"pwned"', "open", "np",
              "save", "to_csv", ",", "=", "lambda", ":", "+", "-", "*", "/", "^", "**", "%%", "`", "I", "log", "poly",
              "factor", "relevel", "1", "2.5", "{", "}", "%in%", "!", "&", "|", "<-", "@", ";", " ", "TRUE", "x"]


@settings(max_examples=int(os.environ.get("MJ_FUZZ", "300")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=12))
def test_random_formulas_never_run_code(tripwires, sleep, pieces):
    """Any text in any part: a design or a MixedjaxError, never another exception or a tripwire call."""
    expr = "".join(pieces)
    for formula in (f"reaction ~ {expr} + (1 | subj)", f"{expr} ~ days + (1 | subj)",
                    f"reaction ~ days + (1 + {expr} | subj)", f"reaction ~ days + (1 | {expr})"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                build_design(formula, sleep)
            except mj.MixedjaxError:
                pass
    try:
        evaluate(expr, sleep)
    except mj.MixedjaxError:
        pass
