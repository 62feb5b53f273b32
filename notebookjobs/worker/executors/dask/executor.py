"""The Dask executor (SPEC §18): the worker's loop hands attempts to a Dask distributed cluster
instead of its local pool; the queue, its state, retries and commits stay in the worker.

What crosses to the cluster is one fixed function of ours (``dask_task.run_attempt``) with one
JSON text (target, JSON arguments, timeout); what comes back is JSON text, checked
(``validate.cluster_outcome``) before the loop settles it. Around Dask's limits:

- **A running Dask task cannot be stopped**, so the task runs the attempt in a child process
  it can kill (``child``). Cancel and the graceful stop reach it through ``Client.run``
  (``dask_task.stop_attempt`` on the Dask worker's event loop, which kills the child's process
  group at once); timeouts are enforced there too, by the task itself.
- **Dask re-runs a task whose worker died.** Each attempt is bound to the Dask worker we chose
  (``members``), so it cannot run elsewhere; the executor sees the worker go (the
  scheduler's ``remove-worker`` event, and a periodic look) and fails the attempt as crashed,
  for our retry policy to decide. Dask's own retries are off (``retries=0``).
- **Completions must wake the loop**, which blocks in ``wait`` on the sockets it serves: Dask's
  callbacks (the done callback, the progress topic, cluster events) queue what they saw and
  write a byte to a pipe that ``wait`` selects on with the loop's own.

The loop's protocol is the pool's (``PoolEvents``), without holding attempts ahead: at most
``Members.allowed()`` attempts are in flight, each on a Dask thread of its own. An attempt is
reported ``started`` when its child says so (through the event topic); one stopped before it
began ends as the stop's outcome (``returned`` stays empty), which the loop settles as it would
a running one's.
"""

from __future__ import annotations

import collections
import logging
import os
import secrets
import select
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ....errors import InvalidArgumentsError, WorkerError
from ....model import validate
from ....model.records import AttemptRequest, Outcome, OutcomeKind
from ..local.pool import PoolEvents
from . import connect as dask_connect
from .members import Members

if TYPE_CHECKING:
    from collections.abc import Sequence

    from distributed import Client, Future

logger = logging.getLogger(__name__)

#: seconds between two looks at the cluster's workers besides the scheduler's events (a lost
#: event, a reconnection): a lost Dask worker is noticed within this at the latest
REFRESH_S = 5.0
GATHER_TIMEOUT_S = 60.0  #: seconds to fetch an attempt's outcome from its Dask worker
LOST = ("the Dask worker {where} running this attempt was lost (its process died or it left "
        "the cluster); our retry policy decides what follows, Dask does not run it again")
"""The error of an attempt whose Dask worker went away."""


@dataclass(eq=False)
class _Attempt:
    """One attempt in flight on the cluster."""

    job_id: int
    key: str  #: its Dask key
    where: str  #: the Dask worker's address
    future: Future
    started: float  #: time.monotonic() at submit


