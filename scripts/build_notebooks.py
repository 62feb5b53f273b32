"""Write notebooks/*.ipynb from the cells below and run them, storing their outputs for nbval;
the TEMPLATES (notebooks that run as jobs) are written without running them.

Run it after changing a notebook's cells: `.venv/bin/python scripts/build_notebooks.py [NAME ...]`.
The notebooks run against a throw-away queue (NOTEBOOKJOBS_DB in a temp dir), as nbval does.
"""

from __future__ import annotations

import os
import subprocess
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
    ("md", """## Results that keep their type

`dispatch` returns a `Job`: an `int` equal to the job's id, whose methods follow it
(`status()`, `wait()`, `result()`, `cancel()`, `retry()`); shown as a cell's value in
JupyterLab it is a live line that updates until the job ends. A job may return a pandas
DataFrame or Series, a numpy array or bytes: the worker keeps it in a file of the queue's
folder (Parquet, `.npy`), never as a pickle, and `result()` gives it back with its type."""),
    ("code", """report = nj.dispatch("jobs.sample.sales_report", days=7)
frame = report.result(timeout=60)  # computed in the background, read back as a DataFrame
frame"""),
    ("code", """info = nj.status(report)
info["result_type"], info["result"]"""),
    ("md", "Frames and arrays go in as arguments the same way: the job receives a DataFrame."),
    ("code", """shares = nj.dispatch("jobs.sample.with_share", frame)
shares.result(timeout=60)"""),
    ("md", "A job that failed raises `JobFailedError` from `result()`, with the job's traceback:"),
    ("code", """try:
    nj.dispatch("jobs.sample.always_fails", "no data today").result(timeout=60)
except nj.JobFailedError as exc:
    print(exc.traceback.strip().splitlines()[-1])"""),
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

DASHBOARD = [
    ("md", """# The notebookjobs dashboard

The queue monitor lives in the notebook: the jobs you may run, a Dispatch form for each (its
parameters, a priority and a delay), the queue five jobs a page with each job's status, Cancel
and Retry, the details of a job, and the worker with its Start and Stop buttons.

Run all cells (*Run ▸ Run All Cells*). The last one shows the dashboard; it refreshes itself
every second while it is shown, so leave it there and watch the jobs move."""),
    ("code", """import uuid
import notebookjobs as nj"""),
    ("code", """# NBVAL_IGNORE_OUTPUT
nj.start_worker()  # the detached worker: its pid"""),
    ("md", """## Some jobs to look at

Quick ones, one that fails twice before it succeeds, one that always fails, and two slow ones:
the first runs for five minutes (cancel it from its row), the second waits two minutes before
it starts."""),
    ("code", """ids = nj.dispatch_many("jobs.sample.SampleJobClass.process", [[f"a{i}", f"b{i}"] for i in range(8)])
ids.append(nj.dispatch("jobs.sample.flaky", key=f"dashboard-{uuid.uuid4().hex}", priority=2))
ids.append(nj.dispatch("jobs.sample.always_fails", "fails on purpose", priority=1))
ids.append(nj.dispatch("jobs.sample.slow", seconds=300, steps=300))
ids.append(nj.dispatch("jobs.sample.slow", seconds=30, delay=120))
quick = [nj.wait(job, timeout=60)["status"] for job in ids[:8]]
len(ids), sorted(set(quick))"""),
    ("md", """## The dashboard

*Dispatch* opens a form under the list of jobs; the queue is newest first. Use the status
filter and the arrows to move through it, and *Details* to see a job's output, result or
error."""),
    ("code", """# NBVAL_IGNORE_OUTPUT
dash = nj.dashboard()
dash"""),
    ("md", """The worker keeps running when the notebook closes. When you are done, close the dashboard
and stop the worker (also `notebookjobs worker stop` in a terminal):"""),
    ("code", """# dash.close(); nj.stop_worker()"""),
]

