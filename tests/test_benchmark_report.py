"""The benchmark's targets and report (benchmarks/targets.py, benchmarks/report.py) on records made up by hand:
each target is judged on the quantity it names, and a run with engines or models missing still gives a report."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

report = pytest.importorskip("report")
targets = pytest.importorskip("targets")


def _rec(n, mj=None, lme4=None):
    return {"n": n, "formula": "y ~ 1 + (1 | g)", "mixedjax": mj or {}, "lme4": lme4 or {}}


def _judged(recs, label_start):
    return next(j for j in targets.judge(recs) if j.target.label.startswith(label_start))


@pytest.mark.parametrize("call_s, met", [(0.5, True), (0.51, False)])
def test_warm_ratio_is_lmer_over_the_whole_call(call_s, met):
    recs = {"insteval_seed": _rec(73421, {"call_s": call_s, "fit_s": 0.1}, {"lmer_s": 10.0})}
    j = _judged(recs, "InstEval seed: `mj.lmm` warm")
    assert j.values == {"insteval_seed": pytest.approx(10.0 / call_s)}
    assert j.met is met


def test_new_process_ratio_counts_lmer_and_summary():
    recs = {"insteval_seed": _rec(73421, {"new_process_s": 4.0}, {"lmer_s": 10.0, "summary_s": 2.0})}
    j = _judged(recs, "InstEval seed: a new process")
    assert j.values["insteval_seed"] == pytest.approx(3.0)
    assert j.met is True


def test_large_models_only_for_the_new_shape_target():
    recs = {
        "small": _rec(180, {"new_shape_s": 5.0}, {"lmer_s": 0.1, "summary_s": 0.1}),
        "big": _rec(73421, {"new_shape_s": 5.0}, {"lmer_s": 9.0, "summary_s": 1.0}),
    }
    j = _judged(recs, "a new shape in a running process")
    assert list(j.values) == ["big"]
    assert j.met is True


def test_every_model_for_the_build_share():
    recs = {"a": _rec(100, {"build_s": 0.01, "fit_s": 0.2}), "b": _rec(100, {"build_s": 0.05, "fit_s": 0.2})}
    j = _judged(recs, "host build ≤ 10 %")
    assert j.values == {"a": pytest.approx(0.05), "b": pytest.approx(0.25)}
    assert j.met is False and j.models_failing() == ["b"]


def test_nothing_measured_is_neither_met_nor_missed():
    j = _judged({}, "sleepstudy: warm whole call")
    assert j.values == {} and j.met is None


def test_report_with_engines_and_models_missing(tmp_path):
    results = {
        "date": "2026-01-01T00:00:00+00:00", "command": "python benchmarks/run.py --models sleepstudy",
        "machine": {"cpu": "test", "cores": 2}, "versions": {},
        "models": {"sleepstudy": {"n": 180, "formula": "reaction ~ 1 + days + (1 + days | subj)",
                                  "date": "2026-01-01T00:00:00+00:00",
                                  "mixedjax": {"call_s": 0.008, "build_s": 0.004, "fit_s": 0.002},
                                  "lme4": {"not_run": "Rscript not found"}}},
    }
    path = tmp_path / "RESULTS.md"
    report.write_report(results, path)
    text = path.read_text()
    assert "| sleepstudy | 180 | 8 ms |" in text
    assert "| sleepstudy: warm whole call ≤ 10 ms | 8 ms | met |" in text
    assert "not run in this run" in text  # the InstEval targets
    assert "sleepstudy, lme4: Rscript not found" in text


def test_batched_section_keeps_the_sections_after_it(tmp_path):
    """benchmarks/batched.py rewrites its own section of RESULTS.md and keeps the one another script wrote after it."""
    batched = pytest.importorskip("batched")
    path = tmp_path / "RESULTS.md"
    path.write_text("# Results\n\nhead\n" + batched.KEPT + "\n\nold rows\n\n## Inference\n\ntheir rows\n")
    batched.write_section(batched.KEPT.strip() + "\n\nnew rows\n", path)
    text = path.read_text()
    assert "new rows" in text and "old rows" not in text
    assert text.startswith("# Results\n\nhead\n") and text.endswith("## Inference\n\ntheir rows\n")
    batched.write_section(batched.KEPT.strip() + "\n\nnewer rows\n", path)
    assert path.read_text().count("## Inference") == 1 and "newer rows" in path.read_text()


def test_start_and_exit_is_the_new_process_wall_less_its_stages():
    mj = {"new_process_s": 2.0, "np_import_s": 0.5, "np_read_s": 0.01, "np_fit_s": 0.9, "np_print_s": 0.09}
    recs = {"sleepstudy": _rec(180, mj, {"new_process_s": 1.0, "np_library_s": 0.8, "np_read_s": 0.0,
                                         "np_fit_s": 0.05})}
    assert targets._get(recs["sleepstudy"], "mixedjax", "np_rest_s") == pytest.approx(0.5)
    assert targets._get(recs["sleepstudy"], "lme4", "np_rest_s") == pytest.approx(0.15)
    assert targets._get(_rec(180, {"new_process_s": 2.0}), "mixedjax", "np_rest_s") is None  # stages not timed
    j = _judged(recs, "sleepstudy: a new process")
    assert j.met is False
    assert "start and exit (the rest) 0.5 s" in report._stages("new_process_s", recs["sleepstudy"])
