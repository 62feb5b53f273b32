"""The worker with real processes: python -m notebookjobs.worker, its pool, its socket, signals,
kills."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

import notebookjobs as nj
from notebookjobs import config
from notebookjobs.access import socketdir
from support import alive, group_members, wait_until


def settings():
    return config.load_settings()


def burst(project, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "notebookjobs.worker", "--burst", *args],
                          cwd=project.root, env=project.env(), capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_burst_drains_1000_jobs_each_run_exactly_once(project):
    # Given 1,000 queued jobs that each leave one side effect
    ids = nj.dispatch_many("jobs.testing.count", [["k"] for _ in range(1000)])
    assert len(set(ids)) == 1000
    # When a burst worker with two children drains the queue
    out = burst(project, "--concurrency", "2")
    # Then it exits by itself, every job completed, and each ran exactly once
    assert out.returncode == 0, out.stderr
    assert nj.counts() == {
        "pending": 0,
        "running": 0,
        "completed": 1000,
        "failed": 0,
        "cancelled": 0,
    }
    assert len(project.effect_lines("k")) == 1000
    assert len(set(project.effect_lines("k"))) == 2  # two child pids, reused throughout
    assert (nj.history()["attempts"] == 1).all()


def test_an_attempt_a_dying_child_held_stays_pending_runs_once_and_is_counted_once(project):
    # Given, with one child (which holds two attempts), a job that kills its process at each
    # of its 3 attempts (retry_attempts: 2), and a job behind it in the same child
    crash = nj.dispatch("jobs.testing.crash", 3, priority=9)
    held = nj.dispatch("jobs.testing.count", "held")
    # When a burst worker drains the queue
    out = burst(project, "--concurrency", "1")
    assert out.returncode == 0, out.stderr
    # Then each death handed the waiting attempt back unstarted: it ran once, at the end, and
    # counts one attempt; the crashing job failed after its three
    assert len(project.effect_lines("crash")) == 3
    assert nj.status(crash)["status"] == "failed" and nj.status(crash)["attempts"] == 3
    assert nj.status(held)["status"] == "completed" and nj.status(held)["attempts"] == 1
    assert len(project.effect_lines("held")) == 1


def test_priority_order_with_concurrency_1(project):
    low = nj.dispatch("jobs.testing.count", "order", priority=0)
    ids = [
        nj.dispatch("jobs.testing.ok", v, priority=p) for v, p in ((1, 1), (2, 9), (3, 5), (4, 9))
    ]
    out = burst(project, "--concurrency", "1")
    assert out.returncode == 0, out.stderr
    started = nj.history().set_index("id")["started_at"]
    order = list(started.sort_values().index)
    assert order == [ids[1], ids[3], ids[2], ids[0], low]


def test_a_delayed_job_is_not_started_early(project, start_worker):
    start_worker("--concurrency", "1")
    late = nj.dispatch("jobs.testing.ok", 1, delay=1.5)
    now = nj.dispatch("jobs.testing.ok", 2)
    assert nj.wait(now, timeout=30)["status"] == "completed"
    assert nj.status(late)["status"] == "pending"
    info = nj.wait(late, timeout=30)
    assert info["status"] == "completed" and info["started_at"] >= info["run_at"]


def test_retries_then_success_and_retries_then_failure(project):
    ok = nj.dispatch("jobs.testing.fail_times", "twice", 2)
    bad = nj.dispatch("jobs.testing.fail", "never")
    out = burst(project)
    assert out.returncode == 0, out.stderr
    info = nj.status(ok)
    assert (info["status"], info["attempts"], info["result"]) == ("completed", 3, 3)
    info = nj.status(bad)
    assert (info["status"], info["attempts"]) == ("failed", 3)
    assert "ValueError: never" in info["error"] and "Traceback" in info["error"]
    errors = (project.root / "logs" / "background_jobs_errors.log").read_text()
    assert errors.count(f"RETRYING job={ok} ") == 2 and f"FAILED job={bad} " in errors
    assert f"COMPLETED job={ok} " in (project.root / "logs" / "background_jobs.log").read_text()


def test_retry_delay_and_backoff_are_applied(project):
    project.write_whitelist("retry_attempts: 2\nretry_delay: 0.3\nretry_backoff: 2\n"
                            "allowed_jobs: {jobs.testing: [fail]}\n")
    job_id = nj.dispatch("jobs.testing.fail")
    assert burst(project).returncode == 0
    info = nj.status(job_id)
    assert info["attempts"] == 3 and info["status"] == "failed"
    # the last attempt could not start before 0.3 + 0.6 s after the first run_at
    assert (info["started_at"] - info["created_at"]).total_seconds() >= 0.9


def test_timeout_kills_the_attempt(project):
    project.write_whitelist("retry_attempts: 1\nretry_delay: 0\n"
                            "allowed_jobs: {jobs.testing: {sleep: {timeout: 0.5}}}\n")
    job_id = nj.dispatch("jobs.testing.sleep", 60)
    assert burst(project).returncode == 0
    info = nj.status(job_id)
    assert info["status"] == "failed" and info["attempts"] == 2
    assert "timed out after 0.5 s" in info["error"]
    assert project.effect_lines("sleep") == ["start", "start"]


def test_a_job_that_exits_the_process_is_a_failed_attempt(project):
    job_id = nj.dispatch("jobs.testing.crash", 7)
    after = nj.dispatch("jobs.testing.ok", 1)
    assert burst(project, "--concurrency", "1").returncode == 0
    info = nj.status(job_id)
    assert info["status"] == "failed" and info["attempts"] == 3
    assert "exit code 7" in info["error"]
    assert nj.status(after)["status"] == "completed"  # the pool replaced the lost child


def test_output_result_and_progress(project, start_worker):
    start_worker()
    job_id = nj.dispatch("jobs.testing.noisy", 2)
    info = nj.wait(job_id, timeout=30)
    assert info["result"] == "done"
    assert "out 0" in info["output"] and "err 1" in info["output"]
    (project.root / "jobs" / "progressing.py").write_text(
        "import notebookjobs as nj, time\n"
        "def work(path: str):\n"
        "    nj.progress(0.5, 'half way')\n"
        "    import pathlib\n"
        "    p = pathlib.Path(path)\n"
        "    while not p.exists():\n"
        "        time.sleep(0.01)\n"
        "    return 1\n")
    project.write_whitelist(project.root.joinpath("whitelist.yaml").read_text()
                            + "  jobs.progressing: [work]\n")
    gate = project.root / "gate"
    job_id = nj.dispatch("jobs.progressing.work", str(gate))
    info = wait_until(
        lambda: (s := nj.status(job_id))["progress"] is not None and s, what="progress"
    )
    assert (info["status"], info["progress"], info["progress_message"]) == (
        "running",
        0.5,
        "half way",
    )
    gate.touch()
    assert nj.wait(job_id, timeout=30)["status"] == "completed"


def test_cancel_a_running_job(project, start_worker):
    start_worker()
    job_id = nj.dispatch("jobs.testing.sleep", 30, key="cancelme")
    wait_until(lambda: project.effect_lines("cancelme") == ["start"], what="the job to start")
    assert nj.cancel(job_id) is True
    info = nj.status(job_id)
    assert info["status"] == "cancelled" and info["attempts"] == 1
    # its code does not go on: the next job runs in a fresh child and 'end' never comes
    follow = nj.dispatch("jobs.testing.sleep", 0.2, key="cancelme")
    assert nj.wait(follow, timeout=30)["status"] == "completed"
    assert project.effect_lines("cancelme") == ["start", "start", "end"]


def test_kill_9_mid_job_then_restart_completes_it_once(project, start_worker):
    worker = start_worker("--concurrency", "1")
    gate = project.root / "gate"
    (project.root / "jobs" / "gated.py").write_text(
        "import os, time, pathlib\n"
        "def run(path: str):\n"
        "    log = pathlib.Path(os.environ['NJ_TEST_EFFECTS'], 'gated.log')\n"
        "    log.open('a').write(f'start {os.getpid()}\\n')\n"
        "    while not pathlib.Path(path).exists():\n"
        "        time.sleep(0.01)\n"
        "    pathlib.Path(os.environ['NJ_TEST_EFFECTS'], 'gated.log').open('a').write('end\\n')\n"
    )
    project.write_whitelist(
        project.root.joinpath("whitelist.yaml").read_text() + "  jobs.gated: [run]\n"
    )
    job_id = nj.dispatch("jobs.gated.run", str(gate))
    wait_until(lambda: project.effect_lines("gated"), what="the job to start")
    child_pid = int(project.effect_lines("gated")[0].split()[1])
    wait_until(lambda: nj.status(job_id)["status"] == "running", what="the start to be recorded")
    # When the worker is killed with SIGKILL mid-job
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait_exit()
    # Then its child dies with it: nothing keeps running the job
    wait_until(lambda: not _alive(child_pid), what="the orphaned child to die")
    assert nj.status(job_id)["status"] == "running"  # as the dead worker left it
    # When a new worker starts, the job is a failed attempt and runs again, once
    gate.touch()
    assert burst(project).returncode == 0
    info = nj.status(job_id)
    assert (info["status"], info["attempts"]) == ("completed", 2)
    lines = project.effect_lines("gated")
    assert len([line for line in lines if line.startswith("start")]) == 2
    assert lines.count("end") == 1
    assert (
        "stopped before the attempt finished"
        in (project.root / "logs" / "background_jobs_errors.log").read_text()
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_graceful_stop_lets_short_jobs_finish_and_requeues_long_ones(project, start_worker):
    project.write_whitelist(project.root.joinpath("whitelist.yaml").read_text().replace(
        "  autostart: false\n", "  autostart: false\n  grace_period: 1\n"))
    worker = start_worker("--concurrency", "2")
    short = nj.dispatch("jobs.testing.sleep", 0.3, key="short")
    long = nj.dispatch("jobs.testing.sleep", 60, key="long")
    wait_until(
        lambda: project.effect_lines("short") and project.effect_lines("long"), what="both to start"
    )
    queued = nj.dispatch("jobs.testing.ok", 1)
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait_exit() == 0
    assert nj.status(short)["status"] == "completed"
    info = nj.status(long)
    assert (info["status"], info["attempts"]) == ("pending", 0)
    assert project.effect_lines("long") == ["start"]
    assert nj.status(queued)["status"] == "pending"  # no new claims after the signal


def test_hot_reload_of_job_code_and_whitelist(project, start_worker):
    start_worker("--concurrency", "1")
    module = project.root / "jobs" / "hot.py"
    module.write_text("def version():\n    return 1\n")
    project.write_whitelist(
        project.root.joinpath("whitelist.yaml").read_text() + "  jobs.hot: [version]\n"
    )
    assert nj.wait(nj.dispatch("jobs.hot.version"), timeout=30)["result"] == 1
    module.write_text("def version():\n    return 2\n\ndef extra():\n    return 'new'\n")
    st = module.stat()
    os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    assert nj.wait(nj.dispatch("jobs.hot.version"), timeout=30)["result"] == 2
    project.write_whitelist(project.root.joinpath("whitelist.yaml").read_text()
                            .replace("jobs.hot: [version]", "jobs.hot: [version, extra]"))
    assert nj.wait(nj.dispatch("jobs.hot.extra"), timeout=30)["result"] == "new"


def test_a_forged_row_is_refused_and_runs_nothing(project, start_worker):
    # Given a pending job whose target was changed in the file by other means
    job_id = nj.dispatch("jobs.testing.ok", 1)
    nj.counts()  # opens the queue file: the dispatch moves from the journal into it
    conn = duckdb.connect(str(project.db))
    conn.execute(
        "UPDATE queue SET target = 'os.system', args = '[\"touch pwned\"]' WHERE id = ?", [job_id]
    )
    conn.close()
    # When a worker runs the queue
    start_worker()
    info = nj.wait(job_id, timeout=30)
    # Then it failed at once with a clear error and ran nothing
    assert info["status"] == "failed" and info["attempts"] == 1
    assert "refused: 'os.system' is not allowed" in info["error"]
    assert not (project.root / "pwned").exists()
    assert project.effect_lines("ok") == []


def test_socket_mode_and_a_second_worker_refused(project, start_worker):
    first = start_worker()
    path = socketdir.socket_path(settings())
    assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o600
    second = start_worker(ready=False)
    assert second.wait_exit() == 1
    assert f"a worker is already running for {project.db} (pid {first.pid})" in second.output()
    assert nj.worker_status()["pid"] == first.pid


def test_dispatch_from_another_process_while_the_worker_runs(project, start_worker):
    start_worker()
    out = project.cli("dispatch", "jobs.testing.ok", "41")
    assert out.returncode == 0, out.stderr
    info = nj.wait(int(out.stdout), timeout=30)
    assert (info["status"], info["result"]) == ("completed", 41)
    # the CLI, the API and the foreground run all work through the socket
    assert "(1 job" in project.cli("list").stdout
    run = project.cli("run", "jobs.testing", "ok", "5")
    assert run.returncode == 0 and "completed after 1 attempt: 5" in run.stdout
    assert nj.counts()["completed"] == 2


def test_same_answers_through_the_socket_as_through_the_file(project, start_worker):
    ids = [nj.dispatch("jobs.testing.ok", i, delay=3600) for i in range(7)]
    nj.cancel(ids[2])
    before = (nj.jobs(page=2, per_page=3), nj.status(ids[4]), nj.counts(), nj.history())
    start_worker()
    after = (nj.jobs(page=2, per_page=3), nj.status(ids[4]), nj.counts(), nj.history())
    assert before[0].equals(after[0]) and before[0].attrs == after[0].attrs
    assert before[1] == after[1] and before[2] == after[2]
    assert before[3].equals(after[3])
    with pytest.raises(nj.JobNotFoundError):
        nj.status(9999)
    with pytest.raises(nj.NotAllowedError):
        nj.dispatch("os.system", "ls")


def test_detached_worker_start_status_stop(project):
    assert nj.worker_status()["running"] is False
    pid = nj.start_worker(concurrency=1)
    try:
        info = nj.worker_status()
        assert info["running"] and info["pid"] == pid and info["concurrency"] == 1
        assert os.getsid(pid) == pid  # its own session: survives the kernel that started it
        assert nj.start_worker() == pid  # a second start reports the running one
        job_id = nj.dispatch("jobs.testing.ok", 3)
        assert nj.wait(job_id, timeout=30)["result"] == 3
        assert (project.root / "logs" / "worker.log").read_text().count("started") == 1
    finally:
        assert nj.stop_worker() is True
    assert nj.worker_status()["running"] is False
    assert nj.stop_worker() is False


def test_detached_worker_outlives_the_process_that_started_it(project):
    code = "import notebookjobs as nj; print(nj.start_worker())"
    out = subprocess.run([sys.executable, "-c", code], cwd=project.root, env=project.env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout)
    try:
        assert nj.worker_status()["pid"] == pid
        assert nj.wait(nj.dispatch("jobs.testing.ok", 9), timeout=30)["result"] == 9
    finally:
        nj.stop_worker()


def test_cli_worker_commands(project):
    assert project.cli("worker", "status").returncode == 1
    started = project.cli("worker", "start", "--concurrency", "1")
    assert started.returncode == 0 and "worker running (pid" in started.stdout
    try:
        status = project.cli("worker", "status")
        assert "concurrency 1" in status.stdout
    finally:
        assert project.cli("worker", "stop").stdout.strip() == "worker stopped"


def test_autostart_on_dispatch(project):
    project.write_whitelist(project.root.joinpath("whitelist.yaml").read_text()
                            .replace("autostart: false", "autostart: true"))
    try:
        job_id = nj.dispatch("jobs.testing.ok", 2)
        assert nj.wait(job_id, timeout=60)["result"] == 2
        assert nj.worker_status()["running"]
    finally:
        nj.stop_worker()


def test_the_first_dispatch_with_autostart_returns_before_the_worker_is_ready(project):
    # Given a queue with a job in its journal, autostart on, and the queue's lock held here, so
    # that no worker can get ready
    _autostart_on(project)
    with _workers_stopped(project), _queue_locked() as release:
        # When a user dispatches from the CLI (the worker it starts waits for the lock)
        out = project.cli("dispatch", "jobs.testing.ok", "3")
        # Then it has returned with the job stored, while no worker answers yet
        assert out.returncode == 0, out.stderr
        job_id = int(out.stdout)
        assert not nj.worker_status()["running"]
        assert "Traceback" not in out.stderr
        # And the worker it started takes the queue once it is free, and runs the job
        release()
        assert nj.wait(job_id, timeout=60)["result"] == 3
        assert nj.worker_status()["running"]
        nj.stop_worker()


def test_a_burst_of_dispatches_spawns_one_worker_while_it_starts(project):
    # Given autostart, and the queue's lock held here, so that the worker cannot get ready
    _autostart_on(project)
    with _workers_stopped(project), _queue_locked() as release:
        # When a notebook dispatches five jobs in a row
        ids = [nj.dispatch("jobs.testing.ok", i) for i in range(5)]
        # Then one worker was spawned for them, not one per dispatch
        assert len(_workers_of(project.root)) == 1
        release()
        assert [nj.wait(i, timeout=60)["result"] for i in ids] == list(range(5))
        nj.stop_worker()


def _autostart_on(project) -> None:
    """A job in the queue's journal (so that a dispatch appends without the queue's lock), then
    autostart turned on."""
    nj.dispatch("jobs.testing.ok", 0, delay=3600)
    project.write_whitelist(project.root.joinpath("whitelist.yaml").read_text()
                            .replace("autostart: false", "autostart: true"))


@contextmanager
def _queue_locked() -> Iterator[Callable[[], None]]:
    """The queue's lock, held here until ``release()`` or the end of the block."""
    from notebookjobs.access import lock

    fd = lock.open_lock(config.load_settings().lock_path)
    assert lock.try_lock(fd)
    held = [fd]

    def release() -> None:
        while held:
            os.close(held.pop())

    try:
        yield release
    finally:
        release()


