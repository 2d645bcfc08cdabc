"""lme4's names of the model parameters, as ``confint(oldNames = FALSE)`` prints them."""

from __future__ import annotations

import re


def group_name(term_name: str, formula_text: str) -> str:
    """lme4's name of a grouping factor: ``(1 | a/b)`` expands to ``b:a`` there (mixedjax names it ``a:b``)."""
    parts = term_name.split(":")
    if len(parts) > 1:
        nested = "/".join(parts)
        if re.search(r"\|\s*" + re.escape(nested).replace("/", r"\s*/\s*") + r"\s*\)", formula_text) \
                and term_name not in formula_text:
            return ":".join(reversed(parts))
    return term_name


def variance_names(design) -> list[str]:
    """sd_ and cor_ names in θ's order: per term, its free entries of λ (diagonal -> sd, below -> cor)."""
    out = []
    for t in design.terms:
        g = group_name(t.name, design.formula.text)
        for r, c in t.pattern:
            out.append(f"sd_{t.columns[r]}|{g}" if r == c else f"cor_{t.columns[r]}.{t.columns[c]}|{g}")
    return out


def parameter_names(design) -> list[str]:
    """Every parameter in lme4's order: the random-effect sd's and cor's, sigma, the fixed effects."""
    return variance_names(design) + ["sigma"] + list(design.xnames)
