"""Shared loading of the inference reference values (tests/reference/lme4_inference.json, copied from lme4,
lmerTest and pbkrtest output) and their datasets, for the tests/test_inference*.py, test_profile.py, test_condvar.py
files."""

import functools
import json
from pathlib import Path

import pandas as pd

import mixedjax as mj

REF = Path(__file__).resolve().parent / "reference"


@functools.cache
def reference():
    with open(REF / "lme4_inference.json", encoding="utf-8") as fh:
        return json.load(fh)


def case(case_id: str) -> dict:
    return next(c for c in reference()["lmm"] if c["id"] == case_id)


def lrt_case(case_id: str) -> dict:
    return next(c for c in reference()["lrt"] if c["id"] == case_id)


@functools.cache
def data(name: str) -> pd.DataFrame:
    if name == "alfalfa":  # not bundled; Date has a level called "None", which must stay a level
        df = pd.read_csv(REF / "alfalfa.csv", dtype=str, keep_default_na=False)
        df["Yield"] = df["Yield"].astype(float)
        for c in ("Variety", "Date", "Block"):
            df[c] = df[c].astype("category")
        return df
    return mj.dataset(name)


@functools.cache
def fitted(case_id: str, reml: bool):
    c = case(case_id)
    return mj.lmm(c["formula"], data(c["data"]), reml=reml)
