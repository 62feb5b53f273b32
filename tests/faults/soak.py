"""The fault soak of SPEC §14 (``make soak``): kill -9 at random moments, then poison.

1. Kills: client processes dispatch thousands of jobs (one at a time and in batches) while a
   worker is started and killed with SIGKILL at random moments, round after round; a last
   ``--burst`` worker drains the queue. Each job records its start and end (pid, monotonic ns)
   in an effects file. Checked: none lost (every acknowledged id is in the queue with its
   arguments, and completed), none stuck (nothing pending or running after the drain), none
   run twice at the same time, and how many ran again (at-least-once after a crash).
   Each round also tears the journal: a client is SIGKILLed in the middle of writing its
   record (half the time right after argument bytes that look like a record's footer), and
   another is SIGKILLed at a random moment while it dispatches.
   Meanwhile another process runs heavy queries (``nj.sql`` of about a minute, given a few
   seconds, and whole histories): each ends, within its limit, with its frame or a clear error,
   and never holds up the dispatches (SPEC §14: queries never hold the queue).
2. Poison: malformed socket messages (Hypothesis-generated and the known forgeries) and poison
   values through the API, the worker alive after each and the next client served; then a
   stop and a new start that runs a job.
3. A nearly full disk (a real tmpfs, root only): a worker runs jobs, some with large states,
   while the disk is filled to its last 256 KiB (then to nothing, as the queue grows);
   dispatches go on (acknowledged, or refused with a clear error), the worker is killed and
   started again on the full disk; then space is freed and a drain runs. Checked: every
   acknowledged job completed (none failed for the disk), none lost, the queue openable.

It prints the figures in a table and exits 1 when an invariant does not hold.

    python tests/faults/soak.py [--rounds 30] [--jobs 6000] [--messages 150] [--seed N] [--keep]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
sys.path.insert(0, str(TESTS))

SOAK_WHITELIST = """\
retry_attempts: 100
retry_delay: 0
worker:
  concurrency: 2
  autostart: false
  grace_period: 2
allowed_jobs:
  jobs.testing:
    ok: {}
    echo: {}
    fail: {}
    stamp: {}
    bad_text: {}
    noisy: {}
