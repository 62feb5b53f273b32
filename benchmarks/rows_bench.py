"""The store's row <-> ``Job`` mapping and the building of new jobs, timed alone (µs per job).

    python benchmarks/rows_bench.py [--jobs 10000] [--rounds 7]

- ``load``: ``JobStore.active_jobs()`` over N pending jobs (a worker's start: the query and one
  ``Job`` per row), µs per row;
- ``get_many``: ``JobStore.get_many`` of N finished jobs that carry a result, an error list and
  ``ran_on`` (the JSON cells that do need the parser), µs per row;
- ``batch``: ``transitions.pending_batch`` of N jobs (``dispatch_many``'s jobs), µs per job;
- ``evolve``: ``Job.evolve`` of one field, µs per call.

Each figure is the minimum and the median of ``--rounds`` runs, in a temp dir removed at the
end. Run it on an idle machine (under a lock every heavy job takes, if the machine is shared): it is
a before/after comparison, meaningful only against itself on the same machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def _rounds(rounds: int, fn, per: int) -> tuple[float, float]:
    """(min, median) µs per item of ``fn()`` over ``rounds`` runs (one warm-up first)."""
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) / per * 1e6)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    ns = parser.parse_args()
    from notebookjobs import store
    from notebookjobs.model import transitions
    from notebookjobs.model.records import JobBatch, JobSpec, RetryPolicy

    n, now = ns.jobs, datetime.now(UTC)
    policy = RetryPolicy()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "q.duckdb"
        pending = transitions.pending_batch(
            list(range(1, n + 1)),
            JobBatch(target="jobs.sample.noop", args=["[]"] * n, kwargs=["{}"] * n,
                     priority=0, run_at=now, policy=policy),
            now)
        spec = JobSpec(target="jobs.sample.add", args=[1, 2], kwargs={"x": "y"}, priority=3,
                       run_at=now, policy=policy)
        finished = [transitions.pending(n + i, spec, now).evolve(
            status="completed", attempts=2, started_at=now, finished_at=now + timedelta(1),
            result={"value": i, "rows": [1, 2, 3]}, result_type="json", output="out\n",
            errors=[{"attempt": 1, "at": now.isoformat(), "error": "boom"}],
            ran_on=["local", "local"]) for i in range(1, n + 1)]
        with store.transaction(path) as job_store:
            job_store.insert(pending)
            job_store.insert(finished)
        ids = [job.id for job in finished]
        db = store.Database(path)
        try:
            def load() -> None:
                with db.transaction() as job_store:
                    assert len(job_store.active_jobs()) == n

            def get_many() -> None:
                with db.transaction() as job_store:
                    assert len(job_store.get_many(ids)) == n

            figures = {"load": _rounds(ns.rounds, load, n),
                       "get_many": _rounds(ns.rounds, get_many, n)}
        finally:
            db.close()
        batch = JobBatch(target="jobs.sample.noop", args=["[1]"] * n, kwargs=['{"a": 1}'] * n,
                         priority=0, run_at=now, policy=policy)
        figures["batch"] = _rounds(
            ns.rounds, lambda: transitions.pending_batch(list(range(n)), batch, now), n)
        job = finished[0]
        figures["evolve"] = _rounds(
            ns.rounds, lambda: [job.evolve(progress=0.5) for _ in range(n)], n)
    print(json.dumps({"jobs": n, "rounds": ns.rounds,
                      "us_per_item_min_median": {k: [round(v, 2) for v in mm]
                                                 for k, mm in figures.items()}}, indent=1))


if __name__ == "__main__":
    main()
