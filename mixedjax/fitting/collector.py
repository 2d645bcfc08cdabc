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

import gc

from .held import Held


def _begin() -> bool:
    was = gc.isenabled()
    gc.disable()
    return was


def _end(was: bool) -> None:
    if was:
        gc.enable()


# the collector off within (nested and concurrent pauses counted: on again after the last, if it was on)
paused = Held(_begin, _end)