"""
READY_TIMEOUT_S = 60.0


# --- the client processes ----------------------------------------------------------------------

def client_main(ns: argparse.Namespace) -> int:
    """Dispatch until the stop file appears or the quota is reached; one line per outcome."""
    import notebookjobs as nj

    rng = random.Random(ns.seed)
    stop = Path(ns.stop)
    sent = 0
    with open(ns.out, "a", buffering=1) as out:
        while sent < ns.quota and not stop.exists():
            size = rng.randint(5, 30) if ns.mode == "batch" else 1
            tokens = [f"{ns.name}-{sent + i}" for i in range(size)]
            calls = [[token, rng.randint(0, 10)] for token in tokens]
            try:
                if ns.mode == "batch":
                    ids = nj.dispatch_many("jobs.testing.stamp", calls)
                else:
                    ids = [nj.dispatch("jobs.testing.stamp", *calls[0])]
            except nj.NotebookJobsError as exc:
                out.write(f"err {tokens[0]} {len(tokens)} {type(exc).__name__}: {_one_line(exc)}\n")
            except Exception as exc:  # a raw error where SPEC §14 wants a clear one
                out.write(f"raw {tokens[0]} {len(tokens)} {type(exc).__name__}: {_one_line(exc)}\n")
            else:
                for job_id, token in zip(ids, tokens, strict=True):
                    out.write(f"ack {int(job_id)} {token}\n")
            sent += size
            time.sleep(ns.pause * rng.uniform(0.5, 1.5))
    return 0


#: a query of about a minute on two cores (tests/test_queries.py), given QUERY_LIMIT_S
HEAVY_QUERY = "SELECT max(md5(range::VARCHAR)) FROM range(400000000)"
QUERY_LIMIT_S = 5.0
QUERY_PAUSE_S = 0.5


def query_main(ns: argparse.Namespace) -> int:
    """Run heavy queries until the stop file appears, a line per query: its outcome and how
    long the call took (through the worker, or on the file while none runs)."""
    import notebookjobs as nj

    stop = Path(ns.stop)
    with open(ns.out, "a", buffering=1) as out:
        n = 0
        while not stop.exists():
            n += 1
            began = time.monotonic()
            try:
                if n % 2:
                    nj.sql(HEAVY_QUERY, timeout=QUERY_LIMIT_S)
                else:
                    nj.history(timeout=QUERY_LIMIT_S)
                outcome = "returned"
            except nj.NotebookJobsError as exc:
                outcome = type(exc).__name__
            except Exception as exc:  # a raw error where SPEC §14 wants a clear one
                outcome = f"raw:{type(exc).__name__}:{_one_line(exc)[:80].replace(' ', '_')}"
            out.write(f"{'sql' if n % 2 else 'history'} {outcome} "
                      f"{time.monotonic() - began:.2f}\n")
            # A pause, as a user's: back to back, queries on the file while no worker runs
            # hold its lock nearly all the time, and a starting worker, which polls the lock
            # every 20 ms, waited over a minute for a gap (seen once in 30 rounds)
            time.sleep(QUERY_PAUSE_S)
    return 0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def tear_main(ns: argparse.Namespace) -> int:
    """Write part of a record into the journal, under its lock, and die by SIGKILL: a client
    killed in the middle of its append. Half the time the part ends right after argument bytes
    that look like a record's footer (what a torn tail must not be taken for)."""
    from notebookjobs import config, journal

    rng = random.Random(ns.seed)
    footer_like = rng.random() < 0.5
    args = ["torn", "AAAAAAAANJRE" if footer_like else "x" * rng.randint(1, 300)]
    record = journal.encode(journal.JOB, 1, 1, json.dumps({"args": args}).encode())
    cut = record.index(b"NJRE") + 4 if footer_like else rng.randrange(1, len(record))
    try:
        with journal.Journal(config.load_settings().db_path).locked() as fd:
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, record[:cut])
            os.kill(os.getpid(), signal.SIGKILL)
    except journal.NoBase:
        return 3  # no journal yet: nothing torn
    return 0


# --- the soak -------------------------------------------------------------------------------------


