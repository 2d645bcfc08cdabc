"""Run ../shared/tools/wave2_parity.py with the data and references read as R wrote them.

    python scripts/wave2_parity_as_r_reads.py AREA      # infer, predict, engine, glmm, batch, implicit

The tool itself misreads two things, so some of its lines fail before mixedjax's numbers are compared
(docs/inference.md, "The second-wave parity tool"):
- pandas (2.0 and later) reads the text ``None`` as a missing value by default, and alfalfa's ``Date`` has a level
  named "None": 18 of its 72 rows arrive as missing and are dropped, so the fit is of other data than lme4's.
  Here CSV files are read with only ``NA`` and empty fields missing, as R's ``read.csv`` does.
- R's JSON writer stores a one-element vector as a scalar, so a scalar term's ``columns`` is the string
  "(Intercept)", and the tool reshapes the conditional variances by the length of that string (11). Here such
  scalars become one-element lists.
Nothing else is changed: the checks, tolerances and the mixedjax calls are the tool's own.
"""

import functools
import json
import sys
from pathlib import Path

import pandas as pd

TOOL = Path(__file__).resolve().parents[1].parent / "shared" / "tools" / "wave2_parity.py"

_read_csv, _load = pd.read_csv, json.load


def _as_list(x):
    return [x] if isinstance(x, str) else x


def _load_unboxed(f, *args, **kw):
    """json.load, with the condVar entries' one-element vectors back as lists."""
    d = _load(f, *args, **kw)
    if isinstance(d, dict):
        for case in d.get("lmm", []):
            for fit in (case.get("ML") or {}, case.get("REML") or {}):
                for g in fit.get("condvar") or []:
                    g["columns"], g["levels"] = _as_list(g["columns"]), _as_list(g["levels"])
    return d


def main() -> None:
    pd.read_csv = functools.partial(_read_csv, keep_default_na=False, na_values=["NA", ""])
    json.load = _load_unboxed
    sys.argv = [str(TOOL)] + sys.argv[1:]
    code = compile(TOOL.read_text(), str(TOOL), "exec")
    exec(code, {"__name__": "__main__", "__file__": str(TOOL)})


if __name__ == "__main__":
    main()
