"""Likelihood-ratio tests of the random-effects terms, one deletion or reduction at a time (lmerTest's ``ranova``).

For each random-effects term as lme4 lists them (findbars: ``/`` and ``||`` expanded), in lme4's order: a term with
only an intercept, ``(1 | g)``, is removed; otherwise (``reduce_terms=True``) each of its droppable model terms (R's
drop.scope: those no other term of the expression contains) is removed in turn, and an expression left with no terms
becomes ``(1 | g)`` (lmerTest's get_newforms; ``(0 + x | g)`` is so reduced to ``(1 | g)`` too). With
``reduce_terms=False`` every term is removed whole. Each reduced model is fitted with the model's own criterion
(REML or ML, as lmerTest: no refit by ML) on the same rows; a model left with no random effects is the linear model,
with R's logLik.lm (``REML=TRUE`` for a REML fit). The reduced designs are made from the fitted design's own columns
(no data are needed again): a term's columns are split by the model terms that made them.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np

from ..design.model_matrix import CONTRASTS, NUMERIC
from ..display.tables import TestTable
from ..errors import ArgumentError
from .lazy import scipy_module as _scipy


def _bar_text(expr: str, group: str) -> str:
    """lme4's deparsed bar, e.g. '1 + sens2 | Consumer' (R puts one space around + and |)."""
    e = re.sub(r"\s*([+|])\s*", r" \1 ", " ".join(expr.split())).strip()
    return f"{e} | {group}"


def _part_terms(design, k: int, i: int):
    """The model terms of part i of design term k: [(label, variables, coding kinds, column indices in the part)]
    and whether the part has an intercept."""
    enc = design.encoding
    part = enc.terms[k].parts[i]
    atoms = {st.atom.key: st for st in enc.atoms}
    out, at, intercept = [], 0, False
    for t in part.terms:
        if not t.keys:
            intercept = True
            at += 1
            continue
        width = 1
        for key, coding in zip(t.keys, t.codings):
            st = atoms[key]
            if coding == NUMERIC:
                width *= max(1, len(st.suffixes))
            else:
                width *= len(st.levels) - (1 if coding == CONTRASTS else 0)
        displays = tuple(atoms[key].atom.display for key in t.keys)
        out.append((":".join(displays), frozenset(displays), tuple(t.codings), list(range(at, at + width))))
        at += width
    return out, intercept, at


def _members(design):
    """Per random-effects term as written (design.formula.random order): (design term index, part index, column
    offset in the design term's z, width)."""
    where, seen = [], {}
    index = {t.name: k for k, t in enumerate(design.terms)}
    offsets: dict[str, int] = {}
    for rt in design.formula.random:
        k = index[rt.group_name]
        i = seen.get(rt.group_name, 0)
        seen[rt.group_name] = i + 1
        width = len(design.encoding.terms[k].parts[i].keep)
        off = offsets.get(rt.group_name, 0)
        offsets[rt.group_name] = off + width
        where.append((k, i, off, width))
    return where


