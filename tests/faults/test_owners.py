"""Owners are watched while the worker runs (issue 21, point 8): a job run in the foreground
(``notebookjobs run``) whose process was killed is settled within seconds by the running worker,
not only at its next start; a forged owner (pid 1, which never dies) is no owner; a cancel of
such a job takes effect, and the CLI never says "cancelled" for a cancel that did nothing."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import notebookjobs as nj
from notebookjobs import config
from notebookjobs.access.queue_client import QueueClient
from notebookjobs.model.records import utcnow
from support import TEST_WHITELIST, wait_until

from .harness import socket_of
from .poison import RawClient, check_reply, good_spec, line

#: the long job runs once: a crashed attempt fails it (no retry to wait for)
WHITELIST = TEST_WHITELIST.replace("    sleep: {}\n", "    sleep: {retry_attempts: 0}\n", 1)


def _foreground_run(project, seconds: int) -> tuple[subprocess.Popen, int]:
    """``notebookjobs run jobs.testing sleep SECONDS``, for real; the process and its job's id,
    once the job is running."""
    proc = subprocess.Popen([sys.executable, "-m", "notebookjobs", "run", "jobs.testing", "sleep",
                             str(seconds)], cwd=project.root, env=project.env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    job = wait_until(lambda: proc.poll() is not None or _running(), timeout=60,
                     what="the foreground run's job to be running")
    assert proc.poll() is None, "the foreground run ended early"
    return proc, int(job)


def _running() -> int | None:
    """The newest running job's id (the tests run one job at a time)."""
    jobs = nj.jobs(per_page=1, status="running")
    return int(jobs["id"].iloc[0]) if len(jobs) else None


def test_a_killed_foreground_run_is_settled_by_the_running_worker(project, start_worker):
    # Given a worker, and a job run in the foreground by another process
    project.write_whitelist(WHITELIST)
    start_worker()
    proc, job = _foreground_run(project, 600)
    assert nj.status(job)["status"] == "running"
    # When that process is killed (kill -9: it settles nothing)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Then the running worker settles its job within seconds, as a crashed attempt
    info = wait_until(lambda: (i := nj.status(job))["status"] != "running" and i, timeout=30,
                      what="the worker to settle the killed run's job")
    assert info["status"] == "failed", info
    assert "stopped before the attempt finished" in info["error"], info["error"]


def test_a_cancel_of_a_foreground_run_says_what_it_did(project, start_worker):
    # Given a worker, and a job run in the foreground by a process that is alive
    project.write_whitelist(WHITELIST)
    start_worker()
    proc, job = _foreground_run(project, 600)
    try:
        # When it is cancelled from the CLI
        out = project.cli("cancel", str(job))
        # Then the CLI does not say "cancelled": nothing stops a process it does not own; it
        # says which process runs the job and how to stop it, and the job runs on
        assert "cancelled" not in out.stdout, out.stdout
        assert out.returncode != 0 and f"{proc.pid}" in out.stderr, (out.stdout, out.stderr)
        assert nj.status(job)["status"] == "running"
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # And once that process is dead, a cancel takes effect, or the worker has settled the job
    # already and the CLI says there was nothing to cancel; never "cancelled" for nothing
    out = project.cli("cancel", str(job))
    final = wait_until(lambda: (i := nj.status(job))["status"] != "running" and i, timeout=30,
                       what="the killed run's job to be settled")
    if f"job {job} cancelled" in out.stdout:
        assert final["status"] == "cancelled", final
    else:
        assert final["status"] == "failed" and "nothing to cancel" in out.stderr, (out, final)


def test_a_cancel_of_a_killed_foreground_run_without_a_worker_takes_effect(project):
    # Given a job run in the foreground, killed, and no worker
    project.write_whitelist(WHITELIST)
    proc, job = _foreground_run(project, 600)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # When it is cancelled
    out = project.cli("cancel", str(job))
    # Then it is cancelled, and the CLI says so
    assert (out.returncode, out.stdout.strip()) == (0, f"job {job} cancelled"), out.stderr
    assert nj.status(job)["status"] == "cancelled"


def test_a_forged_owner_that_never_dies_is_no_owner(project, start_worker):
    # Given a job recorded as run in the foreground by pid 1 (which never dies), written on
    # the file while no worker runs
    project.write_whitelist(WHITELIST)
    spec = good_spec()
    host = socket.gethostname()
    forged = QueueClient(config.load_settings()).run_started(spec, f"run:{host}:1", utcnow())
    assert nj.status(forged.id)["status"] == "running"
    # When a worker starts
    start_worker()
    # Then it settles that job (pid 1 is alive, but it runs no job of ours)
    wait_until(lambda: nj.status(forged.id)["status"] != "running", timeout=30,
               what="the worker to settle the forged run at its start")
    # And a run_started forged on the worker's socket, with whatever owner, is refused or
    # settled within seconds by the running worker
    for owner in (f"run:{host}:1", f"run:{host}:1:{'0' * 32}"):
        with RawClient(socket_of(project)) as client:
            reply = check_reply(client.ask(line("run_started", spec, owner, utcnow())))
        assert reply is not None, owner
        if "error" in reply:
            assert reply["error"]["type"] == "InvalidArgumentsError", reply
            continue
        job_id: int = reply["ok"]["fields"]["id"]  # a Job record (wire)

        def settled(job_id: int = job_id) -> bool:
            return nj.status(job_id)["status"] != "running"

        wait_until(settled, timeout=30, what=f"the worker to settle the run forged by {owner}")
