"""Time public API calls against the queue named by the environment; run by nj_bench.api_timings
in a fresh process, so a call that takes too long can be stopped.

    python benchmarks/bench_api.py REPEAT OP [OP ...]

OP: page | page_deep | stats | history. Prints one JSON line per OP as soon as it is measured:
{"op", "median_s", "runs", "rows"} (or {"op", "error"}). Each OP gets one untimed call first,
then REPEAT timed ones; ``history`` gets no untimed call and HISTORY_CALLS timed ones (it is
the big one: a single call of 1,000,000 jobs spread 1.0-4.3 s here, by page faults).
"""

from __future__ import annotations

import json
import statistics
import sys
import time


HISTORY_CALLS = 3  #: timed calls of ``history``, whose median is the figure


def main() -> int:
    repeat, ops = int(sys.argv[1]), sys.argv[2:]
    import notebookjobs as nj

    nj.counts()  # imports, settings, first contact with the queue: not part of any figure
    calls = {
        "page": lambda: nj.jobs(page=1, per_page=20),
        "page_deep": lambda: nj.jobs(page=1000, per_page=20, status="completed"),
        "stats": lambda: nj.stats(),
        "history": lambda: nj.history(),
    }
    for op in ops:
        if op == "stats" and not hasattr(nj, "stats"):
            print(json.dumps({"op": op, "error": "n/a (not implemented)"}), flush=True)
            continue
        call = calls[op]
        try:
            if op != "history":
                call()
            times, rows = [], None
            for _ in range(HISTORY_CALLS if op == "history" else repeat):
                frame = None  # the last frame is freed before the next call, as a user's would be
                t0 = time.perf_counter()
                frame = call()
                times.append(time.perf_counter() - t0)
                rows = len(frame)
        except Exception as exc:  # noqa: BLE001 - reported as the figure's value
            print(json.dumps({"op": op, "error": f"failed: {type(exc).__name__}: {exc}"[:300]}), flush=True)
            continue
        print(json.dumps({"op": op, "median_s": statistics.median(times), "runs": len(times),
                          "rows": rows}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
