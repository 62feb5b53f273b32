"""One attempt of a notebook job (SPEC §17): papermill runs it in the current process (a pool
child, or a foreground ``notebookjobs run``), its kernel in this process's group.

- **The kernel stays in the attempt's process group.** jupyter_client starts every kernel in a
  session of its own (``start_new_session=True``, hard-coded in ``launcher.launch_kernel``), so
  the pool's ``killpg`` of a cancelled or timed-out attempt would miss it. ``GroupKernelManager``
  gives its kernel a provisioner that starts it without a new session, and that signals the
  kernel alone (the provisioner's default would signal the kernel's group, which is now ours).
- **Progress** is executed cells / cells, reported through ``nj.progress`` after each cell.
- **The result** is the executed notebook, saved as ``<queue folder>/outputs/<id>-<name>.ipynb``
  (``.notebookjobs/outputs/`` by default): 0600 in a 0700 folder, whatever the job's umask.
- **A cell that raises** fails the attempt with that cell's error (``NotebookFailed``); the
  executed notebook, with the error in it, is saved all the same.

papermill (and nbclient, jupyter_client, zmq) are imported only when a notebook job runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ConfigError
from ..system import files
from ..targets.registry import Target
from .progress import progress

ENGINE = "notebookjobs"  #: the papermill engine registered here
DEFAULT_KERNEL = "python3"  #: for a notebook whose metadata names no kernel
KERNEL_START_TIMEOUT_S = 120  #: a cold disk makes a first kernel start slow
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class NotebookFailed(Exception):  # a job's failure, shown as its error (no "Error" suffix)
    """A cell of the notebook raised; the message is that cell's error."""


def outputs_dir(settings: Settings) -> Path:
    """Where executed notebooks go: ``outputs/`` beside the queue file (created 0700)."""
    return files.private_dir(settings.db_path.parent / "outputs")


def output_path(settings: Settings, job_id: int | None, target: str) -> Path:
    """``<outputs>/<id>-<name>.ipynb`` for the job (a foreground run without an id: ``run-``)."""
    stem = Path(target).stem
    return outputs_dir(settings) / f"{job_id if job_id is not None else 'run'}-{stem}.ipynb"


def run_notebook(settings: Settings, target: Target, args: list[Any], kwargs: dict[str, Any],
                 job_id: int | None) -> str:
    """Execute the notebook with ``kwargs`` as its parameters; the executed notebook's path.
    ``NotebookFailed`` with the failing cell's error when a cell raises."""
    try:  # checked at dispatch; again here, for a row written by other means
        target.signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise NotebookFailed(f"refused: {exc}; the parameters of {target.name} are: "
                             f"{', '.join(target.signature.parameters) or 'none'}") from None
    try:
        import papermill
        from papermill.exceptions import PapermillExecutionError
    except ImportError as exc:
        raise ConfigError("notebooks as jobs need papermill and ipykernel: pip install "
                          "'notebookjobs[notebooks]'") from exc
    _register_engine()
    source = Path(target.owner)
    out = output_path(settings, job_id, target.name)
    os.close(files.open_private(out, os.O_WRONLY | os.O_TRUNC))  # 0600 before papermill writes
    failures: list[BaseException] = []  # what nbclient raised for the failing cell
    # The kernel's own stdout and stderr carry its log ("running over TCP without
    # encryption", ...), not what the cells print (that comes as the cells' outputs): shown
    # in the job's output only when the kernel itself failed (it died, or did not start).
    with tempfile.TemporaryFile() as kernel_log:
        try:
            executed = papermill.execute_notebook(
                str(source), str(out), parameters=kwargs, engine_name=ENGINE,
                kernel_name=_kernel_name(source), progress_bar=False, log_output=False,
                cwd=str(source.parent), start_timeout=KERNEL_START_TIMEOUT_S,
                kernel_manager_class=_kernel_manager_class(kernel_log.fileno()),
                failures=failures)
        except PapermillExecutionError as exc:
            _echo_streams(_read(out))
            raise NotebookFailed(_cell_error(exc, failures, out)) from None
        except BaseException:
            kernel_log.seek(0)
            sys.stderr.write(kernel_log.read().decode("utf-8", "replace"))
            raise
        finally:
            files.narrow(out, files.FILE_MODE)
    _echo_streams(executed)
    return str(out)


def _read(path: Path) -> Any:
    """The notebook saved at ``path``; None if it cannot be read."""
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError):  # a partial file: its output is a courtesy, the error matters
        return None


def _kernel_name(source: Path) -> str | None:
    """None (papermill takes the notebook's own kernel) unless its metadata names none."""
    import nbformat

    spec = nbformat.read(source, as_version=4).metadata.get("kernelspec") or {}
    return None if spec.get("name") else DEFAULT_KERNEL


