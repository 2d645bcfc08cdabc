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


def select_parameters(parm, variance: list[str], fixed: list[str]) -> list[str]:
    """The names ``parm`` picks from ``variance + fixed`` (lme4's ``confint(parm = ...)``): None (every one),
    "theta_" (the variance parameters, sigma with them as in lme4), "beta_" (the fixed effects), a name, or a list of
    names or 0-based positions into ``variance + fixed``."""
    from ..errors import ArgumentError

    every = list(variance) + list(fixed)
    if parm is None:
        return every
    if isinstance(parm, str) and parm in ("theta_", "beta_"):
        return list(variance) if parm == "theta_" else list(fixed)
    picks = [parm] if isinstance(parm, (str, int)) else list(parm)
    out = []
    for p in picks:
        if isinstance(p, (int,)) and not isinstance(p, bool):
            if not -len(every) <= p < len(every):
                raise ArgumentError(f"parm position {p} is out of range: this model has {len(every)} parameters "
                                    f"({', '.join(every)})")
            out.append(every[p])
        elif isinstance(p, str) and p in every:
            out.append(p)
        else:
            raise ArgumentError(f"parm {p!r} is not a parameter of this model; use 'theta_', 'beta_', or names "
                                f"from: {', '.join(every)}")
    return out
