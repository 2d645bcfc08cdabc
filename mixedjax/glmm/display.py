"""The printout of a fitted GLMM, in MixedModels.jl's layout (family and link in the header). No mathematics."""

from __future__ import annotations

from ..display.text import _fixed, _levels_str, _lpad, _notes, _rpad, format_coeftable, format_varcorr, textwidth

_LABELS = ("logLik", "deviance", "AIC", "AICc", "BIC")


def _header_table(values) -> str:
    nums = [_fixed(v, 4) for v in values]
    fieldwd = max(max(textwidth(s) for s in nums) + 1, 11)
    labels = "".join(_rpad(_lpad(lb, (fieldwd + textwidth(lb)) >> 1), fieldwd) for lb in _LABELS)
    return labels + "\n" + "".join(_lpad(s, fieldwd) for s in nums) + "\n"


def glmm_text(m) -> str:
    """The full printout (no trailing newline)."""
    how = "(nAGQ = 0, fast)" if m.fast else f"(nAGQ = {m.nagq})"
    dist = "Bernoulli{Float64}" if m.is_bernoulli else m.family.julia_name
    out = [f"Generalized Linear Mixed Model fit by maximum likelihood {how}\n", f"  {m.formula}\n",
           f"  Distribution: {dist}\n", f"  Link: {m.family.julia_link}\n\n",
           _header_table((m.loglik, m.deviance, m.aic, m.aicc, m.bic)), "\n", format_varcorr(m.varcorr),
           f"\n Number of obs: {int(m.nobs)}; levels of grouping factors: {_levels_str(m.ngroups)}\n"]
    for note in _notes(m):
        out.append(note + "\n")
    out.append("\nFixed-effects parameters:\n")
    out.append(format_coeftable(m.coeftable()))
    return "".join(out)
