"""The ``notebookjobs`` command (SPEC §7): a thin argparse layer over the client API.

Exit codes: 0 success, 1 the job (or an operation) failed, 2 the input was refused; the reason
is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from . import client, commands
from .errors import (
    ConfigError,
    InvalidArgumentsError,
    JobNotFoundError,
    JobStateError,
    NotAllowedError,
    NotebookJobsError,
)
from .models import STATUS_NAMES, JobStatus

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2
#: errors that mean "your input was refused" (exit 2); others are operational failures (exit 1)
REFUSALS = (ConfigError, NotAllowedError, InvalidArgumentsError, JobNotFoundError, JobStateError)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2 too, but with the usage block
        self.exit(EXIT_REFUSED, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _target_from_seed(owner: str, member: str) -> str:
    # The seed wrote App\\Jobs\\SampleJobClass; accept backslashes as dots.
    return owner.replace("\\", ".").strip(".") + "." + member


def cmd_run(ns: argparse.Namespace) -> int:
    target = _target_from_seed(ns.owner, ns.member)
    raw = [p for p in (ns.params or "").split(",") if p != ""] if ns.params else []
    args, kwargs = commands.split_arguments(raw, target)
    info = client.run_now(target, args, kwargs, echo=True)
    line = (f"job {info['id']} {info['status']} after {info['attempts']} "
            f"attempt{'s' if info['attempts'] != 1 else ''}")
    if info["status"] == JobStatus.COMPLETED:
        print(line + (f": {json.dumps(info['result'])}" if info["result"] is not None else ""))
        return EXIT_OK
    reason = (info["error"] or "").rstrip().splitlines()[-1:] or [""]
    print(f"{line}: {reason[0]}", file=sys.stderr)
    return EXIT_FAILED


def cmd_dispatch(ns: argparse.Namespace) -> int:
    print(commands.run_dispatch(ns))
    return EXIT_OK


def cmd_status(ns: argparse.Namespace) -> int:
    commands.run_status(ns)
    return EXIT_OK


def cmd_list(ns: argparse.Namespace) -> int:
    frame = commands.run_list(ns)
    if len(frame):
        shown = frame[
            ["id", "target", "status", "priority", "attempts", "created_at", "run_at"]
        ].copy()
        for column in ("created_at", "run_at"):
            shown[column] = shown[column].dt.strftime("%Y-%m-%d %H:%M:%S")
        print(commands.table_text(shown))
    return EXIT_OK


def cmd_cancel(ns: argparse.Namespace) -> int:
    return EXIT_OK if commands.run_cancel(ns) else EXIT_FAILED


def cmd_retry(ns: argparse.Namespace) -> int:
    print(commands.run_retry(ns))
    return EXIT_OK


def cmd_jobs(ns: argparse.Namespace) -> int:
    frame = client.available_jobs()
    if frame.empty:
        print("no jobs found under jobs/ and none allowed in whitelist.yaml")
        return EXIT_OK
    shown = frame.copy()
    shown["parameters"] = [", ".join(_param(p) for p in ps) for ps in shown["parameters"]]
    shown["allowed"] = shown["allowed"].map({True: "yes", False: "no"})
    print(commands.table_text(shown[["target", "kind", "parameters", "allowed", "doc"]]))
    return EXIT_OK


def _param(p: dict[str, Any]) -> str:
    text = p["name"] + (f": {p['annotation']}" if p["annotation"] else "")
    return text if p["required"] else f"{text} = {p['default']!r}"


def cmd_schedules(ns: argparse.Namespace) -> int:
    frame = client.schedules()
    if frame.empty:
        print("no schedules in whitelist.yaml (see schedules: in the README)")
        return EXIT_OK
    shown = frame[["name", "target", "cron", "every", "timezone", "enabled", "next_run",
                   "last_run", "last_job", "last_status", "problem"]].copy()
    for column in ("next_run", "last_run"):
        shown[column] = shown[column].dt.strftime("%Y-%m-%d %H:%M:%S").fillna("")
    print(commands.table_text(shown.fillna("").astype(str)))
    return EXIT_OK


def cmd_history(ns: argparse.Namespace) -> int:
    frame = client.history(since=ns.since, until=ns.until, target=ns.target, status=ns.status)
    if ns.csv:
        frame.to_csv(ns.csv, index=False)
        print(f"{len(frame)} jobs written to {ns.csv}")
    elif ns.parquet:
        frame.to_parquet(ns.parquet, index=False)
        print(f"{len(frame)} jobs written to {ns.parquet}")
    else:
        shown = frame[["id", "target", "status", "attempts", "wait_s", "duration_s", "created_at"]]
        print(commands.table_text(shown.tail(ns.tail)) if len(shown) else "no jobs")
    return EXIT_OK


def cmd_stats(ns: argparse.Namespace) -> int:
    print(commands.table_text(client.stats(by=ns.by).round(3)))
    return EXIT_OK


def cmd_prune(ns: argparse.Namespace) -> int:
    print(f"{client.prune(ns.older_than)} finished jobs older than {ns.older_than} deleted")
    return EXIT_OK


def cmd_worker(ns: argparse.Namespace) -> int:
    return EXIT_OK if commands.run_worker(ns) else EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="notebookjobs",
        description="Background jobs for Jupyter: dispatch "
        "whitelisted functions and methods, run them, inspect the queue. The project "
        "root is $NOTEBOOKJOBS_ROOT or the nearest folder upwards holding "
        "whitelist.yaml; the queue is $NOTEBOOKJOBS_DB or <root>/.notebookjobs/queue.duckdb.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("run", help="run a target now in the foreground, with retries")
    p.add_argument("owner", metavar="CLASS", help="owner: module.Class or module")
    p.add_argument("member", metavar="METHOD", help="method or function name")
    p.add_argument("params", metavar="P1,P2,...", nargs="?", help="comma-separated arguments")
    p.set_defaults(func=cmd_run)

    handlers = {"dispatch": cmd_dispatch, "list": cmd_list, "status": cmd_status,
                "cancel": cmd_cancel, "retry": cmd_retry, "worker": cmd_worker}
    for name, (text, add_arguments) in commands.COMMANDS.items():
        p = sub.add_parser(name, help=text)
        add_arguments(p)
        p.set_defaults(func=handlers[name])

    p = sub.add_parser("jobs", help="discovered and allowed targets")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("schedules", help="the schedules of whitelist.yaml: next run, last job")
    p.set_defaults(func=cmd_schedules)

    p = sub.add_parser(
        "history", help="every job with wait and duration; export with --csv or --parquet"
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--csv", metavar="FILE", help="write every column to a CSV file")
    out.add_argument("--parquet", metavar="FILE", help="write every column to a Parquet file")
    p.add_argument("--since", help="created at or after this time (UTC), e.g. 2026-11-28")
    p.add_argument("--until", help="created before this time (UTC)")
    p.add_argument("--target")
    p.add_argument("--status", choices=STATUS_NAMES)
    p.add_argument("--tail", type=int, default=20, help="rows shown without an export (default 20)")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("stats", help="counts, success rate, durations and waits per group")
    p.add_argument("--by", choices=("target", "status", "hour"), default="target")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("prune", help="delete finished jobs older than a duration")
    p.add_argument("--older-than", required=True, metavar="DURATION", help="e.g. 30d, 12h, 90m")
    p.set_defaults(func=cmd_prune)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        return ns.func(ns)
    except REFUSALS as exc:
        print(f"notebookjobs: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except NotebookJobsError as exc:
        print(f"notebookjobs: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except TimeoutError as exc:
        print(f"notebookjobs: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # a file the command was asked to write or read (e.g. --csv)
        print(f"notebookjobs: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
