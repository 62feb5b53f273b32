"""The ``%jobs`` line magic (SPEC §9): a thin layer over the client API.

``%load_ext notebookjobs`` registers it::

    %jobs                                   show the dashboard
    %jobs dispatch TARGET [ARG ...] [name=value ...] [--priority N] [--delay S]
    %jobs list [--status S] [--page N] [--per-page N]
    %jobs status ID | cancel ID | retry ID
    %jobs worker start|stop|status

``dispatch`` and ``retry`` return the new job id and ``list`` returns the page as a DataFrame,
so a cell ending with them shows the value (and ``job_id = %jobs dispatch ...`` works). Bad
input and every ``NotebookJobsError`` print one line to stderr, never a traceback: a typo in a
notebook should read like a CLI's refusal, not like a crash.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any, Callable

import pandas as pd

from . import client
from .cli import split_arguments
from .errors import NotebookJobsError
from .models import STATUS_NAMES

#: Columns ``%jobs list`` shows; ``nj.jobs()`` gives all of them.
LIST_COLUMNS = ["id", "target", "status", "priority", "attempts", "max_attempts", "created_at",
                "run_at", "started_at", "finished_at"]
PROG = "%jobs"


class UsageProblem(Exception):
    """Input the magic cannot parse; printed as one line."""


class _HelpShown(Exception):
    """argparse printed --help and wanted to exit."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of calling sys.exit, which would stop the kernel's cell."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageProblem(f"{message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message, file=sys.stderr, end="")
        raise _HelpShown


def _parser(name: str, text: str) -> _Parser:
    return _Parser(prog=f"{PROG} {name}", description=text, add_help=True)


def _dispatch_parser() -> _Parser:
    p = _parser("dispatch", "queue a target; returns the job id")
    p.add_argument("target", help="dotted name, e.g. jobs.sample.SampleJobClass.process")
    p.add_argument("args", nargs="*", metavar="ARG", help="positional values, or name=value")
    p.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
    p.add_argument("--delay", type=float, default=0.0, help="seconds before it may start")
    return p


def _list_parser() -> _Parser:
    p = _parser("list", "one page of the queue, newest first")
    p.add_argument("--status", choices=STATUS_NAMES)
    p.add_argument("--page", type=int, default=1)
    p.add_argument("--per-page", type=int, default=20)
    return p


def _id_parser(name: str, text: str) -> _Parser:
    p = _parser(name, text)
    p.add_argument("id", type=int, help="job id")
    return p


def _worker_parser() -> _Parser:
    p = _parser("worker", "the detached worker")
    p.add_argument("action", choices=("start", "stop", "status"))
    return p


def _parse(parser: _Parser, words: list[str]) -> argparse.Namespace:
    """Parse ``words``, letting options sit between positional values (``T a --delay 5 b``).

    argparse stops filling a ``nargs="*"`` positional at the first option and leaves what
    follows as extras; those are appended to it here. (``parse_intermixed_args`` would do
    this, but it re-formats the usage text, which breaks on the % of "%jobs".)
    """
    ns, extras = parser.parse_known_args(words)
    unknown = [w for w in extras if w.startswith("-") and not _is_number(w)]
    if unknown or (extras and not isinstance(getattr(ns, "args", None), list)):
        parser.error(f"unrecognized arguments: {' '.join(unknown or extras)}")
    if extras:
        ns.args.extend(extras)
    return ns


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def do_dispatch(ns: argparse.Namespace) -> int:
    """Queue the target; ``name=value`` binds a keyword when the target has that parameter."""
    args, kwargs = split_arguments(ns.args, ns.target)
    return client.dispatch(ns.target, *args, priority=ns.priority, delay=ns.delay, **kwargs)


def do_list(ns: argparse.Namespace) -> pd.DataFrame:
    """Print "page X of Y (N jobs)" and return the page (main columns, ``attrs`` kept)."""
    frame = client.jobs(page=ns.page, per_page=ns.per_page, status=ns.status)
    a = frame.attrs
    print(f"page {a['page']} of {a['pages']} ({a['total']} job{'s' if a['total'] != 1 else ''}"
          f"{', ' + ns.status if ns.status else ''})")
    shown = frame[LIST_COLUMNS].copy()
    shown.attrs = dict(frame.attrs)
    return shown


def do_status(ns: argparse.Namespace) -> None:
    """Print the job's fields, one per line (tracebacks and output indented below their key)."""
    for key, value in client.status(ns.id).items():
        if isinstance(value, (list, dict)):
            value = json.dumps(value)
        if isinstance(value, str) and "\n" in value:
            print(f"{key}:\n  " + value.rstrip().replace("\n", "\n  "))
        else:
            print(f"{key}: {'' if value is None else value}")


def do_cancel(ns: argparse.Namespace) -> None:
    """Cancel the job, or say (on stderr) that it had already finished."""
    if client.cancel(ns.id):
        print(f"job {ns.id} cancelled")
    else:
        print(f"job {ns.id} is {client.status(ns.id)['status']}: nothing to cancel",
              file=sys.stderr)


def do_retry(ns: argparse.Namespace) -> int:
    """Dispatch a failed or cancelled job again; the new id."""
    return client.retry(ns.id)


def do_worker(ns: argparse.Namespace) -> None:
    """Start, stop or describe the detached worker."""
    if ns.action == "start":
        print(f"worker running (pid {client.start_worker()})")
    elif ns.action == "stop":
        print("worker stopped" if client.stop_worker() else "no worker was running")
    else:
        for key, value in client.worker_status().items():
            print(f"{key}: {'' if value is None else value}")


#: subcommand -> (its parser, what it does)
COMMANDS: dict[str, tuple[Callable[[], _Parser], Callable[[argparse.Namespace], Any]]] = {
    "dispatch": (_dispatch_parser, do_dispatch),
    "list": (_list_parser, do_list),
    "status": (lambda: _id_parser("status", "show one job"), do_status),
    "cancel": (lambda: _id_parser("cancel", "cancel a pending or running job"), do_cancel),
    "retry": (lambda: _id_parser("retry", "dispatch a failed or cancelled job again"), do_retry),
    "worker": (_worker_parser, do_worker),
}
USAGE = (f"usage: {PROG} [dispatch TARGET [ARG ...] [--priority N] [--delay S] | list [--status S]"
         " [--page N] | status ID | cancel ID | retry ID | worker start|stop|status]")


def show_dashboard() -> None:
    """Display a new dashboard in the current cell's output."""
    from IPython.display import display

    from .ui import dashboard

    display(dashboard())


def run(line: str) -> Any:
    """Run one ``%jobs`` line; its value, or None after printing a one-line error."""
    try:
        words = shlex.split(line)
    except ValueError as exc:  # e.g. an unclosed quote
        print(f"{PROG}: cannot read the line: {exc}", file=sys.stderr)
        return None
    if not words:
        show_dashboard()
        return None
    command, rest = words[0], words[1:]
    if command in ("-h", "--help", "help"):
        print(USAGE)
        return None
    if command not in COMMANDS:
        print(f"{PROG}: unknown command {command!r}; use one of {', '.join(COMMANDS)} "
              f"(or no command for the dashboard)", file=sys.stderr)
        return None
    make_parser, action = COMMANDS[command]
    try:
        return action(_parse(make_parser(), rest))
    except _HelpShown:
        return None
    except (UsageProblem, NotebookJobsError, TimeoutError) as exc:
        message = " ".join(str(exc).split())
        print(f"{PROG} {command}: {message}", file=sys.stderr)
        return None


def jobs_magic(line: str) -> Any:
    """The ``%jobs`` line magic: the dashboard, or a queue command (``%jobs --help``)."""
    return run(line)


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%jobs`` in ``ipython`` (``%load_ext notebookjobs`` calls this)."""
    ipython.register_magic_function(jobs_magic, magic_kind="line", magic_name="jobs")
