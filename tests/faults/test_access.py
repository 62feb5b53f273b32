"""What reaches the queue through a side door (issue 21, "Also seen"): the socket refuses a job
the whitelist does not allow, as the API does; a result file replaced by a link is not
followed; a client that trickles its request in a byte at a time is dropped in due time."""

from __future__ import annotations

import dataclasses
import socket
import threading

import pytest

import notebookjobs as nj
from notebookjobs.errors import StorageError
from notebookjobs.model import wire
from notebookjobs.model.records import JobBatch, utcnow
from notebookjobs.worker import server
from support import wait_until

from .harness import socket_of
from .poison import RawClient, check_reply, good_batch, good_spec, line

#: targets a forger may name: a module function, a builtin, a member the owner does not list
NOT_ALLOWED = ["os.system", "builtins.eval", "jobs.testing.nope", "jobs.sample.SampleJob.__init__"]


@pytest.mark.parametrize("target", NOT_ALLOWED)
def test_the_socket_refuses_a_job_the_whitelist_does_not_allow(project, start_worker, target):
    # Given a worker
    start_worker()
    spec = dataclasses.replace(good_spec(), target=target)
    batch: JobBatch = dataclasses.replace(good_batch(), target=target)
    # When a process sends new jobs of that target on the socket: a dispatch (journalled, and
    # decided on the queue's state: `unique`), a batch, a foreground run's start
    requests = [line("enqueue", spec, utcnow()),
                line("enqueue", dataclasses.replace(spec, unique_key="k"), utcnow()),
                line("enqueue_batch", batch, utcnow()),
                line("run_started", spec, f"run:host:1:{'0' * 32}", utcnow())]
    with RawClient(socket_of(project)) as client:
        replies = [check_reply(client.ask(request)) for request in requests]
    # Then each is refused at the door as the API refuses it, and nothing is stored
    for reply in replies:
        assert reply is not None and reply["error"]["type"] == "NotAllowedError", reply
        assert "whitelist.yaml" in reply["error"]["message"]
    assert nj.jobs(per_page=100).attrs["total"] == 0
    # And an allowed job is still taken
    assert nj.dispatch("jobs.testing.ok", 5).result(timeout=30) == 5


def test_a_result_file_replaced_by_a_link_is_not_followed(project, start_worker, tmp_path):
    # Given a completed job whose result is kept in a file (bytes)
    start_worker()
    job = nj.dispatch("jobs.testing.blob", 8)
    assert job.result(timeout=60) == bytes(range(8))
    file = project.db.with_name(project.db.name + ".data") / "results" / f"{int(job)}.bin"
    assert file.is_file()
    # When the file is replaced by a link to a file elsewhere (job code can write there)
    secret = tmp_path / "secret"
    secret.write_bytes(b"not the queue's")
    file.unlink()
    file.symlink_to(secret)
    # Then reading the result refuses, saying why, and reads nothing through the link
    with pytest.raises(StorageError, match="link") as raised:
        job.result(timeout=10)
    assert "not the queue's" not in str(raised.value)


def test_a_client_trickling_a_request_in_is_dropped_at_the_deadline(monkeypatch, private_tmp):
    # Given the worker's socket server (a real one, in this process, answering pings), whose
    # clients have one second for each whole request
    monkeypatch.setattr(server, "REQUEST_TIMEOUT_S", 1.0)

    class Pong:
        def handle(self, operation: str, args: list) -> str:
            return "pong"

    path = private_tmp / "worker.sock"
    served = server.SocketServer(path, Pong())
    served.start()
    clients: list[socket.socket] = []
    try:
        # When 20 clients send a request one byte at a time, a byte every 0.1 s (each byte
        # within the old idle timeout of the one before), never ending it
        for _ in range(20):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(str(path))
            client.setblocking(False)
            clients.append(client)
        closed: dict[int, bytes] = {}
        stop = threading.Event()

        def trickle() -> None:
            while not stop.is_set() and len(closed) < len(clients):
                for n, client in enumerate(clients):
                    if n in closed:
                        continue
                    try:
                        closed[n] = client.recv(4096)  # CLOSING_LINE (b"": the end)
                    except BlockingIOError:
                        pass  # nothing to read: the next byte goes
                    except OSError:
                        closed[n] = b""
                    if n not in closed:
                        try:
                            client.send(b"{")
                        except OSError:
                            closed[n] = b""
                stop.wait(0.1)

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        # Then each is told the worker read nothing more from it, and dropped: its thread freed
        wait_until(lambda: len(closed) == len(clients), timeout=30,
                   what="the trickling clients to be dropped")
        stop.set()
        trickler.join()
        assert set(closed.values()) <= {wire.CLOSING_LINE, b""}, closed
        assert wire.CLOSING_LINE in closed.values()
        wait_until(lambda: not [t for t in threading.enumerate()
                                if "process_request_thread" in t.name],
                   timeout=10, what="the dropped clients' threads to end")
        # And a client that sends whole requests is served meanwhile and after
        with RawClient(path) as good:
            assert check_reply(good.ask(line("ping"))) == {"ok": "pong"}
    finally:
        for client in clients:
            client.close()
        served.close()
