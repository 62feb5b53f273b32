"""Write notebooks/*.ipynb from the cells below and run them, storing their outputs for nbval.

Run it after changing a notebook's cells: `.venv/bin/python scripts/build_notebooks.py [NAME ...]`.
The notebooks run against a throw-away queue (NOTEBOOKJOBS_DB in a temp dir), as nbval does.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

QUICKSTART = [
    ("md", """# notebookjobs quick start

Dispatch allowed functions and methods to a background worker, follow them, cancel them.
What may run is listed in `whitelist.yaml` at the project root; the queue is a DuckDB file."""),
    ("code", """import uuid
import notebookjobs as nj

nj.available_jobs()[["target", "kind", "allowed"]]"""),
    ("md", """## Dispatch and wait

`dispatch` checks the target against the whitelist and binds the arguments to its signature
before anything is stored. The first dispatch starts the detached worker (`worker.autostart`)."""),
    ("code", """job = nj.dispatch("jobs.sample.SampleJobClass.process", "alpha", "beta", priority=5)
info = nj.wait(job, timeout=60)
{key: info[key] for key in ("target", "args", "status", "attempts", "result")}"""),
    ("md", "Wrong targets and arguments are refused with a message that says how to fix them:"),
    ("code", """for target, args in [("os.system", ("ls",)), ("jobs.sample.SampleJobClass.process", ("only one",))]:
    try:
        nj.dispatch(target, *args)
    except nj.NotebookJobsError as exc:
        print(type(exc).__name__, "-", str(exc).split(" in /")[0])"""),
    ("md", "## Retries\n\n`flaky` fails twice, then succeeds: the worker retries it with the delay and backoff of whitelist.yaml."),
    ("code", """flaky = nj.dispatch("jobs.sample.flaky", key=f"quickstart-{uuid.uuid4().hex}")
info = nj.wait(flaky, timeout=60)
info["status"], info["attempts"], info["result"]"""),
    ("md", "## Cancel a running job"),
    ("code", """import time

slow = nj.dispatch("jobs.sample.slow", seconds=60)
while nj.status(slow)["status"] != "running":
    time.sleep(0.05)
nj.cancel(slow), nj.status(slow)["status"]"""),
    ("md", "## The `%jobs` magic"),
    ("code", "%load_ext notebookjobs"),
    ("code", """# NBVAL_IGNORE_OUTPUT
magic_job = %jobs dispatch jobs.sample.SampleJobClass.process gamma delta --priority 3
magic_job"""),
    ("code", """nj.wait(magic_job, timeout=60)["result"]"""),
    ("md", "## The queue, newest first, five per page"),
    ("code", """page = nj.jobs(page=1, per_page=5)
print(page.attrs["total"], "jobs,", page.attrs["pages"], "pages")
page[["target", "status", "attempts"]]"""),
    ("code", """nj.stop_worker()"""),
]

HISTORY = [
    ("md", """# Job history analysis

Every job is a row of `nj.history()`: the columns of `nj.status()` plus `wait_s` (started −
due) and `duration_s` (finished − started). Statistics are computed in DuckDB by `nj.stats()`;
`nj.sql()` runs read-only SQL over the `jobs` view."""),
    ("code", """%matplotlib inline
import uuid
import notebookjobs as nj

run = uuid.uuid4().hex
ids = []
ids += nj.dispatch_many("jobs.sample.SampleJobClass.process", [[f"a{i}", f"b{i}"] for i in range(20)])
ids += nj.dispatch_many("jobs.sample.flaky", [{"key": f"history-{run}-{i}"} for i in range(4)])
ids += nj.dispatch_many("jobs.sample.always_fails", [[f"reason {i % 2}"] for i in range(3)])
ids += nj.dispatch_many("jobs.sample.slow", [{"seconds": 0.1 * i, "steps": 2} for i in range(1, 6)])
finished = [nj.wait(job, timeout=120)["status"] for job in ids]
len(ids), sorted(set(finished))"""),
    ("code", """history = nj.history()
history.dtypes"""),
    ("md", "## Status breakdown"),
    ("code", """history["status"].value_counts()"""),
    ("code", """ax = history["status"].value_counts().plot.bar(title="jobs by status")"""),
    ("md", "## Throughput over time"),
    ("code", """ax = history.set_index("finished_at").resample("1s")["id"].count().plot(title="jobs finished per second")"""),
    ("md", "## Duration per target"),
    ("code", """ax = history.boxplot(column="duration_s", by="target", rot=20, figsize=(9, 4))"""),
    ("md", "## Slowest jobs"),
    ("code", """# NBVAL_IGNORE_OUTPUT
history.nlargest(5, "duration_s")[["id", "target", "kwargs", "duration_s", "wait_s"]]"""),
    ("md", "## Failure reasons"),
    ("code", """failed = history[history["status"] == "failed"]
failed["error"].str.strip().str.split("\\n").str[-1].value_counts()"""),
    ("md", "## Statistics per target, computed in DuckDB"),
    ("code", """nj.stats()[["target", "jobs", "completed", "failed", "success_rate", "attempts_mean", "retries"]]"""),
    ("code", """# NBVAL_IGNORE_OUTPUT
nj.stats()[["target", "duration_p50", "duration_p95", "wait_p50", "wait_p95"]].round(3)"""),
    ("md", "## SQL over the jobs view"),
    ("code", """nj.sql(\"\"\"
    SELECT target, count(*) AS jobs, sum(attempts) AS attempts
    FROM jobs GROUP BY target ORDER BY target
\"\"\")"""),
    ("code", """nj.stop_worker()"""),
]

CELLS = {"quickstart": QUICKSTART, "history": HISTORY}


def build(name: str, cells: list[tuple[str, str]]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        nb.cells.append(nbformat.v4.new_markdown_cell(source) if kind == "md"
                        else nbformat.v4.new_code_cell(source))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NOTEBOOKJOBS_DB"] = str(Path(tmp) / "queue.duckdb")
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    for i, cell in enumerate(nb.cells):
        cell.id = f"{name}-{i}"  # stable files: random ids would change on every build
    path = NOTEBOOKS / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    for name in sys.argv[1:] or CELLS:
        print("built", build(name, CELLS[name]))
