"""Model columns from the atoms of a formula, for the fit's data and, replaying the fit's state, for new data.

Each atom (a column or a call such as ``poly(x, 2)``) is evaluated by the formula language; the model matrix is
built from those values with R's coding (design/model_matrix.py). The fit keeps, per atom, the recorded state of its
stateful calls and its final levels, and per model part its term codings: :func:`encode_new` encodes new rows
exactly as the fit's rows were encoded.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError
from ..formula.evaluate import Recorded, run
from ..formula.functions import Listed
from ..formula.language import Checked, names_used
from ..formula.terms import Atom, ModelFormula
from ..formula.values import Factor, Matrix, factor_of, missing_rows, recode, used_codes, value_key
from .model_matrix import TermCoding, build_columns, plan_terms


class AtomState(NamedTuple):
    """What the fit learned about one atom."""

    atom: Atom
    recorded: Recorded  # state of its stateful calls (levels, poly and scale coefficients)
    levels: tuple[str, ...] | None  # the factor levels used in the fit (None: numbers)
    suffixes: tuple[str, ...]  # column suffixes of a matrix atom (poly: "1", "2"); () for one column
    ordered: bool = False  # an ordered factor in the fit: new data are coded by its polynomial contrasts too


class PartEncoding(NamedTuple):
    """One model part (the fixed part or one random-effects model expression) as the fit built it."""

    model: ModelFormula
    terms: tuple[TermCoding, ...]  # R's coding of each term
    keep: np.ndarray  # indices of the model-matrix columns kept (rank-deficient ones dropped)


class TermEncoding(NamedTuple):
    """A random-effects term of the design: its parts (merged on one grouping factor) and grouping columns."""

    parts: tuple[PartEncoding, ...]
    group: tuple[str, ...]
    levels: tuple[str, ...]


class Encoding(NamedTuple):
    """Everything needed to encode new data as the fit's data were encoded."""

    atoms: tuple[AtomState, ...]
    fixed: PartEncoding
    terms: tuple[TermEncoding, ...]  # in the order of Design.terms
    offsets: tuple[tuple[Checked, Recorded], ...]


class NewRows(NamedTuple):
    """New data encoded for prediction; every array has one row per row of ``newdata``."""

    X: np.ndarray  # (m, p) fixed-effects columns, the fit's columns in the fit's order
    offset: np.ndarray | None  # (m,) the formula's offset, None when the formula has none
    z: tuple[np.ndarray, ...]  # per random-effects term (Design.terms order): (m, s_k) model values
    codes: tuple[np.ndarray, ...]  # per term: (m,) level index in the fit, -1 for a level not in the fit or missing
    missing: np.ndarray  # (m,) True where a value the fixed part or offset needs is missing (X is NaN there)
    rows: np.ndarray  # index labels of newdata


def _as_factor(value, levels: tuple[str, ...] | None) -> Factor:
    f = value if isinstance(value, Factor) else factor_of(value)
    return f if levels is None else recode(f, levels)


def _checked_value(state: AtomState, value, n: int):
    """An atom's value in the form the fit had: a Factor on the fit's levels, numbers, or a Matrix."""
    display = state.atom.display
    if isinstance(value, (str, Listed)):
        raise FormulaError(f"'{display}' is a constant (a string or c(...)), not a column; a term needs numbers or a factor")
    if state.levels is not None:
        if isinstance(value, Matrix):
            raise DataError(f"'{display}' gives several columns in the new data but one factor in the fit")
        f = _as_factor(value, state.levels)
        if (f.codes == -2).any():
            raise DataError(
                f"'{display}' has levels in the new data that the fit did not have (fit's levels: "
                f"{', '.join(state.levels[:20])}{', ...' if len(state.levels) > 20 else ''}); a fixed effect of an "
                "unseen level cannot be predicted. Drop those rows or give them one of the fit's levels."
            )
        return f._replace(ordered=state.ordered)  # the fit's contrasts, whatever the new column's dtype
    if isinstance(value, Factor) or (isinstance(value, np.ndarray) and value.dtype == bool):
        raise DataError(f"'{display}' gives a factor in the new data but numbers in the fit")
    if isinstance(value, Matrix):
        if len(state.suffixes) != value.values.shape[1]:
            raise DataError(f"'{display}' gives {value.values.shape[1]} columns, the fit had {len(state.suffixes)}")
        return value
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()


class AtomValues(NamedTuple):
    """The evaluated atoms on some rows: value, name and column suffixes per placeholder key."""

    values: dict
    displays: dict
    suffixes: dict
    n: int


def _atom_values(states: tuple[AtomState, ...], values: list, n: int) -> AtomValues:
    return AtomValues(
        {s.atom.key: v for s, v in zip(states, values)},
        {s.atom.key: s.atom.display for s in states},
        {s.atom.key: s.suffixes for s in states},
        n,
    )


