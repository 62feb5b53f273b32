"""The worker's socket under stops, crowds and bad lines (SPEC §14 "Stops and crowds"), and the
place of the socket when the queue's path is too long for one (SPEC §14, "Only the owner").

Real worker processes and real threads; waits on conditions, no sleeps.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import notebookjobs as nj
from notebookjobs import config
from notebookjobs.access import socketdir
from notebookjobs.access.queue_client import QueueClient
from notebookjobs.model import wire
from notebookjobs.system import sockets
from support import wait_until


def wait_for_dispatches(ids: list[int], goal: int, how: str) -> None:
    """Wait until the dispatching threads have ``goal`` ids in all."""
    wait_until(lambda: len(ids) >= goal, what=f"dispatches {how}")


def counts_and_path() -> tuple[dict[str, int], bool]:
    """``nj.counts()``, and whether a running worker answered it (rather than the file)."""
    queue = QueueClient(config.load_settings())
    return queue.counts(), queue.used_worker

DISPATCHERS = 8
#: dispatches that must go through while a worker runs, and then while none runs, in each round
PER_PHASE = 40


@pytest.mark.slow
def test_dispatches_during_graceful_stops_are_stored_once_or_refused_clearly(project, start_worker):
    # Given 8 threads dispatching in a loop, each job with distinct arguments (the target is
    # resolved once first: a first import from 8 threads at once is not what this is about)
    done = threading.Event()
    ids: list[int] = [nj.dispatch("jobs.testing.echo", -1, 0, delay=3600)]
    failures: list[BaseException] = []

    def dispatch_in_a_loop(thread: int) -> None:
        n = 0
        while not done.is_set():
            n += 1
            try:
                ids.append(nj.dispatch("jobs.testing.echo", thread, n, delay=3600))
            except Exception as exc:  # judged below: only clear NotebookJobsErrors may occur
                failures.append(exc)

    threads = [threading.Thread(target=dispatch_in_a_loop, args=(t,)) for t in range(DISPATCHERS)]
    for thread in threads:
        thread.start()
    try:
        # When a worker is started and stopped gracefully four times, by SIGTERM and by
        # nj.stop_worker() in turn, while they dispatch through it and then through the file
        for round_ in range(4):
            worker = start_worker("--concurrency", "1")
            wait_for_dispatches(ids, len(ids) + PER_PHASE, "through the worker")
            if round_ % 2:
                assert nj.stop_worker() is True
            else:
                worker.proc.send_signal(signal.SIGTERM)
            assert worker.wait_exit() == 0, worker.output()
            wait_for_dispatches(ids, len(ids) + PER_PHASE, "through the file")
    finally:
        done.set()
        for thread in threads:
            thread.join()
    # Then every dispatch returned an id or raised a clear NotebookJobsError, never a broken pipe
    unclear = [f for f in failures if not isinstance(f, nj.NotebookJobsError)
               or "Broken pipe" in str(f) or "Errno" in str(f)]
    assert not unclear, [repr(f) for f in unclear]
    # and every returned id was stored exactly once, and nothing else was
    frame = nj.history()
    assert len(ids) == len(set(ids)) and set(frame["id"]) == set(ids)
    assert sum(nj.counts().values()) == len(ids)
    calls = [tuple(json.loads(a)) for a in frame["args"]]
    assert len(calls) == len(set(calls))


def test_200_clients_connecting_at_once_are_all_served(project, start_worker):
    # Given a running worker and 200 threads, each without a connection yet
    start_worker("--concurrency", "1")
    nj.dispatch("jobs.testing.ok", 1, delay=3600)
    expected = nj.counts()
    clients = 200
    barrier = threading.Barrier(clients)
    answers: list[object] = []

    def ask() -> None:
        barrier.wait()
        try:
            answers.append(nj.counts())
        except Exception as exc:  # judged below
            answers.append(exc)

    # When they all connect at the same moment
    threads = [threading.Thread(target=ask) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then each one is served (a full backlog makes a client wait its turn, not fail)
    assert [a for a in answers if a != expected] == []
    assert len(answers) == clients
    assert counts_and_path()[1] is True


def test_a_request_over_the_limit_is_refused_and_the_next_call_gets_its_own_answer(
    project, start_worker
):
    # Given a running worker
    start_worker("--concurrency", "1")
    # When a dispatch is too large for one message
    with pytest.raises(nj.InvalidArgumentsError, match="smaller batches"):
        nj.dispatch("jobs.testing.echo", "x" * wire.MAX_REQUEST_BYTES, delay=3600)
    # Then nothing was stored, and the next calls on this thread get their own answers
    job_id = nj.dispatch("jobs.testing.ok", 7, delay=3600)
    assert nj.status(job_id)["args"] == [7]
    counts, via_worker = counts_and_path()
    assert counts["pending"] == 1 and via_worker is True


def _raw_exchange(path: Path, payload: bytes) -> list[bytes]:
    """Send ``payload`` on a fresh connection; the lines that come back until the worker closes."""
    received = b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)  # a deadline, not a measurement: the old server never closed
        sock.connect(os.fspath(path))
        try:
            sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker stopped reading at the limit; its reply is still there to read
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break  # it closed with part of our line unread: the end, after its reply
            if not chunk:
                break
            received += chunk
    return received.splitlines()


@pytest.mark.parametrize("payload", [
    pytest.param(b'"' + b"x" * wire.MAX_REQUEST_BYTES + b'"\n', id="oversize"),
    pytest.param(b'{"op": "counts", "args": [\n{"op": "counts", "args": []}\n', id="not-json"),
])
def test_a_raw_client_with_a_bad_line_gets_one_error_reply_and_is_disconnected(
    project, start_worker, payload
):
    # Given a running worker
    start_worker("--concurrency", "1")
    # When a raw client sends a line that is too long or not JSON (and more after it)
    lines = _raw_exchange(socketdir.socket_path(config.load_settings()), payload)
    # Then it gets one error reply, then the worker closes the connection
    assert len(lines) == 1, lines[:3]
    reply = json.loads(lines[0])
    assert reply["error"]["type"] == "InvalidArgumentsError", reply
    # and the worker goes on serving
    counts, via_worker = counts_and_path()
    assert counts["pending"] == 0 and via_worker is True


# --- where the socket lives ---------------------------------------------------------------------

@pytest.fixture
def long_db(project, tmp_path, monkeypatch) -> Path:
    """A queue whose path is too long for a socket beside it."""
    db = tmp_path / ("q" * 60) / ("u" * 40) / "queue.duckdb"
    assert len(os.fsencode(db)) > sockets.path_max() + 10
    monkeypatch.setenv(config.ENV_DB, str(db))
    return db


@pytest.fixture
def temp_dir(monkeypatch) -> Iterator[Path]:
    """A temp dir of the test's own (as TMPDIR, for this process and the workers it starts),
    with a short path (tmp_path's is too long to hold a socket), and no $XDG_RUNTIME_DIR."""
    folder = Path(tempfile.mkdtemp(prefix="nj-"))
    os.chmod(folder, 0o755)
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))  # gettempdir() caches TMPDIR once
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    yield folder
    shutil.rmtree(folder)


