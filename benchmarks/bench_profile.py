"""py-spy of the notebookjobs worker during a drain of no-op jobs (untimed): where its time goes.

``py-spy record --subprocesses`` launches the burst worker, samples it and its pool children, and
writes raw stacks; this module folds them into the two tables RESULTS.md shows (the hottest
frames by inclusive share of samples, and the hottest leaf frames).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench_common import kill_group, log, untrack

_PROCESS = re.compile(r"^process (\d+):")


def _py_spy() -> str | None:
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def profile_drain(project, n: int, out_dir: Path, rate: int = 250) -> str:
    """Markdown with the profile of a burst worker draining ``n`` queued no-op jobs."""
    import nj_bench

    spy = _py_spy()
    if spy is None:
        return "py-spy is not installed (pip install py-spy); no profile.\n"
    project.reset()
    log(f"profile: queueing {n:,} no-op jobs")
    project.queue(n, nj_bench.NOOP)
    raw = out_dir / "worker-profile.txt"
    for stale in (raw, out_dir / "worker-profile.log"):
        stale.unlink(missing_ok=True)
    command = [spy, "record", "--rate", str(rate), "--subprocesses", "--format", "raw",
               "--output", str(raw), "--", sys.executable, "-m", "notebookjobs.worker", "--burst",
               "--concurrency", "2"]
    log("profile: py-spy record of the burst worker")
    t0 = time.perf_counter()
    from bench_common import popen

    proc = popen(command, what="py-spy of the burst worker", cwd=project.root, env=project.env(),
                 log_path=out_dir / "worker-profile.log")
    try:
        code = proc.wait(timeout=max(300.0, n / 10))
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        return "py-spy run timed out; no profile.\n"
    except BaseException:
        kill_group(proc.pid)
        raise
    untrack(proc.pid)
    elapsed = time.perf_counter() - t0
    if code != 0 or not raw.exists():
        tail = (out_dir / "worker-profile.log").read_text(errors="replace")[-1500:]
        return f"py-spy failed (exit code {code}):\n\n```\n{tail}\n```\n"
    return summarize(raw, n, elapsed, rate)


_CHILD_FRAME = re.compile(r"_?child_main \(")


def _clean(frame: str) -> str:
    frame = re.sub(r"\(/[^)]*/(site-packages|lib/python3\.\d+)/", "(", frame)
    return re.sub(r"\(/[^)]*/notebookjobs/", "(notebookjobs/", frame)


def summarize(raw: Path, n: int, elapsed: float, rate: int) -> str:
    by_process: Counter[str] = Counter()
    inclusive: dict[str, Counter[str]] = {"worker": Counter(), "children": Counter()}
    leaves: dict[str, Counter[str]] = {"worker": Counter(), "children": Counter()}
    totals = Counter()
    samples = []
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        # A child's stack starts with its parent's "process N:" frame, then its own
        frames = stack.split(";")
        pids = []
        while frames and (match := _PROCESS.match(frames[0])):
            pids.append(match.group(1))
            frames = frames[1:]
        pid = pids[-1] if pids else None
        samples.append((pid, [f for f in frames if not f.startswith("thread (")], count, stack))
    # The worker is the process started as notebookjobs.worker; every other one is a pool child
    # (whose threads, its pipe reader among them, do not all run under child_main).
    worker_pid = next((pid for pid, _, _, stack in samples if pid is not None
                       and stack.count("process ") == 1 and "notebookjobs.worker" in stack), None)
    for pid, frames, count, _ in samples:
        if worker_pid is not None and pid is not None:
            who = "worker" if pid == worker_pid else "children"
        else:
            who = "children" if any(_CHILD_FRAME.match(f) for f in frames) else "worker"
        weight = int(count)
        totals[who] += weight
        by_process[pid or "?"] += weight
        for frame in set(frames):
            inclusive[who][_clean(frame)] += weight
        if frames:
            leaves[who][_clean(frames[-1])] += weight
    lines = [f"py-spy (`record --rate {rate} --subprocesses`, without `--idle`; a thread blocked "
             "in a call py-spy does not know as idle, such as a pipe read, still counts) of "
             f"`python -m notebookjobs.worker --burst --concurrency 2` draining {n:,} queued no-op "
             f"jobs: {elapsed:.1f} s under the profiler ({n / elapsed:,.0f} jobs/s). "
             f"{totals['worker']:,} samples in the worker process "
             f"(≈ {totals['worker'] / rate / elapsed * 100:.0f} % of one core), "
             f"{totals['children']:,} in its pool children "
             f"(≈ {totals['children'] / rate / elapsed * 100:.0f} % of one core in all).", ""]
    for who in ("worker", "children"):
        total = totals[who] or 1
        lines += [f"Hottest frames in the {who} (inclusive, % of its samples; frames from "
                  "threading/runpy left out):", "", "| % | frame |", "|---:|---|"]
        shown = 0
        for frame, count in inclusive[who].most_common():
            if any(s in frame for s in ("<module>", "runpy", "_bootstrap", "Thread.run", "(threading.py",
                                        "_run_code", "_run_module", "spawn_main", "_main (multiprocessing",
                                        "BaseProcess._bootstrap", "BaseProcess.run")):
                continue
            lines.append(f"| {100 * count / total:.1f} | `{frame}` |")
            shown += 1
            if shown >= 22:
                break
        lines += ["", f"Hottest leaf frames in the {who} (self time):", "", "| % | frame |", "|---:|---|"]
        for frame, count in leaves[who].most_common(10):
            lines.append(f"| {100 * count / total:.1f} | `{frame}` |")
        lines.append("")
    return "\n".join(lines) + "\n"
