"""The pool's batches (``pool.BATCH``): a child holds several attempts ahead while each is of a
target known short, and only then. Real children, real kills; SHORT_S is raised for these
tests so that which targets count as short does not depend on this machine's speed."""
# ruff: noqa: F811  (make_pool: test_pool's fixture, a parameter of short_pool)

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from functools import partial

import pytest
import yaml
from test_pool import make_pool, until_started, whitelist  # noqa: F401

from notebookjobs.model.records import Outcome, OutcomeKind
from notebookjobs.worker.executors.local import pool as pool_module
from notebookjobs.worker.executors.local.pool import BATCH, DEPTH, LOW_WATER, Pool
from support import Project, wait_until


@pytest.fixture
def short_pool(make_pool: Callable[[int], Pool], monkeypatch: pytest.MonkeyPatch
               ) -> Callable[[int], Pool]:
    """``make_pool``, with any attempt that ends within a minute counting as short: ``sleep``
    and ``ok`` once they ran, while a target that never ran in the pool is not known short."""
    monkeypatch.setattr(pool_module, "SHORT_S", 60.0)
    return make_pool


def learn(pool: Pool, *targets: tuple[str, list[object]]) -> None:
    """Run one attempt of each target, so the pool knows them short."""
    for number, (target, args) in enumerate(targets, start=1000):
        pool.submit(number, target, args, {}, None)
        seen = Seen(pool).until(partial(_ended, number), what=f"{target} to run once")
        assert seen.outcomes[number].succeeded


def _ended(job_id: int, seen: Seen) -> bool:
    return job_id in seen.outcomes


