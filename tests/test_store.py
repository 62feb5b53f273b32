"""The DuckDB store: schema version and migrations, guarded transitions, the file lock, one SQL
module."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

import notebookjobs as nj
from notebookjobs import store
from notebookjobs.errors import JobStateError, StorageError
from notebookjobs.model import transitions
from notebookjobs.model.records import JobSpec, Outcome, OutcomeKind, RetryPolicy, utcnow
from notebookjobs.store import columns
from support import change_job, locked_store, open_queue

PACKAGE = Path(nj.__file__).parent


VERSION = "SELECT value FROM meta WHERE key = 'schema_version'"
INBOX_EXISTS = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'inbox'"


def _one(conn: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """The single value a query of the test's own selects."""
    row = conn.execute(sql).fetchone()
    assert row is not None, sql
    return row[0]


def test_only_store_speaks_sql():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "store":
            continue
        text = path.read_text()
        if re.search(r"^\s*(import duckdb|from duckdb)", text, re.M):
            offenders.append(path.name)
        # a string that starts with an SQL statement and is executed
        if re.search(
            r"\.(execute|executemany|sql)\(\s*f?[\"']+\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|WITH)\b",
            text,
        ):
            offenders.append(path.name)
    assert offenders == []
    # Inside the store, the statements are in queries.sql, each named
    assert len(store.sql.QUERIES) >= 10 and all(q.strip() for q in store.sql.QUERIES.values())


def test_new_file_gets_the_current_schema_version(project):
    open_queue()
    conn = duckdb.connect(str(project.db))
    try:
        version = _one(conn, "SELECT value FROM meta WHERE key = 'schema_version'")
        assert int(version) == store.SCHEMA_VERSION
        assert {
            r[0]
            for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
        } >= {"queue", "meta", "jobs"}
    finally:
        conn.close()


def test_a_file_from_a_newer_version_is_refused(project):
    open_queue()
    conn = duckdb.connect(str(project.db))
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(
        StorageError, match="schema version 99, newer than this notebookjobs understands"
    ):
        nj.counts()


def test_an_older_file_is_migrated_and_keeps_its_jobs(project, monkeypatch):
    job_id = nj.dispatch("jobs.testing.ok", 5)
    # Given a file whose schema is one step behind (a new step appended to the migrations)
    monkeypatch.setitem(store.schema.MIGRATIONS, store.schema.SCHEMA_VERSION + 1,
                        "ALTER TABLE queue ADD COLUMN IF NOT EXISTS tags VARCHAR;")
    monkeypatch.setattr(store.schema, "SCHEMA_VERSION", store.schema.SCHEMA_VERSION + 1)
    # When it is opened by the newer package
    assert nj.status(job_id)["args"] == [5]
    # Then the step ran once and the version moved on
    conn = duckdb.connect(str(project.db))
    try:
        assert _one(conn, VERSION) == str(store.schema.SCHEMA_VERSION)
        assert "tags" in [r[0] for r in conn.execute("DESCRIBE queue").fetchall()]
    finally:
        conn.close()


def test_transitions_are_guarded(project):
    job_id = nj.dispatch("jobs.testing.ok")
    ok = Outcome(kind=OutcomeKind.SUCCEEDED, result=1)
    with pytest.raises(JobStateError, match=f"job {job_id} is pending, not running"):
        change_job(job_id, lambda job: transitions.settle(job, ok, utcnow()))
    job = change_job(job_id, lambda job: transitions.start(job, "w", utcnow()))
    assert job.status == "running" and job.attempts == 1
    with pytest.raises(JobStateError, match="is running, not pending"):
        change_job(job_id, lambda job: transitions.start(job, "w", utcnow()))
    assert (
        change_job(job_id, lambda job: transitions.settle(job, ok, utcnow())).status == "completed"
    )
    assert nj.status(job_id)["result"] == 1
    assert nj.cancel(job_id) is False


def test_a_save_is_guarded_by_the_status_it_read(project):
    # Given a job read as pending, then started by someone else
    job_id = nj.dispatch("jobs.testing.ok")
    with locked_store() as job_store:
        stale = job_store.get(job_id)
    change_job(job_id, lambda job: transitions.start(job, "w", utcnow()))
    # When the stale copy is cancelled and saved, the store refuses it
    with locked_store() as job_store, pytest.raises(JobStateError, match="is running, not pending"):
        job_store.save(transitions.cancel(stale, utcnow()), stale.status)
    assert nj.status(job_id)["status"] == "running"


def test_a_failed_transaction_changes_nothing(project):
    job_id = nj.dispatch("jobs.testing.ok")
    with pytest.raises(RuntimeError), locked_store() as job_store:
        job_store.save(transitions.start(job_store.get(job_id), "w", utcnow()), "pending")
        raise RuntimeError("interrupted")
    assert nj.counts()["pending"] == 1 and nj.counts()["running"] == 0


HOLDER = """
import sys
from notebookjobs import config
from notebookjobs.access import lock
settings = config.load_settings()
fd = lock.open_lock(settings.lock_path)
lock.wait(fd, 5, lambda: lock.busy(settings))
print("locked", flush=True)
sys.stdin.readline()
"""


