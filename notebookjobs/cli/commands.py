"""The queue commands of the CLI (``cli``) and the magic (``magics``): what each does through
the client API, and how its answer is printed (their arguments: ``options``). One layer, so
``notebookjobs list`` and ``%jobs list`` print alike.

Each ``run_*`` function prints its normal output on stdout and a refusal on stderr, and returns
what the magic gives back as the cell's value; the CLI turns it into an exit code. With
``--json`` (every command that prints data) the output is one JSON document for scripts, and
the magic's cell shows nothing more. pandas is imported by the commands that show frames.
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
from typing import TYPE_CHECKING, Any

from .. import client
from ..errors import InvalidArgumentsError, NoWorkerWarning
from ..model.records import utcnow
from ..notebook import handle
from ..targets.arguments import keyword_names
from .printing import (
    frame_records,
    job_lines,
    page_line,
    parameter_text,
    print_json,
    table_text,
    worker_lines,
)

if TYPE_CHECKING:
    import pandas as pd

#: the columns ``list`` shows (``nj.jobs()`` has them all)
LIST_COLUMNS = ["id", "target", "status", "priority", "attempts", "max_attempts", "created_at",
                "run_at", "started_at", "finished_at"]
#: columns of ``nj.history()`` that hold JSON text; ``history --json`` gives their values
JSON_TEXT_COLUMNS = ("args", "kwargs", "result")




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
    names = keyword_names(sig)
    any_name = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
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
    names = keyword_names(sig)
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
        return handle.dispatch(ns.target, *args, priority=ns.priority, delay=ns.delay,
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
    _note_if_no_queue()
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
    """Cancel the job and say what became of it (``client.cancel_said``): ``JobStateError`` (a
    refusal) when it had already finished; False (exit 1) when it ended before the cancel took
    effect."""
    took, said = client.cancel_said(ns.id)
    print(f"job {ns.id} {said}", file=sys.stdout if took else sys.stderr)
    return took


def run_retry(ns: argparse.Namespace) -> int:
    """Dispatch a failed or cancelled job again; the new id."""
    with _notes():
        return handle.retry(ns.id)


def run_worker(ns: argparse.Namespace) -> bool:
    """Start, stop, restart or describe the detached worker; False when ``status`` finds none."""
    concurrency, level = getattr(ns, "concurrency", None), getattr(ns, "log_level", None)
    dask = getattr(ns, "dask", None)
    if ns.action in ("start", "restart"):
        if ns.action == "restart":
            # The new worker runs as the one it replaces unless told otherwise
            running = client.worker_status()
            if running["running"] and concurrency is None and dask is None:
                cluster = running.get("cluster")
                concurrency = running["concurrency"]
                dask = cluster["scheduler"] if cluster else None
            print("worker stopped" if client.stop_worker() else "no worker was running")
        pid = client.start_worker(concurrency, log_level=level, dask=dask)
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
    from ..client import frames

    frame = frames.history(since=ns.since, until=ns.until, target=ns.target, status=ns.status)
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
        _note_if_no_queue()
        records = frame_records(frame)
        for row in records:
            for column in JSON_TEXT_COLUMNS:
                if isinstance(row.get(column), str):
                    row[column] = json.loads(row[column])
        print_json(records)
        return None
    else:
        _note_if_no_queue()
        shown = frame[["id", "target", "status", "attempts", "wait_s", "duration_s", "created_at"]]
        print(table_text(shown.tail(ns.tail)) if len(shown) else "no jobs")
    return frame


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc).split(":")[0] or type(exc).__name__


def run_schedules(ns: argparse.Namespace) -> pd.DataFrame | None:
    """Print the schedules of whitelist.yaml (or, with ``--json``, every field of them)."""
    frame = client.schedules()
    if getattr(ns, "json", False):
        print_json(frame_records(frame))
        return None
    if frame.empty:
        print("no schedules in whitelist.yaml (see schedules: in the README)")
        return frame
    print(table_text(_shown(frame[SCHEDULE_COLUMNS])))
    return frame


def run_stats(ns: argparse.Namespace) -> pd.DataFrame | None:
    """Print the stats by ``ns.by``, rounded (or, with ``--json``, as they are)."""
    from ..client import frames

    frame = frames.stats(by=ns.by)
    _note_if_no_queue()
    if getattr(ns, "json", False):
        print_json(frame_records(frame))
        return None
    shown = frame.copy()
    numbers = shown.select_dtypes("number").columns  # (rounding a time warns)
    shown[numbers] = shown[numbers].round(3)
    print(table_text(_shown(shown)) if len(shown) else "no jobs")
    return frame


def run_prune(ns: argparse.Namespace, confirm: Any = None) -> int:
    """Delete the finished jobs older than ``ns.older_than``; how many. It says first what it
    will delete; ``--dry-run`` stops there, and ``confirm(question)`` (a terminal's question,
    unless ``--yes``) may stop it there. One clock for both: it deletes no job it did not
    count."""
    from ..client import frames

    now = utcnow()
    counts = frames.prunable(ns.older_than, now=now)
    total = sum(counts.values())
    detail = ", ".join(f"{n} {status}" for status, n in counts.items())
    what = f"{total} finished job{'s' if total != 1 else ''} older than {ns.older_than}"
    if ns.dry_run:
        print(f"{what}{': ' + detail if detail else ''} would be deleted (dry run)")
        return 0
    if not total:
        print(f"{what} deleted")
        return 0
    if confirm is not None and not ns.yes and not confirm(f"delete {what} ({detail})? [y/N] "):
        print("nothing deleted")
        return 0
    deleted = frames.prune(ns.older_than, now=now)
    print(f"{deleted} finished job{'s' if deleted != 1 else ''} older than {ns.older_than} "
          "deleted")
    return deleted


#: the columns ``schedules`` shows (``nj.schedules()`` has them all)
SCHEDULE_COLUMNS = ["name", "target", "cron", "every", "timezone", "enabled", "next_run",
                    "last_run", "last_job", "last_status", "problem"]


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as text cells: times to the second, and nothing where a value is missing
    (a schedule that has not run has no last job: an empty Int64 cell)."""
    shown = frame.copy()
    for column in shown.columns:
        if str(shown[column].dtype).startswith("datetime"):
            shown[column] = shown[column].dt.strftime("%Y-%m-%d %H:%M:%S")
    shown = shown.astype(object)
    return shown.where(shown.notna(), "")


def _note_if_no_queue() -> None:
    """One line on stderr when the queue read does not exist: its answer is an empty queue's."""
    missing = client.missing_queue()
    if missing is not None:
        print(f"note: no queue at {missing} yet: nothing was ever dispatched to it",
              file=sys.stderr)
