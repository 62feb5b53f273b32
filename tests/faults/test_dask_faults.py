"""Faults on a Dask cluster (SPEC §14, §18): what is refused where the attempt runs, a Dask
worker process killed mid-attempt, the queue's worker killed while the cluster runs its
attempts. A real LocalCluster (2 worker processes under nannies, 1 thread each)."""

from __future__ import annotations

import os
import signal
import sys

import dask_cluster
import duckdb

import notebookjobs as nj
from notebookjobs.model import validate
from notebookjobs.model.records import AttemptRequest
from notebookjobs.worker.executors.dask.task import run_attempt
from support import alive, wait_until

# The module's fixtures (dask_cluster.py), bound here for pytest to find.
cluster, client, dask_project = dask_cluster.cluster, dask_cluster.client, dask_cluster.dask_project
queue, dask_worker = dask_cluster.queue, dask_cluster.dask_worker
dask_loop_pids = dask_cluster.dask_loop_pids


def forged(dask_project, target: str, *args, key: str = "forged-1") -> AttemptRequest:
    return AttemptRequest(key=key, job_id=1, target=target, args=list(args), kwargs={},
                          timeout=None, root=str(dask_project.root), upload=False, data=None,
                          token="forger", topic="forger")


def test_a_forged_request_is_refused_on_the_dask_worker_and_runs_nothing(dask_project, client):
    # Given a whitelist.yaml that has settled (one edited within SETTLE_S may be half-written:
    # its refusals are deferred, not failed; the module's project was written a moment ago)
    whitelist = dask_project.root / "whitelist.yaml"
    dask_project.write_whitelist(whitelist.read_text(), age=5)
    # And requests sent straight to the cluster, past the queue: a member of the project
    # that whitelist.yaml does not allow, a module outside the project, and one that is not JSON
    requests = [validate.request_json(forged(dask_project, "jobs.testing.count", "pwned")),
                validate.request_json(forged(dask_project, "os.system", "touch pwned", key="f2")),
                '{"target": "os.system"', validate.request_json(forged(dask_project, "x"))[:-1]]
    # When the Dask workers get them
    futures = [client.submit(run_attempt, r, pure=False) for r in requests]
    outcomes = [validate.cluster_outcome(f.result(timeout=60)) for f in futures]
    # Then each is refused there, with the reason, and nothing of the job was imported or ran
    assert [o.kind.value for o in outcomes] == ["failed"] * 4
    assert "'jobs.testing.count' is not allowed by" in (outcomes[0].error or "")
    assert "'os.system' is not allowed by" in (outcomes[1].error or "")
    assert all((o.error or "").startswith("refused on the Dask worker tcp://") for o in outcomes)
    assert dask_project.effect_lines("pwned") == [] and not (dask_project.root / "pwned").exists()
    imported = client.run(lambda: [m for m in ("jobs.testing", "jobs") if m in sys.modules])
    assert set(map(tuple, imported.values())) == {()}


def test_a_row_the_cluster_does_not_allow_is_refused_there(dask_project, dask_worker):
    # Given a worker that uploaded the project (so the Dask workers have whitelist.yaml as it
    # was), and a row that names a target only a later edit of the local copy allows
    text = (dask_project.root / "whitelist.yaml").read_text()
    dask_project.write_whitelist(text.replace("  grace_period: 0.5\n",
                                              "  grace_period: 0.5\n  dask: {upload: true}\n"))
    dask_worker()
    dask_project.write_whitelist(
        (dask_project.root / "whitelist.yaml").read_text().replace("    ok: {}\n",
                                                                   "    ok: {}\n    count: {}\n"),
        age=5)
    job = nj.dispatch("jobs.testing.count", "smuggled")
    # When it runs
    status = nj.wait(job, timeout=60)
    # Then the Dask worker refused it against its own whitelist, each attempt (as a pool child
    # does: a refusal there is an attempt that failed), ran nothing, and says where
    assert status["status"] == "failed" and status["attempts"] == 3, status
    assert status["error"].startswith("refused on the Dask worker tcp://")
    assert "'jobs.testing.count' is not allowed by" in status["error"]
    assert dask_project.effect_lines("smuggled") == []


def test_a_forged_row_is_refused_before_it_reaches_the_cluster(dask_project, queue, dask_worker):
    # Given a pending job whose target was changed in the file by other means
    job = nj.dispatch("jobs.testing.ok", 1)
    nj.counts()  # opens the queue file: the dispatch moves from the journal into it
    conn = duckdb.connect(str(queue))
    conn.execute("UPDATE queue SET target = 'os.system', args = '[\"touch pwned\"]' WHERE id = ?",
                 [job])
    conn.close()
    # When a worker on the cluster runs the queue
    dask_worker()
    status = nj.wait(job, timeout=60)
    # Then it failed at once, was never sent to the cluster, and ran nothing
    assert status["status"] == "failed" and status["attempts"] == 1
    assert "refused: 'os.system' is not allowed" in status["error"]
    assert status["ran_on"] is None
    assert not (dask_project.root / "pwned").exists()


def test_the_queue_worker_killed_its_attempts_on_the_cluster_stop(dask_project, dask_worker,
                                                                   dask_loop_pids):
    # Given a job running on the cluster, its process group with a shell loop in it
    worker = dask_worker()
    job = nj.dispatch("jobs.testing.spawn_loop", "orphaned")
    child, loop = dask_loop_pids("orphaned")
    # (recorded as running: the start reported from the cluster is committed)
    wait_until(lambda: nj.status(job)["status"] == "running", what="the start to be recorded")
    # When the queue's worker is killed (kill -9: it stops nothing itself)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait_exit()
    # Then the Dask worker stops the attempt, whose client is gone: nothing runs on for a job
    # that the next worker will run again
    wait_until(lambda: not alive(child) and not alive(loop), timeout=30,
               what="the orphaned attempt to be stopped on the cluster")
    # And the next worker recovers the job as a crashed attempt under the retry policy
    dask_worker()
    wait_until(lambda: nj.status(job)["attempts"] == 2, timeout=60, what="the job to run again")
    assert "stopped before the attempt finished" in nj.status(job)["error"]
    nj.cancel(job)
    assert nj.wait(job, timeout=30)["status"] == "cancelled"


def test_a_dask_worker_killed_mid_attempt_fails_it_and_our_policy_retries(dask_project, client,
                                                                           dask_worker):
    # Given a job whose first run sleeps on one Dask worker
    dask_worker()
    job = nj.dispatch("jobs.cluster.slow_once", "lost")
    first_pid = int(wait_until(lambda: dask_project.effect_lines("lost"),
                               what="the first run to start")[0])
    where = nj.status(job)["ran_on"][0]
    # When that Dask worker's process is killed (kill -9, mid-attempt)
    os.kill(dask_cluster.worker_pids(client)[where], signal.SIGKILL)
    # Then the attempt fails as lost, and our retry policy runs it again, elsewhere
    status = nj.wait(job, timeout=120)
    assert status["status"] == "completed" and status["result"] == "again"
    assert status["attempts"] == 2
    assert status["ran_on"][0] == where and status["ran_on"][1] != where
    errors = (dask_project.root / "logs" / "background_jobs_errors.log").read_text()
    assert f"the Dask worker {where} running this attempt was lost" in errors
    # And it never ran twice at once: the first run's process died with its Dask worker before
    # the retry started, and Dask did not run it again by itself
    lines = dask_project.effect_lines("lost")
    assert len(lines) == 2 and lines[1].endswith(" dead"), lines
    assert not alive(first_pid)
