"""The tour behind `make demo`: dispatch the sample jobs, run them in the worker, print the queue and the stats."""

from __future__ import annotations

import subprocess
import sys
import time

import pandas as pd

import notebookjobs as nj


def cli(*args: str) -> int:
    print(f"\n$ notebookjobs {' '.join(args)}", flush=True)
    return subprocess.call([sys.executable, "-m", "notebookjobs", *args])


def main() -> None:
    print("Discovered jobs (jobs/ and whitelist.yaml):")
    cli("jobs")

    print("\nDispatching the sample jobs; the first dispatch starts the detached worker:")
    ids = {
        "process": nj.dispatch("jobs.sample.SampleJobClass.process", "alpha", "beta", priority=5),
        "handle": nj.dispatch("jobs.sample.SampleJobClass.handle"),
        "flaky (fails twice, then succeeds)": nj.dispatch("jobs.sample.flaky", "demo"),
        "always_fails": nj.dispatch("jobs.sample.always_fails"),
        "slow, delayed 1 s": nj.dispatch("jobs.sample.slow", seconds=1, steps=4, delay=1),
        "slow, to be cancelled": nj.dispatch("jobs.sample.slow", seconds=60, priority=-1),
    }
    for name, job_id in ids.items():
        print(f"  job {job_id}: {name}")
    print(f"  worker: {nj.worker_status()}")
    try:
        nj.dispatch("os.system", "echo pwned")
    except nj.NotAllowedError as exc:
        print(f"  refused: {exc}")

    nj.wait(ids["slow, delayed 1 s"], timeout=60)
    victim = ids["slow, to be cancelled"]
    deadline = time.monotonic() + 60
    while nj.status(victim)["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"\nCancelling job {victim} while it runs:", nj.cancel(victim))
    for name, job_id in ids.items():
        info = nj.wait(job_id, timeout=60)
        print(f"  job {job_id} {info['status']:<9} after {info['attempts']} attempt(s): {name}")

    print("\nThe seed's run-job.php, in the foreground (through the running worker's queue):")
    cli("run", "jobs.sample.SampleJobClass", "process", "param1,param2")

    cli("list", "--per-page", "10")
    print("\nStats by target (seconds):")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(nj.stats()[["target", "jobs", "completed", "failed", "cancelled", "success_rate",
                          "duration_p50", "wait_p50", "retries"]].round(3).to_string(index=False))
    print("\nStopping the worker:", nj.stop_worker())


if __name__ == "__main__":
    main()