def _cell_error(exc: Any, failures: list[BaseException], out: Path) -> str:
    """The failing cell's error: where, what (``ename: evalue``), and its traceback without
    colour codes. ``failures``: what nbclient raised for the cell; it names the error where the
    cell has no error output (a line magic's ``UsageError`` is printed, not raised, and papermill
    then says only "CellExecutionError" with no reason)."""
    # Named as Jupyter shows it in the executed notebook ("In [4]"), where papermill's
    # injected-parameters cell counts too.
    where = f"cell In [{exc.exec_count}]" if exc.exec_count else f"cell {exc.cell_index + 1}"
    ename, evalue, trace = exc.ename, exc.evalue, "\n".join(exc.traceback or [])
    raised = failures[-1] if failures else None
    if ename == "CellExecutionError" and getattr(raised, "ename", None):
        ename, evalue = raised.ename, raised.evalue  # type: ignore[union-attr]
        trace = trace or str(getattr(raised, "traceback", "") or "")
    trace = _ANSI.sub("", trace)
    return f"{where} raised {ename}: {evalue}\n{trace}\n(the executed notebook: {out})"


def _echo_streams(notebook: Any) -> None:
    """Print what the cells printed, so that it becomes the job's captured output."""
    for cell in notebook.cells if notebook is not None else ():
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                stream = sys.stderr if output.get("name") == "stderr" else sys.stdout
                stream.write(output.get("text", ""))


_engine_registered = False


def _register_engine() -> None:
    """papermill's nbclient engine, reporting progress after each cell."""
    global _engine_registered
    if _engine_registered:
        return
    from papermill.engines import NBClientEngine, papermill_engines

    class ProgressEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: Any, **kwargs: Any) -> Any:
            total = max(1, len(nb_man.nb.cells))
            complete, failed = nb_man.cell_complete, nb_man.cell_exception
            failures: list[BaseException] = kwargs.pop("failures", [])

            def cell_exception(cell: Any, cell_index: int | None = None, **kw: Any) -> None:
                if kw.get("exception") is not None:
                    failures.append(kw["exception"])
                failed(cell, cell_index=cell_index, **kw)

            def cell_complete(cell: Any, cell_index: int | None = None, **kw: Any) -> None:
                complete(cell, cell_index=cell_index, **kw)
                done = (cell_index or 0) + 1
                progress(min(1.0, done / total), f"cell {done} of {total}")

            nb_man.cell_complete = cell_complete  # this run's manager only
            nb_man.cell_exception = cell_exception
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register(ENGINE, ProgressEngine)
    _engine_registered = True


_manager_class: type | None = None


def _kernel_manager_class(kernel_log: int) -> type:
    """``GroupKernelManager``, for one run: jupyter_client's manager with the provisioner
    below, whose kernel writes its stdout and stderr to the file ``kernel_log``."""
    base = _manager_class or _group_kernel_manager()
    # A subclass per run: nbclient instantiates the class it is given (a traitlets Type)
    return type(base.__name__, (base,), {"kernel_log": kernel_log})


def _group_kernel_manager() -> type:
    global _manager_class
    import uuid  # here, with jupyter_client: a pool child imports this module for every job

    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning import LocalProvisioner

    class GroupProvisioner(LocalProvisioner):
        """LocalProvisioner, but the kernel stays in the attempt's session and group."""

        async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
            options = self._scrub_kwargs(kwargs)
            env = options.pop("env", None) or os.environ.copy()
            env["JPY_PARENT_PID"] = str(os.getpid())  # the kernel ends when we do
            log = getattr(self.parent, "kernel_log", None)
            self.process = subprocess.Popen(
                [os.path.expanduser(part) for part in cmd], env=env, cwd=options.get("cwd"),
                stdin=subprocess.DEVNULL, stdout=options.get("stdout") if log is None else log,
                stderr=options.get("stderr") if log is None else log)
            self.pid = self.process.pid
            self.pgid = None  # never killpg: the group is the attempt's, this process included
            self.cwd = options.get("cwd") or os.getcwd()
            return self.connection_info

    class GroupKernelManager(AsyncKernelManager):
        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            if self.provisioner is None:  # set first: the base then keeps it
                self.kernel_id = self.kernel_id or kw.pop("kernel_id", None) or str(uuid.uuid4())
                self.provisioner = GroupProvisioner(kernel_id=self.kernel_id,
                                                    kernel_spec=self.kernel_spec, parent=self)
            return await super()._async_pre_start_kernel(**kw)

    _manager_class = GroupKernelManager
    return GroupKernelManager