def fit_atoms(atoms: tuple[Atom, ...], data: pd.DataFrame, complete: np.ndarray, reading):
    """Evaluate every atom on all rows of ``data`` (state as R computes it, before rows with missing values are
    dropped), keep the ``complete`` rows. Returns (AtomValues, AtomStates). ``reading(atom)`` is the context that
    adds the atom's place in the formula to an error."""
    states, values = [], []
    n = int(complete.sum())
    for atom in atoms:
        with reading(atom):
            value, recorded = run(atom.checked, data)
            levels, suffixes = None, ()
            if isinstance(value, Matrix):
                value = Matrix(value.values[complete], value.suffixes)
                suffixes = value.suffixes
            elif isinstance(value, np.ndarray) and value.dtype == bool:
                # R's logical: always the levels FALSE and TRUE (contrasts<- of a logical), so a column that is
                # TRUE on every row used gives a constant column, dropped as collinear, not a one-level factor
                levels = ("FALSE", "TRUE")
                f = factor_of(value, levels)
                value = f._replace(codes=f.codes[complete])
            elif isinstance(value, Factor):
                f = factor_of(value)
                f = f._replace(codes=f.codes[complete])
                levels = tuple(f.levels[i] for i in used_codes(f.codes, len(f.levels)))  # levels absent from the rows used are not model levels
                value = recode(f, levels)
            elif isinstance(value, np.ndarray):
                value = value[complete]
            state = AtomState(atom, recorded, levels, suffixes, isinstance(value, Factor) and value.ordered)
            values.append(_checked_value(state, value, n))
        states.append(state)
    return _atom_values(tuple(states), values, n), tuple(states)


def apply_atoms(states: tuple[AtomState, ...], data: pd.DataFrame) -> AtomValues:
    """The atoms on new data, with the fit's state."""
    values = []
    for state in states:
        value, _ = run(state.atom.checked, data, state.recorded)
        values.append(_checked_value(state, value, len(data)))
    return _atom_values(states, values, len(data))


def part_matrix(model: ModelFormula, av: AtomValues, terms: tuple[TermCoding, ...] | None = None):
    """(model matrix, column names, term codings) of one part; the codings are planned when not given (the fit)."""
    if terms is None:
        terms = plan_terms(model.placeholder, av.values, model.atoms)
    X, names = build_columns(terms, av.values, av.displays, av.suffixes, av.n)
    return X, names, terms


def _frame_levels(data: pd.DataFrame, group: tuple[str, ...]) -> np.ndarray:
    """The grouping key of each row of new data, as the fit's level names (a combination joined by ':')."""
    parts = []
    for v in group:
        col = data[v]
        vals = col.astype(object).to_numpy()
        missing = col.isna().to_numpy()
        parts.append((np.array([value_key(str(x)) for x in vals], dtype=object), missing))
    keys = parts[0][0]
    missing = parts[0][1]
    for k, miss in parts[1:]:
        keys = np.array([f"{a}:{b}" for a, b in zip(keys, k)], dtype=object)
        missing = missing | miss
    keys[missing] = None
    return keys


def group_codes_new(levels: tuple[str, ...], group: tuple[str, ...], data: pd.DataFrame) -> np.ndarray:
    index = {":".join(value_key(p) for p in lv.split(":")) if len(group) > 1 else value_key(lv): i
             for i, lv in enumerate(levels)}
    keys = _frame_levels(data, group)
    return np.array([index.get(k, -1) if k is not None else -1 for k in keys], dtype=np.int64)


def _matrix(part: PartEncoding, av: AtomValues) -> np.ndarray:
    X, _, _ = part_matrix(part.model, av, part.terms)
    return X[:, part.keep]


def _missing_for(states, keys, data: pd.DataFrame) -> np.ndarray:
    """Rows with a missing value in a column read by the atoms ``keys``: a value computed from it (a logical's NA
    read as FALSE, x > 2 at a NaN x) is not a prediction, and the fit drops such rows too."""
    names = set().union(*(names_used(s.atom.checked.tree) for s in states if s.atom.key in keys))
    return missing_rows(data, names)


def encode_new(design, newdata, *, random: bool = True) -> NewRows:
    """Encode ``newdata`` as the fit's data were encoded: the same contrasts, levels, transforms and
    ``poly``/``scale`` coefficients. A factor level of the fixed part that the fit did not have is a DataError;
    a grouping level the fit did not have gets code -1. ``random=False`` skips the random-effects terms (their
    columns need not be in ``newdata``)."""
    from .input import as_frame

    enc: Encoding = design.encoding
    data = as_frame(newdata)
    data = data.set_axis([str(c) for c in data.columns], axis=1)
    needed = {s.atom.key for s in enc.atoms if s.atom.key in set(enc.fixed.model.atoms)}
    if random:
        needed |= {k for t in enc.terms for p in t.parts for k in p.model.atoms}
    states = tuple(s for s in enc.atoms if s.atom.key in needed)
    av = apply_atoms(states, data)
    X = _matrix(enc.fixed, av)
    missing = np.isnan(X).any(axis=1) | _missing_for(states, set(enc.fixed.model.atoms), data)
    offset = None
    if enc.offsets:
        offset = np.zeros(len(data))
        for checked, recorded in enc.offsets:
            value, _ = run(checked, data, recorded)
            offset = offset + np.asarray(value, dtype=np.float64)
            missing |= missing_rows(data, names_used(checked.tree))
        missing |= np.isnan(offset)
    zs, codes = [], []
    if random:
        for t in enc.terms:
            missing_cols = [v for v in t.group if v not in data.columns]
            if missing_cols:
                raise DataError(f"the new data have no column '{missing_cols[0]}' (a grouping factor of the model); "
                                "add it, or predict without the random effects")
            z = np.column_stack([_matrix(p, av) for p in t.parts])
            # the term's rows with a missing value it reads are NaN, so a prediction that uses the term drops them
            z[_missing_for(states, {k for p in t.parts for k in p.model.atoms}, data)] = np.nan
            zs.append(z)
            codes.append(group_codes_new(t.levels, t.group, data))
    return NewRows(X=X, offset=offset, z=tuple(zs), codes=tuple(codes), missing=missing, rows=np.asarray(data.index))
