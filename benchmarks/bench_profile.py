"""py-spy of the notebookjobs worker during a drain of result-less tick jobs (untimed): where its
time goes; and strace's count of its system calls per job.

``py-spy record --gil --subprocesses`` launches the burst worker, samples it and its pool
children while they hold the GIL (a thread blocked in a read or a wait is not counted), and
writes raw stacks; this module folds them into the two tables RESULTS.md shows (the hottest
frames by inclusive share of samples, and the hottest leaf frames). ``strace -f -c`` counts the
system calls of the whole tree in two drains, a large and a small one: their difference over
the difference of jobs is the count per job, the start left out.
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
_PROCESS_LABEL = re.compile(r'process (\d+):"([^"]*)"')


def _py_spy() -> str | None:
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def profile_drain(project, n: int, out_dir: Path, rate: int = 250) -> str:
    """Markdown with the profile of a burst worker draining ``n`` queued tick jobs, and its
    system calls per job."""
    spy = _py_spy()
    if spy is None:
        return "py-spy is not installed (pip install py-spy); no profile.\n"
    raw = out_dir / "worker-profile.txt"
    code, elapsed, log_path = _burst_under(
        project, n, [spy, "record", "--rate", str(rate), "--gil", "--subprocesses", "--format",
                     "raw", "--output", str(raw), "--"], out_dir / "worker-profile.log",
        max(300.0, n / 10), (raw,))
    if code is None:
        return "py-spy run timed out; no profile.\n"
    if code != 0 or not raw.exists():
        tail = log_path.read_text(errors="replace")[-1500:]
        return f"py-spy failed (exit code {code}):\n\n```\n{tail}\n```\n"
    return summarize(raw, n, elapsed, rate) + syscalls(project, n, out_dir)


def _burst_under(project, n: int, wrapper: list[str], log_path: Path, timeout_s: float,
                 stale: tuple[Path, ...] = ()) -> tuple[int | None, float, Path]:
    """``n`` tick jobs queued, then the burst worker run under ``wrapper`` (a profiler's
    command line); its exit code (None: timed out), seconds and log."""
    import nj_bench
    from bench_common import popen

    project.reset()
    log(f"profile: queueing {n:,} tick jobs")
    project.queue(n, nj_bench.TICK)
    for path in (*stale, log_path):
        path.unlink(missing_ok=True)
    command = [*wrapper, sys.executable, "-m", "notebookjobs.worker", "--burst", "--concurrency", "2"]
    log(f"profile: {wrapper[0].rpartition('/')[2]} of the burst worker on {n:,} tick jobs")
    t0 = time.perf_counter()
    proc = popen(command, what=f"{wrapper[0]} of the burst worker", cwd=project.root,
                 env=project.env(), log_path=log_path)
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        return None, 0.0, log_path
    except BaseException:
        kill_group(proc.pid)
        raise
    untrack(proc.pid)
    return code, time.perf_counter() - t0, log_path


def syscalls(project, n: int, out_dir: Path, small: int = 200) -> str:
    """Markdown: the system calls per job of the worker's tree (``strace -f -c`` of a drain of
    ``n`` and one of ``small`` tick jobs; the difference, so the start is left out)."""
    strace = shutil.which("strace")
    if strace is None:
        return "strace is not installed; no count of system calls.\n"
    counts = []
    for size in (small, n):
        table = out_dir / f"strace-{size}.txt"
        code, _, log_path = _burst_under(project, size, [strace, "-f", "-c", "-o", str(table)],
                                         out_dir / "strace.log", max(300.0, size / 10), (table,))
        if code != 0 or not table.exists():
            return f"strace of the burst worker failed (exit code {code}); no count of system calls.\n"
        counts.append(_strace_counts(table))
    per_job = {name: (counts[1].get(name, 0) - counts[0].get(name, 0)) / (n - small)
               for name in set(counts[0]) | set(counts[1])}
    rows = sorted(((v, k) for k, v in per_job.items() if v >= 0.05), reverse=True)
    lines = [f"System calls per job of the worker and its children (`strace -f -c` of a burst drain "
             f"of {n:,} tick jobs minus one of {small}, ÷ {n - small:,}): "
             f"{sum(per_job.values()):.1f} in all (the job's own `open`, `write`, `close` among them).",
             "", "| per job | system call |", "|---:|---|"]
    lines += [f"| {v:.2f} | `{k}` |" for v, k in rows]
    return "\n".join(lines) + "\n\n"


def _strace_counts(path: Path) -> dict[str, int]:
    """strace -c's table: system call -> calls."""
    counts = {}
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
            counts[fields[-1]] = int(fields[3])
    return counts


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
    commands: dict[str, str] = {}  #: pid -> its command line
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        # A child's stack starts with its parent's "process N:" frame, then its own. A process
        # frame quotes its command line, which may hold ";" (the zygote's is multiprocessing's
        # forkserver: "-c 'from multiprocessing.forkserver import main; main(...)'"), and paths
        # of the machine: only its pid is kept.
        for pid_text, command in _PROCESS_LABEL.findall(stack):
            commands[pid_text] = command
        stack = _PROCESS_LABEL.sub(r"process \1:", stack)
        frames = stack.split(";")
        pids = []
        while frames and (match := _PROCESS.match(frames[0])):
            pids.append(match.group(1))
            frames = frames[1:]
        pid = pids[-1] if pids else None
        samples.append((pid, [f for f in frames if not f.startswith("thread (")], count, stack))
    # The worker is the process started as notebookjobs.worker; every other one is a pool child
    # (whose threads, its pipe reader among them, do not all run under child_main).
    worker_pid = next((pid for pid, command in commands.items()
                       if re.search(r"-m notebookjobs\.worker(\s|$)", command)), None)
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
    lines = [f"py-spy (`record --rate {rate} --gil --subprocesses`: samples of the threads that hold "
             "the GIL, so a thread blocked in a read or a wait does not count, and neither does "
             "native work done without the GIL, such as DuckDB's commits) of "
             f"`python -m notebookjobs.worker --burst --concurrency 2` draining {n:,} queued tick "
             f"jobs, its start included: {elapsed:.1f} s under the profiler ({n / elapsed:,.0f} jobs/s). "
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
