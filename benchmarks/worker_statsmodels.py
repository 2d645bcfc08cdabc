"""The statsmodels MixedLM worker, run by run.py in a subprocess with a time limit.

    python benchmarks/worker_statsmodels.py DATA.pkl SPEC_JSON OUT.json

SPEC_JSON is a models.py statsmodels spec: one grouping factor (``groups``, ``re_formula``) or crossed scalar
terms as variance components in one all-observations group (``vc_formula``). One fit by ML, from the DataFrame.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path


def main(data: str, spec_json: str, out: str) -> None:
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


if __name__ == "__main__":
    main(*sys.argv[1:4])