class Soak:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns
        self.rng = random.Random(ns.seed)
        self.dir = Path(tempfile.mkdtemp(prefix="nj-soak-"))
        self.root = self.dir / "project"
        self.effects = self.root / "effects"
        self.figures: dict[str, object] = {}
        self.notes: list[str] = []
        self.failed: list[str] = []
        self.workers: list[subprocess.Popen] = []
        self.tears = 0  #: records torn by a client SIGKILLed in the middle of its append
        self.victims = 0  #: clients SIGKILLed at a random moment while they dispatched

    # setup ----------------------------------------------------------------------------------------

    def setup(self) -> None:
        shutil.copytree(
            REPO / "jobs", self.root / "jobs", ignore=shutil.ignore_patterns("__pycache__")
        )
        shutil.copy(TESTS / "jobs_for_tests.py", self.root / "jobs" / "testing.py")
        self.effects.mkdir()
        (self.root / "whitelist.yaml").write_text(SOAK_WHITELIST)
        (self.dir / "tmp").mkdir()
        os.environ.update(NOTEBOOKJOBS_ROOT=str(self.root), NJ_TEST_EFFECTS=str(self.effects),
                          TMPDIR=str(self.dir / "tmp"), NOTEBOOKJOBS_LOCK_TIMEOUT="120")
        os.environ.pop("NOTEBOOKJOBS_DB", None)
        tempfile.tempdir = None
        os.chdir(self.root)

    def start_worker(self, *args: str, name: str) -> subprocess.Popen:
        with open(self.dir / f"worker-{name}.log", "wb") as log:  # the child keeps its copy
            proc = subprocess.Popen([sys.executable, "-m", "notebookjobs.worker", *args],
                                    cwd=self.root, stdout=log, stderr=subprocess.STDOUT)
        proc.log = self.dir / f"worker-{name}.log"  # type: ignore[attr-defined]
        self.workers.append(proc)
        return proc

    def wait_ready(self, proc: subprocess.Popen) -> bool:
        from notebookjobs import config
        from notebookjobs.access import remote
        settings = config.load_settings()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            if remote.worker_info(settings):
                return True
            time.sleep(0.02)
        return False

    def log_tail(self, proc: subprocess.Popen, lines: int = 6) -> str:
        text = Path(proc.log).read_text(errors="replace").strip().splitlines()  # type: ignore[attr-defined]
        return " | ".join(text[-lines:])

    # part 1: kills --------------------------------------------------------------------------------

    def start_clients(self) -> list[subprocess.Popen]:
        ns = self.ns
        plan = [("s1", "single", 0.03, ns.jobs // 6), ("s2", "single", 0.03, ns.jobs // 6),
                ("b1", "batch", 0.25, ns.jobs - 2 * (ns.jobs // 6))]
        return [self.start_client(*client) for client in plan]

    def start_client(self, name: str, mode: str, pause: float, quota: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, __file__, "client", "--name", name, "--mode", mode,
             "--pause", str(pause), "--quota", str(quota), "--seed", str(self.rng.random()),
             "--out", str(self.dir / f"client-{name}.txt"), "--stop", str(self.dir / "stop")],
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / f"client-{name}.err", "wb"),  # the child's
        )

    def tear(self) -> None:
        """A client killed in the middle of its record (``tear_main``)."""
        out = subprocess.run([sys.executable, __file__, "tear", "--seed", str(self.rng.random())],
                             cwd=self.root, capture_output=True, text=True, timeout=60)
        if out.returncode == -signal.SIGKILL:
            self.tears += 1
        elif out.returncode != 3:
            self.notes.append(f"the tearing client ended with {out.returncode}: "
                              f"{out.stderr.strip()[-200:]}")

    def start_querier(self) -> subprocess.Popen:
        """The process that runs heavy queries during the kill rounds (``query_main``)."""
        return subprocess.Popen(
            [sys.executable, __file__, "query", "--out", str(self.dir / "queries.txt"),
             "--stop", str(self.dir / "stop")], cwd=self.root, stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "queries.err", "wb"))  # the child's

    def check_queries(self) -> None:
        """Every heavy query ended with its frame or a clear error; none raw."""
        lines = [line.split() for line in
                 (self.dir / "queries.txt").read_text().splitlines()]
        outcomes = Counter(f"{kind} {outcome}" for kind, outcome, _ in lines)
        raws = sum(n for what, n in outcomes.items() if " raw:" in what)
        longest = max((float(took) for _, _, took in lines), default=0.0)
        self.figures.update(queries=len(lines), query_outcomes=dict(outcomes),
                            longest_query_s=round(longest, 1))
        err = (self.dir / "queries.err").read_text(errors="replace").strip()
        if err:
            self.notes.append(f"queries.err: {err.splitlines()[-1][:200]}")
        if not lines:
            self.failed.append("no heavy query ran during the kill rounds")
        if raws:
            self.failed.append(f"{raws} heavy queries ended with a raw error")

    def orphans(self) -> list[int]:
        """Pool children of this soak (spawned by multiprocessing) still alive."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes()
                cmdline = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if (
                f"NJ_TEST_EFFECTS={self.effects}".encode() in environ
                and b"multiprocessing" in cmdline
                and state not in ("Z", "X")
            ):
                found.append(int(entry.name))
        return found

    def kill_rounds(self) -> None:
        ns = self.ns
        clients = self.start_clients()
        querier = self.start_querier()
        start_failures, early_kills, orphans = 0, 0, 0
        started = time.monotonic()
        for round_ in range(ns.rounds):
            proc = self.start_worker("--concurrency", "2", name=f"round{round_:02d}")
            victim = self.start_client(f"k{round_:02d}", "single", 0.02, ns.jobs)
            if self.rng.random() < 0.2:  # at a random moment of its start
                time.sleep(self.rng.uniform(0.0, 0.8))
                early_kills += 1
            elif not self.wait_ready(proc):
                start_failures += 1
                self.notes.append(
                    f"round {round_}: the worker did not start: {self.log_tail(proc)}"
                )
            else:  # at a random moment of its work
                time.sleep(self.rng.uniform(0.2, 2.5))
            self.tear()  # journal tears: a record cut short, a client killed while dispatching
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            self.victims += victim.returncode == -signal.SIGKILL
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            deadline = time.monotonic() + 5
            while self.orphans() and time.monotonic() < deadline:
                time.sleep(0.05)
            left = self.orphans()
            orphans += len(left)
            for pid in left:  # ours: they must not run on into the next round
                os.kill(pid, signal.SIGKILL)
            print(
                f"  round {round_ + 1}/{ns.rounds} done ({time.monotonic() - started:.0f} s)",
                flush=True,
            )
        (self.dir / "stop").touch()
        for client in [*clients, querier]:
            client.wait(timeout=300)
        self.figures.update(
            rounds=ns.rounds,
            early_kills=early_kills,
            start_failures=start_failures,
            orphans=orphans,
            tears=self.tears,
            victims=self.victims,
        )
        # the drain
        drain = self.start_worker("--burst", "--concurrency", "2", name="drain")
        code: int | str
        try:
            code = drain.wait(timeout=ns.drain_timeout)
        except subprocess.TimeoutExpired:
            drain.kill()
            drain.wait()
            code = "timed out"
        if code != 0:
            self.notes.append(f"the --burst drain ended with {code}: {self.log_tail(drain)}")
        self.figures["drain"] = code

    def check_kills(self) -> None:
        import notebookjobs as nj

        acks: dict[int, str] = {}
        errors: Counter[str] = Counter()
        raws: Counter[str] = Counter()
        for path in self.dir.glob("client-*.txt"):
            for line in path.read_text().splitlines():
                kind, rest = line.split(" ", 1)
                if kind == "ack":
                    job_id, token = rest.split()
                    acks[int(job_id)] = token
                elif kind in ("err", "raw"):
                    (errors if kind == "err" else raws)[rest.split(" ", 3)[2].rstrip(":")] += 1
                    if kind == "raw" and len(self.notes) < 40:
                        self.notes.append(f"raw client error: {rest[:200]}")
        for path in self.dir.glob("client-*.err"):
            text = path.read_text(errors="replace").strip()
            if text:
                self.notes.append(f"{path.name}: {text.splitlines()[-1][:200]}")
        try:
            history = nj.history()
            counts = nj.counts()
        except Exception as exc:  # the queue must stay readable: this is a finding, not a crash
            self.failed.append(
                f"the queue is unreadable after the kills: {type(exc).__name__}: {exc}"
            )
            history, counts = None, {}
        rows = {}
        if history is not None:
            for job_id, args, status, attempts in zip(
                history["id"], history["args"], history["status"], history["attempts"], strict=True
            ):
                rows[int(job_id)] = (json.loads(args), str(status), int(attempts))
        lost = [i for i, token in acks.items() if i not in rows or rows[i][0][:1] != [token]]
        not_completed = Counter(rows[i][1] for i in acks if i in rows and rows[i][1] != "completed")
        tokens_stored = Counter(r[0][0] for r in rows.values() if r[0])
        twice_stored = sum(1 for n in tokens_stored.values() if n > 1)
        # the effects: start/end of every run
        runs: dict[str, list[list[int]]] = defaultdict(list)
        open_runs: dict[tuple[str, str], list[int]] = {}
        stamps = self.effects / "stamps.log"
        for line in (stamps.read_text().splitlines() if stamps.exists() else []):
            parts = line.split()
            if len(parts) != 4:
                continue
            what, token, pid, ns_ = parts
            if what == "start":
                run = [int(ns_), -1]
                runs[token].append(run)
                open_runs[(token, pid)] = run
            elif (token, pid) in open_runs:
                open_runs.pop((token, pid))[1] = int(ns_)
        overlapping = 0
        for token, intervals in runs.items():
            intervals.sort()
            for (_, end_a), (start_b, _) in itertools.pairwise(intervals):
                if end_a > start_b:  # the earlier run ended after the later one started
                    overlapping += 1
                    self.notes.append(f"job {token} ran twice at the same time")
                    break
        reran = sum(1 for r in runs.values() if len(r) > 1)
        extra_runs = sum(len(r) - 1 for r in runs.values() if len(r) > 1)
        never_ran = sum(1 for i, token in acks.items() if rows.get(i, (0, ""))[1] == "completed"
                        and token not in runs)
        stuck = counts.get("pending", 0) + counts.get("running", 0) if counts else "?"
        self.figures.update(dispatches=len(acks), jobs_in_queue=len(rows), lost=len(lost),
                            stuck=stuck, not_completed=dict(not_completed), overlapping=overlapping,
                            reran=reran, extra_runs=extra_runs, twice_stored=twice_stored,
                            never_ran=never_ran, clear_errors=dict(errors), raw_errors=dict(raws))
        if lost:
            self.failed.append(f"{len(lost)} acknowledged dispatches lost, e.g. ids {lost[:5]}")
        if stuck != 0:
            self.failed.append(f"{stuck} jobs stuck pending or running after the drain")
        if not_completed:
            self.failed.append(f"acknowledged jobs not completed: {dict(not_completed)}")
        if overlapping:
            self.failed.append(f"{overlapping} jobs ran twice at the same time")
        if raws:
            self.failed.append(f"clients got raw errors instead of clear ones: {dict(raws)}")
        if twice_stored:
            self.failed.append(f"{twice_stored} dispatches stored twice")
        if self.figures["orphans"]:
            self.failed.append(f"{self.figures['orphans']} pool children outlived a killed worker")
        if self.figures["drain"] != 0:
            self.failed.append(f"the drain ended with {self.figures['drain']}")

    # part 2: poison -------------------------------------------------------------------------------

    def poison(self) -> None:
        from hypothesis import given, settings

        import notebookjobs as nj
        from faults import poison
        from notebookjobs import config
        from notebookjobs.access import socketdir

        path = socketdir.socket_path(config.load_settings())
        state: dict[str, Any] = {
            "worker": self.start_worker("--concurrency", "2", name="poison"), "sent": 0,
            "alive": 0, "served": 0, "replies_ok": 0, "deaths": [], "restart_failed": False,
            "unstartable": 0}
        if not self.wait_ready(state["worker"]):
            self.failed.append(f"the poison worker did not start: {self.log_tail(state['worker'])}")
            state["restart_failed"] = True

        def restart(after: str) -> None:
            """Go on after a worker died or wedged; a queue no worker can open again is set
            aside (and counted), so the remaining messages still get a worker."""
            state["deaths"].append(after)
            state["worker"].kill()
            state["worker"].wait()
            for attempt in range(2):
                name = f"poison{len(state['deaths'])}-{attempt}"
                state["worker"] = self.start_worker("--concurrency", "2", name=name)
                if self.wait_ready(state["worker"]):
                    return
                self.notes.append(
                    f"no worker starts after {after}: {self.log_tail(state['worker'])}"
                )
                state["unstartable"] += 1
                state["worker"].kill()
                state["worker"].wait()
                folder = self.root / ".notebookjobs"
                folder.rename(self.root / f".notebookjobs.unstartable-{state['unstartable']}")
            state["restart_failed"] = True

        def after_each(what: str) -> None:
            """Worker alive, next client served (a fresh connection, then the API)."""
            worker = state["worker"]
            served = False
            if worker.poll() is None:
                state["alive"] += 1
                try:
                    with poison.RawClient(path, timeout=20) as fresh:
                        reply = poison.check_reply(fresh.ask(poison.line("counts")))
                    nj.counts()
                    served = reply is not None and "ok" in reply
                except Exception as exc:
                    self.notes.append(
                        f"client not served after {what}: {type(exc).__name__}: {_one_line(exc)}"
                    )
            if served:
                state["served"] += 1
            else:
                restart(what)

        def send(message: bytes) -> None:
            if state["restart_failed"]:
                return
            state["sent"] += 1
            what = poison.describe(message, 100)
            try:
                with poison.RawClient(path, timeout=20) as client:
                    poison.check_reply(client.ask(message))
                state["replies_ok"] += 1
            except Exception as exc:
                self.notes.append(f"bad reply to {what}: {type(exc).__name__}: {_one_line(exc)}")
            # a poison may surface when the loop next claims: let it go round once
            try:
                nj.wait(nj.dispatch("jobs.testing.ok", 1), timeout=10)
            except Exception:
                pass
            after_each(what)

        for make in poison.FORGERIES.values():
            send(make())
        count = max(0, self.ns.messages - len(poison.FORGERIES))

        # Hypothesis refuses max_examples=0 where the decorator is applied, called or not
        @settings(max_examples=max(1, count), **poison.SHARED_STATE)
        @given(message=poison.MESSAGES)
        def generated(message):
            send(message)

        if count:
            generated()
        # poison values through the API, and poison jobs
        import numpy as np
        values = [
            ("priority=2**40", lambda: nj.dispatch("jobs.testing.ok", 1, priority=2**40)),
            ("delay=1e12", lambda: nj.dispatch("jobs.testing.ok", 1, delay=1e12)),
            ("900-deep argument", lambda: nj.dispatch("jobs.testing.echo", _deep(900))),
            ("lone surrogate argument", lambda: nj.dispatch("jobs.testing.echo", "caf\udcff")),
            ("numpy id", lambda: nj.status(np.int64(1))),
            (
                "dispatch_many priority=2**40",
                lambda: nj.dispatch_many("jobs.testing.ok", [[1]], priority=2**40),
            ),
            *[
                (
                    f"job that puts a surrogate in its {w}",
                    (lambda w=w: nj.wait(nj.dispatch("jobs.testing.bad_text", w), timeout=60)),
                )
                for w in ("output", "error", "progress", "result")
            ],
        ]
        for what, call in values:
            if state["restart_failed"]:
                break
            state["sent"] += 1
            try:
                call()
            except nj.NotebookJobsError:
                pass
            except Exception as exc:
                self.notes.append(f"{what}: raw {type(exc).__name__}: {_one_line(exc)}")
            after_each(what)
        # the end: a stop and a new start that runs a job
        next_start = "not tried"
        if not state["restart_failed"]:
            worker = state["worker"]
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
                self.notes.append("the poison worker did not stop within 60 s of SIGTERM")
            fresh = self.start_worker("--concurrency", "2", name="after-poison")
            next_start = "failed"
            if self.wait_ready(fresh):
                try:
                    if nj.wait(nj.dispatch("jobs.testing.ok", 9), timeout=30)["result"] == 9:
                        next_start = "ok"
                except Exception as exc:
                    self.notes.append(f"after the poison: {type(exc).__name__}: {_one_line(exc)}")
            else:
                self.notes.append(f"no worker starts after the poison: {self.log_tail(fresh)}")
            fresh.send_signal(signal.SIGTERM)
            try:
                fresh.wait(timeout=60)
            except subprocess.TimeoutExpired:
                fresh.kill()
                fresh.wait()
        sent = state["sent"]
        self.figures.update(
            messages=sent,
            alive_after_each=f"{state['alive']}/{sent}",
            served_after_each=f"{state['served']}/{sent}",
            well_formed_replies=state["replies_ok"],
            worker_deaths=len(state["deaths"]),
            unstartable=state["unstartable"],
            next_start=next_start,
        )
        for death in state["deaths"][:8]:
            self.notes.append(f"the worker died or stopped serving after {death}")
        if sent < 100:
            self.failed.append(f"only {sent} malformed messages and poison values were sent")
        if state["deaths"] or state["alive"] != sent or state["served"] != sent:
            self.failed.append(
                f"the worker did not survive every message: {len(state['deaths'])} deaths"
            )
        if state["unstartable"]:
            self.failed.append(
                f"{state['unstartable']} times a message left a queue no worker could open"
            )
        if next_start != "ok":
            self.failed.append(f"the next start after the poison: {next_start}")

    # part 3: a nearly full disk -------------------------------------------------------------------

    def disk(self) -> None:
        """A queue on a real small disk filled to its last 256 KiB while a worker runs."""
        from faults.disks import can_mount, small_disk

        if not can_mount():
            self.figures["disk"] = "skipped: not root"
            self.notes.append("part 3 (a nearly full disk) needs root to mount a tmpfs")
            return
        os.environ["NOTEBOOKJOBS_DB"] = str(self.dir / "disk" / "queue.duckdb")
        try:
            with small_disk(self.dir / "disk", 8 * 1024 * 1024) as disk:
                try:
                    self._disk(disk)
                finally:
                    for proc in self.workers:  # none may hold the disk when it goes
                        if proc.poll() is None:
                            proc.kill()
                            proc.wait()
        finally:
            os.environ.pop("NOTEBOOKJOBS_DB", None)

    def _disk(self, disk: Any) -> None:
        import notebookjobs as nj

        acked: list[int] = []
        refused: Counter[str] = Counter()

        def dispatch(count: int) -> None:
            for i in range(count):
                large = self.rng.random() < 0.3  # 64 KiB of output to store at its end
                try:
                    job = (nj.dispatch("jobs.testing.noisy", 3000) if large
                           else nj.dispatch("jobs.testing.ok", i))
                except nj.NotebookJobsError as exc:
                    refused[type(exc).__name__] += 1
                except Exception as exc:  # a raw error where a clear one is due
                    refused[f"raw {type(exc).__name__}"] += 1
                    self.notes.append(f"disk: raw {type(exc).__name__}: {_one_line(exc)}")
                else:
                    acked.append(int(job))

        worker = self.start_worker("--concurrency", "2", name="disk")
        ready = self.wait_ready(worker)
        dispatch(40)
        disk.fill(leave=256 * 1024)  # room for small states and dispatches, for a while
        until = time.monotonic() + 8
        while time.monotonic() < until:  # dispatches while jobs end on the full disk
            dispatch(4)
            time.sleep(0.05)
        worker.kill()
        worker.wait()
        # a start on the full disk: it runs, or fails saying so; the queue stays openable
        again = self.start_worker("--concurrency", "2", name="disk-full-start")
        full_start = "started" if self.wait_ready(again) else "failed: " + self.log_tail(again, 1)
        if again.poll() is None:
            dispatch(10)
            again.kill()
            again.wait()
        disk.free()
        drain = self.start_worker("--burst", "--concurrency", "2", name="disk-drain")
        code: int | str
        try:
            code = drain.wait(timeout=self.ns.drain_timeout)
        except subprocess.TimeoutExpired:
            drain.kill()
            drain.wait()
            code = "timed out"
        try:
            history = nj.history()
            statuses = dict(zip(history["id"].astype(int), history["status"].astype(str),
                                strict=True))
        except Exception as exc:
            self.failed.append(f"disk: the queue is unreadable after the full disk: {exc}")
            statuses = {}
        lost = [i for i in acked if i not in statuses]
        ended = Counter(statuses[i] for i in acked if i in statuses)
        self.figures.update(disk_acked=len(acked), disk_refused=dict(refused),
                            disk_lost=len(lost), disk_ended=dict(ended), disk_drain=code,
                            disk_full_start=full_start, disk_first_start=ready)
        if lost:
            self.failed.append(f"disk: {len(lost)} acknowledged dispatches lost, e.g. {lost[:5]}")
        if set(ended) - {"completed"}:
            self.failed.append(f"disk: acknowledged jobs not completed: {dict(ended)}")
        if code != 0:
            self.failed.append(f"disk: the drain after the full disk ended with {code}: "
                               f"{self.log_tail(drain)}")
        if any(kind.startswith("raw") for kind in refused):
            self.failed.append(f"disk: raw errors to clients: {dict(refused)}")

    # the end --------------------------------------------------------------------------------------

    def cleanup(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for pid in self.orphans():
            os.kill(pid, signal.SIGKILL)
        if not self.ns.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def report(self) -> None:
        f = self.figures
        rows = [
            ("kill -9 rounds", f.get("rounds"), ">= 30"),
            ("  of them during the start", f.get("early_kills"), ""),
            ("  starts that failed", f.get("start_failures"), "0"),
            ("dispatches acknowledged", f.get("dispatches"), "thousands"),
            ("lost", f.get("lost"), "0"),
            ("stuck after the --burst drain", f.get("stuck"), "0"),
            ("acknowledged, not completed", f.get("not_completed") or 0, "0"),
            ("run twice at the same time", f.get("overlapping"), "0"),
            (
                "ran again (at-least-once)",
                f"{f.get('reran')} jobs, {f.get('extra_runs')} extra runs",
                "",
            ),
            ("stored twice", f.get("twice_stored"), "0"),
            ("pool children outliving the worker", f.get("orphans"), "0"),
            ("records torn by a client killed mid-append", f.get("tears"), ">= 1 a round"),
            ("clients SIGKILLed while dispatching", f.get("victims"), "1 a round"),
            ("clear errors to clients during kills", f.get("clear_errors") or 0, ""),
            ("raw errors to clients", f.get("raw_errors") or 0, "0"),
            ("heavy queries during the kill rounds", f.get("queries"), "> 0"),
            ("  their outcomes", f.get("query_outcomes") or {}, "frames or clear errors"),
            ("  longest call, s", f.get("longest_query_s"), f"~{QUERY_LIMIT_S:g} + a restart"),
            ("malformed messages + poison values", f.get("messages"), ">= 100"),
            ("worker alive after each", f.get("alive_after_each"), "all"),
            ("next client served after each", f.get("served_after_each"), "all"),
            ("worker deaths (restarted to go on)", f.get("worker_deaths"), "0"),
            ("  queues no worker could open again", f.get("unstartable"), "0"),
            ("stop, then next start runs a job", f.get("next_start"), "ok"),
            ("nearly full disk: dispatches acknowledged", f.get("disk_acked", f.get("disk")), ""),
            ("  refused with a clear error", f.get("disk_refused") or 0, ""),
            ("  lost", f.get("disk_lost"), "0"),
            ("  how they ended", f.get("disk_ended"), "all completed"),
            ("  a start on the full disk", f.get("disk_full_start"), "runs, or fails clearly"),
            ("  the drain after space is freed", f.get("disk_drain"), "0"),
        ]
        print()
        if self.notes:
            print("notes:")
            for note in self.notes[:40]:
                print(f"  - {note}")
            print()
        width = max(len(r[0]) for r in rows)
        print(f"{'SPEC §14 figure':<{width}}  {'value':<30}  target")
        print(f"{'-' * width}  {'-' * 30}  ------")
        for name, value, target in rows:
            print(f"{name:<{width}}  {value!s:<30}  {target}")
        print()
        print("RESULT:", "OK" if not self.failed else "FAILED")
        for failure in self.failed:
            print(f"  - {failure}")
        if self.ns.keep:
            print(f"(files kept in {self.dir})")


def _deep(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    client = sub.add_parser("client")
    for name, kind in (("--name", str), ("--mode", str), ("--pause", float), ("--quota", int),
                       ("--seed", float), ("--out", str), ("--stop", str)):
        client.add_argument(name, type=kind, required=True)
    sub.add_parser("tear").add_argument("--seed", type=float, required=True)
    querier = sub.add_parser("query")
    for name in ("--out", "--stop"):
        querier.add_argument(name, required=True)
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("SOAK_ROUNDS", "30")))
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("SOAK_JOBS", "6000")),
                        help="at most this many dispatches (the clients stop with the rounds)")
    parser.add_argument("--messages", type=int, default=int(os.environ.get("SOAK_MESSAGES", "150")))
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the soak's folder")
    ns = parser.parse_args(argv)
    if ns.command == "client":
        return client_main(ns)
    if ns.command == "tear":
        return tear_main(ns)
    if ns.command == "query":
        return query_main(ns)
    ns.seed = ns.seed if ns.seed is not None else random.randrange(10**6)
    soak = Soak(ns)
    print(f"soak: {ns.rounds} kill -9 rounds, up to {ns.jobs} jobs, {ns.messages} messages "
          f"(seed {ns.seed}) in {soak.dir}", flush=True)
    try:
        soak.setup()
        soak.kill_rounds()
        soak.check_kills()
        soak.check_queries()
        print("  poison messages...", flush=True)
        soak.poison()
        print("  a nearly full disk...", flush=True)
        soak.disk()
    except Exception as exc:  # report what we have, and fail
        import traceback
        traceback.print_exc()
        soak.failed.append(f"the soak itself stopped: {type(exc).__name__}: {exc}")
    finally:
        soak.cleanup()
    soak.report()
    return 1 if soak.failed else 0


if __name__ == "__main__":
    sys.exit(main())
