"""The fixed functions a notebookjobs worker sends to a Dask cluster (SPEC §18), run there.

``run_attempt`` is the only task: it receives one JSON text (``models.AttemptRequest``: target,
JSON arguments, timeout), checks the target against the whitelist the Dask worker sees before
anything of the job is imported, runs the attempt in a child process it can kill
(``dask.child``: the pool child's own loop, so frame and array arguments are read with
``argfiles.load`` and results kept with ``results.keep`` exactly as in the local pool), and
returns the outcome as JSON text. Result and argument files live in the queue's data folder:
the child uses it where the queue's folder is shared (the same path, with the queue file in
it); elsewhere a frame, array or bytes result is kept as its repr, and a job whose arguments
are such files is refused (README: More than one machine). ``stop_attempt``, ``stop_queue`` and
``probe`` run on a Dask worker's event loop through ``Client.run``. Nothing else of ours, and no
object of the user's, ever crosses to the cluster; Dask pickles these functions by reference,
so notebookjobs must be installed on the Dask workers (the worker checks it with ``probe``).

A light module: the Dask worker imports it, with ``distributed`` (already there), the whitelist
parser and the child's handle; never the store, pandas or the worker's server.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ....config import WHITELIST_NAME, load_settings
from ....config.whitelist import SETTLE_S
from ....data import argfiles
from ....errors import ConfigError, InvalidArgumentsError, WorkerError
from ....model import validate
from ....model.records import AttemptRequest, Outcome, OutcomeKind
from .child import AttemptChild

if TYPE_CHECKING:
    from distributed import Worker

#: seconds a stop request that arrived before its attempt is kept for it (a task queued behind
#: others on a busy Dask worker still starts within it, or is long given up)
STOPPED_KEEP_S = 3600.0
#: characters of an outcome sent on the event topic as well as returned (see run_attempt)
PUSH_LIMIT_CHARS = 8192
#: the states of a Dask task in which its worker no longer wants the result (the client that
#: submitted it released it: our worker stopped or died)
_RELEASED = frozenset({"cancelled", "released", "forgotten"})


@dataclass(eq=False)
class _Attempt:
    """An attempt running on this Dask worker, for stop requests to find."""

    token: str  #: its queue's token
    child: AttemptChild | None = None  #: the process running it, once it does
    stop: tuple[OutcomeKind, str] | None = None  #: why it was stopped, if it was


_LOCK = threading.Lock()  #: guards _RUNNING and _STOPPED (tasks' threads and the event loop)
_RUNNING: dict[str, _Attempt] = {}  #: attempt key -> the attempt this worker runs
_STOPPED: dict[str, tuple[OutcomeKind, str, float]] = {}  #: stops that came before the attempt
_THREAD = threading.local()  #: .child: the AttemptChild this Dask thread reuses


def run_attempt(request: str) -> str:
    """Run one attempt on this Dask worker; its outcome as JSON text (never raises for the job).

    ``request``: ``validate.request_json`` of an ``AttemptRequest``. Anything that is not one is
    refused, as is a target the whitelist here does not allow: nothing of it runs.
    """
    from distributed import get_worker

    worker = get_worker()
    try:
        attempt = validate.attempt_request(request)
    except InvalidArgumentsError as exc:
        outcome = Outcome(kind=OutcomeKind.FAILED,
                          error=f"refused on the Dask worker {worker.address}: {exc}")
        return validate.outcome_json(outcome)
    with _LOCK:
        early = _STOPPED.pop(attempt.key, None)
        running = _RUNNING[attempt.key] = _Attempt(token=attempt.token)
    try:
        if early is not None:
            outcome = Outcome(kind=early[0], error=early[1])
        else:
            outcome = _run(attempt, running, worker)
    finally:
        with _LOCK:
            _RUNNING.pop(attempt.key, None)
    text = validate.outcome_json(outcome)
    if len(text) <= PUSH_LIMIT_CHARS:
        # Pushed through the scheduler's event stream ahead of the task's end, the outcome
        # needs no fetch: a round trip through the scheduler less per attempt. (The scheduler
        # keeps the last events of a topic, hence the limit; larger ones are fetched.)
        worker.log_event(attempt.topic, {"key": attempt.key, "outcome": text})
    return text


def _run(request: AttemptRequest, attempt: _Attempt, worker: Worker) -> Outcome:
    """Check the target where it runs, then run it in this thread's child."""
    refused = f"refused on the Dask worker {worker.address}"
    root = project_root(request, worker)
    if root is None:
        return Outcome(kind=OutcomeKind.FAILED, error=f"{refused}: {missing_root(request)}")
    try:
        settings = load_settings(root)
    except ConfigError as exc:
        return _unsettled(root, f"{refused}: its whitelist.yaml cannot be used: {exc}")
    if settings.split_target(request.target) is None:
        # Defence in depth (SPEC §12, §18): whatever the queue or a forged request names, only
        # what the whitelist here allows runs here.
        return _unsettled(root, f"{refused}: {request.target!r} is not allowed by "
                          f"{settings.whitelist_path}")
    data = data_folder(request)
    if data is None and argfiles.mentions_files(request.args, request.kwargs):
        return Outcome(kind=OutcomeKind.FAILED, error=f"{refused}: its arguments refer to "
                       "frame or array files of the queue's folder, which this Dask worker does "
                       "not see; share that folder at the same path on the Dask workers "
                       "(README: More than one machine)")
    try:
        child = _thread_child(str(root), request.token, data)
    except WorkerError as exc:
        return Outcome(kind=OutcomeKind.CRASHED, error=f"on the Dask worker {worker.address}: "
                       f"{exc}")
    with _LOCK:
        attempt.child = child
        if attempt.stop is not None:  # it came while the child started
            return Outcome(kind=attempt.stop[0], error=attempt.stop[1])

    def started(at: float) -> None:
        # The executor reports it begun (the loop marks the job running); the topic keeps the
        # Dask worker's order, so it is seen before the outcome pushed the same way.
        worker.log_event(request.topic, {"key": request.key, "job_id": request.job_id,
                                         "started": at})

    def progress(fraction: float | None, message: str | None) -> None:
        worker.log_event(request.topic, {"key": request.key, "job_id": request.job_id,
                                         "fraction": fraction, "message": message})

    return child.run(request.job_id, request.target, request.args, request.kwargs,
                     timeout=request.timeout, stopped=lambda: attempt.stop,
                     wanted=lambda: _wanted(worker, request.key), on_started=started,
                     on_progress=progress)