class DaskExecutor:
    """Runs attempts on the Dask cluster at ``address`` (see the module docstring).

    Used from the worker's loop thread, like ``pool.Pool``; ``describe`` from any thread.
    """

    def __init__(self, root: Path, address: str, *, queue_token: str,
                 concurrency: int | None = None, upload: bool = False,
                 data_dir: Path | None = None) -> None:
        self.root = Path(root)
        self.address = address
        self.queue_token = queue_token
        self.upload = upload
        #: the queue's data folder, for Dask workers that share it (never with ``upload``)
        self.data = None if upload or data_dir is None else str(data_dir)
        self.topic = f"notebookjobs-progress-{queue_token}"  #: where attempts report progress
        self.members = Members(concurrency)
        self.dashboard: str | None = None  #: the link to Dask's own dashboard
        self._client: Client | None = None
        self._nonce = secrets.token_hex(4)  # keys differ from any a previous worker used
        self._seq = 0
        self._running: dict[int, _Attempt] = {}
        self._by_key: dict[str, _Attempt] = {}
        #: keys whose outcome came on the event topic: their tasks' results are not fetched
        self._pushed: set[str] = set()
        # What Dask's threads saw, for the loop thread: deque appends are thread-safe.
        self._inbox: collections.deque[tuple[Any, ...]] = collections.deque()
        self._finished: list[tuple[int, Outcome]] = []
        self._progress: list[tuple[int, float | None, str | None]] = []
        self._started: list[tuple[int, datetime]] = []
        self._next_refresh = 0.0
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        # Stop requests go out from a thread of their own: Client.run waits for the answer,
        # and a Dask worker slow to give one must not hold up the loop.
        self._stopper = ThreadPoolExecutor(1, thread_name_prefix="notebookjobs-dask-stop")

    # --- start and stop ----------------------------------------------------------------------

    def start(self) -> None:
        """Connect, upload the project if asked, check every Dask worker can run our jobs,
        stop what a dead worker of this queue left running there, listen to the cluster.
        ``WorkerError`` with what to do when any of it fails."""
        self._client = client = dask_connect.connect(self.address)
        try:
            if self.upload:
                dask_connect.upload(client, self.root)
            dask_connect.check_workers(client, self.root, self.upload, self.address)
            from .task import stop_queue
            client.run(stop_queue, self.queue_token, "a new worker took over this queue",
                       on_error="ignore")
            client.subscribe_topic(self.topic, self._on_event)
            client.subscribe_topic("all", self._on_cluster_event)
            self._refresh(client)
            try:
                self.dashboard = client.dashboard_link
            except (KeyError, AttributeError):  # a scheduler without its dashboard
                self.dashboard = None
        except BaseException:
            self.close()
            raise
        logger.info("attempts go to the Dask cluster at %s: %d worker(s), %d thread(s); "
                    "its dashboard: %s", self.address, len(self.members.workers),
                    self.members.threads(), self.dashboard)

    def close(self) -> None:
        """Stop what still runs on the cluster and disconnect. Safe twice."""
        client, self._client = self._client, None
        self._stopper.shutdown(wait=True)
        if client is not None:
            try:
                # First, or the scheduler logs a failed send of our own "remove-client" event.
                for topic in (self.topic, "all"):
                    try:
                        client.unsubscribe_topic(topic)
                    except ValueError:
                        pass  # not subscribed: start() failed before
                if self._running:
                    from .task import stop_queue
                    client.run(stop_queue, self.queue_token, "its worker stopped",
                               on_error="ignore")
                client.close()
            except Exception as exc:  # the scheduler may be gone already: nothing to stop
                logger.warning("closing the Dask client: %s", exc)
        self._running.clear()
        self._by_key.clear()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass  # closed already

    # --- the Executor protocol ---------------------------------------------------------------

    def free_slots(self) -> int:
        """How many attempts may start now (``Members.free``)."""
        return self.members.free() if self._client is not None else 0

    def submit(self, job_id: int, target: str, args: list[Any], kwargs: dict[str, Any],
               timeout: float | None) -> str:
        """Send an attempt to the Dask worker with the most free threads; its address."""
        from .task import run_attempt

        client = self._require_client()
        where = self.members.place()
        self._seq += 1
        key = f"notebookjobs-{self.queue_token}-{self._nonce}-{job_id}-{self._seq}"
        request = AttemptRequest(key=key, job_id=job_id, target=target, args=args,
                                 kwargs=kwargs, timeout=timeout, root=str(self.root),
                                 upload=self.upload, data=self.data, token=self.queue_token,
                                 topic=self.topic)
        try:
            future = client.submit(run_attempt, validate.request_json(request), key=key,
                                   workers=[where], allow_other_workers=False, pure=False,
                                   retries=0)
        except BaseException:
            self.members.release(where)
            raise
        attempt = self._running[job_id] = self._by_key[key] = _Attempt(
            job_id=job_id, key=key, where=where, future=future, started=time.monotonic())
        future.add_done_callback(self._on_done)
        logger.debug("job %d: attempt %s sent to %s", job_id, key, attempt.where)
        return where

    def wait(self, timeout: float | None, extra: Sequence[Any] = ()) -> PoolEvents:
        """Block until an attempt ends or reports progress, one of ``extra`` is readable, or
        ``timeout`` seconds pass; settle what Dask's threads reported meanwhile."""
        self._take_inbox()
        if self._finished or self._progress or self._started:
            timeout = 0.0
        until_refresh = max(0.0, self._next_refresh - time.monotonic())
        wait_s = until_refresh if timeout is None else min(timeout, until_refresh)
        ready, _, _ = select.select([self._wake_r, *extra], [], [], wait_s)
        if self._wake_r in ready:
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
        self._take_inbox()
        if time.monotonic() >= self._next_refresh:
            self._refresh(self._require_client())
        events = PoolEvents(finished=self._finished, progress=self._progress,
                            started=self._started, ready=[obj for obj in extra if obj in ready])
        self._finished, self._progress, self._started = [], [], []
        return events

    def flush(self) -> None:
        """Nothing to do: ``submit`` hands each attempt to the cluster at once."""

    def stop_job(self, job_id: int, kind: OutcomeKind, reason: str) -> bool:
        """Ask the Dask worker running ``job_id`` to kill its attempt: the task then returns
        ``Outcome(kind, error=reason)``, which comes out of ``wait`` (or the attempt's real
        outcome, when it ended first). False if it is not running."""
        attempt = self._running.get(job_id)
        if attempt is None:
            return False
        client = self._require_client()

        def send() -> None:
            from .task import stop_attempt
            try:
                client.run(stop_attempt, attempt.key, kind.value, reason,
                           workers=[attempt.where], on_error="raise")
            except Exception as exc:  # its worker is gone: the lost-worker path ends it
                logger.warning("job %d: the stop did not reach %s: %s", job_id, attempt.where,
                               exc)

        self._stopper.submit(send)
        return True

    def describe(self) -> dict[str, Any]:
        """The cluster for ``worker_status()``: scheduler, dashboard link, workers."""
        return {"scheduler": self.address, "dashboard": self.dashboard, "upload": self.upload,
                **self.members.describe()}

    # --- from Dask's threads -----------------------------------------------------------------

    def _on_done(self, future: Future) -> None:
        """A task ended (Dask's callback thread): fetch its outcome here, off the loop, unless
        it came on the event topic already (``_on_event``)."""
        if future.key in self._pushed:
            self._pushed.discard(future.key)
            return
        status, text, error = future.status, None, None
        try:
            if status == "finished":
                text = future.result(timeout=GATHER_TIMEOUT_S)
            elif status == "error":
                error = f"{type(future.exception()).__name__}: {future.exception()}"
        except Exception as exc:  # the result was lost with its worker, or cannot be read
            status, error = "error", f"{type(exc).__name__}: {exc}"
        self._post(("done", future.key, status, text, error))

    def _on_event(self, event: tuple[float, Any]) -> None:
        """A progress report, or a small outcome pushed ahead of its task's end (Dask's event
        loop; the scheduler forwards both in the order the Dask worker sent them, so an outcome
        is here before its task is done: ``_on_done`` then has nothing to fetch)."""
        message = event[1]
        if isinstance(message, dict) and "outcome" in message:
            key = message.get("key")
            if isinstance(key, str) and key in self._by_key:
                self._pushed.add(key)
                self._post(("outcome", key, message["outcome"]))
        elif isinstance(message, dict) and "started" in message:
            self._post(("started", message))
        else:
            self._post(("progress", message))

    def _on_cluster_event(self, event: tuple[float, Any]) -> None:
        message = event[1]
        if isinstance(message, dict) and message.get("action") == "remove-worker":
            self._post(("lost", str(message.get("worker"))))
        elif isinstance(message, dict) and message.get("action") == "add-worker":
            self._post(("refresh",))

    def _post(self, item: tuple[Any, ...]) -> None:
        self._inbox.append(item)
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # full (the loop is due to wake), or closed (we are stopping)

    # --- in the loop thread ------------------------------------------------------------------

    def _take_inbox(self) -> None:
        while self._inbox:
            item = self._inbox.popleft()
            if item[0] == "done":
                self._done(*item[1:])
            elif item[0] == "outcome":
                self._done(item[1], "finished", item[2], None)
            elif item[0] == "progress":
                self._progress_report(item[1])
            elif item[0] == "started":
                self._started_report(item[1])
            elif item[0] == "lost":
                self.members.remove(item[1])
                self._lost({item[1]})
                self._next_refresh = 0.0
            else:
                self._next_refresh = 0.0

    def _done(self, key: str, status: str, text: str | None, error: str | None) -> None:
        attempt = self._by_key.get(key)
        if attempt is None:
            return  # ended already (its worker was lost), or not ours
        if text is not None:
            try:
                outcome = validate.cluster_outcome(text)
            except InvalidArgumentsError as exc:
                outcome = Outcome(kind=OutcomeKind.CRASHED, error=f"the Dask worker "
                                  f"{attempt.where} sent back an outcome that is not valid: {exc}")
        elif status == "error":
            outcome = Outcome(kind=OutcomeKind.CRASHED, error=f"the attempt's Dask task on "
                              f"{attempt.where} failed: {error}")
        else:  # cancelled or lost: the scheduler dropped it (a restart, a lost connection)
            outcome = Outcome(kind=OutcomeKind.CRASHED, error=f"the Dask scheduler dropped "
                              f"this attempt ({status}) while it ran on {attempt.where}")
        self._end(attempt, outcome)

    def _progress_report(self, message: Any) -> None:
        try:
            key, job_id, fraction, note = validate.cluster_progress(message)
        except InvalidArgumentsError as exc:
            logger.debug("dropped a progress report: %s", exc)
            return
        attempt = self._by_key.get(key)
        if attempt is not None and attempt.job_id == job_id:
            self._progress.append((job_id, fraction, note))

    def _started_report(self, message: Any) -> None:
        try:
            key, job_id, began = validate.cluster_started(message)
        except InvalidArgumentsError as exc:
            logger.debug("dropped a start report: %s", exc)
            return
        attempt = self._by_key.get(key)  # gone: it ended already, and counted as begun then
        if attempt is not None and attempt.job_id == job_id:
            self._started.append((job_id, began))

    def _lost(self, gone: set[str]) -> None:
        """Fail the attempts that ran on Dask workers that are gone."""
        for attempt in [a for a in self._running.values() if a.where in gone]:
            logger.warning("job %d: Dask worker %s lost mid-attempt", attempt.job_id,
                           attempt.where)
            self._end(attempt, Outcome(kind=OutcomeKind.CRASHED,
                                       error=LOST.format(where=attempt.where),
                                       duration_s=time.monotonic() - attempt.started))

    def _end(self, attempt: _Attempt, outcome: Outcome) -> None:
        self._running.pop(attempt.job_id, None)
        self._by_key.pop(attempt.key, None)
        self.members.release(attempt.where)
        # Released, so the scheduler forgets it: a task bound to a lost worker would otherwise
        # wait for that worker forever.
        attempt.future.release()
        self._finished.append((attempt.job_id, outcome))

    def _refresh(self, client: Client) -> None:
        """Read the cluster's workers again; fail the attempts of the ones that are gone."""
        if client.status not in ("running", "connecting", "newly-created"):
            raise WorkerError(f"lost the connection to the Dask scheduler at {self.address} "
                              f"(client {client.status}); start the worker again once the "
                              "scheduler is back (its jobs are recovered then)")
        try:
            identity = client.scheduler_info(n_workers=-1)
        except TypeError:  # distributed before n_workers: it gives every worker anyway
            identity = client.scheduler_info()
        except OSError as exc:  # reconnecting: look again soon
            logger.warning("cannot read the Dask cluster's workers: %s", exc)
            self._next_refresh = time.monotonic() + 1.0
            return
        self._lost(self.members.update(identity))
        self._next_refresh = time.monotonic() + REFRESH_S

    def _require_client(self) -> Client:
        if self._client is None:
            raise WorkerError("the Dask executor is not started (or closed)")
        return self._client