@contextmanager
def _workers_stopped(project) -> Iterator[None]:
    """Whatever the block found, no worker started in ``project`` outlives it (one that never
    answered is not found by ``nj.stop_worker``): SIGTERM to each one's process group."""
    try:
        yield
    finally:
        for pid in _workers_of(project.root):
            try:
                os.killpg(pid, signal.SIGTERM)  # a detached worker leads its own group
            except ProcessLookupError:
                pass


def _workers_of(root: Path) -> list[int]:
    """The live workers started in the project folder ``root`` (Linux: reads /proc)."""
    found = []
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"notebookjobs.worker" in cmdline and os.readlink(f"/proc/{pid}/cwd") == str(root):
                found.append(pid)
        except OSError:
            continue  # it ended while we looked
    return found


def test_a_dispatch_acknowledged_just_before_a_crash_is_not_lost(project, start_worker):
    # Given a worker, and a job it acknowledged but may not have moved out of its inbox yet
    worker = start_worker("--concurrency", "1")
    job_id = nj.dispatch("jobs.testing.ok", 11, delay=3600)
    # When the worker is killed at once
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait_exit()
    # Then the job is in the queue for every reader, without a worker...
    assert nj.status(job_id)["status"] == "pending"
    assert job_id in set(nj.jobs(per_page=50)["id"])
    # ...and a new worker takes it over
    start_worker("--concurrency", "1")
    assert nj.status(job_id)["run_at"] > nj.status(job_id)["created_at"]
    assert nj.cancel(job_id) is True and nj.status(job_id)["status"] == "cancelled"


