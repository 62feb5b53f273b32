"""The pool (SPEC §12): real child processes, real kills, no mocks."""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.spawn
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from multiprocessing import resource_tracker
from pathlib import Path

import pytest
import yaml

import notebookjobs as nj
from notebookjobs.attempt.progress import set_reporter
from notebookjobs.errors import InvalidArgumentsError, WorkerError
from notebookjobs.model.records import Outcome, OutcomeKind
from notebookjobs.worker.executors.local import children
from notebookjobs.worker.executors.local.pool import DEPTH, Pool
from support import TEST_WHITELIST, Project, group_members, wait_until

#: Functions appended to jobs_for_tests.py for these tests; the shared whitelist lacks them.
EXTRA_JOBS = ("report_progress", "segfault", "imported", "start_process")


def whitelist(add: tuple[str, ...] = EXTRA_JOBS, remove: tuple[str, ...] = ()) -> str:
    data = yaml.safe_load(TEST_WHITELIST)
    members = data["allowed_jobs"]["jobs.testing"]
    members.update({name: {} for name in add})
    for name in remove:
        del members[name]
    return yaml.safe_dump(data)


@pytest.fixture
def make_pool(project: Project) -> Iterator[Callable[[int], Pool]]:
    """Start pools on the test project; every one is closed after the test."""
    project.write_whitelist(whitelist())
    pools: list[Pool] = []

    def make(size: int = 1) -> Pool:
        pool = Pool(project.root, size)
        pools.append(pool)
        pool.start()
        return pool

    yield make
    for pool in pools:
        pool.close()


Progress = list[tuple[int, float | None, str | None]]


def finish(pool: Pool, *job_ids: int) -> tuple[dict[int, Outcome], Progress]:
    """Run pool.wait() until the jobs have ended; their outcomes and the progress seen."""
    outcomes: dict[int, Outcome] = {}
    progress: Progress = []

    def ended() -> bool:
        events = pool.wait(0.5)
        outcomes.update(events.finished)
        progress.extend(events.progress)
        return set(job_ids) <= outcomes.keys()

    wait_until(ended, 60, what=f"jobs {job_ids} to end")
    return outcomes, progress


def wait_ready(pool: Pool, free: int) -> None:
    """Run pool.wait() until ``free`` children are idle (replacements included)."""
    def enough() -> bool:
        assert not pool.wait(0.5).finished
        return pool.free_slots() == free * DEPTH

    wait_until(enough, 60, what=f"{free} idle children")


def gathered(into: list[int], items: Iterable[int]) -> list[int]:
    """``into`` with ``items`` appended (for a wait's condition that collects events)."""
    into.extend(items)
    return into


def until_started(pool: Pool, *job_ids: int) -> None:
    """Run pool.wait() (which sends what was submitted) until the children say these began."""
    seen: list[int] = []
    wait_until(
        lambda: set(job_ids) <= set(gathered(seen, (i for i, _ in pool.wait(0.2).started))),
        what=f"jobs {job_ids} to start",
    )


def run_one(pool: Pool, target: str, *args: object, timeout: float | None = None) -> Outcome:
    pool.submit(1, target, list(args), {}, timeout)
    return finish(pool, 1)[0][1]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie nobody has reaped yet counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_an_ok_job_returns_its_result_and_output(make_pool):
    # Given a pool of one
    pool = make_pool(1)
    assert pool.free_slots() == DEPTH  # the attempt it runs, and the next one it holds
    # When a job that prints runs
    pool.submit(7, "jobs.testing.noisy", [2], {}, None)
    assert pool.free_slots() == DEPTH - 1  # its one child holds job 7
    outcomes, _ = finish(pool, 7)
    # Then its result and both streams come back, and the child is free again
    assert outcomes[7].kind is OutcomeKind.SUCCEEDED and outcomes[7].result == "done"
    for line in ("out 0", "err 0", "out 1", "err 1"):
        assert line in outcomes[7].output
    assert pool.free_slots() == DEPTH


