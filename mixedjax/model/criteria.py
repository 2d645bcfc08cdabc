"""AIC, AICc and BIC from a fitted model's deviance (−2 log L), number of parameters and observations."""

from __future__ import annotations

import math


class InformationCriteria:
    """Mixin: needs ``deviance``, ``dof`` (parameters) and ``nobs``."""

    @property
    def aic(self) -> float:
        return self.deviance + 2 * self.dof

    @property
    def aicc(self) -> float:
        n, k = self.nobs, self.dof
        return self.aic + 2 * k * (k + 1) / (n - k - 1)

    @property
    def bic(self) -> float:
        return self.deviance + self.dof * math.log(self.nobs)