def test_a_client_reconnects_to_a_restarted_worker(project, start_worker):
    first = start_worker("--concurrency", "1")
    assert nj.wait(nj.dispatch("jobs.testing.ok", 1), timeout=30)["result"] == 1
    first.proc.send_signal(signal.SIGTERM)
    assert first.wait_exit() == 0
    # without a worker the same process falls back to the file
    pending = nj.dispatch("jobs.testing.ok", 2)
    assert nj.status(pending)["status"] == "pending"
    second = start_worker("--concurrency", "1")
    assert nj.wait(pending, timeout=30)["result"] == 2
    assert nj.worker_status()["pid"] == second.pid
    assert nj.wait(nj.dispatch("jobs.testing.ok", 3), timeout=30)["result"] == 3


# --- stopping a job stops all of it (SPEC §14): what the job started dies with its attempt -----


def test_cancel_kills_the_processes_the_job_started(project, start_worker, loop_pids):
    # Given a running job whose own subprocess loops until it is killed
    start_worker()
    job_id = nj.dispatch("jobs.testing.spawn_loop", "cancelled")
    child, loop = loop_pids("cancelled")
    # When the job is cancelled
    assert nj.cancel(job_id) is True
    # Then the loop dies with it, and nothing is left of the attempt's process group
    wait_until(lambda: not alive(loop), what="the job's loop to die")
    wait_until(lambda: not group_members(child), what="the attempt's process group to be empty")
    assert nj.status(job_id)["status"] == "cancelled"


