"""The ``%jobs`` line magic (SPEC §9): a thin layer over the client API.

``%load_ext notebookjobs`` registers it::

    %jobs                                   show the dashboard
    %jobs dispatch TARGET [ARG ...] [name=value ...] [--priority N] [--delay S] [--at TIME]
                  [--after ID,...] [--unique [KEY]]
    %jobs list [--status S] [--page N] [--per-page N]
    %jobs status ID | cancel ID | retry ID
    %jobs worker start|stop|restart|status [--json]
    %jobs --version

``dispatch`` and ``retry`` return the new job's handle (a ``Job``: an int equal to its id,
shown as its live line) and ``list`` returns the page as a DataFrame, so a cell ending with
them shows the value (and ``job = %jobs dispatch ...`` works). Bad
input and every ``NotebookJobsError`` print one line to stderr, never a traceback: a typo in a
notebook should read like a CLI's refusal, not like a crash.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from ..errors import NotebookJobsError
from . import commands, options

PROG = "%jobs"


class UsageProblem(Exception):
    """Input the magic cannot parse; printed as one line."""


class _HelpShown(Exception):
    """argparse printed --help and wanted to exit."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of calling sys.exit, which would stop the kernel's cell."""

    def error(self, message: str) -> NoReturn:
        raise UsageProblem(f"{message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            print(message, file=sys.stderr, end="")
        raise _HelpShown


def _parse(name: str, words: list[str]) -> argparse.Namespace:
    """Parse ``words`` for command ``name``, letting options sit between positional values
    (``T a --delay 5 b``).

    argparse stops filling a ``nargs="*"`` positional at the first option and leaves what
    follows as extras; those are appended to it here. (``parse_intermixed_args`` would do
    this, but it re-formats the usage text, which breaks on the % of "%jobs".)
    """
    text, add_arguments = options.COMMANDS[name]
    parser = _Parser(prog=f"{PROG} {name}", description=text, add_help=True)
    add_arguments(parser)
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


def _printed(run: Callable[[argparse.Namespace], Any]) -> Callable[[argparse.Namespace], None]:
    """A command whose printed lines are all the cell shows (no value under them)."""
    def action(ns: argparse.Namespace) -> None:
        run(ns)
    return action


#: subcommand -> what it does; ``dispatch``, ``retry`` and ``list`` give the cell its value
ACTIONS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "dispatch": commands.run_dispatch,
    "list": commands.run_list,
    "status": _printed(commands.run_status),
    "cancel": _printed(commands.run_cancel),
    "retry": commands.run_retry,
    "worker": _printed(commands.run_worker),
}
USAGE = (f"usage: {PROG} [dispatch TARGET [ARG ...] [--priority N] [--delay S] | list [--status S]"
         " [--page N] [--json] | status ID [--json] | cancel ID | retry ID | "
         "worker start|stop|restart|status [--json] | --version]")


def show_dashboard() -> None:
    """Display a new dashboard in the current cell's output."""
    from IPython.display import display

    from ..dashboard import dashboard

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
    if command == "--version":
        print(options.version_text())
        return None
    if command not in ACTIONS:
        print(f"{PROG}: unknown command {command!r}; use one of {', '.join(ACTIONS)} "
              f"(or no command for the dashboard)", file=sys.stderr)
        return None
    try:
        return ACTIONS[command](_parse(command, rest))
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
