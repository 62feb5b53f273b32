"""The benchmark suite of SPEC §13: notebookjobs and Huey (SQLite storage) side by side.

    python benchmarks/run.py            # every figure, 3 runs each: writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick    # small sizes, 1 run, under a minute: benchmarks/out/

``make bench`` and ``make bench ARGS=--quick`` (or ``make bench-quick``) install the ``bench``
extra and run this. Everything happens in a temp dir, which is removed at the end; every worker
and consumer started here is killed at the end, also after a failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_common as common  # noqa: E402
from bench_common import log  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
ANALYSIS = HERE / "ANALYSIS.md"
CLI = HERE / "CLI.md"


@dataclass(frozen=True)
class Sizes:
    drain: int
    sleep: int
    dispatch: int
    bulk: int
    latency: int
    small: int
    large: int
    claim_rounds: int
    api_repeat: int
    idle_s: float
    settle_s: float
    api_timeout_s: float
    budget_s: float  #: a figure whose first run takes longer than this is not repeated
    profile: int  #: jobs drained under py-spy (0: no profile)
    huey: tuple[str, ...]  #: the Huey configurations (huey_bench.CONFIGS keys) to run
    history_drain: int  #: jobs drained beside the small and the large history


FULL = Sizes(drain=10_000, sleep=1_000, dispatch=5_000, bulk=100_000, latency=200, small=1_000,
             large=1_000_000, claim_rounds=500, api_repeat=20, idle_s=10.0, settle_s=2.0,
             api_timeout_s=300.0, budget_s=150.0, profile=10_000,
             huey=("huey_proc", "huey_proc_tuned", "huey_thread", "huey_thread_tuned"), history_drain=2_000)
QUICK = Sizes(drain=500, sleep=100, dispatch=200, bulk=1_000, latency=20, small=1_000,
              large=100_000, claim_rounds=50, api_repeat=3, idle_s=1.0, settle_s=0.5,
              api_timeout_s=30.0, budget_s=60.0, profile=0, huey=("huey_proc", "huey_proc_tuned"),
              history_drain=300)


# --- what is measured and how it is shown ----------------------------------------------------

@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    better: str  #: "higher" or "lower"
    fmt: str
    target: tuple[str, float, str] | None = None  #: (op, value, as written in SPEC §13)
    huey_key: str | None = None  #: the Huey figure it is compared with


def nj_figures(s: Sizes) -> list[Figure]:
    f = Figure
    return [
        f("drain_rate", f"drain {s.drain:,} no-op jobs, concurrency 2 (start → exit)", "jobs/s", "higher", "{:,.0f}",
          None, "drain_rate_last"),
        f("drain_vs_defaults", "drain, start → exit, ÷ Huey at its defaults (start → last result)", "×",
          "higher", "{:.2f}", (">=", 2.0, "≥ 2× Huey defaults")),
        f("drain_vs_tuned", "drain, start → exit, ÷ Huey tuned (start → last result)", "×", "higher", "{:.2f}",
          (">=", 0.5, "≥ 0.5× Huey tuned")),
        f("drain_rate_last", f"drain {s.drain:,} no-op jobs (start → last finished_at)", "jobs/s", "higher", "{:,.0f}",
          None, "drain_rate_last"),
        f("drain_cpu_ms", "drain of no-ops that return a value: CPU of the worker's tree per job", "ms", "lower",
          "{:.3f}", None, "drain_cpu_ms"),
        f("tick_rate", f"result-less drain: {s.drain:,} tick jobs (start → last side effect)", "jobs/s", "higher",
          "{:,.0f}", None, "tick_rate"),
        f("tick_vs_defaults", "result-less drain ÷ Huey at its defaults", "×", "higher", "{:.2f}"),
        f("tick_vs_tuned", "result-less drain ÷ Huey tuned", "×", "higher", "{:.2f}",
          (">=", 1.0, "≥ 1.0× Huey tuned")),
        f("tick_cpu_ms", "result-less drain: CPU of the worker's tree per job (its start included)", "ms", "lower",
          "{:.3f}", ("<=", 0.1, "≤ 0.1 ms"), "tick_cpu_ms"),
        f("tick_cpu_run_ms", "result-less drain: CPU per job after the first one", "ms", "lower", "{:.3f}", None,
          "tick_cpu_run_ms"),
        f("tick_cpu_start_s", "result-less drain: CPU of the tree until the first job is done", "s", "lower",
          "{:.2f}", None, "tick_cpu_start_s"),
        f("tick_first_s", "worker start → first job done (result-less drain)", "s", "lower", "{:.3f}",
          ("<=", 0.1, "≤ 0.1 s"), "tick_first_s"),
        f("drain_rate_db", f"drain {s.drain:,} no-op jobs (first → last finished_at)", "jobs/s", "higher", "{:,.0f}",
          None, "drain_rate_db"),
        f("sleep_elapsed", f"drain {s.sleep:,} × 10 ms jobs (start → exit)", "s", "lower", "{:.2f}", None, "sleep_elapsed"),
        f("sleep_overhead", "overhead per 10 ms job: (elapsed − N·0.01/2)/N", "ms", "lower", "{:.2f}", None,
          "sleep_overhead_last"),
        f("disk_ms", "the disk alone: a 200-byte append + fdatasync, median", "ms", "lower", "{:.3f}"),
        f("disk_p99", "the disk alone: a 200-byte append + fdatasync, p99", "ms", "lower", "{:.2f}"),
        f("dispatch_ms", f"dispatch(), {s.dispatch:,} single calls, worker running: median", "ms/call", "lower",
          "{:.3f}", ("<=", 0.5, "≤ 0.5 ms"), "dispatch_ms"),
        f("dispatch_rate", "dispatch() single calls per second", "calls/s", "higher", "{:,.0f}", None, "dispatch_rate"),
        f("dispatch_p99", "dispatch() p99, worker running", "ms/call", "lower", "{:.2f}", ("<=", 2.0, "≤ 2 ms"),
          "dispatch_p99"),
        f("dispatch_nw_ms", f"dispatch(), {max(50, s.dispatch // 5):,} single calls, no worker running: median",
          "ms/call", "lower", "{:.3f}", ("<=", 2.0, "≤ 2 ms")),
        f("dispatch_nw_p99", "dispatch() p99, no worker running", "ms/call", "lower", "{:.2f}"),
        f("dispatch_idle_ms", "dispatch() median, worker idle (jobs due in 1 h)", "ms/call", "lower", "{:.3f}"),
        f("bulk_s", f"dispatch_many of {s.bulk:,} jobs, no worker running", "s", "lower", "{:.2f}",
          ("<=", 1.0, "≤ 1 s")),
        f("bulk_worker_s", f"dispatch_many of {s.bulk:,} jobs, worker running", "s", "lower", "{:.2f}",
          ("<=", 1.0, "≤ 1 s")),
        f("lat_p50", f"dispatch() returned → start, idle worker, p50 of {s.latency}", "ms", "lower",
          "{:.2f}", ("<=", 1.0, "≤ 1 ms"), "lat_p50"),
        f("lat_p90", "dispatch() returned → start p90", "ms", "lower", "{:.2f}", None, "lat_p90"),
        f("lat_p99", "dispatch() returned → start p99", "ms", "lower", "{:.2f}", None, "lat_p99"),
        f("lat_call_p50", "dispatch() called → start p50 (the call's own time included)", "ms",
          "lower", "{:.2f}", ("<=", 0.5, "≤ 0.5 ms"), "lat_call_p50"),
        f("lat_db_p50", "started_at − created_at in the DB, p50", "ms", "lower", "{:.2f}"),
        f("lat_after_idle", f"dispatch → start after {s.idle_s:g} s idle (1 sample)", "ms", "lower", "{:.2f}",
          None, "lat_after_idle"),
        f("idle_cpu", f"idle worker CPU over {s.idle_s:g} s, children included", "% of a core", "lower", "{:.2f}",
          ("<=", 1.0, "≤ 1 %"), "idle_cpu"),
        f("rss", "idle worker RSS, children included", "MB", "lower", "{:.0f}", ("<=", 150, "≤ 150 MB"), "rss"),
        f("rss_root", "idle worker RSS, the worker process alone", "MB", "lower", "{:.0f}", None, "rss_root"),
        f("procs", "processes in the idle worker's tree", "", "lower", "{:.0f}", None, "procs"),
        f("rss_served", f"worker RSS after serving frames of {s.large:,} jobs, children included", "MB",
          "lower", "{:.0f}", ("<=", 150, "≤ 150 MB")),
        f("rss_root_served", "the same, the worker process alone", "MB", "lower", "{:.0f}"),
        f("idle_cpu_served", "worker CPU over 5 s after serving those frames", "% of a core", "lower", "{:.2f}",
          ("<=", 1.0, "≤ 1 %")),
        f("claim_small_us", f"claim (in memory) with {s.small:,} finished jobs", "µs", "lower", "{:.0f}"),
        f("claim_large_us", f"claim (in memory) with {s.large:,} finished jobs", "µs", "lower", "{:.0f}"),
        f("claim_ratio", f"claim cost ratio {s.large:,} / {s.small:,}", "×", "lower", "{:.2f}",
          ("<=", 1.3, "≤ 1.3")),
        f("claim_tx_ratio", "same, with the commit of the claim (save_all)", "×", "lower", "{:.2f}"),
        f("hdrain_small_rate_db", f"drain {s.history_drain:,} no-op jobs beside {s.small:,} finished ones "
          "(first → last finished_at)", "jobs/s", "higher", "{:,.0f}"),
        f("hdrain_large_rate_db", f"drain {s.history_drain:,} no-op jobs beside {s.large:,} finished ones "
          "(first → last finished_at)", "jobs/s", "higher", "{:,.0f}"),
        f("hdrain_ratio", f"per-job worker cost ratio {s.large:,} / {s.small:,} (from the two drains)", "×",
          "lower", "{:.2f}", ("<=", 1.3, "≤ 1.3")),
        f("hdrain_large_start_s", f"burst worker start → first job started, {s.large:,} jobs in the history",
          "s", "lower", "{:.2f}"),
        f("start_worker_large_s", f"nj.start_worker() until it answers, {s.large:,} jobs in the history", "s",
          "lower", "{:.2f}"),
        f("page_small_ms", f"nj.jobs(page=1, per_page=20), {s.small:,} jobs, no worker", "ms", "lower", "{:.1f}"),
        f("page_ms", f"nj.jobs(page=1, per_page=20), {s.large:,} jobs, no worker", "ms", "lower", "{:.1f}",
          ("<=", 50, "≤ 50 ms")),
        f("page_w_ms", f"nj.jobs(page=1, per_page=20), {s.large:,} jobs, worker running", "ms", "lower", "{:.1f}",
          ("<=", 50, "≤ 50 ms")),
        f("page_deep_ms", "nj.jobs(page=1000, status='completed'), no worker", "ms", "lower", "{:.1f}"),
        f("page_deep_w_ms", "nj.jobs(page=1000, status='completed'), worker running", "ms", "lower", "{:.1f}"),
        f("stats_ms", f"nj.stats(), {s.large:,} jobs, no worker", "ms", "lower", "{:.1f}", ("<=", 200, "≤ 200 ms")),
        f("stats_w_ms", f"nj.stats(), {s.large:,} jobs, worker running", "ms", "lower", "{:.1f}",
          ("<=", 200, "≤ 200 ms")),
        f("history_s", f"nj.history() of {s.large:,} jobs into pandas, no worker", "s", "lower", "{:.2f}",
          ("<=", 2.0, "≤ 2 s")),
        f("history_w_s", f"nj.history() of {s.large:,} jobs, worker running", "s", "lower", "{:.2f}",
          ("<=", 2.0, "≤ 2 s")),
    ]


def huey_figures(s: Sizes) -> list[Figure]:
    f = Figure
    return [
        f("drain_rate_last", f"drain {s.drain:,} no-op jobs (start → last result)", "jobs/s", "higher", "{:,.0f}"),
        f("drain_rate_db", f"drain {s.drain:,} no-op jobs (first → last result)", "jobs/s", "higher", "{:,.0f}"),
        f("drain_cpu_ms", "drain of no-ops: CPU of the consumer's tree per job", "ms", "lower", "{:.3f}"),
        f("tick_rate", f"result-less drain: {s.drain:,} tick jobs (start → last side effect)", "jobs/s", "higher",
          "{:,.0f}"),
        f("tick_cpu_ms", "result-less drain: CPU of the consumer's tree per job", "ms", "lower", "{:.3f}"),
        f("tick_cpu_run_ms", "result-less drain: CPU per job after the first one", "ms", "lower", "{:.3f}"),
        f("tick_cpu_start_s", "result-less drain: CPU of the tree until the first job is done", "s", "lower",
          "{:.2f}"),
        f("tick_first_s", "consumer start → first job done", "s", "lower", "{:.3f}"),
        f("sleep_elapsed", f"drain {s.sleep:,} × 10 ms jobs (start → last result)", "s", "lower", "{:.2f}"),
        f("sleep_overhead_last", "overhead per 10 ms job", "ms", "lower", "{:.2f}"),
        f("dispatch_ms", f"enqueue, {s.dispatch:,} single calls, consumer running: median", "ms/call", "lower",
          "{:.3f}"),
        f("dispatch_rate", "single enqueues per second", "calls/s", "higher", "{:,.0f}"),
        f("dispatch_p99", "enqueue p99", "ms/call", "lower", "{:.2f}"),
        f("lat_p50", f"enqueue returned → start, idle consumer, p50 of {s.latency}", "ms", "lower",
          "{:.2f}"),
        f("lat_p90", "enqueue returned → start p90", "ms", "lower", "{:.2f}"),
        f("lat_p99", "enqueue returned → start p99", "ms", "lower", "{:.2f}"),
        f("lat_call_p50", "enqueue called → start p50 (the call's own time included)", "ms", "lower",
          "{:.2f}"),
        f("lat_after_idle", f"dispatch → start after {s.idle_s:g} s idle (1 sample)", "ms", "lower", "{:.2f}"),
        f("idle_cpu", f"idle consumer CPU over {s.idle_s:g} s, children included", "% of a core", "lower", "{:.2f}"),
        f("rss", "idle consumer RSS, children included", "MB", "lower", "{:.0f}"),
        f("rss_root", "idle consumer RSS, the consumer process alone", "MB", "lower", "{:.0f}"),
        f("procs", "processes in the idle consumer's tree", "", "lower", "{:.0f}"),
    ]


# --- running ---------------------------------------------------------------------------------

class Results:
    """system -> key -> one value per run (a float, or a string saying what went wrong)."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, list[Any]]] = {}
        self.errors: list[str] = []
        self.notes: list[str] = []
        self.skipped: dict[tuple[str, str], str] = {}  # (system, group) -> why later runs were skipped
        #: (system, group, run, % of the machine other processes used meanwhile, seconds)
        self.load: list[tuple[str, str, int, float, float]] = []

    def add(self, system: str, values: dict[str, Any]) -> None:
        for key, value in values.items():
            self.values.setdefault(system, {}).setdefault(key, []).append(value)

    def cell(self, system: str, key: str, fmt: str) -> str:
        values = self.values.get(system, {}).get(key, [])
        numbers = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        if not numbers:
            return next((str(v) for v in values if isinstance(v, str)), "—")
        text = fmt.format(common.median(numbers))
        if len(numbers) > 1:
            text += f" ({fmt.format(min(numbers))}–{fmt.format(max(numbers))})"
        failed = len(values) - len(numbers)
        if failed:
            text += f" [{failed} run(s) failed]"
        return text

    def median(self, system: str, key: str) -> float | None:
        numbers = [v for v in self.values.get(system, {}).get(key, [])
                   if isinstance(v, (int, float)) and math.isfinite(v)]
        return common.median(numbers) if numbers else None


