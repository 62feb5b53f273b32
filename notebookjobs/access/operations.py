"""Every operation a client may ask of the queue, declared once (SPEC §11, §14): the table.

An ``Operation`` says what is true of it wherever it runs:

- its name, and its meaning: the method of ``StoreQueue`` of that name (``access.meaning``), or
  none for the worker's own operations (``worker_status``, ``stop``, ``watch``), which only a
  running worker answers;
- its request record: each argument's name and check, applied by the worker to what arrives
  on its socket before anything is stored (``check``);
- its reply record: how the worker's JSON answer becomes the value the meaning returns
  (``reply``);
- whether it writes (the socket client never sends it again after a lost reply; the worker
  tells its watchers), and whether it stores new jobs (their target is checked against
  whitelist.yaml again at the worker's door; without a worker it may create the queue, where
  any other operation on a queue that does not exist creates nothing);
- whether it goes through the dispatch journal, and how (``Journalled``); and how it runs on
  the locked file when not in a transaction of its own (``alone``: a user's SQL).

From this table, at import time, come the client's router (``queue_client.QueueClient``), the socket
client (``remote.RemoteQueue``), the worker's dispatch (``worker.service``) and the request
validation (``check``). Adding an operation is an entry here and its meaning in ``StoreQueue``:
the worker serves it on its file, after a commit, unless ``worker.service`` serves it itself.

Each queue operation is also an attribute of ``Operations`` (a descriptor): on a class derived
from it, ``queue.get(5)`` is ``queue.perform(GET, 5)``, typed as the meaning is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from .. import journal
from ..errors import InvalidArgumentsError
from ..model import validate
from ..model.records import JobBatch, JobSpec
from .meaning import Page, StoreQueue

if TYPE_CHECKING:
    import pyarrow as pa

P = ParamSpec("P")
R = TypeVar("R")


class Performer(Protocol):
    """A way into the queue: it carries out any operation of the table."""

    def perform(self, op: Operation[..., Any], *args: Any) -> Any: ...


#: what ``Operation.through_journal`` returns for a call that does not go there
ELSEWHERE: Any = object()


@dataclass(frozen=True)
class Entry:
    """A journal record to append: its kind, how many new ids it takes, its payload."""

    kind: int
    count: int
    payload: bytes


@dataclass(frozen=True)
class Journalled:
    """How an operation goes through the dispatch journal: the record its arguments make, or
    None when it must be decided on the queue's state instead (``journal.journalled`` says
    which); and its answer from the first and last id its record took."""

    record: Callable[..., Entry | None]
    reply: Callable[[int, int], Any]


class Operation(Generic[P, R]):
    """One operation of the queue (module docstring); typed by its meaning."""

    def __init__(self, meaning: Callable[Concatenate[StoreQueue, P], R] | None, *,
                 name: str | None = None, params: Sequence[tuple[str, validate.Check]] = (),
                 check: Callable[[list[Any]], list[Any]] | None = None,
                 reply: Callable[[Any], Any] | None = None, writes: bool = False,
                 new_jobs: bool = False, journal: Journalled | None = None,
                 alone: Callable[..., R] | None = None,
                 waits: Callable[..., float] | None = None) -> None:
        self.meaning = meaning
        self.name = name or str(getattr(meaning, "__name__", ""))
        self.params = tuple(params)  #: the request record: (name, check) per argument
        self._check = check  #: instead of ``params``, for arguments of a varying number
        self.reply: Callable[[Any], Any] = reply or _same  #: the reply record
        self.writes = writes
        self.new_jobs = new_jobs  #: its first argument holds the new jobs (their target)
        self.journal = journal
        #: on the locked file, by itself rather than in a transaction: (db_path, *args)
        self.alone = alone
        #: seconds the worker may take beyond a usual request (a query's time limit)
        self.waits = waits

    def __repr__(self) -> str:
        return f"<operation {self.name}>"

    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> Operation[P, R]: ...
    @overload
    def __get__(self, obj: Performer, owner: type[Any] | None = None) -> Callable[P, R]: ...
    def __get__(self, obj: Performer | None, owner: type[Any] | None = None) -> Any:
        return self if obj is None else partial(obj.perform, self)

    def through_journal(self, args: tuple[Any, ...] | list[Any],
                        take: Callable[[Entry], tuple[int, int] | None]) -> Any:
        """Its answer through the dispatch journal, ``take(entry)`` appending the record
        (its first and last id; None when it cannot, and the caller goes another way); or
        ``ELSEWHERE`` when it does not go there."""
        entry = None if self.journal is None else self.journal.record(*args)
        if entry is None:
            return ELSEWHERE
        assert self.journal is not None
        if not entry.count:
            return self.journal.reply(1, 0)  # nothing to store: no record, no id
        appended = take(entry)
        return ELSEWHERE if appended is None else self.journal.reply(*appended)

    def check(self, args: Any) -> list[Any]:
        """The checked arguments of a request for this operation (SPEC §14: each message's
        fields and types are checked before anything is stored); ``InvalidArgumentsError``
        names the first one that is wrong."""
        if not isinstance(args, list):
            raise InvalidArgumentsError(f"a request's args must be a list, got "
                                        f"{validate.short_repr(args)}")
        if self._check is not None:
            return self._check(args)
        return _check_args(self.name, self.params, args)


def _same(value: Any) -> Any:
    return value


def _check_args(operation: str, checks: Sequence[tuple[str, validate.Check]],
                args: list[Any]) -> list[Any]:
    if len(args) != len(checks):
        raise InvalidArgumentsError(
            f"{operation} takes {len(checks)} argument{'s' if len(checks) != 1 else ''} "
            f"({', '.join(name for name, _ in checks) or 'none'}), got {len(args)}")
    return [check(name, value) for (name, check), value in zip(checks, args, strict=True)]


# --- how dispatches go through the journal --------------------------------------------------------

def _job_record(spec: JobSpec, now: datetime) -> Entry | None:
    if not journal.journalled(spec):
        return None
    return Entry(journal.JOB, 1, journal.job_payload(spec, now))


def _batch_record(batch: JobBatch, now: datetime) -> Entry:
    # Checked here by the function that reads the record back (``journal.jobs_of``): a batch
    # the reader would refuse must be refused now, not acknowledged and then failed as
    # unreadable (a call's value may pass on its own and be one level too deep in its job's
    # argument list). Found by `make soak`'s dispatch_many property. An empty batch takes no
    # record and no id.
    batch = validate.job_batch(batch)
    return Entry(journal.BATCH, len(batch.args), journal.batch_payload(batch, now))


# --- the named frames of ``table`` ----------------------------------------------------------------

_opt = validate.optional
#: the named frames and the checks of their arguments
TABLES: dict[str, tuple[tuple[str, validate.Check], ...]] = {
    "history": (("since", _opt(validate.timestamp)), ("until", _opt(validate.timestamp)),
                ("target", _opt(validate.string)), ("status", _opt(validate.status_name))),
    "stats": (("by", validate.string),),
    "sql": (("query", validate.string),),
    "schedules": (),
    "prunable": (("before", validate.timestamp),),
}


def _table_args(args: list[Any]) -> list[Any]:
    if not args or args[0] not in TABLES:
        raise InvalidArgumentsError(
            f"table: the first argument must be one of {', '.join(TABLES)}")
    if len(args) < 2:
        raise InvalidArgumentsError("table takes a name, a time limit and the table's "
                                    "arguments")
    return [args[0], validate.query_time_limit("timeout", args[1]),
            *_check_args(f"table {args[0]}", TABLES[args[0]], args[2:])]


def _read_table_alone(db_path: Path, name: str, limit: float, *args: Any) -> pa.Table:
    from .. import store  # DuckDB: only on the file's path

    return store.read_table(db_path, name, args, limit)


def _parquet(path: Any) -> pa.Table:
    """A frame the worker wrote as a Parquet file in its private frames folder (JSON would cost
    seconds for a million rows): read, and deleted. Mapped rather than read into a buffer of
    its own (~42 MB for a 1,000,000-job history, page-faulted in at each call)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(str(path), memory_map=True)
    finally:
        Path(str(path)).unlink(missing_ok=True)


