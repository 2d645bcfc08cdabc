"""A parametric bootstrap of the sleepstudy model in one compiled program per chunk: intervals and a plot.

    python examples/bootstrap.py
"""

import os
import tempfile
import time

import matplotlib

matplotlib.use("Agg")

import mixedjax as mj  # noqa: E402

QUICK = os.environ.get("MIXEDJAX_EXAMPLES_QUICK") == "1"
N = 200 if QUICK else 10_000

m = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
t = time.perf_counter()
boot = m.bootstrap(N, seed=42)
print(f"{boot!r}: {time.perf_counter() - t:.2f} s including compilation")
print(boot.table.head())
print("\n95% percentile intervals (lme4's confint(bootMer(...), type = 'perc')):")
print(boot.confint())
print("\n95% shortest coverage intervals (MixedModels.jl's shortestcovint):")
print(boot.confint(method="shortest"))
print(f"\n{boot.nsingular} of {boot.n} replicates are singular fits")
path = os.path.join(tempfile.gettempdir(), "mixedjax_bootstrap.png")
boot.plot().savefig(path, dpi=80)
print(f"densities saved to {path}")
