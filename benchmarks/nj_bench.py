"""The notebookjobs figures of SPEC §13, each measured on a real project folder in a temp dir.

This process talks to notebookjobs only through its public API (``nj.dispatch``, ...), except
where the brief says otherwise: the drain is timed on ``python -m notebookjobs.worker --burst``
and read back from the DB file afterwards, and the scale figures write their million-job history
with bulk SQL and time a claim as the worker makes it (in memory, then its commit) on a
``Database`` directly.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bench_bodies
from bench_common import (REPO, drain_cpu_figures, idle_cost, kill_group, log, median, percentile, popen,
                          rusage_children_s, source_fingerprint, track, untrack, wait_file, watch_drain)

# The queues here are filled with no worker running on purpose (autostart off): the warning
# that nothing will run them (SPEC §12) is for users, not for the benchmark's log.
warnings.filterwarnings("ignore", message=".*no worker is running")

WHITELIST = """\
retry_attempts: 0
retry_delay: 0
timeout: null
worker: {concurrency: 2, autostart: false, grace_period: 5}
allowed_jobs:
  jobs.bench: [noop, sleep10, stamp, tick]
"""

NOOP, SLEEP10, STAMP, TICK = "jobs.bench.noop", "jobs.bench.sleep10", "jobs.bench.stamp", "jobs.bench.tick"


def _epoch(ts: datetime | None) -> float | None:
    """A stored timestamp (naive UTC, or aware) as seconds since the epoch."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.timestamp()


