"""The worker's timings and limits, each with why it has its value (rq's ``defaults.py``).

Seconds everywhere (STYLE C). Per-queue settings (concurrency, grace period) are in
whitelist.yaml; these are the ones a user should not need to touch.
"""

from __future__ import annotations

MAX_SLEEP_S = 2.0
"""The loop wakes at least this often, idle or not: to notice a clock jump, and to check that
the queue file is still the one it opened (SPEC §14: a deleted or replaced file is reported
within seconds). One wake-up every two seconds costs nothing measurable."""

CONFIG_RETRY_S = 1.0
"""How soon an invalid (or empty) whitelist.yaml is read again, and how long a job that could
not start for it (``OutcomeKind.DEFERRED``) waits before it is tried again."""

GROUP_COMMIT_INTERVAL_S = 0.1
"""The writer commits at most this often under load: a commit costs about the same for one
job as for a hundred, so waiting a little makes batches larger. Clients never see the lag:
reads commit first. A drain of 10,000 no-op jobs here: 1,870-2,000 jobs/s at 0.05 s,
2,000-2,180 at 0.1, 2,140-2,370 at 0.2 (the writer's CPU is taken from the children on 2
cores). Longer also means more jobs run again after a ``kill -9`` (those that ended since the
last commit): 0.1 is the middle."""
QUIET_COMMIT_DELAY_S = 0.005
"""After a quiet spell the writer waits this long before it commits a change: a dispatch's
job is then started before its commit, not while it (the commit's ~1 ms of CPU on 2 cores
delayed the start: dispatch -> start 1.9 ms p50 here, traced step by step), and the insert
and the start go in one commit."""

SHED_AFTER_CHARS = 32 * 2**20
"""After commits that wrote results of this many characters, DuckDB's cached memory is given
back (``Database.shed_memory``, ~1-100 ms with the commits held): DuckDB keeps the blocks it
wrote until its memory limit (80 % of the machine) is reached, so a worker that stored a 900 MB
result kept ~1 GB more for its life. Small results add up: a drain of jobs that return 1 KB each
sheds once per ~33,000 jobs."""

COMMIT_RETRY_S = 0.5
"""The pause before a failed commit (a full disk, say) is tried again."""

SHUTDOWN_COMMIT_TRIES = 5
"""Commits tried at a stop before the last changes are given up: those jobs are still pending
or running in the file, and run again at the next start (at least once)."""

INTERRUPTED = "the worker stopped before the attempt finished; it will run again"
"""The error of an attempt a graceful stop interrupted (it is put back, not counted)."""

JOB_UMASK_ENV = "NOTEBOOKJOBS_JOB_UMASK"
"""The environment variable that carries the umask the worker was started with to its
children, which give it back to job code (the worker itself runs under umask 077)."""

ENV_LOG_LEVEL = "NOTEBOOKJOBS_LOG_LEVEL"
"""The environment variable that sets the worker's log level when ``--log-level`` is not given
(INFO by default: a line per start, stop and problem; DEBUG adds a line per attempt)."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level(value: str | None) -> str:
    """A level of LOG_LEVELS (any case), INFO for None or blank; ``ValueError`` naming them."""
    if value is None or not value.strip():
        return "INFO"
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"log level {value!r} is not one of {', '.join(LOG_LEVELS)}")
    return level

CATCH_UP_TICKS = 10
"""A running worker dispatches every tick of a schedule, also a few that fell while it was busy;
more than this many at once means it did not run meanwhile (the machine slept, the process was
stopped): those ticks are downtime and run once, as at a start (SPEC §16)."""
