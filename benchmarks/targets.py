"""The targets (issue 14), one table, and the measured quantities they are judged on.

A target is met or not by the numbers of one run; it is never asserted. ``model`` is a benchmark model's name,
``"*"`` (every model in the run) or ``"large"`` (every model of more than 10,000 rows). Where a target is not met,
the report lists the measured stages of the quantity (``STAGES``), so what stands in the way is read off the
numbers of the same run.
"""

from __future__ import annotations

import operator
from typing import NamedTuple


class Target(NamedTuple):
    label: str  # as the issue words it
    model: str  # a model name, "*" or "large"
    metric: str  # a key of METRICS
    op: str  # "<=" or ">="
    limit: float
    unit: str  # how values print: "s", "ms", "x" (a ratio), "MB", "%"


# "no slower than today": the fit after compilation of the run of 2026-11-22 at 02684b8 (benchmarks/RESULTS.md of
# that commit), the last full run before issue 14
BEFORE = {"kb07": 0.1962, "d3": 7.099, "ml1m": 24.31}

TARGETS = (
    Target("InstEval seed: `mj.lmm` warm ≥ 20× `lmer`", "insteval_seed", "warm_speedup", ">=", 20, "x"),
    Target("InstEval seed: a new process (import, compile, fit, print) ≥ 3× `lmer` + `summary`", "insteval_seed",
           "new_process_speedup", ">=", 3, "x"),
    Target("InstEval three crossed terms: warm ≥ 30× `lmer`", "insteval_three", "warm_speedup", ">=", 30, "x"),
    Target("sleepstudy: a new process that imports, fits and prints ≤ 1.5 s", "sleepstudy", "new_process_s", "<=",
           1.5, "s"),
    Target("sleepstudy: warm whole call ≤ 10 ms", "sleepstudy", "call_s", "<=", 0.010, "ms"),
    *(Target(f"{m}-shaped: fit no slower than before ({BEFORE[m]:.3g} s)", m, "fit_s", "<=", BEFORE[m], "s")
      for m in ("kb07", "d3", "ml1m")),
    Target("ml1m-shaped: peak memory ≤ 3 GB", "ml1m", "peak_mb", "<=", 3072, "MB"),
    Target("a new shape in a running process: compile + fit + summary no slower than `lmer` + `summary` "
           "(models of more than 10,000 rows)", "large", "new_shape_speedup", ">=", 1.0, "x"),
    Target("the first printout after a fit ≤ 50 ms (a new process, compilation cache filled)", "*",
           "first_print_s", "<=", 0.050, "ms"),
    Target("host build ≤ 0.1 s on InstEval", "insteval_seed", "build_s", "<=", 0.1, "s"),
    Target("host build ≤ 10 % of the fit", "*", "build_share", "<=", 0.10, "%"),
)


def _get(rec: dict, engine: str, key: str):
    e = (rec or {}).get(engine) or {}
    return DERIVED[key](e) if key in DERIVED else e.get(key)


def _ratio(a, b):
    return a / b if a is not None and b else None


def _sum(*xs):
    return None if any(x is None for x in xs) else sum(xs)


# measured quantity: a function of one model's record; None when not measured
METRICS = {
    "call_s": lambda r: _get(r, "mixedjax", "call_s"),
    "fit_s": lambda r: _get(r, "mixedjax", "fit_s"),
    "build_s": lambda r: _get(r, "mixedjax", "build_s"),
    "peak_mb": lambda r: _get(r, "mixedjax", "peak_mb"),
    "new_process_s": lambda r: _get(r, "mixedjax", "new_process_s"),
    "first_print_s": lambda r: _get(r, "mixedjax", "cached_print_s"),
    "build_share": lambda r: _ratio(_get(r, "mixedjax", "build_s"), _get(r, "mixedjax", "fit_s")),
    "warm_speedup": lambda r: _ratio(_get(r, "lme4", "lmer_s"), _get(r, "mixedjax", "call_s")),
    "new_process_speedup": lambda r: _ratio(_sum(_get(r, "lme4", "lmer_s"), _get(r, "lme4", "summary_s")),
                                            _get(r, "mixedjax", "new_process_s")),
    "new_shape_speedup": lambda r: _ratio(_sum(_get(r, "lme4", "lmer_s"), _get(r, "lme4", "summary_s")),
                                          _get(r, "mixedjax", "new_shape_s")),
}

