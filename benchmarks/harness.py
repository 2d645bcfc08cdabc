"""Running one engine's worker in a subprocess: pinned threads, wall time from outside, peak memory, limits; and
the facts about the machine that a result is read against (versions, speed, load).

BLAS (OpenBLAS, MKL), OpenMP and Eigen are pinned to one thread for every engine, so the numbers are stable on a
shared machine. XLA's own matrix products are not limited by these settings and may use every core; the workers
record CPU time beside wall time where it matters.
"""

from __future__ import annotations

import enum
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

PIN = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


def pin_threads() -> None:
    """Set PIN in this process's environment (call before anything imports numpy or jax)."""
    os.environ.update(PIN)


class Status(str, enum.Enum):
    """How a subprocess ended."""

    OK = "ok"
    TIMEOUT = "timeout"  # killed past its time limit
    MEMORY = "memory"  # killed past its resident-memory limit
    ERROR = "error"  # exited with a non-zero status


class ProcessResult(NamedTuple):
    status: Status
    rc: int  # exit status
    wall_s: float  # from start to exit, timed from outside (interpreter start and exit included)
    maxrss_mb: float  # the child's peak resident set size (ru_maxrss from os.wait4)
    stdout: str  # the last 4,000 characters
    stderr: str  # the last 4,000 characters

    def last_json(self) -> dict | None:
        """The last line of stdout that parses as a JSON object, if any."""
        for line in reversed(self.stdout.strip().splitlines()):
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    return None
        return None

    def reason(self, timeout: float, mem_limit_mb: float) -> str:
        """Why it did not succeed, in words for the report."""
        if self.status is Status.TIMEOUT:
            return f"timeout (> {timeout:.0f} s)"
        if self.status is Status.MEMORY:
            return f"killed: resident memory > {mem_limit_mb / 1024:.0f} GB"
        tail = (self.stderr.strip().splitlines() or ["?"])[-1]
        return f"error (rc {self.rc}): {tail[:200]}"


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def compile_bytecode() -> None:
    """Byte-compile mixedjax's modules, as ``pip install`` does for a user: an editable checkout on a machine with
    PYTHONDONTWRITEBYTECODE set has none, and a new process then compiles every module from source (0.13 s more on
    sleepstudy's import, docs/performance.md "A new process, stage by stage")."""
    import compileall

    compileall.compile_dir(str(ROOT / "mixedjax"), quiet=1)


def run_process(cmd: list[str], timeout: float, mem_limit_mb: float, env: dict | None = None) -> ProcessResult:
    """Run ``cmd`` in the repository root with the pinned environment (plus ``env``); kill it past ``timeout``
    seconds or ``mem_limit_mb`` of resident memory."""
    full_env = dict(os.environ, **PIN, **(env or {}))
    out, err = tempfile.TemporaryFile(mode="w+"), tempfile.TemporaryFile(mode="w+")
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=out, stderr=err, env=full_env, cwd=ROOT)
    killed: Status | None = None
    last_check = 0.0
    while True:
        pid, wstatus, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            wall = time.perf_counter() - t0
            break
        now = time.perf_counter() - t0
        if killed is None:
            if now > timeout:
                killed = Status.TIMEOUT
            elif now - last_check > 0.2:
                last_check = now
                if _rss_mb(p.pid) > mem_limit_mb:
                    killed = Status.MEMORY
            if killed is not None:
                p.kill()
        time.sleep(0.002 if now < 5 else 0.02)  # short polls early: small models' processes last about a second
    rc = os.waitstatus_to_exitcode(wstatus)
    out.seek(0)
    err.seek(0)
    status = killed or (Status.OK if rc == 0 else Status.ERROR)
    return ProcessResult(status, rc, wall, ru.ru_maxrss / 1024, out.read()[-4000:], err.read()[-4000:])


def have_lme4() -> bool:
    if not shutil.which("Rscript"):
        return False
    r = subprocess.run(["Rscript", "-e", "library(lme4)"], capture_output=True, env=dict(os.environ, **PIN))
    return r.returncode == 0


def reference_cholesky_ms() -> float:
    """The machine's speed now: median time of scipy's one-thread Cholesky factor (the LAPACK that JAX's CPU
    Cholesky calls) of a fixed 1,157² matrix, InstEval's dense block size. A shared machine's speed drifts, so it is
    taken before every model and reported beside its times."""
    import numpy as np
    import scipy.linalg

    A = np.random.default_rng(0).standard_normal((1157, 1157))
    S = A @ A.T + 1157 * np.eye(1157)
    ts = []
    for _ in range(9):
        t = time.perf_counter()
        scipy.linalg.cholesky(S, lower=True, check_finite=False)
        ts.append(time.perf_counter() - t)
    return 1e3 * statistics.median(ts)


def machine_info() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cores": os.cpu_count()}
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor() or "?"
    try:
        info["affinity_cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()
        info["ram_gb"] = round(int(mem[0].split()[1]) / 1024**2, 1)
    except OSError:
        pass
    try:
        info["loadavg_start"] = os.getloadavg()
    except OSError:
        pass
    return info


def versions(with_r: bool) -> dict:
    import importlib.metadata as md

    v = {"python": platform.python_version()}
    for pkg in ("jax", "jaxlib", "numpy", "scipy", "pandas", "formulaic", "nlopt", "statsmodels"):
        try:
            v[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            v[pkg] = None
    if with_r:
        r = subprocess.run(
            ["Rscript", "-e", 'cat(R.version.string, "|", as.character(packageVersion("lme4")), "|", '
             'as.character(packageVersion("Matrix")), "|", La_library(), "\\n")'],
            capture_output=True, text=True, env=dict(os.environ, **PIN))
        parts = [s.strip() for s in r.stdout.split("|")]
        if len(parts) >= 3:
            v["R"], v["lme4"], v["Matrix"] = parts[:3]
            v["R_lapack"] = parts[3] if len(parts) > 3 else None
    try:
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        dirty = subprocess.run(["git", "status", "--porcelain", "mixedjax"], capture_output=True, text=True, cwd=ROOT)
        v["mixedjax_git"] = git.stdout.strip() + (" (+ uncommitted changes in mixedjax/)" if dirty.stdout.strip() else "")
    except OSError:
        pass
    return v


def replace_section(path: Path, heading: str, text: str) -> None:
    """Put ``text`` in place of RESULTS.md's section that starts at ``heading`` (a "## ..." line), up to the next
    "## " heading, so the sections other scripts own stay; append it when the file has none."""
    old = path.read_text() if path.exists() else ""
    i = old.find("\n" + heading.strip())
    if i < 0:
        path.write_text(old.rstrip("\n") + "\n\n" + text)
        return
    j = old.find("\n## ", i + 1 + len(heading.strip()))
    tail = "" if j < 0 else "\n" + old[j:].lstrip("\n")
    path.write_text(old[:i].rstrip("\n") + "\n\n" + text + tail)
