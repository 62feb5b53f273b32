"""The named statements of ``queries.sql``, loaded once (procrastinate's ``sql/__init__.py``).

A block starts with a line ``-- name --``; the comment lines after it describe it. ``{columns}``
is replaced by the queue table's column list here, the columns ``columns.jobs_from_rows`` reads
by name; other ``{...}`` placeholders are filled by the caller.
"""

from __future__ import annotations

import re
from importlib import resources

from ..model.records import Job
from .columns import NAMES

_BLOCK = re.compile(r"(?:\n|^)-- ([a-z0-9_]+) --\n(?:--.*\n)*", re.MULTILINE)
_STATUS_ENUM = "ENUM('pending', 'running', 'completed', 'failed', 'cancelled')"


def parse(text: str) -> dict[str, str]:
    """name -> statement of a file in the format above (the text before the first block is
    the file's header)."""
    parts = _BLOCK.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def literal(text: str) -> str:
    """``text`` as an SQL string literal, for the few statements that take no parameters
    (ATTACH, SET)."""
    return "'" + text.replace("'", "''") + "'"


def _fill(statement: str) -> str:
    # Only the placeholders that are fixed for the package are filled here; str.replace,
    # not format, so the caller's own {placeholders} survive.
    typed = ", ".join(f"status::{_STATUS_ENUM} AS status" if k == "status" else k
                      for k in Job.STATUS_KEYS)
    return (statement.replace("{columns}", ", ".join(NAMES))
            .replace("{status_columns_typed}", typed).replace("{status_enum}", _STATUS_ENUM))


QUERIES: dict[str, str] = {
    name: _fill(statement) for name, statement in
    parse(resources.files(__package__).joinpath("queries.sql").read_text(encoding="utf-8")).items()
}
STATUS_ENUM = _STATUS_ENUM
