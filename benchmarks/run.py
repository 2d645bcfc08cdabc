"""Benchmarks side by side: mixedjax, lme4 (through Rscript) and statsmodels MixedLM on the same data.

    python benchmarks/run.py [--quick] [--only NAME[,NAME...]] [--no-r] [--no-statsmodels] [--merge]

Writes benchmarks/RESULTS.md, benchmarks/results.json and benchmarks/results.png. See benchmarks/README.md.

BLAS (OpenBLAS, MKL), OpenMP and Eigen are pinned to one thread (set below, before anything imports numpy or jax, and
passed to every subprocess), so the numbers are stable on a shared machine. XLA's own matrix products are not limited
by these settings and may use every core; the CPU time of mixedjax's refits is recorded beside their wall time.
"""

from __future__ import annotations

import os

PIN = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}
os.environ.update(PIN)

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
PY = sys.executable

# wall-clock caps (seconds)
SINGLE_FIT_CAP = 300.0  # no second mixedjax fit (so no separate compile time) when the first one took longer
REPEAT_BUDGET = 60.0  # refit repeats stop once their total passes this
EVAL_BUDGET = 10.0  # per evaluation kind (objective, value-and-gradient)


# ==== subprocess runner: wall time, peak RSS, timeout and memory cap =============================================
def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_process(cmd, timeout: float, mem_limit_mb: float, cwd=None, env=None) -> dict:
    """Run ``cmd`` with the pinned environment; time it from outside and read its peak RSS.

    The peak RSS is the child's ``ru_maxrss`` from ``os.wait4`` (the same figure as
    ``resource.getrusage(RUSAGE_CHILDREN)``, but for this one child). The process is killed past ``timeout``
    seconds or ``mem_limit_mb`` of resident memory.
    """
    env = dict(os.environ, **PIN, **(env or {}))
    out = tempfile.TemporaryFile(mode="w+")
    err = tempfile.TemporaryFile(mode="w+")
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd or ROOT)
    status, killed = "ok", None
    last_rss_check = 0.0
    while True:
        pid, wstatus, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            wall = time.perf_counter() - t0
            break
        now = time.perf_counter() - t0
        if killed is None:
            if now > timeout:
                killed = "timeout"
            elif now - last_rss_check > 0.2:
                last_rss_check = now
                if _rss_mb(p.pid) > mem_limit_mb:
                    killed = "memory"
            if killed:
                p.kill()
        time.sleep(0.002 if now < 5 else 0.02)
    p.returncode = os.waitstatus_to_exitcode(wstatus)
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read(), err.read()
    if killed:
        status = killed
    elif p.returncode != 0:
        status = "error"
    return {
        "status": status,
        "rc": p.returncode,
        "wall_s": wall,
        "maxrss_mb": ru.ru_maxrss / 1024,
        "stdout": stdout[-4000:],
        "stderr": stderr[-4000:],
    }


def _reason(res: dict, timeout: float, mem_mb: float) -> str:
    if res["status"] == "timeout":
        return f"timeout (> {timeout:.0f} s)"
    if res["status"] == "memory":
        return f"killed: resident memory > {mem_mb / 1024:.0f} GB"
    tail = (res["stderr"].strip().splitlines() or ["?"])[-1]
    return f"error (rc {res['rc']}): {tail[:200]}"


# ==== workers (run in subprocesses) ==============================================================================
COLD = """
import json, sys
import pandas as pd
import mixedjax as mj
df = pd.read_pickle(sys.argv[1])
m = mj.lmm(sys.argv[2], df, reml=False)
print(json.dumps({"objective": float(m.objective), "feval": int(m.optsum.feval)}))
"""


