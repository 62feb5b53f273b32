"""The queue commands shared by the CLI (``cli``) and the magic (``magics``): their arguments,
what each does through the client API, and how its answer is printed. One layer, so
``notebookjobs list`` and ``%jobs list`` parse and print alike.

Each ``run_*`` function prints its normal output on stdout and a refusal on stderr, and returns
what the magic gives back as the cell's value; the CLI turns it into an exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import pandas as pd

from . import client
from .errors import InvalidArgumentsError
from .models import STATUS_NAMES

#: the columns ``list`` shows (``nj.jobs()`` has them all)
LIST_COLUMNS = ["id", "target", "status", "priority", "attempts", "max_attempts", "created_at",
                "run_at", "started_at", "finished_at"]


# --- arguments --------------------------------------------------------------------------------

def add_dispatch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="dotted name, e.g. jobs.sample.SampleJobClass.process")
    p.add_argument("args", nargs="*", metavar="ARG", help="positional values, or name=value")
    p.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
    p.add_argument("--delay", type=float, default=0.0, help="seconds before it may start")
    p.add_argument("--at", default=None, metavar="TIME",
                   help="when it may start, ISO 8601 (e.g. 2026-12-01T09:00+01:00; no offset: "
                        "local time); instead of --delay")
    p.add_argument("--after", default=None, metavar="ID[,ID...]",
                   help="ids of jobs that must complete first")
    p.add_argument("--unique", nargs="?", const=True, default=False, metavar="KEY",
                   help="return the pending or running job with this key (no KEY: the target "
                        "and its arguments) instead of a new one")


def add_list_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status", choices=STATUS_NAMES)
    p.add_argument("--page", type=int, default=1)
    p.add_argument("--per-page", type=int, default=20)


def add_id_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=int, help="job id")


def add_worker_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("start", "stop", "status"))
    p.add_argument("--concurrency", type=int, default=None,
                   help="children in the pool (start only; default from whitelist.yaml)")


#: command -> (help text, the function that adds its arguments)
COMMANDS = {
    "dispatch": ("queue a target; prints the job id", add_dispatch_arguments),
    "list": ("one page of the queue, newest first", add_list_arguments),
    "status": ("show one job", add_id_argument),
    "cancel": ("cancel a pending or running job", add_id_argument),
    "retry": ("dispatch a failed or cancelled job again", add_id_argument),
    "worker": ("start, stop or show the detached worker", add_worker_arguments),
}


def split_arguments(values: Sequence[str], target: str) -> tuple[list[str], dict[str, str]]:
    """``name=value`` binds keyword ``name`` when it is a parameter of the target; else the
    word is a positional value."""
    names = set(client.parameter_names(target))
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if sep and name in names:
            kwargs[name] = rest
        else:
            args.append(value)
    return args, kwargs


# --- printing ---------------------------------------------------------------------------------

def job_lines(info: dict[str, Any]) -> list[str]:
    """A job's fields, one per line; multi-line text (tracebacks, output) indented below its key."""
    lines = []
    for key, value in info.items():
        if key == "errors" and isinstance(value, list):  # one line per failed attempt
            lines.append(f"errors: {len(value)}")
            lines += [f"  attempt {e.get('attempt')} at {e.get('at')}: "
                      + ((str(e.get("error") or "").strip().splitlines() or [""])[-1])
                      for e in value if isinstance(e, dict)]
            continue
        if isinstance(value, (list, dict)):
            value = json.dumps(value)
        if isinstance(value, str) and "\n" in value:
            lines.append(f"{key}:")
            lines.append("  " + value.rstrip().replace("\n", "\n  "))
        else:
            lines.append(f"{key}: {'' if value is None else value}")
    return lines


def page_line(frame: pd.DataFrame) -> str:
    """'page X of Y (N jobs[, status])' for a page of ``nj.jobs()``."""
    a = frame.attrs
    return (f"page {a['page']} of {a['pages']} ({a['total']} job{'s' if a['total'] != 1 else ''}"
            f"{', ' + a['status'] if a.get('status') else ''})")


def worker_lines(info: dict[str, Any]) -> list[str]:
    """The worker's state as ``worker status`` prints it."""
    if not info["running"]:
        return ["worker: not running"]
    lines = [f"worker: running (pid {info['pid']}, concurrency {info['concurrency']}, "
             f"started {info['started_at']:%Y-%m-%d %H:%M:%S} UTC)",
             f"running jobs: {', '.join(map(str, info['jobs'])) or 'none'}"]
    lines += [f"problem: {problem}" for problem in info.get("problems") or []]
    return lines


def table_text(frame: pd.DataFrame) -> str:
    """A frame as plain text, wide enough for a terminal."""
    with pd.option_context("display.width", 200, "display.max_colwidth", 60,
                           "display.max_columns", 20):
        return frame.to_string(index=False)


# --- the commands -----------------------------------------------------------------------------

def run_dispatch(ns: argparse.Namespace) -> int:
    """Queue the target; the new id."""
    args, kwargs = split_arguments(ns.args, ns.target)
    after = None if ns.after is None else _ids(ns.after)
    return client.dispatch(ns.target, *args, priority=ns.priority, delay=ns.delay, at=ns.at,
                           after=after, unique=ns.unique, **kwargs)


def _ids(text: str) -> list[int]:
    """'3,4' -> [3, 4]; ``InvalidArgumentsError`` for anything else."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InvalidArgumentsError(f"--after {text!r}: expected job ids separated by commas, "
                                    "e.g. --after 3,4") from None


def run_list(ns: argparse.Namespace) -> pd.DataFrame:
    """Print the page line; the page with LIST_COLUMNS (``attrs`` kept)."""
    frame = client.jobs(page=ns.page, per_page=ns.per_page, status=ns.status)
    print(page_line(frame))
    shown = frame[LIST_COLUMNS].copy()
    shown.attrs = dict(frame.attrs)
    return shown


def run_status(ns: argparse.Namespace) -> dict[str, Any]:
    """Print the job's fields; the status dict."""
    info = client.status(ns.id)
    print("\n".join(job_lines(info)))
    return info


def run_cancel(ns: argparse.Namespace) -> bool:
    """Cancel the job, or say on stderr that it had already finished; whether it was cancelled."""
    if client.cancel(ns.id):
        print(f"job {ns.id} cancelled")
        return True
    print(f"job {ns.id} is {client.status(ns.id)['status']}: nothing to cancel", file=sys.stderr)
    return False


def run_retry(ns: argparse.Namespace) -> int:
    """Dispatch a failed or cancelled job again; the new id."""
    return client.retry(ns.id)


def run_worker(ns: argparse.Namespace) -> bool:
    """Start, stop or describe the detached worker; False when ``status`` finds none."""
    if ns.action == "start":
        pid = client.start_worker(getattr(ns, "concurrency", None))
        print(f"worker running (pid {pid}); its log is logs/worker.log")
    elif ns.action == "stop":
        print("worker stopped" if client.stop_worker() else "no worker was running")
    else:
        info = client.worker_status()
        print("\n".join(worker_lines(info)))
        return bool(info["running"])
    return True