def test_a_timeout_kills_the_processes_the_job_started(project, start_worker, loop_pids):
    # Given a job with a 0.5 s timeout whose subprocess loops until it is killed
    project.write_whitelist("retry_attempts: 0\n"
                            "allowed_jobs: {jobs.testing: {spawn_loop: {timeout: 0.5}}}\n")
    start_worker()
    job_id = nj.dispatch("jobs.testing.spawn_loop", "timed")
    child, loop = loop_pids("timed")
    # When it times out (the worker keeps running)
    info = nj.wait(job_id, timeout=30)
    assert info["status"] == "failed" and "timed out after 0.5 s" in info["error"]
    # Then its loop is gone too, with the rest of the attempt's group
    wait_until(lambda: not alive(loop), what="the job's loop to die")
    wait_until(lambda: not group_members(child), what="the attempt's process group to be empty")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal")
def test_kill_9_of_the_worker_kills_what_its_jobs_started(project, start_worker, loop_pids):
    # Given a worker whose job runs a subprocess loop in its group, and one that left it
    worker = start_worker("--concurrency", "2")
    nj.dispatch("jobs.testing.spawn_loop", "inside")
    nj.dispatch("jobs.testing.escape_loop", "outside")
    pids = loop_pids("inside") + loop_pids("outside")
    # When the worker is killed with SIGKILL, and no new worker starts
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait_exit()
    # Then the children die, and so does everything their jobs started
    wait_until(lambda: not any(map(alive, pids)), what="the children and their loops to die")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sweep reads /proc")