def test_a_message_larger_than_one_read_arrives_whole(make_pool):
    # Given a job whose "done" message is larger than one read of the child's pipe takes
    # (the pool reads what is there and keeps a message's first part until the rest comes)
    pool = make_pool(1)
    text = "".join(chr(0x41 + i % 26) for i in range(3 * children.READ_CHUNK))
    # When it runs, twice in a row, Then each result comes back whole, and so does the next
    for job_id in (1, 2):
        pool.submit(job_id, "jobs.testing.echo", [text, job_id], {}, None)
    outcomes, _ = finish(pool, 1, 2)
    assert [outcomes[i].result for i in (1, 2)] == [{"args": [text, i], "kwargs": {}}
                                                    for i in (1, 2)]
    assert run_one(pool, "jobs.testing.ok", 3).result == 3


def test_a_child_runs_one_attempt_after_another(make_pool, project):
    pool = make_pool(1)
    for _ in range(3):
        assert run_one(pool, "jobs.testing.count", "runs").succeeded
    assert len(set(project.effect_lines("runs"))) == 1  # one pid: the same child each time


def test_a_failing_job_gives_failed_with_the_traceback(make_pool):
    pool = make_pool(1)
    outcome = run_one(pool, "jobs.testing.fail", "kaput")
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.error and "Traceback" in outcome.error and "ValueError: kaput" in outcome.error
    assert run_one(pool, "jobs.testing.ok", 2).result == 2  # the child lives on


def test_an_attempt_past_its_timeout_is_killed_and_the_child_replaced(make_pool, project):
    # Given a pool of one running a 30 s job with a 0.5 s timeout
    pool = make_pool(1)
    outcome = run_one(pool, "jobs.testing.sleep", 30, timeout=0.5)
    # Then it times out, never reaching its end
    assert outcome.kind is OutcomeKind.TIMED_OUT
    assert outcome.error == "timed out after 0.5 s"
    assert "end" not in project.effect_lines("sleep")
    # And a new child runs the next job
    wait_ready(pool, 1)
    assert run_one(pool, "jobs.testing.ok", 5).result == 5


def test_a_timeout_counts_from_the_childs_own_start_not_from_when_the_worker_reads_it(
        make_pool, project):
    # Given a pool of one whose child began a job with a timeout while nobody read its pipe
    pool = make_pool(1)
    pool.submit(1, "jobs.testing.sleep", [30], {}, 20.0)
    pool.flush()
    wait_until(lambda: project.effect_lines("sleep") == ["start"], what="the job to start")
    begun_by = time.monotonic()  # the child said "started" before this: the job ran already
    # When the worker reads the child's "started" only now
    until_started(pool, 1)
    # Then the attempt's start is the child's own stamp, and its deadline counts from there
    (child,) = pool._children
    attempt = child.attempts[0]
    assert attempt.started is not None and attempt.started < begun_by
    assert child.deadline == attempt.started + 20.0
    assert pool.stop_job(1, OutcomeKind.CANCELLED, "done with it")


def test_a_child_that_exits_gives_crashed_with_the_exit_code(make_pool, project):
    pool = make_pool(1)
    outcome = run_one(pool, "jobs.testing.crash", 3)
    assert outcome.kind is OutcomeKind.CRASHED
    assert outcome.error == "the process running the job died: exit code 3"
    assert project.effect_lines("crash") == ["3"]
    wait_ready(pool, 1)
    assert run_one(pool, "jobs.testing.ok").succeeded


def test_a_child_killed_by_a_signal_gives_crashed_naming_it(make_pool):
    pool = make_pool(1)
    outcome = run_one(pool, "jobs.testing.segfault")
    assert outcome.kind is OutcomeKind.CRASHED
    assert outcome.error == "the process running the job died: killed by signal SIGSEGV"