def _reduced_design(design, member: int, keep_cols, intercept_only: bool):
    """The design with random-effects term ``member`` (formula order) keeping only ``keep_cols`` of its columns
    (None: removed), or replaced by an intercept column (``intercept_only``)."""
    where = _members(design)
    order = list(dict.fromkeys(rt.group_name for rt in design.formula.random))  # groups by first appearance
    parts: dict[str, list] = {g: [] for g in order}
    for j, (rt, (k, i, off, width)) in enumerate(zip(design.formula.random, where)):
        t = design.terms[k]
        z, names = t.z[:, off : off + width], list(t.columns[off : off + width])
        if j == member:
            if intercept_only:
                z, names = np.ones((design.n, 1)), ["(Intercept)"]
            elif keep_cols is None:
                continue
            else:
                z, names = z[:, keep_cols], [names[c] for c in keep_cols]
        parts[rt.group_name].append((z, names))
    terms = []
    for g in order:
        if not parts[g]:
            continue
        t = design.terms[[x.name for x in design.terms].index(g)]
        pattern, off = [], 0
        for z, _ in parts[g]:
            s = z.shape[1]
            pattern.extend((off + r, off + c) for c in range(s) for r in range(c, s))
            off += s
        pattern.sort(key=lambda rc: (rc[1], rc[0]))
        terms.append(dataclasses.replace(
            t, z=np.column_stack([z for z, _ in parts[g]]), columns=tuple(n for _, ns in parts[g] for n in ns),
            pattern=tuple(pattern), correlated=len(pattern) == off * (off + 1) // 2))
    terms.sort(key=lambda t: -t.nlevels * t.s)  # the build's order (stable: ties keep formula order)
    return dataclasses.replace(design, terms=tuple(terms), encoding=None)


def _lm_loglik(design, reml: bool) -> tuple[float, int]:
    """R's logLik.lm of the fixed part alone (REML=TRUE for a REML fit) and its number of parameters (p + 1)."""
    X, y = design.X, design.y
    w = np.ones(design.n) if design.weights is None else np.asarray(design.weights, float)
    sw = np.sqrt(w)
    Q, R = np.linalg.qr(sw[:, None] * X)
    r = sw * y - Q @ (Q.T @ (sw * y))
    rss, n, p = float(r @ r), design.n, X.shape[1]
    pos = w > 0
    N = n - p if reml else n
    ll = 0.5 * (np.sum(np.log(w[pos])) - N * (math.log(2 * math.pi) + 1 - math.log(N) + math.log(rss)))
    if reml:
        ll -= float(np.sum(np.log(np.abs(np.diag(R)))))
    return ll, p + 1


def _is_intercept_only(design, j: int) -> bool:
    k, i, _, _ = _members(design)[j]
    mterms, intercept, _ = _part_terms(design, k, i)
    return intercept and not mterms


def reductions(design, reduce_terms: bool = True):
    """[(row label, member index, kept columns or None, intercept only)] in lme4's order of the terms."""
    out = []
    rts = design.formula.random
    for j in sorted(range(len(rts)), key=lambda j: rts[j].lme4_index):
        rt = rts[j]
        k, i, _, _ = _members(design)[j]
        form = _bar_text(rt.expr, rt.label or rt.group_name)
        mterms, intercept, width = _part_terms(design, k, i)
        if not reduce_terms or not mterms:
            out.append((f"({form})", j, None, False))
            continue
        scope = [m for m in mterms if not any(m[1] < o[1] for o in mterms)]
        for label, variables, codings, cols in scope:
            rest = [m for m in mterms if m[0] != label]
            if not rest:
                # the expression becomes (1 | g); R's formula algebra keeps one copy when (1 | g) is already a term
                twin = any(_is_intercept_only(design, jj) for jj, o in enumerate(rts)
                           if jj != j and o.group_name == rt.group_name)
                out.append((f"{label} in ({form})", j, None, not twin))
                continue
            if not intercept and any(c != NUMERIC and c != CONTRASTS for c in codings):
                # R would recode the next factor with indicators for every level; not read from these columns
                raise ArgumentError(
                    f"ranova cannot reduce '({form})' by '{label}' (without an intercept, removing it changes the "
                    f"coding of the other factors); use m.ranova(reduce_terms=False), or mj.anova on models you fit")
            keep = [c for c in range(width) if c not in set(cols)]
            out.append((f"{label} in ({form})", j, keep, False))
    return out


def ranova(model, reduce_terms: bool = True):
    """lmerTest's ranova table: rows '<none>' then one per reduced model; columns npar, logLik, AIC, LRT, Df,
    Pr(>Chisq) (LRT = 2 (logLik − the reduced model's logLik), Df the difference in parameters)."""
    from ..model.lmm import fit
    from ..model.problem import Problem

    design = model.problem.design
    if design.encoding is None:
        raise ArgumentError("ranova needs the design's encoding (build the model with mj.lmm or mj.Problem.build)")
    if not design.formula.random:
        raise ArgumentError("ranova needs a model with at least one random-effects term")
    rows, npar, ll = ["<none>"], [model.dof], [model.loglik]
    for label, j, keep, intercept_only in reductions(design, reduce_terms):
        reduced = _reduced_design(design, j, keep, intercept_only)
        if reduced.terms:
            m = fit(Problem.from_design(reduced), reml=model.reml)
            rows.append(label), npar.append(m.dof), ll.append(m.loglik)
        else:
            value, k = _lm_loglik(design, model.reml)
            rows.append(label), npar.append(k), ll.append(value)
    npar, ll = np.array(npar), np.array(ll, float)
    lrt = np.concatenate([[np.nan], 2 * (ll[0] - ll[1:])])
    df = np.concatenate([[np.nan], npar[0] - npar[1:]]).astype(float)
    with np.errstate(invalid="ignore"):
        p = np.where(df > 0, _scipy("stats").chi2.sf(np.maximum(lrt, 0.0), np.where(df > 0, df, 1)), np.nan)
    p[0] = np.nan
    import pandas as pd

    return TestTable({"npar": npar, "logLik": ll, "AIC": 2 * npar - 2 * ll, "LRT": lrt, "Df": df, "Pr(>Chisq)": p},
                     index=pd.Index(rows, dtype=object))