def test_a_client_waits_for_the_lock_then_gives_up_clearly(project):
    open_queue()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], env=project.env(), cwd=project.root,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        env = project.env() | {"NOTEBOOKJOBS_LOCK_TIMEOUT": "0.3"}
        out = subprocess.run([sys.executable, "-m", "notebookjobs", "list"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1
        assert "stayed locked by another process for 0.3 s" in out.stderr
        assert "NOTEBOOKJOBS_LOCK_TIMEOUT" in out.stderr
    finally:
        holder.communicate("\n", timeout=30)
    assert project.cli("list").returncode == 0


def test_rows_are_read_by_column_name_in_whatever_order_they_are_selected(project):
    # Given a stored job with cells of every kind (JSON, times, a list column, nulls)
    now = utcnow()
    spec = JobSpec(target="jobs.testing.ok", args=[1, {"a": [2]}], kwargs={"k": None},
                   priority=3, run_at=now, policy=RetryPolicy(), after=(1,))
    job = transitions.pending(7, spec, now).evolve(
        errors=[{"attempt": 1, "at": now.isoformat(), "error": "boom"}], ran_on=["local"])
    with locked_store() as job_store:
        job_store.insert([job])
        stored = job_store.get(7)
        # When a statement selects the columns in another order, then the job is the same
        names = ", ".join(reversed(columns.NAMES))
        result = job_store.conn.execute(f"SELECT {names} FROM queue WHERE id = 7")
        assert columns.jobs_from_rows(result.description, result.fetchall()) == [stored]
        # And one that selects other columns is refused, not read into a wrong job
        result = job_store.conn.execute("SELECT id, target, id AS status FROM queue")
        with pytest.raises(ValueError, match="are not jobs"):
            columns.jobs_from_rows(result.description, result.fetchall())
    assert (stored.args, stored.errors[0]["error"], stored.after) == ([1, {"a": [2]}], "boom", [1])


def test_a_version_1_file_is_migrated(project):
    # Given a queue file as version 1 made it (no inbox table), with a job in it
    job_id = nj.dispatch("jobs.testing.ok", 7)
    nj.counts()  # opens the queue file: the dispatch moves from the journal into it
    conn = duckdb.connect(str(project.db))
    conn.execute("DROP TABLE IF EXISTS inbox")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.close()
    # When this package opens it, then it is migrated and works as before
    assert nj.status(job_id)["args"] == [7]
    assert nj.dispatch("jobs.testing.ok", 8) > job_id
    conn = duckdb.connect(str(project.db))
    try:
        assert _one(conn, VERSION) == str(store.SCHEMA_VERSION)
        assert not _one(conn, INBOX_EXISTS)
    finally:
        conn.close()


def test_a_version_4_file_keeps_what_an_older_migration_left_in_its_inbox(project):
    # Given a version 4 file whose migration by round 2's notebookjobs died after it set the
    # version and before it drained the inbox (two steps then): an acknowledged dispatch left
    first = nj.dispatch("jobs.testing.ok", 7)
    nj.counts()  # opens the queue file: the dispatch moves from the journal into it
    conn = duckdb.connect(str(project.db))
    conn.execute("CREATE TABLE IF NOT EXISTS inbox (id BIGINT NOT NULL, job VARCHAR NOT NULL)")
    conn.execute("INSERT INTO inbox VALUES (?, ?)", [first + 1, json.dumps({
        "target": "jobs.testing.ok", "args": [8], "kwargs": {}, "priority": 0,
        "max_attempts": 1, "retry_delay": 0.0, "retry_backoff": 1.0, "timeout": None,
        "created_at": "2026-11-28T14:00:00", "run_at": "2026-11-28T14:00:00"})])
    conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    conn.close()
    # When this package opens it, then the dispatch is a pending job (it was ignored, as lost),
    # and the inbox is gone with its rows moved
    assert nj.status(first + 1)["status"] == "pending"
    assert nj.status(first + 1)["args"] == [8]
    assert nj.dispatch("jobs.testing.ok", 9) == first + 2
    conn = duckdb.connect(str(project.db))
    try:
        assert _one(conn, VERSION) == str(store.SCHEMA_VERSION)
        assert not _one(conn, INBOX_EXISTS)
    finally:
        conn.close()


def test_a_version_2_file_keeps_the_dispatches_its_inbox_held(project):
    # Given a queue file of version 2 whose worker died with three acknowledged dispatches in
    # its inbox (one of them written by other means), made with that version's SQL
    project.db.parent.mkdir(mode=0o700)
    conn = duckdb.connect(str(project.db))
    for script in (store.schema.MIGRATIONS[1], store.schema.MIGRATIONS[2],
                   (Path(__file__).parent / "data" / "queue_v2_inbox.sql").read_text()):
        conn.execute(script)
    conn.close()
    # When this package opens it, then the migration moved them into the queue, once
    assert [nj.status(i)["status"] for i in (1, 2, 3, 4)] == [
        "completed", "pending", "pending", "failed"]
    kept = nj.status(2)
    assert (kept["args"], kept["priority"], kept["max_attempts"]) == ([7], 5, 3)
    assert kept["run_at"] == datetime(2026, 11, 28, 14, 5, tzinfo=UTC)
    assert nj.status(3)["kwargs"] == {"b": 1}
    # And the unreadable one failed alone, saying why and what to do
    assert "args" in nj.status(4)["error"] and "dispatch it again" in nj.status(4)["error"]
    # And the ids go on after theirs, and nothing is left to drain
    assert nj.dispatch("jobs.testing.ok", 9) == 5
    conn = duckdb.connect(str(project.db))
    try:
        assert _one(conn, VERSION) == str(store.SCHEMA_VERSION)
        assert not _one(conn, INBOX_EXISTS)
        assert _one(conn, "SELECT count(*) FROM queue") == 4
    finally:
        conn.close()


def test_the_workers_connection_gives_memory_back_while_idle(project):
    # DuckDB's allocator returns freed pages only as it allocates more, unless its own threads
    # do it: the worker's lifelong connection turns them on, or an idle worker would keep what
    # its last commits used (SPEC §13)
    db = store.Database(project.db)
    try:
        assert _one(db.conn, "SELECT current_setting('allocator_background_threads')") is True
    finally:
        db.close()


def _opens_in_another_process(db: Path) -> int:
    """The jobs another process sees when it opens the file read-write (DuckDB refuses while
    this process still holds it)."""
    code = ("import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
            "print(c.execute('SELECT count(*) FROM queue').fetchone()[0])")
    out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True,
                         check=True)
    return int(out.stdout)


def test_a_client_open_lets_the_file_go_checkpointed_and_keeps_its_instance(project):
    """With no worker each call opens the file, attached to a DuckDB instance this process keeps
    (store.hosts), and lets it go after: another process can open it at once, and the change is
    in the file itself (no WAL left), as when each call made and closed an instance."""
    ids = nj.dispatch_many("jobs.testing.echo", [("a",), ("b",)])
    assert nj.counts()["pending"] == 2  # opened: the journal's two jobs moved into the file
    assert not Path(f"{project.db}.wal").exists()
    assert _opens_in_another_process(project.db) == 2
    host = store.hosts._hosts[str(project.db)]
    assert nj.cancel(ids[0]) is True
    assert nj.status(ids[0])["status"] == "cancelled"
    assert store.hosts._hosts[str(project.db)] is host  # the same instance, attached again
    assert _opens_in_another_process(project.db) == 2


def test_a_file_duckdb_cannot_open_is_a_storage_error_and_the_next_open_works(project):
    open_queue()
    project.db.write_bytes(b"not a database" * 1000)
    with pytest.raises(StorageError, match="cannot open the queue database"):
        nj.counts()
    project.db.unlink()
    assert nj.counts()["pending"] == 0


def test_idle_instances_kept_for_short_opens_are_bounded(tmp_path):
    paths = [tmp_path / f"q{i}" / "queue.duckdb" for i in range(store.hosts.KEPT_IDLE + 3)]
    for path in paths:
        with store.transaction(path) as job_store:
            assert job_store.counts()["pending"] == 0
    kept = [p for p in paths if str(p) in store.hosts._hosts]
    assert kept == paths[-store.hosts.KEPT_IDLE:]  # the most recently used


def test_rows_become_jobs_with_values_of_their_own(project):
    # jobs_from_rows makes "[]" and "{}" without the parser: still a new value for each job
    jobs = nj.dispatch_many("jobs.testing.echo", [(), (), ("x",)])
    with store.transaction(project.db) as job_store:
        loaded = {job.id: job for job in job_store.active_jobs()}
    first, second, third = (loaded[int(j)] for j in jobs)
    assert first.args == second.args == [] and first.kwargs == second.kwargs == {}
    assert first.args is not second.args and first.kwargs is not second.kwargs
    assert first.errors is not second.errors
    assert third.args == ["x"] and third.created_at.tzinfo is not None


def test_the_worker_gives_memory_back_and_keeps_its_limit(project):
    # The shed lowers DuckDB's memory limit, then sets it back by value: a RESET left DuckDB
    # 1.2's buffer pool at the low limit (`make floors` runs that version), and the next read
    # larger than it failed "Out of Memory".
    nj.dispatch_many("jobs.testing.echo", [("x" * 200,)] * 50_000)
    nj.counts()
    db = store.Database(project.db)
    try:
        db.shed_memory()
        limit = _one(db.conn, "SELECT current_setting('memory_limit')")
        for _ in range(3):  # set back to the limit read at the start, not one read back
            db.shed_memory()
        assert _one(db.conn, "SELECT current_setting('memory_limit')") == limit != "3.8 MiB"
        rows = db.conn.execute("SELECT id, args FROM queue ORDER BY args DESC, id").fetchall()
        assert len(rows) == 50_000
    finally:
        db.close()