@pytest.mark.parametrize("data", [
    "\x00\x00\x00\x05hello",  # a whole frame that is no pickle
    "\x00\x00\x00\x05\x80\x05N.\x00",  # a pickle of None: not a message
])
def test_a_job_that_writes_into_its_childs_pipe_fails_alone(make_pool, data):
    # Given a pool of one, and a job that writes bytes into every socket its process holds
    pool = make_pool(1)
    # When it runs, then its attempt crashes saying so (the worker read none of it as a message
    # of the child's, and did not raise), and the pool goes on with a new child
    outcome = run_one(pool, "jobs.testing.scribble", data)
    assert outcome.kind is OutcomeKind.CRASHED
    assert "the job wrote into the pipe between its process and the worker" in (outcome.error or "")
    wait_ready(pool, 1)
    assert run_one(pool, "jobs.testing.ok").succeeded


def test_stop_job_kills_the_attempt_before_it_goes_on(make_pool, project):
    # Given a pool of one running a long job
    pool = make_pool(1)
    pool.submit(4, "jobs.testing.sleep", [30], {}, None)
    until_started(pool, 4)
    wait_until(lambda: project.effect_lines("sleep") == ["start"], what="the job to start")
    # When it is stopped
    assert pool.stop_job(4, OutcomeKind.CANCELLED, "cancelled by the user") is True
    assert pool.stop_job(4, OutcomeKind.CANCELLED, "again") is False
    assert pool.stop_job(99, OutcomeKind.CANCELLED, "never ran") is False
    # Then the next wait() reports it with the reason given
    outcomes, _ = finish(pool, 4)
    assert outcomes[4].kind is OutcomeKind.CANCELLED
    assert outcomes[4].error == "cancelled by the user"
    # And after a replacement has started and run a job, the stopped job still has not gone on
    wait_ready(pool, 1)
    assert run_one(pool, "jobs.testing.ok").succeeded
    assert project.effect_lines("sleep") == ["start"]


def test_two_children_run_two_jobs_at_once_and_close_kills_them(make_pool, project):
    # Given a pool of two
    pool = make_pool(2)
    assert pool.free_slots() == 2 * DEPTH
    # When two long jobs are submitted
    pool.submit(1, "jobs.testing.sleep", [30, "a"], {}, None)
    pool.submit(2, "jobs.testing.sleep", [30, "b"], {}, None)
    # Then both run at the same time (one on each child), each saying so
    until_started(pool, 1, 2)
    wait_until(
        lambda: project.effect_lines("a") == project.effect_lines("b") == ["start"],
        what="both jobs to run",
    )
    # And each child takes one more, to start when its job ends; then no room is left
    pool.submit(3, "jobs.testing.ok", [], {}, None)
    pool.submit(4, "jobs.testing.ok", [], {}, None)
    assert pool.free_slots() == 0
    with pytest.raises(RuntimeError, match="free_slots"):
        pool.submit(5, "jobs.testing.ok", [], {}, None)
    # And close() kills and reaps the children; a second close() is harmless
    pids = [p.pid for p in multiprocessing.active_children()
            if p.name == "notebookjobs-child" and p.pid is not None]
    assert len(pids) == 2
    pool.close()
    pool.close()
    assert not any(alive(pid) for pid in pids)


def test_progress_reports_arrive_with_the_job_id(make_pool):
    pool = make_pool(1)
    pool.submit(3, "jobs.testing.report_progress", [1], {}, None)
    outcomes, progress = finish(pool, 3)
    assert outcomes[3].result == "reported"
    assert progress == [(3, 0.0, "step 0"), (3, 1.0, "done")]


def test_a_flood_of_progress_reports_is_thinned_but_the_first_and_done_arrive(make_pool):
    # Given a job that reports progress 1,000 times in a tight loop, then 1.0
    pool = make_pool(1)
    pool.submit(3, "jobs.testing.report_progress", [1000], {}, None)
    outcomes, progress = finish(pool, 3)
    # Then only a few reports reach the parent (at most one per progress.PROGRESS_INTERVAL_S)
    assert outcomes[3].succeeded
    assert progress[0] == (3, 0.0, "step 0") and progress[-1] == (3, 1.0, "done")
    assert len(progress) < 100


