"""The Huey figures: SqliteHuey with process and thread workers, at its defaults and tuned, running
the same job bodies as notebookjobs (bench_bodies.BODIES).

The consumer is ``python -m huey.bin.huey_consumer hbench_tasks.huey -w 2 -k KIND [tuning]`` in its
own session. It has no burst mode, so a drain is timed from the consumer's start to the largest
result (each body returns time.time() when it ends), then the consumer is stopped.
"""

from __future__ import annotations

import importlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import bench_bodies
from bench_common import (drain_cpu_figures, idle_cost, kill_group, log, median, percentile, popen, rusage_children_s,
                          untrack, wait_file, watch_drain)

TASKS_MODULE = "hbench_tasks"

TASKS_SOURCE = bench_bodies.BODIES + '''

import os as _os

from huey import SqliteHuey as _SqliteHuey

_fsync = _os.environ.get("HBENCH_FSYNC", "")
huey = _SqliteHuey(name="bench", filename=_os.environ.get("HBENCH_DB", "unused.db"),
                   fsync=None if _fsync == "" else _fsync == "1")
TASKS = {name: huey.task()(globals()[name]) for name in ("noop", "sleep10", "stamp", "tick")}
'''


@dataclass(frozen=True)
class Config:
    key: str  #: results key
    label: str  #: column title
    kind: str  #: huey worker type: process or thread
    fsync: bool | None  #: SqliteHuey(fsync=...): None leaves SQLite's default (synchronous=FULL)
    consumer_args: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        storage = "SqliteHuey(filename=...)" if self.fsync is None else f"SqliteHuey(filename=..., fsync={self.fsync})"
        return f"{storage}; huey_consumer -w 2 -k {self.kind} {' '.join(self.consumer_args)}".strip()


#: 1 ms polling, never backing off, and no fsync: the configuration the issue calls "tuned".
TUNED = ("-d", "0.001", "-m", "0.001", "-b", "1.0")

CONFIGS = (
    Config("huey_proc", "Huey SQLite, 2 processes, defaults", "process", None),
    Config("huey_proc_tuned", "Huey SQLite, 2 processes, tuned", "process", False, TUNED),
    Config("huey_thread", "Huey SQLite, 2 threads, defaults", "thread", None),
    Config("huey_thread_tuned", "Huey SQLite, 2 threads, tuned", "thread", False, TUNED),
)


