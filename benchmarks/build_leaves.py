"""Check that a change to the host build leaves every built array as it was: hash every leaf of the Design (its
arrays and each term's fields), the Layout (its repr), Arrays, Plan and ModelData of a list of builds, in the
checkout that PYTHONPATH selects, then compare two such files.

    PYTHONPATH=/path/to/old python benchmarks/build_leaves.py hash old.json
    PYTHONPATH=$PWD        python benchmarks/build_leaves.py hash new.json
    python benchmarks/build_leaves.py compare old.json new.json

A case is a benchmark model (benchmarks/models.py), optionally with ``:nomerge`` or a fill mode (``kb07:pairs``),
or one of the bundled-data cases below (``--cases``). A leaf's hash covers its dtype, shape and bytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DEFAULT = ("sleepstudy,penicillin,insteval_seed,insteval_three,insteval_seed:nomerge,kb07,kb07:nomerge,kb07:pairs,"
           "kb07:dense,kb07:mixed,penicillin:mixed,weighted,pastes,dyestuff,d3,d3:nomerge")


def _hash(x) -> str:
    import numpy as np

    a = np.asarray(x)
    if a.dtype == object:
        return hashlib.sha256(repr(a.tolist()).encode()).hexdigest()
    return hashlib.sha256(f"{a.dtype}{a.shape}".encode() + np.ascontiguousarray(a).tobytes()).hexdigest()


def leaves(problem) -> dict[str, str]:
    import jax
    import numpy as np

    out = {"layout": hashlib.sha256(repr(problem.layout).encode()).hexdigest(), "yscale": repr(problem.yscale)}
    for name, tree in zip(("arrays", "plan", "data"), problem.host):
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            out[f"{name}{jax.tree_util.keystr(path)}"] = _hash(leaf)
    design = problem.design
    for f in dataclasses.fields(design):
        v = getattr(design, f.name)
        if isinstance(v, np.ndarray):
            out[f"design.{f.name}"] = _hash(v)
    for i, t in enumerate(design.terms):
        for f in dataclasses.fields(t):
            v = getattr(t, f.name)
            out[f"term{i}.{f.name}"] = _hash(v) if isinstance(v, np.ndarray) else repr(v)
    return out


def build(case: str):
    import numpy as np

    import mixedjax as mj
    import models

    if case == "weighted":
        df = mj.dataset("sleepstudy")
        w = np.random.default_rng(1).uniform(0.5, 2.0, len(df))
        return mj.Problem.build("reaction ~ 1 + days + (1 + days | subj)", df, weights=w)
    if case == "pastes":
        return mj.Problem.build("strength ~ 1 + (1 | batch) + (1 | cask)", mj.dataset("pastes"))
    if case == "dyestuff":
        return mj.Problem.build("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff"))
    base, _, opt = case.partition(":")
    _, formula, df, _ = getattr(models, base)()
    kw = {"merge": False} if opt == "nomerge" else ({"fill": opt} if opt else {})
    return mj.Problem.build(formula, df, **kw)


def compare(a: dict, b: dict) -> int:
    """Print every case and leaf that differs; returns how many."""
    bad = total = 0
    for case in sorted(set(a) | set(b)):
        ka, kb = a.get(case, {}), b.get(case, {})
        for k in sorted(set(ka) | set(kb)):
            total += 1
            if ka.get(k) != kb.get(k):
                print(f"{case}: {k} differs")
                bad += 1
    print(f"{len(set(a) | set(b))} cases, {total} leaves, {bad} different")
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("hash", "compare"))
    ap.add_argument("files", nargs="+")
    ap.add_argument("--cases", default=DEFAULT)
    args = ap.parse_args()
    if args.mode == "compare":
        a, b = (json.load(open(f)) for f in args.files[:2])
        sys.exit(1 if compare(a, b) else 0)
    warnings.simplefilter("ignore")  # rank and convergence warnings of the models say nothing here
    import mixedjax as mj

    res = {case: leaves(build(case)) for case in args.cases.split(",")}
    with open(args.files[0], "w") as f:
        json.dump(res, f)
    print(mj.__file__, sum(len(v) for v in res.values()), "leaves")


if __name__ == "__main__":
    main()
