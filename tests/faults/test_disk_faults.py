"""A full disk, a nearly full one, and a queue file cut to nothing (issue 21 points 5-7, SPEC
§14): the queue is never left unopenable by us, a full disk never fails an acknowledged job,
and a file cut under us is noticed and rebuilt from the journal where the journal can.

The disks are real: a small tmpfs mounted over the queue's folder (root, as CI runs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import notebookjobs as nj
from support import Project, wait_until

from .disks import NEEDS_ROOT, SmallDisk, can_mount, small_disk

pytestmark = pytest.mark.skipif(not can_mount(), reason=NEEDS_ROOT)


@pytest.fixture
def disk(project: Project) -> Iterator[SmallDisk]:
    """The queue's folder on a disk of 4 MiB (request it before ``start_worker``, so that its
    workers stop before it is unmounted)."""
    with small_disk(project.db.parent, 4 * 1024 * 1024) as mounted:
        yield mounted


def problems() -> list[str]:
    return nj.worker_status().get("problems") or []


def test_a_nearly_full_disk_fails_no_acknowledged_job(project, disk, start_worker):
    # Given a worker, jobs whose end is large to store (64 KiB of output each) and small ones
    # that end a little later, all dispatched (the journal too is on this disk)
    start_worker("--concurrency", "2")
    assert nj.wait(nj.dispatch("jobs.testing.ok", 0), timeout=30)["status"] == "completed"
    large = [nj.dispatch("jobs.testing.noisy", 4000, delay=2) for _ in range(3)]
    small = [nj.dispatch("jobs.testing.ok", i, delay=2.5 + i / 10) for i in range(1, 16)]
    # When the disk has room left for the small ones' states, not for the large ones'
    disk.fill(leave=48 * 1024)
    # Then the commits that do not fit are reported, and the small jobs go on running
    wait_until(lambda: [p for p in problems() if "could not write job states" in p],
               timeout=60, what="the commits to fail for lack of space")
    wait_until(lambda: len(project.effect_lines("ok")) == 1 + len(small), timeout=60,
               what="the small jobs to run")
    # And once space is freed, every job completes: none was failed for the disk
    disk.free()
    ended = [nj.wait(i, timeout=60) for i in large + small]
    assert [job["status"] for job in ended] == ["completed"] * len(ended), [
        job["error"] for job in ended if job["status"] != "completed"]
    wait_until(lambda: not [p for p in problems() if "could not write job states" in p],
               timeout=30, what="the commits problem to clear")
