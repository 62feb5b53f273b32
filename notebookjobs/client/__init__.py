"""The service API of SPEC §6. The CLI, the magic and the dashboard call these and nothing below.

Each call reads the current settings (whitelist.yaml is re-read when it changes), validates its
input, and makes one typed call of an operation of the queue (``access.operations``), through
the running worker or on the file (``queue_client.QueueClient`` decides).

pandas is imported by the calls that return frames, and the foreground runner by ``run_now``:
``nj.status``, ``nj.cancel`` and ``nj.dispatch`` (and the CLI commands over them) do without
both (SPEC §7; about 0.5 s of imports).
"""

from __future__ import annotations

import inspect
import json
import math
import time
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..access.queue_client import QueueClient
from ..access.remote import worker_info
from ..config import Settings, load_settings
from ..data import datafiles
from ..errors import InvalidArgumentsError, JobStateError, NotebookJobsError, NoWorkerWarning
from ..model import validate
from ..model.records import FINAL_STATUSES, STATUS_NAMES, Job, JobBatch, JobStatus, utcnow
from ..targets import arguments, registry
from ..worker import daemon
from . import dispatching

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

WAIT_FIRST_POLL_S = 0.01  # wait() polls quickly at first, then backs off
WAIT_MAX_POLL_S = 0.25
CANCEL_WAIT_S = 5.0  # how long cancel() waits for the worker to stop a running job
#: seconds a wait() goes on before it checks, once, that a worker runs (and warns if none does)
NO_WORKER_CHECK_S = 3.0
#: the queues (DB paths) this process has warned about: the warning comes once, not per call
_warned_no_worker: set[str] = set()


def settings() -> Settings:
    """The current project's settings (root, paths, whitelist); ``ConfigError`` while
    whitelist.yaml is invalid."""
    return load_settings()


def _paths() -> Settings:
    """The project's settings for reads and worker control, which work while whitelist.yaml
    is broken (SPEC §12): its locations are all they need."""
    return load_settings(strict=False)


def run_now(target: str, args: list[Any], kwargs: dict[str, Any], *,
            echo: bool = True) -> dict[str, Any]:
    """Run ``target`` in this process now, with retries, recorded in the queue (the CLI's
    ``run``; ``foreground.run_now``)."""
    from .foreground import run_now as run

    return run(target, args, kwargs, echo=echo)


def missing_queue() -> Path | None:
    """The current project's queue file when nothing was ever stored in it (reads of it then
    answer as an empty queue's, and create nothing), else None."""
    cfg = _paths()
    return None if QueueClient(cfg).exists() else cfg.db_path


def data_folder() -> Path:
    """The queue's data folder: result files and the frames and arrays given as arguments."""
    return datafiles.data_dir(_paths().db_path)


def _check_int(name: str, value: Any, lowest: int | None = None) -> int:
    return validate.integer(name, value, lowest, validate.INT32_MAX)


def signature(target: str) -> inspect.Signature | None:
    """What a caller binds the target's arguments against (no ``self``); None when the target
    is not allowed or does not resolve (dispatching it then says why)."""
    try:
        return registry.resolve(target, settings()).signature
    except NotebookJobsError:
        return None


def dispatch(target: str, *args: Any, priority: int = 0, delay: float | timedelta | str = 0,
             at: datetime | str | None = None, after: Any = None, unique: bool | str = False,
             **kwargs: Any) -> int:
    """Validate ``target`` and its arguments, store a pending job, return its id
    (``nj.dispatch`` returns it as a ``Job`` handle, SPEC §15).

    ``priority``: higher runs first. ``delay``: seconds, a duration ('5m') or a timedelta
    before it may start; or ``at``: when (a datetime or an ISO 8601 string; without a zone,
    local time). ``after``: ids of jobs that must complete first; when one fails or is
    cancelled, this one is cancelled. ``unique``: True (key: the target and its arguments) or a
    key; while a pending or running job has that key, its id is returned and nothing is
    stored (SPEC §16). A target may be a notebook of ``allowed_notebooks`` (SPEC §17).
    A DataFrame, Series or numpy array argument is stored as a file (Parquet, ``.npy``) and
    the job receives it as such. Raises ``NotAllowedError`` for a target the whitelist does not
    name and ``InvalidArgumentsError`` for arguments that do not fit its signature; nothing is
    stored then.
    """
    cfg = settings()
    now = utcnow()
    stash = dispatching.stash(cfg)
    spec = dispatching.job_spec(cfg, target, args, kwargs, priority, delay, now, stash, at=at,
                                after=after, unique=unique)
    queue = QueueClient(cfg)
    job_id = dispatching.stored(stash, lambda: queue.enqueue(spec, now))
    _autostart(cfg, queue, [job_id])
    return job_id


