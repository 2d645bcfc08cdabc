"""Per-stage timing of the objective and its gradient for one benchmark model.

    python benchmarks/profile_stages.py insteval_seed            # objective and value-and-gradient, top 25 XLA ops each
    python benchmarks/profile_stages.py d3 --top 40 --theta 0.5,0.1,0.3,0.5,0.1,0.3,0.5,0.1,0.3

Runs with BLAS on one thread (like run.py), times `jax.jit(deviance)` and `jax.jit(jax.value_and_grad(deviance))`, then
records a few calls of each with JAX's profiler and lists the compiled XLA operations that took the most time, each
with the JAX operation it came from (from the HLO metadata: `jvp(...)` is the forward pass, `transpose(jvp(...))`
the reverse pass). The θ is the start of a fit (λ = I) scaled by 0.6 unless given.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("MIXEDJAX_CACHE_DIR", "")

import argparse  # noqa: E402
import collections  # noqa: E402
import glob  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's mixedjax

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import mixedjax as mj  # noqa: E402
import models  # noqa: E402


def median_time(fn, budget=10.0, most=25) -> float:
    jax.block_until_ready(fn())
    ts = []
    while len(ts) < most and sum(ts) < budget:
        t = time.perf_counter()
        jax.block_until_ready(fn())
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def op_sources(compiled_text: str) -> dict[str, str]:
    """XLA instruction name -> the JAX operation it came from (its op_name metadata)."""
    out = {}
    for m in re.finditer(r"^\s*%?([\w.\-]+) = .*?op_name=\"([^\"]*)\"", compiled_text, flags=re.M):
        out[m.group(1)] = m.group(2)
    return out


def top_ops(fn, compiled_text: str, calls: int, top: int) -> list[tuple[float, str, str]]:
    with tempfile.TemporaryDirectory() as d:
        with jax.profiler.trace(d, create_perfetto_trace=True):
            for _ in range(calls):
                jax.block_until_ready(fn())
        path = sorted(glob.glob(f"{d}/**/*.trace.json.gz", recursive=True))[-1]
        events = json.load(gzip.open(path))
    events = events["traceEvents"] if isinstance(events, dict) else events
    src = op_sources(compiled_text)
    acc = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and "dur" in e and e["name"] in src:
            acc[e["name"]] += e["dur"] / calls / 1e3
    return [(ms, name, src[name]) for name, ms in acc.most_common(top)]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=sorted(models.MODELS))
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--theta", help="comma-separated θ (default: 0.6 × the fit's start)")
    ap.add_argument("--reml", action="store_true")
    args = ap.parse_args(argv)

    _, formula, df, _ = models.MODELS[args.model]()
    t = time.perf_counter()
    problem = mj.Problem.build(formula, df)
    print(f"{args.model}: {formula}\n  build {time.perf_counter() - t:.2f} s")
    lay, arrays = problem.layout, problem.arrays
    print(f"  structured terms {lay.m}, dense block {lay.dz + lay.p + 1} (Z part {lay.dz}), "
          f"fill-in per structured term: heavy columns {lay.nheavy}, pairs {lay.npairs}")
    if args.theta:
        theta = jnp.asarray([float(x) for x in args.theta.split(",")])
    else:
        theta = 0.6 * jnp.asarray(np.concatenate([t.theta0() for t in problem.design.terms]))

    def dev(th, a):  # the arrays are arguments, as in a fit (closed over, XLA would fold them as constants)
        return mj.deviance(th, a, lay, args.reml)

    for label, f in (("objective", jax.jit(dev)), ("value and gradient", jax.jit(jax.value_and_grad(dev)))):
        t = time.perf_counter()
        compiled = f.lower(theta, arrays).compile()
        ct = time.perf_counter() - t
        secs = median_time(lambda: f(theta, arrays))
        print(f"\n{label}: {secs * 1e3:.2f} ms per call (compile {ct:.2f} s)")
        rows = top_ops(lambda: f(theta, arrays), compiled.as_text(), calls=5, top=args.top)
        total = sum(ms for ms, _, _ in rows)
        print(f"  top {len(rows)} XLA operations, {total:.1f} ms of it:")
        for ms, name, src in rows:
            print(f"  {ms:8.2f} ms  {name:32s} {src}")


if __name__ == "__main__":
    main()
