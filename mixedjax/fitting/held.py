"""A process-wide setting held over blocks that nest and overlap across threads: the collector's pause
(collector.py) and one BLAS thread (blas.py). The first block to enter changes the setting and the last to leave
gives it back (a count under a lock), so a nested block or another thread's block never gives it back early.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable


class Held:
    """``begin()`` (which returns what ``end`` needs to give the setting back) when the first block enters,
    ``end(that)`` when the last one leaves, an error inside included. Use as ``with held(): ...``."""

    def __init__(self, begin: Callable[[], object], end: Callable[[object], None]):
        self._begin, self._end = begin, end
        self._lock = threading.Lock()
        self._depth = 0  # blocks in progress, in every thread
        self._saved = None  # what begin returned for the outermost block

    @contextlib.contextmanager
    def __call__(self):
        with self._lock:
            if self._depth == 0:
                self._saved = self._begin()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    saved, self._saved = self._saved, None
                    self._end(saved)
