"""A pip user's first hour with the CLI (issue 22): what each command prints and exits with,
what it creates, and what it imports, run as the user runs it (`python -m notebookjobs` in a
real project, real workers). The install side (the wheel, one extra at a time) is `make
matrix`: scripts/install_matrix.py and tests/wheel_walk.py."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import notebookjobs as nj
from support import REPO, TEST_WHITELIST, wait_until

#: modules no command that reads or writes one job may load (SPEC §7: ~0.5 s of imports)
HEAVY = ("pandas", "duckdb", "numpy", "pyarrow", "IPython", "ipywidgets")

SCHEDULED = TEST_WHITELIST.replace("allowed_jobs:", "schedules:\n  nightly:\n    target: "
                                   "jobs.testing.ok\n    cron: '0 2 * * *'\nallowed_jobs:")


def test_schedules_lists_a_schedule_that_has_not_run_yet(project):
    # Given a schedule that has never dispatched a job (no last job: an empty Int64 cell)
    project.write_whitelist(SCHEDULED)
    # When the user lists the schedules
    out = project.cli("schedules")
    # Then they are shown, with no last job, and no traceback
    assert out.returncode == 0, out.stderr
    assert "nightly" in out.stdout and "jobs.testing.ok" in out.stdout and out.stderr == ""
    [row] = json.loads(project.cli("schedules", "--json").stdout)
    assert (row["name"], row["cron"], row["last_job"], row["last_run"]) == (
        "nightly", "0 2 * * *", None, None)


def test_a_read_of_a_queue_that_does_not_exist_creates_nothing(project, tmp_path):
    # Given NOTEBOOKJOBS_DB naming a file in a folder that does not exist
    missing = tmp_path / "nonexistent" / "q.duckdb"
    env = {**project.env(), "NOTEBOOKJOBS_DB": str(missing)}
    for args in (["list"], ["list", "--json"], ["history"], ["stats"], ["status", "1"]):
        out = subprocess.run([sys.executable, "-m", "notebookjobs", *args], cwd=project.root,
                             env=env, capture_output=True, text=True, timeout=120)
        # Then each read answers as an empty queue would, and says the queue does not exist
        if args[0] == "status":
            assert out.returncode == 2 and "no job has id 1" in out.stderr, out
        else:
            assert out.returncode == 0, out.stderr
            assert f"no queue at {missing} yet" in out.stderr and out.stderr.count("\n") == 1
    assert '"total": 0' in subprocess.run(
        [sys.executable, "-m", "notebookjobs", "list", "--json"], cwd=project.root, env=env,
        capture_output=True, text=True, timeout=120).stdout
    # And creates neither the folder nor the file, nor anything where it ran
    assert not missing.parent.exists() and not list(project.root.glob(":memory:*"))


def test_refusals_exit_2_with_one_line(project):
    assert project.cli("run", "jobs.testing", "ok", "4").returncode == 0
    for args, fragment in [
        (("dashboard", "--port", "70000"), "port=70000 is out of range"),
        (("cancel", "1"), "job 1 is completed: nothing to cancel"),
        (("worker", "start", "--concurrency", "100000"), "from 1 to 1024"),
        (("prune", "--older-than", "soon"), "'soon' is not a duration"),
    ]:
        out = project.cli(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert fragment in out.stderr and out.stderr.count("\n") == 1, (args, out.stderr)
    assert not nj.worker_status()["running"]  # (the refused start started nothing)


def test_a_closed_pipe_is_quiet(project):
    # Given more jobs than a pipe's buffer holds as JSON
    nj.dispatch_many("jobs.testing.ok", [[i] for i in range(400)])
    # When the reader stops after the first line
    command = (f"{sys.executable} -m notebookjobs list --json --per-page 400 | head -1; "
               "exit ${PIPESTATUS[0]}")
    out = subprocess.run(["bash", "-c", command], cwd=project.root, env=project.env(),
                         capture_output=True, text=True, timeout=120)
    # Then the command stops without a word
    assert (out.returncode, out.stdout, out.stderr) == (0, "{\n", "")


def test_stats_by_hour_warns_nothing_and_every_data_command_has_json(project):
    project.cli("run", "jobs.testing", "ok", "4")
    for by in ("hour", "target", "status"):
        out = project.cli("stats", "--by", by)
        assert out.returncode == 0 and out.stderr == "", out.stderr
    [row] = json.loads(project.cli("stats", "--by", "hour", "--json").stdout)
    assert row["jobs"] == 1 and row["completed"] == 1 and row["hour"].endswith("+00:00")
    assert json.loads(project.cli("schedules", "--json").stdout) == []


def _prune(project, *args: str, answer: bytes | None = None) -> tuple[int, str]:
    """``prune ARGS`` in a pseudo-terminal (a terminal, as the user's), typing ``answer``
    when it asks; its exit code and what it showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, its stdin and stdout the terminal
        os.chdir(project.root)
        os.execve(sys.executable, [sys.executable, "-m", "notebookjobs", "prune", *args],
                  project.env())
    shown = b""
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 120)
            assert ready, f"prune said nothing for 120 s: {shown!r}"
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the terminal closed: it exited
                break
            if not chunk:
                break
            shown += chunk
            if answer is not None and b"[y/N]" in shown:
                os.write(fd, answer)
                answer = None
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode().replace("\r\n", "\n")