def test_a_target_removed_from_the_whitelist_is_refused_and_nothing_runs(make_pool, project):
    # Given a running pool, then whitelist.yaml loses jobs.testing.ok
    pool = make_pool(1)
    project.write_whitelist(whitelist(remove=("ok",)), age=60)  # an edit that has settled
    # When the job is submitted anyway (as a row written by other means would be)
    outcome = run_one(pool, "jobs.testing.ok", 1)
    # Then it fails as refused and did not run
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.error and outcome.error.startswith("refused:") and "not allowed" in outcome.error
    assert project.effect_lines("ok") == []


def test_a_whitelist_just_rewritten_or_broken_defers_the_attempt(make_pool, project):
    # Given a running pool, and whitelist.yaml just rewritten without jobs.testing.ok (maybe
    # caught half-written by an editor saving in place)
    pool = make_pool(1)
    project.write_whitelist(whitelist(remove=("ok",)))
    # When the job is submitted, it does not start, and is not failed either
    outcome = run_one(pool, "jobs.testing.ok", 1)
    assert outcome.kind is OutcomeKind.DEFERRED and "not allowed" in (outcome.error or "")
    # Nor while the file is not YAML at all, however old the edit
    project.write_whitelist("allowed_jobs: [\n", raw=True, age=60)
    assert run_one(pool, "jobs.testing.ok", 2).kind is OutcomeKind.DEFERRED
    assert project.effect_lines("ok") == []


def test_children_do_not_import_pandas_or_duckdb(make_pool):
    import pandas  # noqa: F401  (loaded here, so the check shows children do not inherit it)

    pool = make_pool(1)
    assert run_one(pool, "jobs.testing.imported", "pandas").result is False
    assert run_one(pool, "jobs.testing.imported", "duckdb").result is False
    assert run_one(pool, "jobs.testing.imported", "notebookjobs.attempt.runner").result is True
    for module in ("notebookjobs.store", "notebookjobs.worker.server",
                   "notebookjobs.access.queue_client"):
        assert run_one(pool, "jobs.testing.imported", module).result is False, module


def test_a_job_may_start_processes_of_its_own(make_pool):
    pool = make_pool(1)
    outcome = run_one(pool, "jobs.testing.start_process")
    assert outcome.succeeded, outcome.error
    assert outcome.result == 0


def test_wait_reports_extra_objects_that_are_ready(make_pool):
    pool = make_pool(1)
    read_fd, write_fd = os.pipe()
    try:
        assert pool.wait(0, extra=[read_fd]).ready == []
        os.write(write_fd, b"x")
        events = pool.wait(30, extra=[read_fd])
        assert events.ready == [read_fd] and events.finished == []
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_extra_objects_stay_registered_while_the_same_and_are_replaced_when_others_come(make_pool):
    """The loop passes the same wake fds at every turn: they are registered once (no
    epoll_ctl per turn), yet a wait() with other objects watches those, not the old ones."""
    pool = make_pool(1)
    first_r, first_w = os.pipe()
    second_r, second_w = os.pipe()
    try:
        for _ in range(3):
            assert pool.wait(0, extra=[first_r]).ready == []
        os.write(first_w, b"x")
        assert pool.wait(30, extra=[first_r]).ready == [first_r]
        assert pool.wait(30, extra=[first_r]).ready == [first_r]  # still unread: still ready
        # Another set: the first fd is ready but no longer asked about.
        assert pool.wait(0, extra=[second_r]).ready == []
        os.write(second_w, b"x")
        assert pool.wait(30, extra=[second_r]).ready == [second_r]
        assert pool.wait(0).ready == []
    finally:
        for fd in (first_r, first_w, second_r, second_w):
            os.close(fd)


