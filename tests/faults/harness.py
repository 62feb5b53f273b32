"""Helpers of the fault tests: the CLI with raw bytes, refusals on one line, CPU time, liveness,
the journal's records."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from notebookjobs import config, journal
from notebookjobs.access import socketdir
from support import Project


def socket_of(project: Project) -> Path:
    return socketdir.socket_path(config.load_settings(project.root))


def cli_bytes(project: Project, *args: str | bytes, env: dict | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess:
    """The CLI with raw argv bytes (as a shell passes $'\\xff'); output as text, errors replaced."""
    out = subprocess.run([sys.executable, "-m", "notebookjobs", *args], cwd=project.root,
                         env=env or project.env(), capture_output=True, timeout=timeout)
    return subprocess.CompletedProcess(out.args, out.returncode,
                                       out.stdout.decode("utf-8", "replace"),
                                       out.stderr.decode("utf-8", "replace"))


def one_clear_line(out: subprocess.CompletedProcess) -> str:
    """Assert a refused CLI call: exit 1 or 2, one line on stderr, no traceback."""
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.returncode in (1, 2), (out.returncode, out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr[-2000:]
    return lines[0]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads, from /proc (not its children)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of proc(5)); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def alive(pid: int) -> bool:
    """Running (a zombie counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def records_of(path: Path) -> tuple[list[journal.Record], int]:
    """The intact records of the journal at ``path``, from its start, and the file's size."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return list(journal.read(fd, 0)), os.fstat(fd).st_size
    finally:
        os.close(fd)