class Project:
    """A notebookjobs project root in a temp dir: whitelist.yaml, jobs/bench.py, its queue."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.effects = root / "effects"
        self.templates = root / "templates"
        (root / "jobs").mkdir(parents=True)
        (root / "jobs" / "__init__.py").write_text("")
        (root / "jobs" / "bench.py").write_text(bench_bodies.BODIES)
        (root / "whitelist.yaml").write_text(WHITELIST)
        self.effects.mkdir()
        self.templates.mkdir()
        self.db_override: Path | None = None
        self.activate()

    # --- environment -------------------------------------------------------------------------

    @property
    def db(self) -> Path:
        return self.db_override or self.root / ".notebookjobs" / "queue.duckdb"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["NOTEBOOKJOBS_ROOT"] = str(self.root)
        env.pop("NOTEBOOKJOBS_DB", None)
        if self.db_override is not None:
            env["NOTEBOOKJOBS_DB"] = str(self.db_override)
        # The worker and its children must import the same notebookjobs as this process.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env[bench_bodies.MARK_ENV] = str(self.mark)
        return env

    @property
    def mark(self) -> Path:
        """The file the tick jobs append to."""
        return self.effects / "mark"

    def activate(self, db: Path | None = None) -> None:
        """Point this process's notebookjobs at the project (and optionally another DB file)."""
        self.db_override = db
        os.environ["NOTEBOOKJOBS_ROOT"] = str(self.root)
        if db is None:
            os.environ.pop("NOTEBOOKJOBS_DB", None)
        else:
            os.environ["NOTEBOOKJOBS_DB"] = str(db)

    def reset(self) -> None:
        """A fresh, empty queue (no worker may run)."""
        folder = self.db.parent
        for path in folder.glob(self.db.name + "*"):
            if path.is_dir():  # the worker's frames folder
                shutil.rmtree(path)
            else:
                path.unlink()
        for path in self.effects.iterdir():
            path.unlink()

    def save_template(self, name: str) -> None:
        """Keep a copy of the (closed) queue file, to start later runs from the same queue."""
        folder = self.templates / name
        folder.mkdir()
        for path in self.db.parent.glob(self.db.name + "*"):
            if path.name.endswith((".lock", ".sock")) or path.is_dir():
                continue
            shutil.copy2(path, folder / path.name)

    def load_template(self, name: str) -> bool:
        folder = self.templates / name
        if not folder.is_dir():
            return False
        self.reset()
        self.db.parent.mkdir(parents=True, exist_ok=True)
        for path in folder.iterdir():
            shutil.copy2(path, self.db.parent / path.name)
        return True

    # --- the queue ---------------------------------------------------------------------------

    def queue(self, n: int, target: str, chunk: int = 2000) -> None:
        """Dispatch ``n`` jobs with no arguments through ``nj.dispatch_many`` (no worker runs),
        then open the queue once, so that they are in its file: a worker then starts on a
        queue as a user's would be. (The dispatches go to the journal; on a new queue the file
        does not exist yet, and the drain would otherwise time creating it, ~1 s.)"""
        import notebookjobs as nj

        done = 0
        started = time.monotonic()
        while done < n:
            size = min(chunk, n - done)
            nj.dispatch_many(target, [[] for _ in range(size)])
            done += size
            if n > chunk:
                log(f"  queued {done:,}/{n:,} ({time.monotonic() - started:.1f}s)")
        nj.counts()

    def queued(self, n: int, target: str, template: str) -> None:
        """The queue holds ``n`` jobs of ``target`` and nothing else (``queue``): made once and
        copied for the later runs, unless notebookjobs' source changed meanwhile (its schema may
        have)."""
        template = f"{template}-{source_fingerprint()}"
        if not self.load_template(template):
            self.reset()
            log(f"  queueing {n:,} x {target} with nj.dispatch_many")
            self.queue(n, target)
            self.save_template(template)

    def read_finished(self) -> dict[str, Any]:
        """Counts and first/last timestamps from the DB file (no worker may run)."""
        import duckdb

        conn = duckdb.connect(str(self.db), read_only=True)
        try:
            rows = dict(conn.execute("SELECT status, count(*) FROM queue GROUP BY status").fetchall())
            first_start, first_end, last_end = conn.execute(
                "SELECT min(started_at), min(finished_at), max(finished_at) FROM queue").fetchone()
        finally:
            conn.close()
        return {"counts": rows, "first_start": _epoch(first_start), "first_end": _epoch(first_end),
                "last_end": _epoch(last_end)}

    # --- workers -----------------------------------------------------------------------------

    def start_detached(self) -> int:
        import notebookjobs as nj

        pid = nj.start_worker(concurrency=2)
        track(pid, "notebookjobs detached worker")
        return pid

    def stop_detached(self, pid: int) -> None:
        import notebookjobs as nj

        try:
            nj.stop_worker()
        except Exception as exc:  # noqa: BLE001 - a stuck worker is killed below
            log(f"  stop_worker failed ({exc}); killing the worker")
        kill_group(pid, grace_s=2.0)
        untrack(pid)

    def burst(self, timeout_s: float) -> tuple[float, float, int]:
        """Run ``python -m notebookjobs.worker --burst --concurrency 2`` until it exits.

        Returns (wall time at start, seconds from start to exit, exit code)."""
        command = [sys.executable, "-m", "notebookjobs.worker", "--burst", "--concurrency", "2"]
        wall0 = time.time()
        t0 = time.perf_counter()
        proc = popen(command, what="notebookjobs burst worker", cwd=self.root, env=self.env(),
                     log_path=self.root / "burst-worker.log")
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            raise RuntimeError(f"the burst worker did not finish within {timeout_s:g} s")
        except BaseException:
            kill_group(proc.pid)
            raise
        elapsed = time.perf_counter() - t0
        untrack(proc.pid)
        return wall0, elapsed, code


# --- figures ---------------------------------------------------------------------------------

