"""Property (SPEC §14): no line a process sends on the worker's socket stops the queue.

After each message: the worker runs, the same connection got a well-formed reply (or was closed)
and answers the next request, a fresh client is served. At the end: the queue file is readable,
the worker still runs jobs, and after a stop a new worker starts and runs jobs.
"""

from __future__ import annotations

from hypothesis import example, given

import notebookjobs as nj
from support import wait_until

from .harness import socket_of
from .poison import MESSAGES, RawClient, check_reply, describe, examples, line


def send_and_check(path, worker, message: bytes, previous: bytes | None = None) -> None:
    """One message on a new connection, then the checks of the module docstring.

    A worker whose loop dies of a message does so after its reply: the next message finds no
    socket, so the failure names the ``previous`` message too.
    """
    try:
        client = RawClient(path)
    except OSError as exc:
        raise AssertionError(
            f"no worker answers ({exc}) after {describe(previous or b'')} (sent before "
            f"{describe(message)}); exit code {worker.proc.poll()}:\n{worker.output()[-3000:]}"
        ) from None
    with client:
        try:
            reply = check_reply(client.ask(message))
        except TimeoutError:
            raise AssertionError(f"no reply within the timeout to {describe(message)}") from None
        if reply is not None:  # the same connection answers the next request, with its own reply
            follow = check_reply(client.ask(line("counts")))
            assert follow is None or (isinstance(follow.get("ok"), dict)
                                      and set(follow["ok"]) >= {"pending", "completed"}), follow
    assert worker.proc.poll() is None, \
        f"the worker died after {describe(message)}:\n{worker.output()[-3000:]}"
    nj.counts()


def queue_still_works(project, start_worker, worker) -> None:
    """The queue file is readable, jobs run, and a stop and a new start work."""
    counts = nj.counts()
    pages = nj.jobs(per_page=1000)
    for page in range(2, pages.attrs["pages"] + 1):
        nj.jobs(page=page, per_page=1000)
    assert sum(counts.values()) == pages.attrs["total"]
    assert nj.wait(nj.dispatch("jobs.testing.ok", 41), timeout=30)["result"] == 41
    worker.stop()
    assert worker.proc.returncode == 0, worker.output()[-3000:]
    second = start_worker()
    assert nj.wait(nj.dispatch("jobs.testing.ok", 42), timeout=30)["result"] == 42
    nj.jobs(per_page=1000)
    assert second.proc.poll() is None


def test_malformed_socket_messages_leave_the_worker_serving(project, start_worker):
    worker = start_worker()
    path = socket_of(project)
    sent: list[bytes] = []

    @examples(60)
    @given(message=MESSAGES)
    @example(message=b"\xff\xfe\x00\n")
    @example(message=b"[" * 100_000 + b"]" * 100_000 + b"\n")
    @example(message=line("get", 2**70))
    @example(message=line("page", 1, -1, None))
    @example(message=line("table", "sql", "DELETE FROM queue"))
    def one(message):
        send_and_check(path, worker, message, sent[-1] if sent else None)
        sent.append(message)

    one()
    assert len(sent) >= 20
    wait_until(lambda: nj.worker_status()["running"], what="the worker to answer")
    queue_still_works(project, start_worker, worker)