class HueyBench:
    """One Huey configuration in its own temp dir."""

    def __init__(self, folder: Path, config: Config) -> None:
        self.folder = folder
        self.config = config
        folder.mkdir(parents=True)
        (folder / f"{TASKS_MODULE}.py").write_text(TASKS_SOURCE)
        self.db = folder / "huey.db"
        self.effects = folder / "effects"
        self.effects.mkdir()
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        self._module = None
        self._huey = None

    def _tasks_module(self):
        if self._module is None:
            importlib.invalidate_caches()
            # Importing the module makes its own SqliteHuey: point it at a throwaway file here.
            saved = os.environ.get("HBENCH_DB")
            os.environ["HBENCH_DB"] = str(self.folder / "import-only.db")
            try:
                self._module = importlib.import_module(TASKS_MODULE)
            finally:
                if saved is None:
                    os.environ.pop("HBENCH_DB", None)
                else:
                    os.environ["HBENCH_DB"] = saved
        return self._module

    def reset(self) -> None:
        """A fresh database file and a fresh client on it."""
        self.reset_client()
        for path in self.folder.glob("huey.db*"):
            path.unlink()
        for path in self.effects.iterdir():
            path.unlink()

    def save_template(self, name: str) -> None:
        """Keep a copy of the queue file (client closed, no consumer) for the later runs."""
        self.reset_client()
        folder = self.folder / "templates" / name
        folder.mkdir(parents=True)
        for path in self.folder.glob("huey.db*"):
            shutil.copy2(path, folder / path.name)

    def load_template(self, name: str) -> bool:
        folder = self.folder / "templates" / name
        if not folder.is_dir():
            return False
        self.reset()
        for path in folder.iterdir():
            shutil.copy2(path, self.folder / path.name)
        return True

    def reset_client(self) -> None:
        if self._huey is not None:
            self._huey.storage.close()
            self._huey = None

    def client(self):
        """A SqliteHuey on this config's file with the same task functions registered."""
        if self._huey is None:
            from huey import SqliteHuey

            module = self._tasks_module()
            self._huey = SqliteHuey(name="bench", filename=str(self.db), fsync=self.config.fsync)
            self._tasks = {name: self._huey.task()(getattr(module, name)) for name in bench_bodies.NAMES}
        return self._huey

    def task(self, name: str):
        self.client()
        return self._tasks[name]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.folder), env.get("PYTHONPATH")]))
        env["HBENCH_DB"] = str(self.db)
        env["HBENCH_FSYNC"] = "" if self.config.fsync is None else ("1" if self.config.fsync else "0")
        env[bench_bodies.MARK_ENV] = str(self.mark)
        return env

    @property
    def mark(self) -> Path:
        """The file the tick jobs append to."""
        return self.effects / "mark"

    def start_consumer(self) -> subprocess.Popen:
        command = [sys.executable, "-m", "huey.bin.huey_consumer", f"{TASKS_MODULE}.huey",
                   "-w", "2", "-k", self.config.kind, *self.config.consumer_args]
        return popen(command, what=f"huey consumer ({self.config.key})", cwd=self.folder,
                     env=self.env(), log_path=self.folder / "consumer.log")

    def stop_consumer(self, proc: subprocess.Popen) -> None:
        # SIGINT is Huey's graceful stop: the consumer joins its workers, so their CPU time is
        # accounted to it (and to us); then the group is killed in case anything is left.
        try:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=10)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
        kill_group(proc.pid, grace_s=2.0)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        untrack(proc.pid)

    def _check(self, proc: subprocess.Popen) -> None:
        if proc.poll() is not None:
            tail = (self.folder / "consumer.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the huey consumer exited with code {proc.returncode}:\n{tail}")

    def enqueue(self, name: str, n: int) -> None:
        task = self.task(name)
        started = time.monotonic()
        for i in range(n):
            task()
            if n >= 5000 and (i + 1) % (n // 5) == 0:
                log(f"  enqueued {i + 1:,}/{n:,} ({time.monotonic() - started:.1f}s)")

    def wait_one(self, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
        """Run one stamp job and wait for it: the consumer is up and has workers."""
        path = self.effects / f"ready-{time.monotonic_ns()}"
        self.task("stamp")(str(path))
        self._wait_file(path, proc, timeout_s)

    def _wait_file(self, path: Path, proc: subprocess.Popen, timeout_s: float = 30.0) -> float:
        return wait_file(path, timeout_s, on_timeout=lambda: self._check(proc))


# --- figures ---------------------------------------------------------------------------------

def drain(bench: HueyBench, n: int, name: str) -> dict[str, float]:
    if not bench.load_template(f"{name}{n}"):
        bench.reset()
        log(f"  enqueueing {n:,} x {name}")
        bench.enqueue(name, n)
        bench.save_template(f"{name}{n}")
    h = bench.client()
    log(f"  running the consumer until {n:,} results are stored")
    cpu0 = rusage_children_s()
    wall0 = time.time()
    proc = bench.start_consumer()
    try:
        deadline = time.monotonic() + max(120.0, n / 20)
        while h.result_count() < n:
            bench._check(proc)
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {h.result_count()}/{n} results after {max(120.0, n / 20):g} s")
            time.sleep(0.05)
    finally:
        bench.stop_consumer(proc)
    cpu = rusage_children_s() - cpu0  # the consumer's tree, reaped (its stop included)
    ends = [h.serializer.deserialize(v) for v in h.all_results().values()]
    to_last = max(ends) - wall0
    first_to_last = max(ends) - min(ends)
    log(f"  {n:,} jobs: {to_last:.2f}s start->last result ({n / to_last:,.0f}/s), "
        f"{first_to_last:.2f}s first->last result")
    return {"to_last": to_last, "first_to_last": first_to_last, "cpu": cpu}


def drain_figures(bench: HueyBench, n: int) -> dict[str, float]:
    d = drain(bench, n, "noop")
    return {"drain_rate_last": n / d["to_last"], "drain_cpu_ms": 1000 * d["cpu"] / n,
            "drain_rate_db": (n - 1) / d["first_to_last"] if d["first_to_last"] > 0 else float("nan")}


def tick_figures(bench: HueyBench, n: int) -> dict[str, float]:
    """The result-less drain: ``n`` tick jobs enqueued, then the consumer, timed from its start
    until the mark file holds ``n`` bytes; the CPU of its tree (consumer and workers) then."""
    if not bench.load_template(f"tick{n}"):
        bench.reset()
        log(f"  enqueueing {n:,} x tick")
        bench.enqueue("tick", n)
        bench.save_template(f"tick{n}")
    bench.reset_client()
    for path in bench.effects.iterdir():
        path.unlink()
    log(f"  running the consumer until {n:,} tick jobs ran")
    proc = bench.start_consumer()
    try:
        d = watch_drain(proc.pid, bench.mark, n, max(120.0, n / 20), lambda: bench._check(proc))
    finally:
        bench.stop_consumer(proc)
    out = drain_cpu_figures(n, d)
    log(f"  {n:,} tick jobs: {d['elapsed']:.2f}s ({out['tick_rate']:,.0f}/s), first after "
        f"{d['first_s']:.3f}s; CPU of the tree {out['tick_cpu_ms']:.3f} ms/job "
        f"({out['tick_cpu_run_ms']:.3f} after the first, {d['cpu_first']:.2f}s to the first)")
    return out


def sleep_figures(bench: HueyBench, n: int) -> dict[str, float]:
    d = drain(bench, n, "sleep10")
    return {"sleep_elapsed": d["to_last"], "sleep_overhead_last": 1000 * (d["to_last"] - n * 0.01 / 2) / n}


def dispatch_figures(bench: HueyBench, n: int) -> dict[str, float]:
    bench.reset()
    proc = bench.start_consumer()
    try:
        bench.wait_one(proc)
        noop = bench.task("noop")
        for _ in range(20):
            noop()
        times = []
        t_all = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            noop()
            times.append(time.perf_counter() - t0)
        total = time.perf_counter() - t_all
    finally:
        bench.stop_consumer(proc)
    ms = median(times) * 1000
    log(f"  enqueue: median {ms:.3f} ms/call, {n / total:,.0f} calls/s")
    return {"dispatch_ms": ms, "dispatch_rate": n / total, "dispatch_p99": percentile(times, 99) * 1000}


def latency_figures(bench: HueyBench, samples: int, seed: int) -> dict[str, float]:
    bench.reset()
    rng = random.Random(seed)
    proc = bench.start_consumer()
    lat, lat_call = [], []
    try:
        bench.wait_one(proc)
        stamp = bench.task("stamp")
        for i in range(-5, samples):
            time.sleep(rng.uniform(0.05, 0.10))
            path = bench.effects / f"lat-{i}"
            t0 = time.time()
            stamp(str(path))
            t1 = time.time()
            started = bench._wait_file(path, proc)
            if i >= 0:
                lat.append(started - t1)
                lat_call.append(started - t0)
            if samples >= 50 and i >= 0 and (i + 1) % (samples // 4) == 0:
                log(f"  latency samples {i + 1}/{samples}")
    finally:
        bench.stop_consumer(proc)
    out = {"lat_p50": percentile(lat, 50) * 1000, "lat_p90": percentile(lat, 90) * 1000,
           "lat_p99": percentile(lat, 99) * 1000, "lat_call_p50": percentile(lat_call, 50) * 1000}
    log(f"  latency p50 {out['lat_p50']:.2f} ms, p90 {out['lat_p90']:.2f}, p99 {out['lat_p99']:.2f}")
    return out


def idle_figures(bench: HueyBench, seconds: float, settle_s: float) -> dict[str, float]:
    bench.reset()
    proc = bench.start_consumer()
    try:
        bench.wait_one(proc)
        time.sleep(settle_s)
        log(f"  measuring the idle consumer's CPU over {seconds:g}s")
        cost = idle_cost(proc.pid, seconds)
        path = bench.effects / "after-idle"
        t0 = time.time()
        bench.task("stamp")(str(path))
        after_idle = bench._wait_file(path, proc) - t0
    finally:
        bench.stop_consumer(proc)
    log(f"  idle CPU {cost['cpu']:.2f} %, RSS {cost['rss']:.0f} MB ({cost['rss_root']:.0f} MB the consumer alone, "
        f"{cost['procs']} processes), dispatch-to-start after idle {after_idle * 1000:.2f} ms")
    return {"idle_cpu": cost["cpu"], "rss": cost["rss"], "rss_root": cost["rss_root"], "procs": cost["procs"],
            "lat_after_idle": after_idle * 1000}