def drain(project: Project, n: int, target: str, template: str) -> dict[str, float]:
    """``n`` jobs of ``target`` queued beforehand, then a burst worker with concurrency 2."""
    project.queued(n, target, template)
    log(f"  running the burst worker on {n:,} x {target}")
    cpu0 = rusage_children_s()
    wall0, elapsed, code = project.burst(timeout_s=max(120.0, n / 20))
    cpu = rusage_children_s() - cpu0  # the worker's tree: it reaps its children, we reap it
    info = project.read_finished()
    completed = info["counts"].get("completed", 0)
    if code != 0 or completed != n:
        tail = (project.root / "burst-worker.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"burst worker exit code {code}, {completed}/{n} completed, "
                           f"statuses {info['counts']}; log tail:\n{tail}")
    to_last = info["last_end"] - wall0
    first_to_last = info["last_end"] - info["first_end"]
    log(f"  {n:,} jobs: {elapsed:.2f}s start->exit ({n / elapsed:,.0f}/s), "
        f"{to_last:.2f}s start->last finished_at, {first_to_last:.2f}s first->last finished_at")
    return {"elapsed": elapsed, "to_last": to_last, "first_to_last": first_to_last, "cpu": cpu}


def drain_figures(project: Project, n: int) -> dict[str, float]:
    d = drain(project, n, NOOP, f"noop{n}")
    return {"drain_rate": n / d["elapsed"], "drain_rate_last": n / d["to_last"], "drain_cpu_ms": 1000 * d["cpu"] / n,
            "drain_rate_db": (n - 1) / d["first_to_last"] if d["first_to_last"] > 0 else float("nan")}


def sleep_figures(project: Project, n: int) -> dict[str, float]:
    d = drain(project, n, SLEEP10, f"sleep{n}")
    ideal = n * 0.01 / 2
    return {"sleep_elapsed": d["elapsed"], "sleep_overhead": 1000 * (d["elapsed"] - ideal) / n,
            "sleep_overhead_last": 1000 * (d["to_last"] - ideal) / n}


def tick_figures(project: Project, n: int) -> dict[str, float]:
    """The result-less drain (the peers harness's): ``n`` tick jobs queued, then
    ``python -m notebookjobs.worker --concurrency 2`` (not burst: as Huey's consumer, it runs
    until stopped), timed from its start until the mark file holds ``n`` bytes; the CPU of its
    tree (the worker and its children) then."""
    project.queued(n, TICK, f"tick{n}")
    log(f"  running a worker until {n:,} tick jobs ran")
    command = [sys.executable, "-m", "notebookjobs.worker", "--concurrency", "2"]
    log_path = project.root / "tick-worker.log"

    def check() -> None:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the worker exited with code {proc.returncode}:\n{tail}")

    proc = popen(command, what="notebookjobs worker (tick drain)", cwd=project.root, env=project.env(),
                 log_path=log_path)
    try:
        d = watch_drain(proc.pid, project.mark, n, max(120.0, n / 20), check)
    finally:
        kill_group(proc.pid, grace_s=10.0)  # SIGTERM: the worker's graceful stop
        untrack(proc.pid)
    out = drain_cpu_figures(n, d)
    log(f"  {n:,} tick jobs: {d['elapsed']:.2f}s ({out['tick_rate']:,.0f}/s), first after "
        f"{d['first_s']:.3f}s; CPU of the tree {out['tick_cpu_ms']:.3f} ms/job "
        f"({out['tick_cpu_run_ms']:.3f} after the first, {d['cpu_first']:.2f}s to the first)")
    return out


def disk_floor(folder: Path, n: int) -> list[float]:
    """Seconds of ``n`` appends of a dispatch-sized record (200 bytes), each ``fdatasync``ed, to
    a file in ``folder``, nothing else running: what a durable dispatch cannot go below on this
    disk (SPEC §13 asks for durable before it returns)."""
    path = folder / "disk-floor.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(fd, b"x" * 200)
            os.fdatasync(fd)
            times.append(time.perf_counter() - t0)
            time.sleep(0.0005)  # as between two dispatches
        return times
    finally:
        os.close(fd)
        path.unlink()


