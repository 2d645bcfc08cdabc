"""A guard against Linux's limit on a process's memory mappings, which compiled XLA programs count against.

Each compiled CPU program holds a few memory mappings and JAX keeps every program it compiled. A process that fits
hundreds of models of different shapes (a simulation over sample sizes, a long notebook) can reach Linux's
``vm.max_map_count`` (65,530 by default), after which XLA's next compile crashes the process with a segmentation
fault. Before that, the guard frees JAX's compiled programs (``jax.clear_caches()``: they are compiled again when
needed) and says so once.
"""

from __future__ import annotations

import sys
import warnings

CHECK_EVERY = 25  # fits between two counts of /proc/self/maps (a count reads the whole file: ~1 ms per 10,000 lines)
SHARE = 0.75  # free the compiled programs past this share of the limit


class _State:
    fits = 0  # fits since import
    warned = False  # the warning is given once per process


_state = _State()


def _limit() -> int | None:
    try:
        with open("/proc/sys/vm/max_map_count", encoding="ascii") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return None  # not Linux, or not readable: nothing to guard


def count_mappings() -> int | None:
    """The number of this process's memory mappings (Linux), else None."""
    try:
        with open("/proc/self/maps", "rb") as fh:
            return sum(1 for _ in fh)
    except OSError:
        return None


def guard(force: bool = False) -> bool:
    """Called once per fit: every ``CHECK_EVERY`` fits (or when ``force``), free JAX's compiled programs if the
    process's mappings pass ``SHARE`` of the limit. Returns whether it freed them."""
    _state.fits += 1
    if not (force or _state.fits % CHECK_EVERY == 0) or not sys.platform.startswith("linux"):
        return False
    limit, used = _limit(), count_mappings()
    if limit is None or used is None or used < SHARE * limit:
        return False
    import jax

    from . import traces

    jax.clear_caches()
    traces.clear()  # the compiled-ahead programs, which jax.clear_caches() does not reach
    if not _state.warned:
        _state.warned = True
        warnings.warn(
            f"this process held {used:,} memory mappings, near Linux's limit of {limit:,} (vm.max_map_count), past "
            "which XLA's next compile crashes the process; mixedjax freed JAX's compiled programs "
            "(jax.clear_caches()), so models fitted before compile again when refitted. To keep them, raise the "
            "limit (sudo sysctl -w vm.max_map_count=1048576).",
            RuntimeWarning, stacklevel=3)
    return True