def worker_mixedjax(data: str, formula: str, out: str, reps: int) -> None:
    """Warm measurements in a fresh process: compile, fit after compilation, evaluation costs."""
    import jax
    import pandas as pd

    import mixedjax as mj
    from mixedjax.model.lmm import Problem, fit

    df = pd.read_pickle(data)
    res: dict = {}

    def dump():
        Path(out).write_text(json.dumps(res, indent=1))

    t = time.perf_counter()
    problem = Problem.build(formula, df)
    res["build_s"] = time.perf_counter() - t
    layout = problem.layout
    res["q"] = int(sum(tt.nlevels * tt.s for tt in problem.design.terms))
    res["p"] = int(problem.design.p)
    res["ntheta"] = int(layout.ntheta)

    t = time.perf_counter()
    m = fit(problem)
    first = time.perf_counter() - t
    res.update(first_fit_s=first, objective=float(m.objective), feval=int(m.optsum.feval))
    res.update(iterations=int(m.optsum.iterations), status=m.optsum.status, converged=bool(m.optsum.converged))
    res["theta"] = [float(x) for x in m.theta]
    dump()
    refits, cpu = [], []
    if first <= SINGLE_FIT_CAP:
        while len(refits) < reps:
            t, c = time.perf_counter(), time.process_time()
            m2 = fit(problem)
            refits.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)  # every thread of this process
            if sum(refits) > REPEAT_BUDGET:
                break
        res["refit_objective"] = float(m2.objective)
        res["cpu_per_wall"] = sum(cpu) / sum(refits)
    res["refits_s"] = refits
    if refits:
        res["fit_s"] = statistics.median(refits)
        res["compile_s"] = max(first - res["fit_s"], 0.0)
    else:  # one fit only: it includes compilation, so it is an upper bound
        res["fit_s"] = first
        res["compile_s"] = None
        res["fit_note"] = f"single fit (> {SINGLE_FIT_CAP:.0f} s), includes compilation"
    dump()

    # the derivative-free option (NLopt's BOBYQA on the host, as in MixedModels.jl), when nlopt is installed
    if importlib.util.find_spec("nlopt") is not None and first <= SINGLE_FIT_CAP:
        opts = mj.FitOptions(optimizer="bobyqa")
        t = time.perf_counter()
        mb = fit(problem, opts=opts)
        bq_first = time.perf_counter() - t
        bq, bq_cpu = [], []
        while len(bq) < reps and sum(bq) <= REPEAT_BUDGET:
            t, c = time.perf_counter(), time.process_time()
            mb = fit(problem, opts=opts)
            bq.append(time.perf_counter() - t)
            bq_cpu.append(time.process_time() - c)
        res["bobyqa"] = {"fit_s": statistics.median(bq), "refits_s": bq, "first_fit_s": bq_first,
                         "cpu_per_wall": sum(bq_cpu) / sum(bq),
                         "feval": int(mb.optsum.feval), "objective": float(mb.objective),
                         "converged": bool(mb.optsum.converged)}
        dump()

    # one objective and one value-and-gradient evaluation, jitted, at the fitted θ
    def dev(th, a):
        return mj.deviance(th, a, layout, False)

    f_obj = jax.jit(dev)
    f_vg = jax.jit(jax.value_and_grad(dev))
    th = jax.numpy.asarray(m.theta)
    for key, f in (("obj", f_obj), ("vg", f_vg)):
        t = time.perf_counter()
        jax.block_until_ready(f(th, problem.arrays))
        res[f"{key}_compile_s"] = time.perf_counter() - t
        ts: list[float] = []
        while len(ts) < 25 and (sum(ts) < EVAL_BUDGET or len(ts) < 3):
            t = time.perf_counter()
            jax.block_until_ready(f(th, problem.arrays))
            ts.append(time.perf_counter() - t)
            if ts[-1] > EVAL_BUDGET:
                break
        res[f"{key}_s"] = statistics.median(ts)
        res[f"{key}_n"] = len(ts)
        dump()
    res["vg_ratio"] = res["vg_s"] / res["obj_s"]
    res["jax_devices"] = [str(d) for d in jax.devices()]
    res["complete"] = True
    dump()


def worker_statsmodels(data: str, spec_json: str, out: str) -> None:
    import warnings

    import numpy as np
    import pandas as pd
    import statsmodels.formula.api as smf

    df = pd.read_pickle(data)
    spec = json.loads(spec_json)
    res: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = time.perf_counter()
        if "vc_formula" in spec:
            df = df.assign(_one=1)
            model = smf.mixedlm(spec["formula"], df, groups="_one", re_formula="0", vc_formula=spec["vc_formula"])
        else:
            model = smf.mixedlm(spec["formula"], df, groups=spec["groups"], re_formula=spec["re_formula"])
        r = model.fit(reml=False)
        res["fit_s"] = time.perf_counter() - t
    res["objective"] = float(-2 * r.llf)
    res["converged"] = bool(r.converged)
    res["warnings"] = sorted({str(w.message)[:160] for w in caught})
    res["finite"] = bool(np.isfinite(res["objective"]))
    Path(out).write_text(json.dumps(res, indent=1))


R_SCRIPT = r"""
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(TRUE)
csv <- args[1]; f <- as.formula(args[2]); factors <- strsplit(args[3], ",")[[1]]
reps <- as.integer(args[4]); budget <- as.numeric(args[5]); out <- args[6]
cls <- rep(NA_character_, length(factors)); names(cls) <- factors; cls[] <- "character"
d <- read.csv(csv, colClasses = cls)
for (cc in factors) d[[cc]] <- factor(d[[cc]])
times <- c()
repeat {
  tm <- system.time(m <- lmer(f, data = d, REML = FALSE))[["elapsed"]]
  times <- c(times, tm)
  if (length(times) >= reps || sum(times) > budget) break
}
msgs <- unlist(m@optinfo$conv$lme4$messages)
esc <- function(s) gsub('"', "'", s)
cat(sprintf('{"times": [%s], "objective": %.10f, "feval": %d, "optimizer": "%s", "R": "%s", "lme4": "%s", "messages": [%s]}\n',
            paste(sprintf("%.4f", times), collapse = ", "), deviance(m), as.integer(m@optinfo$feval),
            m@optinfo$optimizer, esc(R.version.string), as.character(packageVersion("lme4")),
            paste(sprintf('"%s"', esc(msgs)), collapse = ", ")), file = out)
"""


def have_lme4() -> bool:
    if not shutil.which("Rscript"):
        return False
    r = subprocess.run(["Rscript", "-e", "library(lme4)"], capture_output=True, env=dict(os.environ, **PIN))
    return r.returncode == 0


