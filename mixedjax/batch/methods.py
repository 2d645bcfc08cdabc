"""The batch methods of LinearMixedModel (a mixin: model/lmm.py lists it among the class's bases)."""

from __future__ import annotations

from functools import cached_property


class BatchMethods:
    """simulate, refit, fit_function and bootstrap (see docs/batched.md)."""

    @cached_property
    def _batch_context(self):
        """The device data every batched fit of this model reads (planned once)."""
        from .function import context

        return context(self)

    @cached_property
    def _weights_problem(self):
        """The problem on a plan that re-assembles every block for new weights (merge=False)."""
        from ..model.problem import Problem

        p = self.problem
        return p if not p.merged else Problem.from_design(p.design, merge=False)

    @cached_property
    def _weights_context(self):
        """As _batch_context, on _weights_problem."""
        from .function import context

        return context(self, self._weights_problem)

    def simulate(self, nsim=1, seed=None, *, theta=None, beta=None, sigma=None, weighted_noise=True):
        """``nsim`` responses drawn from the fitted model, shape (nsim, nobs): new random effects for every level
        plus noise (lme4's ``simulate``). ``seed``: None, an integer or a ``jax.random`` key. ``theta``, ``beta``,
        ``sigma`` override the fitted values (θ relative to σ, as in the fit), e.g. for a power analysis.
        ``weighted_noise``: the noise's variance is σ²/wᵢ, the fitted model's (True), or σ² whatever the prior
        weights (False: what lme4's simulate, and so bootMer, draws; lme4 issue 386)."""
        from .simulate import simulate

        return simulate(self, nsim, seed, theta=theta, beta=beta, sigma=sigma, weighted_noise=weighted_noise)

    def refit(self, y, weights=None):
        """A new fitted model of the same design and options for the response ``y`` (in the model's row order);
        ``weights``: new prior weights (None keeps the model's).

        One compiled program serves every refit of a model of this shape; only the y row of A is recomputed. The fit
        runs the batched fits' solve (batch/solve.py: Newton for small models, the L-BFGS loop for large ones) from
        the moment start of ``y``, as a fresh fit of it starts, whatever optimiser fitted this model."""
        from .refit import refit

        return refit(self, y, weights)

    def fit_function(self, reml=None):
        """A pure JAX function ``f(y, weights=None) -> Estimates`` (theta, beta, sigma, b, objective, converged,
        result) for this model's design, accepted by ``jax.jit``, ``jax.vmap``, ``jax.grad``, ``jax.jacrev`` and
        ``jax.jacfwd``. Derivatives are exact, by the implicit function theorem at the optimum; at a singular fit
        the θ entries held at zero have derivative 0 (see mixedjax/batch/function.py). ``reml``: None keeps the
        model's criterion. ``jax.vmap(f)`` gives the fits ``mj.fit_many`` gives: both run this function's solve on
        every row (fit_many on refilling lanes or one row after another, docs/batched.md)."""
        from .function import make_fit_function

        return make_fit_function(self, reml)

    def bootstrap(self, n, seed=None, *, progress=True, batch_size=None, weighted_noise=True):
        """The parametric bootstrap: ``n`` responses simulated from the fit and refitted in one compiled program
        per chunk; returns a :class:`mixedjax.batch.bootstrap.Bootstrap` (``.table``, ``.confint``, ``.plot``).
        ``weighted_noise``: as in :meth:`simulate` (False reproduces lme4's bootMer of a weighted model)."""
        from .bootstrap import bootstrap

        return bootstrap(self, n, seed, progress=progress, batch_size=batch_size, weighted_noise=weighted_noise)
