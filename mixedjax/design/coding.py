"""How each fixed-effect column was coded: its formula term and the factor levels it indicates.

Hypothesis tests per term (type I and III F tables) need to know which columns of X belong to which formula term
and, for type III, which level of which factor each column indicates. This is read once from formulaic's model
spec on the host; nothing here depends on θ.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class FixedCoding(NamedTuple):
    """The coding of the fixed-effect columns that were kept.

    terms: the formula's terms in order, as lme4 labels them ("Date", "Date:Variety"); the intercept is not one.
    column_terms: per column of X, its term's label ("(Intercept)" for the intercept column).
    column_factors: per column of X, the variables of its term in order, each (variable, level) for a categorical
        variable (the level this column indicates) or (variable, None) for a numeric one.
    term_variables: per term in ``terms``, the variables it is built from.
    levels: (variable, all its levels in coding order, first one the baseline) for every categorical variable.
    intercept: whether X has an intercept column.
    """

    terms: tuple[str, ...]
    column_terms: tuple[str, ...]
    column_factors: tuple[tuple[tuple[str, str | None], ...], ...]
    term_variables: tuple[tuple[str, ...], ...]
    levels: tuple[tuple[str, tuple[str, ...]], ...]
    intercept: bool


_SEGMENT = re.compile(r"^(?P<var>.*)\[(?:T\.)?(?P<level>.*)\]$")


def fixed_coding(spec, raw_columns, keep) -> FixedCoding:
    """From formulaic's ModelSpec, its raw column names and the indices of the columns kept (full rank)."""
    col_term: dict[int, str] = {}
    terms, term_vars = [], []
    for term, idx in spec.term_indices.items():
        label = str(term)
        for j in idx:
            col_term[j] = "(Intercept)" if label == "1" else label
        if label != "1":
            terms.append(label)
            term_vars.append(tuple(str(f) for f in term.factors))
    levels = []
    for name, (kind, state) in spec.encoder_state.items():
        if str(getattr(kind, "value", kind)) == "categorical":
            levels.append((str(name), tuple(str(v) for v in state.get("categories", ()))))
    cat = {v for v, _ in levels}
    column_factors = []
    for j in keep:
        label = col_term[j]
        if label == "(Intercept)":
            column_factors.append(())
            continue
        segments = str(raw_columns[j]).split(":")
        factors = []
        for seg in segments:
            m = _SEGMENT.match(seg)
            if m and m.group("var") in cat:
                factors.append((m.group("var"), m.group("level")))
            else:
                factors.append((seg, None))
        column_factors.append(tuple(factors))
    return FixedCoding(
        terms=tuple(terms),
        column_terms=tuple(col_term[j] for j in keep),
        column_factors=tuple(column_factors),
        term_variables=tuple(term_vars),
        levels=tuple(levels),
        intercept=any(col_term[j] == "(Intercept)" for j in keep),
    )
