"""A user's own project (issue 12): ``init``, jobs that run in the project root, durations
everywhere, ``--json`` for scripts, ``--version``, ``worker restart`` and its log level,
discovery beyond ``jobs/``, and the word that no worker will run a job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

import notebookjobs as nj
from notebookjobs import cli, client
from notebookjobs.config import load_settings
from notebookjobs.errors import ConfigError
from support import wait_until


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the test project's variables: what a user's shell has."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTEBOOKJOBS_ROOT", "NOTEBOOKJOBS_DB", "NOTEBOOKJOBS_LOG_LEVEL")}
    return {**env, **extra}


def notebookjobs(*args: str, cwd: Path, env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "notebookjobs", *args], cwd=cwd,
                          env=env or clean_env(), capture_output=True, text=True, timeout=120)


def burst_worker(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "notebookjobs.worker", "--burst"], cwd=cwd,
                          env=env or clean_env(), capture_output=True, text=True, timeout=120)


# --- init -------------------------------------------------------------------------------------

def test_init_in_an_empty_folder_then_dispatch_and_a_burst_worker_there(tmp_path):
    # Given an empty folder, outside any project
    folder = tmp_path / "myproject"
    # When a pip user runs `notebookjobs init` there
    out = notebookjobs("init", "myproject", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for name in ("whitelist.yaml", "jobs/__init__.py", "jobs/example.py",
                 "notebooks/dashboard.ipynb"):
        assert (folder / name).is_file(), name
    whitelist = folder / "whitelist.yaml"
    assert "# " in whitelist.read_text()  # commented for the reader
    # (autostart off, so that the burst worker below is the one that runs them)
    whitelist.write_text(whitelist.read_text().replace("autostart: true", "autostart: false"))
    # Then every example job the whitelist allows runs with its defaults, dispatched from a
    # subfolder (with the CLI) and run by a burst worker started in another subfolder
    ids = []
    for target in ("jobs.example.count_lines", "jobs.example.countdown",
                   "jobs.example.Report.build"):
        out = notebookjobs("dispatch", target, cwd=folder / "notebooks")
        assert out.returncode == 0, out.stderr
        ids.append(int(out.stdout))
    (folder / "jobs" / "sub").mkdir()
    worker = burst_worker(folder / "jobs" / "sub")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    for job_id in ids:
        out = notebookjobs("status", str(job_id), "--json", cwd=folder)
        info = json.loads(out.stdout)
        assert info["status"] == "completed", info
    lines = len((folder / "whitelist.yaml").read_text().splitlines())
    assert json.loads(notebookjobs("status", str(ids[0]), "--json", cwd=folder).stdout)[
        "result"] == lines  # the relative default path was read from the root
    # ... and the one method not allowed is listed, with the line that would allow it
    rows = json.loads(notebookjobs("jobs", "--json", cwd=folder).stdout)
    publish = next(r for r in rows if r["target"] == "jobs.example.Report.publish")
    assert not publish["allowed"] and "- publish" in publish["allow_hint"]


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "example.py").write_text("# mine\n")
    out = notebookjobs("init", cwd=tmp_path)
    assert out.returncode == 2
    assert "already has jobs/example.py" in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1
    assert (tmp_path / "jobs" / "example.py").read_text() == "# mine\n"
    assert not (tmp_path / "whitelist.yaml").exists()


# --- the working directory of jobs (SPEC §12) ---------------------------------------------

PATHS_MODULE = '''\
import os


def read(path: str) -> str:
    with open(path) as file:
        return file.read()


def where() -> str:
    os.chdir("/")  # a job that moves away does not move the next one
    return "moved"


def here() -> str:
    return os.getcwd()
'''


@pytest.fixture
def paths_project(project):
    (project.root / "jobs" / "paths.py").write_text(PATHS_MODULE)
    (project.root / "data").mkdir()
    (project.root / "data" / "sales.csv").write_text("region,total\nEU,3\n")
    (project.root / "notebooks").mkdir()
    project.write_whitelist("retry_attempts: 0\nworker: {autostart: false, concurrency: 1}\n"
                            "allowed_jobs: {jobs.paths: [read, where, here]}\n")
    return project


def test_relative_paths_from_a_worker_started_in_a_subfolder(paths_project):
    # Given a worker started from notebooks/ (as autostart from a notebook would)
    ids = [nj.dispatch("jobs.paths.read", "data/sales.csv"), nj.dispatch("jobs.paths.where"),
           nj.dispatch("jobs.paths.here")]
    worker = burst_worker(paths_project.root / "notebooks", env=paths_project.env())
    assert worker.returncode == 0, worker.stderr
    # Then a path relative to the project root means the root, before and after a job that
    # changed its own directory
    first, moved, here = (nj.status(i) for i in ids)
    assert first["status"] == "completed", first["error"]
    assert first["result"] == "region,total\nEU,3\n"
    assert moved["result"] == "moved"
    assert here["result"] == str(paths_project.root)


def test_run_in_the_foreground_runs_in_the_root_and_gives_the_caller_its_folder_back(
        paths_project, monkeypatch):
    sub = paths_project.root / "notebooks"
    monkeypatch.chdir(sub)
    info = client.run_now("jobs.paths.read", ["data/sales.csv"], {}, echo=False)
    assert info["status"] == "completed", info["error"]
    assert os.getcwd() == str(sub)
    # and from the CLI, in a subfolder
    out = subprocess.run([sys.executable, "-m", "notebookjobs", "run", "jobs.paths", "here"],
                         cwd=sub, env=paths_project.env(), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert f'completed after 1 attempt: "{paths_project.root}"' in out.stdout


# --- durations (SPEC §6) --------------------------------------------------------------------

def test_cli_delay_and_whitelist_durations_take_strings(project):
    out = project.cli("dispatch", "jobs.testing.ok", "--delay", "1h30m")
    assert out.returncode == 0, out.stderr
    info = nj.status(int(out.stdout))
    assert (info["run_at"] - info["created_at"]).total_seconds() == pytest.approx(5400, abs=1)
    out = project.cli("dispatch", "jobs.testing.ok", "--delay", "soon")
    assert out.returncode == 2 and "'soon' is not a duration" in out.stderr
    project.write_whitelist("retry_delay: 2s\ntimeout: 5m\nworker: {grace_period: 1m, "
                            "autostart: false}\nallowed_jobs: {jobs.testing: {ok: "
                            "{retry_delay: 1h30m, timeout: 500ms}}}\n")
    settings = load_settings()
    assert (settings.policy.retry_delay, settings.policy.timeout) == (2.0, 300.0)
    assert settings.worker.grace_period == 60.0
    assert settings.policy_for("jobs.testing.ok").retry_delay == 5400.0
    assert settings.policy_for("jobs.testing.ok").timeout == 0.5
    project.write_whitelist("retry_delay: soon\n")
    with pytest.raises(ConfigError, match=r"retry_delay: 'soon' is not allowed; expected "
                                          r"seconds, or a duration like '90s'"):
        load_settings()


def test_prune_older_than_takes_seconds_or_a_duration(project):
    for value in ("30", "1d", "1h30m"):
        out = project.cli("prune", "--older-than", value)
        assert out.returncode == 0, out.stderr
        assert f"older than {value} deleted" in out.stdout
    out = project.cli("prune", "--older-than", "ages")
    assert out.returncode == 2 and "is not a duration" in out.stderr


# --- output for scripts, --version, the worker's controls ------------------------------------

def test_json_output_parses(project, capsys):
    job_id = nj.dispatch("jobs.testing.echo", 3, x=2.5)
    nj.dispatch("jobs.testing.ok", 1)

    def run(*args: str) -> Any:
        assert cli.main(list(args)) in (0, 1)
        return json.loads(capsys.readouterr().out)

    status = run("status", str(job_id), "--json")
    assert status["id"] == job_id and status["kwargs"] == {"x": 2.5}
    assert status["created_at"].endswith("+00:00")
    page = run("list", "--json", "--per-page", "1")
    assert (page["total"], page["pages"], page["page"]) == (2, 2, 1)
    assert [j["id"] for j in page["jobs"]] == [job_id + 1]
    jobs = run("jobs", "--json")
    typed = next(r for r in jobs if r["target"] == "jobs.testing.typed")
    assert typed["allowed"] and typed["parameters"][0] == {
        "name": "n", "annotation": "int", "default": None, "required": True,
        "kind": "positional_or_keyword", "help": ""}
    history = run("history", "--json")
    assert [h["id"] for h in history] == [job_id, job_id + 1]
    assert history[0]["args"] == [3] and history[0]["wait_s"] is None
    assert run("worker", "status", "--json")["running"] is False


def test_version_is_the_package_metadata(project):
    out = project.cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"notebookjobs {version('notebookjobs')}"
    assert nj.__version__ == version("notebookjobs")


@pytest.mark.slow
def test_worker_restart_and_its_log_level(project):
    project.write_whitelist("worker: {autostart: false, grace_period: 0}\n"
                            "allowed_jobs: {jobs.testing: [ok]}\n")
    out = project.cli("worker", "start", "--log-level", "debug")
    assert out.returncode == 0, out.stderr
    first = nj.worker_status()["pid"]
    nj.wait(nj.dispatch("jobs.testing.ok", 1), timeout=30)
    log = project.root / "logs" / "worker.log"
    wait_until(lambda: "DEBUG" in log.read_text(), what="a DEBUG line in worker.log")
    assert "attempt 1 succeeded" in log.read_text()
    out = project.cli("worker", "restart")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "worker stopped"
    second = nj.worker_status()["pid"]
    assert second != first
    # the variable sets the level when the option is not given; INFO by default
    size = log.stat().st_size
    nj.wait(nj.dispatch("jobs.testing.ok", 2), timeout=30)
    project.cli("worker", "stop")
    assert "DEBUG" not in log.read_text()[size:]
    nj.dispatch("jobs.testing.ok", 3)
    worker = burst_worker(project.root, env={**project.env(), "NOTEBOOKJOBS_LOG_LEVEL": "debug"})
    assert worker.returncode == 0 and " DEBUG " in worker.stderr, worker.stderr
    bad = burst_worker(project.root, env={**project.env(), "NOTEBOOKJOBS_LOG_LEVEL": "loud"})
    assert bad.returncode == 2 and "log level 'loud' is not one of DEBUG" in bad.stderr


# --- discovery (SPEC §4) ----------------------------------------------------------------------

TASKS_ETL = '''\
class Loader:
    """Load things."""

    def summarize(self, path: str) -> int:
        """Summarize a file."""
        return 0

    def purge(self) -> None:
        """Delete everything."""
'''


def test_discovery_scans_the_owners_packages_and_the_discover_list(project):
    # Given code in tasks/ (an owner's package) and lib/ (named in discover:), outside jobs/
    (project.root / "tasks").mkdir()
    (project.root / "tasks" / "__init__.py").write_text("")
    (project.root / "tasks" / "etl.py").write_text(TASKS_ETL)
    (project.root / "tasks" / "more.py").write_text("def extra(n: int = 1) -> int:\n"
                                                    "    return n\n")
    (project.root / "lib").mkdir()
    (project.root / "lib" / "tools.py").write_text("def tidy() -> None:\n    pass\n")
    project.write_whitelist("allowed_jobs: {tasks.etl.Loader: [summarize]}\n"
                            "discover: [lib.tools]\n")
    rows = {r["target"]: r for r in nj.available_jobs().to_dict("records")}
    # Then the allowed method is there, and the others are listed greyed out with a hint
    assert rows["tasks.etl.Loader.summarize"]["allowed"]
    purge = rows["tasks.etl.Loader.purge"]
    assert not purge["allowed"] and "[summarize, purge]" in purge["allow_hint"]
    assert not rows["tasks.more.extra"]["allowed"]
    assert not rows["lib.tools.tidy"]["allowed"]
    assert "jobs.testing.ok" in rows  # jobs/ is always scanned
    # A discover: name outside the project is refused like an owner
    project.write_whitelist("allowed_jobs: {jobs.testing: [ok]}\ndiscover: [json]\n")
    with pytest.raises(ConfigError, match=r"discover > 0: 'json' is not allowed"):
        load_settings()


# --- no worker, and a word about it ---------------------------------------------------------

def test_a_dispatch_with_no_worker_and_autostart_off_warns_once(project):
    with pytest.warns(nj.NoWorkerWarning, match=r"job 1 stored, but no worker is running and "
                                                r"worker.autostart is false") as caught:
        nj.dispatch("jobs.testing.ok", 1)
        nj.dispatch("jobs.testing.ok", 2)
        nj.dispatch_many("jobs.testing.ok", [[3]])
    assert len(caught) == 1  # once, not per call
    # The CLI says it in one line, and still prints the id
    out = project.cli("dispatch", "jobs.testing.ok", "4")
    assert out.returncode == 0 and out.stdout.strip() == "4"
    assert out.stderr.startswith("note: job 4 stored, but no worker is running")
    assert out.stderr.count("\n") == 1


def test_no_warning_with_autostart_or_a_running_worker(project, start_worker):
    start_worker()
    with warnings.catch_warnings():
        warnings.simplefilter("error", nj.NoWorkerWarning)
        nj.wait(nj.dispatch("jobs.testing.ok", 1), timeout=30)


def test_wait_with_no_worker_warns_after_a_few_seconds(project, monkeypatch):
    monkeypatch.setattr(client, "NO_WORKER_CHECK_S", 0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nj.NoWorkerWarning)
        job_id = nj.dispatch("jobs.testing.ok", 1)
    with pytest.warns(nj.NoWorkerWarning, match=rf"job {job_id} is pending and no worker is "
                                                "running"), pytest.raises(TimeoutError):
        nj.wait(job_id, timeout=0.6)
