"""Shared helpers of the benchmark suite: progress output, child-process bookkeeping and cleanup,
CPU/RSS of a process tree, simple statistics, versions and machine facts.

Every process the suite starts is started in its own session (``start_new_session=True``) and
recorded here, so ``cleanup()`` can kill its whole process group even after a failure.
"""

from __future__ import annotations

import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import psutil

REPO = Path(__file__).resolve().parent.parent
_T0 = time.monotonic()


def log(message: str) -> None:
    """One progress line with the wall time since the suite started."""
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", flush=True)


# --- processes -------------------------------------------------------------------------------

_groups: dict[int, str] = {}  # pgid -> what it is (for messages)


def track(pid: int, what: str) -> None:
    """Remember a process started in its own session: cleanup() kills its group."""
    _groups[pid] = what


def untrack(pid: int) -> None:
    _groups.pop(pid, None)


def kill_group(pid: int, grace_s: float = 3.0) -> None:
    """SIGTERM the process group ``pid``, then SIGKILL whatever is left after ``grace_s``."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        untrack(pid)
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            break
        _reap(pid)
        time.sleep(0.02)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.waitpid(pid, 0)  # our child: reaped now, so its CPU time counts as ours
    except ChildProcessError:
        pass
    untrack(pid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def cleanup() -> None:
    """Kill every process group the suite started and has not stopped yet."""
    for pid, what in list(_groups.items()):
        if _group_alive(pid):
            log(f"cleanup: killing {what} (process group {pid})")
        kill_group(pid, grace_s=1.0)


def popen(command: list[str], *, what: str, cwd: Path, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start ``command`` in its own session with output to ``log_path``; tracked for cleanup."""
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    track(proc.pid, what)
    return proc


STOPPING = False  #: set by a signal: the suite stops after cleaning up


def install_signal_handlers() -> None:
    """SIGTERM/SIGHUP behave like Ctrl-C, so the try/finally blocks clean up. The flag tells the
    suite to stop even when the interrupt surfaced as another exception (DuckDB turns it into
    ``RuntimeError: Query interrupted``)."""
    def interrupt(signum: int, frame: Any) -> None:
        global STOPPING
        STOPPING = True
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, interrupt)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)


# --- cost of a process tree ------------------------------------------------------------------

def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def idle_cost(pid: int, seconds: float) -> dict[str, float]:
    """CPU % of one core used by the tree of ``pid`` over ``seconds`` (``cpu``); its RSS in MB
    summed over the tree (``rss``) and of ``pid`` alone (``rss_root``); its PSS summed over the
    tree (``pss``: a page shared by forked processes counted once, split among them); ``procs``
    in the tree."""
    before = {p.pid: (p, _cpu_s(p)) for p in tree(pid)}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    used = 0.0
    rss = root_rss = pss = 0
    procs = tree(pid)
    for p in procs:
        try:
            now = _cpu_s(p)
            mem = p.memory_info().rss
            pss += getattr(p.memory_full_info(), "pss", mem)  # Linux only; RSS elsewhere
        except psutil.NoSuchProcess:
            continue
        rss += mem
        if p.pid == pid:
            root_rss = mem
        used += now - before[p.pid][1] if p.pid in before else now
    return {"cpu": 100.0 * used / elapsed, "rss": rss / 1e6, "rss_root": root_rss / 1e6,
            "pss": pss / 1e6, "procs": len(procs)}


