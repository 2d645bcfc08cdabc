"""The caterpillar plot: conditional modes of one grouping factor's random effects, ordered, with intervals
b̂ ± z_{(1+level)/2} √(conditional variance), one panel per term column (lattice's ``dotplot(ranef(m,
condVar=TRUE))`` in lme4)."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from ..errors import ArgumentError
from .axes import panels


def _condvar(m, group: str):
    """Conditional variances (levels, s, s) of ``group`` from the model's ``condvar()``, or None without it."""
    condvar = getattr(m, "condvar", None)
    if condvar is None:
        return None
    cv = condvar()
    return np.asarray(cv[group]) if group in cv else None


def plot_ranef(m, *, group: str | None = None, level: float = 0.95, condvar=None, ax=None):
    """Caterpillar plot of one grouping factor (the first term by default); returns the Figure.

    ``condvar``: the conditional variances (levels, s, s) to draw the intervals from; by default the model's
    ``condvar()`` when it has one, else the modes are drawn without intervals (and the title says so).
    """
    if not 0 < level < 1:
        raise ArgumentError(f"level must be between 0 and 1, not {level!r}")
    re = m.ranef()
    group = next(iter(re)) if group is None else group
    if group not in re:
        raise ArgumentError(f"group must be one of {', '.join(map(repr, re))}, not {group!r}")
    b = re[group]
    cv = _condvar(m, group) if condvar is None else np.asarray(condvar, dtype=float)
    if cv is not None and cv.shape != (b.shape[0], b.shape[1], b.shape[1]):
        raise ArgumentError(f"condvar for '{group}' must have shape {(b.shape[0], b.shape[1], b.shape[1])}, "
                            f"not {cv.shape}")
    fig, axes = panels(b.shape[1], ax, width=3.5, height=max(3.0, 0.18 * b.shape[0] + 1.0))
    q = norm.ppf(0.5 + level / 2)
    # one order for every panel, by the first column's mode (lattice orders by the intercept)
    order = np.argsort(b.iloc[:, 0].to_numpy(), kind="stable")
    labels = [str(v) for v in b.index[order]]
    ypos = np.arange(len(order))
    for j, (a, col) in enumerate(zip(axes, b.columns)):
        x = b.iloc[:, j].to_numpy()[order]
        if cv is not None:
            half = q * np.sqrt(np.maximum(cv[order, j, j], 0.0))
            a.errorbar(x, ypos, xerr=half, fmt="o", ms=3, lw=1, color="C0", ecolor="0.4", capsize=0)
        else:
            a.plot(x, ypos, "o", ms=3, color="C0")
        a.axvline(0.0, color="0.6", lw=0.8, ls="--")
        a.set_title(str(col))
        a.set_yticks(ypos)
        a.set_yticklabels(labels if j == 0 else [], fontsize=7)
        a.set_ylim(-0.7, len(order) - 0.3)
    axes[0].set_ylabel(str(group))
    note = f"{int(round(level * 100))}% intervals from the conditional variances" if cv is not None else (
        "conditional modes (no conditional variances: intervals not drawn)")
    fig.suptitle(f"{group}: {note}", fontsize=9)
    return fig
