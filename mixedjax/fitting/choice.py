"""The default optimiser (``optimizer="auto"``): which of the two a model gets, by a rule measured on the benchmark
models (docs/performance.md, "Host build and first printout").

BOBYQA evaluates the objective only; the L-BFGS loop evaluates value and gradient, which costs 3 to 3.5 objectives
where the dense factor dominates (InstEval), and verifies its result with a Hessian of ntheta + 1 gradients. With
few θ BOBYQA needs few objectives (InstEval: 18 for 2 θ), so it wins when an evaluation is expensive; with many θ
it needs hundreds (kb07, 20 θ; d3, 9 θ), on small models the host's per-call cost dominates (sleepstudy), and where
the dense Cholesky is not most of an evaluation a gradient costs about two objectives (ml1m), so the JAX loop wins
there. BOBYQA's result is checked by the exact gradient (``bobyqa_verified``) and refined by the L-BFGS
loop when the check fails, so the default is always a verified fit.
"""

from __future__ import annotations

from ..blocks.plan import Layout
from .options import FitOptions

AUTO_MAX_THETA = 3  # at most this many θ for BOBYQA (InstEval's 2 and 3 won, d3's 9 and kb07's 20 lost)
# ... and at least this share of the evaluation's work in the dense Cholesky (cholesky_share), whose reverse pass
# makes a value and gradient cost 3 to 3.5 objectives: InstEval 0.76 and 0.69 (BOBYQA won); ml1m 0.45, where the
# heavy columns' dense product and the pairs, whose reverse passes cost about one forward pass, are the rest (the
# loop won: 13.5 s against 18.2 s; docs/performance.md, "The fits' time and the host build (sixth pass)")
AUTO_MIN_CHOLESKY_SHARE = 0.6
# BOBYQA's result passes when max |∂d/∂φ| (φ: the optimiser's units of θ) over the free directions is at most this
# times max(1, |d|). BOBYQA stops on its trust region (1e-7 in φ), not on the gradient, so its results are less
# stationary than the loop's (gtol 1e-8): measured 3.7e-9 (InstEval seed), 2.6e-8 (sleepstudy), 4.9e-7
# (penicillin) relative. 1e-6 passes those and sends a result that is not a stationary point to the loop.
BOBYQA_GTOL = 1e-6


def nlopt_available() -> bool:
    """Is NLopt's Python package importable (BOBYQA's engine, the ``bobyqa`` extra)? Asked on each fit (once
    imported, a dictionary lookup), so the answer follows the environment."""
    try:
        import nlopt  # noqa: F401
    except ImportError:
        return False
    return True


def cholesky_share(layout: Layout) -> float:
    """The dense block's Cholesky (D³/3 flops) as a share of one evaluation's estimated work: the Cholesky, the
    per-level blocks, the pair fill-in (blocks.plan.PAIR_COST flops a pair) and the heavy columns' dense product."""
    from ..blocks.plan import PAIR_COST
    from .loop import work_parts

    w = work_parts(layout)
    return w.cholesky / (w.cholesky + w.levels + PAIR_COST * w.pairs + w.heavy)


def choose_optimizer(layout: Layout, opts: FitOptions) -> str:
    """The optimiser a fit runs: ``opts.optimizer`` itself unless it is "auto"; then "bobyqa" for models with at
    most AUTO_MAX_THETA θ whose evaluation is too large for the quick-compile loop (fitting.loop.use_quick: the
    host's per-call cost does not dominate) and dominated by the dense Cholesky (cholesky_share at least
    AUTO_MIN_CHOLESKY_SHARE: the gradient costs several objectives) when NLopt is installed, else "lbfgs". "auto"
    with the loop's own options changed (maxiter, gtol, ftol, memory, max_linesearch: BOBYQA reads none of them)
    runs the loop they are for."""
    from .loop import use_quick

    if opts.optimizer != "auto":
        return opts.optimizer
    default = FitOptions()
    loop_options = ("maxiter", "gtol", "ftol", "memory", "max_linesearch")
    if any(getattr(opts, k) != getattr(default, k) for k in loop_options):
        return "lbfgs"
    if (layout.ntheta <= AUTO_MAX_THETA and not use_quick(layout)
            and cholesky_share(layout) >= AUTO_MIN_CHOLESKY_SHARE and nlopt_available()):
        return "bobyqa"
    return "lbfgs"