def _private_dir_of_ours(path: Path) -> bool:
    info = os.lstat(path)
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and stat.S_IMODE(info.st_mode) == 0o700
    )


def test_a_long_path_socket_lives_in_a_private_runtime_dir(
    project, long_db, temp_dir, monkeypatch, start_worker
):
    # Given a queue path too long for a socket beside it, and a runtime dir of ours
    runtime = temp_dir / "run-user"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    # When a worker starts
    start_worker("--concurrency", "1", env={config.ENV_DB: str(long_db)})
    # Then its socket is in $XDG_RUNTIME_DIR/notebookjobs, a 0700 directory of ours, and serves
    path = socketdir.socket_path(config.load_settings())
    assert path.parent == runtime / "notebookjobs" and _private_dir_of_ours(path.parent)
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    assert nj.worker_status()["running"]
    counts, via_worker = counts_and_path()
    assert counts["pending"] == 0 and via_worker is True


def test_a_long_path_socket_without_a_runtime_dir_lives_in_a_private_temp_dir(
    project, long_db, temp_dir, start_worker
):
    # Given a queue path too long for a socket beside it, and no $XDG_RUNTIME_DIR
    # When a worker starts
    start_worker("--concurrency", "1", env={config.ENV_DB: str(long_db)})
    # Then its socket is in a 0700 directory of ours under the temp dir, and serves
    path = socketdir.socket_path(config.load_settings())
    assert path.parent == temp_dir / f"notebookjobs-{os.getuid()}" and _private_dir_of_ours(
        path.parent
    )
    assert nj.dispatch("jobs.testing.ok", 1, delay=3600)
    assert counts_and_path()[1] is True


def _someone_elses(folder: Path) -> None:
    folder.mkdir(mode=0o700)
    try:
        os.chown(folder, 65534, 65534)
    except PermissionError:
        pytest.skip("only root can give a directory to another user (uid 65534) to simulate one")


def _wide_open(folder: Path) -> None:
    folder.mkdir()
    os.chmod(folder, 0o777)


def _a_symlink(folder: Path) -> None:
    target = folder.with_name("elsewhere")
    target.mkdir(mode=0o700)
    folder.symlink_to(target)


@pytest.mark.parametrize("prepare", [_someone_elses, _wide_open, _a_symlink],
                         ids=["owned-by-another-user", "mode-0777", "symlink"])
