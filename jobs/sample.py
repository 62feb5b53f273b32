"""The seed's sample job class, and a few jobs that show retries, failures and long runs."""

from __future__ import annotations

import time
from pathlib import Path

import notebookjobs as nj

# Attempt counters live in the project, so every process running an attempt sees them.
_STATE = Path(__file__).resolve().parent.parent / ".notebookjobs" / "sample-state"


class SampleJobClass:
    """The seed's example: a class whose listed methods may run."""

    def process(self, param1: str, param2: str) -> dict:
        """Combine two parameters (the seed's `run-job.php SampleJobClass process a,b`)."""
        print(f"processing {param1} and {param2}")
        return {"param1": param1, "param2": param2, "combined": f"{param1}-{param2}"}

    def handle(self) -> str:
        """Do the job's default work."""
        print("handled")
        return "handled"


def flaky(key: str = "flaky", failures: int = 2) -> int:
    """Fail the first `failures` attempts for `key`, then succeed; returns the attempt number."""
    _STATE.mkdir(parents=True, exist_ok=True)
    counter = _STATE / f"{key}.count"
    attempt = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempt))
    if attempt <= failures:
        raise RuntimeError(f"flaky {key}: attempt {attempt} fails on purpose")
    return attempt


def always_fails(message: str = "this job always fails") -> None:
    """Raise every time, to show retries running out and the error log."""
    raise ValueError(message)


def slow(seconds: float = 5.0, steps: int = 10) -> float:
    """Sleep `seconds` in `steps` steps, reporting progress; returns the seconds slept."""
    for step in range(steps):
        time.sleep(seconds / steps)
        print(f"step {step + 1}/{steps}")
        nj.progress((step + 1) / steps, f"step {step + 1}/{steps}")
    return seconds


def sales_report(days: int = 7):
    """Compute a week of (made-up) sales per region in the background: returns a DataFrame."""
    import pandas as pd

    regions = ["east", "north", "south", "west"]
    start = pd.Timestamp("2026-01-05")
    rows = [{"day": start + pd.Timedelta(days=d), "region": region,
             "sales": float((d + 1) * (i + 2) * 10)}
            for d in range(days) for i, region in enumerate(regions)]
    frame = pd.DataFrame(rows)
    frame["region"] = frame["region"].astype("category")
    nj.progress(1.0, f"{len(frame)} rows")
    return frame.groupby("region", observed=True).agg(days=("day", "nunique"),
                                                       sales=("sales", "sum"))


def with_share(report, column: str = "sales"):
    """Add each row's share of the column's total to a DataFrame given as an argument."""
    report = report.copy()
    report["share"] = (report[column] / report[column].sum()).round(3)
    return report
