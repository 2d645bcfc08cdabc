"""``DiagnosticsMethods``: prediction, residuals, influence, the tidy table and plots of a fitted model.

A mixin of :class:`mixedjax.LinearMixedModel` (kept here so the model class stays small). Every result is pandas,
indexed like the rows it came from: the fit's rows are the rows of the data that were used, so rows dropped for
missing values are absent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ArgumentError
from .influence import cooks_distance as _cooks, leverage_all
from .newdata import encode_rows, fitted_rows
from .predict import check_new_levels, linear_predictor, select_terms

RESIDUAL_TYPES = ("response", "pearson")


class DiagnosticsMethods:
    """Methods of a fitted linear mixed model that read its data: predict, fitted, residuals, leverage, Cook's
    distance, tidy, and the plots (matplotlib, ``pip install mixedjax[plot]``)."""

    # ---- the fit's rows ---------------------------------------------------------------------------------------
    def _row_index(self) -> pd.Index:
        return pd.Index(self.problem.design.rows)

    def _series(self, values, name: str) -> pd.Series:
        return pd.Series(np.array(values, dtype=float), index=self._row_index(), name=name)

    def fitted(self) -> pd.Series:
        """Fitted values X β̂ + Z b̂ (+ the offset), one per row used in the fit (rows dropped for missing values
        are absent), indexed by the data's row labels."""
        return self._series(self._fitted_values(), "fitted")

    def _fitted_values(self) -> np.ndarray:
        design = self.problem.design
        return linear_predictor(fitted_rows(design), self._solution["beta"], self._solution["b"],
                                select_terms(design, None))

    def residuals(self, type: str = "response", *, scaled: bool = False) -> pd.Series:  # noqa: A002 - lme4's name
        """Residuals of the rows used in the fit (rows dropped for missing values are absent), indexed by the
        data's row labels, as lme4's ``residuals(m, type=, scaled=)``: ``"response"`` y − ŷ; ``"pearson"``
        √wᵢ (y − ŷ) (the response residual of an unweighted fit). ``scaled=True`` divides by σ̂."""
        if type not in RESIDUAL_TYPES:
            raise ArgumentError(f"type must be one of {', '.join(map(repr, RESIDUAL_TYPES))}, not {type!r}")
        if not isinstance(scaled, (bool, np.bool_)):
            raise ArgumentError(f"scaled must be True or False, not {scaled!r}")
        r = self.problem.design.y - self._fitted_values()
        weights = self.problem.design.weights
        if type == "pearson" and weights is not None:
            r = r * np.sqrt(weights)
        if scaled:
            r = r / self.sigma
        return self._series(r, "residuals" if type == "response" else "pearson_residuals")

    # ---- prediction -------------------------------------------------------------------------------------------
    def predict(self, newdata=None, *, re_form=None, new_levels: str = "population") -> pd.Series:
        """Predictions as lme4's ``predict``: X β̂ plus the offset plus the conditional modes of the random-effects
        terms kept.

        ``newdata``: a table of the predictor columns (any kind ``lmm`` accepts; the response is not needed);
        None predicts the fit's own rows. New rows are encoded as the fit's were (``mixedjax.design.encode_new``:
        the same contrasts, levels, ``poly``/``scale`` coefficients and offset terms), so a factor level of the
        fixed part that the fit has not seen is a ``DataError``. ``re_form``: None (every term), ``"~0"`` (none: the
        population prediction) or a formula of random-effects terms such as ``"~(1 | plate)"``.
        ``new_levels``: ``"population"`` predicts a grouping level the fit has not seen (or a missing one) at the
        population value of that term (lme4's ``allow.new.levels=TRUE``); ``"error"`` raises a ``DataError``
        naming the column and the levels. Returns a Series indexed by ``newdata``'s row labels; rows with a
        missing value in a predictor column are absent.
        """
        design = self.problem.design
        sel = select_terms(design, re_form)
        use = [bool(mk.any()) for mk in sel.masks]
        rows = fitted_rows(design) if newdata is None else encode_rows(design, newdata, use)
        if newdata is not None and design.offset_given:
            # an offset given as an argument (not a term of the formula) has no values for new rows
            raise ArgumentError("this model's offset was given as an array, which has no values for new rows; write "
                                "it in the formula as offset(expr) to predict on new data")
        check_new_levels(rows, sel, new_levels)
        eta = linear_predictor(rows, self._solution["beta"], self._solution["b"], sel)
        return pd.Series(eta, index=rows.index, name="predict")

    # ---- influence --------------------------------------------------------------------------------------------
    def leverage(self) -> pd.Series:
        """The diagonal of the hat matrix (lme4's ``hatvalues``, MixedModels.jl's ``leverage``), one per row used
        in the fit (rows dropped for missing values are absent). Computed through the blocked factor: h_i =
        ‖L⁻¹[Λ'z_i; x_i]‖², no n × n matrix."""
        if "_leverage" not in self.__dict__:
            h = leverage_all(self.theta, self.problem)
            h.setflags(write=False)
            object.__setattr__(self, "_leverage", h)
        return self._series(self.__dict__["_leverage"], "leverage")

    def cooks_distance(self) -> pd.Series:
        """Cook's distance as lme4's ``cooks.distance``: r_i² h_i / (p σ̂² (1 − h_i)²), one per row used in the
        fit (rows dropped for missing values are absent)."""
        h = self.leverage().to_numpy()
        r = self.residuals(type="pearson").to_numpy()
        return self._series(_cooks(r, h, self.sigma, self.problem.design.p), "cooks_distance")

    # ---- tables -----------------------------------------------------------------------------------------------
    def tidy(self, **coeftable_args) -> pd.DataFrame:
        """Every parameter in one tidy DataFrame, broom.mixed's layout: effect ("fixed" or "ran_pars"), group,
        term, estimate, std_error, statistic, df, p_value. Keyword arguments go to ``coeftable`` (e.g. the
        inference issue's ``ddf=``, which fills ``df``); without them df is missing (normal reference).
        Random-effects rows are standard deviations ``sd__col`` and correlations ``cor__a.b``, and the residual
        ``sd__Observation``, with no standard error."""
        from ..display.tables import tidy_frame

        return tidy_frame(self.coeftable(**coeftable_args), self.varcorr)

    # ---- plots ------------------------------------------------------------------------------------------------
    def plot_ranef(self, group: str | None = None, *, level: float = 0.95, condvar=None, ax=None):
        """Caterpillar plot of one grouping factor (the first by default): the conditional modes, ordered, with
        intervals from the conditional variances, one panel per term column (lattice's ``dotplot(ranef(m,
        condVar=TRUE))``). ``condvar`` (levels, s, s) overrides the model's ``condvar()``. Returns a Figure;
        ``ax=`` takes one Axes per term column."""
        from ..plot.ranef import plot_ranef

        return plot_ranef(self, group=group, level=level, condvar=condvar, ax=ax)

    def plot_residuals(self, *, ax=None):
        """Residuals against fitted values and a normal QQ plot of the Pearson residuals. Returns a Figure;
        ``ax=`` takes two Axes."""
        from ..plot.residuals import plot_residuals

        return plot_residuals(self, ax=ax)
