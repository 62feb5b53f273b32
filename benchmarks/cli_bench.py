"""The CLI's figures of SPEC §13 (round 3): how long a whole ``notebookjobs`` process takes, as a
pip user runs it, beside rq's and celery's ``--version`` measured in the same run.

    python benchmarks/cli_bench.py [--runs 20]

The wheel of the current source (``scripts/build_wheel.py``) is installed with no extra into a
venv of the benchmark's own (``benchmarks/out/cli-venv``, with rq and celery, for their
``--version`` only; kept while pyproject.toml is the same), and a project is made there with
``notebookjobs init``. Each command is run ``--runs`` times after two warm-up runs, as a whole
process (fork, exec, imports, work, exit), timed from the parent; the median is the figure.
Writes ``benchmarks/CLI.md`` (which ``run.py`` puts in RESULTS.md) and the same section into
RESULTS.md in place. Have the machine to yourself meanwhile (or a lock every heavy job takes).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "scripts"))

import build_wheel  # noqa: E402

OUT = HERE / "out"
VENV = OUT / "cli-venv"
CLI_MD = HERE / "CLI.md"
RESULTS = HERE / "RESULTS.md"
BEGIN, END = "<!-- cli figures: benchmarks/cli_bench.py -->", "<!-- /cli figures -->"
#: the others' CLIs, for their --version (what their users wait for the least)
PEERS = ("rq", "celery")
#: figure -> SPEC §13's target in ms
TARGETS = {"--version": 60.0, "status ID (worker running)": 150.0,
           "cancel ID (worker running)": 150.0, "dispatch (worker running)": 200.0}


def venv() -> Path:
    """The bench venv's bin folder, with the wheel of the current source reinstalled."""
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes() + sys.version.encode())
    stamp = VENV / ".made-from"
    wheel = build_wheel.build(OUT / "cli-wheel")
    python = VENV / "bin" / "python"
    pip = [str(python), "-m", "pip", "--quiet", "--disable-pip-version-check", "install"]
    if not stamp.exists() or stamp.read_text() != key.hexdigest():
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([*pip, str(wheel), *PEERS], check=True, capture_output=True)
        stamp.write_text(key.hexdigest())
    subprocess.run([*pip, "--no-deps", "--force-reinstall", str(wheel)], check=True,
                   capture_output=True)
    return VENV / "bin"


def timed(command: list[str] | Callable[[int], list[str]], cwd: Path, env: dict[str, str],
          runs: int) -> list[float]:
    """Milliseconds of ``command`` (or of ``command(i)`` for run ``i``) as a whole process,
    ``runs`` times after two warm-ups."""
    times = []
    for i in range(runs + 2):
        argv = command(i) if callable(command) else command
        started = time.perf_counter()
        out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True)
        took = (time.perf_counter() - started) * 1000
        if out.returncode != 0:
            raise SystemExit(f"`{' '.join(argv)}` exited {out.returncode}: {out.stderr!r}")
        if i >= 2:
            times.append(took)
    return times


def measure(runs: int) -> tuple[dict[str, list[float]], dict[str, str]]:
    bin_dir = venv()
    nj = str(bin_dir / "notebookjobs")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTEBOOKJOBS_", "VIRTUAL"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="nj-cli-bench-") as tmp:
        root = Path(tmp) / "project"
        subprocess.run([nj, "init", str(root)], check=True, capture_output=True, env=env)
        whitelist = root / "whitelist.yaml"
        whitelist.write_text(whitelist.read_text().replace("autostart: true", "autostart: false"))

        def dispatched(*args: str) -> int:
            out = subprocess.run([nj, "dispatch", *args], cwd=root, env=env, check=True,
                                 capture_output=True, text=True)
            return int(out.stdout)

        job = dispatched("jobs.example.count_lines", "--delay", "1h")
        figures["python -c pass"] = timed([str(bin_dir / "python"), "-c", "pass"], root, env,
                                          runs)
        figures["--version"] = timed([nj, "--version"], root, env, runs)
        for peer in PEERS:
            figures[f"{peer} --version"] = timed([str(bin_dir / peer), "--version"], root, env,
                                                 runs)
        figures["status ID (no worker)"] = timed([nj, "status", str(job)], root, env, runs)
        figures["list (no worker)"] = timed([nj, "list"], root, env, runs)
        subprocess.run([nj, "worker", "start"], cwd=root, env=env, check=True,
                       capture_output=True)
        try:
            figures["status ID (worker running)"] = timed([nj, "status", str(job)], root, env,
                                                          runs)
            pending = [dispatched("jobs.example.count_lines", "--delay", "1h")
                       for _ in range(runs + 2)]
            figures["cancel ID (worker running)"] = timed(
                lambda i: [nj, "cancel", str(pending[i])], root, env, runs)
            figures["dispatch (worker running)"] = timed(
                [nj, "dispatch", "jobs.example.count_lines"], root, env, runs)
            figures["list (worker running)"] = timed([nj, "list"], root, env, runs)
        finally:
            subprocess.run([nj, "worker", "stop"], cwd=root, env=env, capture_output=True)
    versions = {"python": platform.python_version()}
    for name in ("notebookjobs", *PEERS):
        out = subprocess.run([str(bin_dir / "python"), "-c", "import importlib.metadata as m; "
                              f"print(m.version({name!r}))"], capture_output=True, text=True)
        versions[name] = out.stdout.strip()
    return figures, versions


def report(figures: dict[str, list[float]], versions: dict[str, str], runs: int) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    lines = [BEGIN, "## The CLI, as a whole process (SPEC §13, round 3)", "",
             f"Measured by `python benchmarks/cli_bench.py` on {datetime.now(UTC):%Y-%m-%d %H:%M}"
             f" UTC (commit {commit}; {os.cpu_count()} cores; "
             + ", ".join(f"{k} {v}" for k, v in versions.items()) + "): the wheel installed "
             "with no extra in a venv of its own, a project made by `notebookjobs init`, each "
             f"command run {runs} times after two warm-ups, timed from the parent (fork to "
             "exit); rq's and celery's `--version` in the same venv and run.", "",
             "| command | median ms | min–max ms | target | holds |", "|---|---|---|---|---|"]
    for name, values in figures.items():
        target = TARGETS.get(name)
        median = statistics.median(values)
        holds = "" if target is None else ("yes" if median <= target else "**no**")
        lines.append(f"| `{name}` | {median:.0f} | {min(values):.0f}–{max(values):.0f} | "
                     f"{'' if target is None else f'≤ {target:g} ms'} | {holds} |")
    lines += ["", END]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each (default 20)")
    ns = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    figures, versions = measure(ns.runs)
    section = report(figures, versions, ns.runs)
    print(section)
    CLI_MD.write_text(section)
    if RESULTS.exists():
        text = RESULTS.read_text()
        found = re.search(re.escape(BEGIN) + ".*?" + re.escape(END) + "\n", text, re.S)
        text = (text[:found.start()] + section + text[found.end():] if found
                else text.rstrip("\n") + "\n\n" + section)
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
