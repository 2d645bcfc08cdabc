"""The report: RESULTS.md and results.png from results.json (run.py writes all three; ``--report-only`` rewrites
the last two).

    python benchmarks/report.py [DIR]        # DIR/results.json -> DIR/RESULTS.md, DIR/results.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import PIN  # noqa: E402
from targets import STAGES, judge  # noqa: E402
from targets import _get  # noqa: E402  (one reader of the records: derived quantities included)


def _f(v, fmt="{:.3g}", none="–"):
    return none if v is None else fmt.format(v)


def _secs(v):
    """Seconds in a readable unit: ms below 0.1 s."""
    if v is None:
        return "–"
    return f"{v * 1e3:.3g} ms" if v < 0.1 else f"{v:.3g} s"


def _times(v):
    return f"{v:.2g}×" if v < 1 else f"{v:.1f}×"


def _ratio(a, b):
    return _times(a / b) if a is not None and b else "–"


def _value(v, unit):
    if v is None:
        return "not measured"
    return {"s": _secs(v), "ms": _secs(v), "x": _times(v), "MB": f"{v:.0f} MB", "%": f"{100 * v:.1f} %"}[unit]


def _stages(metric, rec) -> str:
    parts = []
    for label, engine, key in STAGES.get(metric, ()):
        v = _get(rec, engine, key)
        if v is not None:
            parts.append(f"{label} {v if isinstance(v, int) else _secs(v)}")
    return ", ".join(parts)


def _header(results: dict) -> list[str]:
    mi, ver = results["machine"], results["versions"]
    recs = results["models"]
    L = ["# Benchmarks: what a user waits for, mixedjax beside lme4\n",
         f"Run: {results['date']} — `{results['command']}`\n"]
    older = [f"{n} ({r.get('date', '?')}{', mixedjax at ' + r['git'] if r.get('git') else ''})"
             for n, r in recs.items() if r.get("date") != results["date"]]
    if older:
        L.append("Kept from earlier runs (`--merge`; machine load and code may differ): " + "; ".join(older) + "\n")
    L.append(f"- Machine: {mi.get('cpu')}, {mi.get('cores')} cores, {mi.get('ram_gb')} GB RAM; {mi.get('platform')}; "
             f"load average at start {', '.join(f'{x:.2f}' for x in mi.get('loadavg_start', []))}")
    L.append(f"- Versions: Python {ver.get('python')}, jax {ver.get('jax')} (jaxlib {ver.get('jaxlib')}), numpy "
             f"{ver.get('numpy')}, pandas {ver.get('pandas')}, formulaic {ver.get('formulaic')}, nlopt "
             f"{ver.get('nlopt') or 'not installed'}, statsmodels {ver.get('statsmodels') or 'not installed'}; "
             f"{ver.get('R', 'R: not available')}, lme4 {ver.get('lme4', '–')} (Matrix {ver.get('Matrix', '–')}); "
             f"mixedjax {ver.get('mixedjax_git', '?')}")
    L.append("- Every engine and subprocess runs with " + ", ".join(f"`{k}={v}`" for k, v in PIN.items())
             + ": BLAS, OpenMP and Eigen on one thread; XLA's own matrix products may still use every core (fit "
             "CPU/wall below says how much they did). float64 on the CPU. Every fit is by maximum likelihood "
             "(`REML = FALSE`); objective = −2 log-likelihood.\n")
    return L


def _whole_calls(recs: dict) -> list[str]:
    L = ["## What the user waits for\n",
         "Whole calls, from a pandas / R data frame to a fitted model. **mj.lmm warm**: median of `mj.lmm(formula, "
         "df)` in a process that has fitted this model once (its compile done). **lmer**: median of "
         "`system.time(lmer(formula, data, REML = FALSE))`. **new process**: a new `python` (`Rscript`) process "
         "timed from outside: start, `import mixedjax` (`library(lme4)`), read the data (pickle; RDS), fit, "
         "print the summary (`print(m)`; `print(summary(m))`); mixedjax's with an empty persistent compilation "
         "cache, and **cached** the same again with the cache that run filled. **new shape, running**: the first "
         "`mj.lmm` + `print(m)` of this model in a process that has fitted and printed another model (the "
         "notebook case), persistent cache off. **summary**: median of `print(summary(m))` in R.\n",
         "| model | n | mj.lmm warm | lmer | warm ratio | mj new process | cached | lme4 new process | "
         "lmer + summary | new-process ratio | new shape, running | ratio |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in recs.items():
        mj, lm = r.get("mixedjax") or {}, r.get("lme4") or {}
        ls = None if lm.get("lmer_s") is None or lm.get("summary_s") is None else lm["lmer_s"] + lm["summary_s"]
        L.append(f"| {name} | {r['n']:,} | {_secs(mj.get('call_s'))} | {_secs(lm.get('lmer_s'))} | "
                 f"{_ratio(lm.get('lmer_s'), mj.get('call_s'))} | {_secs(mj.get('new_process_s'))} | "
                 f"{_secs(mj.get('cached_process_s'))} | {_secs(lm.get('new_process_s'))} | {_secs(ls)} | "
                 f"{_ratio(ls, mj.get('new_process_s'))} | {_secs(mj.get('new_shape_s'))} | "
                 f"{_ratio(ls, mj.get('new_shape_s'))} |")
    notes = []
    for name, r in recs.items():
        for eng in ("mixedjax", "lme4", "statsmodels"):
            for k in ("not_run", "worker_note", "cached_note", "new_process_note", "note"):
                if (r.get(eng) or {}).get(k):
                    notes.append(f"{name}, {eng}: {r[eng][k]}")
        for msg in _get(r, "lme4", "messages") or []:
            notes.append(f"{name}, lme4 says: {msg}")
        if _get(r, "mixedjax", "converged") is False:
            notes.append(f"{name}, mixedjax: {_get(r, 'mixedjax', 'status')}")
    return L + ([""] + [f"- {n}" for n in notes] if notes else [])


def _stages_table(recs: dict) -> list[str]:
    L = ["\n## Where a mixedjax call goes\n",
         "**build**: `Problem.build` (formula, design and its checks, block layout, host arrays), median; "
         "**design** and **blocks** its two parts (`design.build.build_design`, `blocks.plan.build_blocks`). "
         "**fit**: `mj.fit(problem)` on the built problem, median of refits. **compile**: the first call minus the "
         "warm one. **first print**: `print(m)` of the first model in a new process (cache empty; cache filled), "
         "and of each new model in a warm process. peak MB: the new process's maximum resident set size.\n",
         "| model | q | p | θ | build | design | blocks | build / fit | fit | fit CPU/wall | compile | "
         "first print (empty) | first print (cached) | print, warm | evals | lme4 evals | objective − lme4 | "
         "peak MB | ref. Cholesky ms |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in recs.items():
        mj, lm = r.get("mixedjax") or {}, r.get("lme4") or {}
        d = None if mj.get("objective") is None or lm.get("objective") is None else mj["objective"] - lm["objective"]
        share = None if not (mj.get("build_s") and mj.get("fit_s")) else mj["build_s"] / mj["fit_s"]
        L.append(f"| {name} | {_f(mj.get('q'), '{:,}')} | {_f(mj.get('p'), '{}')} | {_f(mj.get('ntheta'), '{}')} | "
                 f"{_secs(mj.get('build_s'))} | {_secs(mj.get('design_s'))} | {_secs(mj.get('blocks_s'))} | "
                 f"{_f(share and 100 * share, '{:.0f} %')} | {_secs(mj.get('fit_s'))} | "
                 f"{_f(mj.get('cpu_per_wall'), '{:.2f}')} | {_secs(mj.get('compile_s'))} | "
                 f"{_secs(mj.get('np_print_s'))} | {_secs(mj.get('cached_print_s'))} | {_secs(mj.get('print_s'))} | "
                 f"{_f(mj.get('feval'), '{}')} | {_f(lm.get('feval'), '{}')} | {_f(d, '{:+.2e}')} | "
                 f"{_f(mj.get('peak_mb'), '{:.0f}')} | {_f(r.get('ref_chol_ms'), '{:.1f}')} |")
    L += ["\n**New processes, stage by stage** (inside the process; **start, exit**: the rest of the wall time, the "
          "interpreter's start and exit, whose shutdown collects every object left: docs/performance.md, \"The "
          "garbage collector\"):\n",
          "| model | mixedjax: import | read | mj.lmm | print(m) | start, exit | wall | lme4: library | read | lmer | "
          "print(summary) | start, exit | wall |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in recs.items():
        mj, lm = r.get("mixedjax") or {}, r.get("lme4") or {}
        L.append(f"| {name} | {_secs(mj.get('np_import_s'))} | {_secs(mj.get('np_read_s'))} | "
                 f"{_secs(mj.get('np_fit_s'))} | {_secs(mj.get('np_print_s'))} | "
                 f"{_secs(_get(r, 'mixedjax', 'np_rest_s'))} | {_secs(mj.get('new_process_s'))} | "
                 f"{_secs(lm.get('np_library_s'))} | {_secs(lm.get('np_read_s'))} | {_secs(lm.get('np_fit_s'))} | "
                 f"{_secs(lm.get('np_print_s'))} | {_secs(_get(r, 'lme4', 'np_rest_s'))} | "
                 f"{_secs(lm.get('new_process_s'))} |")
    return L


def _evaluations(recs: dict) -> list[str]:
    L = ["\n## Evaluation costs, the derivative-free option, statsmodels\n",
         "One objective and one value-and-gradient evaluation, each `jax.jit`-compiled, at the fitted θ (medians). "
         "BOBYQA: `FitOptions(optimizer=\"bobyqa\")` (NLopt, on the host, objective only), median of refits of "
         "the built problem. statsmodels: one `MixedLM` fit from the DataFrame, where it can express the model.\n",
         "| model | objective | value+grad | ratio | L-BFGS fit | BOBYQA fit | BOBYQA evals | BOBYQA − L-BFGS "
         "objective | statsmodels |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in recs.items():
        mj, sm = r.get("mixedjax") or {}, r.get("statsmodels") or {}
        b = mj.get("bobyqa") or {}
        dob = None if b.get("objective") is None or mj.get("objective") is None else b["objective"] - mj["objective"]
        smt = _secs(sm.get("fit_s")) if sm.get("fit_s") is not None else (sm.get("not_run") or "not run")
        L.append(f"| {name} | {_secs(mj.get('obj_s'))} | {_secs(mj.get('vg_s'))} | {_f(mj.get('vg_ratio'), '{:.2f}')} "
                 f"| {_secs(mj.get('fit_s'))} | {_secs(b.get('fit_s'))} | {_f(b.get('feval'), '{}')} | "
                 f"{_f(dob, '{:+.2e}')} | {smt} |")
    return L


def _targets(recs: dict) -> list[str]:
    L = ["\n## Targets (measured in this run, not asserted)\n",
         "The targets of issue 14 (`benchmarks/targets.py`). Where one is not met, the measured parts of the "
         "quantity follow, from the same run.\n",
         "| target | measured | met | what stands in the way (this run's parts of it) |", "|---|---|---|---|"]
    for j in judge(recs):
        t = j.target
        if not j.values:
            meas = "not run in this run"
        elif len(j.values) == 1:
            meas = _value(next(iter(j.values.values())), t.unit)
        else:
            meas = ", ".join(f"{m} {_value(v, t.unit)}" for m, v in j.values.items())
        why = ""
        if j.met is False:
            why = "; ".join(f"{m}: {_stages(t.metric, recs[m]) or 'no parts measured'}" for m in j.models_failing())
        met = "—" if j.met is None else ("met" if j.met else "not met")
        if j.met and j.models_missing():
            met += f" (not measured: {', '.join(j.models_missing())})"
        L.append(f"| {t.label} | {meas} | {met} | {why} |")
    return L


def write_report(results: dict, path_md: Path) -> None:
    recs = results["models"]
    L = _header(results) + _whole_calls(recs) + _stages_table(recs) + _evaluations(recs) + _targets(recs)
    L.append("\n## Models\n")
    for name, r in recs.items():
        L.append(f"- **{name}** (n = {r['n']:,}): `{r['formula']}`" + (f" — {r['data']}" if r.get("data") else ""))
    L.append("\nRaw numbers: `results.json`; chart: `results.png`. A shared machine's speed drifts (ref. Cholesky "
             "ms above): rerun before quoting a single number.")
    path_md.write_text("\n".join(L) + "\n" + _kept_sections(path_md))


# sections other benchmark scripts write (batched.py's runs, inference.py, glmm.py): kept across rewrites, at the end
KEPT = ("\n## Many fits in one compiled call", "\n## Inference", "\n## GLMMs")


def _kept_sections(path_md: Path) -> str:
    """The sections other benchmark scripts own, from the report being replaced (from the first of KEPT on)."""
    old = path_md.read_text() if path_md.exists() else ""
    found = [i for i in (old.find(k) for k in KEPT) if i >= 0]
    return old[min(found):] if found else ""


def write_chart(results: dict, path_png: Path) -> bool:
    """Whole calls per engine per model (log scale); False (and no chart) without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib not installed: no chart (pip install -e '.[bench]')", flush=True)
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    recs = results["models"]
    names = list(recs)
    series = [
        ("mj.lmm, warm", lambda r: _get(r, "mixedjax", "call_s"), "#1f77b4", None),
        ("mixedjax, new process", lambda r: _get(r, "mixedjax", "new_process_s"), "#aec7e8", "//"),
        ("lmer", lambda r: _get(r, "lme4", "lmer_s"), "#d62728", None),
        ("lme4, new process", lambda r: _get(r, "lme4", "new_process_s"), "#ff9896", "//"),
    ]
    x = np.arange(len(names))
    w = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(8, 1.8 * len(names)), 4.8))
    for k, (label, get, color, hatch) in enumerate(series):
        vals = [get(recs[n]) for n in names]
        off = (k - (len(series) - 1) / 2) * w
        ax.bar([x[i] + off for i, v in enumerate(vals) if v], [v for v in vals if v], w, label=label, color=color,
               hatch=hatch, edgecolor="white" if hatch is None else "#555")
        for i, v in enumerate(vals):
            if v is None:
                ax.text(x[i] + off, 0.0012, "×", ha="center", va="bottom", color=color, fontsize=9)
    ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=15)
    ax.set_ylabel("seconds (log scale)")
    top = max([v for _, get, _, _ in series for v in (get(recs[n]) for n in names) if v] or [1.0])
    ax.set_ylim(1e-3, top * 30)
    ax.set_title(f"Whole calls per engine, ML, BLAS on one thread ({results['date'][:10]}); × = not run", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", ncol=4)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path_png, dpi=120)
    plt.close(fig)
    return True


if __name__ == "__main__":
    outdir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    res = json.loads((outdir / "results.json").read_text())
    write_report(res, outdir / "RESULTS.md")
    chart = " and results.png" if write_chart(res, outdir / "results.png") else ""
    print(f"rewrote {outdir / 'RESULTS.md'}{chart} from results.json")