WORKFLOWS = [
    ("md", """# Workflows: after, unique, at, schedules, notebooks

Jobs that wait for other jobs, jobs dispatched once per key, jobs that run at a given time,
schedules the worker runs by itself, and notebooks that run as jobs (SPEC §16, §17)."""),
    ("code", """# NBVAL_IGNORE_OUTPUT
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import notebookjobs as nj

nj.start_worker()  # the detached worker: its pid"""),
    ("md", """## A chain with `after`

A job dispatched with `after=[ids]` stays pending until all of them have completed."""),
    ("code", """extract = nj.dispatch("jobs.sample.SampleJobClass.process", "extract", "raw")
transform = nj.dispatch("jobs.sample.SampleJobClass.process", "transform", "clean", after=[extract])
load = nj.dispatch("jobs.sample.SampleJobClass.process", "load", "warehouse", after=[transform])
infos = [nj.wait(job, timeout=60) for job in (extract, transform, load)]
[(info["args"][0], info["status"], info["after"]) for info in infos]"""),
    ("code", """# each one started after the one it waited for had finished
infos[0]["finished_at"] <= infos[1]["started_at"] and infos[1]["finished_at"] <= infos[2]["started_at"]"""),
    ("md", """When a job fails (after its retries) or is cancelled, what waits for it is cancelled,
and says why:"""),
    ("code", """bad = nj.dispatch("jobs.sample.always_fails", "on purpose")
never = nj.dispatch("jobs.sample.SampleJobClass.process", "never", "runs", after=[bad])
info = nj.wait(never, timeout=60)
info["status"], info["error"]"""),
    ("md", """## Once per key

With `unique=True` (the key is the target and its arguments) or `unique="a key"`, a dispatch
returns the pending or running job with that key instead of storing another one."""),
    ("code", """first = nj.dispatch("jobs.sample.slow", seconds=1, steps=2, unique="nightly-import")
again = nj.dispatch("jobs.sample.slow", seconds=1, steps=2, unique="nightly-import")
first == again, nj.status(first)["unique_key"]"""),
    ("code", """nj.wait(first, timeout=60)["status"]"""),
    ("md", "## At a given time\n\n`at=` takes a datetime or an ISO 8601 string, instead of a `delay`."),
    ("code", """soon = nj.dispatch("jobs.sample.SampleJobClass.process", "at", "time",
                   at=datetime.now(timezone.utc) + timedelta(seconds=2))
info = nj.wait(soon, timeout=60)
info["status"], info["started_at"] >= info["run_at"]"""),
    ("md", """## Schedules

`schedules:` in whitelist.yaml: a `cron` (five fields, in a `timezone`) or `every: 15m`. The
worker dispatches each tick once, also across restarts; ticks missed while no worker ran are
dispatched once when one starts. `notebookjobs schedules` prints the same list."""),
    ("code", """nj.schedules()[["name", "target", "cron", "timezone", "enabled", "next_run", "last_job", "problem"]]"""),
    ("md", """## A notebook as a job

`allowed_notebooks:` in whitelist.yaml lists notebooks that may run as jobs; their
parameters are the names assigned in the cell tagged `parameters`, read without running
them. papermill runs the notebook in the worker; the executed notebook is the job's result."""),
    ("code", """notebooks = nj.available_jobs().query("kind == 'notebook'")
[(row.target, [(p["name"], p["default"]) for p in row.parameters]) for row in notebooks.itertuples()]"""),
    ("code", """report = nj.dispatch("notebooks/report.ipynb", region="US", days=3)
info = nj.wait(report, timeout=180)
info["status"], info["progress_message"], Path(info["result"]).name"""),
    ("code", """executed = nbformat.read(info["result"], as_version=4)
print(info["output"])
executed.cells[-1].outputs[-1]["data"]["text/plain"]"""),
    ("code", """nj.stop_worker()"""),
]

#: a notebook that runs as a job (allowed_notebooks in whitelist.yaml): written, not executed
REPORT = [
    ("md", """# Regional report

A notebook that runs as a job: `nj.dispatch("notebooks/report.ipynb", region="US", days=3)`.
The cell tagged `parameters` holds the defaults; papermill injects the dispatched values after
it."""),
    ("parameters", """region = "EU"
days = 7"""),
    ("code", """import pandas as pd

sales = pd.DataFrame({"day": range(1, days + 1), "amount": [100 + 10 * d for d in range(days)]})
sales["region"] = region
print(f"{region}: {sales['amount'].sum()} over {days} days")"""),
    ("code", """int(sales["amount"].sum())"""),
]

CELLS = {"quickstart": QUICKSTART, "history": HISTORY, "workflows": WORKFLOWS,
         "dashboard": DASHBOARD}
TEMPLATES = {"report": REPORT}


def notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
            continue
        cell = nbformat.v4.new_code_cell(source)
        if kind == "parameters":  # papermill's convention (SPEC §17)
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    return nb


def write(name: str, nb: nbformat.NotebookNode) -> Path:
    for i, cell in enumerate(nb.cells):
        cell.id = f"{name}-{i}"  # stable files: random ids would change on every build
    path = NOTEBOOKS / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def build(name: str, cells: list[tuple[str, str]]) -> Path:
    nb = notebook(cells)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NOTEBOOKJOBS_DB"] = str(Path(tmp) / "queue.duckdb")
        try:
            NotebookClient(nb, timeout=300, kernel_name="python3",
                           resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        finally:  # a notebook may leave its worker running (dashboard does): stop it, as make test does
            subprocess.run([sys.executable, "-m", "notebookjobs", "worker", "stop"], cwd=NOTEBOOKS,
                           capture_output=True, check=False)
    # Widget state (the dashboard's, ~200 KB): JupyterLab does not restore it, nbval ignores it.
    nb.metadata.pop("widgets", None)
    return write(name, nb)


if __name__ == "__main__":
    for name in sys.argv[1:] or [*TEMPLATES, *CELLS]:  # templates first: notebooks run them
        if name in TEMPLATES:
            print("wrote", write(name, notebook(TEMPLATES[name])))
        else:
            print("built", build(name, CELLS[name]))
