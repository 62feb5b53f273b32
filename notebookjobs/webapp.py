"""``notebookjobs dashboard`` (SPEC §19): the dashboard as a web page, for people who are not
in a notebook.

Voila runs the package's page notebook (``page/notebookjobs.ipynb``: the widget and nothing
else) in a kernel of its own and serves its widgets as a page on 127.0.0.1, behind
a token. The project is the one found from the current folder (any folder of it), handed to the
kernel as ``$NOTEBOOKJOBS_ROOT``. Voila's own log goes to ``<root>/logs/dashboard.log``.

The page loads nothing from outside 127.0.0.1: Voila runs our template (``page/voila``, its lab
template without the stylesheets it asks a CDN for) and not ipylab's extension (a Lab plugin
that cannot start outside Lab). A closed page's kernel is culled: the dashboard stops sending
anything once its tab is hidden, so the kernel goes idle, and jupyter_server's culler ends
kernels idle without a connection for ``CULL_AFTER_S``.

The command stays in the foreground, like ``jupyter lab``: Ctrl-C or SIGTERM stops Voila, which
shuts its kernels down. The worker a dispatch from the page starts keeps running, as it does
after a notebook closes.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib.resources import files
from pathlib import Path
from types import FrameType

from . import files as private_files
from .config import ENV_ROOT, load_settings
from .errors import NotebookJobsError

START_TIMEOUT_S = 60.0  #: Voila answers in 1.5 to 3 s on 2 busy cores; a cold start takes longer
STOP_TIMEOUT_S = 30.0  #: how long Voila gets to shut its kernels down after SIGTERM
_POLL_S = 0.2
#: a kernel whose page was closed (idle, nothing connected) is ended after this many seconds
#: (jupyter_server's MappingKernelManager culler, which Voila uses; checked every CULL_EVERY_S)
CULL_AFTER_S = 60
CULL_EVERY_S = 15


def notebook_path() -> Path:
    """The notebook Voila serves (package data, a real file in an installed wheel)."""
    return Path(str(files("notebookjobs").joinpath("page", "notebookjobs.ipynb")))


def template_path() -> Path:
    """The folder to put on ``$JUPYTER_PATH`` for Voila to find our template."""
    return notebook_path().parent


def command(port: int, token: str, cull_after: int = CULL_AFTER_S,
            cull_every: int = CULL_EVERY_S) -> list[str]:
    """Voila on 127.0.0.1:``port`` with ``token``, in this Python (so the kernel is this
    environment's too); its environment needs ``voila_env``. ``cull_after``: seconds a page's
    kernel lives on, idle and unconnected, once its page is closed."""
    return [sys.executable, "-m", "voila", str(notebook_path()), "--no-browser",
            "--Voila.ip=127.0.0.1", f"--port={port}", "--Voila.port_retries=0",
            f"--token={token}", "--theme=light", "--template=notebookjobs",
            "--VoilaConfiguration.extension_denylist=['ipylab']",
            f"--MappingKernelManager.cull_idle_timeout={cull_after}",
            f"--MappingKernelManager.cull_interval={cull_every}",
            "--MappingKernelManager.cull_connected=False"]


def voila_env(base: dict[str, str]) -> dict[str, str]:
    """``base`` with our template's folder first on ``$JUPYTER_PATH``."""
    paths = [str(template_path()), *filter(None, base.get("JUPYTER_PATH", "").split(os.pathsep))]
    return dict(base, JUPYTER_PATH=os.pathsep.join(paths))


class _Stop(Exception):
    """SIGTERM arrived: stop Voila as Ctrl-C would."""


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def serve(port: int = 8866, token: str | None = None, open_browser: bool = False) -> int:
    """Run Voila until Ctrl-C or SIGTERM; its exit code (0 after a stop we asked for)."""
    if importlib.util.find_spec("voila") is None:
        raise NotebookJobsError("the dashboard page needs Voila, which is not installed here: "
                                "pip install 'notebookjobs[dashboard]'")
    if not 1 <= port <= 65535:
        raise NotebookJobsError(f"--port {port} is not a port; give one from 1 to 65535")
    settings = load_settings(strict=False)  # a broken whitelist.yaml shows in red on the page
    token = token if token is not None else secrets.token_urlsafe(24)
    log_path = settings.logs_dir / "dashboard.log"
    private_files.private_dir(log_path.parent)
    env = voila_env(dict(os.environ, **{ENV_ROOT: str(settings.root)}))
    url = f"http://127.0.0.1:{port}/?token={token}"
    previous = signal.signal(signal.SIGTERM, _on_term)
    log_fd = private_files.open_private(log_path, os.O_WRONLY | os.O_APPEND)
    try:
        proc = subprocess.Popen(command(port, token), stdin=subprocess.DEVNULL, stdout=log_fd,
                                stderr=subprocess.STDOUT, env=env, cwd=settings.root)
    finally:
        os.close(log_fd)
    try:
        _wait_ready(proc, port, token, log_path)
        print(f"the dashboard of {settings.root} is at\n  {url}\n"
              f"(Voila's log: {log_path}; Ctrl-C stops it)", flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        code = proc.wait()
        raise NotebookJobsError(f"Voila stopped by itself (exit code {code}); see {log_path}")
    except (KeyboardInterrupt, _Stop):
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], port: int, token: str, log_path: Path) -> None:
    """Until Voila answers. Its favicon, not ``/``: a GET of ``/`` would start a kernel."""
    probe = f"http://127.0.0.1:{port}/voila/static/favicon.ico?token={token}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise NotebookJobsError(f"Voila exited (code {proc.returncode}) before it served the "
                                    f"page: {_last_line(log_path)} (see {log_path})")
        try:
            with urllib.request.urlopen(probe, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise NotebookJobsError(f"Voila did not answer on port {port} within "
                                    f"{START_TIMEOUT_S:g} s; see {log_path}")
        time.sleep(_POLL_S)


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "no output"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S: Voila shuts its kernels down on SIGTERM."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