# ==== the driver ==================================================================================================
def bench_model(name, formula, df, spec, tmp: Path, args) -> dict:
    import pandas as pd

    rec: dict = {"model": name, "formula": formula, "n": int(len(df))}
    data = tmp / f"{name}.pkl"
    df.to_pickle(data)
    mem_mb = args.mem_limit_gb * 1024
    timeout = args.timeout
    print(f"\n== {name}: n = {len(df):,}  {formula}", flush=True)

    # -- mixedjax: a cold process first (its wall time includes interpreter start, imports, compile, fit)
    mj: dict = {}
    rec["mixedjax"] = mj
    # mixedjax keeps compiled fits in JAX's persistent compilation cache (MIXEDJAX_CACHE_DIR): the cold process
    # runs with a fresh, empty cache directory (a true first fit), then once more with that cache filled
    cache = tmp / f"{name}.jaxcache"
    # only mixedjax's own variable: with JAX_COMPILATION_CACHE_DIR set as well, mixedjax leaves JAX's cache settings
    # alone, and JAX's default threshold (1 s of compilation) skips caching the small models' quick compiles
    cache_env = {"MIXEDJAX_CACHE_DIR": str(cache)}
    cold = run_process([PY, "-c", COLD, str(data), formula], timeout, mem_mb, env=cache_env)
    mj["cold_status"] = cold["status"]
    if cold["status"] == "ok":
        info = json.loads(cold["stdout"].strip().splitlines()[-1])
        mj.update(cold_s=cold["wall_s"], peak_mb=cold["maxrss_mb"], cold_objective=info["objective"])
        print(f"   mixedjax cold process {cold['wall_s']:.2f} s, peak {cold['maxrss_mb']:.0f} MB, "
              f"objective {info['objective']:.6f}", flush=True)
        if cold["wall_s"] <= SINGLE_FIT_CAP and cache.exists() and any(cache.iterdir()):
            warm = run_process([PY, "-c", COLD, str(data), formula], timeout, mem_mb, env=cache_env)
            if warm["status"] == "ok":
                mj.update(cold_cached_s=warm["wall_s"], cold_cached_peak_mb=warm["maxrss_mb"])
                print(f"   mixedjax cold process, compilation cache filled: {warm['wall_s']:.2f} s", flush=True)
        elif not (cache.exists() and any(cache.iterdir())):
            mj["cold_cached_note"] = "no persistent compilation cache written"
    else:
        mj["not_run"] = "cold process: " + _reason(cold, timeout, mem_mb)
        mj["cold_wall_at_stop_s"] = cold["wall_s"]
        mj["peak_mb_at_stop"] = cold["maxrss_mb"]
        print(f"   mixedjax: {mj['not_run']} (after {cold['wall_s']:.0f} s, peak {cold['maxrss_mb']:.0f} MB); "
              "warm measurements skipped", flush=True)

    # -- mixedjax: warm measurements in a fresh process (skipped when the cold fit already failed)
    if cold["status"] == "ok":
        out = tmp / f"{name}.mixedjax.json"
        # no persistent cache here, so that the first fit compiles and compile s is real
        w = run_process([PY, __file__, "--worker", "mixedjax", str(data), formula, str(out), str(args.reps)],
                        timeout, mem_mb, env={"MIXEDJAX_CACHE_DIR": ""})
        if out.exists():
            mj.update(json.loads(out.read_text()))
        mj["worker_status"] = w["status"]
        mj["worker_peak_mb"] = w["maxrss_mb"]
        if w["status"] != "ok":
            mj["worker_note"] = _reason(w, timeout, mem_mb)
        if "fit_s" in mj:
            print(f"   mixedjax fit {mj['fit_s']:.4f} s (median of {len(mj['refits_s'])}), compile "
                  f"{mj['compile_s'] if mj['compile_s'] is None else round(mj['compile_s'], 2)} s, "
                  f"{mj['feval']} evals, objective {mj['objective']:.6f}", flush=True)
        if "vg_ratio" in mj:
            print(f"   objective {mj['obj_s'] * 1e3:.2f} ms, value+grad {mj['vg_s'] * 1e3:.2f} ms "
                  f"(ratio {mj['vg_ratio']:.2f})", flush=True)
        if mj.get("bobyqa"):
            b = mj["bobyqa"]
            print(f"   mixedjax optimizer='bobyqa' fit {b['fit_s']:.4f} s, {b['feval']} evals, objective "
                  f"{b['objective']:.6f}", flush=True)
        if w["status"] != "ok":
            print(f"   mixedjax worker: {mj['worker_note']}", flush=True)

    # -- lme4
    if args.r:
        lm: dict = {}
        rec["lme4"] = lm
        csv = tmp / f"{name}.csv"
        factors = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype) or df[c].dtype == object]
        df.to_csv(csv, index=False)
        rfile = tmp / "fit.R"
        rfile.write_text(R_SCRIPT)
        out = tmp / f"{name}.lme4.json"
        r = run_process(["Rscript", str(rfile), str(csv), formula, ",".join(factors), str(args.reps),
                         str(REPEAT_BUDGET), str(out)], args.r_timeout, mem_mb)
        lm["status"] = r["status"]
        lm["peak_mb"] = r["maxrss_mb"]
        if r["status"] == "ok" and out.exists():
            lm.update(json.loads(out.read_text()))
            lm["fit_s"] = statistics.median(lm["times"])
            print(f"   lme4 fit {lm['fit_s']:.3f} s (median of {len(lm['times'])}), {lm['feval']} evals, "
                  f"objective {lm['objective']:.6f}", flush=True)
        else:
            lm["not_run"] = _reason(r, args.r_timeout, mem_mb)
            print(f"   lme4: {lm['not_run']}", flush=True)

    # -- statsmodels
    if args.statsmodels:
        sm: dict = {}
        rec["statsmodels"] = sm
        if spec is None:
            import models as M

            sm["not_run"] = M.SM_NOT_RUN.get(name, "not expressible in statsmodels MixedLM")
        elif args.sm_skip_large and len(df) > args.sm_skip_large:
            sm["not_run"] = f"skipped (n > {args.sm_skip_large:,})"
        else:
            out = tmp / f"{name}.statsmodels.json"
            r = run_process([PY, __file__, "--worker", "statsmodels", str(data), json.dumps(spec), str(out)],
                            args.sm_timeout, mem_mb)
            sm["status"] = r["status"]
            sm["peak_mb"] = r["maxrss_mb"]
            sm["spec"] = spec
            if r["status"] == "ok" and out.exists():
                sm.update(json.loads(out.read_text()))
                print(f"   statsmodels fit {sm['fit_s']:.3f} s, objective {sm['objective']:.6f}", flush=True)
            else:
                sm["not_run"] = "timeout" if r["status"] == "timeout" else _reason(r, args.sm_timeout, mem_mb)
        if "not_run" in sm:
            print(f"   statsmodels: {sm['not_run']}", flush=True)
    return rec


