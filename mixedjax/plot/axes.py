"""Figure and axes for a plot: the user's ``ax=`` (one Axes, or a sequence of as many as the plot has panels) or a
new figure; matplotlib is imported only here, with a message naming the extra when it is missing."""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError


def pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - the extra is installed in the tests
        raise ImportError("plots need matplotlib: pip install 'mixedjax[plot]' (or pip install matplotlib)") from err
    return plt


def panels(n: int, ax=None, *, width: float = 4.0, height: float = 4.0):
    """(figure, list of n Axes). ``ax``: None (a new figure of n panels side by side), one Axes (n must be 1), or
    a sequence of n Axes of one figure."""
    plt = pyplot()
    if ax is None:
        fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
        return fig, list(axes[0])
    axes = list(np.ravel(ax)) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
    if len(axes) != n:
        raise ArgumentError(f"this plot has {n} panel{'s' if n > 1 else ''}; ax= must give "
                            f"{'one Axes' if n == 1 else f'{n} Axes (a list)'}, not {len(axes)}")
    return axes[0].figure, axes