class Seen:
    """Everything ``pool.wait()`` reported so far."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.outcomes: dict[int, Outcome] = {}
        self.returned: list[int] = []
        self.started: list[int] = []

    def until(self, done: Callable[[Seen], bool], what: str = "the attempts to settle") -> Seen:
        """Run pool.wait() until ``done(self)``."""
        def check() -> bool:
            events = self.pool.wait(0.5)
            self.outcomes.update(events.finished)
            self.returned.extend(events.returned)
            self.started.extend(job_id for job_id, _ in events.started)
            return done(self)

        wait_until(check, 60, what=what)
        return self


def settle(pool: Pool, done: Callable[[dict[int, Outcome], list[int]], bool]
           ) -> tuple[dict[int, Outcome], list[int]]:
    """Run pool.wait() until ``done(outcomes, returned)``; what ended and what came back."""
    seen = Seen(pool).until(lambda s: done(s.outcomes, s.returned))
    return seen.outcomes, seen.returned


def test_a_child_holds_a_batch_of_short_attempts_and_runs_them_in_order(short_pool, project):
    # Given a pool of one that has run `ok` once (so `ok` is known short)
    pool = short_pool(1)
    learn(pool, ("jobs.testing.ok", [0]))
    assert pool.free_slots() == DEPTH  # an idle child: room for two, as without batches
    # When `ok` attempts are submitted while there is room
    submitted = 0
    while pool.free_slots() > 0:
        submitted += 1
        pool.submit(submitted, "jobs.testing.ok", [submitted], {}, None)
    # Then the child took a whole batch, and runs it in order, each one reported
    assert submitted == BATCH
    outcomes, returned = settle(pool, lambda done, _: len(done) == BATCH)
    assert returned == [] and all(outcome.succeeded for outcome in outcomes.values())
    assert project.effect_lines("ok") == [str(i) for i in range(BATCH + 1)]
    assert pool.free_slots() == DEPTH


def test_nothing_more_is_held_behind_an_attempt_not_known_short(short_pool):
    # Given a pool of one that knows `ok` short and has never run `count`
    pool = short_pool(1)
    learn(pool, ("jobs.testing.ok", [0]))
    pool.submit(1, "jobs.testing.ok", [1], {}, None)
    pool.submit(2, "jobs.testing.ok", [2], {}, None)
    assert pool.free_slots() == BATCH - 2
    # When an attempt of `count` joins them
    pool.submit(3, "jobs.testing.count", ["unknown"], {}, None)
    # Then the child takes no more (a later job of a higher priority waits behind at most the
    # attempts held now: all short but this last one), and the room comes back as they end
    assert pool.free_slots() == 0
    settle(pool, lambda done, _: len(done) == 3)
    assert pool.free_slots() == DEPTH


def test_a_held_attempt_of_a_batch_stopped_is_skipped_and_never_runs(short_pool, project):
    # Given a child running a long attempt with a batch of short ones held behind it
    pool = short_pool(1)
    learn(pool, ("jobs.testing.sleep", [0]), ("jobs.testing.ok", [0]))
    # (more than LOW_WATER: the pool reads its pipe every POLL_S then, not at each write)
    last = LOW_WATER + 3
    pool.submit(1, "jobs.testing.sleep", [30], {}, None)
    for job_id in range(2, last + 1):
        pool.submit(job_id, "jobs.testing.ok", [job_id], {}, None)
    until_started(pool, 1)
    # When two of the held ones are cancelled
    assert pool.stop_job(3, OutcomeKind.CANCELLED, "cancelled by the user") is True
    assert pool.stop_job(5, OutcomeKind.CANCELLED, "cancelled by the user") is True
    _, returned = settle(pool, lambda _, back: sorted(back) == [3, 5])
    # Then they come back unstarted; once the long one is stopped, the others run, they never
    assert pool.stop_job(1, OutcomeKind.CANCELLED, "stop") is True
    outcomes, returned = settle(pool, lambda done, back: 1 in done and len(back) == last - 3)
    assert outcomes[1].kind is OutcomeKind.CANCELLED
    # the child was killed: the rest of its batch is back
    assert sorted(returned) == [2, 4, *range(6, last + 1)]
    assert project.effect_lines("ok") == ["0"]


def test_a_child_killed_with_a_batch_held_settles_each_attempt_as_it_was(short_pool, project):
    # Given a child holding a batch: two short attempts, a long one, more short ones
    pool = short_pool(1)
    learn(pool, ("jobs.testing.sleep", [0]), ("jobs.testing.ok", [0]))
    pool.submit(1, "jobs.testing.ok", [1], {}, None)
    pool.submit(2, "jobs.testing.ok", [2], {}, None)
    pool.submit(3, "jobs.testing.sleep", [30], {}, None)
    after = range(4, LOW_WATER + 4)  # then more than LOW_WATER are held: read every POLL_S
    for job_id in after:
        pool.submit(job_id, "jobs.testing.ok", [job_id], {}, None)
    seen = Seen(pool).until(lambda s: 3 in s.started, what="the long attempt to start")
    wait_until(lambda: project.effect_lines("sleep") == ["start", "end", "start"],
               what="the long attempt to run")
    # When the child dies (killed from outside) while it runs the long one
    holder = pool._holder(3)
    assert holder is not None
    os.kill(holder.pid, signal.SIGKILL)
    seen.until(lambda s: len(s.outcomes) == 3 and len(s.returned) == len(after))
    outcomes, returned = seen.outcomes, seen.returned
    # Then the two that ran before succeeded, the running one crashed, the ones after it came
    # back unstarted and never ran
    assert outcomes[1].succeeded and outcomes[2].succeeded
    assert outcomes[3].kind is OutcomeKind.CRASHED
    assert outcomes[3].error == "the process running the job died: killed by signal SIGKILL"
    assert sorted(returned) == list(after)
    assert project.effect_lines("ok") == ["0", "1", "2"]


def test_an_attempt_of_a_batch_times_out_from_its_own_start(short_pool, project):
    # Given a batch whose third attempt runs past its timeout
    pool = short_pool(1)
    learn(pool, ("jobs.testing.sleep", [0]), ("jobs.testing.ok", [0]))
    pool.submit(1, "jobs.testing.sleep", [0.3], {}, None)
    pool.submit(2, "jobs.testing.ok", [2], {}, None)
    pool.submit(3, "jobs.testing.sleep", [30], {}, 0.5)
    pool.submit(4, "jobs.testing.ok", [4], {}, None)
    outcomes, returned = settle(pool, lambda done, back: len(done) == 3 and len(back) == 1)
    # Then it times out (the 0.3 s before it in the same child do not count against it), and
    # only the attempt held behind it comes back
    assert outcomes[1].succeeded and outcomes[2].succeeded
    assert outcomes[3].kind is OutcomeKind.TIMED_OUT
    assert outcomes[3].error == "timed out after 0.5 s"
    assert returned == [4]
    assert project.effect_lines("ok") == ["0", "2"]


def test_a_target_that_turns_long_is_not_batched_again(short_pool, project: Project, monkeypatch):
    # Given a pool that knows `sleep` short
    pool = short_pool(1)
    learn(pool, ("jobs.testing.sleep", [0]))
    pool.submit(1, "jobs.testing.sleep", [0], {}, None)
    assert pool.free_slots() == BATCH - 1
    settle(pool, lambda done, _: 1 in done)
    # When one of its attempts runs longer than SHORT_S
    monkeypatch.setattr(pool_module, "SHORT_S", 0.2)
    pool.submit(2, "jobs.testing.sleep", [0.3], {}, None)
    settle(pool, lambda done, _: 2 in done)
    # Then its next attempts get the room of an attempt not known short
    pool.submit(3, "jobs.testing.sleep", [0], {}, None)
    assert pool.free_slots() == DEPTH - 1
    settle(pool, lambda done, _: 3 in done)


def test_an_attempt_taken_for_short_that_runs_long_takes_no_more_behind_it(short_pool):
    # Given a pool that knows `sleep` and `ok` short, running a long `sleep` with an `ok` held
    pool = short_pool(1)
    learn(pool, ("jobs.testing.sleep", [0]), ("jobs.testing.ok", [0]))
    pool.submit(1, "jobs.testing.sleep", [30], {}, None)
    pool.submit(2, "jobs.testing.ok", [2], {}, None)
    assert pool.free_slots() == BATCH - 2
    seen = Seen(pool).until(lambda s: 1 in s.started, what="the long attempt to start")
    # When it has run past STEAL_AFTER_S, then its child has no room left (DEPTH: the one it
    # runs and the one held), and `sleep` is not known short any more
    seen.until(lambda s: s.pool.free_slots() == 0, what="the child's room to shrink")
    assert pool.stop_job(1, OutcomeKind.CANCELLED, "stop") is True
    seen.until(lambda s: 1 in s.outcomes and 2 in s.returned)
    seen.until(lambda s: s.pool.free_slots() == DEPTH, what="a new child")
    pool.submit(3, "jobs.testing.sleep", [0], {}, None)
    assert pool.free_slots() == DEPTH - 1
    seen.until(lambda s: 3 in s.outcomes)


def test_a_child_holding_low_water_or_more_is_refilled_only_below_it(short_pool):
    # Given a child running a long attempt (known short until it has run a while)
    pool = short_pool(1)
    learn(pool, ("jobs.testing.sleep", [0]), ("jobs.testing.ok", [0]))
    pool.submit(1, "jobs.testing.sleep", [30], {}, None)
    # When LOW_WATER attempts are handed to it in one go (one message)
    for job_id in range(2, LOW_WATER + 1):
        pool.submit(job_id, "jobs.testing.ok", [job_id], {}, None)
    assert pool.free_slots() == BATCH - LOW_WATER  # the message being made may grow to BATCH
    pool.flush()
    # Then, once sent, the child takes no more until it holds fewer than LOW_WATER
    assert pool.free_slots() == 0
    assert pool.stop_job(1, OutcomeKind.CANCELLED, "stop") is True
    # (stopped while it ran: the rest come back; or skipped before it began: the rest run)
    held = set(range(1, LOW_WATER + 1))
    seen = Seen(pool).until(lambda s: set(s.outcomes) | set(s.returned) == held)
    assert 1 in seen.returned or seen.outcomes[1].kind == OutcomeKind.CANCELLED


#: A job module that rewrites itself: ``bump(n)`` makes its source say VERSION = n, dated n s
#: after the epoch (a new mtime whatever the clock's resolution).
EDITED = '''\
import os
import pathlib

VERSION = 1


def version():
    return VERSION


def bump(n):
    path = pathlib.Path(__file__)
    path.write_text(path.read_text().replace(f"VERSION = {VERSION}", f"VERSION = {n}"))
    os.utime(path, ns=(n * 10**9, n * 10**9))
    return n
'''


def test_a_job_module_is_looked_at_once_per_message_as_the_whitelist_is(short_pool, project):
    # Given a pool of one that knows two targets of a module that edits itself short
    (project.root / "jobs" / "edited.py").write_text(EDITED)
    allowed = yaml.safe_load(whitelist())
    allowed["allowed_jobs"]["jobs.edited"] = ["version", "bump"]
    project.write_whitelist(yaml.safe_dump(allowed))
    pool = short_pool(1)
    learn(pool, ("jobs.edited.version", []), ("jobs.edited.bump", [1]))
    # When one message brings the child an attempt, an edit of the module and another attempt,
    # and a later message one more
    pool.submit(1, "jobs.edited.version", [], {}, None)
    pool.submit(2, "jobs.edited.bump", [2], {}, None)
    pool.submit(3, "jobs.edited.version", [], {}, None)
    outcomes, _ = settle(pool, lambda done, _: len(done) == 3)
    pool.submit(4, "jobs.edited.version", [], {}, None)
    outcomes.update(settle(pool, lambda done, _: 4 in done)[0])
    # Then the edit applies from the next message on, not within the one it was made in
    assert [outcomes[i].result for i in (1, 2, 3, 4)] == [1, 2, 1, 2]
