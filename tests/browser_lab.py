"""JupyterLab, Voila and headless Chromium for the browser tests (tests/test_browser*.py).

JupyterLab listens on 127.0.0.1 only, with a token, and keeps its state (config, data, runtime,
workspaces, IPython profile) in temp folders; the browser is Debian's /usr/bin/chromium driven
by the PyPI ``playwright`` package, which is never asked to download one (``playwright
install`` is not run). The waits follow ../shared/browser-testing.md: a kernel is ready for
"Run All" only once the debugger button is enabled *and* the execution indicator is idle,
and a Run All that was dropped is issued again.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-quic", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--metrics-recording-only",
]
BIN = Path(sys.executable).parent  # the venv's bin/: jupyter-lab, and python for the kernel
STDERR_OUTPUT = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'

if TYPE_CHECKING:
    from playwright.sync_api import Page


def require_browser() -> None:
    """Skip when Chromium (or playwright) is missing, except in CI (``$CI`` set): a failure."""
    if not os.path.exists(CHROMIUM):
        reason = (f"{CHROMIUM} is missing, so the browser test cannot run; install Debian's "
                  "chromium (apt-get install chromium, as .ci/run does)")
    else:
        try:
            import playwright.sync_api  # noqa: F401
            return
        except ImportError:
            reason = "playwright is not installed: pip install -e '.[test]'"
    if os.environ.get("CI"):
        pytest.fail(reason + "; in CI it must run, not skip")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lab_env(base: dict[str, str], state: Path) -> dict[str, str]:
    """``base`` plus Jupyter state under ``state`` and the venv first on PATH.

    The news toast and the update check are switched off in the user settings, or the toast
    would sit over the bottom right of the page (and of the screenshot).
    """
    env = dict(base)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"), ("IPYTHONDIR", "ipython")):
        (state / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(state / sub)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("JUPYTER_PATH", None)
    settings = state / "config/lab/user-settings/@jupyterlab/apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')
    return env


def require_voila() -> None:
    """Skip when Voila is missing, except in CI (``$CI`` set): a failure."""
    try:
        import voila  # noqa: F401
    except ImportError:
        reason = "Voila is not installed: pip install -e '.[dashboard]' (make test does)"
        if os.environ.get("CI"):
            pytest.fail(reason + "; in CI it must run, not skip")
        pytest.skip(reason)


def leftovers(root: Path) -> list[str]:
    """Voila or kernel processes still running for the project at ``root`` (Linux /proc)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = Path(entry.path, "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # it ended while we looked, or is not ours to read
        if f"NOTEBOOKJOBS_ROOT={root}".encode() in environ and (
                "voila" in cmdline or "ipykernel" in cmdline):
            found.append(f"{entry.name}: {cmdline}")
    return found


@contextmanager
def running(cmd: list[str], *, cwd: Path, env: dict[str, str], log: Path,
            group: bool = False) -> Iterator[subprocess.Popen]:
    """A server started in a session of its own, its output in ``log``; at the end stopped
    with SIGTERM (to its whole process group with ``group``, else to it alone, which must stop
    its children itself), then SIGKILL to the group if it is still there after 30 s."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            if group:
                os.killpg(proc.pid, signal.SIGTERM)
            else:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    """Until ``url`` answers 200; fails at once when ``proc`` (the server) has exited."""
    deadline = time.monotonic() + timeout
    name = str(proc.args)[:200]
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{name} exited with {proc.returncode} before it answered:\n"
                        + log.read_text(errors="replace")[-4000:])
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{name} did not answer {url} within {timeout} s")
        time.sleep(0.2)


class Lab:
    """A running JupyterLab: ``url(path)`` opens a file of its root folder."""

    def __init__(self, base: str, token: str, log: Path) -> None:
        self.base, self.token, self.log = base, token, log

    def url(self, path: str) -> str:
        return f"{self.base}/lab/tree/{path}?token={self.token}"


@contextmanager
def jupyter_lab(root: Path, env: dict[str, str], log: Path) -> Iterator[Lab]:
    """JupyterLab serving ``root``; stopped (with its kernels) by SIGTERM to its pid."""
    port, token = free_port(), secrets.token_hex(16)
    cmd = [str(BIN / "jupyter-lab"), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
           f"--IdentityProvider.token={token}", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    base = f"http://127.0.0.1:{port}"
    # jupyter_server shuts its kernels down on SIGTERM.
    with running(cmd, cwd=root, env=env, log=log) as proc:
        wait_http(f"{base}/api/status?token={token}", proc, log)
        yield Lab(base, token, log)


@contextmanager
def chromium_page(width: int, height: int) -> Iterator[tuple[Page, list[str]]]:
    """A page of headless Chromium and the list its uncaught JS errors are appended to."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            page.set_default_timeout(30_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page, errors
            context.close()
        finally:
            browser.close()


def wait_kernel_ready(page) -> None:
    """The kernel is connected (debugger button enabled), then idle.

    Idle alone is not enough: it can show before the kernel's websocket is open, and a Run All
    issued then is dropped without a word.
    """
    page.locator('.jp-DebuggerBugButton[aria-disabled="false"]').wait_for(timeout=90_000)
    page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=90_000)


def _menu(page, menu: str, command: str) -> None:
    page.get_by_role("menuitem", name=menu, exact=True).click()
    page.locator(f'li[data-command="{command}"]').click()


def clear_outputs(page) -> None:
    """Edit > Clear Outputs of All Cells: the stored outputs (and prompts) go away."""
    from playwright.sync_api import expect

    _menu(page, "Edit", "editmenu:clear-all")
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt")
    for prompt in (prompts.first, prompts.last):
        expect(prompt).to_have_text(re.compile(r"^\[ \]:?$"), timeout=10_000)


def run_all(page, attempts: int = 3) -> None:
    """Run > Run All Cells; issued again if the cells were not queued (prompts stay ``[ ]``)."""
    from playwright.sync_api import expect

    prompts = page.locator(".jp-CodeCell .jp-InputPrompt")
    for attempt in range(1, attempts + 1):
        _menu(page, "Run", "runmenu:run-all")
        try:
            expect(prompts.last).to_have_text(re.compile(r"\[(\*|\d+)\]"), timeout=10_000)
            return
        except AssertionError:
            print(f"Run All attempt {attempt} did not queue the cells; issuing it again")
    pytest.fail("Run All Cells never started executing")


def wait_all_run(page, timeout_ms: int = 180_000) -> None:
    """Every code cell has run: each prompt shows ``[n]``, none ``[*]``."""
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""", timeout=timeout_ms)