def test_a_socket_dir_that_is_not_private_and_ours_is_refused(project, long_db, temp_dir, prepare):
    # Given the temp dir's socket folder already made by someone else, or open to all, or a link
    folder = temp_dir / f"notebookjobs-{os.getuid()}"
    prepare(folder)
    # When a client looks for the worker's socket, Then it refuses, naming the folder
    with pytest.raises(nj.ConfigError, match=re.escape(str(folder))):
        socketdir.socket_path(config.load_settings())
    with pytest.raises(nj.ConfigError, match="Remove it"):
        nj.counts()


# --- what a client does with a worker that answers badly or not at all -------------------------

class _FakeWorker:
    """A peer on the worker's socket, standing in for a broken worker: it reads each request and
    answers it with the next of ``answers`` (None: closes the connection without a reply)."""

    def __init__(self, path: Path, answers: list[bytes | None]) -> None:
        self.path = path
        self.answers = answers
        self.requests: list[bytes] = []
        self.connections = 0
        self._done = threading.Event()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(os.fspath(path))
        self._listener.listen(16)
        self._listener.settimeout(0.05)  # to notice close(); not a measurement
        self._thread = threading.Thread(target=self._serve)
        self._thread.start()

    def _serve(self) -> None:
        while not self._done.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(30)
                received = b""
                while self.answers:
                    while b"\n" not in received:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        received += chunk
                    if b"\n" not in received:
                        break
                    line, received = received.split(b"\n", 1)
                    self.requests.append(line)
                    answer = self.answers.pop(0)
                    if answer is None:
                        break
                    conn.sendall(answer)

    def close(self) -> None:
        self._done.set()
        self._thread.join()
        self._listener.close()
        self.path.unlink()


@pytest.fixture
def fake_worker(project):
    fakes: list[_FakeWorker] = []

    def start(answers: list[bytes | None]) -> _FakeWorker:
        fakes.append(_FakeWorker(socketdir.socket_path(config.load_settings()), answers))
        return fakes[-1]

    yield start
    for fake in fakes:
        fake.close()


def test_a_reply_that_is_not_json_closes_the_link_and_raises_worker_error(project, fake_worker):
    # Given a worker that answers its first request with a line that is not JSON
    answer = {"pending": 3, "running": 0, "completed": 0, "failed": 0, "cancelled": 0}
    fake = fake_worker([b"not json\n", json.dumps({"ok": answer}).encode() + b"\n"])
    # When a client asks it twice
    with pytest.raises(nj.WorkerError, match="not a valid reply"):
        nj.counts()
    # Then the second call gets its own answer, on a new connection
    assert nj.counts() == answer
    assert fake.connections == 2 and len(fake.requests) == 2


def test_a_connection_lost_after_the_request_is_reported_for_writes_and_retried_for_reads(
    project, fake_worker
):
    # Given a "worker" that reads each request and goes away without answering
    fake = fake_worker([None, None, None])
    # When a client makes a write that goes through the worker (a unique dispatch is decided
    # on the queue's state: a plain one would go to the journal), Then it is told the job may
    # or may not be stored, and how to check
    with pytest.raises(
        nj.WorkerError, match=r"may or may not have been carried out.*notebookjobs list"
    ):
        nj.dispatch("jobs.testing.ok", 1, unique=True)
    assert len(fake.requests) == 1
    # When it reads, Then the read is sent again, and answered from the file
    counts, via_worker = counts_and_path()
    assert counts["pending"] == 0 and via_worker is False


def test_watch_answers_when_the_queue_changes_and_refuses_bad_holds(project, start_worker):
    """The dashboard's push (worker/changes.py): a watch with the current version waits; a
    dispatch answers it with a newer one; a bad hold is refused before anything waits."""
    import threading

    from notebookjobs import client
    from notebookjobs.access import remote
    from notebookjobs.config import load_settings
    from notebookjobs.errors import InvalidArgumentsError

    start_worker()
    settings = load_settings()
    now = remote.request(settings, "watch", 0, 0.0, read=True)
    # Given a watch waiting with the version it has seen
    answers: list[int] = []
    waiter = threading.Thread(target=lambda: answers.append(
        remote.request(settings, "watch", now, 60.0, read=True)))
    waiter.start()
    wait_until(lambda: client.worker_status()["watching"] == 1, what="the watch to wait")
    assert not answers  # it waits
    # When a job is dispatched, then it is answered with a newer version
    client.dispatch("jobs.testing.ok", 1)
    waiter.join(10)
    assert answers and answers[0] > now
    for hold in (-1, 301, "1", True):
        with pytest.raises(InvalidArgumentsError):
            remote.request(settings, "watch", now, hold, read=True)
    # And client.watch gives the same token while nothing changes, another once it does
    wait_until(lambda: client.status(1)["status"] == "completed", what="job 1 to complete")
    token = client.watch(None)
    assert client.watch(token, hold=0.2) == token
    client.dispatch("jobs.testing.ok", 2)
    assert client.watch(token, hold=10) != token