PARENT_SCRIPT = """\
import multiprocessing, sys
from pathlib import Path
from notebookjobs.worker.executors.local import children
from notebookjobs.worker.executors.local.pool import DEPTH, Pool

if __name__ == "__main__":
    pool = Pool(Path(sys.argv[1]), 2)
    pool.start()
    pool.submit(1, "jobs.testing.sleep", [60], {}, None)
    pool.wait(0)  # sends it
    print(*[p.pid for p in multiprocessing.active_children()], flush=True)
    sys.stdin.read()  # until the test kills this process
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_children_die_when_their_parent_is_killed(project, tmp_path):
    # Given a process whose pool runs a long job in one child and has one idle child
    script = tmp_path / "parent.py"
    script.write_text(PARENT_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(project.root)], cwd=project.root,
                              env=project.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        assert parent.stdout is not None
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(pids) == 2, parent.communicate()[1]
        wait_until(lambda: project.effect_lines("sleep") == ["start"], what="the job to start")
        # When that process is killed with SIGKILL (no chance to clean up)
        parent.kill()
        parent.wait()
        # Then both children die too
        wait_until(lambda: not any(alive(pid) for pid in pids), what="the children to die")
    finally:
        for pid in filter(alive, pids):
            os.kill(pid, 9)
        parent.kill()
        parent.communicate()


@pytest.fixture
def broken_python(tmp_path: Path) -> Iterator[None]:
    """New children start with a "python" that exits with code 7 at once."""
    # The resource tracker is launched with the same executable on first use: start the real one
    # now, or it dies, and multiprocessing warns about it in a later test.
    resource_tracker.ensure_running()
    fake = tmp_path / "broken-python"
    fake.write_text("#!/bin/sh\nexit 7\n")
    fake.chmod(0o755)
    real = multiprocessing.spawn.get_executable()
    multiprocessing.set_executable(str(fake))
    try:
        yield
    finally:
        multiprocessing.set_executable(real)


def test_start_raises_worker_error_when_children_cannot_start(project, broken_python):
    pool = Pool(project.root, 2)
    with pytest.raises(WorkerError, match="exited before it was ready: exit code 7"):
        pool.start()
    assert pool.free_slots() == 0


def test_start_gives_up_on_children_that_hang(project, tmp_path, monkeypatch):
    # Given children that never get ready, and a short start timeout
    resource_tracker.ensure_running()
    fake = tmp_path / "hanging-python"
    fake.write_text("#!/bin/sh\necho $$ >> " + str(tmp_path / "pids") + "\nexec sleep 60\n")
    fake.chmod(0o755)
    monkeypatch.setattr("notebookjobs.worker.executors.local.children.START_TIMEOUT_S", 0.5)
    real = multiprocessing.spawn.get_executable()
    multiprocessing.set_executable(str(fake))
    try:
        # Then start() kills them and says why
        with pytest.raises(WorkerError, match=r"not ready within 0.5 s"):
            Pool(project.root, 1).start()
    finally:
        multiprocessing.set_executable(real)
    pids = [int(pid) for pid in (tmp_path / "pids").read_text().split()]
    assert pids and not any(alive(pid) for pid in pids)


def test_wait_gives_up_when_replacements_keep_dying(make_pool, request):
    # Given a running pool whose next children will fail to start
    pool = make_pool(1)
    request.getfixturevalue("broken_python")
    # When its child dies and every replacement dies before it is ready
    assert run_one(pool, "jobs.testing.crash", 3).kind is OutcomeKind.CRASHED

    def keep_waiting() -> bool:
        pool.wait(0.5)
        return False

    # Then wait() raises instead of spawning forever
    with pytest.raises(WorkerError, match="3 new children in a row died before they were ready"):
        wait_until(keep_waiting, 60, what="wait() to give up")


def test_progress_validates_and_goes_to_the_reporter():
    # Importing the submodule (every child does) must not shadow the function nj.progress.
    import notebookjobs.attempt.progress  # noqa: F401

    assert nj.progress is sys.modules["notebookjobs.attempt.progress"].progress
    nj.progress(0.5)  # no reporter: nothing happens
    seen: list[tuple[float, str | None]] = []
    set_reporter(lambda fraction, message: seen.append((fraction, message)))
    try:
        nj.progress(0)
        nj.progress(1, "all done")
        for fraction in (-0.1, 1.5, math.nan, True, "0.5", None):
            with pytest.raises(InvalidArgumentsError, match=r"from 0 .* to 1"):
                nj.progress(fraction)
        with pytest.raises(InvalidArgumentsError, match="not a string"):
            nj.progress(0.5, 3)
    finally:
        set_reporter(None)
    assert seen == [(0.0, None), (1.0, "all done")]


def test_a_pool_needs_a_child():
    with pytest.raises(ValueError, match="at least 1"):
        Pool(Path("."), 0)


# --- stopping a child stops all it started (SPEC §14) ----------------------------------------

def test_stop_job_leaves_no_process_of_the_attempt(make_pool, loop_pids):
    # Given two attempts: one whose loop runs in its process group, one whose loop left it
    pool = make_pool(2)
    pool.submit(1, "jobs.testing.spawn_loop", ["inside"], {}, None)
    pool.submit(2, "jobs.testing.escape_loop", ["outside"], {}, None)
    until_started(pool, 1, 2)
    (child_1, loop_1), (child_2, loop_2) = loop_pids("inside"), loop_pids("outside")
    assert os.getpgid(loop_1) == child_1 and os.getsid(loop_2) == loop_2
    # When both are stopped
    assert pool.stop_job(1, OutcomeKind.CANCELLED, "stop")
    assert pool.stop_job(2, OutcomeKind.CANCELLED, "stop")
    # Then their children, their groups and the escaped loop are all gone
    wait_until(lambda: not any(map(alive, (child_1, loop_1, child_2, loop_2))), what="all to die")
    wait_until(lambda: not group_members(child_1) + group_members(child_2), what="empty groups")
    outcomes, _ = finish(pool, 1, 2)
    assert {o.kind for o in outcomes.values()} == {OutcomeKind.CANCELLED}


def test_close_leaves_no_process_of_any_attempt(make_pool, loop_pids):
    # Given a pool of two running a loop in the group and one outside it
    pool = make_pool(2)
    pool.submit(1, "jobs.testing.spawn_loop", ["inside"], {}, None)
    pool.submit(2, "jobs.testing.escape_loop", ["outside"], {}, None)
    until_started(pool, 1, 2)
    pids = loop_pids("inside") + loop_pids("outside")
    # When the pool is closed
    pool.close()
    # Then nothing of either attempt runs
    wait_until(lambda: not any(map(alive, pids)), what="the children and their loops to die")
    wait_until(lambda: not group_members(pids[0]) + group_members(pids[2]), what="empty groups")


def test_a_child_takes_its_next_attempt_while_it_runs_one_and_starts_it_at_once(make_pool):
    # Given a pool of one, given two attempts at once
    pool = make_pool(1)
    pool.submit(1, "jobs.testing.ok", [1], {}, None)
    pool.submit(2, "jobs.testing.ok", [2], {}, None)
    # Then the child holds both (no room left), runs them in order, and says when each begins
    assert pool.free_slots() == 0
    events: list[tuple[str, int]] = []

    def both_done() -> bool:
        got = pool.wait(0.5)
        events.extend(
            [("started", i) for i, _ in got.started] + [("done", i) for i, _ in got.finished]
        )
        return len([e for e in events if e[0] == "done"]) == 2

    wait_until(both_done, 30, what="both attempts")
    assert [e for e in events if e[0] == "started"] == [("started", 1), ("started", 2)]
    assert events.index(("started", 1)) < events.index(("done", 1))
    assert pool.free_slots() == DEPTH


def test_a_child_that_dies_hands_back_the_attempt_it_held_unstarted(make_pool, project):
    # Given a child running a job that exits the process, holding the next attempt
    pool = make_pool(1)
    pool.submit(1, "jobs.testing.crash", [3], {}, None)
    pool.submit(2, "jobs.testing.ok", [2], {}, None)
    outcomes: dict[int, Outcome] = {}
    returned: list[int] = []

    def settled() -> bool:
        got = pool.wait(0.5)
        outcomes.update(got.finished)
        returned.extend(got.returned)
        return 1 in outcomes and bool(returned)

    wait_until(settled, 30, what="the crash and the returned attempt")
    # Then the running attempt crashed, the waiting one came back unstarted and never ran
    assert outcomes[1].kind is OutcomeKind.CRASHED and returned == [2] and 2 not in outcomes
    assert project.effect_lines("ok") == []


def test_stop_job_of_a_waiting_attempt_skips_it(make_pool, project):
    # Given a child running a long job and holding the next attempt
    pool = make_pool(1)
    pool.submit(1, "jobs.testing.sleep", [30], {}, None)
    pool.submit(2, "jobs.testing.ok", [2], {}, None)
    until_started(pool, 1)
    # When the waiting one is stopped
    assert pool.stop_job(2, OutcomeKind.CANCELLED, "cancelled by the user") is True
    # Then it comes back unstarted, and the running one goes on
    returned: list[int] = []
    wait_until(
        lambda: gathered(returned, pool.wait(0.2).returned) == [2],
        what="the skipped attempt",
    )
    wait_until(lambda: project.effect_lines("sleep") == ["start"], what="the long job to run")
    assert project.effect_lines("ok") == []
    assert pool.stop_job(1, OutcomeKind.CANCELLED, "stop") is True


def test_an_attempt_waiting_behind_a_long_one_is_taken_back_for_an_idle_child(make_pool):
    # Given two children: one runs a long job and holds a second attempt, the other is idle
    pool = make_pool(2)
    pool.submit(1, "jobs.testing.sleep", [30], {}, None)
    pool.submit(3, "jobs.testing.sleep", [30, "other"], {}, None)
    until_started(pool, 1, 3)
    pool.submit(2, "jobs.testing.ok", [2], {}, None)  # behind one of them
    outcomes: dict[int, Outcome] = {}
    pool.stop_job(3, OutcomeKind.CANCELLED, "stop")  # its child is replaced: now idle
    # When time passes, then the waiting attempt is handed back (for the idle child)
    returned: list[int] = []

    def back() -> bool:
        got = pool.wait(0.2)
        outcomes.update(got.finished)
        returned.extend(got.returned)
        return 2 in returned or 2 in outcomes

    wait_until(back, 30, what="the waiting attempt to come back or run")
    assert 2 in returned or outcomes[2].succeeded  # it was not left behind the 30 s job
    assert pool.stop_job(1, OutcomeKind.CANCELLED, "stop") is True


def test_the_pipe_framing_gives_back_every_message_whatever_the_reads_cut():
    """``pipes``: several messages in one write, read back in chunks cut anywhere (a read may
    end inside a length or a pickle); the framing is multiprocessing's, so a Connection reads
    what Framed writes."""
    import multiprocessing

    from notebookjobs.worker.executors.local import pipes

    messages = [("done", 1, {"kind": "succeeded", "output": "x" * 5000}), ("started", 2, 1.5),
                ("progress", 2, None, "é\ufffd")]
    data = pipes.encode(messages)
    for cut in (1, 3, 4, 5, 7, 100, len(data)):
        reader, got = pipes.FrameReader(), []
        for start in range(0, len(data), cut):
            got += reader.feed(data[start:start + cut])
        assert got == messages, cut
    ours, theirs = multiprocessing.Pipe(duplex=True)
    try:
        framed = pipes.Framed(ours)
        framed.send_many(messages[:2])
        framed.send(messages[2])
        assert [theirs.recv() for _ in messages] == messages
        theirs.send(("run", [(7, "jobs.x.y", [], {})]))
        theirs.send(("skip", 7))
        assert framed.recv() == ("run", [(7, "jobs.x.y", [], {})])
        assert framed.recv() == ("skip", 7)
        theirs.close()
        with pytest.raises(EOFError):
            framed.recv()
    finally:
        ours.close()
