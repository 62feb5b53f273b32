"""The Dask executor's figures (SPEC §13, §18): 1,000 jobs of 50 ms on 1, 2 and 4 Dask worker
processes (a LocalCluster, 1 thread each), throughput against linear, and the per-job overhead
against the local pool with as many children.

    python benchmarks/dask_bench.py           # 1,000 jobs per size, 3 runs: benchmarks/DASK.md
    python benchmarks/dask_bench.py --quick   # 200 jobs, 1 run: benchmarks/out/DASK-quick.md

``make bench`` runs it after ``run.py``. Each measurement: the jobs are queued first
(``nj.dispatch_many``, no worker), then ``python -m notebookjobs.worker --burst`` runs them
(``--dask ADDRESS`` or ``--concurrency N``); throughput is jobs / (first ``started_at`` → last
``finished_at``) read from the queue file, so the worker's own start is left out. On Dask, a
warm-up burst of 4 jobs per thread runs first: each Dask thread then has the child process its
attempts reuse, as a long-running cluster would. Overhead per job = (span × slots − jobs ×
50 ms) / jobs: the slot-time each job costs beyond its body.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_common as common  # noqa: E402
from bench_common import REPO, log  # noqa: E402

HERE = Path(__file__).resolve().parent
BODY_S = 0.05  #: seconds each job sleeps
SIZES = (1, 2, 4)  #: Dask worker processes (and pool children) measured
WHITELIST = """\
retry_attempts: 0
worker: {autostart: false, grace_period: 5}
allowed_jobs:
  jobs.dbench: [sleep50]
"""
BODIES = '''\
import time


def sleep50():
    """50 ms of waiting, as a job that does I/O would."""
    time.sleep(0.05)
    return time.time()
'''


def _epoch(ts: datetime) -> float:
    return (ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).timestamp()


class Bench:
    """A project in a temp dir: jobs/dbench.py, whitelist.yaml, one queue file per measurement."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "jobs").mkdir(parents=True)
        (root / "jobs" / "__init__.py").write_text("")
        (root / "jobs" / "dbench.py").write_text(BODIES)
        (root / "whitelist.yaml").write_text(WHITELIST)
        self.db = root / "queues" / "q.duckdb"
        os.environ["NOTEBOOKJOBS_ROOT"] = str(root)
        # This process, the LocalCluster it starts and the workers all import this notebookjobs.
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO),
                                                                  os.environ.get("PYTHONPATH")]))

    def fresh_queue(self, name: str) -> None:
        self.db = self.root / "queues" / name / "q.duckdb"
        os.environ["NOTEBOOKJOBS_DB"] = str(self.db)

    def queue(self, n: int) -> None:
        """``n`` jobs, then the queue opened once so that they are in its file (a new queue's
        dispatches wait in the journal; the burst would otherwise time creating the file)."""
        import notebookjobs as nj

        nj.dispatch_many("jobs.dbench.sleep50", [[] for _ in range(n)])
        nj.counts()

    def burst(self, *args: str, timeout_s: float) -> float:
        """A burst worker over the queue; seconds from its start to its exit."""
        command = [sys.executable, "-m", "notebookjobs.worker", "--burst", *args]
        t0 = time.perf_counter()
        proc = common.popen(command, what="notebookjobs burst worker", cwd=self.root,
                            env=dict(os.environ), log_path=self.root / "burst.log")
        try:
            code = proc.wait(timeout=timeout_s)
        except BaseException:
            common.kill_group(proc.pid)
            raise
        common.untrack(proc.pid)
        if code != 0:
            tail = (self.root / "burst.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the burst worker exited with {code}:\n{tail}")
        return time.perf_counter() - t0

    def span(self, n: int) -> dict[str, float]:
        """Throughput and per-job figures of the last burst, from the queue file."""
        import duckdb

        conn = duckdb.connect(str(self.db), read_only=True)
        try:
            done, first, last = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'completed'), min(started_at), "
                "max(finished_at) FROM queue").fetchone()
        finally:
            conn.close()
        if done != n:
            raise RuntimeError(f"{done}/{n} jobs completed; see {self.root / 'burst.log'}")
        seconds = _epoch(last) - _epoch(first)
        return {"span_s": seconds, "rate": n / seconds}

    def measure(self, slots: int, n: int, address: str | None, run: int) -> dict[str, float]:
        kind = "dask" if address else "pool"
        args = ["--dask", address] if address else ["--concurrency", str(slots)]
        if address:  # each Dask thread starts the child its attempts reuse
            self.fresh_queue(f"{kind}{slots}-warm-{run}")
            self.queue(4 * slots)
            self.burst(*args, timeout_s=300)
        self.fresh_queue(f"{kind}{slots}-{run}")
        self.queue(n)
        with common.OtherLoad() as load:
            elapsed = self.burst(*args, timeout_s=max(300.0, 2 * n * BODY_S))
        figures = self.span(n)
        figures["elapsed_s"] = elapsed
        figures["overhead_ms"] = 1000 * (figures["span_s"] * slots - n * BODY_S) / n
        figures["other_load"] = load.percent
        log(f"  {kind} x{slots}: {figures['rate']:.1f} jobs/s over {figures['span_s']:.2f} s "
            f"({elapsed:.2f} s start->exit), overhead {figures['overhead_ms']:.1f} ms/job, "
            f"other processes {load.percent:.0f} % of the machine")
        return figures