# a new process's stages timed inside it; the rest of its wall time is the interpreter's start and exit
NEW_PROCESS_PARTS = ("np_import_s", "np_library_s", "np_read_s", "np_fit_s", "np_print_s")


def _start_and_exit(e: dict):
    parts = [e[k] for k in NEW_PROCESS_PARTS if e.get(k) is not None]
    return None if e.get("new_process_s") is None or len(parts) < 3 else e["new_process_s"] - sum(parts)


# quantities derived from one engine's record, read as if recorded (report.py's _get)
DERIVED = {"np_rest_s": _start_and_exit}

# the measured parts of each quantity, (label, engine, key), listed where a target is not met
STAGES = {
    "call_s": (("host build", "mixedjax", "build_s"), ("fit", "mixedjax", "fit_s"),
               ("compile (first call − warm call)", "mixedjax", "compile_s")),
    "fit_s": (("evaluations", "mixedjax", "feval"), ("objective", "mixedjax", "obj_s"),
              ("value and gradient", "mixedjax", "vg_s")),
    "build_s": (("design", "mixedjax", "design_s"), ("blocks", "mixedjax", "blocks_s"),
                ("kernel time in the build", "mixedjax", "build_kernel_s")),
    "peak_mb": (),
    "new_process_s": (("imports", "mixedjax", "np_import_s"), ("read the data", "mixedjax", "np_read_s"),
                      ("mj.lmm (build, compile, fit)", "mixedjax", "np_fit_s"),
                      ("print(m)", "mixedjax", "np_print_s"),
                      ("the interpreter's start and exit (the rest)", "mixedjax", "np_rest_s"),
                      ("a second new process, cache filled", "mixedjax", "cached_process_s")),
    "first_print_s": (("cache empty", "mixedjax", "np_print_s"), ("warm process", "mixedjax", "print_s")),
    "build_share": (("design", "mixedjax", "design_s"), ("blocks", "mixedjax", "blocks_s"),
                    ("kernel time in the build", "mixedjax", "build_kernel_s"), ("fit", "mixedjax", "fit_s")),
    "warm_speedup": (("mj.lmm warm", "mixedjax", "call_s"), ("host build", "mixedjax", "build_s"),
                     ("fit", "mixedjax", "fit_s"), ("lmer", "lme4", "lmer_s")),
    "new_process_speedup": (("imports", "mixedjax", "np_import_s"),
                            ("mj.lmm (build, compile, fit)", "mixedjax", "np_fit_s"),
                            ("print(m)", "mixedjax", "np_print_s"), ("new process", "mixedjax", "new_process_s"),
                            ("lmer", "lme4", "lmer_s"), ("summary", "lme4", "summary_s")),
    "new_shape_speedup": (("first mj.lmm (compile, fit)", "mixedjax", "first_call_s"),
                          ("first print(m)", "mixedjax", "first_call_print_s"), ("lmer", "lme4", "lmer_s"),
                          ("summary", "lme4", "summary_s")),
}

_OPS = {"<=": operator.le, ">=": operator.ge}


class Judged(NamedTuple):
    target: Target
    values: dict  # model -> measured value (None: not measured)
    met: bool | None  # None when nothing was measured

    def models_missing(self) -> list[str]:
        return [m for m, v in self.values.items() if v is None]

    def models_failing(self) -> list[str]:
        return [m for m, v in self.values.items() if v is not None and not _OPS[self.target.op](v, self.target.limit)]


def _models(target: Target, recs: dict) -> list[str]:
    if target.model == "*":
        return list(recs)
    if target.model == "large":
        return [m for m, r in recs.items() if r.get("n", 0) > 10_000]
    return [target.model] if target.model in recs else []


def judge(recs: dict) -> list[Judged]:
    """Every target against this run's records."""
    out = []
    for t in TARGETS:
        values = {m: METRICS[t.metric](recs[m]) for m in _models(t, recs)}
        measured = [v for v in values.values() if v is not None]
        met = None if not measured else all(_OPS[t.op](v, t.limit) for v in measured)
        out.append(Judged(t, values, met))
    return out
