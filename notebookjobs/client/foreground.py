"""``run_now``: a job run in the caller's process now, with retries, recorded in the queue and
the logs (the seed's ``run-job.php``; ``notebookjobs run``). Apart from the client's module so
that each stays small; ``client.run_now`` is this function."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from ..access import owners
from ..access.queue_client import QueueClient
from ..attempt import capture, runner
from ..attempt.progress import set_reporter
from ..config import load_settings
from ..data import datafiles
from ..data.joblog import JobLog
from ..model import retries, validate
from ..model.records import utcnow
from . import dispatching


def run_now(target: str, args: list[Any], kwargs: dict[str, Any], *, echo: bool = True,
            sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Run a target in this process now, with retries, recorded in the queue and the logs.

    The seed's ``run-job.php``: validation as for dispatch, then attempts until one succeeds or
    the retry policy is spent (``retries.decide``, as the worker decides), sleeping the
    configured delay in between. Returns the final status.
    """
    cfg = load_settings()
    now = utcnow()
    stash = dispatching.stash(cfg)
    spec = dispatching.job_spec(cfg, target, args, kwargs, 0, 0, now, stash)
    stash.write()
    queue = QueueClient(cfg)
    # Held until the job is settled: the worker (or a cancel) judges by it whether this
    # process still runs the job (``owners``), however this process ends.
    hold = owners.Hold(datafiles.data_dir(cfg.db_path))
    try:
        job = queue.run_started(spec, hold.owner, now)
    except BaseException:
        hold.release()
        raise
    set_reporter(lambda fraction, message: queue.record_progress(job.id, fraction, message))
    log = JobLog(cfg.logs_dir)
    # The attempts run in the project root, as the worker's do (SPEC §12); this is the caller's
    # process, so its own directory comes back afterwards.
    try:
        caller_dir: str | None = os.getcwd()
    except OSError:  # the caller's folder was deleted: nothing to come back to
        caller_dir = None
    os.chdir(cfg.root)
    # What the job writes to fds 1 and 2 (its subprocesses too) is its output, shown as it
    # comes when ``echo``; this process has its own fds and streams back afterwards.
    output = capture.Capture(echo=echo)
    output.start()
    try:
        while True:
            outcome = runner.execute(cfg, spec.target, spec.args, spec.kwargs, capture=output,
                                     timeout=spec.policy.timeout, job_id=job.id,
                                     data_dir=datafiles.data_dir(cfg.db_path))
            outcome = validate.outcome(outcome)
            decision = retries.decide(job.policy, job.attempts, outcome.kind, utcnow())
            if outcome.succeeded:
                log.completed(job, outcome.duration_s)
            else:
                log.attempt_failed(job, outcome.error or "", decision.final)
            if decision.final:
                job = queue.run_finished(job.id, outcome, utcnow())
                break
            sleep(retries.delay_s(job.policy, job.attempts))
            job = queue.run_restarted(job.id, outcome, utcnow())
    finally:
        output.close()
        if caller_dir is not None:
            try:
                os.chdir(caller_dir)
            except OSError:
                pass  # deleted meanwhile (by the job, say): stay in the root
        set_reporter(None)
        log.close()
        hold.release()
    return job.to_status()