def run_all(bench: Bench, n: int, runs: int) -> dict[str, dict[int, list[dict[str, float]]]]:
    from distributed import LocalCluster

    results: dict[str, dict[int, list[dict[str, float]]]] = {"dask": {}, "pool": {}}
    for run in range(1, runs + 1):
        for slots in SIZES:
            log(f"run {run}: {slots} slot(s)")
            results["pool"].setdefault(slots, []).append(bench.measure(slots, n, None, run))
            with LocalCluster(n_workers=slots, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster:
                results["dask"].setdefault(slots, []).append(
                    bench.measure(slots, n, cluster.scheduler_address, run))
            common.cleanup()
    return results


def render(results: dict[str, dict[int, list[dict[str, float]]]], meta: dict[str, Any]) -> str:
    med = common.median

    def cell(kind: str, slots: int, key: str, fmt: str) -> str:
        values = [r[key] for r in results[kind][slots]]
        text = fmt.format(med(values))
        return text + (f" ({fmt.format(min(values))}–{fmt.format(max(values))})"
                       if len(values) > 1 else "")

    base = {kind: med([r["rate"] for r in results[kind][1]]) for kind in results}
    loads = [r["other_load"] for kind in results for rs in results[kind].values() for r in rs]
    lines = [f"# The Dask executor{' (quick mode)' if meta['quick'] else ''}", "",
             "Generated by `benchmarks/dask_bench.py`; do not edit by hand. SPEC §13: throughput "
             "on 1, 2 and 4 Dask worker processes ≥ 0.8× linear.", "",
             f"- date: {meta['started']:%Y-%m-%d %H:%M} UTC; {meta['n']:,} jobs of 50 ms per "
             f"measurement, {meta['runs']} run(s): cells show the median (min–max)",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
             "- machine: " + ", ".join(f"{k} {v}" for k, v in meta["machine"].items()
                                       if k != "python executable"),
             f"- other processes used {med(loads):.0f} % (median; max {max(loads):.0f} %) of the "
             "machine's CPU while the figures were measured", "",
             "| slots | Dask jobs/s | × linear (≥ 0.8) | Dask overhead ms/job | pool jobs/s | "
             "× linear | pool overhead ms/job |", "|---|---|---|---|---|---|---|"]
    for slots in SIZES:
        ratios = {kind: med([r["rate"] for r in results[kind][slots]]) / (slots * base[kind])
                  for kind in results}
        lines.append(f"| {slots} | {cell('dask', slots, 'rate', '{:.1f}')} | "
                     f"{ratios['dask']:.2f}{'' if ratios['dask'] >= 0.8 else ' **no**'} | "
                     f"{cell('dask', slots, 'overhead_ms', '{:.1f}')} | "
                     f"{cell('pool', slots, 'rate', '{:.1f}')} | {ratios['pool']:.2f} | "
                     f"{cell('pool', slots, 'overhead_ms', '{:.1f}')} |")
    lines += ["", "Slots: Dask worker processes of 1 thread (a LocalCluster with nannies), or the "
              "local pool's children. Linear: the 1-slot throughput of the same executor times the "
              "slots. Overhead: (span × slots − jobs × 50 ms) / jobs. " + __doc__.split("\n\n")[2]
              .replace("\n", " "), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 jobs, 1 run")
    parser.add_argument("--runs", type=int, default=None, help="runs (default 3, 1 with --quick)")
    parser.add_argument("--jobs", type=int, default=None, help="jobs per measurement")
    ns, _ = parser.parse_known_args(argv)  # make bench passes run.py's ARGS too
    n = ns.jobs or (200 if ns.quick else 1000)
    runs = ns.runs or (1 if ns.quick else 3)
    output = HERE / "out" / "DASK-quick.md" if ns.quick else HERE / "DASK.md"
    common.install_signal_handlers()
    tmp = Path(tempfile.mkdtemp(prefix="njdask-"))
    started = datetime.now(timezone.utc)
    try:
        results = run_all(Bench(tmp / "project"), n, runs)
    finally:
        common.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    meta = {"quick": ns.quick, "n": n, "runs": runs, "started": started,
            "versions": common.versions(), "machine": common.machine()}
    report = render(results, meta)
    print(report)
    output.parent.mkdir(exist_ok=True)
    output.write_text(report)
    log(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
