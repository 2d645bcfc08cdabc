"""A persistent cache of traced programs (``jax.export``), beside JAX's persistent compilation cache.

JAX's compilation cache skips XLA's compile in a new process, but not the Python trace and the lowering that come
before it, and for a GLMM's objective under implicit differentiation those take most of a cold fit (grouseticks:
about 6 s of tracing and 1.7 s of lowering against 2 s of cache-hit compiles). Here a jitted function's program is
exported once (StableHLO, serialised) and read back by later processes, which then only compile it (a compilation
cache hit).

A program is keyed by the function's name, its static arguments (their ``repr``: frozen dataclasses such as a plan),
the shapes, dtypes and tree structure of its array arguments, the JAX version, the 64-bit mode, the backend
(cpu, gpu) and a hash of mixedjax's own source, so a changed mixedjax never reads a program traced by an older one.
The directory is ``$MIXEDJAX_CACHE_DIR/traces`` (default ``~/.cache/mixedjax/traces``); an empty MIXEDJAX_CACHE_DIR switches it off,
and then the function is simply jitted. A file that cannot be read is traced again and rewritten.

With ``ahead=True`` the program is compiled ahead of its first call (``lower(...).compile()``, reading JAX's
compilation cache), so that ``prefetch`` can make it in a background thread (one, in the order asked): reading a
compiled program back from JAX's cache, or compiling it, then overlaps the caller's other work (XLA deserialises
and compiles with the GIL released). (Keeping the executables themselves with ``jax.experimental.serialize_executable``, to skip
the lowering JAX's cache key needs, was tried: a GLM start's executable written that way crashed the process that
read it back, and one written from an executable JAX had read from its cache lost functions, "Function
wrapped_copy not found"; not kept.)
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import weakref
from concurrent.futures import Future
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from . import collector


@functools.cache
def directory() -> Path | None:
    """Where programs are kept, or None when the cache is off (or jax.export's serialisation, which needs the
    flatbuffers package, is not available)."""
    root = os.environ.get("MIXEDJAX_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "mixedjax"))
    if not root:
        return None
    try:
        import flatbuffers  # noqa: F401
    except ImportError:
        return None
    return Path(root) / "traces"


@functools.cache
def _source_hash() -> str:
    """A hash of every .py file of the package: programs traced by other code are never read."""
    h = hashlib.sha256()
    base = Path(__file__).resolve().parent.parent
    for p in sorted(base.rglob("*.py")):
        h.update(str(p.relative_to(base)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def remembered(name: str, question: dict, answer: Callable[[dict], dict]) -> dict:
    """``answer(question)`` (a dict of JSON values), kept on disk beside the programs under a key of ``name``, the
    question, the JAX and jaxlib versions and the backend, so later processes read it instead of working it out
    (without a cache directory, it is worked out each time)."""
    import json

    from jax.version import __version__ as jax_version
    from jaxlib.version import __version__ as jaxlib_version

    where = directory()
    if where is None:
        return answer(question)
    h = hashlib.sha256(repr((sorted(question.items()), jax_version, jaxlib_version, jax.default_backend())).encode())
    path = where / f"{name}-{h.hexdigest()[:24]}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # not yet written, or unreadable: worked out and (re)written
        pass
    got = answer(question)
    try:
        where.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(got))
        tmp.replace(path)
    except OSError:
        pass
    return got


def _dtype(x):
    return x.dtype if hasattr(x, "dtype") else np.result_type(x)


def _key(name: str, static: tuple, leaves, treedef, options) -> str:
    h = hashlib.sha256()
    for part in (name, repr(static), str(treedef), repr(sorted((options or {}).items())), jax.__version__,
                 str(jax.config.jax_enable_x64), jax.default_backend(), _source_hash()):
        h.update(part.encode())
        h.update(b"\0")
    for x in leaves:
        h.update(f"{np.shape(x)}{_dtype(x)};".encode())
    return h.hexdigest()[:40]


@functools.cache
def _worker():
    """The one background worker of :meth:`CachedProgram.prefetch` (programs made in the order asked: the one the
    caller needs first is not slowed by the others; three workers side by side made grouseticks' first fit with
    empty caches 36 s against 26 s on the loaded 2-core machine)."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="mixedjax-prefetch")


_PROGRAMS = weakref.WeakSet()  # every CachedProgram, for clear()


def clear() -> None:
    """Drop the programs every CachedProgram holds (what jax.clear_caches() frees for jitted functions; an ahead
    program is a compiled executable that it does not reach): the next call makes them again (the trace is read
    back, the compile is JAX's cache hit). fitting.mappings.guard calls it with jax.clear_caches()."""
    for prog in list(_PROGRAMS):
        with prog._lock:
            prog._calls.clear()
            prog._by_signature.clear()
            prog._exports.clear()


