"""Forward-mode derivatives through the blocked factor.

Satterthwaite's ∂Cov(β̂)/∂v and Kenward–Roger's first and second derivatives of X'Σ⁻¹X have p × p outputs and only
k = dim(θ) + 1 inputs, so forward mode (k tangents) costs a few factorisations where reverse mode would take p²
passes (InstEval's seed model: p = 28). The factor's panelled dense update S − W W' carries a custom reverse rule
(core/cholesky.py, one product instead of two), and JAX cannot differentiate a ``custom_vjp`` function forwards.
While these derivatives are traced, the factor therefore uses the same update without the custom rule: the same
values, differentiated by JAX's own rules. Only the traces made inside :func:`forward_mode` see it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from ..core import cholesky, objective

_LOCK = threading.Lock()


def _plain_minus_gram_panels(S, W, cuts):
    return cholesky._panels(S, W, cuts)


@contextmanager
def forward_mode():
    """Trace (and run) forward-mode derivatives of the factor within this block."""
    with _LOCK:
        saved = objective._minus_gram_panels
        objective._minus_gram_panels = _plain_minus_gram_panels
        try:
            yield
        finally:
            objective._minus_gram_panels = saved