def test_cancel_kills_a_process_that_left_the_jobs_group(project, start_worker, loop_pids):
    # Given a running job whose subprocess runs in a session of its own (out of reach of killpg)
    start_worker()
    job_id = nj.dispatch("jobs.testing.escape_loop", "escaped")
    child, loop = loop_pids("escaped")
    assert os.getsid(loop) == loop != os.getsid(child)
    # When the job is cancelled
    assert nj.cancel(job_id) is True
    # Then the sweep for the attempt's environment marker kills it all the same
    wait_until(lambda: not alive(loop), what="the escaped loop to die")


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="/proc and the parent-death signal"
)
def test_the_next_worker_kills_what_a_killed_worker_left_running(project, start_worker, loop_pids):
    # Given a job that started a loop in its group and one in a session of its own
    project.write_whitelist("retry_attempts: 0\nallowed_jobs: {jobs.testing: [stubborn_loop]}\n")
    worker = start_worker("--concurrency", "1")
    job_id = nj.dispatch("jobs.testing.stubborn_loop", "stubborn")
    pids = loop_pids("stubborn")
    child = pids[0]
    wait_until(lambda: nj.status(job_id)["status"] == "running", what="the start to be recorded")
    # When the worker and the child are killed together, with no chance to act (both frozen
    # first: as `pkill -9` of both, or the machine's OOM killer, would leave them)
    os.kill(worker.pid, signal.SIGSTOP)
    os.kill(child, signal.SIGSTOP)
    os.kill(child, signal.SIGKILL)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait_exit()
    wait_until(lambda: not alive(child), what="the child to die")
    assert all(map(alive, pids[1:])), "the job's loops were to outlive its child and worker"
    # Then the next worker kills them as it starts
    successor = start_worker()
    wait_until(lambda: not any(map(alive, pids)), what="the leftovers to be killed")
    assert "left running by a previous worker of this queue" in successor.output()
    info = nj.wait(job_id, timeout=30)
    assert info["status"] == "failed" and "stopped before the attempt finished" in info["error"]


def test_job_ids_are_consecutive_across_worker_stops_and_restarts(project, start_worker):
    # Given dispatches on the file, through a worker, in a batch, after a stop, after a restart
    ids = [nj.dispatch("jobs.testing.ok", 0, delay=3600)]
    worker = start_worker("--concurrency", "1")
    ids += [nj.dispatch("jobs.testing.ok", i, delay=3600) for i in range(3)]
    ids += nj.dispatch_many("jobs.testing.ok", [[1], [2]], delay=3600)
    worker.stop()
    ids.append(nj.dispatch("jobs.testing.ok", 5, delay=3600))
    start_worker("--concurrency", "1")
    ids.append(nj.dispatch("jobs.testing.ok", 6, delay=3600))
    # Then the ids run on with no gap (the seed's ids were consecutive; users look jobs up by id)
    assert ids == list(range(1, len(ids) + 1))
