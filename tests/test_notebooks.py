"""Notebooks as jobs (SPEC §17) with real workers and real papermill kernels: parameters read
without running the notebook, the executed notebook as the result, a failing cell's error, and
no kernel left behind by a cancel or a timeout."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import nbformat
import pytest

import notebookjobs as nj
from support import alive, group_members, wait_until

NOTEBOOK = "notebooks/report.ipynb"


def write_notebook(project, cells: list[tuple[str, str]], name: str = NOTEBOOK) -> Path:
    """A notebook in the project: ("md" | "code" | "parameters", source) per cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    for kind, source in cells:
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            cell = nbformat.v4.new_code_cell(source)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    path = project.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def allow(project, overrides: str = "{retry_attempts: 0}") -> None:
    project.write_whitelist("allowed_jobs: {jobs.testing: [ok]}\n"
                            f"allowed_notebooks:\n  {NOTEBOOK}: {overrides}\n")


REPORT = [
    ("md", "# Regional report\nTotals per region."),
    ("parameters", 'region = "EU"\nn = 3\nrate: float = 1\nwhen = __import__("time").time()'),
    ("code", 'print(f"{region}: {n * rate}")'),
    ("code", "total = n * rate\ntotal"),
]


def test_a_notebook_job_with_parameters_produces_its_executed_notebook(project, start_worker):
    # Given an allowed notebook whose parameters cell assigns region, n, rate and when
    write_notebook(project, REPORT)
    allow(project)
    # Then discovery lists it with its parameters, read without running it
    row = nj.available_jobs().set_index("target").loc[NOTEBOOK]
    assert (row["kind"], row["doc"], row["allowed"]) == ("notebook", "Regional report", True)
    assert [(p["name"], p["annotation"], p["default"]) for p in row["parameters"]] == [
        ("region", "str", "EU"), ("n", "int", 3), ("rate", "float", 1), ("when", "", None)]
    # When it is dispatched with parameters (strings coerced by the default's type) and run
    start_worker()
    job = nj.dispatch(NOTEBOOK, region="US", n="4", rate=0.5)
    info = nj.wait(job, timeout=120)
    # Then the job's result is the executed notebook, private, with the parameters injected
    assert info["status"] == "completed", info["error"]
    out = Path(info["result"])
    assert out.name == f"{job}-report.ipynb" and out.parent.name == "outputs"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700
    executed = nbformat.read(out, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert 'region = "US"' in injected[0].source and "n = 4" in injected[0].source
    assert executed.cells[-1].outputs[0]["data"]["text/plain"] == "2.0"
    # And what the cells printed is the job's output; its progress reached all cells
    assert "US: 2.0" in info["output"]
    assert info["progress"] == 1.0 and info["progress_message"] == "cell 5 of 5"


def test_a_failing_cell_fails_the_job_with_that_cells_error(project, start_worker):
    write_notebook(project, [
        ("parameters", "region = 'EU'"),
        ("code", "x = 1"),
        ("code", "raise ValueError(f'no data for {region}')"),
        ("code", "print('never')"),
    ])
    allow(project)
    start_worker()
    info = nj.wait(nj.dispatch(NOTEBOOK, region="Mars"), timeout=120)
    assert info["status"] == "failed" and info["attempts"] == 1
    # The cell as the executed notebook numbers it: after the parameters and the injected ones
    first_line = info["error"].splitlines()[0]
    assert first_line == "cell In [4] raised ValueError: no data for Mars"
    assert "\x1b[" not in info["error"]  # the traceback without its colour codes
    # The executed notebook is saved all the same, with the error in it
    out = info["error"].rpartition("(the executed notebook: ")[2].rstrip(")")
    executed = nbformat.read(out, as_version=4)
    errors = [o["ename"] for c in executed.cells for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert errors == ["ValueError"]


def test_parameters_are_checked_at_dispatch(project):
    write_notebook(project, REPORT)
    allow(project)
    before = sum(nj.counts().values())
    with pytest.raises(nj.InvalidArgumentsError, match="unexpected keyword argument 'colour'"):
        nj.dispatch(NOTEBOOK, colour="red")
    with pytest.raises(nj.InvalidArgumentsError, match="n: 'many' is not accepted"):
        nj.dispatch(NOTEBOOK, n="many")
    with pytest.raises(nj.InvalidArgumentsError, match="positional"):
        nj.dispatch(NOTEBOOK, "US")
    with pytest.raises(nj.NotAllowedError, match="allowed_notebooks"):
        nj.dispatch("notebooks/other.ipynb")
    assert sum(nj.counts().values()) == before
    # The CLI binds name=value to the notebook's parameters as to a function's
    out = project.cli("dispatch", NOTEBOOK, "region=FR", "n=2")
    assert out.returncode == 0, out.stderr
    assert nj.status(int(out.stdout))["kwargs"] == {"region": "FR", "n": 2}


SLEEPER = [
    ("parameters", "key = 'kernel'"),
    ("code", "import os, time\n"
             "with open(os.path.join(os.environ['NJ_TEST_EFFECTS'], key + '.log'), 'a') as f:\n"
             "    f.write(f'{os.getpid()} {os.getpgid(0)} {os.getsid(0)}\\n')\n"
             "time.sleep(120)"),
]


@pytest.mark.parametrize("stop", ["cancel", "timeout"])
def test_a_stopped_notebook_job_leaves_no_kernel(project, start_worker, stop):
    # Given a notebook job whose kernel records its pid, group and session, then sleeps
    write_notebook(project, SLEEPER)
    allow(project, "{retry_attempts: 0, timeout: 20}" if stop == "timeout" else "{}")
    worker = start_worker("--concurrency", "1")
    job = nj.dispatch(NOTEBOOK)
    line = wait_until(lambda: project.effect_lines("kernel"), timeout=90, what="the kernel")[0]
    kernel, group, session = map(int, line.split())
    # Then the kernel runs in the attempt's process group (the pool child's), not in a session
    # of its own as jupyter_client would start it
    assert kernel not in (group, session) and group in group_members(group)
    assert os.getpgid(worker.pid) != group
    # When the job is cancelled, or runs past its timeout
    if stop == "cancel":
        assert nj.cancel(job) is True
    info = nj.wait(job, timeout=60)
    # Then the job says so, and its kernel is gone with the attempt's whole group
    expected = ("cancelled", "cancelled while running") if stop == "cancel" else (
        "failed", "timed out after 20 s")
    assert (info["status"], info["error"]) == expected
    wait_until(lambda: not alive(kernel), timeout=10, what="the kernel to be gone")
    assert group_members(group) == []


def test_discovery_reports_a_notebook_that_cannot_be_read(project):
    (project.root / "notebooks").mkdir()
    (project.root / NOTEBOOK).write_text(json.dumps({"not": "a notebook"}))
    allow(project)
    row = nj.available_jobs().set_index("target").loc[NOTEBOOK]
    assert row["kind"] == "error" and "cannot read the notebook" in row["doc"]
    with pytest.raises(nj.ConfigError, match="cannot read the notebook"):
        nj.dispatch(NOTEBOOK)