def _page(reply: Any) -> Page:
    jobs, total = reply
    return list(jobs), int(total)


# --- the table ------------------------------------------------------------------------------------

_id = validate.checked(validate.job_id)
_spec = validate.checked(validate.job_spec)
_outcome = validate.checked(validate.outcome)
_now = ("now", validate.timestamp)


class Operations:
    """The queue's operations, one attribute each (module docstring)."""

    enqueue = Operation(
        StoreQueue.enqueue, params=(("spec", _spec), _now), reply=int, writes=True,
        new_jobs=True, journal=Journalled(_job_record, lambda first, last: first))
    enqueue_batch = Operation(
        StoreQueue.enqueue_batch, params=(("batch", validate.checked(validate.job_batch)), _now),
        reply=list, writes=True, new_jobs=True,
        journal=Journalled(_batch_record, lambda first, last: list(range(first, last + 1))))
    get = Operation(StoreQueue.get, params=(("job_id", _id),))
    get_many = Operation(StoreQueue.get_many, params=(("job_ids", validate.many_ids),),
                         reply=list)
    page = Operation(StoreQueue.page, reply=_page, params=(
        ("page", lambda n, v: validate.integer(n, v, 1, validate.ID_MAX)),
        ("per_page", lambda n, v: validate.integer(n, v, 1, validate.MAX_PAGE_SIZE)),
        ("status", _opt(validate.status_name)), ("order", validate.page_order),
        ("search", _opt(validate.search_text))))
    counts = Operation(StoreQueue.counts, reply=dict)
    cancel = Operation(StoreQueue.cancel, params=(("job_id", _id), _now), reply=str,
                       writes=True)
    prune = Operation(StoreQueue.prune, params=(("before", validate.timestamp),), reply=int,
                      writes=True)
    table = Operation(StoreQueue.table, check=_table_args, reply=_parquet,
                      alone=_read_table_alone, waits=lambda name, limit, *args: limit)
    record_progress = Operation(
        StoreQueue.record_progress, reply=lambda _: None, writes=True,
        params=(("job_id", _id), ("fraction", validate.checked(validate.progress_fraction)),
                ("message", _opt(validate.string))))
    run_started = Operation(
        StoreQueue.run_started, params=(("spec", _spec), ("owner", validate.runner_name), _now),
        writes=True, new_jobs=True)
    run_restarted = Operation(StoreQueue.run_restarted,
                              params=(("job_id", _id), ("outcome", _outcome), _now), writes=True)
    run_finished = Operation(StoreQueue.run_finished,
                             params=(("job_id", _id), ("outcome", _outcome), _now), writes=True)


