"""Many fits in one compiled call (issue 15): the parametric bootstrap against lme4's bootMer, fit_many against a
loop of single fits, and the bootstrap's peak memory.

    python benchmarks/batched.py                 # the targets: 1,000 and 10,000 sleepstudy replicates, 1,000 kb07
                                                 # responses, 100,000 replicates' peak memory (minutes; run alone)
    python benchmarks/batched.py --quick         # a smoke run with small sizes
    python benchmarks/batched.py --no-r          # without lme4's bootMer (else Rscript with lme4, when present)

Each measurement runs in a fresh process (peak memory is that process's maximum resident set). Prints one line per
row and writes benchmarks/batched_results.json.
"""

from __future__ import annotations

import argparse
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

BOOT = """
import json, resource, sys, time
import numpy as np, mixedjax as mj
n, reps = int(sys.argv[1]), int(sys.argv[2])
m = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
times = []
for _ in range(reps):
    t = time.perf_counter(); b = m.bootstrap(n, seed=len(times), progress=False); times.append(time.perf_counter() - t)
print(json.dumps({"cold_s": times[0], "warm_s": min(times[1:]) if reps > 1 else None, "converged": b.nconverged,
                  "singular": b.nsingular, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
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
t = time.perf_counter(); b = mj.fit_many(m, Y); cold = time.perf_counter() - t
t = time.perf_counter(); b = mj.fit_many(m, Y); warm = time.perf_counter() - t
m.refit(Y[0])
t = time.perf_counter()
for y in Y[:loop_n]:
    m.refit(y)
loop = (time.perf_counter() - t) / loop_n
print(json.dumps({"cold_s": cold, "warm_s": warm, "converged": b.nconverged, "refit_each_s": loop,
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
cat(t, "\\n")
"""


TIMEOUT = 1800  # seconds per measurement: a 32-response kb07 fit_many once hung in XLA (all threads waiting)


def python(code: str, *args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_ENABLE_X64": "1"}
    try:
        r = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {TIMEOUT} s"}
    if r.returncode:
        return {"error": r.stderr[-500:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def bootmer_seconds(n: int) -> float | None:
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
        return float(r.stdout.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--no-r", action="store_true", help="skip lme4's bootMer")
    args = ap.parse_args()
    n1, n10, n100, B, loop_n = (100, 400, 2000, 32, 8) if args.quick else (1000, 10_000, 100_000, 1000, 50)
    rows = {}
    for name, size, call in (("bootstrap_1k", n1, lambda: python(BOOT, n1, 3)),
                             ("bootstrap_10k", n10, lambda: python(BOOT, n10, 2)),
                             ("bootstrap_memory", n100, lambda: python(BOOT, n100, 1)),
                             ("fit_many_kb07", B, lambda: python(MANY, B, loop_n, HERE))):
        rows[name] = {"size": size, **call()}
        print(name, rows[name], flush=True)
    lme4 = None if args.no_r else bootmer_seconds(n1)
    rows["bootmer_1k_s"] = lme4
    print("bootmer_1k_s", lme4, flush=True)
    out = HERE / ("batched_results_quick.json" if args.quick else "batched_results.json")
    out.write_text(json.dumps(rows, indent=1))
    if any("error" in r for r in rows.values() if isinstance(r, dict)):
        return
    if lme4:
        b = rows["bootstrap_1k"]
        print(f"{n1} replicates: bootMer {lme4:.2f} s; mixedjax warm {b['warm_s']:.2f} s "
              f"({lme4 / b['warm_s']:.1f}×, target ≥ 100×), cold {b['cold_s']:.2f} s "
              f"({lme4 / b['cold_s']:.1f}×, target ≥ 10×)")
    b = rows["bootstrap_10k"]
    print(f"{n10} replicates warm: {b['warm_s']:.2f} s (target ≤ 10 s at 10,000)")
    print(f"{n100} replicates: peak {rows['bootstrap_memory']['peak_mb']:.0f} MB (target ≤ 2048 MB at 100,000)")
    f = rows["fit_many_kb07"]
    print(f"kb07 fit_many of {B}: warm {f['warm_s']:.2f} s, cold {f['cold_s']:.2f} s; a loop of refits "
          f"{f['refit_each_s'] * B:.2f} s ({f['refit_each_s'] * 1e3:.1f} ms each)")


if __name__ == "__main__":
    main()
