"""Python's cyclic garbage collector paused over host work that makes many objects and little garbage.

Importing JAX and pandas, and tracing and lowering a program, each make tens of thousands of objects that live on
(modules, functions, jaxprs, MLIR). Python's full collections are triggered by the count of new long-lived objects,
so they run several times during that work, each traversing every object of the process (about 0.1 s each once JAX
and pandas are imported) and finding almost nothing to free: about 0.3 s of a new process that fits sleepstudy
(docs/performance.md, "The garbage collector"). Inside :func:`paused` the collector is off; it is switched back on
when the last pause ends, unless it was off before the first began (the user's choice is kept). Reference counting
frees memory as usual meanwhile; only cycles wait for the next collection.
"""

from __future__ import annotations

import contextlib
import gc
import threading

_lock = threading.Lock()
_depth = 0  # pauses in progress, in every thread (the prefetch worker traces too)
_restore = False  # whether the collector was on when the outermost pause began


@contextlib.contextmanager
def paused():
    """The collector off within (nested and concurrent pauses counted: on again after the last, if it was on)."""
    global _depth, _restore
    with _lock:
        if _depth == 0:
            _restore = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _restore:
                gc.enable()
