"""Only the owner can read the queue, whatever the umask (issue case 5, SPEC §14)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import notebookjobs as nj
from notebookjobs import config
from notebookjobs.access import socketdir


def _python_for_anyone() -> str:
    """A Python another user may run: the venv's may live under a folder only we can enter
    (a pyenv under /root); the system's serves, as the code run needs only the standard library."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", sys.executable):
        if os.path.exists(candidate):
            return candidate
    return sys.executable


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_queue_files_are_for_the_owner_only_whatever_the_umask(project, short_db, umask0):
    # Given a umask of 0, a job stored without a worker (the client creates the file) ...
    first = nj.dispatch("jobs.testing.ok", 1)
    # ... and a detached worker that ran it, a failing job and another one
    nj.start_worker()
    try:
        failed = nj.dispatch("jobs.testing.fail", "for the errors log")
        assert nj.wait(first, timeout=30)["status"] == "completed"
        assert nj.wait(failed, timeout=60)["status"] == "failed"
        nj.history()  # a frame through the worker's files
        settings = config.load_settings()
        sock = socketdir.socket_path(settings)
        # Then the queue folder is 0700 and every file in it 0600
        wanted = {short_db.parent: 0o700, short_db: 0o600, settings.lock_path: 0o600, sock: 0o600,
                  project.root / "logs": 0o700}
        wal = short_db.with_name(short_db.name + ".wal")
        if wal.exists():
            wanted[wal] = 0o600
        logs = sorted((project.root / "logs").glob("*.log"))
        assert {p.name for p in logs} >= {
            "background_jobs.log",
            "background_jobs_errors.log",
            "worker.log",
        }
        wanted.update({log: 0o600 for log in logs})
        wrong = [f"{p}: {mode(p):04o}, want {m:04o}" for p, m in wanted.items() if mode(p) != m]
        assert not wrong, "\n".join(wrong)
        # And, as root can check, another user can neither read the DB nor reach the socket
        if os.geteuid() == 0:
            for code in (f"open({str(short_db)!r}, 'rb').read(1)",
                         "import socket; s = socket.socket(socket.AF_UNIX); "
                         f"s.connect({str(sock)!r})"):
                other = subprocess.run([_python_for_anyone(), "-c", code], user=65534,
                                       capture_output=True, text=True, timeout=60)
                assert other.returncode != 0 and "PermissionError" in other.stderr, (
                    code,
                    other.stderr,
                )
    finally:
        nj.stop_worker()


def test_a_socket_that_cannot_live_beside_the_db_is_in_a_private_folder(project, private_tmp,
                                                                       start_worker, monkeypatch):
    # Given a shared temp dir (as /tmp is) and a DB path too long for a socket beside it
    os.chmod(private_tmp, 0o1777)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    deep = project.root / ("d" * 60) / ("e" * 60)
    monkeypatch.setenv("NOTEBOOKJOBS_DB", str(deep / "queue.duckdb"))
    # When a worker runs (project.env() drops NOTEBOOKJOBS_DB: the detached one keeps it)
    nj.start_worker()
    try:
        sock = socketdir.socket_path(config.load_settings())
        assert nj.worker_status()["running"]
        # Then its socket is not at a predictable name in the shared dir, but in a folder of
        # the user's own, 0700
        folder = sock.parent
        assert folder != private_tmp, f"{sock} is in the shared temp dir"
        info = folder.stat()
        assert (info.st_uid, mode(folder)) == (os.geteuid(), 0o700), f"{folder}: {mode(folder):04o}"
        assert mode(sock) == 0o600
    finally:
        nj.stop_worker()
