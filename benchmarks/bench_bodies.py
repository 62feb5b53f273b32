"""The job bodies both systems run, as source text: written into the notebookjobs project as
``jobs/bench.py`` and into the Huey task module, so both execute the very same code.

Each returns ``time.time()`` when it ends (``stamp`` when it starts), which the Huey side uses as
its completion time (Huey records no timestamps); notebookjobs has ``finished_at`` as well.
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
'''

NAMES = ("noop", "sleep10", "stamp")
