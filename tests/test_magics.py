"""The %jobs magic in a real IPython shell (no kernel), against a real queue in tmp_path."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from notebookjobs import client
from notebookjobs.errors import WorkerError


@pytest.fixture
def shell(project, tmp_path, monkeypatch):
    """An InteractiveShell with ``%load_ext notebookjobs`` run, history off, its own IPYTHONDIR."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    config = Config()
    config.HistoryManager.enabled = False  # no sqlite history file or its writer thread
    ip = InteractiveShell.instance(config=config)
    result = ip.run_cell("%load_ext notebookjobs")
    assert result.success
    yield ip
    InteractiveShell.clear_instance()


def run(ip: InteractiveShell, line: str):
    """Run one cell; the magic never raises, so the cell always succeeds."""
    result = ip.run_cell(line)
    assert result.error_before_exec is None and result.error_in_exec is None
    return result.result


def one_error_line(capsys) -> str:
    """The single line a refused %jobs printed on stderr (and no traceback anywhere)."""
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_dispatch_returns_the_id_and_binds_keywords(shell, capsys):
    assert run(shell, "%jobs dispatch jobs.testing.ok 5") == 1
    assert "Out" in capsys.readouterr().out  # the id is the cell's value, so it is shown

    job_id = run(shell, "%jobs dispatch jobs.testing.fail message=hi --priority 2 --delay 30")
    info = client.status(job_id)
    assert (info["args"], info["kwargs"], info["priority"]) == ([], {"message": "hi"}, 2)
    assert (info["run_at"] - info["created_at"]).total_seconds() == pytest.approx(30, abs=1)

    # Options may come before the target too
    job_id = run(shell, "%jobs dispatch --priority 4 jobs.testing.ok 3")
    assert client.status(job_id)["args"] == [3] and client.status(job_id)["priority"] == 4
    assert shell.run_line_magic("jobs", "dispatch jobs.testing.echo 'a b' key=1") == 4
    # echo takes **kwargs: any name=value is a keyword for it
    assert (client.status(4)["args"], client.status(4)["kwargs"]) == (["a b"], {"key": "1"})
    # ... and between the values
    job_id = run(shell, "%jobs dispatch jobs.testing.echo a --priority 3 -2 b")
    assert client.status(job_id)["args"] == ["a", "-2", "b"]
    assert client.status(job_id)["priority"] == 3


def test_list_status_cancel_retry(shell, capsys):
    first = run(shell, "%jobs dispatch jobs.testing.ok 1")
    second = run(shell, "%jobs dispatch jobs.testing.ok 2")
    capsys.readouterr()

    frame = run(shell, "%jobs list")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["id"]) == [second, first] and frame.attrs["total"] == 2
    assert "page 1 of 1 (2 jobs)" in capsys.readouterr().out

    run(shell, f"%jobs status {first}")
    out = capsys.readouterr().out
    assert "status: pending" in out and "target: jobs.testing.ok" in out

    run(shell, f"%jobs cancel {first}")
    assert f"job {first} cancelled" in capsys.readouterr().out
    assert client.status(first)["status"] == "cancelled"
    run(shell, f"%jobs cancel {first}")
    assert "nothing to cancel" in one_error_line(capsys)

    frame = run(shell, "%jobs list --status cancelled")
    assert list(frame["id"]) == [first]
    assert "page 1 of 1 (1 job, cancelled)" in capsys.readouterr().out

    new = run(shell, f"%jobs retry {first}")
    assert new == 3 and client.status(new)["status"] == "pending"
    frame = run(shell, "%jobs list --page 2 --per-page 2")
    assert list(frame["id"]) == [first]


def test_worker_subcommands(shell, capsys, monkeypatch):
    monkeypatch.setattr(client, "worker_status", lambda: {
        "running": False, "pid": None, "concurrency": None, "started_at": None, "jobs": []})
    run(shell, "%jobs worker status")
    assert capsys.readouterr().out == "worker: not running\n"  # as `notebookjobs worker status`

    def refuse(concurrency=None, log_level=None, dask=None):
        raise WorkerError("cannot start the worker; see logs/worker.log")

    monkeypatch.setattr(client, "start_worker", refuse)
    run(shell, "%jobs worker start")
    assert "cannot start the worker; see logs/worker.log" in one_error_line(capsys)
    started = []

    def start(concurrency=None, log_level=None, dask=None):
        started.append((concurrency, log_level, dask))
        return 4242

    monkeypatch.setattr(client, "start_worker", start)
    monkeypatch.setattr(client, "stop_worker", lambda: False)
    run(shell, "%jobs worker start")
    run(shell, "%jobs worker stop")
    run(shell, "%jobs worker restart --concurrency 3 --log-level debug --dask tcp://h:8786")
    assert capsys.readouterr().out.splitlines() == [
        "worker running (pid 4242); its log is logs/worker.log", "no worker was running",
        "no worker was running", "worker running (pid 4242); its log is logs/worker.log"]
    assert started == [(None, None, None), (3, "DEBUG", "tcp://h:8786")]
    run(shell, "%jobs worker status --json")
    assert json.loads(capsys.readouterr().out)["running"] is False
    run(shell, "%jobs --version")
    assert capsys.readouterr().out.startswith("notebookjobs ")


@pytest.mark.parametrize("line, expected", [
    ("%jobs frobnicate", "unknown command 'frobnicate'"),
    ("%jobs dispatch jobs.testing.nope", "'jobs.testing.nope' is not allowed"),
    ("%jobs dispatch os.system ls", "'os.system' is not allowed"),
    ("%jobs dispatch jobs.testing.ok notanint", "value: 'notanint' is not accepted; expected int"),
    ("%jobs dispatch jobs.testing.ok 1 2", "too many positional arguments"),
    ("%jobs dispatch", "the following arguments are required: target"),
    ("%jobs dispatch jobs.testing.ok --priority high", "invalid int value: 'high'"),
    ("%jobs status abc", "argument id: invalid int value: 'abc'"),
    ("%jobs status 99", "no job has id 99"),
    ("%jobs cancel", "the following arguments are required: id"),
    ("%jobs retry 1", "no job has id 1"),
    ("%jobs dispatch jobs.testing.ok 1 --colour red", "unrecognized arguments: --colour"),
    ("%jobs list --status nope", "invalid choice: 'nope'"),
    ("%jobs worker reboot", "invalid choice: 'reboot'"),
    ("%jobs dispatch jobs.testing.ok 'unclosed", "cannot read the line"),
])
def test_bad_input_prints_one_line_and_no_traceback(shell, capsys, line, expected):
    assert run(shell, line) is None
    message = one_error_line(capsys)
    assert message.startswith("%jobs") and expected.lower() in message.lower()
    assert client.jobs().attrs["total"] == 0


def test_help(shell, capsys):
    run(shell, "%jobs --help")
    assert "usage: %jobs" in capsys.readouterr().out
    run(shell, "%jobs dispatch --help")
    out, err = capsys.readouterr()
    assert "--priority" in out and "Traceback" not in out + err


def test_bare_jobs_shows_the_dashboard(shell, capsys):
    from ipywidgets.widgets.widget import _instances

    from notebookjobs.dashboard import Dashboard

    before = {id(w) for w in _instances.values()}
    assert run(shell, "%jobs") is None
    shown = [w for w in list(_instances.values())
             if isinstance(w, Dashboard) and id(w) not in before]
    try:
        assert len(shown) == 1
        assert "Dashboard(" in capsys.readouterr().out  # display() without a frontend: the repr
    finally:
        for dash in shown:
            dash.close()
