"""``python -m notebookjobs.worker``: one worker process, the queue's owner while it runs.

``Worker.run`` puts the parts together, in this order: the queue's lock (one worker per
queue), what a dead worker left (processes, frames), the pool's zygote, the database, the
pool's children (while the head of the run order is loaded and a dead worker's jobs
recovered), the writer, the signals; then the loop, until a stop, whose second turn takes in
the other pending jobs and starts the socket server (``_Startup``); then everything in
reverse. Threads:

- the main thread runs the loop (``loop.Loop``); the pool belongs to it (its children die
  with the thread that spawned them). With ``--dask`` or ``worker.executor: dask``, a Dask
  cluster runs the attempts instead (``dask_executor``, SPEC §18), and its client has a thread;
- the writer commits what changed (``writer.Writer``);
- the server answers each client in a thread of its own (``server``, ``service``).

They share the jobs in memory (``QueueState``) and one DuckDB connection, each under its lock,
through one ``core.Core`` that keeps the order the locks are taken in. Frames (history, stats,
``nj.sql``) are read on cursors of their own, in the server's threads (``queries``).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from multiprocessing import resource_tracker
from typing import TYPE_CHECKING, Any

from ..access import lock, owners
from ..access.remote import worker_info
from ..access.socketdir import socket_path, wake_path
from ..access.wake import WakeSocket
from ..config import Settings, load_settings
from ..data import datafiles
from ..data.joblog import JobLog
from ..errors import ConfigError, InvalidArgumentsError, NotebookJobsError, WorkerError
from ..journal import Journal
from ..journal.ledger import Ledger
from ..model import validate
from ..model.records import JobStatus, utcnow
from ..system import files, require_worker
from . import procgroup
from .core import Core
from .defaults import ENV_LOG_LEVEL, JOB_UMASK_ENV, LOG_LEVELS, log_level
from .executors.local.pool import Pool
from .loop import Loop, LoopSetup
from .problems import Problems
from .server import SocketServer

if TYPE_CHECKING:
    from ..store import Database
    from .executors.dask.executor import DaskExecutor
    from .intake import Intake
    from .queries import Queries
    from .runs import ForegroundRuns
    from .scheduler import Scheduler
    from .service import WorkerService
    from .writer import Writer

logger = logging.getLogger("notebookjobs.worker")

#: pending jobs a worker takes in before its first attempts, the head of the run order (more
#: than its first turn hands out: concurrency x ``pool.DEPTH``); the rest come next
#: (``_Startup``)
HEAD = 100


class Worker:
    """One worker process: its settings and how it runs (``burst``: exit when idle)."""

    def __init__(self, settings: Settings, *, concurrency: int | None = None,
                 burst: bool = False, dask: str | None = None) -> None:
        self.settings = settings
        self.concurrency = concurrency or settings.worker.concurrency
        #: the Dask scheduler that runs the attempts (SPEC §18), or None: the local pool
        self.dask = dask or settings.worker.dask_scheduler
        #: attempts in flight on Dask at most; None: the cluster's threads
        self.dask_limit = concurrency or (
            settings.worker.concurrency if settings.worker.concurrency_set else None)
        self.burst = burst
        self.queue_token = procgroup.queue_token(settings.db_path)  #: marks what its jobs start
        self.started_at = utcnow()
        self.problems = Problems()
        # Frames for clients go through files in a 0700 folder beside the queue (SPEC §14);
        # the folder is emptied at each start, so a killed worker leaves nothing for long.
        self.frames_dir = settings.db_path.with_name(settings.db_path.name + ".frames")
        self._db_identity: tuple[int, int] | None = None
        self._intake: Intake | None = None  #: told to keep the journal whole if the file is cut
        self.loop: Loop | None = None
        self.executor: Pool | DaskExecutor | None = None
        self.queries: Queries | None = None
        self.runs: ForegroundRuns | None = None
        self._server: SocketServer | None = None  #: answering clients (``_Startup``)

    def run(self) -> int:
        """Run until stopped (or, in burst mode, until idle); the exit code."""
        # First, so that an unsafe socket folder (SPEC §14) stops us before anything starts.
        path = socket_path(self.settings)
        lock_fd = _acquire(self.settings)
        try:
            # We hold the queue's lock: whatever a killed worker left is nobody's now.
            self._take_over_processes()
            shutil.rmtree(self.frames_dir, ignore_errors=True)
            files.private_dir(self.frames_dir)
            executor = self.executor = self._executor()
            try:
                if isinstance(executor, Pool):
                    # The zygote starts (an interpreter and the child's imports, ~0.13 s of
                    # CPU) while DuckDB is imported and the file opened (~0.25 s); it forks the
                    # children after that, in a few ms each (``pool``).
                    executor.prepare()
                from ..store import Database  # imported here for that reason

                db = Database(self.settings.db_path, frames=self.frames_dir)
            except BaseException:
                executor.close()
                raise
            info = os.stat(self.settings.db_path)
            self._db_identity = (info.st_dev, info.st_ino)
            try:
                self._run(db, path, executor)
            finally:
                db.close()
        finally:
            os.close(lock_fd)
            shutil.rmtree(self.frames_dir, ignore_errors=True)
        return 0

    def _run(self, db: Database, path: Any, executor: Pool | DaskExecutor) -> None:
        # What imports DuckDB is imported once the children are on their way (``run``).
        from .changes import Changes
        from .intake import Intake
        from .queries import Queries
        from .runs import ForegroundRuns
        from .scheduler import Scheduler
        from .service import WorkerService
        from .writer import Writer

        core = Core(db)
        queries = self.queries = Queries(core)
        # Opening the file replayed the journal and reset it to its head: read on from there.
        intake = self._intake = Intake(Ledger(Journal(self.settings.db_path)), core,
                                       self.problems)
        changes = Changes()
        writer = Writer(core, self.problems, intake, shed=queries.shed_soon,
                        on_commit=changes.bump)
        waker = WakeSocket(wake_path(self.settings))
        joblog = JobLog(self.settings.logs_dir)
        scheduler = Scheduler(root=self.settings.root, core=core, intake=intake,
                              problems=self.problems)

        def serve() -> None:
            self._serve(path, WorkerService(
                core=core, writer=writer, loop=loop, intake=intake, queries=queries, runs=runs,
                frames_dir=self.frames_dir, status=self.status, changes=changes))

        startup = _Startup(
            rest=lambda: self._load_rest(core, loop),
            serve=serve, poll=intake.poll, schedules=scheduler.run)
        loop = self.loop = Loop(LoopSetup(
            settings=self.settings, core=core, executor=executor, joblog=joblog,
            problems=self.problems, on_change=writer.wake, health=self._health,
            ingest=startup.ingest, wakers=[waker], burst=self.burst, schedules=startup.schedules,
            on_stop=queries.stop))
        runs = self.runs = ForegroundRuns(core=core, loop=loop,
                                          data=datafiles.data_dir(self.settings.db_path))
        # Children take a while to get ready (a cluster, to answer): load the head of the run
        # order meanwhile (the rest comes on the loop's second turn, ``_Startup``). The pool is
        # used from this thread only: on Linux its zygote (or a spawned child) dies with the
        # thread that started it (PDEATHSIG, system.parent).
        loader = _Thread(lambda: self._load(core, loop, writer, scheduler, runs))
        try:
            executor.start()
        finally:
            loader.result()
        writer.start()
        previous = {
            sig: signal.signal(sig, loop.on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            loop.run()
        finally:
            queries.stop()  # a burst worker's loop ends without a stop: its queries end now
            changes.close()  # a dashboard's waiting ``watch`` is answered: the server can stop
            if self._server is not None:
                self._server.close()
            executor.close()
            writer.stop()
            queries.close()
            joblog.close()
            loop.close()
            waker.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        logger.info("worker %s stopped", os.getpid())

    def _serve(self, path: Any, service: WorkerService) -> None:
        """Answer clients on the socket, once the whole queue is in memory (``_Startup``)."""
        server = self._server = SocketServer(path, service)
        server.start()
        logger.info("worker %s started: %s, queue %s, socket %s", os.getpid(),
                    f"Dask cluster {self.dask}" if self.dask else f"concurrency {self.concurrency}",
                    self.settings.db_path, server.path)

    def _executor(self) -> Pool | DaskExecutor:
        """Where attempts run: the local pool, or the Dask cluster (SPEC §18)."""
        data_dir = datafiles.data_dir(self.settings.db_path)
        if self.dask is None:
            return Pool(self.settings.root, self.concurrency, queue_token=self.queue_token,
                        data_dir=data_dir, zygote=True)
        # Imported only for a Dask worker: the local pool's worker keeps none of its modules
        # (SPEC §13).
        from .executors.dask.executor import DaskExecutor

        return DaskExecutor(self.settings.root, self.dask, queue_token=self.queue_token,
                            concurrency=self.dask_limit, upload=self.settings.worker.dask.upload,
                            data_dir=data_dir)

    def _load(self, core: Core, loop: Loop, writer: Writer, scheduler: Scheduler,
              runs: ForegroundRuns) -> None:
        """Take over the head of the file's run order (``HEAD`` pending jobs) and recover the
        jobs a dead worker (or a dead foreground run) left running; watch the foreground runs
        that live on; read what the jobs wait for (``after``) and the schedules' last ticks.
        The other pending jobs come with ``_load_rest``."""
        with core.transaction() as job_store:
            jobs = job_store.active_jobs(head=HEAD)
            known = job_store.statuses(sorted({i for job in jobs for i in job.after or ()}))
            scheduler.ticks = job_store.schedule_ticks()
            if self._intake is not None:  # ids go on above the file's, should the journal go
                self._intake.ledger.know(job_store.last_id())
        data = datafiles.data_dir(self.settings.db_path)
        live = [job for job in jobs if job.status == JobStatus.RUNNING.value
                and owners.is_foreground(job.worker) and owners.alive(job.worker or "", data)]
        runs.adopt(live)
        alive = {job.worker for job in live}
        loop.recover(jobs, utcnow(), alive=lambda owner: owner in alive, known=known)
        writer.flush()

    @staticmethod
    def _load_rest(core: Core, loop: Loop) -> None:
        """Take over the pending jobs ``_load`` left in the file: those memory does not know.
        What the file says and what memory takes are read under the file's lock, so that no
        commit comes between (a job of the head that ended and was committed is not pending
        in the file; one that ended since is in memory). The running jobs were all recovered
        by ``_load``, and what started running since is a foreground run's, not ours."""
        with core.transaction() as job_store:
            pending = job_store.pending_jobs()
            with core.memory() as state:
                jobs = [job for job in pending if state.status_of(job.id) is None]
            known = job_store.statuses(sorted({i for job in jobs for i in job.after or ()}))
            loop.recover(jobs, utcnow(), alive=lambda owner: False, known=known)

    def status(self) -> dict[str, Any]:
        """What ``nj.worker_status()`` shows of a running worker."""
        loop, executor = self.loop, self.executor
        cluster = None if executor is None or isinstance(executor, Pool) else executor.describe()
        return {"running": True, "pid": os.getpid(),
                "concurrency": cluster["concurrency"] if cluster else self.concurrency,
                "started_at": self.started_at,
                "jobs": sorted(loop.running) if loop is not None else [],
                "queries": len(self.queries) if self.queries is not None else 0,
                "stopping": loop.stopping if loop is not None else False,
                "db": str(self.settings.db_path), "problems": self.problems.messages(),
                "executor": "dask" if self.dask else "local", "cluster": cluster}

    def _health(self) -> None:
        """The loop's periodic checks (every MAX_SLEEP_S): the queue file, the owners of the
        foreground runs."""
        self._check_database()
        if self.runs is not None:
            self.runs.check(utcnow())

    def _check_database(self) -> None:
        """Notice a queue file deleted, replaced or cut under the running worker (SPEC §14)."""
        try:
            info = os.stat(self.settings.db_path)
            identity: tuple[int, int] | None = (info.st_dev, info.st_ino)
        except OSError:
            identity = None
        if identity == self._db_identity:
            from ..store import recovery  # loaded with the store, once the file is open

            cut = recovery.damage(self.settings.db_path)
            if cut is None:
                self.problems.clear("database")
            else:  # the journal's records are what a rebuild will have: none is dropped now
                if self._intake is not None:
                    self._intake.hold()
                self.problems.report("database",
                                     recovery.cut_under_worker(self.settings.db_path, cut))
            return
        what = "deleted" if identity is None else "replaced by another file"
        self.problems.report("database", f"the queue file {self.settings.db_path} was {what} "
                             "while the worker runs: what it holds now is lost when the worker "
                             "stops; stop the worker and restore the file")

    def _take_over_processes(self) -> None:
        """Kill what a dead worker of this queue left running, then mark this worker's own.

        Children kill their process groups when their worker dies, but a job that left its
        group, or a child that could not run its signal handler, outlives it. Each carries this
        queue's marker in its environment; we hold the queue's lock, so every process with a
        marker that names another worker is a leftover, which must not run on while the jobs it
        ran are recovered and run again. Called before any thread starts: setenv is not safe
        while another thread may read the environment.
        """
        killed = procgroup.kill_leftovers(self.queue_token, except_worker_pid=os.getpid(),
                                          quiet=True)  # says it better below
        if killed:
            logger.warning("killed %d process(es) left running by a previous worker of this "
                           "queue: pids %s", len(killed), killed)
        # multiprocessing's resource tracker is started with the first child otherwise: it must
        # not inherit the marker, as it outlives the children on purpose, to clean up what they
        # leaked (shared memory, semaphores), and a sweep would kill it.
        resource_tracker.ensure_running()
        # Inherited by the children at exec, so a sweep finds them too, and anything they fork.
        procgroup.mark_environment(self.queue_token, os.getpid())


