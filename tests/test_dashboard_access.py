"""The dashboard page against another user of the machine (SPEC §14, round 3: secrets never on a
command line). ``notebookjobs dashboard`` runs for real (Voila, a kernel); then a script run as
``nobody`` (``setpriv``; root runs it, as CI does) looks for the token where any user can read,
and tries the page, the kernels and the kernel's websocket without it. Before the fix the token
was on Voila's command line: ``nobody`` read it there and stopped the owner's worker."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import TEST_WHITELIST, new_project, wait_until

#: an interpreter ``nobody`` may run: the attacker needs the standard library only
NOBODY_PYTHON = "/usr/bin/python3"

#: what ``nobody`` does: everything it can find and try without the token (which it is told
#: on stdin, only to look for it)
ATTACKER = r'''
import http.client, json, os, socket, sys
task = json.loads(sys.stdin.read())
secret = task["secret"].encode()
found = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    for part in ("cmdline", "environ"):
        try:
            with open(f"/proc/{pid}/{part}", "rb") as f:
                if secret in f.read():
                    found.append(f"/proc/{pid}/{part}")
        except OSError:
            pass
paths = [os.path.join(folder, name) for root in task["folders"]
         for folder, _, names in os.walk(root) for name in names]
paths += [os.path.join(folder, name) for folder in task["tops"]
          for name in os.listdir(folder)]
for path in paths:
    try:
        with open(path, "rb") as f:
            if secret in f.read(4 * 2**20):
                found.append(path)
    except OSError:
        pass

def status(path, upgrade=False):
    conn = http.client.HTTPConnection("127.0.0.1", task["port"], timeout=30)
    headers = {}
    if upgrade:
        headers = {"Upgrade": "websocket", "Connection": "Upgrade",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
    conn.request("GET", path, headers=headers)
    answer = conn.getresponse().status
    conn.close()
    return answer

answers = {"page": status("/"), "kernels": status("/api/kernels"),
           "websocket": status(f"/api/kernels/{task['kernel']}/channels", upgrade=True)}
try:
    open(task["connection_file"]).read()
    connection_file = "read"
except OSError as exc:
    connection_file = type(exc).__name__
print(json.dumps({"found": found, "answers": answers, "connection_file": connection_file}))
'''


def _can_run_as_nobody() -> str | None:
    """Why the test cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root to run a script as nobody (CI runs as root)"
    if shutil.which("setpriv") is None or not os.access(NOBODY_PYTHON, os.X_OK):
        return f"needs setpriv and {NOBODY_PYTHON}"
    try:
        import voila  # noqa: F401
    except ImportError:
        return "Voila is not installed: pip install -e '.[dashboard]' (make test does)"
    return None


def _as_nobody(code: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           NOBODY_PYTHON, "-c", code], input=stdin, capture_output=True,
                          text=True, timeout=300, cwd="/")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder every user may enter (pytest's own are 0700, which would hide everything in
    them from ``nobody`` whatever its modes): the project and Jupyter's state live there."""
    base = Path(tempfile.mkdtemp(prefix="nj-dashboard-", dir="/tmp"))
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _ws_status(port: int, path: str) -> str:
    """The status line of a websocket upgrade of ``path``."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        return conn.recv(200).split(b"\r\n")[0].decode()


def _kernel_connection_file(parent: int) -> str:
    """The connection file of the kernel a process started (its ``-f`` argument)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if _parent(int(pid)) == parent and b"-f" in args:
            return args[args.index(b"-f") + 1].decode()
    return ""


def test_another_user_finds_no_token_and_cannot_use_the_page_or_the_kernel(open_folder):
    why_not = _can_run_as_nobody()
    if why_not:
        pytest.skip(why_not)
    # Given `notebookjobs dashboard` serving a project in a folder every user may enter, with
    # Jupyter's runtime files and the temp folder there too
    root = new_project(open_folder / "project", TEST_WHITELIST)
    for path in (root.root, root.root / "jobs"):
        os.chmod(path, 0o755)
    state = open_folder / "state"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    port = _free_port()
    env = {**root.env(), "JUPYTER_RUNTIME_DIR": str(state), "TMPDIR": str(state),
           "JUPYTER_CONFIG_DIR": str(state / "config"), "JUPYTER_DATA_DIR": str(state / "data"),
           "IPYTHONDIR": str(state / "ipython"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = open_folder / "dashboard.out"  # the owner's terminal: only theirs to read
    with open(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "notebookjobs", "dashboard", "--port",
                                 str(port)], cwd=root.root, env=env, stdin=subprocess.DEVNULL,
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: proc.poll() is not None or "token=" in out.read_text(), timeout=120,
                   what="notebookjobs dashboard to print its address")
        assert proc.poll() is None, out.read_text()
        url = re.search(r"http://127\.0\.0\.1:\d+/\?token=(\S+)", out.read_text())
        assert url, out.read_text()
        token = url.group(1)
        # And the owner has opened the page (its kernel runs the dashboard)
        with urllib.request.urlopen(url.group(0), timeout=120) as page:
            html = page.read().decode()
        kernel = re.search(r'kernelId": "([0-9a-f-]{36})"', html)
        assert kernel, html[:2000]
        voila = next(int(p) for p in os.listdir("/proc") if p.isdigit()
                     and _parent(int(p)) == proc.pid)
        connection_file = wait_until(lambda: _kernel_connection_file(voila),
                                     what="the page's kernel")
        # (the owner, with the token, may open the kernel's websocket: the address is right)
        assert " 101 " in _ws_status(port, f"/api/kernels/{kernel.group(1)}/channels"
                                           f"?token={token}")

        # When `nobody` looks for the token and tries the page and the kernel without it
        task = {"secret": token, "port": port, "kernel": kernel.group(1),
                "connection_file": connection_file,
                "folders": [str(open_folder)], "tops": ["/tmp", tempfile.gettempdir()]}
        done = _as_nobody(ATTACKER, json.dumps(task))
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout)

        # Then it found the token nowhere: no command line, no file it can read
        assert seen["found"] == [], seen["found"]
        # And it got neither the page, nor the kernels, nor the kernel's websocket, nor the
        # kernel's connection file (whose key would let it talk to the kernel directly)
        assert seen["answers"]["page"] in (302, 401, 403), seen
        assert seen["answers"]["kernels"] in (302, 401, 403, 404), seen
        assert seen["answers"]["websocket"] in (401, 403), seen
        assert seen["connection_file"] == "PermissionError", seen
        assert os.stat(connection_file).st_mode & 0o077 == 0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return -1


def test_a_token_of_the_users_choosing_comes_from_the_environment_checked(project):
    # A token that cannot go into an address is refused, in one line that says what it takes
    env = {**project.env(), "NOTEBOOKJOBS_DASHBOARD_TOKEN": "a b"}
    proc = subprocess.Popen([sys.executable, "-m", "notebookjobs", "dashboard", "--port",
                             str(_free_port())], cwd=project.root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=120)
    finally:  # had it started Voila anyway, nothing of it outlives the test
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    bad = subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr)
    assert bad.returncode != 0
    assert "NOTEBOOKJOBS_DASHBOARD_TOKEN" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    # And --token is gone: a secret is never an argument
    old = project.cli("dashboard", "--token", secrets.token_hex(8))
    assert old.returncode == 2 and "--token" in old.stderr
