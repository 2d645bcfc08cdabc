"""Benchmarks of what a user waits for: mixedjax beside lme4 (through Rscript) and statsmodels, same data, one run.

    python benchmarks/run.py [--models NAME[,NAME...]] [--quick] [--no-r] [--no-statsmodels] [--merge]

Per model and engine: the whole call from a data frame to a fitted model, warm and in a new process; the host
build and the fit separately; the first printout; lme4's `lmer` and `summary` timed the same way. Writes
benchmarks/RESULTS.md (with the targets of issue 14, met or not), results.json and results.png. The pieces:
harness.py (subprocesses, pinning, machine facts), worker_mixedjax.py, lme4.R, worker_statsmodels.py (one worker
per engine), targets.py (the targets' table), report.py (RESULTS.md and the chart). See benchmarks/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

harness.pin_threads()  # before anything imports numpy or jax

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from harness import HERE, Status, run_process  # noqa: E402

PY = sys.executable
REPEAT_BUDGET = 60.0  # lme4's repeats stop once their total passes this (seconds); the workers use the same


def bench_mixedjax(data: Path, formula: str, tmp: Path, args) -> dict:
    """A new process with an empty persistent compilation cache, the same with the cache it filled, then the warm
    measurements in a third process (cache off, so that its first call compiles)."""
    mem = args.mem_limit_gb * 1024
    worker = str(HERE / "worker_mixedjax.py")
    mj: dict = {}
    cache = tmp / f"{data.stem}.jaxcache"
    # only mixedjax's own variable: with JAX_COMPILATION_CACHE_DIR set, mixedjax leaves JAX's cache alone
    env = {"MIXEDJAX_CACHE_DIR": str(cache)}
    np_ = run_process([PY, worker, "new-process", str(data), formula], args.timeout, mem, env)
    info = np_.last_json() if np_.status is Status.OK else None
    if info is None:
        mj["not_run"] = "new process: " + np_.reason(args.timeout, mem)
        mj["peak_mb_at_stop"] = np_.maxrss_mb
        print(f"   mixedjax: {mj['not_run']} (after {np_.wall_s:.0f} s); the rest skipped", flush=True)
        return mj
    mj.update(new_process_s=np_.wall_s, peak_mb=np_.maxrss_mb, np_objective=info["objective"],
              **{f"np_{k}": info[k] for k in ("import_s", "read_s", "fit_s", "print_s")})
    print(f"   mixedjax new process {np_.wall_s:.2f} s (import {info['import_s']:.2f}, mj.lmm {info['fit_s']:.2f}, "
          f"print {info['print_s']:.3f}), peak {np_.maxrss_mb:.0f} MB", flush=True)
    if cache.exists() and any(cache.iterdir()):
        c = run_process([PY, worker, "new-process", str(data), formula], args.timeout, mem, env)
        ci = c.last_json() if c.status is Status.OK else None
        if ci is not None:
            mj.update(cached_process_s=c.wall_s, cached_fit_s=ci["fit_s"], cached_print_s=ci["print_s"])
            print(f"   mixedjax new process, cache filled {c.wall_s:.2f} s (mj.lmm {ci['fit_s']:.2f}, print "
                  f"{ci['print_s']:.3f})", flush=True)
    else:
        mj["cached_note"] = "no persistent compilation cache written"

    out = tmp / f"{data.stem}.mixedjax.json"
    w = run_process([PY, worker, "warm", str(data), formula, str(out), str(args.reps)], args.timeout, mem,
                    {"MIXEDJAX_CACHE_DIR": ""})
    if out.exists():
        mj.update(json.loads(out.read_text()))
    if w.status is not Status.OK:
        mj["worker_note"] = "warm process: " + w.reason(args.timeout, mem)
    if "call_s" in mj:
        print(f"   mixedjax warm mj.lmm {mj['call_s']:.4g} s (build {mj.get('build_s', float('nan')):.3g}, fit "
              f"{mj.get('fit_s', float('nan')):.4g}), new shape in a running process {mj['new_shape_s']:.2f} s, "
              f"{mj['feval']} evals, objective {mj['objective']:.6f}", flush=True)
    if "worker_note" in mj:
        print(f"   mixedjax: {mj['worker_note']}", flush=True)
    return mj


def bench_lme4(name: str, df, formula: str, tmp: Path, args) -> dict:
    import pandas as pd

    mem = args.mem_limit_gb * 1024
    csv, rds, out = tmp / f"{name}.csv", tmp / f"{name}.rds", tmp / f"{name}.lme4.json"
    factors = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype) or df[c].dtype == object]
    df.to_csv(csv, index=False)
    script = str(HERE / "lme4.R")
    lm: dict = {}
    r = run_process(["Rscript", script, "in-process", str(csv), formula, ",".join(factors), str(args.reps),
                     str(REPEAT_BUDGET), str(out), str(rds)], args.r_timeout, mem)
    if r.status is not Status.OK or not out.exists():
        lm["not_run"] = r.reason(args.r_timeout, mem)
        print(f"   lme4: {lm['not_run']}", flush=True)
        return lm
    lm.update(json.loads(out.read_text()))
    lm.update(lmer_s=statistics.median(lm["times"]), summary_s=statistics.median(lm["prints"]),
              summary_first_s=lm["prints"][0], in_process_peak_mb=r.maxrss_mb)
    n = run_process(["Rscript", script, "new-process", str(rds), formula], args.r_timeout, mem)
    ni = n.last_json() if n.status is Status.OK else None
    if ni is None:
        lm["new_process_note"] = "new process: " + n.reason(args.r_timeout, mem)
    else:
        lm.update(new_process_s=n.wall_s, peak_mb=n.maxrss_mb,
                  **{f"np_{k}": ni[k] for k in ("library_s", "read_s", "fit_s", "print_s")})
    print(f"   lme4 lmer {lm['lmer_s']:.3f} s (median of {len(lm['times'])}), summary {lm['summary_s']:.3f} s, "
          f"new process {lm.get('new_process_s', float('nan')):.2f} s, {lm['feval']} evals, objective "
          f"{lm['objective']:.6f}", flush=True)
    return lm


def bench_statsmodels(name: str, data: Path, n: int, spec, tmp: Path, args) -> dict:
    import models as M

    mem = args.mem_limit_gb * 1024
    if spec is None:
        return {"not_run": M.SM_NOT_RUN.get(name, "not expressible in statsmodels MixedLM")}
    if args.sm_skip_large and n > args.sm_skip_large:
        return {"not_run": f"skipped (n > {args.sm_skip_large:,})"}
    out = tmp / f"{name}.statsmodels.json"
    r = run_process([PY, str(HERE / "worker_statsmodels.py"), str(data), json.dumps(spec), str(out)],
                    args.sm_timeout, mem)
    if r.status is Status.OK and out.exists():
        sm = json.loads(out.read_text())
        print(f"   statsmodels fit {sm['fit_s']:.3f} s, objective {sm['objective']:.6f}", flush=True)
        return sm
    return {"not_run": "timeout" if r.status is Status.TIMEOUT else r.reason(args.sm_timeout, mem)}


def main(argv=None) -> None:
    import report

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", "--only", dest="models", help="comma-separated model names (default: all)")
    ap.add_argument("--quick", action="store_true", help="sleepstudy, penicillin, insteval_seed, kb07; 3 repeats")
    ap.add_argument("--no-r", dest="r", action="store_false", help="skip lme4")
    ap.add_argument("--r-all", action="store_true", help="run lme4 also where models.R_NOT_RUN skips it")
    ap.add_argument("--no-statsmodels", dest="statsmodels", action="store_false", help="skip statsmodels")
    ap.add_argument("--merge", action="store_true", help="keep other models' entries from an existing results.json")
    ap.add_argument("--reps", type=int, help="repeats of each warm measurement (default 7; 3 with --quick)")
    ap.add_argument("--timeout", type=float, default=900, help="per mixedjax subprocess, seconds (default 900)")
    ap.add_argument("--r-timeout", type=float, default=900, help="per lme4 subprocess, seconds (default 900)")
    ap.add_argument("--sm-timeout", type=float, default=120, help="per statsmodels fit, seconds (default 120)")
    ap.add_argument("--sm-skip-large", type=int, default=200_000, help="skip statsmodels above this many rows")
    ap.add_argument("--mem-limit-gb", type=float, default=12.0, help="kill a subprocess above this RSS (default 12)")
    ap.add_argument("--outdir", default=str(HERE), help="where RESULTS.md, results.json, results.png go")
    ap.add_argument("--report-only", action="store_true", help="rewrite RESULTS.md and results.png from results.json")
    args = ap.parse_args(argv)
    harness.compile_bytecode()  # as a pip-installed mixedjax has

    outdir = Path(args.outdir)
    if args.report_only:
        results = json.loads((outdir / "results.json").read_text())
        report.write_report(results, outdir / "RESULTS.md")
        chart = " and results.png" if report.write_chart(results, outdir / "results.png") else ""
        print(f"rewrote {outdir / 'RESULTS.md'}{chart} from results.json")
        return

    import models as M

    args.reps = args.reps or (3 if args.quick else 7)
    names = list(M.QUICK) if args.quick else list(M.MODELS)
    if args.models:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
        bad = [n for n in names if n not in M.MODELS]
        if bad:
            ap.error(f"unknown model(s) {bad}; choose from {list(M.MODELS)}")
    if args.r and not harness.have_lme4():
        print("Rscript or lme4 not available: lme4 is skipped (apt-get install -y r-cran-lme4)", flush=True)
        args.r = False
    if args.statsmodels and importlib.util.find_spec("statsmodels") is None:
        print("statsmodels not installed: it is skipped (pip install -e '.[bench]')", flush=True)
        args.statsmodels = False

    outdir.mkdir(parents=True, exist_ok=True)
    results = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "pinning": harness.PIN,
        "machine": harness.machine_info(),
        "versions": harness.versions(args.r),
        "settings": {k: getattr(args, k) for k in ("reps", "timeout", "r_timeout", "sm_timeout", "sm_skip_large",
                                                      "mem_limit_gb")},
        "models": {},
    }
    if args.merge and (outdir / "results.json").exists():
        old = json.loads((outdir / "results.json").read_text())
        results["models"] = {k: v for k, v in old.get("models", {}).items() if k not in names}
    print(f"{results['machine'].get('cpu')}, {results['machine'].get('cores')} cores; models: {', '.join(names)}",
          flush=True)
    t_all = time.perf_counter()
    scratch = HERE / "out"
    scratch.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as tmpname:
        tmp = Path(tmpname)
        for name in names:
            _, formula, df, spec = M.MODELS[name]()
            print(f"\n== {name}: n = {len(df):,}  {formula}", flush=True)
            data = tmp / f"{name}.pkl"
            df.to_pickle(data)
            rec = {"model": name, "formula": formula, "n": int(len(df)), "data": M.DATA.get(name, ""),
                   "ref_chol_ms": harness.reference_cholesky_ms(), "date": results["date"],
                   "git": results["versions"].get("mixedjax_git")}
            rec["mixedjax"] = bench_mixedjax(data, formula, tmp, args)
            if args.r and name in M.R_NOT_RUN and not args.r_all:
                rec["lme4"] = {"not_run": M.R_NOT_RUN[name]}
                print(f"   lme4: {M.R_NOT_RUN[name]}", flush=True)
            elif args.r:
                rec["lme4"] = bench_lme4(name, df, formula, tmp, args)
            if args.statsmodels:
                rec["statsmodels"] = bench_statsmodels(name, data, len(df), spec, tmp, args)
                if "not_run" in rec["statsmodels"]:
                    print(f"   statsmodels: {rec['statsmodels']['not_run']}", flush=True)
            results["models"][name] = rec
            # in the models' order, written after every model so that a long run leaves usable partial results
            results["models"] = {n: results["models"][n] for n in M.MODELS if n in results["models"]}
            results["total_s"] = time.perf_counter() - t_all
            (outdir / "results.json").write_text(json.dumps(results, indent=1))
            report.write_report(results, outdir / "RESULTS.md")
    chart = ", results.png" if report.write_chart(results, outdir / "results.png") else ""
    print(f"\nwrote {outdir / 'RESULTS.md'}, results.json{chart} in {time.perf_counter() - t_all:.0f} s", flush=True)


if __name__ == "__main__":
    main()