def dispatch_figures(project: Project, n: int) -> dict[str, float]:
    """Single ``nj.dispatch()`` calls of a no-op: ``n // 5`` with no worker running (each one
    appends to the journal alone), then ``n`` while a detached worker runs them; then, once it
    has run them all, calls that give it nothing to run (jobs due in an hour)."""
    import notebookjobs as nj

    project.reset()
    for _ in range(20):  # warm up: imports, the journal's first records
        nj.dispatch(NOOP)
    disk = disk_floor(project.db.parent, max(50, n // 5))
    log(f"  the disk alone: a 200-byte append + fdatasync next to the queue, median "
        f"{median(disk) * 1000:.3f} ms, p99 {percentile(disk, 99) * 1000:.2f} ms")
    no_worker = []
    for _ in range(max(50, n // 5)):
        t0 = time.perf_counter()
        nj.dispatch(NOOP)
        no_worker.append(time.perf_counter() - t0)
    log(f"  dispatch, no worker running: median {median(no_worker) * 1000:.3f} ms/call, "
        f"p99 {percentile(no_worker, 99) * 1000:.2f} ms")
    pid = project.start_detached()
    try:
        for _ in range(20):  # warm up: the worker's wake socket, the first group commits
            nj.dispatch(NOOP)
        times = []
        t_all = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            nj.dispatch(NOOP)
            times.append(time.perf_counter() - t0)
            if (i + 1) % max(1, n // 5) == 0:
                log(f"  dispatched {i + 1:,}/{n:,}")
        total = time.perf_counter() - t_all
        log("  waiting for the worker to run them")
        deadline = time.monotonic() + max(120.0, n / 10)
        while True:
            counts = nj.counts()
            if counts.get("pending", 0) + counts.get("running", 0) == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not run the dispatched jobs in time: {counts}")
            time.sleep(0.2)
        idle_times = []
        for _ in range(max(50, n // 10)):
            t0 = time.perf_counter()
            nj.dispatch(NOOP, delay=3600)
            idle_times.append(time.perf_counter() - t0)
    finally:
        project.stop_detached(pid)
    ms = median(times) * 1000
    log(f"  dispatch: median {ms:.3f} ms/call, {n / total:,.0f} calls/s, p99 {percentile(times, 99) * 1000:.2f} ms; "
        f"{median(idle_times) * 1000:.3f} ms/call when the worker has nothing to run")
    return {"disk_ms": median(disk) * 1000, "disk_p99": percentile(disk, 99) * 1000,
            "dispatch_ms": ms, "dispatch_rate": n / total, "dispatch_p99": percentile(times, 99) * 1000,
            "dispatch_idle_ms": median(idle_times) * 1000,
            "dispatch_nw_ms": median(no_worker) * 1000, "dispatch_nw_p99": percentile(no_worker, 99) * 1000}


def bulk_figures(project: Project, n: int, budget_s: float) -> dict[str, float]:
    """``nj.dispatch_many`` of ``n`` no-argument jobs: without a worker, then through a running one."""
    import notebookjobs as nj

    calls = [[] for _ in range(n)]
    project.reset()
    log(f"  dispatch_many of {n:,}, no worker running")
    t0 = time.perf_counter()
    ids = nj.dispatch_many(NOOP, calls)
    direct = time.perf_counter() - t0
    assert len(ids) == n
    log(f"  {direct:.2f}s without a worker")
    out = {"bulk_s": direct}
    if direct > budget_s:
        log(f"  skipping the worker-running variant: the direct one took more than {budget_s:g}s")
        out["bulk_worker_s"] = f"not measured (the direct one took over {budget_s:g} s)"
        return out
    project.reset()
    pid = project.start_detached()
    try:
        log(f"  dispatch_many of {n:,}, worker running (through its socket)")
        t0 = time.perf_counter()
        ids = nj.dispatch_many(NOOP, calls)
        out["bulk_worker_s"] = time.perf_counter() - t0
        assert len(ids) == n
    finally:
        project.stop_detached(pid)
    log(f"  {out['bulk_worker_s']:.2f}s with the worker running")
    return out


def latency_figures(project: Project, samples: int, seed: int) -> dict[str, float]:
    """Dispatch-to-start with an idle detached worker: the job body writes time.time() as it
    starts; the sample is that minus time.time() just after nj.dispatch() returned (SPEC §13:
    "starts a new job within 1 ms of dispatch() returning"), and, apart, minus time.time()
    just before the call."""
    import notebookjobs as nj

    project.reset()
    rng = random.Random(seed)
    pid = project.start_detached()
    lat, lat_call, ids = [], [], []
    try:
        for i in range(-5, samples):  # 5 warm-up samples
            time.sleep(rng.uniform(0.05, 0.10))  # let the worker go idle
            path = project.effects / f"lat-{i}"
            t0 = time.time()
            job_id = nj.dispatch(STAMP, str(path))
            t1 = time.time()
            started = wait_file(path)
            if i >= 0:
                lat.append(started - t1)
                lat_call.append(started - t0)
                ids.append(job_id)
            if samples >= 50 and i >= 0 and (i + 1) % (samples // 4) == 0:
                log(f"  latency samples {i + 1}/{samples}")
        db_lat = []
        for job_id in ids:
            info = nj.wait(job_id, timeout=30)
            db_lat.append(info["started_at"].timestamp() - info["created_at"].timestamp())
    finally:
        project.stop_detached(pid)
    out = {"lat_p50": percentile(lat, 50) * 1000, "lat_p90": percentile(lat, 90) * 1000,
           "lat_p99": percentile(lat, 99) * 1000, "lat_db_p50": percentile(db_lat, 50) * 1000,
           "lat_call_p50": percentile(lat_call, 50) * 1000}
    log(f"  latency p50 {out['lat_p50']:.2f} ms, p90 {out['lat_p90']:.2f}, p99 {out['lat_p99']:.2f}; "
        f"DB started_at-created_at p50 {out['lat_db_p50']:.2f} ms")
    return out


def idle_figures(project: Project, seconds: float, settle_s: float) -> dict[str, float]:
    """CPU and RSS of an idle detached worker (children included), then one dispatch-to-start."""
    import notebookjobs as nj

    project.reset()
    pid = project.start_detached()
    try:
        nj.wait(nj.dispatch(NOOP), timeout=30)
        time.sleep(settle_s)
        log(f"  measuring the idle worker's CPU over {seconds:g}s")
        cost = idle_cost(pid, seconds)
        path = project.effects / "after-idle"
        t0 = time.time()
        nj.dispatch(STAMP, str(path))
        after_idle = wait_file(path) - t0
    finally:
        project.stop_detached(pid)
    log(f"  idle CPU {cost['cpu']:.2f} %, RSS {cost['rss']:.0f} MB ({cost['rss_root']:.0f} MB the worker alone, "
        f"{cost['procs']} processes), dispatch-to-start after idle {after_idle * 1000:.2f} ms")
    return {"idle_cpu": cost["cpu"], "rss": cost["rss"], "rss_root": cost["rss_root"], "procs": cost["procs"],
            "pss": cost["pss"],
            "lat_after_idle": after_idle * 1000}


# --- scale -----------------------------------------------------------------------------------

#: how the generated history fills each column of ``queue`` (i = 0..n-1)
_FILL = {
    "id": "i + 1",
    "target": "'jobs.bench.noop'",
    "args": "'[]'",
    "kwargs": "'{}'",
    "status": "CASE WHEN i % 50 = 7 THEN 'failed' WHEN i % 199 = 3 THEN 'cancelled' ELSE 'completed' END",
    "priority": "0",
    "attempts": "CASE WHEN i % 50 = 7 THEN 2 ELSE 1 END",
    "max_attempts": "2",
    "retry_delay": "0.0",
    "retry_backoff": "1.0",
    "created_at": "TIMESTAMP '2026-01-01' + to_microseconds(i * 100000)",
    "run_at": "TIMESTAMP '2026-01-01' + to_microseconds(i * 100000 + 500)",
    "started_at": "TIMESTAMP '2026-01-01' + to_microseconds(i * 100000 + 1000 + i % 7 * 100)",
    "finished_at": "TIMESTAMP '2026-01-01' + to_microseconds(i * 100000 + 3000 + i % 13 * 1000)",
    "error": "CASE WHEN i % 50 = 7 THEN 'Traceback (most recent call last):\nValueError: boom' END",
    "result": "CASE WHEN i % 50 <> 7 AND i % 199 <> 3 THEN '1.0' END",
    "output": "''",
    "cancel_requested": "false",
}


def make_history(path: Path, n: int) -> None:
    """A fresh queue file holding ``n`` finished jobs, written with one INSERT ... SELECT.

    The schema comes from notebookjobs itself (``store.connect`` migrates the new file); columns
    this generator does not know are left to their default (or NULL), and a NOT NULL one without
    a default stops it with a message naming the column.
    """
    from notebookjobs import store
    from notebookjobs.journal import Journal

    for old in path.parent.glob(path.name + "*"):
        old.unlink()
    conn = store.connect(path)
    try:
        columns = conn.execute(
            "SELECT column_name, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_name = 'queue' ORDER BY ordinal_position").fetchall()
        names, exprs = [], []
        for name, nullable, default in columns:
            if name in _FILL:
                names.append(name)
                exprs.append(_FILL[name])
            elif nullable == "NO" and default is None:
                raise RuntimeError(f"queue.{name} is NOT NULL and the history generator does not "
                                   "know it: add it to _FILL in benchmarks/nj_bench.py")
        t0 = time.perf_counter()
        conn.execute(f"INSERT INTO queue ({', '.join(names)}) SELECT {', '.join(exprs)} "
                     f"FROM range({n}) t(i)")
        conn.execute("CHECKPOINT")
        log(f"  wrote {n:,} finished jobs into {path.name} in {time.perf_counter() - t0:.1f}s")
    finally:
        conn.close()
    # The rows took ids the journal (which hands ids out) never gave: without it, the next open
    # bases it again on the highest id in the file, as after a journal lost by other means.
    Journal(path).path.unlink(missing_ok=True)


def claim_cost(path: Path, rounds: int) -> dict[str, float]:
    """Median µs of a claim as the worker makes it, on a ``Database`` opened on ``path``: the
    next due job taken from the in-memory queue and started (``QueueState.pop_due`` +
    ``transitions.start``), alone, and with the commit of its new state (``JobStore.save_all``,
    what the writer does). Each round first stores one pending job, and settles it afterwards."""
    from notebookjobs.access.meaning import StoreQueue
    from notebookjobs.journal import Journal
    from notebookjobs.journal.ledger import Ledger
    from notebookjobs.model import transitions
    from notebookjobs.model.records import JobSpec, Outcome, OutcomeKind, RetryPolicy, utcnow
    from notebookjobs.store import Database
    from notebookjobs.worker.state import QueueState

    db = Database(path)
    state = QueueState()
    only, whole = [], []
    try:
        spec = JobSpec(target=NOOP, args=[], kwargs={}, priority=0, run_at=utcnow(), policy=RetryPolicy())
        for i in range(rounds + 20):
            with db.transaction() as store:
                job_id = StoreQueue(store, Ledger(Journal(path))).enqueue(spec, utcnow())
                state.add(store.get(job_id))
            now = utcnow()
            t0 = time.perf_counter()
            job = state.pop_due(now)
            if job is None:
                raise RuntimeError("no job was due after an enqueue")
            started = transitions.start(job, "bench", now)
            state.update(started)
            ta = time.perf_counter()
            with db.transaction() as store:
                store.save_all([started])
            t1 = time.perf_counter()
            done = transitions.settle(started, Outcome(kind=OutcomeKind.SUCCEEDED, result=1.0), utcnow())
            state.update(done)
            with db.transaction() as store:
                store.save_all([done])
            state.take_changes()
            if i >= 20:  # the first rounds warm caches up
                only.append(ta - t0)
                whole.append(t1 - t0)
    finally:
        db.close()
    return {"claim_us": median(only) * 1e6, "claim_tx_us": median(whole) * 1e6}


def _last_error(stderr: str | None) -> str:
    """The line of a traceback that names the exception (not the caret line under the code)."""
    lines = [l.strip() for l in (stderr or "").splitlines() if l.strip()]
    named = [l for l in lines if ("Error" in l or "Exception" in l) and not l.startswith("File ")]
    return ((named or lines or ["no output"])[-1])[:200]


def api_timings(project: Project, db: Path, ops: list[str], repeat: int, timeout_s: float) -> dict[str, Any]:
    """Time public API calls in a fresh subprocess (bench_api.py) against the queue ``db``.

    Returns op -> median seconds, or op -> text saying why there is no figure."""
    project.activate(db)
    command = [sys.executable, str(Path(__file__).with_name("bench_api.py")), str(repeat), *ops]
    limit = timeout_s * len(ops)
    proc = subprocess.Popen(command, env=project.env(), cwd=project.root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    track(proc.pid, "bench_api.py")
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group(proc.pid)
        stdout, stderr = proc.communicate()
    except BaseException:
        kill_group(proc.pid)
        raise
    untrack(proc.pid)
    out: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            reply = json.loads(line)
            out[reply["op"]] = reply.get("median_s", reply.get("error"))
            log(f"    {reply}")
    for op in ops:
        if op not in out:
            if timed_out:
                out[op] = f"> {timeout_s:g} s (timed out)"
            else:
                out[op] = "failed: " + _last_error(stderr)
            log(f"    {op}: {out[op]}")
    return out


def drain_on_history(project: Project, source: Path, n: int) -> dict[str, float]:
    """``n`` no-op jobs dispatched into a copy of the history file ``source``, then drained by a
    burst worker: what a claim (and its outcome) costs the worker as it really runs, however it
    claims (query, hot table, in-memory heap), with that much history beside the jobs."""
    import duckdb

    copy = source.with_name(source.stem + "-drain.duckdb")
    for old in copy.parent.glob(copy.name + "*"):
        old.unlink()
    shutil.copy2(source, copy)
    project.activate(copy)
    since = datetime.now(timezone.utc).replace(tzinfo=None)
    project.queue(n, NOOP)
    wall0, elapsed, code = project.burst(timeout_s=max(120.0, n / 20))
    conn = duckdb.connect(str(copy), read_only=True)
    try:
        done, first_start, first_end, last_end = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'completed'), min(started_at), min(finished_at), "
            "max(finished_at) FROM queue WHERE created_at >= ?", [since]).fetchone()
    finally:
        conn.close()
    if code != 0 or done != n:
        tail = (project.root / "burst-worker.log").read_text(errors="replace")[-1500:]
        raise RuntimeError(f"burst worker exit code {code}, {done}/{n} completed; log tail:\n{tail}")
    first_to_last = _epoch(last_end) - _epoch(first_end)
    return {"rate": n / elapsed, "rate_db": (n - 1) / first_to_last if first_to_last > 0 else float("nan"),
            "first_start_s": _epoch(first_start) - wall0}


def scale_figures(project: Project, folder: Path, small: int, large: int, rounds: int,
                  repeat: int, timeout_s: float, drain_n: int) -> dict[str, Any]:
    """Claim cost with ``small`` vs ``large`` finished jobs in the history; the API at ``large``.

    The two history files are generated once per invocation (in ``folder``) and reused by the
    later runs; each run adds only its ``rounds`` claimed jobs to them."""
    folder = folder / source_fingerprint()  # new files when notebookjobs changed since the last run
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"small": folder / "small.duckdb", "large": folder / "large.duckdb"}
    for key, n in (("small", small), ("large", large)):
        if not paths[key].exists():
            log(f"  generating a history of {n:,} finished jobs")
            make_history(paths[key], n)
    out: dict[str, Any] = {}
    for key in ("small", "large"):
        log(f"  claim x {rounds} with {small if key == 'small' else large:,} jobs in the history")
        c = claim_cost(paths[key], rounds)
        out[f"claim_{key}_us"], out[f"claim_tx_{key}_us"] = c["claim_us"], c["claim_tx_us"]
    out["claim_ratio"] = out["claim_large_us"] / out["claim_small_us"]
    out["claim_tx_ratio"] = out["claim_tx_large_us"] / out["claim_tx_small_us"]
    log(f"  claim {out['claim_small_us']:.0f} us vs {out['claim_large_us']:.0f} us: "
        f"ratio {out['claim_ratio']:.2f} (whole transaction {out['claim_tx_ratio']:.2f})")
    try:
        for key, n in (("small", small), ("large", large)):
            log(f"  drain of {drain_n:,} no-op jobs beside {n:,} finished ones")
            d = drain_on_history(project, paths[key], drain_n)
            out[f"hdrain_{key}_rate"], out[f"hdrain_{key}_rate_db"] = d["rate"], d["rate_db"]
            out[f"hdrain_{key}_start_s"] = d["first_start_s"]
            log(f"    {d['rate']:,.0f} jobs/s start->exit, {d['rate_db']:,.0f} jobs/s first->last finished_at, "
                f"first job started {d['first_start_s']:.2f}s after the worker")
        out["hdrain_ratio"] = out["hdrain_small_rate_db"] / out["hdrain_large_rate_db"]
    finally:
        project.activate(None)
    try:
        log("  API timings, no worker running (each call opens the file)")
        small_api = api_timings(project, paths["small"], ["page"], repeat, timeout_s)
        out["page_small_ms"] = _ms(small_api["page"])
        large_api = api_timings(project, paths["large"], ["page", "page_deep", "stats", "history"],
                                repeat, timeout_s)
        out["page_ms"], out["page_deep_ms"] = _ms(large_api["page"]), _ms(large_api["page_deep"])
        out["stats_ms"], out["history_s"] = _ms(large_api["stats"]), large_api["history"]
        if isinstance(out["page_small_ms"], float) and isinstance(out["page_ms"], float):
            out["page_ratio"] = out["page_ms"] / out["page_small_ms"]
        log("  API timings, detached worker running (calls go through its socket)")
        project.activate(paths["large"])
        t0 = time.perf_counter()
        pid = project.start_detached()
        out["start_worker_large_s"] = time.perf_counter() - t0
        try:
            w = api_timings(project, paths["large"], ["page", "page_deep", "stats", "history"],
                            repeat, timeout_s)
            time.sleep(1.0)  # let the worker settle after the last reply before measuring it
            served = idle_cost(pid, 5.0)
            out["rss_served"], out["idle_cpu_served"] = served["rss"], served["cpu"]
            out["rss_root_served"] = served["rss_root"]
            log(f"  after serving those frames: idle CPU {served['cpu']:.2f} %, RSS "
                f"{served['rss']:.0f} MB ({served['rss_root']:.0f} MB the worker alone)")
        finally:
            project.activate(paths["large"])
            project.stop_detached(pid)
        out["page_w_ms"], out["page_deep_w_ms"] = _ms(w["page"]), _ms(w["page_deep"])
        out["stats_w_ms"], out["history_w_s"] = _ms(w["stats"]), w["history"]
    finally:
        project.activate(None)
    return out


def _ms(value: Any) -> Any:
    return value * 1000 if isinstance(value, float) else value