def _acquire(settings: Settings) -> int:
    """Take the queue's lock for the worker's lifetime; the descriptor that holds it.
    ``WorkerError`` naming the running worker when another one owns the queue."""
    def refuse_if_a_worker_answers() -> Any:
        info = worker_info(settings)
        if info is not None:
            raise WorkerError(f"a worker is already running for {settings.db_path} "
                              f"(pid {info['pid']}); stop it first with `notebookjobs worker stop`")
        return lock.NOTHING

    fd = lock.open_lock(settings.lock_path)
    try:
        lock.wait(
            fd, settings.lock_timeout, lambda: lock.busy(settings), refuse_if_a_worker_answers
        )
    except BaseException:
        os.close(fd)
        raise
    return fd


class _Startup:
    """The loop's first turns, while the queue is not all in memory yet.

    A worker starts on the head of the run order (``Worker._load``: ``HEAD`` pending jobs),
    so that its first attempts begin without waiting for every pending job to be read (10,000
    took ~0.1 s). The loop's first turn hands those out; its second takes in the rest
    (``rest``), then starts answering clients (``serve``). Until then, neither the journal
    is read (``poll``) nor the schedules run: what they add is checked against the jobs in
    memory (``after``, ``unique``), which must all be there. Nor do clients get an answer:
    the socket is not there yet, as before during a start.
    """

    def __init__(self, *, rest: Callable[[], None], serve: Callable[[], None],
                 poll: Callable[[], int], schedules: Callable[[datetime], datetime | None]
                 ) -> None:
        self._rest, self._serve, self._poll, self._schedules = rest, serve, poll, schedules
        self._turn = 0  #: the loop's turns seen, up to 2: then the queue is all in memory

    def ingest(self) -> int:
        """``LoopSetup.ingest``: nothing on the first turn; the rest and the server on the
        second; the journal's new records from then on."""
        if self._turn < 2:
            self._turn += 1
            if self._turn == 1:
                return 0
            self._rest()
            self._serve()
        return self._poll()

    def schedules(self, now: datetime) -> datetime | None:
        """``LoopSetup.schedules``: the schedules' ticks once the queue is all in memory;
        before, ``now``, so that the loop comes back at once for its second turn."""
        if self._turn < 2:
            return now
        return self._schedules(now)


