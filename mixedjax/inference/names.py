"""lme4's names of the model parameters, as ``confint(oldNames = FALSE)`` prints them."""

from __future__ import annotations


def group_name(term_name: str, design) -> str:
    """lme4's name of a grouping factor, as the parser recorded it (formula.parse.RandomTerm.label): ``(1 | a/b)``
    gives ``b:a`` there and ``(1 | a/b/c)`` ``c:(b:a)`` (mixedjax names them ``a:b`` and ``a:b:c``)."""
    return next((rt.label for rt in design.formula.random if rt.group_name == term_name and rt.label), term_name)


def variance_names(design) -> list[str]:
    """sd_ and cor_ names in θ's order: per term, its free entries of λ (diagonal -> sd, below -> cor)."""
    out = []
    for t in design.terms:
        g = group_name(t.name, design)
        for r, c in t.pattern:
            out.append(f"sd_{t.columns[r]}|{g}" if r == c else f"cor_{t.columns[r]}.{t.columns[c]}|{g}")
    return out


def parameter_names(design) -> list[str]:
    """Every parameter in lme4's order: the random-effect sd's and cor's, sigma, the fixed effects."""
    return variance_names(design) + ["sigma"] + list(design.xnames)
