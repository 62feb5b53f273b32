"""Getting a Dask cluster ready for a worker's attempts (SPEC §18): connect to its scheduler,
upload the project if asked, and check that every Dask worker can run this project's jobs, so
that a worker refuses to start with a clear message instead of failing every attempt later.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ....errors import WorkerError

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 30.0  #: seconds to reach the scheduler at start
#: the folders of a project that are never uploaded to the cluster: the queue (private, and
#: large), logs, environments, caches, version control, and Dask's own defaults (tests, docs)
UPLOAD_SKIP = (".git", ".github", ".pytest_cache", "tests", "docs", ".notebookjobs", "logs",
               ".venv", "venv", "__pycache__", ".ipynb_checkpoints", "node_modules", ".mypy_cache",
               ".ruff_cache")
#: bytes of project an upload may carry: it goes through the scheduler, in memory, to every
#: Dask worker; data that large belongs on a shared filesystem
UPLOAD_LIMIT_BYTES = 256 * 1024 * 1024
INSTALL_HINT = "pip install 'notebookjobs[dask]'"  #: how to get the Dask executor's dependency


def connect(address: str) -> Client:
    """A client of the scheduler at ``address``; ``WorkerError`` saying what to do if none."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise WorkerError(f"the Dask executor needs the distributed package: {INSTALL_HINT}"
                          ) from exc
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise WorkerError(f"cannot reach the Dask scheduler at {address} ({exc}); start it, or "
                          "fix worker.dask.scheduler in whitelist.yaml (or --dask)") from exc


def upload(client: Client, root: Path) -> None:
    """The project root to every Dask worker, now and as they join (Dask's UploadDirectory
    plugin, which unpacks it beside the workers' own folders); ``WorkerError`` if too large."""
    from distributed.diagnostics.plugin import UploadDirectory

    skipped = frozenset(UPLOAD_SKIP)
    size = sum(path.stat().st_size for path in root.rglob("*")
               if path.is_file() and not set(path.relative_to(root).parts) & skipped)
    if size > UPLOAD_LIMIT_BYTES:
        raise WorkerError(f"the project folder {root} holds {size / 2**20:.0f} MiB to upload to "
                          f"the Dask workers, over {UPLOAD_LIMIT_BYTES // 2**20} MiB: move large "
                          "data out of it, or share the folder with the workers instead "
                          "(worker.dask.upload: false)")
    client.register_plugin(UploadDirectory(str(root), skip_words=UPLOAD_SKIP))
    logger.info("uploaded %s (%.1f MiB) to the Dask workers", root, size / 2**20)


def check_workers(client: Client, root: Path, uploaded: bool, address: str) -> None:
    """``WorkerError`` naming each Dask worker that cannot import notebookjobs or find the
    project: every attempt sent there would fail."""
    from .task import probe

    answers = client.run(probe, str(root), uploaded, on_error="return")
    problems = []
    for where, answer in sorted(answers.items()):
        if isinstance(answer, BaseException):
            problems.append(f"{where}: cannot run notebookjobs there "
                            f"({type(answer).__name__}: {answer})")
        elif answer.get("problem"):
            problems.append(f"{where}: {answer['problem']}")
    if problems:
        raise WorkerError(
            f"the Dask cluster at {address} cannot run this project's jobs:\n  "
            + "\n  ".join(problems) + "\nInstall notebookjobs in the Dask workers' Python "
            f"environment ({INSTALL_HINT}, the same version as here) and make the project "
            "reach them (README: More than one machine)")
