"""Many fits in one compiled call (issue 15): the parametric bootstrap against lme4's bootMer in the same run,
fit_many against a loop of single refits, and the bootstrap's peak memory; writes the "## Many fits in one compiled
call" section of benchmarks/RESULTS.md (report.py keeps it when it rewrites the rest) and batched_results.json.

    python benchmarks/batched.py                 # the targets: 1,000 and 10,000 sleepstudy replicates, 1,000 kb07
                                                 # responses, 100,000 replicates' peak memory, bootMer (minutes)
    python benchmarks/batched.py --quick         # a smoke run with small sizes (writes *_quick.json, no RESULTS.md)
    python benchmarks/batched.py --no-r          # without lme4's bootMer (else Rscript with lme4, when present)

Each measurement runs in a fresh process (peak memory is that process's maximum resident set) with an empty
compilation cache of its own, so "cold" includes every compile; the "new process, cache filled" row reruns the
1,000-replicate process with the cache the cold one wrote. Warm times are the minimum of repeated calls.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KEPT = "\n## Many fits in one compiled call"  # report.py keeps this section from here to the end

BOOT = """
import json, resource, sys, time
t0 = time.perf_counter()
import numpy as np, mixedjax as mj
n, reps = int(sys.argv[1]), int(sys.argv[2])
m = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
t_model = time.perf_counter() - t0
times = []
for _ in range(reps):  # the counts reported are the first call's (seed 0), the same bootstrap in every process
    t = time.perf_counter(); r = m.bootstrap(n, seed=len(times), progress=False); times.append(time.perf_counter() - t)
    b = r if len(times) == 1 else b
