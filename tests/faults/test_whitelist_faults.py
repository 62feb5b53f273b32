"""whitelist.yaml as a door (issue case 6, SPEC §4, §12, §14): owners outside the project, keys
given twice, a broken file under a running worker, a file rewritten while jobs run."""

from __future__ import annotations

import os
import threading
import time

import pytest

import notebookjobs as nj
from notebookjobs import config
from support import TEST_WHITELIST, wait_until


def refused_as_config_error(project, target: str, *args: str) -> None:
    """SPEC §4: a ConfigError, when the file is loaded or at the latest when the target is
    dispatched; never a stored job."""
    try:
        config.load_settings()
    except nj.ConfigError as exc:
        assert str(exc).strip()
        return
    with pytest.raises(nj.ConfigError):
        nj.dispatch(target, *args)
    assert sum(nj.counts().values()) == 0


@pytest.mark.parametrize("owner, member, target, args", [
    ("os", "system", "os.system", ("touch pwned",)),
    ("builtins", "eval", "builtins.eval", ("1 + 1",)),
    ("subprocess", "getoutput", "subprocess.getoutput", ("id",)),
])
def test_an_owner_outside_the_project_is_a_config_error(project, owner, member, target, args):
    project.write_whitelist(TEST_WHITELIST + f"  {owner}: [{member}]\n")
    refused_as_config_error(project, target, *args)
    assert not (project.root / "pwned").exists()


def test_an_owner_named_in_external_packages_is_allowed(project):
    project.write_whitelist(TEST_WHITELIST + "  json: [dumps]\nexternal_packages: [json]\n")
    job_id = nj.dispatch("json.dumps", [1, 2])
    assert nj.status(job_id)["target"] == "json.dumps"


@pytest.mark.parametrize("text", [
    TEST_WHITELIST + "retry_attempts: 5\n",
    TEST_WHITELIST + "  jobs.testing: [ok]\n",
    TEST_WHITELIST.replace("    ok: {}\n", "    ok: {}\n    ok: {retry_attempts: 9}\n"),
    TEST_WHITELIST.replace("  concurrency: 2\n", "  concurrency: 2\n  concurrency: 1\n"),
], ids=["top-level", "owner", "member", "worker-key"])
def test_a_key_given_twice_is_a_config_error(project, text):
    project.write_whitelist(text)
    with pytest.raises(nj.ConfigError, match=r"twice|duplicate"):
        config.load_settings()


def test_a_broken_whitelist_leaves_status_stop_and_reads_working(project, start_worker):
    # Given a running worker and a job it ran
    worker = start_worker()
    job_id = nj.dispatch("jobs.testing.ok", 7)
    assert nj.wait(job_id, timeout=30)["result"] == 7
    # When whitelist.yaml becomes invalid YAML
    project.write_whitelist("allowed_jobs: [unclosed\n", raw=True)
    # Then status, list and nj.status still work, and new dispatches are refused with the error
    status = project.cli("worker", "status")
    assert status.returncode == 0 and "running" in status.stdout, status.stderr
    listed = project.cli("list")
    assert listed.returncode == 0 and "(1 job" in listed.stdout, listed.stderr
    assert nj.status(job_id)["result"] == 7
    with pytest.raises(nj.ConfigError):
        nj.dispatch("jobs.testing.ok", 8)
    # And `worker stop` stops it
    stopped = project.cli("worker", "stop")
    assert stopped.returncode == 0 and stopped.stdout.strip() == "worker stopped", stopped.stderr
    assert worker.wait_exit(timeout=60) == 0



def whitelist_problems() -> list[str]:
    return [p for p in nj.worker_status().get("problems") or [] if "whitelist" in p]


@pytest.mark.parametrize("text", ["", "allowed_jobs: [unclosed\n"], ids=["empty", "broken"])
def test_a_worker_reading_an_unusable_whitelist_keeps_jobs_pending_until_fixed(
        project, start_worker, text):
    # Given a worker whose two children are busy, and three jobs waiting behind them
    start_worker()
    holders = [nj.dispatch("jobs.testing.sleep", 600, f"hold{i}") for i in range(2)]
    wait_until(lambda: all(nj.status(i)["status"] == "running" for i in holders),
               timeout=60, what="both children to be busy")
    waiting = nj.dispatch_many("jobs.testing.ok", [[1], [2], [3]])
    # When whitelist.yaml becomes empty or unreadable, and then the children are free
    # (dated back past the settling second, so a worker that took the file as it is would
    # refuse the jobs at once instead of waiting for it to settle)
    project.write_whitelist(text, raw=True, age=5)
    for job_id in holders:
        assert nj.cancel(job_id)
    wait_until(lambda: all(nj.status(i)["status"] == "cancelled" for i in holders),
               timeout=60, what="the busy jobs to be cancelled")
    # Then the worker says what is wrong (it reads the file only when it could start a job:
    # the problem is there once it has looked with a child free) and starts nothing: the jobs
    # stay pending, none failed as "refused"
    problems = wait_until(whitelist_problems, timeout=60, what="a whitelist problem")
    assert "whitelist.yaml" in problems[0], problems
    assert [nj.status(i)["status"] for i in waiting] == ["pending"] * 3
    assert project.effect_lines("ok") == []
    # And once the file is valid again, they run and the problem is gone
    project.write_whitelist(TEST_WHITELIST)
    assert [nj.wait(i, timeout=60)["result"] for i in waiting] == [1, 2, 3]
    wait_until(lambda: not whitelist_problems(), timeout=30, what="the problem to be cleared")


def rewrite_forever(path, text: str, stop: threading.Event, counter: list) -> None:
    """Rewrite ``path`` in place as an editor without atomic saves does: truncate, write half,
    pause, write the rest; every 10 ms."""
    data = text.encode()
    half = len(data) // 2
    while not stop.is_set():
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, data[:half])
            time.sleep(0.002)
            os.write(fd, data[half:])
        finally:
            os.close(fd)
        counter.append(1)
        time.sleep(0.01)


def test_rewriting_the_whitelist_in_place_while_jobs_run_fails_none(project, start_worker):
    # Given a worker and 40 short jobs
    start_worker()
    ids = nj.dispatch_many("jobs.testing.sleep", [[0.02, "rewrite"]] * 40)
    # When whitelist.yaml is rewritten in place every 10 ms while they run
    stop = threading.Event()
    rewrites: list[int] = []
    writer = threading.Thread(
        target=rewrite_forever,
        daemon=True,
        args=(project.root / "whitelist.yaml", TEST_WHITELIST, stop, rewrites),
    )
    writer.start()
    def all_ended() -> bool:
        try:  # this process reads the file too: a half-written one may refuse the read
            counts = nj.counts()
        except nj.ConfigError:
            return False
        return counts["pending"] + counts["running"] == 0

    try:
        wait_until(all_ended, timeout=120, what="the 40 jobs to end")
    finally:
        stop.set()
        writer.join()
    # Then every one completed (none was refused for a half-written file)
    statuses = [nj.status(i) for i in ids]
    failed = [
        (s["id"], (s["error"] or "").strip().splitlines()[-1:])
        for s in statuses
        if s["status"] != "completed"
    ]
    assert not failed, f"{len(failed)} of 40 did not complete, e.g. {failed[0]}"
    assert len(rewrites) > 10
