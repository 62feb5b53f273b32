"""The exception hierarchy: one base, a few families, messages that say how to fix the problem."""

from __future__ import annotations


class NotebookJobsError(Exception):
    """Something went wrong in notebookjobs."""

    def __init__(self, message: str | None = None) -> None:
        # The docstring is the default message, so a bare raise still explains itself.
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(NotebookJobsError):
    """whitelist.yaml, an environment variable or a setting is invalid."""


class NotAllowedError(NotebookJobsError):
    """The target is not in the whitelist; add it under allowed_jobs in whitelist.yaml."""


class InvalidArgumentsError(NotebookJobsError):
    """The arguments do not fit the target's signature or are not JSON values."""


class JobNotFoundError(NotebookJobsError):
    """No job has this id; `notebookjobs list` shows the queue."""


class JobStateError(NotebookJobsError):
    """The job is not in a state that allows this operation."""


class StorageError(NotebookJobsError):
    """The queue database could not be read or written."""


class StoreBusyError(StorageError):
    """The queue database stayed locked by another process for too long."""


class DiskFullError(StorageError):
    """The disk (or the user's quota) has no room left for the queue's files: free some space.
    Nothing already stored is lost; the worker keeps what it could not write and tries again."""


class QueryTimeoutError(NotebookJobsError, TimeoutError):
    """The query ran longer than its time limit and was stopped; narrow it, or pass a larger
    timeout= (seconds)."""


class WorkerError(NotebookJobsError):
    """The worker is not running or could not be reached."""


class JobFailedError(NotebookJobsError):
    """The job failed: its last attempt raised; ``.traceback`` holds the job's traceback."""

    def __init__(self, message: str | None = None, *, job_id: int | None = None,
                 traceback: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id  #: the job that failed
        self.traceback = traceback or ""  #: the job's error as stored: its traceback text


class JobCancelledError(NotebookJobsError):
    """The job was cancelled, so it has no result; dispatch it again with ``nj.retry(id)``."""

    def __init__(self, message: str | None = None, *, job_id: int | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id  #: the job that was cancelled


class NoWorkerWarning(UserWarning):
    """No worker runs for this queue and ``worker.autostart`` is off: nothing will run the job
    until one starts (``nj.start_worker()`` or ``notebookjobs worker start``)."""


class PlatformError(ConfigError):
    """This operating system cannot run a worker yet; run it on Linux or macOS (or in WSL)."""
