"""``notebookjobs dashboard`` (SPEC §19): the dashboard as a web page, for people who are not
in a notebook.

Voila runs the package's page notebook (``page/notebookjobs.ipynb``: the widget and nothing
else) in a kernel of its own and serves its widgets as a page on 127.0.0.1, behind
a token. The project is the one found from the current folder (any folder of it), handed to the
kernel as ``$NOTEBOOKJOBS_ROOT``. Voila's own log goes to ``<root>/logs/dashboard.log``.

The token is a secret: whoever has it can click *Stop worker*, dispatch, cancel (SPEC §14). It
is never on a command line, which every user of the machine reads in ``ps``: Voila is told to
use a token (``--Voila.auto_token``) and Jupyter Server's identity provider reads it from the
0600 file ``$JUPYTER_TOKEN_FILE`` names (in a 0700 folder of its own), deleted once Voila has
answered with it, so that neither the kernel nor the worker it may start inherits it. A token
of the user's choosing comes from ``$NOTEBOOKJOBS_DASHBOARD_TOKEN``.

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
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from importlib.resources import files
from pathlib import Path
from types import FrameType

from ..config import ENV_ROOT, load_settings
from ..errors import ConfigError, NotebookJobsError
from ..system import files as private_files

#: the environment variable a token of the user's choosing comes from (default: a random one)
ENV_TOKEN = "NOTEBOOKJOBS_DASHBOARD_TOKEN"
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


def command(port: int, cull_after: int = CULL_AFTER_S,
            cull_every: int = CULL_EVERY_S) -> list[str]:
    """Voila on 127.0.0.1:``port``, in this Python (so the kernel is this environment's too),
    with a token it reads from ``$JUPYTER_TOKEN_FILE`` (``token_file``): Voila 0.5's
    ``auto_token`` lets Jupyter Server's identity provider (>= 2.0.1) pick it up there. Its
    environment needs ``voila_env``. ``cull_after``: seconds a page's kernel lives on, idle and
    unconnected, once its page is closed."""
    return [sys.executable, "-m", "voila", str(notebook_path()), "--no-browser",
            "--Voila.ip=127.0.0.1", f"--port={port}", "--Voila.port_retries=0",
            "--Voila.auto_token=True", "--theme=light", "--template=notebookjobs",
            "--VoilaConfiguration.extension_denylist=['ipylab']",
            f"--MappingKernelManager.cull_idle_timeout={cull_after}",
            f"--MappingKernelManager.cull_interval={cull_every}",
            "--MappingKernelManager.cull_connected=False"]


def voila_env(base: dict[str, str]) -> dict[str, str]:
    """``base`` with our template's folder first on ``$JUPYTER_PATH``."""
    paths = [str(template_path()), *filter(None, base.get("JUPYTER_PATH", "").split(os.pathsep))]
    return dict(base, JUPYTER_PATH=os.pathsep.join(paths))


def token_file(token: str) -> Path:
    """A new 0600 file holding ``token``, alone in a new 0700 folder (``tempfile.mkdtemp``);
    the caller removes the folder."""
    path = Path(tempfile.mkdtemp(prefix="notebookjobs-dashboard-")) / "token"
    fd = private_files.open_private(path, os.O_WRONLY | os.O_EXCL)
    try:
        os.write(fd, token.encode())  # read whole, as it is: no newline
    finally:
        os.close(fd)
    return path


def _token() -> str:
    """``$NOTEBOOKJOBS_DASHBOARD_TOKEN``, checked (it goes into the page's address), or a new
    random token."""
    chosen = os.environ.get(ENV_TOKEN)
    if not chosen:
        return secrets.token_urlsafe(24)
    if not re.fullmatch(r"[A-Za-z0-9._~-]{8,256}", chosen):
        raise NotebookJobsError(f"${ENV_TOKEN} must be 8 to 256 letters, digits or ._~- "
                                "(it goes into the page's address); unset it for a random one")
    return chosen


class _Stop(Exception):
    """SIGTERM arrived: stop Voila as Ctrl-C would."""


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def serve(port: int = 8866, open_browser: bool = False) -> int:
    """Run Voila until Ctrl-C or SIGTERM; its exit code (0 after a stop we asked for). The
    token is ``$NOTEBOOKJOBS_DASHBOARD_TOKEN``, else a new random one."""
    if importlib.util.find_spec("voila") is None:
        raise ConfigError("the dashboard page needs Voila, which is not installed here: "
                          "pip install 'notebookjobs[dashboard]'")
    _check_kernel()
    if not 1 <= port <= 65535:
        raise NotebookJobsError(f"--port {port} is not a port; give one from 1 to 65535")
    settings = load_settings(strict=False)  # a broken whitelist.yaml shows in red on the page
    token = _token()
    log_path = settings.logs_dir / "dashboard.log"
    private_files.private_dir(log_path.parent)
    secret = token_file(token)
    env = {name: value for name, value in voila_env(dict(os.environ)).items()
           if name not in ("JUPYTER_TOKEN", ENV_TOKEN)}  # JUPYTER_TOKEN would win over the file
    env.update({ENV_ROOT: str(settings.root), "JUPYTER_TOKEN_FILE": str(secret)})
    url = f"http://127.0.0.1:{port}/?token={token}"
    previous = signal.signal(signal.SIGTERM, _on_term)
    try:
        log_fd = private_files.open_private(log_path, os.O_WRONLY | os.O_APPEND)
        try:
            proc = subprocess.Popen(command(port), stdin=subprocess.DEVNULL, stdout=log_fd,
                                    stderr=subprocess.STDOUT, env=env, cwd=settings.root)
        finally:
            os.close(log_fd)
    except BaseException:
        shutil.rmtree(secret.parent, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
        raise
    try:
        try:
            _wait_ready(proc, port, token, log_path)
        finally:  # Voila reads it before it listens (the URL it logs): no one needs it now
            shutil.rmtree(secret.parent, ignore_errors=True)
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


def _check_kernel() -> None:
    """``ConfigError`` unless the page's kernel can start: Voila runs the page in a Jupyter
    kernel for Python (ipykernel), without which every GET of the page answers 500 while the
    command would print its address as if all were well."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    name = json.loads(notebook_path().read_text())["metadata"]["kernelspec"]["name"]
    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise ConfigError(f"the dashboard page runs in a Jupyter kernel {name!r} for Python, and "
                          "none is installed here: pip install 'notebookjobs[dashboard]' (it "
                          "brings ipykernel), or pip install ipykernel") from None


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
