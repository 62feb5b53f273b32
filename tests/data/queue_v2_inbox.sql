-- The rows of a queue file of schema version 2 with dispatches in its inbox, as notebookjobs
-- wrote them before the dispatch journal (JobStore.put_in_inbox, then Inbox.put): a worker
-- acknowledged jobs 2, 3 and 4 and died before its group commit moved them into the queue.
-- The tables are those of store/schema.py's MIGRATIONS[1] and [2], made first by the test
-- (tests/test_store.py); kept as test data for the migration that drains the inbox.
INSERT INTO meta VALUES ('schema_version', '2');
SELECT nextval('job_ids') FROM range(4);
INSERT INTO queue VALUES (1, 'jobs.testing.ok', '[1]', '{}', 'completed', 0, 1, 1, 5.0, 1.0,
    NULL, '2026-11-28 14:00:00', '2026-11-28 14:00:00', '2026-11-28 14:00:01',
    '2026-11-28 14:00:02', NULL, '2', 'out', NULL, NULL, NULL, false);
-- JobStore.put_in_inbox's row: the dispatch's fields, times naive UTC
INSERT INTO inbox VALUES (2, '{"target": "jobs.testing.ok", "args": [7], "kwargs": {}, "priority": 5, "run_at": "2026-11-28T14:05:00", "created_at": "2026-11-28T14:05:00", "max_attempts": 3, "retry_delay": 2.0, "retry_backoff": 1.5, "timeout": 60.0}');
-- Inbox.put's row: the whole job (columns.job_to_json)
INSERT INTO inbox VALUES (3, '{"id": 3, "target": "jobs.testing.ok", "args": [8], "kwargs": {"b": 1}, "status": "pending", "priority": 0, "attempts": 0, "max_attempts": 1, "created_at": "2026-11-28T14:06:00", "run_at": "2026-11-28T14:06:00", "started_at": null, "finished_at": null, "error": null, "result": null, "output": null, "progress": null, "progress_message": null, "retry_delay": 5.0, "retry_backoff": 1.0, "timeout": null, "worker": null, "cancel_requested": false}');
-- a row written by other means: its arguments are not a list
INSERT INTO inbox VALUES (4, '{"target": "jobs.testing.ok", "args": "oops", "kwargs": {}, "priority": 0, "run_at": "2026-11-28T14:07:00", "created_at": "2026-11-28T14:07:00", "max_attempts": 1, "retry_delay": 5.0, "retry_backoff": 1.0, "timeout": null}');
