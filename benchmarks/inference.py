"""Satterthwaite and Kenward–Roger coefficient tables: mixedjax beside lmerTest / pbkrtest (through Rscript).

    python benchmarks/inference.py [--only NAME[,NAME...]] [--no-r] [--r-timeout SECONDS] [--kr-max-n N] [--fresh]
                                   [--no-new-process] [--keep-cache]

Models (benchmarks/models.py): sleepstudy (a smoke test), insteval_seed, kb07, d3; every one fitted by REML. For
mixedjax each table is timed twice: "cold" on the first model object of the process (compilation included) and
"warm" on a second model object of the same shape (a fresh refit from the same θ, so the derivatives are computed
again but not compiled). lmerTest's Satterthwaite is timed after lme4's fit as ``as_lmerModLmerTest(m)`` (its numDeriv
derivatives, which ``lmerTest::lmer`` computes after the fit) plus ``summary(m, ddf = "Satterthwaite")``, and
``summary(m, ddf = "Kenward-Roger")`` (pbkrtest) after that; pbkrtest builds n × n matrices, so KR in R is skipped above ``--kr-max-n``
observations (default 20,000: InstEval's 73,421² doubles are 43 GB). Writes benchmarks/inference_results.json and
the "## Inference" section of benchmarks/RESULTS.md (report.py keeps it when it rewrites the file).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")  # as harness.py

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
suppressMessages({library(lme4); library(lmerTest)})
df <- read.csv(args[1])
for (f in strsplit(args[3], ",")[[1]]) if (nzchar(f)) df[[f]] <- factor(df[[f]])
t0 <- proc.time()[["elapsed"]]
m <- lme4::lmer(as.formula(args[2]), data = df, REML = TRUE)
fit_s <- proc.time()[["elapsed"]] - t0
# lmerTest's Satterthwaite: its numDeriv Hessian and Jacobian (as_lmerModLmerTest, which lmerTest::lmer runs after
# the fit), then the table
t0 <- proc.time()[["elapsed"]]
mt <- as_lmerModLmerTest(m)
s <- coef(summary(mt, ddf = "Satterthwaite"))
sat_s <- proc.time()[["elapsed"]] - t0
# this line first, so that a KR that runs past the timeout keeps the Satterthwaite time
cat(sprintf('{"fit_s": %.4f, "satterthwaite_s": %.4f, "kenward_roger_s": null}\n', fit_s, sat_s))
kr_s <- NA
if (as.logical(args[4])) {
  t0 <- proc.time()[["elapsed"]]
  k <- coef(summary(mt, ddf = "Kenward-Roger"))
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


def time_new_process(name: str, timeout: float) -> dict:
    """The same model in a new Python process, after this one has fitted it: the fit and each table's first call
    there, reading the traced programs (fitting.traces) and XLA's compiles (JAX's persistent cache) from disk."""
    try:
        r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", name], capture_output=True,
                           text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"status": f"timed out after {timeout} s"}
    if r.returncode != 0:
        return {"status": "failed: " + (r.stderr.strip().splitlines() or ["?"])[-1]}
    return dict(json.loads(r.stdout.strip().splitlines()[-1]), status="ok")


def child(name: str) -> None:
    import mixedjax as mj

    _, formula, df, _ = MODELS[name]()
    t0 = time.perf_counter()
    m = mj.lmm(formula, df, reml=True)
    out = {"fit_s": time.perf_counter() - t0}
    for key, ddf in (("satterthwaite", "satterthwaite"), ("kenward_roger", "kenward-roger")):
        t0 = time.perf_counter()
        try:
            m.coeftable(ddf=ddf)
            out[f"{key}_s"] = time.perf_counter() - t0
        except mj.MixedjaxError:
            out[f"{key}_s"] = None
    print(json.dumps(out))


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
        except subprocess.TimeoutExpired as err:
            out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
            lines = [x for x in out.strip().splitlines() if x.startswith("{")]
            if not lines:
                return {"status": f"timed out after {timeout} s"}
            return dict(json.loads(lines[-1]), status=f"ok (KR timed out: {timeout:.0f} s in all)")
        if r.returncode != 0:
            return {"status": "failed: " + (r.stderr.strip().splitlines() or ["?"])[-1]}
        res = json.loads(r.stdout.strip().splitlines()[-1])
        res["status"] = "ok" if with_kr else "ok (KR skipped: n × n matrices)"
        return res


def _s(rec, key):
    v = rec.get(key)
    return "–" if v is None else f"{v:.3g}"


def section(results: dict) -> str:
    """The "## Inference" section of RESULTS.md from this script's records."""
    L = [SECTION + " (issue 16: Satterthwaite and Kenward–Roger tables, REML)\n",
         "`python benchmarks/inference.py`: mixedjax's `m.coeftable(ddf=...)` cold (the first model of the process: "
         "compilation included) and warm (a second model of the same shape); lmerTest's Satterthwaite "
         "(`as_lmerModLmerTest` + `summary`, after lme4's fit) and pbkrtest's KR in the same run. Seconds, wall "
         "clock; the machine's load average after each model is in the last column.\n",
         "\"new process\" is the same model in a second Python process started after the first one: its fit and "
         "each table's first call, reading the traced programs (`fitting/traces.py`) and XLA's compiles (JAX's "
         "persistent cache) back from disk.\n",
         "| model | n | mixedjax fit | Satterthwaite cold / warm | KR cold / warm | new process: fit / Satt. / KR | "
         "lmerTest Satt. | pbkrtest KR | Satt. warm speed-up | load |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for name, rec in results.items():
        mj_, lt = rec["mixedjax"], rec.get("lmerTest", {})
        sat = mj_.get("satterthwaite_error") or f"{_s(mj_, 'satterthwaite_cold_s')} / {_s(mj_, 'satterthwaite_warm_s')}"
        kr = mj_.get("kenward_roger_error") or f"{_s(mj_, 'kenward_roger_cold_s')} / {_s(mj_, 'kenward_roger_warm_s')}"
        sp = rec.get("satterthwaite_speedup_warm")
        lts = _s(lt, "satterthwaite_s") if lt.get("satterthwaite_s") is not None else lt.get("status", "not run")
        st = lt.get("status", "")
        ltk = (_s(lt, "kenward_roger_s") if lt.get("kenward_roger_s") is not None else "timed out" if "timed out" in st
               else "skipped (n × n)" if "skipped" in st else "not run")
        npr = rec.get("new_process", {})
        new = (f"{_s(npr, 'fit_s')} / {_s(npr, 'satterthwaite_s')} / {_s(npr, 'kenward_roger_s')}"
               if npr.get("status") == "ok" else npr.get("status", "not run"))
        L.append(f"| {name} | {mj_['n']:,} | {mj_['fit_s']:.2f}{' (singular)' if mj_['singular'] else ''} | {sat} | "
                 f"{kr} | {new} | {lts} | {ltk} | {'–' if sp is None else f'{sp:.1f}×'} | "
                 f"{rec['load_after'][0]:.1f} |")
    L.append("")
    L.extend(targets(results))
    return "\n".join(L) + "\n"


def targets(results: dict) -> list[str]:
    """The issue's speed targets on InstEval, each met or not in these rows."""
    rec = results.get("insteval_seed")
    if not rec:
        return ["Targets (InstEval seed model): not run."]
    mj_, sp, npr = rec["mixedjax"], rec.get("satterthwaite_speedup_warm"), rec.get("new_process", {})
    out = ["Targets (issue 16, InstEval seed model, this run):", ""]
    if sp is None:
        out.append("- Satterthwaite ≥ 20× lmerTest (warm): lmerTest not run.")
    else:
        out.append(f"- Satterthwaite ≥ 20× lmerTest (warm): {sp:.1f}× — {'met' if sp >= 20 else 'not met'}.")
    for label, secs in (("cold (first process)", mj_.get("kenward_roger_cold_s")),
                        ("new process", npr.get("kenward_roger_s")), ("warm", mj_.get("kenward_roger_warm_s"))):
        if secs is not None:
            out.append(f"- Kenward–Roger in under a minute, {label}: {secs:.1f} s — {'met' if secs < 60 else 'not met'}.")
    return out


SECTION = "\n## Inference"


def write_section(results: dict, path: Path) -> None:
    """Replace (or append) this script's section of RESULTS.md, up to the next section."""
    from harness import replace_section

    replace_section(path, SECTION, section(results))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join(MODELS))
    ap.add_argument("--no-r", dest="r", action="store_false")
    ap.add_argument("--r-timeout", type=float, default=3600)
    ap.add_argument("--kr-max-n", type=int, default=20_000)
    ap.add_argument("--fresh", dest="keep", action="store_false", help="drop the other models' earlier rows")
    ap.add_argument("--no-new-process", dest="new_process", action="store_false")
    ap.add_argument("--child", help=argparse.SUPPRESS)  # one model in a new process (time_new_process)
    ap.add_argument("--keep-cache", action="store_true", help="use MIXEDJAX_CACHE_DIR as set (default: a fresh one, "
                    "so that 'cold' includes every trace and compile)")
    args = ap.parse_args()
    if args.child:
        return child(args.child)
    if not args.keep_cache:  # before mixedjax is imported; the new-process runs inherit it
        os.environ["MIXEDJAX_CACHE_DIR"] = tempfile.mkdtemp(prefix="mixedjax-bench-")
    out = HERE / "inference_results.json"
    # a run of some models updates their rows and keeps the others' (each row says its load)
    results = json.loads(out.read_text()) if out.exists() and args.keep else {}
    for name in args.only.split(","):
        _, formula, df, _ = MODELS[name]()
        print(f"{name}: {formula} (n = {len(df):,})", flush=True)
        rec = {"formula": formula, "mixedjax": time_mixedjax(formula, df)}
        mjr = rec["mixedjax"]
        print(f"  mixedjax  fit {mjr['fit_s']:.2f} s{' (singular)' if mjr['singular'] else ''}; Satterthwaite "
              f"{_fmt(mjr, 'satterthwaite')}; Kenward-Roger {_fmt(mjr, 'kenward_roger')}", flush=True)
        if args.new_process:
            rec["new_process"] = npr = time_new_process(name, args.r_timeout)
            print(f"  new process  {npr}", flush=True)
        if args.r:
            lt = time_lmertest(formula, df, args.r_timeout, len(df) <= args.kr_max_n)
            rec["lmerTest"] = lt
            print(f"  lmerTest  {lt}", flush=True)
            if lt.get("satterthwaite_s") and "satterthwaite_warm_s" in mjr:
                rec["satterthwaite_speedup_warm"] = lt["satterthwaite_s"] / mjr["satterthwaite_warm_s"]
                print(f"  Satterthwaite: {rec['satterthwaite_speedup_warm']:.1f}x lmerTest (warm)", flush=True)
        rec["load_after"] = os.getloadavg()
        results[name] = rec
        out.write_text(json.dumps(results, indent=1))
        write_section(results, HERE / "RESULTS.md")


if __name__ == "__main__":
    main()
