"""Notebook jobs read and report as papermill does (SPEC §17), on papermill's own test
notebooks (tests/data/papermill, BSD licence): its inspection of the parameters cell (types and
help from comments, a line it cannot parse skipped), our refusals kept, our reader where
papermill is absent, and the failing cell's ``ename: evalue`` as the job's error. Real
papermill kernels in a real worker."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import ipywidgets as widgets
import nbformat
import papermill
import pytest

import notebookjobs as nj
from notebookjobs.dashboard.forms import DispatchForm
from notebookjobs.errors import ConfigError
from notebookjobs.targets import notebooks

CORPUS = Path(__file__).parent / "data" / "papermill"


def allow(project, *names: str) -> list[str]:
    """Copy corpus notebooks into the project's notebooks/ and allow them (no retries); their
    targets."""
    (project.root / "notebooks").mkdir(exist_ok=True)
    targets = []
    for name in names:
        shutil.copy(CORPUS / name, project.root / "notebooks" / name)
        targets.append(f"notebooks/{name}")
    project.write_whitelist("allowed_jobs: {jobs.testing: [ok]}\nallowed_notebooks:\n"
                            + "".join(f"  {t}: {{retry_attempts: 0}}\n" for t in targets))
    return targets


def html_of(widget) -> str:
    """The text of every HTML widget in ``widget``'s tree."""
    own = widget.value if isinstance(widget, widgets.HTML) else ""
    return own + "".join(html_of(child) for child in getattr(widget, "children", ()))


def test_parameters_are_read_as_papermill_reads_them(project):
    # Given papermill's notebook whose parameters cell has typed, commented, multi-line
    # assignments, a line it cannot introspect (d = a == 3) and one that does not parse (= 2)
    [target] = allow(project, "complex_parameters.ipynb")
    # Then discovery lists what papermill lists, with the types and help of the comments
    row = nj.available_jobs().set_index("target").loc[target]
    assert row["kind"] == "notebook", row["doc"]
    shown = [(p["name"], p["annotation"], p["default"], p["help"]) for p in row["parameters"]]
    assert shown == [("msg", "", None, ""), ("a", "float", 2.25, "Variable a"),
                     ("b", "list", ["Hello", "World"], "Nice list"), ("c", "", None, "")]
    assert [name for name, *_ in shown] == list(
        papermill.inspect_notebook(project.root / target))
    # ... and the dashboard's form shows the help beside the input
    form = DispatchForm(target, row["parameters"])
    assert "float = 2.25 \N{EM DASH} Variable a" in html_of(form)
    # And a dispatch is checked against them: coerced by type, an unlisted name refused
    job = nj.dispatch(target, a="3.5", b='["x"]')
    assert nj.status(job)["kwargs"] == {"a": 3.5, "b": ["x"]}
    with pytest.raises(nj.InvalidArgumentsError, match="unexpected keyword argument 'd'"):
        nj.dispatch(target, d=1)


def cell_notebook(source: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    nb.cells.append(cell)
    return nb


def names_and_defaults(nb: nbformat.NotebookNode) -> list[tuple[str, object]]:
    params, _ = notebooks.parameters(nb, "test.ipynb")
    return [(p.name, p.default) for p in params]


CELL = "region = 'EU'\n_cache = {}\nn: int = 3  # how many\nwhen = make_time()\nn = 4\n"


def test_our_refusals_hold_with_papermill_and_our_reader_serves_without_it(monkeypatch):
    # With papermill: names starting with _ are the notebook's own; a value that is no
    # literal has no default; a name assigned twice keeps its last value
    nb = cell_notebook(CELL)
    with_papermill = names_and_defaults(nb)
    assert with_papermill == [("region", "EU"), ("when", None), ("n", 4)]
    # Without papermill (the [notebooks] extra not installed), our reader gives the same
    monkeypatch.setitem(sys.modules, "papermill.translators", None)
    assert names_and_defaults(nb) == with_papermill
    # ... and a cell that does not parse is refused whole, naming the line
    with pytest.raises(ConfigError, match=r"not valid Python \(line 2"):
        notebooks.parameters(cell_notebook("a = 1\n= 2\n"), "test.ipynb")


def test_a_line_magic_error_is_the_jobs_error(project, start_worker):
    # Given papermill's notebook whose first cell is an unknown line magic
    [target] = allow(project, "line_magic_error.ipynb")
    start_worker()
    # When it runs
    info = nj.wait(nj.dispatch(target), timeout=120)
    # Then the job fails with the cell's ename: evalue, as papermill reports it
    assert info["status"] == "failed"
    assert info["error"].splitlines()[0] == ("cell In [1] raised UsageError: Line magic "
                                             "function `%undefined-line-magic` not found.")
    assert "Cell should not execute." not in info["output"]


def test_what_the_cells_print_is_the_output_and_the_kernels_log_is_nobodys(
        project, start_worker):
    # Given papermill's notebook that prints its parameter
    [target] = allow(project, "simple_execute.ipynb")
    worker = start_worker()
    # When it runs with a value for it
    info = nj.wait(nj.dispatch(target, msg="hello from papermill"), timeout=120)
    # Then what the cell printed is the job's output, and the kernel's own log ("running
    # over TCP without encryption") is neither there nor in the worker's log
    assert info["status"] == "completed", info["error"]
    assert info["output"] == "hello from papermill\n"
    assert "IPKernelApp" not in worker.output()