def reference_cholesky_ms() -> float:
    """The machine's speed now: median time of scipy's Cholesky factor (the OpenBLAS that JAX's CPU Cholesky calls,
    one thread) of a fixed 1,157 × 1,157 matrix, the size of InstEval's dense block. A shared machine's speed drifts (this figure was 14–26 ms on the
    development machine on the same day), so it is taken before every model and reported beside its times."""
    import numpy as np
    import scipy.linalg

    A = np.random.default_rng(0).standard_normal((1157, 1157))
    S = A @ A.T + 1157 * np.eye(1157)
    ts = []
    for _ in range(9):
        t = time.perf_counter()
        scipy.linalg.cholesky(S, lower=True, check_finite=False)
        ts.append(time.perf_counter() - t)
    return 1e3 * statistics.median(ts)


def machine_info() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version()}
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor() or "?"
    info["cores"] = os.cpu_count()
    try:
        info["affinity_cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()
        info["ram_gb"] = round(int(mem[0].split()[1]) / 1024**2, 1)
    except OSError:
        pass
    try:
        info["loadavg_start"] = os.getloadavg()
    except OSError:
        pass
    return info


def versions(with_r: bool) -> dict:
    import importlib.metadata as md

    v = {"python": platform.python_version()}
    for pkg in ("jax", "jaxlib", "optax", "numpy", "scipy", "pandas", "statsmodels", "mixedjax"):
        try:
            v[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            v[pkg] = None
    if with_r:
        r = subprocess.run(
            ["Rscript", "-e", 'cat(R.version.string, "|", as.character(packageVersion("lme4")), "|", '
             'as.character(packageVersion("Matrix")), "|", La_library(), "\\n")'],
            capture_output=True, text=True, env=dict(os.environ, **PIN))
        parts = [s.strip() for s in r.stdout.split("|")]
        if len(parts) >= 3:
            v["R"], v["lme4"], v["Matrix"] = parts[:3]
            v["R_lapack"] = parts[3] if len(parts) > 3 else None
    try:
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        dirty = subprocess.run(["git", "status", "--porcelain", "mixedjax"], capture_output=True, text=True, cwd=ROOT)
        v["mixedjax_git"] = git.stdout.strip() + (" (+ uncommitted changes in mixedjax/)" if dirty.stdout.strip() else "")
    except OSError:
        pass
    return v


# ==== report ======================================================================================================
def _get(rec, eng, key):
    return (rec or {}).get(eng, {}).get(key)


def _speedup(rec):
    a, b = _get(rec, "lme4", "fit_s"), _get(rec, "mixedjax", "fit_s")
    return a / b if a and b else None


def targets(recs: dict) -> list[tuple[str, str, object]]:
    """(target, measured, met: True / False / None when not measured)."""
    out = []

    def le(model, key, limit, label, fmt="{:.3g} s", eng="mixedjax"):
        v = _get(recs.get(model), eng, key)
        out.append((label, fmt.format(v) if v is not None else _missing(recs, model), None if v is None else v <= limit))

    def speed(model, factor, label):
        s = _speedup(recs.get(model))
        out.append((label, f"{s:.1f}×" if s else _missing(recs, model, "lme4"), None if s is None else s >= factor))

    le("insteval_seed", "fit_s", 0.4, "InstEval seed: fit after compilation ≤ 0.4 s")
    speed("insteval_seed", 20, "InstEval seed: ≥ 20× faster than lme4")
    rec = recs.get("insteval_seed")
    for key, what in (("cold_s", "empty compilation cache"), ("cold_cached_s", "compilation cache filled")):
        c, l4 = _get(rec, "mixedjax", key), _get(rec, "lme4", "fit_s")
        out.append((f"InstEval seed: cold process ({what}) faster than lme4's fit alone",
                    f"{c:.2f} s vs {l4:.2f} s" if c and l4 else _missing(recs, "insteval_seed", "lme4"),
                    None if not (c and l4) else c < l4))
    le("insteval_three", "fit_s", 0.8, "InstEval three terms: fit ≤ 0.8 s")
    speed("insteval_three", 40, "InstEval three terms: ≥ 40× faster than lme4")
    for model, limit, factor, name in (("insteval_seed", 0.4, 20, "InstEval seed"),
                                       ("insteval_three", 0.8, 40, "InstEval three terms")):
        b, l4 = _get(recs.get(model), "mixedjax", "bobyqa") or {}, _get(recs.get(model), "lme4", "fit_s")
        if b.get("fit_s"):
            out.append((f"{name}, optimizer='bobyqa': fit after compilation ≤ {limit} s", f"{b['fit_s']:.3g} s",
                        b["fit_s"] <= limit))
            if l4:
                out.append((f"{name}, optimizer='bobyqa': ≥ {factor}× faster than lme4",
                            f"{l4 / b['fit_s']:.1f}×", l4 / b["fit_s"] >= factor))
    le("sleepstudy", "fit_s", 0.005, "sleepstudy: fit ≤ 5 ms", "{:.4f} s")
    le("sleepstudy", "cold_s", 3.0, "sleepstudy: cold process ≤ 3 s (empty compilation cache)", "{:.2f} s")
    le("sleepstudy", "cold_cached_s", 3.0, "sleepstudy: cold process ≤ 3 s (compilation cache filled)", "{:.2f} s")
    le("ml1m", "fit_s", 30.0, "ml1m-shaped: fit ≤ 30 s")
    b = _get(recs.get("ml1m"), "mixedjax", "bobyqa") or {}
    if b.get("fit_s"):
        out.append(("ml1m-shaped, optimizer='bobyqa': fit ≤ 30 s", f"{b['fit_s']:.3g} s", b["fit_s"] <= 30.0))
    ml = (recs.get("ml1m") or {}).get("mixedjax", {})
    if ml.get("cold_status") == "memory":  # killed past the memory cap: certainly above 4 GB
        at = ml.get("peak_mb_at_stop", ml.get("peak_mb_at_kill"))
        out.append(("ml1m-shaped: peak memory ≤ 4 GB", f"> {at:.0f} MB (killed at the memory cap)", False))
    else:
        le("ml1m", "peak_mb", 4096, "ml1m-shaped: peak memory ≤ 4 GB", "{:.0f} MB")
    le("d3", "fit_s", 20.0, "d3-shaped: fit ≤ 20 s")
    le("kb07", "fit_s", 1.0, "kb07-shaped: fit ≤ 1 s")
    ratios = {m: _get(r, "mixedjax", "vg_ratio") for m, r in recs.items()}
    ratios = {m: v for m, v in ratios.items() if v is not None}
    out.append(("gradient ≤ 3 objective evaluations (value-and-gradient / objective, every model)",
                ", ".join(f"{m} {v:.1f}" for m, v in ratios.items()) or "not measured",
                None if not ratios else all(v <= 3 for v in ratios.values())))
    return out


def _cost_line(rec) -> str:
    """Where a fit's time goes: evaluations × value-and-gradient cost, from the record."""
    mj = (rec or {}).get("mixedjax", {})
    fe, nt, vg, ob, fit = (mj.get(k) for k in ("feval", "ntheta", "vg_s", "obj_s", "fit_s"))
    if not (fe and nt and vg and ob and fit):
        return "no per-evaluation figures in this run"
    return (f"{fe} value-and-gradient evaluations plus {nt} more for the Hessian check at the end: "
            f"{_secs(fit / (fe + nt))} each inside the fit (measured alone: {_secs(vg)}, "
            f"{vg / ob:.1f} objectives); one objective costs {_secs(ob)}, most of it the dense block's Cholesky "
            "factor, and the gradient adds that factor's reverse pass")


def obstacle(label: str, recs: dict) -> str:
    """Plain words on why a target was missed, using this run's measurements."""
    model = {"InstEval seed": "insteval_seed", "InstEval three": "insteval_three", "ml1m": "ml1m",
             "d3": "d3", "kb07": "kb07", "sleepstudy": "sleepstudy"}
    rec = next((recs.get(v) for k, v in model.items() if label.startswith(k)), None)
    mj = (rec or {}).get("mixedjax", {})
    if "cold process" in label:
        return (f"compilation: {_f(mj.get('compile_s'), '{:.1f}')} s of the cold process compiles the fit loop "
                "(the objective, its gradient inside the line search, the Hessian check); the persistent "
                "compilation cache removes it from the second process on")
    if "peak memory" in label:
        return "the fill-in pair lists and the dense product of the heavy columns, plus the dense block's factor"
    if "bobyqa" in label:
        b = mj.get("bobyqa") or {}
        return (f"{b.get('feval')} objective evaluations (no gradients) at {_secs(mj.get('obj_s'))} each, most of it "
                "the dense block's Cholesky factor (LAPACK, one thread)")
    if label.startswith("gradient"):
        tiny = [f"{n} ({_secs(r['mixedjax']['obj_s'])} an objective)" for n, r in recs.items()
                if (r.get("mixedjax") or {}).get("obj_s") and r["mixedjax"].get("vg_s")
                and r["mixedjax"]["vg_s"] > 3 * r["mixedjax"]["obj_s"] and r["mixedjax"]["obj_s"] < 1e-4]
        return ("where the dense factor dominates (InstEval), a flop count: the factor of an n × n block costs n³/3, "
                "and its reverse pass needs L^-T diag(c) L^-1, which costs 5n³/6 by mixedjax's block recursion and "
                "no less than 2n³/3 by any method that forms it (LAPACK's potri), so value and gradient cost at "
                "least 3 factorisations' flops, 3.5 with the recursion; its matrix products run faster than the "
                "factor, but the fill-in's gathers and scatter-adds also run again in reverse"
                + (f"; on {', '.join(tiny)} both calls take microseconds, and the ratio compares the fixed costs "
                   "of two small programs" if tiny else ""))
    return _cost_line(rec)


def _missing(recs, model, eng="mixedjax"):
    rec = recs.get(model)
    if rec is None:
        return "not run in this run"
    e = rec.get(eng) or {}
    return "not run: " + e.get("not_run", e.get("worker_note", "no result"))


def _f(v, fmt="{:.3g}", none="–"):
    return none if v is None else fmt.format(v)


def _secs(v):
    if v is None:
        return "–"
    return f"{v * 1e3:.2f} ms" if v < 0.1 else f"{v:.3g} s"


def write_report(results: dict, path_md: Path) -> None:
    recs = results["models"]
    mi, ver = results["machine"], results["versions"]
    L = []
    L.append("# Benchmarks: mixedjax, lme4 and statsmodels side by side\n")
    L.append(f"Run: {results['date']} — `{results['command']}`{' (quick mode: fewer repeats)' if results['quick'] else ''}\n")
    older = [f"{n} ({r.get('date', '?')}{', mixedjax at ' + r['git'] if r.get('git') else ''}"
             f"{', `' + r['command'] + '`' if r.get('command') else ''})"
             for n, r in recs.items() if r.get("date") != results["date"]]
    if older:
        L.append("Kept from earlier runs (`--merge`; machine load and code may differ): " + "; ".join(older) + "\n")
    L.append(f"- Machine: {mi.get('cpu')}, {mi.get('cores')} cores"
             f"{' (' + str(mi['affinity_cores']) + ' usable)' if mi.get('affinity_cores') not in (None, mi.get('cores')) else ''}"
             f", {mi.get('ram_gb')} GB RAM; {mi.get('platform')}; load average at start "
             f"{', '.join(f'{x:.2f}' for x in mi.get('loadavg_start', []))}")
    L.append(f"- Versions: Python {ver.get('python')}, jax {ver.get('jax')} (jaxlib {ver.get('jaxlib')}), optax "
             f"{ver.get('optax')}, numpy {ver.get('numpy')}, statsmodels {ver.get('statsmodels') or 'not installed'}, "
             f"{ver.get('R', 'R: not available')}, lme4 {ver.get('lme4', '–')} (Matrix {ver.get('Matrix', '–')}), "
             f"mixedjax {ver.get('mixedjax')} at {ver.get('mixedjax_git', '?')}")
    L.append("- Thread settings for every engine (parent and every subprocess): "
             + ", ".join(f"`{k}={v}`" for k, v in PIN.items()) + ". They hold BLAS (OpenBLAS, MKL: lme4's and "
             "statsmodels' linear algebra, and the LAPACK Cholesky factor and triangular solves that JAX calls), "
             "OpenMP and Eigen to one thread; XLA's own matrix products are not held by them and may use both cores "
             "(the fit CPU/wall column below says how much they did). All computation in float64 on the CPU.")
    L.append("- Each engine fits by maximum likelihood (`REML=FALSE`); objective = −2 log-likelihood (lme4's "
             "`deviance`, statsmodels' −2·llf).\n")
    L.append("## Fit times\n")
    L.append("mixedjax fit s: median of refits of the same prebuilt `Problem` after compilation; compile s: first fit "
             "minus that median; cold process s: `python -c 'import mixedjax; …; mj.lmm(…)'` timed from outside "
             "(interpreter start, imports, data load, model build, compilation, fit) with an empty JAX persistent "
             "compilation cache; cold, cached s: the same process again once the first one has filled that cache "
             "(mixedjax keeps compiled fits there; the warm-process measurements run with the cache off); "
             "peak MB: the first cold process's max RSS. lme4 fit s: median `system.time(lmer(…))` elapsed (includes lme4's model building). statsmodels "
             "s: `MixedLM.from_formula(…).fit(reml=False)`, one run, in a subprocess with a time limit. "
             "Speed-up vs lme4 = lme4 fit s / mixedjax fit s.\n")
    L.append("| model | n | mixedjax compile s | mixedjax fit s | cold process s | cold, cached s | evals | peak MB | "
             "objective | lme4 fit s | lme4 objective | statsmodels s | speed-up vs lme4 |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    notes = []
    for name, rec in recs.items():
        mj, lm, sm = rec.get("mixedjax", {}), rec.get("lme4"), rec.get("statsmodels")
        if lm is None:
            lm_t, lm_o = "not run", "–"
        elif "fit_s" in lm:
            lm_t, lm_o = _f(lm["fit_s"], "{:.4g}"), _f(lm["objective"], "{:.6f}")
        else:
            lm_t, lm_o = "not run", "–"
            notes.append(f"{name}, lme4: {lm.get('not_run')}")
        if sm is None:
            sm_t = "not run"
        elif "fit_s" in sm:
            sm_t = _f(sm["fit_s"], "{:.4g}")
            if abs(sm["objective"] - (mj.get("objective") or sm["objective"])) > 0.01:
                sm_t += f" (obj {sm['objective']:.4f})"
        else:
            sm_t = "timeout" if sm.get("not_run") == "timeout" else "–"
            notes.append(f"{name}, statsmodels: {sm.get('not_run')}")
        if "not_run" in mj:
            at = mj.get("cold_wall_at_stop_s")
            notes.append(f"{name}, mixedjax not run: {mj['not_run']}"
                         + (f" after {at:.0f} s" if at is not None else "") + "; warm measurements skipped")
        if "worker_note" in mj:
            notes.append(f"{name}, mixedjax warm measurements: {mj['worker_note']}")
        if mj.get("refits_s") and mj.get("first_fit_s", 1e9) <= mj.get("fit_s", 0):
            notes.append(f"{name}, mixedjax: the first fit ({mj['first_fit_s']:.3g} s) was no slower than the median "
                         "refit, so compile s is lost in timing noise")
        if mj.get("fit_note"):
            notes.append(f"{name}, mixedjax: {mj['fit_note']}")
        if mj.get("converged") is False:
            notes.append(f"{name}, mixedjax: {mj.get('status')}")
        for msg in (lm or {}).get("messages") or []:
            notes.append(f"{name}, lme4 says: {msg}")
        sp = _speedup(rec)
        L.append(
            f"| {name} | {rec['n']:,} | {_f(mj.get('compile_s'), '{:.2f}')} | {_f(mj.get('fit_s'), '{:.4g}')} | "
            f"{_f(mj.get('cold_s'), '{:.2f}')} | {_f(mj.get('cold_cached_s'), '{:.2f}')} | {_f(mj.get('feval'), '{}')} | {_f(mj.get('peak_mb'), '{:.0f}')} | "
            f"{_f(mj.get('objective'), '{:.6f}')} | {lm_t} | {lm_o} | {sm_t} | {_f(sp, '{:.1f}×')} |"
        )
    if notes:
        L.append("")
        L += [f"- {n}" for n in notes]
    L.append("\n## mixedjax details: evaluation costs and model sizes\n")
    L.append("One objective and one value-and-gradient evaluation, each `jax.jit`-compiled, at the fitted θ; medians. "
             "build s: `Problem.build` (formula, design, block layout, host index arrays). fit CPU/wall: CPU time of "
             "the whole process (every thread) over wall time, summed over the refits: above 1 where XLA's matrix "
             "products ran on more than one core. ref. Cholesky ms: the machine's speed just before the model ran, "
             "scipy's one-thread Cholesky (the LAPACK that JAX calls) of a fixed 1,157² matrix (InstEval's dense block size); on a shared "
             "machine it drifts, and the times above move with it.\n")
    L.append("| model | q | p | θ | build s | objective eval | value+grad eval | ratio | obj. compile s | "
             "v+g compile s | fit repeats | fit CPU/wall | iterations | status | lme4 evals | Δ objective vs lme4 | "
             "ref. Cholesky ms |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for name, rec in recs.items():
        mj, lm = rec.get("mixedjax", {}), rec.get("lme4") or {}
        d = None
        if mj.get("objective") is not None and lm.get("objective") is not None:
            d = mj["objective"] - lm["objective"]
        L.append(
            f"| {name} | {_f(mj.get('q'), '{:,}')} | {_f(mj.get('p'), '{}')} | {_f(mj.get('ntheta'), '{}')} | "
            f"{_f(mj.get('build_s'), '{:.2f}')} | {_secs(mj.get('obj_s'))} | {_secs(mj.get('vg_s'))} | "
            f"{_f(mj.get('vg_ratio'), '{:.2f}')} | {_f(mj.get('obj_compile_s'), '{:.2f}')} | "
            f"{_f(mj.get('vg_compile_s'), '{:.2f}')} | {len(mj.get('refits_s', []))} | "
            f"{_f(mj.get('cpu_per_wall'), '{:.2f}')} | {_f(mj.get('iterations'), '{}')} | {str(mj.get('status', '–')).split(':')[0]} | {_f(lm.get('feval'), '{}')} | "
            f"{_f(d, '{:+.2e}')} | {_f(rec.get('ref_chol_ms'), '{:.1f}')} |"
        )
    bq = {name: rec["mixedjax"]["bobyqa"] for name, rec in recs.items() if (rec.get("mixedjax") or {}).get("bobyqa")}
    if bq:
        L.append("\n## The derivative-free option: `optimizer=\"bobyqa\"`\n")
        L.append("NLopt's BOBYQA (MixedModels.jl's default optimiser) on the host, from the same moment start, calling "
                 "the jitted objective; no gradient, no Hessian check. Fit s: median of refits after the first; "
                 "L-BFGS fit s: the default, from the table above.\n")
        L.append("| model | BOBYQA fit s | evals | fit CPU/wall | objective − L-BFGS objective | L-BFGS fit s | "
                 "L-BFGS s / BOBYQA s | speed-up vs lme4 |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, b in bq.items():
            mj, l4 = recs[name]["mixedjax"], _get(recs[name], "lme4", "fit_s")
            L.append(f"| {name} | {b['fit_s']:.4g} | {b['feval']} | {_f(b.get('cpu_per_wall'), '{:.2f}')} | "
                     f"{b['objective'] - mj['objective']:+.2e} | "
                     f"{_f(mj.get('fit_s'), '{:.4g}')} | {mj['fit_s'] / b['fit_s']:.2f}× | "
                     f"{_f(l4 / b['fit_s'] if l4 else None, '{:.1f}×')} |")
    L.append("\n## Targets (measured, not asserted)\n")
    L.append("CPU only: no GPU was lent to this project's tasks, so the GPU targets (InstEval ≤ 0.15 s, ml1m ≤ 1 s) "
             "have not been measured.\n")
    L.append("| target | measured | met | what stands in the way (from this run's numbers) |")
    L.append("|---|---|---|---|")
    for label, meas, met in targets(recs):
        why = obstacle(label, recs) if met is False else ""
        L.append(f"| {label} | {meas} | {'—' if met is None else ('met' if met else 'not met')} | {why} |")
    L.append("\n## Models\n")
    for name, rec in recs.items():
        L.append(f"- **{name}** (n = {rec['n']:,}): `{rec['formula']}`" + (f" — {rec['data']}" if rec.get("data") else ""))
    L.append("\nRaw numbers: `results.json`; chart: `results.png`. The machine may be shared with other work: "
             "treat single numbers as noisy and rerun before quoting them.")
    path_md.write_text("\n".join(L) + "\n")


def write_chart(results: dict, path_png: Path) -> bool:
    """The bar chart; False (and no chart) when matplotlib, an optional dependency, is not installed."""
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
        ("mixedjax fit (compiled)", lambda r: _get(r, "mixedjax", "fit_s"), "#1f77b4", None),
        ("mixedjax cold process", lambda r: _get(r, "mixedjax", "cold_s"), "#aec7e8", "//"),
        ("lme4", lambda r: _get(r, "lme4", "fit_s"), "#d62728", None),
        ("statsmodels", lambda r: _get(r, "statsmodels", "fit_s"), "#2ca02c", None),
    ]
    x = np.arange(len(names))
    w = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(8, 1.8 * len(names)), 4.8))
    for k, (label, get, color, hatch) in enumerate(series):
        vals = [get(recs[n]) for n in names]
        xs = [x[i] + (k - (len(series) - 1) / 2) * w for i, v in enumerate(vals) if v]
        ys = [v for v in vals if v]
        ax.bar(xs, ys, w, label=label, color=color, hatch=hatch, edgecolor="white" if hatch is None else "#555")
        for i, v in enumerate(vals):
            if v is None:
                ax.text(x[i] + (k - (len(series) - 1) / 2) * w, 0.0012, "×", ha="center", va="bottom", color=color,
                        fontsize=9)
    ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=15)
    ax.set_ylabel("seconds (log scale)")
    top = max([v for _, get, _, _ in series for v in (get(recs[n]) for n in names) if v] or [1.0])
    ax.set_ylim(1e-3, top * 30)  # headroom for the legend
    ax.set_title(f"Fit time per engine, ML, BLAS on one thread ({results['date'][:10]}); × = not run or timed out", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", ncol=4)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path_png, dpi=120)
    plt.close(fig)
    return True


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sleepstudy, penicillin, insteval_seed, kb07; fewer repeats")
    ap.add_argument("--only", help="comma-separated model names")
    ap.add_argument("--no-r", dest="r", action="store_false", help="skip lme4")
    ap.add_argument("--no-statsmodels", dest="statsmodels", action="store_false", help="skip statsmodels")
    ap.add_argument("--merge", action="store_true", help="keep other models' entries from an existing results.json")
    ap.add_argument("--reps", type=int, help="refit repeats (default 7; 3 with --quick)")
    ap.add_argument("--timeout", type=float, default=900, help="per mixedjax subprocess, seconds (default 900)")
    ap.add_argument("--r-timeout", type=float, default=900, help="per lme4 run, seconds (default 900)")
    ap.add_argument("--sm-timeout", type=float, help="per statsmodels fit, seconds (default 300; 120 with --quick)")
    ap.add_argument("--sm-skip-large", type=int, default=200_000, help="skip statsmodels above this many rows")
    ap.add_argument("--mem-limit-gb", type=float, default=12.0, help="kill a subprocess above this RSS (default 12)")
    ap.add_argument("--outdir", default=str(HERE), help="where RESULTS.md, results.json, results.png go")
    ap.add_argument("--report-only", action="store_true", help="rewrite RESULTS.md and results.png from results.json")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        kind, *rest = args.worker
        if kind == "mixedjax":
            worker_mixedjax(rest[0], rest[1], rest[2], int(rest[3]))
        elif kind == "statsmodels":
            worker_statsmodels(*rest)
        return

    if args.report_only:
        outdir = Path(args.outdir)
        results = json.loads((outdir / "results.json").read_text())
        write_report(results, outdir / "RESULTS.md")
        chart = " and results.png" if write_chart(results, outdir / "results.png") else ""
        print(f"rewrote {outdir / 'RESULTS.md'}{chart} from results.json")
        return

    import models as M

    if args.reps is None:
        args.reps = 3 if args.quick else 7
    if args.sm_timeout is None:
        args.sm_timeout = 120 if args.quick else 300
    names = list(M.QUICK) if args.quick else list(M.MODELS)
    if args.only:
        names = [n.strip() for n in args.only.split(",")]
        bad = [n for n in names if n not in M.MODELS]
        if bad:
            ap.error(f"unknown model(s) {bad}; choose from {list(M.MODELS)}")
    if args.r and not have_lme4():
        print("Rscript or lme4 not available: lme4 is skipped (apt-get install -y r-cran-lme4)", flush=True)
        args.r = False
    if args.statsmodels and importlib.util.find_spec("statsmodels") is None:
        print("statsmodels not installed: it is skipped (pip install -e '.[bench]')", flush=True)
        args.statsmodels = False

    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    results = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "quick": bool(args.quick),
        "pinning": PIN,
        "machine": machine_info(),
        "versions": versions(args.r),
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
    tmpdir = HERE / "out"
    tmpdir.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmpdir) as tmp:
        for name in names:
            t = time.perf_counter()
            _, formula, df, spec = M.MODELS[name]()
            gen = time.perf_counter() - t
            ref_ms = reference_cholesky_ms()
            rec = bench_model(name, formula, df, spec, Path(tmp), args)
            rec["ref_chol_ms"] = ref_ms
            rec["data_s"] = gen
            rec["date"] = results["date"]
            rec["command"] = results["command"]
            rec["git"] = results["versions"].get("mixedjax_git")
            rec["data"] = M.DATA.get(name, "")
            results["models"][name] = rec
            # write after every model so that a long run leaves usable partial results
            order = [n for n in M.MODELS if n in results["models"]]
            results["models"] = {n: results["models"][n] for n in order}
            results["total_s"] = time.perf_counter() - t_all
            (outdir / "results.json").write_text(json.dumps(results, indent=1))
            write_report(results, outdir / "RESULTS.md")
    chart = ", results.png" if write_chart(results, outdir / "results.png") else ""
    print(f"\nwrote {outdir / 'RESULTS.md'}, results.json{chart} in {time.perf_counter() - t_all:.0f} s", flush=True)


if __name__ == "__main__":
    main()
