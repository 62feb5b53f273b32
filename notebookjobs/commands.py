"""The queue commands shared by the CLI (``cli``) and the magic (``magics``): their arguments,
what each does through the client API, and how its answer is printed. One layer, so
``notebookjobs list`` and ``%jobs list`` parse and print alike.

Each ``run_*`` function prints its normal output on stdout and a refusal on stderr, and returns
what the magic gives back as the cell's value; the CLI turns it into an exit code. With
``--json`` (status, list, jobs, history, worker status) the output is one JSON document for
scripts, and the magic's cell shows nothing more.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd

from . import client, validate
from .errors import InvalidArgumentsError, NoWorkerWarning
from .models import STATUS_NAMES, JobStatus
from .printing import (
    frame_records,
    job_lines,
    page_line,
    parameter_text,
    print_json,
    table_text,
    worker_lines,
)
from .worker.defaults import LOG_LEVELS

#: the columns ``list`` shows (``nj.jobs()`` has them all)
LIST_COLUMNS = ["id", "target", "status", "priority", "attempts", "max_attempts", "created_at",
                "run_at", "started_at", "finished_at"]
#: columns of ``nj.history()`` that hold JSON text; ``history --json`` gives their values
JSON_TEXT_COLUMNS = ("args", "kwargs", "result")


def version_text() -> str:
    """'notebookjobs X.Y.Z': the installed package's version (pyproject.toml's, one place)."""
    import notebookjobs

    return f"notebookjobs {notebookjobs.__version__}"


# --- arguments --------------------------------------------------------------------------------

def duration(text: str) -> float:
    """An argparse type: seconds, or a duration string ('90s', '5m', '1h30m', '2d'), read by
    the one parser (``validate.seconds``)."""
    try:
        return validate.seconds("duration", text)
    except InvalidArgumentsError as exc:
        if validate.parse_duration(text) is None:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a duration; pass {validate.DURATION_HINT}") from exc
        raise argparse.ArgumentTypeError(
            f"{text!r} is out of range; pass a duration from 0 to 100 years") from exc


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")


def add_dispatch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="dotted name, e.g. jobs.sample.SampleJobClass.process")
    p.add_argument("args", nargs="*", metavar="ARG",
                   help="positional values, or name=value for a parameter by name")
    p.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
    p.add_argument("--delay", type=duration, default=0.0, metavar="DURATION",
                   help="before it may start: seconds, or e.g. 90s, 5m, 1h30m, 2d (default 0)")
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
    _add_json(p)


def add_id_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=int, help="job id")


def add_status_arguments(p: argparse.ArgumentParser) -> None:
    add_id_argument(p)
    _add_json(p)


def add_worker_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("start", "stop", "restart", "status"))
    p.add_argument("--concurrency", type=int, default=None,
                   help="children in the pool (start, restart; default from whitelist.yaml)")
    p.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, default=None,
                   help="the worker's log level (start, restart; default "
                   "$NOTEBOOKJOBS_LOG_LEVEL, else INFO)")
    p.add_argument("--dask", metavar="ADDRESS", default=None,
                   help="start, restart: run the attempts on the Dask cluster whose scheduler is "
                   "at ADDRESS, e.g. tcp://host:8786 (default: worker.executor of whitelist.yaml)")
    _add_json(p)


def add_jobs_arguments(p: argparse.ArgumentParser) -> None:
    _add_json(p)


def add_history_arguments(p: argparse.ArgumentParser) -> None:
    out = p.add_mutually_exclusive_group()
    out.add_argument("--csv", metavar="FILE", help="write every column to a CSV file")
    out.add_argument("--parquet", metavar="FILE", help="write every column to a Parquet file")
    out.add_argument("--json", action="store_true", help="print every job as JSON (for scripts)")
    p.add_argument("--since", help="created at or after this time (UTC), e.g. 2026-11-28")
    p.add_argument("--until", help="created before this time (UTC)")
    p.add_argument("--target")
    p.add_argument("--status", choices=STATUS_NAMES)
    p.add_argument("--tail", type=int, default=20, help="rows shown without an export (default 20)")


#: command -> (help text, the function that adds its arguments)
COMMANDS = {
    "dispatch": ("queue a target; prints the job id", add_dispatch_arguments),
    "list": ("one page of the queue, newest first", add_list_arguments),
    "status": ("show one job", add_status_arguments),
    "cancel": ("cancel a pending or running job", add_id_argument),
    "retry": ("dispatch a failed or cancelled job again", add_id_argument),
    "worker": ("start, stop, restart or show the detached worker", add_worker_arguments),
    "jobs": ("discovered and allowed targets", add_jobs_arguments),
    "history": ("every job with wait and duration; export with --csv, --parquet or --json",
                add_history_arguments),
}


def split_arguments(values: Sequence[str], target: str) -> tuple[list[str], dict[str, str]]:
    """``name=value`` binds keyword ``name`` when it is a parameter of the target (any name,
    when the target takes ``**kwargs``); other words are positional values.

    A ``name=value`` word whose ``name`` could be a parameter but is not one is refused with
    the target's parameters and the closest name, never stored as a positional string: it is
    far more often a typo (``pth=data.csv``) than a value. A value that contains ``=`` is
    passed by naming its parameter (``query=a=b``). A target that does not resolve is left to
    the dispatch, which says why.
    """
    sig = client.signature(target)
    if sig is None:
        return list(values), {}
    params = sig.parameters.values()
    names = [p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                  inspect.Parameter.KEYWORD_ONLY)]
    any_name = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name.isidentifier():
            args.append(value)
        elif name in names or any_name:
            kwargs[name] = rest
        else:
            raise InvalidArgumentsError(_unknown_name(target, name, value, sig))
    return args, kwargs


def _unknown_name(target: str, name: str, word: str, sig: inspect.Signature) -> str:
    names = [p.name for p in sig.parameters.values() if p.kind not in (
        inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD,
        inspect.Parameter.POSITIONAL_ONLY)]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]}={word.partition('=')[2]}? " if close else ""
    first = names[0] if names else "name"
    return (f"{word!r}: {target} has no parameter {name!r} (its parameters: "
            f"{', '.join(names) or 'none'}); {hint}a value that contains '=' is passed by "
            f"naming its parameter, e.g. {first}={word}")


@contextmanager
def _notes() -> Iterator[None]:
    """Print a ``NoWorkerWarning`` as one line on stderr: the CLI's and the magic's way to say
    that no worker will run what was just dispatched."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoWorkerWarning)
        yield
    for warning in caught:
        if issubclass(warning.category, NoWorkerWarning):
            print(f"note: {warning.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)


# --- the commands -----------------------------------------------------------------------------

def run_dispatch(ns: argparse.Namespace) -> int:
    """Queue the target; the new id (and a note on stderr when no worker will run it)."""
    args, kwargs = split_arguments(ns.args, ns.target)
    after = None if ns.after is None else _ids(ns.after)
    with _notes():
        return client.dispatch(ns.target, *args, priority=ns.priority, delay=ns.delay,
                               at=ns.at, after=after, unique=ns.unique, **kwargs)


def _ids(text: str) -> list[int]:
    """'3,4' -> [3, 4]; ``InvalidArgumentsError`` for anything else."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InvalidArgumentsError(f"--after {text!r}: expected job ids separated by commas, "
                                    "e.g. --after 3,4") from None


def run_list(ns: argparse.Namespace) -> pd.DataFrame | None:
    """Print the page line; the page with LIST_COLUMNS (``attrs`` kept). With ``--json``: print
    the page's numbers and every field of its jobs; None."""
    frame = client.jobs(page=ns.page, per_page=ns.per_page, status=ns.status)
    if getattr(ns, "json", False):
        print_json({**{k: frame.attrs[k] for k in ("page", "pages", "per_page", "total",
                                                   "status")},
                    "jobs": frame_records(frame)})
        return None
    print(page_line(frame))
    shown = frame[LIST_COLUMNS].copy()
    shown.attrs = dict(frame.attrs)
    return shown


def run_status(ns: argparse.Namespace) -> dict[str, Any]:
    """Print the job's fields (or, with ``--json``, the status dict as JSON); the status dict."""
    info = client.status(ns.id)
    if getattr(ns, "json", False):
        print_json(info)
    else:
        print("\n".join(job_lines(info)))
    return info


def run_cancel(ns: argparse.Namespace) -> bool:
    """Cancel the job and say what became of it: "cancelled" only when it is; whether the
    cancel took effect or is under way (its worker stops it)."""
    if not client.cancel(ns.id):
        print(f"job {ns.id} is {client.status(ns.id)['status']}: nothing to cancel",
              file=sys.stderr)
        return False
    status = client.status(ns.id)["status"]
    if status == JobStatus.CANCELLED:
        print(f"job {ns.id} cancelled")
        return True
    if status == JobStatus.RUNNING:  # asked of its worker, which has not stopped it yet
        print(f"job {ns.id}: cancel requested; its worker stops it")
        return True
    print(f"job {ns.id} is {status}: it ended before the cancel took effect", file=sys.stderr)
    return False


def run_retry(ns: argparse.Namespace) -> int:
    """Dispatch a failed or cancelled job again; the new id."""
    with _notes():
        return client.retry(ns.id)


def run_worker(ns: argparse.Namespace) -> bool:
    """Start, stop, restart or describe the detached worker; False when ``status`` finds none."""
    concurrency, level = getattr(ns, "concurrency", None), getattr(ns, "log_level", None)
    if ns.action in ("start", "restart"):
        if ns.action == "restart":
            print("worker stopped" if client.stop_worker() else "no worker was running")
        pid = client.start_worker(concurrency, log_level=level, dask=getattr(ns, "dask", None))
        print(f"worker running (pid {pid}); its log is logs/worker.log")
    elif ns.action == "stop":
        print("worker stopped" if client.stop_worker() else "no worker was running")
    else:
        info = client.worker_status()
        if getattr(ns, "json", False):
            print_json(info)
        else:
            print("\n".join(worker_lines(info)))
        return bool(info["running"])
    return True


def run_jobs(ns: argparse.Namespace) -> pd.DataFrame | None:
    """Print the discovered targets (or, with ``--json``, every field of them); the frame."""
    frame = client.available_jobs()
    if getattr(ns, "json", False):
        print_json(frame_records(frame))
        return None
    if frame.empty:
        print("no jobs found (discovery scans jobs/, the owners' packages and discover:) and "
              "none allowed in whitelist.yaml")
        return frame
    shown = frame.copy()
    shown["parameters"] = [", ".join(parameter_text(p) for p in ps) for ps in shown["parameters"]]
    shown["allowed"] = shown["allowed"].map({True: "yes", False: "no"})
    print(table_text(shown[["target", "kind", "parameters", "allowed", "doc"]]))
    return frame


def run_history(ns: argparse.Namespace) -> pd.DataFrame | None:
    """Write the history to ``--csv``/``--parquet``, print it as ``--json``, or print its last
    ``--tail`` rows; the frame (None after --json)."""
    frame = client.history(since=ns.since, until=ns.until, target=ns.target, status=ns.status)
    if ns.csv or ns.parquet:
        path = ns.csv or ns.parquet
        try:
            if ns.csv:
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path, index=False)
        except OSError as exc:  # a folder that is missing or not writable: one line
            raise InvalidArgumentsError(f"cannot write {path}: {_os_reason(exc)}") from None
        print(f"{len(frame)} jobs written to {path}")
    elif getattr(ns, "json", False):
        records = frame_records(frame)
        for row in records:
            for column in JSON_TEXT_COLUMNS:
                if isinstance(row.get(column), str):
                    row[column] = json.loads(row[column])
        print_json(records)
        return None
    else:
        shown = frame[["id", "target", "status", "attempts", "wait_s", "duration_s", "created_at"]]
        print(table_text(shown.tail(ns.tail)) if len(shown) else "no jobs")
    return frame


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc).split(":")[0] or type(exc).__name__
