"""The ``notebookjobs`` command (SPEC §7): a thin argparse layer over the client API.

Exit codes: 0 success, 1 the job (or an operation) failed, 2 the input was refused; the reason
is one line on stderr, never a traceback. A closed pipe (``| head``) ends a command quietly.

Each command imports what it uses when it runs (``commands``, the client, pandas for frames),
so that ``--version``, ``--help`` and a refused argument cost argparse alone, and ``status``,
``cancel`` and ``dispatch`` never load pandas (SPEC §13's CLI figures).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from ..errors import (
    ConfigError,
    InvalidArgumentsError,
    JobNotFoundError,
    JobStateError,
    NotAllowedError,
    NotebookJobsError,
)
from . import options

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
    from .. import client
    from ..model.records import JobStatus
    from . import commands

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
    from . import commands

    print(commands.run_dispatch(ns))
    return EXIT_OK


def cmd_status(ns: argparse.Namespace) -> int:
    from . import commands

    commands.run_status(ns)
    return EXIT_OK


def cmd_list(ns: argparse.Namespace) -> int:
    from . import commands, printing

    frame = commands.run_list(ns)
    if frame is not None and len(frame):
        shown = frame[
            ["id", "target", "status", "priority", "attempts", "created_at", "run_at"]
        ].copy()
        for column in ("created_at", "run_at"):
            shown[column] = shown[column].dt.strftime("%Y-%m-%d %H:%M:%S")
        print(printing.table_text(shown))
    return EXIT_OK


def cmd_cancel(ns: argparse.Namespace) -> int:
    from . import commands

    # A job that had finished: JobStateError, a refusal; one that ended meanwhile: exit 1.
    return EXIT_OK if commands.run_cancel(ns) else EXIT_FAILED


def cmd_retry(ns: argparse.Namespace) -> int:
    from . import commands

    print(commands.run_retry(ns))
    return EXIT_OK


def cmd_jobs(ns: argparse.Namespace) -> int:
    from . import commands

    commands.run_jobs(ns)
    return EXIT_OK


def cmd_schedules(ns: argparse.Namespace) -> int:
    from . import commands

    commands.run_schedules(ns)
    return EXIT_OK


def cmd_history(ns: argparse.Namespace) -> int:
    from . import commands

    commands.run_history(ns)
    return EXIT_OK


def cmd_init(ns: argparse.Namespace) -> int:
    from . import scaffold

    created = scaffold.create(Path(ns.dir))
    where = Path(ns.dir).resolve()
    print(f"new notebookjobs project in {where}:")
    for path in created:
        print(f"  {path.relative_to(where)}")
    steps = ([] if where == Path.cwd().resolve() else [f"cd {ns.dir}"]) + [
        "notebookjobs dispatch jobs.example.count_lines   # runs a job; prints its id",
        "notebookjobs dashboard                           # the dashboard as a web page"]
    print("next:\n" + "\n".join(f"  {step}" for step in steps))
    return EXIT_OK


def cmd_dashboard(ns: argparse.Namespace) -> int:
    from . import webapp

    return webapp.serve(port=ns.port, open_browser=ns.open)


def cmd_stats(ns: argparse.Namespace) -> int:
    from . import commands

    commands.run_stats(ns)
    return EXIT_OK


def cmd_prune(ns: argparse.Namespace) -> int:
    from . import commands

    commands.run_prune(ns, confirm=_ask if sys.stdin.isatty() and sys.stdout.isatty() else None)
    return EXIT_OK


def _ask(question: str) -> bool:
    """A yes/no question in the terminal; no unless the answer starts with y."""
    try:
        return input(question).strip().lower().startswith("y")
    except EOFError:
        return False


def cmd_worker(ns: argparse.Namespace) -> int:
    from . import commands

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

    parser.add_argument("--version", action="version", version=options.version_text())
    handlers = {"dispatch": cmd_dispatch, "list": cmd_list, "status": cmd_status,
                "cancel": cmd_cancel, "retry": cmd_retry, "worker": cmd_worker,
                "jobs": cmd_jobs, "history": cmd_history}
    for name, (text, add_arguments) in options.COMMANDS.items():
        p = sub.add_parser(name, help=text)
        add_arguments(p)
        p.set_defaults(func=handlers[name])

    p = sub.add_parser("schedules", help="the schedules of whitelist.yaml: next run, last job")
    options.add_json(p)
    p.set_defaults(func=cmd_schedules)

    p = sub.add_parser("stats", help="counts, success rate, durations and waits per group")
    p.add_argument("--by", choices=("target", "status", "hour"), default="target")
    options.add_json(p)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("prune", help="delete finished jobs older than a duration (in a "
                       "terminal it asks first)")
    p.add_argument("--older-than", required=True, metavar="DURATION", type=options.duration_text,
                   help="seconds, or e.g. 30d, 12h, 90m, 1h30m")
    p.add_argument("--dry-run", action="store_true", help="say what it would delete; delete "
                   "nothing")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask (a terminal asks)")
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("init", help="start a project: whitelist.yaml, jobs/, notebooks/")
    p.add_argument("dir", metavar="DIR", nargs="?", default=".",
                   help="the project folder (default: here); created if missing")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("dashboard", help="serve the dashboard as a web page (Voila, 127.0.0.1) "
                       "behind a token: $NOTEBOOKJOBS_DASHBOARD_TOKEN, else a random one (never "
                       "on a command line, where every user of the machine can read it)")
    p.add_argument("--port", type=options.port, default=8866,
                   help="the port on 127.0.0.1 (default 8866)")
    p.add_argument("--open", action="store_true", help="open it in the default browser")
    p.set_defaults(func=cmd_dashboard)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        return ns.func(ns)
    except REFUSALS as exc:
        print(f"notebookjobs: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except (NotebookJobsError, TimeoutError) as exc:
        print(f"notebookjobs: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        return _closed_pipe()
    except OSError as exc:  # a file the command was asked to write or read (e.g. --csv)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"notebookjobs: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("notebookjobs: interrupted", file=sys.stderr)
        return 130


def _closed_pipe() -> int:
    """The reader of our output went away (``| head``): stop quietly, as ``cat`` does. Our
    stdout now points at /dev/null, so that Python's flush at exit finds no pipe to fail on."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_OK