class CachedProgram:
    """``fn(*args, **static)`` jitted, with its traced program kept on disk (see the module docstring).

    fn: the function, whose first ``narrays`` positional arguments are pytrees of arrays and whose last ones are
    the static arguments named in ``static`` (given by position or by name); out_template: a pytree with the
    structure of fn's result (its leaves are not used); options: XLA compiler options for the compile.
    """

    def __init__(self, name: str, fn: Callable, narrays: int, static: tuple[str, ...], out_template, options=None,
                 ahead: bool = False):
        self.name, self.fn, self.narrays, self.static, self.options = name, fn, narrays, static, options
        self.ahead = ahead
        self._lock = threading.Lock()
        _PROGRAMS.add(self)
        self.out_tree = jax.tree_util.tree_structure(out_template)
        kw = {"compiler_options": options} if options else {}
        self.plain = jax.jit(fn, static_argnames=static, **kw)
        self._calls: dict[str, Callable] = {}
        self._by_signature: dict[tuple, Callable] = {}  # (statics, tree, shapes and dtypes) -> a program of _calls
        self._exports: dict[str, object] = {}  # key -> the jax.export.Exported traced or read by this process

    def __call__(self, *args, **kw):
        static = dict(zip(self.static, args[self.narrays :]), **kw)
        args = args[: self.narrays]
        where = directory()
        if where is None:
            return self.plain(*args, **static)
        leaves, treedef = jax.tree_util.tree_flatten(args)
        statics = tuple(static[k] for k in self.static)
        # the program of a signature seen before, found by hashing: the file key (a repr of the statics and a
        # string per leaf) cost 0.11 ms of sleepstudy's 1 ms warm fit
        sig = (statics, treedef, tuple((np.shape(x), _dtype(x)) for x in leaves))
        call = self._by_signature.get(sig)
        if call is None:
            key = _key(self.name, statics, leaves, treedef, self.options)
            call = self._resolve(key, where, treedef, leaves, static)
            self._by_signature[sig] = call
        return jax.tree_util.tree_unflatten(self.out_tree, call(*leaves))

    def _resolve(self, key: str, where: Path, treedef, leaves, static):
        """The program of ``key``, made once: by a prefetch (waited for), else here."""
        with self._lock:
            got = self._calls.get(key)
        if isinstance(got, Future):
            try:
                got = got.result()
            except Exception:  # the prefetch failed: made here, where its error (if any) is the caller's
                got = None
        if got is None:
            got = self._load_or_export(key, where, treedef, leaves, static)
        with self._lock:
            self._calls[key] = got
        return got

    def prefetch(self, *args, trace: str = "here", **kw) -> None:
        """Start making the program for arguments like these (shapes, dtypes, static values; the values are not
        used) in the background: read or traced, then compiled (from JAX's cache when it has it), so that a later
        call or :meth:`bind` finds it made. Nothing when the cache is off or ``ahead`` is False. A trace on disk is
        always read back in the background; ``trace`` says where a program not yet traced is traced: "here" (in the
        caller's thread before this returns, only XLA's compile in the background: the caller's next work overlaps
        the compile without a second thread tracing under the same GIL) or "background" (with its compile)."""
        if trace not in ("background", "here"):
            raise ValueError(f"trace must be 'here' or 'background', not {trace!r}")
        static = dict(zip(self.static, args[self.narrays :]), **kw)
        args = args[: self.narrays]
        where = directory()
        if where is None or not self.ahead:
            return
        leaves, treedef = jax.tree_util.tree_flatten(args)
        statics = tuple(static[k] for k in self.static)
        sig = (statics, treedef, tuple((np.shape(x), _dtype(x)) for x in leaves))
        if sig in self._by_signature:  # made before: no file key (a repr of the plan, ~2 ms) on a warm fit
            return
        key = _key(self.name, statics, leaves, treedef, self.options)
        with self._lock:
            if key in self._calls:
                return
        specs = [jax.ShapeDtypeStruct(np.shape(x), _dtype(x)) for x in leaves]  # no values: no transfer
        if (where / f"{self.name}-{key}.bin").exists() or trace == "background":
            job = _worker().submit(self._load_or_export, key, where, treedef, specs, static)
        else:
            lowered = self._lowered(self._exported(key, where, treedef, specs, static), specs)
            job = _worker().submit(lowered.compile, self.options)
        with self._lock:
            self._calls.setdefault(key, job)

    def bind(self, *args, fixed: tuple[int, ...] = (), **kw) -> Callable:
        """The program for arguments like these (shapes, dtypes, tree structure and static values): a function of
        the array arguments alone that skips the cache key of every call (a fit calls one program dozens of times
        with the same shapes; the key, a repr of the static plan, cost about 2 ms a call: 20% of a small GLMM's
        warm fit). ``fixed``: positions of array arguments whose values are kept from this call (the model's data:
        not flattened again); the function then takes the others, in order. The caller promises arguments of the
        same shapes and the same static values."""
        static = dict(zip(self.static, args[self.narrays :]), **kw)
        args = args[: self.narrays]
        where = directory()
        if where is None:
            def plain(*free):
                it = iter(free)
                return self.plain(*[args[i] if i in fixed else next(it) for i in range(len(args))], **static)

            return plain
        leaves, treedef = jax.tree_util.tree_flatten(args)
        statics = tuple(static[k] for k in self.static)
        sig = (statics, treedef, tuple((np.shape(x), _dtype(x)) for x in leaves))
        call = self._by_signature.get(sig)
        if call is None:
            call = self._resolve(_key(self.name, statics, leaves, treedef, self.options), where, treedef, leaves,
                                 static)
            self._by_signature[sig] = call
        out_tree = self.out_tree
        kept = {i: jax.tree_util.tree_leaves(args[i]) for i in fixed}

        def bound(*free):
            it, flat = iter(free), []
            for i in range(len(args)):
                flat.extend(kept[i] if i in kept else jax.tree_util.tree_leaves(next(it)))
            return jax.tree_util.tree_unflatten(out_tree, call(*flat))

        return bound

    def out_specs(self, *args, **kw):
        """The shapes and dtypes of the program's result for arguments like these (a pytree of
        jax.ShapeDtypeStruct), without compiling: from its trace (kept by this process or on disk), else by
        ``jax.eval_shape`` (a trace). For prefetching a program that takes this one's result."""
        static = dict(zip(self.static, args[self.narrays :]), **kw)
        args = args[: self.narrays]
        where = directory()
        exp = None
        if where is not None:
            leaves, treedef = jax.tree_util.tree_flatten(args)
            key = _key(self.name, tuple(static[k] for k in self.static), leaves, treedef, self.options)
            exp = self._known(key, where)
        if exp is None:
            return jax.eval_shape(lambda *a: self.fn(*a, **static), *args)
        specs = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in exp.out_avals]
        return jax.tree_util.tree_unflatten(self.out_tree, specs)

    def _known(self, key: str, where: Path):
        """The Exported of ``key`` this process traced or read, else the one on disk, else None."""
        return self._exports.get(key) or self._read(where / f"{self.name}-{key}.bin")

    @staticmethod
    def _read(path: Path):
        """The Exported kept at ``path``, or None (no file, or one that cannot be read)."""
        if not path.exists():
            return None
        try:
            return jax.export.deserialize(bytearray(path.read_bytes()))
        except Exception:  # a truncated or foreign file: traced again and rewritten by _exported
            return None

    def _exported(self, key: str, where: Path, treedef, leaves, static):
        """The program's jax.export.Exported: read from disk, else traced and written there."""
        exp = self._known(key, where)
        if exp is not None:
            self._exports[key] = exp
            return exp
        path = where / f"{self.name}-{key}.bin"

        def flat(*xs):
            out = self.fn(*jax.tree_util.tree_unflatten(treedef, xs), **static)
            return tuple(jax.tree_util.tree_leaves(out))

        specs = [jax.ShapeDtypeStruct(np.shape(x), _dtype(x)) for x in leaves]
        with collector.paused():  # a trace makes many objects and little garbage
            exp = jax.export.export(jax.jit(flat))(*specs)
        try:
            where.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(exp.serialize())
            tmp.replace(path)  # atomic: a concurrent reader sees the old file or the whole new one
        except OSError:
            pass  # a read-only cache directory: the program is used in this process only
        self._exports[key] = exp
        return exp

    @staticmethod
    def _lowered(exp, leaves):
        with collector.paused():
            return jax.jit(exp.call).lower(*[jax.ShapeDtypeStruct(np.shape(x), _dtype(x)) for x in leaves])

    def _load_or_export(self, key: str, where: Path, treedef, leaves, static):
        exp = self._exported(key, where, treedef, leaves, static)
        if not self.ahead:
            return jax.jit(exp.call, **({"compiler_options": self.options} if self.options else {}))
        return self._lowered(exp, leaves).compile(self.options)  # JAX's compilation cache applies
