"""Run the examples and the command line as subprocesses, as a user would."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# PYTHONPATH: a script's own folder comes first on sys.path, so without it the examples import whatever mixedjax is
# installed rather than this checkout's
ENV = {**os.environ, "MIXEDJAX_EXAMPLES_QUICK": "1", "JAX_ENABLE_X64": "1", "PYTHONPATH": str(ROOT)}

EXPECTED = {
    "seed_walkthrough.py": ["Linear mixed model fit by maximum likelihood", "Linear mixed model fit by REML",
                            "f_1:", "reaction ~ 1 + days + (1 + days | subj)", "insteval skipped"],
    "derivatives.py": ["Hessian, fixed-σ", "Hessian, profiled", "central diff.", "eigenvalues"],
    "jax_objective.py": ["jit(f)", "grad(f)", "vmap over a batch", "d(θ̂) via mj.deviance"],
    "bootstrap.py": ["Bootstrap(200 replicates", "percentile intervals", "shortest coverage", "sd_days|subj",
                     "densities saved to"],
    "power.py": ["slope 2 ms/day: power", "slope 6 ms/day: power"],
    "influence.py": ["jacrev: influence", "infinitesimal jackknife", "most influential observation"],
    "layer.py": ["Box-Cox λ̂ =", "step 0:"],
    "glmm.py": ["Generalized Linear Mixed Model fit by maximum likelihood (nAGQ = 1)", "Link: LogitLink()",
                "nAGQ = 9: theta", "same log-likelihood: True", "Poisson with offset", "predict (response)",
                "Hessian eigenvalues"],
}


def run(args, timeout=600, env=ENV):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_every_example_is_checked():
    assert {p.name for p in EXAMPLES} == set(EXPECTED)


BATCHED = {"bootstrap.py", "power.py", "influence.py", "layer.py"}  # each compiles batched fits: tens of seconds


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.name in BATCHED else p
                                  for p in EXAMPLES], ids=lambda p: p.name)
def test_example_runs(path):
    r = run([str(path)])
    assert r.returncode == 0, r.stderr[-3000:]
    for text in EXPECTED[path.name]:
        assert text in r.stdout, text


def test_cli_fit_hessian():
    r = run(["-m", "mixedjax", "fit", "yield ~ 1 + (1 | batch)", "--data", "dyestuff", "--hessian"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Linear mixed model fit by maximum likelihood" in r.stdout
    assert " yield ~ 1 + (1 | batch)" in r.stdout
    assert "Hessian (fixed-σ objective" in r.stdout
    assert "Hessian (profiled objective" in r.stdout


def test_cli_fit_bobyqa():
    pytest.importorskip("nlopt")
    r = run(["-m", "mixedjax", "fit", "yield ~ 1 + (1 | batch)", "--data", "dyestuff", "--optimizer", "bobyqa"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert "converged: BOBYQA" in r.stdout and "-2 logLik" in r.stdout and "327.327" in r.stdout


def test_cli_bad_column():
    r = run(["-m", "mixedjax", "fit", "yield ~ 1 + (1 | nosuchcol)", "--data", "dyestuff"])
    assert r.returncode == 2
    assert r.stderr.startswith("error:")
    assert "nosuchcol" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_unknown_data():
    r = run(["-m", "mixedjax", "fit", "y ~ 1 + (1 | g)", "--data", "no_such_dataset"])
    assert r.returncode == 2
    assert "error:" in r.stderr and "no_such_dataset" in r.stderr


def test_cli_datasets():
    r = run(["-m", "mixedjax", "datasets"])
    assert r.returncode == 0
    assert "sleepstudy" in r.stdout and "dyestuff" in r.stdout


def test_cli_csv(tmp_path):
    lines = ["grp,x,resp"]
    vals = [3.1, 4.0, 2.2, 5.9, 6.3, 5.1, 1.0, 2.4, 1.9, 7.7, 8.1, 6.6, 4.4, 3.9, 5.0]
    for i, v in enumerate(vals):
        lines.append(f"g{i // 3},{i % 3},{v}")
    csv = tmp_path / "toy.csv"
    csv.write_text("\n".join(lines) + "\n")
    r = run(["-m", "mixedjax", "fit", "resp ~ 1 + x + (1 | grp)", "--data", str(csv), "--reml"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Linear mixed model fit by REML" in r.stdout
    assert "Number of obs: 15; levels of grouping factors: 5" in r.stdout


@pytest.mark.slow
def test_cli_walkthrough():
    env = {k: v for k, v in ENV.items() if k != "MIXEDJAX_EXAMPLES_QUICK"}
    r = run(["-m", "mixedjax"], timeout=1800, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    for heading in ["=== dyestuff: yield", "=== dyestuff: the same model by REML", "=== dyestuff2:",
                    "=== sleepstudy:", "=== insteval:"]:
        assert heading in r.stdout, heading
    assert r.stdout.count("fit time:") == 5
    assert "Fitting yield ~ 1 + (1 | batch) by REML" in r.stdout


def _readme_blocks():
    """The README's quickstart: its first python block and the output block that follows it."""
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quickstart", 1)[1]
    code = quick.split("```python\n", 1)[1].split("```", 1)[0]
    output = quick.split("Output:", 1)[1].split("```\n", 1)[1].split("```", 1)[0]
    return code, output


def test_readme_quickstart_prints_what_the_readme_shows():
    code, output = _readme_blocks()
    r = run(["-c", code])
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.rstrip() == output.rstrip()