def tree_cpu_s(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and every process below it (those reaped included)."""
    total = 0.0
    for proc in tree(pid):
        try:
            total += _cpu_s(proc)
        except psutil.NoSuchProcess:
            continue
    return total


def watch_drain(pid: int, mark: Path, n: int, timeout_s: float,
                check: Callable[[], None]) -> dict[str, float]:
    """Wait until the mark file holds ``n`` bytes (``n`` tick jobs ran), the consumer ``pid``
    started just before: seconds from the call to the first byte (``first_s``) and to the last
    (``elapsed``), and the CPU seconds of the consumer's process tree at those two moments
    (``cpu_first``, ``cpu_done``). ``check`` raises if the consumer died. Polls every 0.5 ms
    (a ``stat``): the tree's CPU is read twice only, so the watching costs the consumer little."""
    t0 = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    first_s = cpu_first = math.nan
    size = 0
    while True:
        try:
            size = os.stat(mark).st_size
        except FileNotFoundError:
            size = 0
        if size and math.isnan(first_s):
            first_s = time.perf_counter() - t0
            cpu_first = tree_cpu_s(pid)
        if size >= n:
            elapsed = time.perf_counter() - t0
            return {"elapsed": elapsed, "first_s": first_s, "cpu_first": cpu_first,
                    "cpu_done": tree_cpu_s(pid)}
        if time.monotonic() > deadline:
            check()
            raise TimeoutError(f"only {size}/{n} tick jobs ran within {timeout_s:g} s")
        if not size:
            check()
        time.sleep(0.0005)


def rusage_children_s() -> float:
    """CPU seconds of this process's reaped children (and of what they reaped) so far."""
    t = os.times()
    return t.children_user + t.children_system


def drain_cpu_figures(n: int, d: dict[str, float]) -> dict[str, float]:
    """The figures of a result-less drain (``watch_drain``'s values, ``n`` jobs)."""
    return {"tick_rate": n / d["elapsed"], "tick_first_s": d["first_s"],
            "tick_cpu_ms": 1000 * d["cpu_done"] / n,
            "tick_cpu_run_ms": 1000 * (d["cpu_done"] - d["cpu_first"]) / max(1, n - 1),
            "tick_cpu_start_s": d["cpu_first"]}


# --- statistics ------------------------------------------------------------------------------

def wait_file(path: Path, timeout_s: float = 30.0,
              on_timeout: Callable[[], None] | None = None) -> float:
    """The float a job body wrote into ``path`` (its start time), once it is there.

    ``on_timeout`` runs before the TimeoutError, to report a consumer that died instead."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return float(path.read_text())
        except (FileNotFoundError, ValueError):
            if time.monotonic() > deadline:
                if on_timeout is not None:
                    on_timeout()
                raise TimeoutError(f"{path} did not appear within {timeout_s:g} s")
            time.sleep(0.0005)


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks."""
    data = sorted(values)
    if not data:
        return float("nan")
    k = (len(data) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


# --- facts for RESULTS.md --------------------------------------------------------------------

def _run(command: list[str]) -> str:
    try:
        return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def source_fingerprint() -> str:
    """A hash of notebookjobs' source files: tells whether the package changed during a run."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((REPO / "notebookjobs").rglob("*.py")):
        try:
            digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
        except OSError:
            continue
    return digest.hexdigest()[:12]


def versions() -> dict[str, str]:
    import duckdb
    import pandas

    try:
        import huey
        huey_version = huey.__version__
    except ImportError:
        huey_version = "not installed"
    commit = _run(["git", "rev-parse", "--short=12", "HEAD"]) or "unknown"
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no", "--", "notebookjobs"])
    untracked = _run(["git", "status", "--porcelain", "--", "notebookjobs"])
    if dirty or untracked:
        commit += " + uncommitted changes in notebookjobs/"
    return {
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pandas": pandas.__version__,
        "huey": huey_version,
        "psutil": psutil.__version__,
        "notebookjobs": commit,
    }


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": model,
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "kernel": platform.release(),
        "python executable": sys.executable,
    }


# --- other processes on the machine ----------------------------------------------------------

def _busy_s() -> float:
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)


def _own_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class OtherLoad:
    """CPU used by processes that are not ours (this process and the children it reaped) while
    a figure is measured, as % of the whole machine: other sessions' tests skew the figures."""

    def __enter__(self) -> "OtherLoad":
        self._busy, self._own, self._t = _busy_s(), _own_s(), time.monotonic()
        return self

    def __exit__(self, *exc: Any) -> None:
        wall = max(1e-6, time.monotonic() - self._t)
        others = max(0.0, (_busy_s() - self._busy) - (_own_s() - self._own))
        self.percent = 100.0 * others / wall / (os.cpu_count() or 1)


def wait_until_quiet(max_wait_s: float, threshold: float = 25.0) -> float:
    """Wait (up to ``max_wait_s``) until the machine is less than ``threshold`` % busy over one
    second (nothing of ours runs between figures); returns the last busy % seen."""
    deadline = time.monotonic() + max_wait_s
    busy = psutil.cpu_percent(interval=1.0 if max_wait_s > 0 else 0.2)
    announced = False
    while busy > threshold and time.monotonic() < deadline:
        if not announced:
            log(f"  the machine is {busy:.0f} % busy with other processes; waiting up to "
                f"{max_wait_s:.0f}s for it to calm down")
            announced = True
        busy = psutil.cpu_percent(interval=2.0)
    return busy