def dispatch_many(target: str, calls: list[Any], *, priority: int = 0,
                  delay: float | timedelta = 0) -> list[int]:
    """Dispatch ``target`` once per item of ``calls`` in one transaction; their ids, in
    order (``nj.dispatch_many``: their ``Job`` handles).

    Each item is a list or tuple of positional arguments, or a dict of keyword arguments
    (frames and arrays among them, as for ``dispatch``). Every item is validated first: one
    bad item stores nothing.
    """
    cfg = settings()
    now = utcnow()
    stash = dispatching.stash(cfg)
    resolved = registry.resolve(target, cfg)
    # Checked once for the batch: the per-item work is the binding alone.
    priority = validate.priority(priority)
    run_at = validate.later(now, validate.seconds("delay", delay))
    binder = arguments.binder(resolved)
    all_args, all_kwargs = [], []
    for i, item in enumerate(calls):
        if isinstance(item, dict):
            args, kwargs = [], item
        elif isinstance(item, (list, tuple)):
            args, kwargs = list(item), {}
        else:
            raise InvalidArgumentsError(f"calls[{i}]={item!r}: expected a list of positional "
                                        "arguments or a dict of keyword arguments")
        try:
            args, kwargs = stash.swap(args, kwargs)
            bound_args, bound_kwargs = binder.bind(args, kwargs)
        except InvalidArgumentsError as exc:
            raise InvalidArgumentsError(f"calls[{i}]: {exc}") from exc
        all_args.append(json.dumps(bound_args) if bound_args else "[]")
        all_kwargs.append(json.dumps(bound_kwargs) if bound_kwargs else "{}")
    batch = JobBatch(target=resolved.name, args=all_args, kwargs=all_kwargs, priority=priority,
                     run_at=run_at, policy=cfg.policy_for(resolved.name))
    queue = QueueClient(cfg)
    ids = dispatching.stored(stash, lambda: queue.enqueue_batch(batch, now))
    _autostart(cfg, queue, ids)
    return ids


def _autostart(cfg: Settings, queue: QueueClient, ids: list[int]) -> None:
    """The seed's "background runner is triggered on dispatch": start a worker if none runs,
    without waiting for it (the jobs are durable: the worker finds them when it starts); with
    autostart off, say (once per queue and process) that nothing will run the jobs."""
    if queue.used_worker:
        _warned_no_worker.discard(str(cfg.db_path))  # a later stop deserves a new warning
    elif cfg.worker.autostart:
        daemon.spawn(cfg)  # unless one runs or is starting
    elif str(cfg.db_path) not in _warned_no_worker:
        _warned_no_worker.add(str(cfg.db_path))
        shown = ", ".join(map(str, ids[:3])) + (", ..." if len(ids) > 3 else "")
        warnings.warn(NoWorkerWarning(
            f"job{'s' if len(ids) != 1 else ''} {shown} stored, but no worker is running and "
            f"worker.autostart is false in {cfg.whitelist_path}: nothing will run "
            f"{'them' if len(ids) != 1 else 'it'} until a worker starts (nj.start_worker() "
            "or `notebookjobs worker start`)"),
            stacklevel=4)  # the caller of nj.dispatch: above it, notebook.handle's wrapper


def status(job_id: int) -> dict[str, Any]:
    """The job's fields: id, target, args, kwargs, status, ..., progress_message (SPEC §6)."""
    return _get(job_id).to_status()


def statuses(job_ids: list[int]) -> list[dict[str, Any]]:
    """The fields of these jobs (``status()`` each), in id order, in as few requests as
    ``validate.MAX_GET_MANY`` allows; ids without a job are left out (pruned)."""
    ids = sorted({validate.job_id(i) for i in job_ids})
    queue = QueueClient(_paths())
    return [found.to_status() for start in range(0, len(ids), validate.MAX_GET_MANY)
            for found in queue.get_many(ids[start:start + validate.MAX_GET_MANY])]