#: the worker's own operations: only a running worker answers them (no meaning on the file)
WORKER_STATUS: Operation[..., dict[str, Any]] = Operation(None, name="worker_status", reply=dict)
STOP: Operation[..., Any] = Operation(None, name="stop", writes=True)
#: the dashboard's push (``worker.changes``): the version it has seen, the seconds to wait
WATCH: Operation[..., int] = Operation(None, name="watch", reply=int, params=(
    ("seen", lambda n, v: validate.integer(n, v, 0, validate.ID_MAX)),
    ("hold", validate.watch_hold)))

#: every operation a request may name, by name
OPERATIONS: dict[str, Operation[..., Any]] = {
    **{op.name: op for op in vars(Operations).values() if isinstance(op, Operation)},
    **{op.name: op for op in (WORKER_STATUS, STOP, WATCH)},
}


def find(name: Any) -> Operation[..., Any]:
    """The operation a request names; ``InvalidArgumentsError`` for any other name."""
    op = OPERATIONS.get(name) if isinstance(name, str) else None
    if op is None:
        raise InvalidArgumentsError(f"unknown operation {validate.short_repr(name)}")
    return op


def declare(op: Operation[P, R]) -> Operation[P, R]:
    """Add ``op`` to the table: a request may name it, and every way in carries it out (on
    ``Operations``, an attribute of its name). What an entry needs besides is its meaning."""
    OPERATIONS[op.name] = op
    if op.meaning is not None:
        setattr(Operations, op.name, op)
    return op