def run_group(results: Results, system: str, group: str, run: int, budget_s: float, max_wait_s: float,
              fn: Callable[[], dict[str, Any]]) -> None:
    if (system, group) in results.skipped:
        log(f"[{system}] {group}: run {run} skipped ({results.skipped[(system, group)]})")
        return
    if max_wait_s > 0:
        common.wait_until_quiet(max_wait_s)
    log(f"[{system}] {group}: run {run}")
    started = time.monotonic()
    load = common.OtherLoad()
    try:
        with load:
            values = fn()
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # one broken figure must not stop the others
        if common.STOPPING:
            raise KeyboardInterrupt("stopping") from exc
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        log(f"[{system}] {group}: FAILED: {message}")
        traceback.print_exc(file=sys.stdout)
        results.errors.append(f"{system} / {group} / run {run}: {message}")
        results.add(system, {f"!{group}": "error"})
        return
    finally:
        common.cleanup()  # nothing a figure started may outlive it
    took = time.monotonic() - started
    results.add(system, values)
    results.load.append((system, group, run, load.percent, took))
    if load.percent > 10:
        log(f"[{system}] {group}: other processes used {load.percent:.0f} % of the machine meanwhile")
    if took > budget_s:
        why = f"run {run} took {took:.0f} s, over the {budget_s:g} s budget"
        results.skipped[(system, group)] = why
        results.notes.append(f"{system} / {group}: measured once only: {why}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 run, < 1 minute; writes to benchmarks/out/")
    parser.add_argument("--runs", type=int, default=None, help="runs of each figure (default 3, 1 with --quick)")
    parser.add_argument("--only", default="", help="comma-separated systems to run: nj, huey_proc, "
                        "huey_proc_tuned, huey_thread, huey_thread_tuned (default: all)")
    parser.add_argument("--groups", default="", help="comma-separated figure groups: drain, tick, sleep, "
                        "dispatch, bulk, latency, idle, scale (default: all)")
    parser.add_argument("--profile", type=int, default=None,
                        help="jobs to drain under py-spy after the runs (default 10000, 0 with --quick)")
    parser.add_argument("--max-wait", type=float, default=None,
                        help="seconds to wait before each figure for other processes to leave the CPU "
                        "(default 20, 0 with --quick)")
    parser.add_argument("--output", type=Path, default=None, help="the markdown report to write")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (for inspection)")
    parser.add_argument("--render", type=Path, default=None, metavar="JSON",
                        help="measure nothing: write the report again from a results JSON of benchmarks/out/")
    ns = parser.parse_args(argv)
    if ns.render:
        return rerender(ns.render, ns.output)

    sizes = QUICK if ns.quick else FULL
    runs = ns.runs or (1 if ns.quick else 3)
    profile_n = sizes.profile if ns.profile is None else ns.profile
    max_wait = (0.0 if ns.quick else 20.0) if ns.max_wait is None else ns.max_wait
    output = ns.output or (OUT / "RESULTS-quick.md" if ns.quick else HERE / "RESULTS.md")
    only = {x.strip() for x in ns.only.split(",") if x.strip()}
    groups = {x.strip() for x in ns.groups.split(",") if x.strip()}
    OUT.mkdir(exist_ok=True)
    command = "python benchmarks/run.py" + ("" if not sys.argv[1:] else " " + shlex.join(sys.argv[1:]))
    if os.environ.get("MAKELEVEL"):
        args = shlex.join(sys.argv[1:])
        command = f"make bench{' ARGS=' + shlex.quote(args) if args else ''}` (that is, `{command}"

    common.install_signal_handlers()
    # An installed wheel has its bytecode compiled (pip does it); this checkout's package is
    # installed editable, so without .pyc files each worker and child would compile its modules
    # from source at every start (~0.1 s of CPU), which no user pays: let Python write them.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    tmp = Path(tempfile.mkdtemp(prefix="njbench-"))
    log(f"benchmarks: {'quick' if ns.quick else 'full'} mode, {runs} run(s), temp dir {tmp}")
    started = datetime.now(timezone.utc)
    t_start = time.monotonic()
    fingerprint = common.source_fingerprint()
    load_start = os.getloadavg()
    commit_at_start = common.versions()["notebookjobs"]
    results = Results()
    profile_md = ""
    try:
        import huey_bench
        import nj_bench

        project = nj_bench.Project(tmp / "nj")
        hueys = {c.key: huey_bench.HueyBench(tmp / c.key, c) for c in huey_bench.CONFIGS
                 if (c.key in only if only else c.key in sizes.huey)}

        def want(group: str) -> bool:
            return not groups or group in groups

        for run in range(1, runs + 1):
            seed = 1000 + run
            if not only or "nj" in only:
                s = sizes
                nj_groups = {
                    "drain": lambda: nj_bench.drain_figures(project, s.drain),
                    "tick": lambda: nj_bench.tick_figures(project, s.drain),
                    "sleep": lambda: nj_bench.sleep_figures(project, s.sleep),
                    "dispatch": lambda: nj_bench.dispatch_figures(project, s.dispatch),
                    "bulk": lambda: nj_bench.bulk_figures(project, s.bulk, s.budget_s),
                    "latency": lambda: nj_bench.latency_figures(project, s.latency, seed),
                    "idle": lambda: nj_bench.idle_figures(project, s.idle_s, s.settle_s),
                    "scale": lambda: nj_bench.scale_figures(project, tmp / "scale", s.small, s.large,
                                                            s.claim_rounds, s.api_repeat, s.api_timeout_s,
                                                            s.history_drain),
                }
                for group, fn in nj_groups.items():
                    if want(group):
                        run_group(results, "nj", group, run, sizes.budget_s, max_wait, fn)
            for key, bench in hueys.items():
                s = sizes
                huey_groups = {
                    "drain": lambda: huey_bench.drain_figures(bench, s.drain),
                    "tick": lambda: huey_bench.tick_figures(bench, s.drain),
                    "sleep": lambda: huey_bench.sleep_figures(bench, s.sleep),
                    "dispatch": lambda: huey_bench.dispatch_figures(bench, s.dispatch),
                    "latency": lambda: huey_bench.latency_figures(bench, s.latency, seed),
                    "idle": lambda: huey_bench.idle_figures(bench, s.idle_s, s.settle_s),
                }
                for group, fn in huey_groups.items():
                    if want(group):
                        run_group(results, key, group, run, sizes.budget_s, max_wait, fn)
        if profile_n and (not only or "nj" in only):
            import bench_profile

            try:
                profile_md = bench_profile.profile_drain(project, profile_n, OUT)
            except Exception as exc:  # noqa: BLE001
                profile_md = f"The profile failed: {type(exc).__name__}: {exc}\n"
            finally:
                common.cleanup()
    except KeyboardInterrupt:
        log("interrupted: cleaning up; the report is written with what was measured")
        results.errors.append("interrupted before the end")
        if ns.output is None:  # a partial run must not replace the reference RESULTS.md
            output = OUT / ("RESULTS-quick.md" if ns.quick else "RESULTS-partial.md")
    finally:
        common.cleanup()
        if ns.keep:
            log(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    meta = {"quick": ns.quick, "runs": runs, "command": command, "started": started.isoformat(),
            "elapsed": time.monotonic() - t_start, "profile_md": profile_md,
            "versions": common.versions(), "machine": common.machine(),
            "commit_at_start": commit_at_start, "source_at_start": fingerprint,
            "source_at_end": common.source_fingerprint(),
            "loadavg": [list(load_start), list(os.getloadavg())]}
    raw = OUT / ("results-quick.json" if ns.quick else "results.json")
    raw.write_text(json.dumps({"meta": meta, "values": results.values, "errors": results.errors,
                               "notes": results.notes, "other_load": results.load}, indent=1, default=str))
    report = render(results, meta)
    print()
    print(report)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(keep_dashboard_section(output, report))
    log(f"wrote {output} and {raw} ({meta['elapsed']:.0f} s in all)")
    return 1 if results.errors else 0


def rerender(path: Path, output: Path | None) -> int:
    """Write the report again from a results JSON (after a change to the report's layout)."""
    data = json.loads(path.read_text())
    results = Results()
    results.values, results.errors, results.notes = data["values"], data["errors"], data["notes"]
    results.load = [tuple(x) for x in data["other_load"]]
    meta = data["meta"]
    out = output or (OUT / "RESULTS-quick.md" if meta["quick"] else HERE / "RESULTS.md")
    out.write_text(keep_dashboard_section(out, render(results, meta)))
    log(f"wrote {out} from {path}")
    return 0


# --- the report ------------------------------------------------------------------------------

def keep_dashboard_section(path: Path, text: str) -> str:
    """``text`` with the section benchmarks/dashboard_bench.py wrote in ``path`` kept at its
    end (that script measures the dashboard and writes its own figures between markers)."""
    begin, end = "<!-- dashboard_bench.py: begin -->", "<!-- dashboard_bench.py: end -->"
    old = path.read_text() if path.exists() else ""
    if begin not in old or end not in old:
        return text
    kept = begin + old.split(begin, 1)[1].split(end, 1)[0] + end
    return text.rstrip("\n") + "\n\n" + kept + "\n"


def _holds(value: float | None, target: tuple[str, float, str] | None) -> str:
    if target is None:
        return ""
    if value is None:
        return "?"
    op, limit, _ = target
    ok = value >= limit if op == ">=" else value <= limit
    return "yes" if ok else "**no**"


def _ratio(nj: float | None, huey: float | None, better: str) -> str:
    if nj is None or huey is None or huey == 0:
        return ""
    ratio = nj / huey
    good = ratio >= 1 if better == "higher" else ratio <= 1
    return f"{ratio:.2f}×" + (" ✓" if good else "")


#: Huey's configurations the report compares notebookjobs with (SPEC §13): (key, column title)
COMPARED = (("huey_proc", "Huey SQLite, processes, defaults"), ("huey_proc_tuned", "Huey SQLite, processes, tuned"))


def derive(results: Results) -> None:
    """The drain ratios of SPEC §13 (notebookjobs start → exit ÷ Huey start → last result; the
    result-less drains start → last side effect on both sides), run by run when both have
    every run, else of the medians."""
    for nj_key, huey_key, keys in (("drain_rate", "drain_rate_last", ("drain_vs_defaults", "drain_vs_tuned")),
                                   ("tick_rate", "tick_rate", ("tick_vs_defaults", "tick_vs_tuned"))):
        _ratios(results, nj_key, huey_key, keys)


def _ratios(results: Results, nj_key: str, huey_key: str, keys: tuple[str, str]) -> None:
    nj_runs = results.values.get("nj", {}).get(nj_key, [])
    for key, (config, _) in zip(keys, COMPARED):
        huey_runs = results.values.get(config, {}).get(huey_key, [])
        pairs = [(a, b) for a, b in zip(nj_runs, huey_runs)
                 if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0]
        if pairs and len(pairs) == len(nj_runs) == len(huey_runs):
            results.values["nj"][key] = [a / b for a, b in pairs]
        else:
            nj, huey = results.median("nj", nj_key), results.median(config, huey_key)
            if nj is not None and huey:
                results.values["nj"][key] = [nj / huey]


def render(results: Results, meta: dict[str, Any]) -> str:
    import huey_bench

    derive(results)

    quick, runs, command = meta["quick"], meta["runs"], meta["command"]
    s = QUICK if quick else FULL
    started = datetime.fromisoformat(meta["started"])
    elapsed, profile_md = meta["elapsed"], meta["profile_md"]
    versions, machine = meta["versions"], meta["machine"]
    L: list[str] = []
    title = "Benchmarks (quick mode: small sizes, not the reference figures)" if quick else "Benchmarks"
    L += [f"# {title}", "",
          "Generated by `benchmarks/run.py`; do not edit by hand. SPEC §13 lists the targets.", "",
          f"- date: {started:%Y-%m-%d %H:%M} UTC ({elapsed / 60:.1f} min)",
          f"- command: `{command}`" + (")" if "` (that is, `" in command else ""),
          f"- runs per figure: {runs}; cells show the median, and (min–max) over the runs",
          "- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
          "- machine: " + ", ".join(f"{k} {v}" for k, v in machine.items() if k != "python executable"),
          ""]
    if meta.get("loadavg"):
        (a1, a5, a15), (b1, b5, b15) = meta["loadavg"]
        L.insert(-1, f"- load average (1, 5, 15 min; uptime's) at the start {a1:.2f}, {a5:.2f}, {a15:.2f}; "
                 f"at the end {b1:.2f}, {b5:.2f}, {b15:.2f} (on {os.cpu_count()} cores)")
    if meta.get("source_at_start") and meta["source_at_start"] != meta.get("source_at_end"):
        L.insert(-1, f"- **notebookjobs' source changed during the run** (commit {meta['commit_at_start']} "
                 f"at the start; source hash {meta['source_at_start']} → {meta['source_at_end']}): "
                 "figures of later runs may come from newer code")
    else:
        L.insert(-1, f"- notebookjobs source hash {meta.get('source_at_start')} (unchanged during the run)")
    if results.load:
        loads = [x[3] for x in results.load]
        L[-1:] = [f"- other processes on this machine (other sessions' test suites) while the figures "
                  f"were measured: median {common.median(loads):.0f} %, max {max(loads):.0f} % of its CPU "
                  "(per figure group in the last section); figures measured on a busy machine are "
                  "slower than they would be on a quiet one", ""]
    if results.errors:
        L += ["**Errors** (the figures concerned show `error`):", ""]
        L += [f"- {e}" for e in results.errors] + [""]
    # which targets hold
    held, missed = [], []
    for f in nj_figures(s):
        if f.target is None:
            continue
        value = results.median("nj", f.key)
        if value is None:
            continue
        text = f"{f.label}: {results.cell('nj', f.key, f.fmt)} {f.unit} (target {f.target[2]})"
        (held if _holds(value, f.target) == "yes" else missed).append(text)
    if held or missed:
        L += ["## SPEC §13 targets", "", f"Hold ({len(held)}):", ""] + [f"- {t}" for t in held]
        L += ["", f"Do not hold ({len(missed)}):", ""] + [f"- {t}" for t in missed] + [""]
    if ANALYSIS.exists():  # written by hand: what was changed, what it gained, what is missing
        L += [ANALYSIS.read_text().rstrip(), ""]
    if CLI.exists():  # written by benchmarks/cli_bench.py: the CLI as a whole process
        L += [CLI.read_text().rstrip(), ""]
    # notebookjobs against the targets and Huey
    L += ["## notebookjobs against SPEC §13 and Huey", "",
          "Each ratio is notebookjobs ÷ Huey (SQLite storage, 2 process workers) in that column's "
          "configuration, measured in the same run; ✓ marks where notebookjobs is ahead.", "",
          "| figure | unit | notebookjobs | target | holds | "
          + " | ".join(f"{title} | ratio" for _, title in COMPARED) + " |",
          "|---|---|---|---|---|" + "---|---|" * len(COMPARED)]
    for f in nj_figures(s):
        value = results.median("nj", f.key)
        target = f.target[2] if f.target else ""
        row = f"| {f.label} | {f.unit} | {results.cell('nj', f.key, f.fmt)} | {target} | {_holds(value, f.target)} |"
        for config, _ in COMPARED:
            huey_value = results.median(config, f.huey_key) if f.huey_key else None
            huey_cell = results.cell(config, f.huey_key, f.fmt) if f.huey_key else ""
            row += f" {huey_cell} | {_ratio(value, huey_value, f.better) if f.unit else ''} |"
        L.append(row)
    L.append("")
    # Huey configurations
    configs = [c for c in huey_bench.CONFIGS if c.key in results.values]
    if configs:
        L += ["## Huey configurations", "",
              "| figure | unit | " + " | ".join(c.label for c in configs) + " |",
              "|---|---|" + "---|" * len(configs)]
        for f in huey_figures(s):
            L.append(f"| {f.label} | {f.unit} | " + " | ".join(results.cell(c.key, f.key, f.fmt) for c in configs) + " |")
        L += ["", "Configurations:", ""]
        L += [f"- {c.label}: `{c.describe()}`" for c in configs]
        L.append("")
    L += ["## How each figure is measured", "",
          f"- **drain**: {s.drain:,} no-op jobs queued beforehand with `nj.dispatch_many` (no worker "
          "running), then `python -m notebookjobs.worker --burst --concurrency 2`, timed from just before "
          "the process starts to its exit (the target's figure); `finished_at` of the jobs gives the other "
          "two. Huey: as many `noop()` enqueued, then `huey_consumer -w 2`, timed from its start to the "
          "largest result (each body returns `time.time()` when it ends); the consumer is stopped then. "
          "The ratio compares notebookjobs' start → exit with Huey's start → last result.",
          f"- **result-less drain** (the peers harness's, `../shared/peers/`): {s.drain:,} `tick()` jobs "
          "(one byte appended to a mark file, None returned: neither system stores a result) queued "
          "beforehand, then the consumer, `python -m notebookjobs.worker --concurrency 2` (not burst) or "
          "`huey_consumer -w 2 -k process`, timed from its start until the mark file holds "
          f"{s.drain:,} bytes, then stopped. Start → first job done is the first byte. CPU per job: "
          "user + system seconds of the consumer's process tree (the worker and its children, children "
          "reaped included; psutil) at the last byte ÷ jobs, so the start is in it; 'after the first "
          "one' is (CPU at the last byte − CPU at the first) ÷ (jobs − 1). The no-op drain's CPU per "
          "job is the tree's (the burst worker's, the consumer's until its stop) from the reaped "
          "children's rusage.",
          f"- **10 ms jobs**: the same with {s.sleep:,} jobs that `time.sleep(0.01)`; overhead per job = "
          f"(elapsed − {s.sleep:,}×0.01/2) / {s.sleep:,}.",
          f"- **dispatch**: {max(50, s.dispatch // 5):,} single `nj.dispatch('jobs.bench.noop')` calls "
          "with no worker running (`autostart: false`; after 20 warm-up calls), then "
          f"{s.dispatch:,} while a detached worker (`nj.start_worker()`) runs them; per-call median, "
          "p99 and calls/s over the whole loop. Huey: `noop()` enqueues with the consumer running.",
          f"- **bulk**: one `nj.dispatch_many('jobs.bench.noop', [[]] * {s.bulk:,})`, first on a fresh "
          "queue with no worker (the client opens the file), then through a running worker's socket.",
          f"- **latency**: {s.latency} samples (after 5 warm-up ones) with an idle detached worker, "
          "50–100 ms apart; the job body writes `time.time()` into a file as it starts, the sample is "
          "that minus `time.time()` just before `nj.dispatch()`. The DB row is `started_at − "
          "created_at` of the same jobs. Huey: same body and method.",
          f"- **idle cost**: a detached worker after one job and {s.settle_s:g} s of rest: CPU time "
          f"(user + system, children included) of its process tree over {s.idle_s:g} s, as % of one "
          "core, and the sum of RSS over the tree. Then one dispatch → start sample.",
          f"- **scale**: fresh queue files with {s.small:,} and {s.large:,} finished jobs written by one "
          "`INSERT … SELECT … FROM range(n)` (columns as `notebookjobs.store` creates them). "
          f"Claim: {s.claim_rounds} rounds (after 20 warm-up ones) of one `enqueue` transaction, "
          "then the claim as the worker makes it (`QueueState.pop_due` + `transitions.start`) timed "
          "alone and with the commit of the started job (`JobStore.save_all`), on a "
          "`notebookjobs.store.Database`; and a drain of "
          f"{s.history_drain:,} no-op jobs dispatched into a copy of each file, by a burst worker; the "
          "ratio of their first → last finished_at rates is the per-job cost ratio as the worker runs). "
          "API calls run in a fresh subprocess "
          f"(`benchmarks/bench_api.py`): one untimed call, then the median of {s.api_repeat} "
          "(`nj.history()`: the median of 3 timed calls), first with no worker, then with a detached worker running; "
          "after those, the worker's RSS (children included) and CPU over 5 s.",
          ""]
    if results.notes:
        L += ["Notes:", ""] + [f"- {n}" for n in results.notes] + [""]
    if profile_md:
        L += ["## Where the worker's time goes", "", profile_md]
    if results.load:
        L += ["## Other processes' CPU during each figure group", "",
              "% of the machine's CPU used by processes that are not the benchmark's, per run "
              "(and seconds the group took):", "", "| system | group | runs |", "|---|---|---|"]
        rows: dict[tuple[str, str], list[str]] = {}
        for system, group, run, pct, took in results.load:
            rows.setdefault((system, group), []).append(f"{pct:.0f} % ({took:.0f} s)")
        L += [f"| {system} | {group} | {', '.join(v)} |" for (system, group), v in rows.items()]
        L.append("")
    L += ["<details><summary>Every run's values</summary>", "", "```"]
    for system, values in results.values.items():
        for key, vals in values.items():
            shown = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in vals)
            L.append(f"{system:18} {key:20} {shown}")
    L += ["```", "", "</details>", ""]
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
