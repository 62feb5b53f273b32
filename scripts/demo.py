"""The tour behind `make demo`: dispatch the sample jobs, run them, print the queue and the stats."""

from __future__ import annotations

import subprocess
import sys

import notebookjobs as nj


def cli(*args: str) -> int:
    print(f"\n$ notebookjobs {' '.join(args)}", flush=True)
    return subprocess.call([sys.executable, "-m", "notebookjobs", *args])


def main() -> None:
    print("Discovered jobs (jobs/ and whitelist.yaml):")
    cli("jobs")
    print("\nDispatching the sample jobs with the Python API:")
    ids = [
        nj.dispatch("jobs.sample.SampleJobClass.process", "alpha", "beta", priority=5),
        nj.dispatch("jobs.sample.SampleJobClass.handle"),
        nj.dispatch("jobs.sample.slow", seconds=1, priority=1, delay=2),
    ]
    print(f"  job ids {ids}")
    try:
        nj.dispatch("os.system", "echo pwned")
    except nj.NotAllowedError as exc:
        print(f"  refused: {exc}")
    print("\nRunning jobs in the foreground, as the seed's run-job.php did:")
    cli("run", "jobs.sample.SampleJobClass", "process", "param1,param2")
    cli("run", "jobs.sample", "flaky", "demo")
    cli("run", "jobs.sample", "always_fails")
    cli("list", "--per-page", "10")
    print("\nCounts by status:", nj.counts())


if __name__ == "__main__":
    main()
