"""Attempts on a Dask cluster (SPEC §18): a real LocalCluster (2 worker processes, 1 thread
each) and real workers (``python -m notebookjobs.worker --dask ADDRESS``). The queue, retries,
cancel and timeouts keep their meaning; ``ran_on`` says where each attempt ran.

The fault cases (a forged request, a Dask worker killed mid-attempt) are in
tests/faults/test_dask_faults.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dask_cluster
import pandas as pd
import pytest

import notebookjobs as nj
from notebookjobs.dashboard.worker_panel import WorkerSection
from notebookjobs.data import datafiles
from support import WorkerProcess, alive, group_members, wait_until

# The module's fixtures (dask_cluster.py), bound here for pytest to find.
cluster, dask_project, queue = dask_cluster.cluster, dask_cluster.dask_project, dask_cluster.queue
dask_worker, dask_loop_pids = dask_cluster.dask_worker, dask_cluster.dask_loop_pids


def addresses(cluster) -> set[str]:
    return set(cluster.scheduler_info["workers"])


def test_jobs_run_on_the_cluster_and_say_which_dask_worker_ran_each_attempt(cluster, dask_worker):
    # Given a worker that sends its attempts to the cluster
    dask_worker()
    # When jobs are dispatched as usual
    ids = [nj.dispatch("jobs.testing.ok", i) for i in range(6)]
    echoed = nj.dispatch("jobs.testing.echo", 1, "two", key={"x": [3]})
    # Then they complete with their results, each attempt on one of the cluster's workers
    done = [nj.wait(i, timeout=60) for i in ids]
    assert [s["status"] for s in done] == ["completed"] * 6
    assert [s["result"] for s in done] == list(range(6))
    assert nj.wait(echoed, timeout=60)["result"] == {"args": [1, "two"],
                                                     "kwargs": {"key": {"x": [3]}}}
    places = [s["ran_on"] for s in done]
    assert all(len(p) == 1 and p[0] in addresses(cluster) for p in places), places
    # ... and both workers took some (the executor places each on the least busy one)
    assert {p[0] for p in places} == addresses(cluster)
    # And the history says it too, one row per job
    history = nj.history()
    assert history.set_index("id").loc[ids[0], "ran_on"] == f'["{places[0][0]}"]'


def test_the_worker_status_shows_the_cluster(cluster, dask_worker):
    # Given a worker on the cluster
    dask_worker()
    # When its status is asked
    info = nj.worker_status()
    # Then it names the executor, the scheduler, Dask's dashboard and the workers
    assert info["executor"] == "dask"
    assert info["cluster"]["scheduler"] == cluster.scheduler_address
    assert info["cluster"]["dashboard"].startswith("http")
    assert {w["address"] for w in info["cluster"]["workers"]} == addresses(cluster)
    # ... and by default as many attempts in flight as the cluster has threads
    assert info["concurrency"] == info["cluster"]["threads"] == 2
    # And the dashboard's worker section shows the cluster, with a link to Dask's dashboard
    section = WorkerSection()
    section.refresh()
    assert cluster.scheduler_address in section.cluster.value
    assert f"href='{info['cluster']['dashboard']}'" in section.cluster.value
    assert all(address in section.cluster.value for address in addresses(cluster))


def test_output_progress_and_errors_come_back_as_with_the_pool(dask_worker):
    # Given a worker on the cluster
    dask_worker()
    # When a job prints, another reports progress, another raises
    noisy = nj.dispatch("jobs.testing.noisy", 2)
    slow = nj.dispatch("jobs.cluster.progress_wait", 30)
    failed = nj.dispatch("jobs.testing.fail", "broken on the cluster")
    # Then the output is captured there and stored here
    status = nj.wait(noisy, timeout=60)
    assert status["result"] == "done"
    assert "out 0" in status["output"] and "err 1" in status["output"]
    # ... all of it: the fds, subprocesses, sys.stdout.buffer, C code (as with the pool)
    everything = nj.wait(nj.dispatch("jobs.testing.all_outputs", "on dask"), timeout=60)
    assert everything["status"] == "completed", everything["error"]
    for way in ("print", "fd1", "fd2", "sh", "sh-err", "buffer", "printf", "last"):
        assert f"{way} on dask\n" in everything["output"], everything["output"]
    # ... the progress of the running job shows while it runs
    running = wait_until(lambda: nj.status(slow)["progress"] == 0.5 and nj.status(slow),
                         what="the progress report from the cluster")
    assert running["status"] == "running" and running["progress_message"] == "half way"
    nj.cancel(slow)
    # ... and the traceback of the one that raised is its error, after its retries
    final = nj.wait(failed, timeout=60)
    assert final["status"] == "failed" and final["attempts"] == 3
    assert "ValueError: broken on the cluster" in final["error"]
    assert len(final["ran_on"]) == 3


def test_a_failed_attempt_is_retried_under_our_policy(dask_project, dask_worker):
    # Given a job that fails its first run
    dask_worker()
    job = nj.dispatch("jobs.testing.fail_times", "retried", 1)
    # When it runs on the cluster
    status = nj.wait(job, timeout=60)
    # Then our retry policy ran it once more (Dask's own retries are off): two runs in all
    assert status["status"] == "completed" and status["result"] == 2
    assert status["attempts"] == 2 and len(status["ran_on"]) == 2
    assert dask_project.effect_lines("retried") == ["1", "2"]


def test_frames_and_arrays_cross_as_files_of_the_shared_queue_folder(queue, dask_worker):
    # Given a worker on a cluster that shares the queue's folder (one machine here)
    dask_worker()
    frame = pd.DataFrame({"v": [1.0, 2.0, 3.0]}, index=pd.Index(["a", "b", "c"], name="k"))
    # When jobs return a frame and an array, and get a frame as their argument
    made, array = nj.dispatch("jobs.testing.frame", 2), nj.dispatch("jobs.testing.array", 2)
    seen = nj.dispatch("jobs.testing.describe", frame, scale=10)
    back = nj.dispatch("jobs.testing.scaled", data=frame)
    # Then the results keep their types, written by the attempts' processes on the cluster
    assert list(made.result(timeout=60)["name"]) == ["r0", "r1"]
    assert array.result(timeout=60).shape == (2, 3)
    assert nj.status(made)["result_type"] == "DataFrame"
    assert nj.status(made)["result"]["rows"] == 2
    results = datafiles.results_dir(datafiles.data_dir(queue))
    assert (results / f"{int(made)}.parquet").is_file()
    # ... and the frame reached the job as itself, read there from the arguments folder
    assert seen.result(timeout=60)["total"] == 60.0
    pd.testing.assert_frame_equal(back.result(timeout=60), frame * 2)


def test_a_timeout_stops_the_attempt_on_the_cluster(dask_worker):
    # Given a target whose attempts may take 1 s, and no retry
    dask_worker()
    # When an attempt would take 30 s
    job = nj.dispatch("jobs.testing.sleep", 30, key="timed")
    # Then it is stopped there and fails with the reason
    status = nj.wait(job, timeout=60)
    assert status["status"] == "failed"
    assert status["error"] == "timed out after 1 s"


def test_cancel_stops_a_running_attempt_and_all_it_started(dask_worker, dask_loop_pids):
    # Given a job running on the cluster that started a shell loop in its process group
    dask_worker()
    job = nj.dispatch("jobs.testing.spawn_loop", "cancelled")
    child, loop = dask_loop_pids("cancelled")
    assert nj.status(job)["status"] == "running"
    # When it is cancelled
    assert nj.cancel(job) is True
    # Then the job is cancelled, and its process and the loop it started are gone
    status = nj.wait(job, timeout=30)
    assert status["status"] == "cancelled" and status["attempts"] == 1
    wait_until(lambda: not alive(child) and not alive(loop) and not group_members(child),
               timeout=10, what="the attempt's process group to die")


def test_concurrency_bounds_the_attempts_in_flight_and_keeps_priority_order(dask_project,
                                                                            dask_worker):
    # Given a worker allowed one attempt in flight on a cluster of two threads
    dask_worker("--concurrency", "1")
    first = nj.dispatch("jobs.testing.stamp", "first", 400)
    wait_until(lambda: nj.status(first)["status"] == "running", what="the first job to start")
    # When a low and a high priority job are dispatched while it runs
    low = nj.dispatch("jobs.testing.stamp", "low", 0, priority=0)
    high = nj.dispatch("jobs.testing.stamp", "high", 0, priority=5)
    for job in (first, low, high):
        assert nj.wait(job, timeout=60)["status"] == "completed"
    # Then they ran one at a time, the higher priority first
    stamps = [line.split()[:2] for line in dask_project.effect_lines("stamps")]
    mine = [s for s in stamps if s[1] in ("first", "low", "high")]
    assert mine == [["start", "first"], ["end", "first"], ["start", "high"], ["end", "high"],
                    ["start", "low"], ["end", "low"]]
    assert nj.worker_status()["concurrency"] == 1


def test_a_graceful_stop_puts_the_running_attempt_back(dask_worker, dask_loop_pids):
    # Given a job running on the cluster (grace period 0.5 s)
    worker = dask_worker()
    job = nj.dispatch("jobs.testing.spawn_loop", "interrupted")
    child, loop = dask_loop_pids("interrupted")
    # When the worker is stopped
    worker.stop()
    assert worker.proc.returncode == 0, worker.output()
    # Then the attempt was stopped there and the job waits, its attempt not counted
    status = nj.status(job)
    assert status["status"] == "pending" and status["attempts"] == 0
    assert status["ran_on"] is None
    wait_until(lambda: not alive(child) and not alive(loop), timeout=10,
               what="the interrupted attempt's processes to die")


def test_the_project_can_be_uploaded_to_the_cluster(dask_project, cluster, dask_worker):
    # Given a project that asks to be uploaded (as for a cluster without its filesystem)
    text = (dask_project.root / "whitelist.yaml").read_text()
    dask_project.write_whitelist(text.replace("  grace_period: 0.5\n",
                                              "  grace_period: 0.5\n  dask: {upload: true}\n"))
    dask_worker()
    # When a job says where it runs
    found = nj.wait(nj.dispatch("jobs.cluster.where"), timeout=60)
    # Then it ran from the uploaded copy, beside the Dask worker's folder, not the project
    assert found["status"] == "completed", found["error"]
    cwd = Path(found["result"]["cwd"])
    assert cwd.name == dask_project.root.name and cwd != dask_project.root
    assert Path(found["result"]["file"]).is_relative_to(cwd)
    assert not (cwd / ".notebookjobs").exists()  # the queue stays home
    # And without the queue's folder there, a frame result is kept as its repr (no file to
    # write it to), and a frame argument is refused there, saying why
    made = nj.wait(nj.dispatch("jobs.testing.frame", 2), timeout=60)
    assert made["status"] == "completed" and made["result_type"] == "repr"
    assert "r1" in made["result"]
    seen = nj.wait(nj.dispatch("jobs.testing.describe", pd.DataFrame({"v": [1.0]})), timeout=60)
    assert seen["status"] == "failed"
    assert "its arguments refer to frame or array files" in seen["error"]


def test_the_worker_refuses_a_cluster_that_cannot_import_notebookjobs(dask_project, queue,
                                                                      tmp_path):
    # Given a cluster whose only worker has no notebookjobs to import
    from distributed import LocalCluster

    fake = tmp_path / "fake" / "notebookjobs"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named "
                                      "'notebookjobs'\")\n")
    with LocalCluster(n_workers=0, processes=True, dashboard_address=None) as empty:
        env = {**os.environ, "PYTHONPATH": str(fake.parent)}
        dask = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker",
                                 empty.scheduler_address, "--nthreads", "1", "--no-nanny"],
                                env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: empty.scheduler_info["workers"], timeout=60,
                       what="the Dask worker to join")
            # When a worker is started on it
            worker = WorkerProcess(dask_project, "--dask", empty.scheduler_address,
                                   env={"NOTEBOOKJOBS_DB": str(queue)})
            code = worker.wait_exit(timeout=120)
        finally:
            dask.terminate()
            dask.wait(timeout=30)
    # Then it refuses to start, saying what is wrong and how to fix it
    output = worker.output()
    assert code == 1, output
    assert "cannot run this project's jobs" in output
    assert "No module named 'notebookjobs'" in output
    assert "pip install 'notebookjobs[dask]'" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("given", ["address", "cluster"])
def test_start_worker_takes_a_scheduler_address_or_a_cluster(cluster, queue, given):
    # Given a cluster, named by its address or given as the LocalCluster object
    dask = cluster.scheduler_address if given == "address" else cluster
    # When the detached worker is started with it
    try:
        nj.start_worker(dask=dask)
        job = nj.dispatch("jobs.testing.ok", 7)
        # Then its attempts run on the cluster
        status = nj.wait(job, timeout=60)
        assert status["result"] == 7 and status["ran_on"][0] in addresses(cluster)
        assert nj.worker_status()["cluster"]["scheduler"] == cluster.scheduler_address
    finally:
        nj.stop_worker()
