"""The arguments of the commands (argparse), for the CLI (``cli``) and the magic (``magics``):
what each takes, its types and their checks. It imports nothing heavy, so that ``notebookjobs
--version``, ``--help`` and a refused argument answer at once (SPEC §7); ``commands`` runs them.
The types import ``validate`` when they are used (~10 ms that ``--version`` does without).

A value refused here is one argparse error line and exit 2, through the one check of the value
(``validate``), never a second copy of it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..errors import InvalidArgumentsError
from ..model.statuses import STATUS_NAMES
from ..worker.defaults import LOG_LEVELS

PORT_RANGE = (1, 65535)


def _checked(check: Callable[[Any], Any], value: Any) -> Any:
    """``check(value)`` for an argparse type: its ``InvalidArgumentsError`` becomes argparse's
    one line (and exit 2)."""
    try:
        return check(value)
    except InvalidArgumentsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def concurrency(text: str) -> int:
    """Children in the pool: 1 to ``validate.MAX_CONCURRENCY`` (whitelist.yaml's cap)."""
    from ..model import validate

    return _checked(validate.concurrency, _whole(text))


def port(text: str) -> int:
    """A TCP port on 127.0.0.1."""
    from ..model import validate

    low, high = PORT_RANGE
    return _checked(lambda v: validate.integer("port", v, low, high), _whole(text))


def version_text() -> str:
    """'notebookjobs X.Y.Z': the installed package's version (pyproject.toml's, one place)."""
    import notebookjobs

    return f"notebookjobs {notebookjobs.__version__}"


def duration(text: str) -> float:
    """An argparse type: seconds, or a duration string ('90s', '5m', '1h30m', '2d'), read by
    the one parser (``validate.seconds``)."""
    from ..model import validate

    try:
        return validate.seconds("duration", text)
    except InvalidArgumentsError as exc:
        if validate.parse_duration(text) is None:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a duration; pass {validate.DURATION_HINT}") from exc
        raise argparse.ArgumentTypeError(
            f"{text!r} is out of range; pass a duration from 0 to 100 years") from exc


def duration_text(text: str) -> str:
    """An argparse type: ``text`` once ``duration`` accepts it (kept as written, for messages)."""
    duration(text)
    return text


def add_json(p: argparse.ArgumentParser) -> None:
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
    add_json(p)


def add_id_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=int, help="job id")


def add_status_arguments(p: argparse.ArgumentParser) -> None:
    add_id_argument(p)
    add_json(p)


def add_worker_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("start", "stop", "restart", "status"))
    p.add_argument("--concurrency", type=concurrency, default=None,
                   help="children in the pool (start, restart; default from whitelist.yaml)")
    p.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, default=None,
                   help="the worker's log level (start, restart; default "
                   "$NOTEBOOKJOBS_LOG_LEVEL, else INFO)")
    p.add_argument("--dask", metavar="ADDRESS", default=None,
                   help="start, restart: run the attempts on the Dask cluster whose scheduler is "
                   "at ADDRESS, e.g. tcp://host:8786 (default: worker.executor of whitelist.yaml)")
    add_json(p)


def add_jobs_arguments(p: argparse.ArgumentParser) -> None:
    add_json(p)


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
