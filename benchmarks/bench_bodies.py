"""The job bodies both systems run, as source text: written into the notebookjobs project as
``jobs/bench.py`` and into the Huey task module, so both execute the very same code.

Each returns ``time.time()`` when it ends (``stamp`` when it starts), which the Huey side uses as
its completion time (Huey records no timestamps); notebookjobs has ``finished_at`` as well.
``tick`` is the other no-op (the peers harness's, ``../shared/peers/jobs.py``): it returns None,
so neither system stores a result, and appends one byte to the file named by ``$BENCH_MARK``
(O_APPEND, one write: atomic between processes), which the harness watches.
"""

BODIES = '''\
import time


def noop():
    """Nothing: the cost of the machinery alone."""
    return time.time()


def sleep10():
    """10 ms of waiting, as a job that does I/O would."""
    time.sleep(0.01)
    return time.time()


def stamp(path):
    """Write the time the body started into ``path`` (what the latency figure reads)."""
    now = time.time()
    with open(path + ".tmp", "w") as fh:
        fh.write(repr(now))
    import os
    os.replace(path + ".tmp", path)
    return now


def tick():
    """One byte appended to the mark file; no result."""
    import os
    fd = os.open(os.environ["BENCH_MARK"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)
'''

NAMES = ("noop", "sleep10", "stamp", "tick")
MARK_ENV = "BENCH_MARK"  #: the consumer's environment variable naming tick()'s mark file
