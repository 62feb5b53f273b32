"""Workflows as doors (SPEC §14, §16, §17): rows whose ``after`` was written by other means
(a dependency cycle among them), a tick whose arguments do not fit its target, notebook paths
that leave the project. Each fails alone, with a clear reason; the worker goes on."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest

import notebookjobs as nj
from notebookjobs import config
from support import TEST_WHITELIST, wait_until


def burst(project) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "notebookjobs.worker", "--burst"],
                          cwd=project.root, env=project.env(), capture_output=True, text=True,
                          timeout=300)


def test_forged_after_lists_in_the_file_fail_alone(project):
    # Given pending jobs, whose after lists are then rewritten in the file by other means: one
    # waits for a job that was deleted, two wait for each other (a cycle), one for the cycle
    gone, *ids = [nj.dispatch("jobs.testing.ok", i) for i in range(6)]
    missing, loop_a, loop_b, behind, plain = ids
    nj.counts()  # opens the queue file: the dispatches move from the journal into it
    conn = duckdb.connect(str(project.db))
    conn.execute("DELETE FROM queue WHERE id = ?", [gone])
    for job_id, after in ((missing, [gone]), (loop_a, [loop_b]), (loop_b, [loop_a]),
                          (behind, [loop_b])):
        conn.execute("UPDATE queue SET after = ? WHERE id = ?", [after, job_id])
    conn.close()
    # When a worker loads them
    out = burst(project)
    # Then it runs what it can and ends (nothing waits forever), each bad row cancelled alone
    assert out.returncode == 0, out.stderr[-3000:]
    errors = {job_id: (nj.status(job_id)["status"], nj.status(job_id)["error"]) for job_id in ids}
    assert errors[missing] == ("cancelled", f"dependency {gone} does not exist (a row written "
                               "by other means, or deleted); dispatch it again")
    # The cycle cannot hold: a job may only wait for an earlier one, so the earlier of the two
    # (waiting for a later one) is cancelled, and what waits for it with it
    assert errors[loop_a][1].startswith(f"dependency {loop_b} is not an earlier job")
    assert errors[loop_b] == ("cancelled", f"dependency {loop_a} cancelled")
    assert errors[behind] == ("cancelled", f"dependency {loop_b} cancelled")
    assert errors[plain] == ("completed", None)
    assert project.effect_lines("ok") == [str(ids.index(plain) + 1)]  # only the plain one ran


def test_a_dispatch_cannot_wait_for_itself_or_a_later_job(project, door):
    # A cycle needs a job waiting for one dispatched after it: the ids do not exist yet
    first = nj.dispatch("jobs.testing.ok", 1, delay=60)
    for after in ([first + 1], [first, first + 1], [2**40]):
        with pytest.raises(nj.InvalidArgumentsError, match="no job has id"):
            nj.dispatch("jobs.testing.ok", 2, after=after)
    assert sum(nj.counts().values()) == 1


def test_a_tick_whose_arguments_do_not_fit_fails_alone(project, start_worker):
    # Given a schedule that passes an argument its target does not take, and a good one
    project.write_whitelist(TEST_WHITELIST + "schedules:\n"
                            "  bad: {target: jobs.testing.ok, every: 1s, args: [1, 2, 3]}\n"
                            "  good: {target: jobs.testing.count, every: 1s, args: [good]}\n")
    # Then nj.schedules() says what will fail, before anything runs
    problems = nj.schedules().set_index("name")["problem"]
    assert "too many positional arguments" in problems["bad"] and problems["good"] == ""
    # When the worker runs their ticks
    worker = start_worker()
    wait_until(lambda: len(project.effect_lines("good")) >= 2, what="two good ticks")
    # Then the bad ticks fail with the reason, the good ones run, and the worker goes on
    page = nj.jobs(per_page=1000)
    bad = page[page["schedule"] == "bad"]
    assert len(bad) >= 1
    info = nj.wait(int(bad["id"].iloc[0]), timeout=30)
    assert info["status"] == "failed" and "TypeError" in info["error"]
    assert worker.proc.poll() is None


def test_a_notebook_job_with_forged_parameters_runs_nothing(project):
    # Given an allowed notebook job, whose parameters are then rewritten in the file
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("region = 'EU'")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("open('ran', 'w').write(region)")]
    (project.root / "notebooks").mkdir()
    nbformat.write(nb, project.root / "notebooks" / "n.ipynb")
    project.write_whitelist(TEST_WHITELIST + "allowed_notebooks: {notebooks/n.ipynb: "
                            "{retry_attempts: 0}}\n")
    job = nj.dispatch("notebooks/n.ipynb", region="US")
    nj.counts()  # opens the queue file: a dispatch still in the journal moves into it
    conn = duckdb.connect(str(project.db))
    conn.execute("UPDATE queue SET kwargs = ? WHERE id = ?", ['{"regoin": "x"}', job])
    conn.close()
    # When a worker runs it
    assert burst(project).returncode == 0
    # Then it is refused where it runs, naming the parameters, and no kernel ran a cell
    info = nj.status(job)
    assert info["status"] == "failed"
    assert info["error"].startswith("refused: got an unexpected keyword argument 'regoin'")
    assert not (project.root / "notebooks" / "ran").exists()


@pytest.mark.parametrize("path", ["../outside.ipynb", "/etc/passwd.ipynb", "notebooks/x.py",
                                  "notebooks/../../x.ipynb", ".hidden/x.ipynb", "a\\b.ipynb"])
def test_a_notebook_path_outside_the_project_is_a_config_error(project, path):
    project.write_whitelist(TEST_WHITELIST + f"allowed_notebooks:\n  '{path}': {{}}\n")
    with pytest.raises(nj.ConfigError, match="allowed_notebooks"):
        config.load_settings()


def test_a_notebook_linked_from_outside_the_project_is_refused(project, tmp_path):
    # Given an allowed notebook path that is a symbolic link to a file outside the project
    outside = tmp_path / "secret.ipynb"
    outside.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    (project.root / "notebooks").mkdir()
    os.symlink(outside, project.root / "notebooks" / "linked.ipynb")
    project.write_whitelist(TEST_WHITELIST + "allowed_notebooks: {notebooks/linked.ipynb: {}}\n")
    # Then it is refused at dispatch, and nothing is stored
    with pytest.raises(nj.ConfigError, match="outside"):
        nj.dispatch("notebooks/linked.ipynb")
    assert sum(nj.counts().values()) == 0