def test_prune_shows_first_asks_in_a_terminal_and_has_a_dry_run(project):
    # Given three finished jobs
    for value in (1, 2, 3):
        project.cli("run", "jobs.testing", "ok", str(value))
    # A dry run says what would go, and deletes nothing
    out = project.cli("prune", "--older-than", "0", "--dry-run")
    assert out.returncode == 0 and "3 finished jobs older than 0: 3 completed would be " \
        "deleted (dry run)" in out.stdout
    # In a terminal it asks first: no deletes nothing...
    code, shown = _prune(project, "--older-than", "0", answer=b"n\n")
    assert code == 0 and "delete 3 finished jobs older than 0 (3 completed)? [y/N]" in shown
    assert "nothing deleted" in shown and nj.counts()["completed"] == 3
    # ...yes deletes what it showed
    code, shown = _prune(project, "--older-than", "0", answer=b"y\n")
    assert code == 0 and "3 finished jobs older than 0 deleted" in shown
    assert nj.counts()["completed"] == 0
    # --yes does not ask; nor does a script (no terminal)
    project.cli("run", "jobs.testing", "ok", "1")
    code, shown = _prune(project, "--older-than", "0", "--yes")
    assert code == 0 and "[y/N]" not in shown and "1 finished job older than 0 deleted" in shown
    project.cli("run", "jobs.testing", "ok", "1")
    out = project.cli("prune", "--older-than", "0")
    assert out.returncode == 0 and "1 finished job older than 0 deleted" in out.stdout


def test_restart_keeps_the_running_workers_concurrency(project):
    assert project.cli("worker", "start", "--concurrency", "3").returncode == 0
    try:
        out = project.cli("worker", "restart")
        assert out.returncode == 0, out.stderr
        assert nj.worker_status()["concurrency"] == 3
    finally:
        nj.stop_worker()


def _loaded(project, *args: str) -> list[str]:
    """The HEAVY modules a CLI process has loaded once ``notebookjobs ARGS`` has run."""
    code = ("import sys\nfrom notebookjobs.cli import main\ntry:\n    code = main(sys.argv[1:])\n"
            "except SystemExit as exit:\n    code = exit.code\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
            "sys.exit(code)")
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=project.root,
                         env=project.env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stderr.strip().splitlines()[-1].replace("'", '"')))


def test_the_cli_imports_only_what_a_command_uses(project, start_worker):
    # --version and --help load none of them
    assert _loaded(project, "--version") == [] and _loaded(project, "--help") == []
    # Given a worker: status, cancel and dispatch go through its socket, with no DuckDB and no
    # pandas in the CLI's process
    start_worker("--concurrency", "1")
    job_id = nj.dispatch("jobs.testing.ok", 1, delay=3600)
    assert _loaded(project, "dispatch", "jobs.testing.ok", "2") == []
    assert _loaded(project, "status", str(job_id)) == []
    assert _loaded(project, "cancel", str(job_id)) == []
    # Without a worker, status opens the file itself: DuckDB, still no pandas
    nj.stop_worker()
    assert _loaded(project, "status", str(job_id)) == ["duckdb"]


def test_the_dashboard_refuses_to_serve_a_page_no_kernel_can_run(project, tmp_path):
    # Given an environment with Voila but no Jupyter kernel for Python (the dashboard extra
    # before it brought ipykernel): a venv of its own that sees this one's packages, where
    # ipykernel cannot be imported, so that jupyter_client finds no python3 kernel
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    [site_dir] = (env_dir / "lib").glob("python3*/site-packages")
    here = sysconfig.get_paths()["purelib"]
    (site_dir / "here.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    code = ("import sys\nsys.modules['ipykernel'] = None\nfrom notebookjobs.cli import main\n"
            "sys.exit(main(['dashboard', '--port', '18869']))")
    out = subprocess.run([str(env_dir / "bin" / "python"), "-c", code], cwd=project.root,
                         env={**project.env(), "JUPYTER_DATA_DIR": str(tmp_path / "data"),
                              "JUPYTER_PATH": ""},
                         capture_output=True, text=True, timeout=120)
    # Then it says so in one line instead of printing an address whose page answers 500
    assert out.returncode == 2 and "http://" not in out.stdout, out
    assert "pip install 'notebookjobs[dashboard]'" in out.stderr and out.stderr.count("\n") == 1


def test_a_wheel_built_after_a_module_was_deleted_does_not_ship_it(tmp_path):
    # Given a clone whose build/lib holds a module that the source no longer has
    clone = tmp_path / "clone"
    shutil.copytree(REPO, clone, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".notebookjobs", "logs"))
    stale = clone / "build" / "lib" / "notebookjobs" / "stale_module.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("WRONG = True\n")
    # When the wheel is built as `make wheel` builds it
    out = subprocess.run([sys.executable, str(clone / "scripts" / "build_wheel.py"),
                          str(tmp_path / "dist")], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    # Then it ships the package's modules, and not the stale one
    with zipfile.ZipFile(out.stdout.strip()) as wheel:
        names = set(wheel.namelist())
    assert "notebookjobs/cli/__init__.py" in names and "notebookjobs/stale_module.py" not in names


def test_the_worker_refuses_a_concurrency_over_the_cap(project):
    out = subprocess.run([sys.executable, "-m", "notebookjobs.worker", "--concurrency", "2000"],
                         cwd=project.root, env=project.env(), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "from 1 to 1024" in out.stderr
    wait_until(lambda: not nj.worker_status()["running"], what="no worker")
