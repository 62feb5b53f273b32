"""Example jobs: run them from the dashboard, then edit them or add modules beside this one.

whitelist.yaml says which of them may run. Arguments arrive as JSON values, converted by the
annotations (a form field or a CLI word "3" becomes the int 3); what a job returns is stored as
its result, and what it prints as its output.
"""

from __future__ import annotations

import time

import notebookjobs as nj


def count_lines(path: str = "whitelist.yaml") -> int:
    """Count the lines of a text file; a relative path is read from the project root."""
    with open(path, encoding="utf-8") as file:
        return sum(1 for _ in file)


def countdown(seconds: int = 5) -> str:
    """Count down one second at a time, reporting progress as it goes."""
    for done in range(seconds):
        nj.progress(done / seconds, f"{seconds - done} s left")
        print(f"{seconds - done}...")
        time.sleep(1)
    return "lift-off"


class Report:
    """A class: the methods whitelist.yaml lists may run."""

    def build(self, title: str = "Weekly report", rows: int = 3) -> dict:
        """Build a small report and return it."""
        lines = [f"line {i + 1}" for i in range(rows)]
        print(f"{title}: {rows} rows")
        return {"title": title, "lines": lines}

    def publish(self, title: str) -> str:
        """Not allowed yet: the dashboard shows the line that would allow it."""
        return f"published {title}"
