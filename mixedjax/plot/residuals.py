"""Residual diagnostics: residuals against fitted values, and a normal QQ plot of the scaled Pearson residuals."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from .axes import panels


def plot_residuals(m, *, ax=None):
    """Two panels: response residuals against fitted values (with the zero line), and the scaled Pearson residuals'
    sample quantiles against normal quantiles (with the identity line). Returns the Figure."""
    fig, (a1, a2) = panels(2, ax)
    fitted, resid = m.fitted().to_numpy(), m.residuals().to_numpy()
    a1.scatter(fitted, resid, s=8, alpha=0.7)
    a1.axhline(0.0, color="0.5", lw=0.8, ls="--")
    a1.set_xlabel("fitted values")
    a1.set_ylabel("residuals")
    a1.set_title("Residuals vs fitted")
    r = np.sort(m.residuals(type="pearson", scaled=True).to_numpy())
    n = r.size
    theo = norm.ppf((np.arange(1, n + 1) - 0.5) / n)  # plotting positions (i − ½)/n
    a2.scatter(theo, r, s=8, alpha=0.7)
    lim = [min(theo[0], r[0]), max(theo[-1], r[-1])]
    a2.plot(lim, lim, color="0.5", lw=0.8, ls="--")
    a2.set_xlabel("normal quantiles")
    a2.set_ylabel("Pearson residuals")
    a2.set_title("Normal QQ")
    return fig