def _get(job_id: int) -> Job:
    return QueueClient(_paths()).get(validate.job_id(job_id))


def wait(job_id: int, timeout: float | None = None) -> dict[str, Any]:
    """Block until the job is completed, failed or cancelled; ``TimeoutError`` after
    ``timeout`` seconds."""
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    pause = WAIT_FIRST_POLL_S
    checked = False
    while True:
        info = status(job_id)
        if info["status"] in FINAL_STATUSES:
            return info
        if not checked and time.monotonic() - started >= NO_WORKER_CHECK_S:
            checked = True
            if info["status"] == JobStatus.PENDING:  # (a running one may be a foreground run)
                _warn_if_no_worker(job_id)
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} is still {info['status']} after {timeout:g} s")
        remaining = math.inf if deadline is None else deadline - time.monotonic()
        time.sleep(max(0.0, min(pause, remaining)))
        pause = min(pause * 2, WAIT_MAX_POLL_S)


def _warn_if_no_worker(job_id: int) -> None:
    """A wait that has gone on for a while: say so if no worker will ever end it."""
    cfg = _paths()
    if worker_info(cfg) is None:
        warnings.warn(NoWorkerWarning(
            f"job {job_id} is pending and no worker is running for {cfg.db_path}: "
            "this wait goes on until a worker starts (nj.start_worker() or "
            "`notebookjobs worker start`)"), stacklevel=3)


def cancel(job_id: int) -> bool:
    """Cancel a pending job at once, or ask the worker to stop a running one.

    Returns False when the job had already finished (completed, failed or cancelled).
    """
    cfg = _paths()
    before = QueueClient(cfg).cancel(validate.job_id(job_id), utcnow())
    if before == JobStatus.RUNNING and worker_info(cfg) is not None:
        # The worker stops the child at once; return once the job shows it.
        try:
            wait(job_id, timeout=CANCEL_WAIT_S)
        except TimeoutError:
            pass
    return before in (JobStatus.PENDING, JobStatus.RUNNING)


def cancel_said(job_id: int) -> tuple[bool, str]:
    """Cancel ``job_id`` and say what became of it, in the words the CLI, ``%jobs cancel`` and
    the dashboard all show after "job N": ``(True, "cancelled")``; ``(True, "cancel requested:
    its worker stops it")`` while a running job has not stopped yet (``cancel`` waits
    CANCEL_WAIT_S for it); ``(False, "ended (completed) before the cancel took effect")``.
    ``JobStateError`` when it had finished already: there was nothing to cancel."""
    if not cancel(job_id):
        raise JobStateError(f"job {job_id} is {status(job_id)['status']}: nothing to cancel")
    now = status(job_id)["status"]
    if now == JobStatus.CANCELLED:
        return True, "cancelled"
    if now == JobStatus.RUNNING:  # asked of its worker, which has not stopped it yet
        return True, "cancel requested: its worker stops it"
    return False, f"ended ({now}) before the cancel took effect"


def retry(job_id: int) -> int:
    """Dispatch a failed or cancelled job again with the same arguments; the new job's id
    (``nj.retry``: its ``Job`` handle).

    The old job stays in the history as it was. The target is checked against the current
    whitelist again.
    """
    job = _get(job_id)
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise JobStateError(f"job {job_id} is {job.status}; only failed or cancelled jobs can "
                            "be retried (dispatch it again instead)")
    cfg = settings()
    now = utcnow()
    # Its frames and arrays are the old job's files: shared, not copied.
    stash = dispatching.stash(cfg)
    spec = dispatching.job_spec(cfg, job.target, job.args, job.kwargs, job.priority, 0, now,
                                stash)
    queue = QueueClient(cfg)
    new_id = dispatching.stored(stash, lambda: queue.enqueue(spec, now))
    _autostart(cfg, queue, [new_id])
    return new_id