print(json.dumps({"cold_s": times[0], "warm_s": min(times[1:]) if reps > 1 else None, "warm_all_s": times[1:],
                  "converged": b.nconverged, "singular": b.nsingular, "feval_mean": float(b.fits.feval.mean()),
                  "feval_max": int(b.fits.feval.max()), "import_and_model_s": t_model,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

MANY = """
import json, resource, sys, time
import numpy as np, mixedjax as mj
sys.path.insert(0, sys.argv[3])
import models
B, loop_n = int(sys.argv[1]), int(sys.argv[2])
_, formula, df, _ = models.kb07()
m = mj.lmm(formula, df)
Y = m.simulate(B, seed=1)
# the first refit compiles the single fit's program, which fit_many's rows of this model run too (batch/serial.py)
t = time.perf_counter(); r = m.refit(Y[0]); refit_cold = time.perf_counter() - t
t = time.perf_counter()
for y in Y[:loop_n]:
    r = m.refit(y)
loop = (time.perf_counter() - t) / loop_n
t = time.perf_counter(); same = mj.fit_many(m, Y[:loop_n]); same = (time.perf_counter() - t) / loop_n  # the loop's rows
# fresh single fits of the same rows (host build, then L-BFGS from each response's moment start, as the rows do)
import warnings
t = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fresh = [mj.lmm(formula, df.assign(rt=y)) for y in Y[:loop_n]]
fresh_each = (time.perf_counter() - t) / loop_n
# all B once (a second call would double the row's minutes; the compile is done above)
t = time.perf_counter(); b = mj.fit_many(m, Y); warm = time.perf_counter() - t
agree = max(abs(m.refit(Y[i]).objective - b.objective[i]) for i in range(min(3, B)))
print(json.dumps({"cold_s": None, "warm_s": warm, "converged": b.nconverged, "refit_each_s": loop,
                  "refit_cold_s": refit_cold, "max_objective_difference": agree, "fit_many_same_rows_each_s": same,
                  "fresh_fit_each_s": fresh_each, "fresh_feval_mean": float(np.mean([f.optsum.feval for f in fresh])),
                  "feval_mean": float(b.feval.mean()), "feval_max": int(b.feval.max()),
                  "results": {str(k): int(v) for k, v in zip(*np.unique(b.result, return_counts=True))},
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

BOOTMER = """
suppressMessages(library(lme4))
d <- read.csv(file.path("{data}", "sleepstudy.csv")); d$subj <- factor(d$subj)
m <- lmer(reaction ~ 1 + days + (1 + days | subj), d, REML = FALSE)
f <- function(x) c(getME(x, "beta"), sigma(x))
invisible(bootMer(m, f, nsim = 20, use.u = FALSE, type = "parametric"))  # warm
set.seed(1)
t <- system.time(bootMer(m, f, nsim = {n}, use.u = FALSE, type = "parametric"))[["elapsed"]]
cat(t, as.character(packageVersion("lme4")), "\\n")
"""

TIMEOUT = 1800  # seconds per measurement
KB07_TIMEOUT = int(os.environ.get("BATCHED_KB07_TIMEOUT", TIMEOUT))  # the kb07 row's own limit
# kb07-shaped responses fitted: the target's 1,000, by one fit_many call (each row an L-BFGS fit of about 0.27 s on a
# quiet 2-core machine: about 4.5 minutes); the loop of single refits is timed on loop_n of the same rows and scaled
KB07_B = int(os.environ.get("BATCHED_KB07_B", 1000))


def python(code: str, *args, cache: str | None = None, timeout: int = TIMEOUT) -> dict:
    """Run ``code`` in a fresh process with its own compilation cache directory (empty unless ``cache`` is given)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_ENABLE_X64": "1", "MIXEDJAX_CACHE_DIR": cache or tmp}
        try:
            r = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout} s"}
    if r.returncode:
        return {"error": r.stderr[-500:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def bootmer(n: int) -> dict | None:
    if not shutil.which("Rscript"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        data = ROOT / "mixedjax" / "datasets" / "data"
        script = Path(tmp) / "boot.R"
        script.write_text(textwrap.dedent(BOOTMER.format(data=data, n=n)))
        r = subprocess.run(["Rscript", str(script)], capture_output=True, text=True)
        if r.returncode:
            print(f"lme4's bootMer failed: {r.stderr[-300:]}", file=sys.stderr)
            return None
        seconds, version = r.stdout.split()[-2:]
        return {"seconds": float(seconds), "lme4": version}


def load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def measure(quick: bool, with_r: bool) -> dict:
    n1, n10, n100, B, loop_n = (100, 400, 2000, 4, 2) if quick else (1000, 10_000, 100_000, KB07_B, 10)
    rows = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
            "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                  text=True).stdout.strip(), "sizes": [n1, n10, n100, B, loop_n]}
    with tempfile.TemporaryDirectory() as cache:
        steps = (("bootstrap_1k", lambda: python(BOOT, n1, 4, cache=cache)),
                 ("bootstrap_1k_cached", lambda: python(BOOT, n1, 1, cache=cache)),
                 ("bootstrap_10k", lambda: python(BOOT, n10, 3)),
                 ("bootstrap_memory", lambda: python(BOOT, n100, 1)),
                 ("fit_many_kb07", lambda: python(MANY, B, loop_n, HERE, timeout=KB07_TIMEOUT)),
                 ("bootmer_1k", lambda: bootmer(n1) if with_r else None))
        for name, call in steps:
            before = load()
            rows[name] = call()
            if isinstance(rows[name], dict):
                rows[name]["load_before"] = before
            print(name, rows[name], flush=True)
    return rows


def fmt(x, unit="s"):
    return "–" if x is None else f"{x:.3g} {unit}"


def section(r: dict) -> str:
    """The RESULTS.md section: each target, met or not, and what stands in the way."""
    n1, n10, n100, B, loop_n = r["sizes"]
    bm = (r.get("bootmer_1k") or {}).get("seconds")
    b1, bc, b10, bmem, kb = (r[k] for k in ("bootstrap_1k", "bootstrap_1k_cached", "bootstrap_10k",
                                             "bootstrap_memory", "fit_many_kb07"))

    def ratio(x):
        return None if (bm is None or x is None) else bm / x

    def met(ok):
        return "–" if ok is None else ("met" if ok else "not met")

    warm, cold, cached = b1.get("warm_s"), b1.get("cold_s"), bc.get("cold_s")
    L = [KEPT.strip(), "",
         f"`python benchmarks/batched.py` at {r['git']}, {r['date']}, on the 2-core machine (load average "
         f"before each row in the last column: above about 1, other jobs were running and the times are "
         f"pessimistic). Each row is a fresh process with an empty compilation cache of its own (so *cold* includes every "
         f"compile), except the *cache filled* row. lme4's bootMer in the same run: `bootMer(m, function(x) "
         f"c(getME(x, \"beta\"), sigma(x)), nsim = {n1}, use.u = FALSE, type = \"parametric\")`, elapsed, after a "
         f"20-replicate warm-up (lme4 {(r.get('bootmer_1k') or {}).get('lme4', '?')}).", "",
         "| target | lme4 bootMer | mixedjax | ratio | met? | how measured (load) |", "|---|---:|---:|---:|---|---|"]
    rw, rc, rcc = ratio(warm), ratio(cold), ratio(cached)
    L.append(f"| {n1:,} sleepstudy replicates warm, ≥ 100× faster than bootMer | {fmt(bm)} | {fmt(warm)} | "
             f"{fmt(rw, '×')} | {met(None if rw is None else rw >= 100)} | `m.bootstrap({n1})`, min of 3 calls after the "
             f"first; {b1.get('feval_mean', 0):.1f} Newton passes a fit on average, {b1.get('feval_max')} at most; "
             f"{b1.get('converged')} of {n1:,} converged ({b1.get('load_before')}) |")
    L.append(f"| the same including compilation, ≥ 10× faster than bootMer | {fmt(bm)} | {fmt(cold)} | "
             f"{fmt(rc, '×')} | {met(None if rc is None else rc >= 10)} | the first `m.bootstrap({n1})` of the process, "
             f"every program compiled (after import and the model's own fit, "
             f"{fmt(b1.get('import_and_model_s'))}) |")
    L.append(f"| (for comparison) a new process, compilation cache filled | {fmt(bm)} | {fmt(cached)} | "
             f"{fmt(rcc, '×')} | – | the first `m.bootstrap({n1})` of a second process reading the cache the first "
             f"wrote ({bc.get('load_before')}) |")
    w10 = b10.get("warm_s")
    L.append(f"| {n10:,} sleepstudy replicates ≤ 10 s warm | – | {fmt(w10)} | – | "
             f"{met(None if w10 is None else w10 <= 10)} | `m.bootstrap({n10})`, min of 2 calls after the first "
             f"({b10.get('converged')} of {n10:,} converged; {b10.get('load_before')}) |")
    pk = bmem.get("peak_mb")
    L.append(f"| {n100:,} replicates in ≤ 2 GB peak | – | {fmt(pk, 'MB')} | – | "
             f"{met(None if pk is None else pk <= 2048)} | peak resident set (getrusage) of a process running "
             f"`m.bootstrap({n100})` once, {fmt(bmem.get('cold_s'))} with compilation; {bmem.get('converged')} of "
             f"{n100:,} converged ({bmem.get('load_before')}) |")
    if "error" in kb:
        L.append(f"| `fit_many` of {B:,} kb07-shaped responses against a loop of single fits | – | failed | – | – | "
                 f"{kb['error'][-200:]!r} ({kb.get('load_before')}) |")
    else:
        each = kb.get("refit_each_s")
        L.append(f"| `fit_many` of {B:,} kb07-shaped responses against a loop of single fits | – | warm "
                 f"{fmt(kb.get('warm_s'))} ({fmt(kb.get('warm_s') / B * 1e3, 'ms')} a fit; one call, its program "
                 f"compiled by the refits before it); a loop of `m.refit`: {fmt(each * 1e3, 'ms')} a fit (mean of "
                 f"{loop_n}), so {fmt(each * B)} for {B:,} (scaled); `fit_many` of those {loop_n} rows: "
                 f"{fmt((kb.get('fit_many_same_rows_each_s') or float('nan')) * 1e3, 'ms')} a fit; fresh `mj.lmm` "
                 f"fits of those rows: {fmt((kb.get('fresh_fit_each_s') or float('nan')) * 1e3, 'ms')} a fit, "
                 f"{kb.get('fresh_feval_mean', float('nan')):.1f} evaluations | "
                 f"{fmt(each * B / kb.get('warm_s'), '×')} | – | "
                 f"{kb.get('converged')} of {B:,} converged (result codes {kb.get('results')}); rows equal refits to "
                 f"{kb.get('max_objective_difference', float('nan')):.1e} in d; {kb.get('feval_mean', 0):.1f} "
                 f"evaluations a fit on average ({kb.get('load_before')}) |")
    L += ["", "What stands in the way of the targets not met (docs/batched.md has the detail): compilation, and the "
          "slowest fits. Cold, a new process traces, lowers and compiles the bootstrap's three programs (the lanes' "
          "Newton loop, one copy of the objective's value and gradient vmapped over the lanes and the Hessian "
          "probes, compiled with XLA's optimisations; the post-loop checks and the simulation with the quick "
          "options); XLA's CPU compile of the loop is most of it. A new process with the caches filled reads the "
          "traced programs back (fitting.traces) and XLA's compiles from JAX's cache, so it only loads them. Warm, "
          "each fit costs about 2.2 Newton passes of nθ + 1 gradients from its response's moment start (7.5 from "
          "θ̂ before), the slowest fits (near-singular replicates, up to about 20 passes) run alone at the end of "
          "each chunk, and the simulation and the post-loop checks, compiled with the quick options (LLVM -O0) to "
          "keep the cold call short, are now about half of a warm call; "
          "the few fits that do not converge stop at the Newton loop's limit of 100 passes (max_evaluations). "
          f"kb07 (nθ = 20, a 137-row dense block, {B:,} responses): every gradient costs its full work there, so "
          "fit_many fits its rows one after another by the "
          "single fit's L-BFGS program (batch/serial.py), each from its response's moment start (as a fresh fit "
          "starts), and is no faster than a loop of refits on a CPU: it saves only the host's model building, small "
          "beside a kb07 fit.", ""]
    return "\n".join(L) + "\n"


def write_section(text: str, path: Path) -> None:
    """Replace this script's section of RESULTS.md (the sections after it, which other scripts own, stay)."""
    from harness import replace_section

    replace_section(path, KEPT, text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--no-r", action="store_true", help="skip lme4's bootMer")
    ap.add_argument("--report-only", action="store_true", help="rewrite the RESULTS.md section from the json")
    args = ap.parse_args()
    out = HERE / ("batched_results_quick.json" if args.quick else "batched_results.json")
    if args.report_only:
        rows = json.loads(out.read_text())
    else:
        from harness import compile_bytecode

        compile_bytecode()  # as a pip-installed mixedjax has
        rows = measure(args.quick, not args.no_r)
        out.write_text(json.dumps(rows, indent=1))
    text = section(rows)
    print(text)
    if not args.quick:
        write_section(text, HERE / "RESULTS.md")
        print(f"wrote the section of {HERE / 'RESULTS.md'}" + ("" if args.report_only else f" and {out}"))


if __name__ == "__main__":
    main()
