"""The smoke test of the dependency floors (``make floors``): run with the Python of a venv where
the notebookjobs *wheel* is installed with the lowest version of every dependency
pyproject.toml allows (scripts/floors.py writes the constraints).

In a new folder: ``notebookjobs init`` (so the wheel carries its templates), dispatches from
the CLI and the API, a burst worker, then what reads the queue: status, a page, history,
stats, SQL, and the dashboard widget and the magic built once. Not a pytest module (the floors
venv has no test tools); exits 1 at the first step that fails, naming it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

DEPENDENCIES = ("duckdb", "pandas", "pyarrow", "numpy", "pyyaml", "ipython", "ipywidgets",
                "anywidget", "jinja2")


def run(*args: str, cwd: Path) -> str:
    out = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                         timeout=300, env={k: v for k, v in os.environ.items()
                                           if not k.startswith("NOTEBOOKJOBS_")})
    if out.returncode != 0:
        raise SystemExit(f"floors: `{' '.join(args)}` failed ({out.returncode}):\n"
                         f"{out.stdout}{out.stderr}")
    return out.stdout


def queries_are_fenced(nj) -> None:
    """nj.sql reads no file and a query stops at its time limit (DuckDB's external access
    switch and interrupt(), at the floor's version too)."""
    try:
        nj.sql("SELECT * FROM read_text('/etc/passwd')")
    except nj.InvalidArgumentsError as exc:
        assert "reads the queue only" in str(exc), exc
    else:
        raise AssertionError("nj.sql read a file")
    try:
        nj.sql("SELECT max(md5(range::VARCHAR)) FROM range(400000000)", timeout=0.5)
    except nj.QueryTimeoutError:
        pass
    else:
        raise AssertionError("a query ran past its time limit")


def main() -> int:
    versions = ", ".join(f"{name} {version(name)}" for name in DEPENDENCIES)
    print(f"floors: Python {sys.version.split()[0]}, {versions}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        run("-m", "notebookjobs", "init", str(root), cwd=Path(tmp))
        whitelist = root / "whitelist.yaml"
        whitelist.write_text(whitelist.read_text().replace("autostart: true", "autostart: false"))
        ids = [int(run("-m", "notebookjobs", "dispatch", "jobs.example.count_lines",
                       cwd=root / "notebooks"))]
        os.environ["NOTEBOOKJOBS_ROOT"] = str(root)
        import warnings

        import notebookjobs as nj

        assert "site-packages" in nj.__file__, f"not the installed wheel: {nj.__file__}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", nj.NoWorkerWarning)
            ids.append(nj.dispatch("jobs.example.Report.build", rows=2, delay="0s"))
            ids += nj.dispatch_many("jobs.example.countdown", [{"seconds": 1}, [0]])
        run("-m", "notebookjobs.worker", "--burst", cwd=root / "jobs")
        statuses = [nj.status(i)["status"] for i in ids]
        assert statuses == ["completed"] * len(ids), [nj.status(i) for i in ids]
        assert nj.status(ids[0])["result"] == len(whitelist.read_text().splitlines())
        page = nj.jobs(per_page=2)
        assert page.attrs["total"] == len(ids) and len(page) == 2, page
        history = nj.history()
        assert list(history["id"]) == ids and history["duration_s"].notna().all(), history
        assert str(history["status"].dtype) == "category"
        stats = nj.stats()
        assert int(stats["completed"].sum()) == len(ids), stats
        assert nj.sql("SELECT count(*) AS n FROM jobs")["n"].iloc[0] == len(ids)
        queries_are_fenced(nj)
        assert nj.counts()["completed"] == len(ids)
        # The same through a detached worker: dispatches over its socket, frames as Arrow IPC
        nj.start_worker()
        try:
            more = [nj.dispatch("jobs.example.count_lines") for _ in range(20)]
            more += nj.dispatch_many("jobs.example.Report.build", [[] for _ in range(50)])
            assert {nj.wait(i, timeout=60)["status"] for i in more} == {"completed"}
            ids += more
            assert list(nj.history()["id"]) == ids
            assert int(nj.stats()["completed"].sum()) == len(ids)
            queries_are_fenced(nj)
        finally:
            nj.stop_worker()
        assert "jobs.example.Report.publish" in set(nj.available_jobs()["target"])
        nj.dashboard(autorefresh=False).close()
        from IPython.core.interactiveshell import InteractiveShell

        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "notebookjobs")
        assert shell.run_line_magic("jobs", "list").attrs["total"] == len(ids)
        InteractiveShell.clear_instance()
    print(f"floors: ok ({len(ids)} jobs dispatched, run by a burst and a detached worker, "
          "read back)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