def _frame(jobs: list[Job]) -> pd.DataFrame:
    """A page of jobs as the frame ``nj.jobs()`` returns."""
    import pandas as pd

    frame = pd.DataFrame([j.to_status() for j in jobs], columns=list(Job.STATUS_KEYS))
    for column in ("created_at", "run_at", "started_at", "finished_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def jobs(page: int = 1, per_page: int = 5, status: str | None = None,
         order: str = "newest", search: str | None = None) -> pd.DataFrame:
    """One page of the queue, newest first (``order``: also oldest, running for the running
    jobs first then the pending ones in the order they will run, priority); ``search``: only
    the jobs whose target or arguments contain this text (any case). ``df.attrs`` holds total,
    page, pages, per_page, status, order and search."""
    _check_int("page", page, 1)
    _check_int("per_page", per_page, 1)
    _check_status(status)
    validate.page_order("order", order)
    if search is not None:
        search = validate.search_text("search", search)
    rows, total = QueueClient(_paths()).page(page, per_page, status, order, search)
    frame = _frame(rows)
    frame.attrs.update(total=total, page=page, per_page=per_page, status=status, order=order,
                       search=search, pages=max(1, math.ceil(total / per_page)))
    return frame


def watch(seen: str | None = None, hold: float = 60.0) -> str:
    """Wait until the queue changes: a token, another than ``seen`` once something changed
    (at once when ``seen`` is None), else ``seen`` again after about ``hold`` seconds. The
    dashboard's push: with a worker, one request waits in it; without one, the queue's files
    are compared twice a second (``watching``)."""
    from . import watching

    return watching.watch(_paths(), seen, validate.seconds("hold", hold))


def _check_status(status: str | None) -> None:
    if status is not None and status not in STATUS_NAMES:
        raise InvalidArgumentsError(
            f"status={status!r} is not a job status; use one of {', '.join(STATUS_NAMES)}")


def counts() -> dict[str, int]:
    """How many jobs are in each status."""
    return QueueClient(_paths()).counts()


def schedules() -> pd.DataFrame:
    """The schedules of whitelist.yaml (SPEC §16): name, target, cron, every, timezone,
    enabled, next_run, last_run (the last tick dispatched), last_job and its last_status, and
    the problem that will fail its jobs (arguments that do not fit the target), if any."""
    import pandas as pd

    from ..model.schedule import LISTING_COLUMNS, listing

    cfg = settings()
    stored = QueueClient(cfg).table("schedules", validate.QUERY_TIME_LIMIT_S).to_pylist()
    frame = pd.DataFrame(listing(cfg.schedules, stored, utcnow(),
                                 lambda s: dispatching.schedule_problem(cfg, s)),
                         columns=LISTING_COLUMNS)
    for column in ("next_run", "last_run"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["last_job"] = frame["last_job"].astype("Int64")
    return frame


def available_jobs() -> pd.DataFrame:
    """Discovery: target, owner, member, kind, parameters, doc, allowed (SPEC §6)."""
    import pandas as pd

    from ..targets import discovery

    rows = discovery.discover(settings())
    return pd.DataFrame(
        [r.__dict__ for r in rows],
        columns=["target", "owner", "member", "kind", "parameters", "doc", "allowed", "allow_hint"],
    )


# --- the detached worker ----------------------------------------------------------------------

def start_worker(concurrency: int | None = None, *, log_level: str | None = None,
                 dask: Any = None) -> int:
    """Start the detached worker (or find the running one); returns its pid.

    ``log_level``: DEBUG, INFO, WARNING, ERROR or CRITICAL (default ``$NOTEBOOKJOBS_LOG_LEVEL``,
    else INFO). ``dask``: run the attempts on a Dask cluster (SPEC §18): its scheduler's address
    (``"tcp://host:8786"``), or the cluster or ``distributed.Client`` itself; by default
    ``worker.executor`` of whitelist.yaml decides.
    """
    if concurrency is not None:
        concurrency = validate.concurrency(concurrency)
    if log_level is not None:
        try:
            log_level = daemon.log_level(log_level)
        except ValueError as exc:
            raise InvalidArgumentsError(str(exc)) from None
    address = None if dask is None else validate.scheduler_address(dask)
    return daemon.start(settings(), concurrency, log_level, dask=address)


def stop_worker() -> bool:
    """Stop the detached worker gracefully and wait for it; False when none was running."""
    return daemon.stop(_paths())


def worker_status() -> dict[str, Any]:
    """running, pid, concurrency, started_at and jobs (the ids it runs now); from a running
    worker also requests (received so far) and watching (``watch`` requests waiting now: the
    dashboards that follow the queue)."""
    return daemon.status(_paths())
