"""How each fixed-effect column was coded: its formula term and the factor levels it indicates.

Hypothesis tests per term (type I and III F tables) need to know which columns of X belong to which formula term
and, for type III, which level of which factor each column indicates. This is read from the design's encoding (the
fixed part's terms with R's coding of each variable, design/model_matrix.py) on the host; nothing here depends on θ.
"""

from __future__ import annotations

from typing import NamedTuple

from ..design.model_matrix import CONTRASTS, NUMERIC, contr_poly
from ..errors import ArgumentError


class FixedCoding(NamedTuple):
    """The coding of the fixed-effect columns that were kept.

    terms: the formula's terms in order, as lme4 labels them ("Date", "Date:Variety"); the intercept is not one.
    column_terms: per column of X, its term's label ("(Intercept)" for the intercept column).
    column_factors: per column of X, the variables of its term in order, each (variable, level) for a categorical
        variable (the level this column indicates) or (variable, None) for a numeric one.
    term_variables: per term in ``terms``, the variables it is built from.
    levels: (variable, all its levels in coding order, first one the baseline) for every categorical variable.
    intercept: whether X has an intercept column.
    rank_deficient: whether linearly dependent columns were dropped from X (type III then works on the rows).
    """

    terms: tuple[str, ...]
    column_terms: tuple[str, ...]
    column_factors: tuple[tuple[tuple[str, str | None], ...], ...]
    term_variables: tuple[tuple[str, ...], ...]
    levels: tuple[tuple[str, tuple[str, ...]], ...]
    intercept: bool
    ordered: tuple[str, ...] = ()  # variables coded by an ordered factor's polynomial contrasts (columns .L, .Q, ...)
    rank_deficient: bool = False  # some columns of the full model matrix were dropped as linearly dependent


def fixed_coding(design) -> FixedCoding:
    """The coding of ``design``'s fixed-effect columns, from its encoding."""
    enc = getattr(design, "encoding", None)
    if enc is None:
        raise ArgumentError("this model's design does not record how its fixed part was coded (no encoding); "
                            "build it with mj.lmm or mj.Problem.build to test terms, or use contrast(L)")
    atoms = {st.atom.key: st for st in enc.atoms}
    col_term, col_factors, terms, term_vars, levels, ordered = [], [], [], [], {}, set()
    for t in enc.fixed.terms:
        if not t.keys:
            col_term.append("(Intercept)")
            col_factors.append(())
            continue
        displays = [atoms[k].atom.display for k in t.keys]
        label = ":".join(displays)
        terms.append(label)
        term_vars.append(tuple(displays))
        combos = [()]
        for k, coding, display in zip(t.keys, t.codings, displays):
            st = atoms[k]
            if coding == NUMERIC:
                opts = [(display + s, None) for s in st.suffixes] if st.suffixes else [(display, None)]
            elif coding == CONTRASTS and st.ordered:  # its columns are polynomials, not levels
                levels[display] = tuple(st.levels)
                ordered.add(display)
                opts = [(display, nm) for nm in contr_poly(len(st.levels))[1]]
            else:
                levels[display] = tuple(st.levels)
                opts = [(display, lv) for lv in (st.levels[1:] if coding == CONTRASTS else st.levels)]
            combos = [a + (b,) for b in opts for a in combos]  # the first variable varies fastest, as the columns
        for c in combos:
            col_term.append(label)
            col_factors.append(c)
    keep = [int(j) for j in enc.fixed.keep]
    return FixedCoding(
        terms=tuple(terms),
        column_terms=tuple(col_term[j] for j in keep),
        column_factors=tuple(col_factors[j] for j in keep),
        term_variables=tuple(term_vars),
        levels=tuple(levels.items()),
        intercept=any(col_term[j] == "(Intercept)" for j in keep),
        ordered=tuple(sorted(ordered)),
        rank_deficient=len(keep) < len(col_term),
    )
