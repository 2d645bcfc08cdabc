"""Satterthwaite and Kenward–Roger coefficient tables: mixedjax beside lmerTest / pbkrtest (through Rscript).

    python benchmarks/inference.py [--only NAME[,NAME...]] [--no-r] [--r-timeout SECONDS] [--kr-max-n N]

Models (benchmarks/models.py): sleepstudy (a smoke test), insteval_seed, kb07, d3; every one fitted by REML. For
mixedjax each table is timed twice: "cold" on the first model object of the process (compilation included) and
"warm" on a second model object of the same shape (a fresh refit from the same θ, so the derivatives are computed
again but not compiled). lmerTest's ``summary(m, ddf = "Satterthwaite")`` and ``summary(m, ddf = "Kenward-Roger")``
(pbkrtest) are timed after lmer's fit; pbkrtest builds n × n matrices, so KR in R is skipped above ``--kr-max-n``
observations (default 20,000: InstEval's 73,421² doubles are 43 GB). Writes benchmarks/inference_results.json.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import models  # noqa: E402

MODELS = {"sleepstudy": models.sleepstudy, "insteval_seed": models.insteval_seed, "kb07": models.kb07,
          "d3": models.d3}

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressMessages({library(lmerTest)})
df <- read.csv(args[1])
for (f in strsplit(args[3], ",")[[1]]) if (nzchar(f)) df[[f]] <- factor(df[[f]])
t0 <- proc.time()[["elapsed"]]
m <- lmer(as.formula(args[2]), data = df, REML = TRUE)
fit_s <- proc.time()[["elapsed"]] - t0
t0 <- proc.time()[["elapsed"]]
s <- coef(summary(m, ddf = "Satterthwaite"))
sat_s <- proc.time()[["elapsed"]] - t0
kr_s <- NA
if (as.logical(args[4])) {
  t0 <- proc.time()[["elapsed"]]
  k <- coef(summary(m, ddf = "Kenward-Roger"))
  kr_s <- proc.time()[["elapsed"]] - t0
}
cat(sprintf('{"fit_s": %.4f, "satterthwaite_s": %.4f, "kenward_roger_s": %s}\n', fit_s, sat_s,
            ifelse(is.na(kr_s), "null", sprintf("%.4f", kr_s))))
"""


def time_mixedjax(formula, df) -> dict:
    import numpy as np

    import mixedjax as mj

    t0 = time.perf_counter()
    m = mj.lmm(formula, df, reml=True)
    out = {"fit_s": time.perf_counter() - t0, "n": int(m.nobs), "p": int(m.problem.design.p)}
    out["singular"] = bool(m.is_singular)
    for key, ddf in (("satterthwaite", "satterthwaite"), ("kenward_roger", "kenward-roger")):
        try:
            t0 = time.perf_counter()
            m.coeftable(ddf=ddf)
            out[f"{key}_cold_s"] = time.perf_counter() - t0
            m2 = mj.fit(m.problem, reml=True, theta0=np.asarray(m.theta))
            t0 = time.perf_counter()
            m2.coeftable(ddf=ddf)
            out[f"{key}_warm_s"] = time.perf_counter() - t0
        except mj.MixedjaxError as err:  # e.g. Kenward-Roger at a boundary fit
            out[f"{key}_error"] = f"{type(err).__name__}: {str(err).splitlines()[0]}"
    return out


def _fmt(rec, key):
    if f"{key}_error" in rec:
        return rec[f"{key}_error"]
    return f"cold {rec[f'{key}_cold_s']:.2f} s, warm {rec[f'{key}_warm_s']:.2f} s"


def time_lmertest(formula, df, timeout, with_kr) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = Path(tmp) / "data.csv", Path(tmp) / "time.R"
        df.to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        factors = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype) or df[c].dtype == object]
        try:
            r = subprocess.run(["Rscript", str(script), str(csv), formula, ",".join(factors),
                                "TRUE" if with_kr else "FALSE"], capture_output=True, text=True, timeout=timeout,
                               check=False)
        except subprocess.TimeoutExpired:
            return {"status": f"timed out after {timeout} s"}
        if r.returncode != 0:
            return {"status": "failed: " + (r.stderr.strip().splitlines() or ["?"])[-1]}
        res = json.loads(r.stdout.strip().splitlines()[-1])
        res["status"] = "ok" if with_kr else "ok (KR skipped: n × n matrices)"
        return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join(MODELS))
    ap.add_argument("--no-r", dest="r", action="store_false")
    ap.add_argument("--r-timeout", type=float, default=3600)
    ap.add_argument("--kr-max-n", type=int, default=20_000)
    args = ap.parse_args()
    results = {}
    for name in args.only.split(","):
        _, formula, df, _ = MODELS[name]()
        print(f"{name}: {formula} (n = {len(df):,})", flush=True)
        rec = {"formula": formula, "mixedjax": time_mixedjax(formula, df)}
        mjr = rec["mixedjax"]
        print(f"  mixedjax  fit {mjr['fit_s']:.2f} s{' (singular)' if mjr['singular'] else ''}; Satterthwaite "
              f"{_fmt(mjr, 'satterthwaite')}; Kenward-Roger {_fmt(mjr, 'kenward_roger')}", flush=True)
        if args.r:
            lt = time_lmertest(formula, df, args.r_timeout, len(df) <= args.kr_max_n)
            rec["lmerTest"] = lt
            print(f"  lmerTest  {lt}", flush=True)
            if lt.get("satterthwaite_s") and "satterthwaite_warm_s" in mjr:
                rec["satterthwaite_speedup_warm"] = lt["satterthwaite_s"] / mjr["satterthwaite_warm_s"]
                print(f"  Satterthwaite: {rec['satterthwaite_speedup_warm']:.1f}x lmerTest (warm)", flush=True)
        results[name] = rec
    (HERE / "inference_results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
