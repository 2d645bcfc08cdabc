"""One BLAS thread while a fit runs.

JAX's CPU linear algebra (the Cholesky factors and triangular solves of every evaluation) calls LAPACK through
SciPy's OpenBLAS, which by default starts a thread per core. The blocks of a mixed model's factor are small or
medium, and handing each call to a second thread costs more than it saves: on the 2-core machine, with OpenBLAS held
to one thread, kb07's warm `mj.lmm` took 60-63 ms against 83-94 ms, InstEval's 363-371 ms against 404-450 ms and
verbagg's `mj.glmm` 140-152 ms against 173-191 ms, kb07's Kenward–Roger table 0.36-0.38 s against 0.48-0.49 s
(docs/performance.md, "One BLAS thread during a fit"). The benchmarks pin BLAS to one thread for every engine, so
they measure this already; a user's process did not get it.

:func:`one_blas_thread` holds every loaded BLAS library to one thread while the outermost fit of the process runs
and gives back the counts it found when the last one ends (a count, so fits in several threads or nested fits
restore once, at the end: fitting/held.py, which the collector's pause shares); nothing of it outlives the call.
A thread count set in the environment (OPENBLAS_NUM_THREADS, MKL_NUM_THREADS,
OMP_NUM_THREADS) is the user's choice and is left alone, and so is everything when threadpoolctl is not installed.
"""

from __future__ import annotations

import functools
import os
import sys

from .held import Held

_ENV = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
_controller = None  # threadpoolctl's ThreadpoolController, made once SciPy's LAPACK is loaded


def _libraries():
    """threadpoolctl's controller of the loaded BLAS libraries once SciPy's linear algebra, through which JAX calls
    LAPACK, is loaded (JAX loads it when it first lowers a LAPACK call: models whose blocks are all small never
    do, and their processes then import nothing for this); None before, or without threadpoolctl."""
    global _controller
    if "scipy.linalg" not in sys.modules:
        return None
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        except Exception:  # not installed, or it cannot read the loaded libraries: BLAS is left as it is
            return None
    return _controller


def _begin():
    """threadpoolctl's limiter of the outermost block (it restores the counts it found), or None."""
    if any(k in os.environ for k in _ENV):
        return None
    libs = _libraries()
    try:
        return None if libs is None else libs.limit(limits=1, user_api="blas")
    except Exception:  # a library threadpoolctl cannot set: BLAS is left as it is, the fit goes on
        return None


def _end(limiter) -> None:
    if limiter is not None:
        limiter.restore_original_limits()


# every loaded BLAS on one thread inside the block (see the module docstring)
one_blas_thread = Held(_begin, _end)


def single_blas_thread(fn):
    """``fn`` run inside :func:`one_blas_thread`."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with one_blas_thread():
            return fn(*args, **kwargs)

    return wrapped