def _unsettled(root: Path, error: str) -> Outcome:
    """A refusal, unless whitelist.yaml changed within SETTLE_S (maybe caught half-written):
    then the attempt is deferred, as the local pool does (the worker asks again soon)."""
    try:
        recent = time.time() - os.stat(root / WHITELIST_NAME).st_mtime < SETTLE_S
    except OSError:
        recent = False
    if recent:
        return Outcome(kind=OutcomeKind.DEFERRED, error=f"not started: {error}")
    return Outcome(kind=OutcomeKind.FAILED, error=error)


def _thread_child(root: str, token: str, data: Path | None) -> AttemptChild:
    """This thread's child for (root, token, data): the last one if it still serves, else a
    new one."""
    folder = None if data is None else str(data)
    child: AttemptChild | None = getattr(_THREAD, "child", None)
    if child is not None and child.alive and (child.root, child.token, child.data) == (
            root, token, folder):
        return child
    if child is not None:
        child.kill()
    _THREAD.child = child = AttemptChild(root, token, folder)
    return child


def data_folder(request: AttemptRequest) -> Path | None:
    """The queue's data folder on this Dask worker: the path it has on the queue's machine,
    when the queue's folder is shared here (its queue file is there); else None, and results
    are kept as ``results.keep`` keeps them without a folder (as their repr)."""
    if request.data is None:
        return None
    data = Path(request.data)
    queue_file = data.with_name(data.name.removesuffix(".data"))
    return data if queue_file.is_file() else None


def _wanted(worker: Worker, key: str) -> bool:
    """Whether this Dask worker still wants the task ``key``: its client may have released it
    (our worker stopped or died), and nobody would then wait for the attempt. Read from another
    thread than the worker's event loop: one dict lookup, which the GIL keeps whole."""
    task = worker.state.tasks.get(key)
    return task is not None and task.state not in _RELEASED


def project_root(request: AttemptRequest, worker: Worker) -> Path | None:
    """Where the project is on this Dask worker: the uploaded copy (``request.upload``: Dask's
    UploadDirectory extracts it beside the workers' own folders), else the same path as on the
    queue's machine (a shared filesystem). None when it is not there."""
    name = Path(request.root).name
    if request.upload:
        here = Path(worker.local_directory)
        candidates = [here.parent / name, here / name]
    else:
        candidates = [Path(request.root)]
    return next((c for c in candidates if (c / WHITELIST_NAME).is_file()), None)


def missing_root(request: AttemptRequest) -> str:
    """What to do when ``project_root`` found nothing."""
    if request.upload:
        return (f"the project {Path(request.root).name!r} was not uploaded to this Dask worker; "
                "Dask's UploadDirectory plugin needs workers started with a nanny (the default "
                "of `dask worker`); or share the project's folder instead (README: More than "
                "one machine)")
    return (f"the project root {request.root} is not on this Dask worker; mount it at the same "
            "path on every Dask worker (a shared filesystem), or set worker.dask.upload: true "
            "in whitelist.yaml to upload it (README: More than one machine)")


# --- through Client.run, on a Dask worker's event loop ----------------------------------------

def stop_attempt(key: str, kind: str, reason: str) -> bool:
    """Stop the attempt ``key`` (kill its process group): its task returns ``kind`` with
    ``reason`` within moments. Before it starts, the stop waits for it. False if it was not
    running here."""
    stop = (OutcomeKind(kind), validate.text(reason))
    with _LOCK:
        now = time.monotonic()
        for old in [k for k, (_, _, at) in _STOPPED.items() if now - at > STOPPED_KEEP_S]:
            del _STOPPED[old]
        attempt = _RUNNING.get(key)
        if attempt is None:
            _STOPPED[key] = (*stop, now)
            return False
        attempt.stop = stop
        if attempt.child is not None:
            attempt.child.interrupt()
    return True


def stop_queue(token: str, reason: str) -> int:
    """Stop every attempt of queue ``token`` on this Dask worker: a worker of that queue died,
    and the one that took over re-runs its jobs, which must not run twice at once. How many."""
    with _LOCK:
        attempts = [a for a in _RUNNING.values() if a.token == token]
        for attempt in attempts:
            attempt.stop = (OutcomeKind.CRASHED, validate.text(reason))
            if attempt.child is not None:
                attempt.child.interrupt()
    return len(attempts)


def probe(root: str, upload: bool, dask_worker: Worker) -> dict[str, Any]:
    """What a worker checks before it sends attempts to this Dask worker: notebookjobs imports
    here (or this would not run), which version, and whether the project is there."""
    request = AttemptRequest(key="probe", job_id=1, target="probe", args=[], kwargs={},
                             timeout=None, root=root, upload=upload, data=None, token="probe",
                             topic="probe")
    found = project_root(request, dask_worker)
    try:
        version = metadata.version("notebookjobs")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {"notebookjobs": version, "python": platform.python_version(),
            "root": None if found is None else str(found),
            "problem": None if found is not None else missing_root(request)}