class _Thread(threading.Thread):
    """Run ``target`` in a thread now; ``result()`` joins it and re-raises its exception."""

    def __init__(self, target: Any) -> None:
        super().__init__(name="notebookjobs-loader", daemon=True)
        self._target_fn = target
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:  # handed to the thread that waits for it
            self._error = exc

    def result(self) -> None:
        self.join()
        if self._error is not None:
            raise self._error


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notebookjobs.worker",
                                     description="Run the notebookjobs worker in the foreground.")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="children in the pool (default: worker.concurrency of whitelist.yaml)")
    parser.add_argument("--burst", action="store_true",
                        help="exit when nothing is pending or running")
    parser.add_argument("--log-level", metavar="LEVEL", default=None,
                        help=f"{', '.join(LOG_LEVELS)} (default: ${ENV_LOG_LEVEL}, else INFO)")
    parser.add_argument("--dask", metavar="ADDRESS", default=None,
                        help="run the attempts on the Dask cluster whose scheduler is at ADDRESS "
                        "(tcp://host:8786) instead of the local pool (default: worker.executor "
                        "and worker.dask.scheduler of whitelist.yaml)")
    ns = parser.parse_args(argv)
    try:
        require_worker()
    except ConfigError as exc:
        parser.exit(2, f"python -m notebookjobs.worker: {exc}\n")
    try:
        level = log_level(ns.log_level if ns.log_level is not None
                          else os.environ.get(ENV_LOG_LEVEL))
    except ValueError as exc:
        parser.exit(2, f"python -m notebookjobs.worker: {exc}\n")
    # Everything the worker creates (the DB and its WAL, logs, frames, the socket) is private
    # to its owner (SPEC §14); the jobs get the umask we were started with back (see child).
    job_umask = os.umask(files.PRIVATE_UMASK)
    os.environ[JOB_UMASK_ENV] = str(job_umask)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if ns.concurrency is not None:
            validate.concurrency(ns.concurrency)
    except InvalidArgumentsError as exc:
        parser.exit(2, f"python -m notebookjobs.worker: --{exc}\n")
    try:
        dask = None if ns.dask is None else validate.scheduler_address(ns.dask)
    except InvalidArgumentsError as exc:
        parser.exit(2, f"python -m notebookjobs.worker: --dask: {exc}\n")
    try:
        settings = load_settings()
        return Worker(settings, concurrency=ns.concurrency, burst=ns.burst, dask=dask).run()
    except NotebookJobsError as exc:
        print(f"notebookjobs worker: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
