"""Command line: ``python -m mixedjax [fit FORMULA --data NAME_OR_CSV [--reml] [--verbose] [--hessian]
[--optimizer lbfgs|bobyqa] | datasets]``.

With no arguments it runs the seed walkthrough on the bundled datasets.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import mixedjax as mj
from mixedjax.fitting.loop import OPTIMIZERS


def _load(data: str):
    if data.lower().lstrip(":") in mj.datasets():
        return mj.dataset(data)
    if os.path.isfile(data):
        import pandas as pd

        try:
            df = pd.read_csv(data, keep_default_na=False, na_values=["NA", ""])  # R's read.csv: only NA is missing
        except Exception as err:  # pandas raises many kinds
            raise mj.DataError(f"cannot read CSV file {data!r}: {err}") from err
        for col in df.columns:
            if df[col].dtype == object or pd.api.types.is_string_dtype(df[col]):
                df[col] = df[col].astype("category")
        return df
    raise mj.DataError(
        f"--data {data!r} is neither a bundled dataset ({', '.join(mj.datasets())}) nor an existing CSV file"
    )


def _show(label: str, a) -> None:
    print(f"{label}:")
    print(np.array2string(np.asarray(a), precision=8, max_line_width=110, suppress_small=False))


def _fit(formula: str, data, *, reml=False, verbose=False, derivatives=False, optimizer="lbfgs"):
    t0 = time.perf_counter()
    m = mj.lmm(formula, data, reml=reml, verbose=verbose, optimizer=optimizer)
    wall = time.perf_counter() - t0
    print(m)
    evals = f"{m.optsum.feval} evaluation{'' if m.optsum.feval == 1 else 's'}"
    print(f"fit time: {wall:.2f} s (including compilation); {evals}, {m.optsum.status}")
    if derivatives:
        _show("Gradient (fixed-σ objective, at the fit)", m.gradient())
        _show("Hessian (fixed-σ objective, at the fit)", m.hessian())
        _show("Hessian (profiled objective d(θ), at the fit)", m.hessian(profiled=True))
    return m


def walkthrough(quick: bool = False) -> None:
    steps = [
        ("dyestuff: yield ~ 1 + (1 | batch), maximum likelihood", "yield ~ 1 + (1 | batch)", "dyestuff", {}),
        ("dyestuff: the same model by REML, verbose", "yield ~ 1 + (1 | batch)", "dyestuff",
         {"reml": True, "verbose": True}),
        ("dyestuff2: yield ~ 1 + (1 | batch), with gradient and Hessian", "yield ~ 1 + (1 | batch)", "dyestuff2",
         {"derivatives": True}),
        ("sleepstudy: reaction ~ 1 + days + (1 + days | subj), with gradient and Hessian",
         "reaction ~ 1 + days + (1 + days | subj)", "sleepstudy", {"derivatives": True}),
        ("insteval: y ~ 1 + service * dept + (1 | s) + (1 | d)", "y ~ 1 + service * dept + (1 | s) + (1 | d)",
         "insteval", {}),
    ]
    for heading, formula, name, kw in steps[: 4 if quick else 5]:
        print(f"\n=== {heading} ===\n")
        _fit(formula, mj.dataset(name), **kw)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mixedjax", description="Linear mixed-effects models in JAX.")
    sub = p.add_subparsers(dest="cmd")
    f = sub.add_parser("fit", help="fit one model and print its summary")
    f.add_argument("formula", help='lme4 formula, e.g. "yield ~ 1 + (1 | batch)"')
    f.add_argument("--data", required=True, help="bundled dataset name or path to a CSV file")
    f.add_argument("--reml", action="store_true", help="fit by REML (default: maximum likelihood)")
    f.add_argument("--verbose", action="store_true", help="print every objective evaluation")
    f.add_argument("--hessian", action="store_true", help="also print the gradient and Hessians at the fit")
    f.add_argument("--optimizer", choices=OPTIMIZERS, default="lbfgs",
                   help="lbfgs (default: jitted L-BFGS with exact gradients) or bobyqa (NLopt, derivative-free)")
    sub.add_parser("datasets", help="list the bundled datasets")
    args = p.parse_args(argv)
    try:
        if args.cmd is None:
            walkthrough(quick=os.environ.get("MIXEDJAX_EXAMPLES_QUICK") == "1")
        elif args.cmd == "datasets":
            for name in mj.datasets():
                d = mj.dataset(name)
                print(f"{name:12s} {d.shape[0]:7d} rows  {', '.join(d.columns)}")
        else:
            _fit(args.formula, _load(args.data), reml=args.reml, verbose=args.verbose, derivatives=args.hessian,
                 optimizer=args.optimizer)
    except mj.MixedjaxError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
