"""Job functions for the tests; copied into each test project as jobs/testing.py.

Side effects are appended to files under $NJ_TEST_EFFECTS (one line per run), so a test can
count how often a job really ran, whichever process ran it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def _effect(name: str, line: str) -> None:
    folder = os.environ.get("NJ_TEST_EFFECTS")
    if folder:
        with open(Path(folder) / f"{name}.log", "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def ok(value: int = 1) -> int:
    """Return the value."""
    _effect("ok", str(value))
    return value


def count(key: str) -> str:
    """Record one run under `key`."""
    _effect(key, str(os.getpid()))
    return key


def fail(message: str = "boom") -> None:
    """Always raise."""
    _effect("fail", message)
    raise ValueError(message)


def fail_times(key: str, failures: int) -> int:
    """Fail the first `failures` runs for `key`, then succeed with the run number."""
    folder = Path(os.environ["NJ_TEST_EFFECTS"])
    path = folder / f"{key}.log"
    runs = len(path.read_text().splitlines()) + 1 if path.exists() else 1
    _effect(key, str(runs))
    if runs <= failures:
        raise RuntimeError(f"{key}: run {runs} fails")
    return runs


def sleep(seconds: float, key: str = "sleep") -> float:
    """Sleep, recording the start and the end."""
    _effect(key, "start")
    time.sleep(seconds)
    _effect(key, "end")
    return seconds


def crash(code: int = 3) -> None:
    """Leave the process at once, as a segfault or os._exit would."""
    _effect("crash", str(code))
    os._exit(code)


def echo(*args, **kwargs) -> dict:
    """Return what it got."""
    return {"args": list(args), "kwargs": kwargs}


def typed(n: int, x: float, flag: bool, name: str, items: list, options: dict) -> dict:
    """Return its arguments and their types, to check coercion."""
    return {k: type(v).__name__ for k, v in locals().items()}


def noisy(lines: int = 3) -> str:
    """Print to stdout and stderr."""
    for i in range(lines):
        print(f"out {i}")
        print(f"err {i}", file=sys.stderr)
    return "done"


class Greeter:
    """A class target."""

    def hello(self, name: str = "world") -> str:
        """Instance method."""
        return f"hello {name}"

    @staticmethod
    def shout(text: str) -> str:
        """Static method."""
        return text.upper()

    @classmethod
    def kind(cls) -> str:
        """Class method."""
        return cls.__name__

    def _secret(self) -> str:
        return "never"


def report_progress(steps: int = 1) -> str:
    """Report progress `steps` times as fast as it can, then 1.0, through the public API."""
    import notebookjobs as nj

    for step in range(steps):
        nj.progress(step / steps / 2, f"step {step}")
    nj.progress(1.0, "done")
    return "reported"


def segfault() -> None:
    """Die of SIGSEGV, as a crash in C code would (without writing a core file)."""
    import resource
    import signal

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.kill(os.getpid(), signal.SIGSEGV)


def imported(name: str) -> bool:
    """Whether module `name` is loaded in the process running the job."""
    return name in sys.modules


def start_process() -> int:
    """Start a process of its own and return its exit code."""
    import multiprocessing

    process = multiprocessing.get_context("spawn").Process(target=os.getpid)
    process.start()
    process.join()
    return -1 if process.exitcode is None else process.exitcode


LOOP = "while true; do sleep 0.05; done"  #: a shell loop that runs until it is killed


def _start_loop(new_session: bool) -> subprocess.Popen:
    return subprocess.Popen(["bash", "-c", LOOP], start_new_session=new_session)


def spawn_loop(key: str = "loop") -> None:
    """Start a shell loop in this process's group, record '<own pid> <loop pid>', wait forever."""
    loop = _start_loop(new_session=False)
    _effect(key, f"{os.getpid()} {loop.pid}")
    loop.wait()


def escape_loop(key: str = "loop") -> None:
    """spawn_loop, but the loop escapes the process group: it runs in a session of its own."""
    loop = _start_loop(new_session=True)
    _effect(key, f"{os.getpid()} {loop.pid}")
    loop.wait()


def stubborn_loop(key: str = "loop") -> None:
    """Start a loop in this group and one in a session of its own, record '<own pid> <loop
    pid> <loop pid>', and wait."""
    inside, outside = _start_loop(new_session=False), _start_loop(new_session=True)
    _effect(key, f"{os.getpid()} {inside.pid} {outside.pid}")
    inside.wait()


#: text that is not valid UTF-8: what a surrogateescape decoding makes of the byte 0xff
NOT_UTF8 = b"caf\xff".decode("utf-8", "surrogateescape")


def bad_text(where: str = "output") -> str:
    """Put a lone surrogate in the attempt's output, error, progress message or result."""
    if where == "output":
        print(NOT_UTF8)
        print(NOT_UTF8, file=sys.stderr)
    elif where == "error":
        raise ValueError(NOT_UTF8)
    elif where == "progress":
        import notebookjobs as nj

        nj.progress(0.5, NOT_UTF8)
    elif where == "result":
        return NOT_UTF8
    return "done"


def stamp(token: str, pause_ms: int = 0) -> str:
    """Record the start and the end of this run (pid, system-wide monotonic ns) under
    `token`, for the fault soak's check that no job runs twice at the same time."""
    _effect("stamps", f"start {token} {os.getpid()} {time.monotonic_ns()}")
    if pause_ms:
        time.sleep(pause_ms / 1000)
    _effect("stamps", f"end {token} {os.getpid()} {time.monotonic_ns()}")
    return token


# --- typed results and data arguments (SPEC §15) ----------------------------------------------

def frame(rows: int = 3):
    """A DataFrame of several dtypes with a named index (pandas imported here, in the child)."""
    import pandas as pd

    return pd.DataFrame(
        {"n": list(range(rows)), "x": [i / 2 for i in range(rows)],
         "name": [f"r{i}" for i in range(rows)],
         "when": pd.date_range("2026-01-01", periods=rows, tz="UTC"),
         "kind": pd.Categorical(["a", "b", "a"][:rows] + ["a"] * max(0, rows - 3)),
         "maybe": pd.array([1, None, 3][:rows] + [0] * max(0, rows - 3), dtype="Int64")},
        index=pd.Index([f"k{i}" for i in range(rows)], name="key"))


def series():
    """A named Series of floats."""
    import pandas as pd

    return pd.Series([1.5, 2.5], index=["a", "b"], name="price")


def array(rows: int = 2):
    """A 2-d float32 array."""
    import numpy as np

    return np.arange(rows * 3, dtype="float32").reshape(rows, 3)


def blob(size: int = 4) -> bytes:
    """`size` bytes, every value once in a while."""
    return bytes(i % 256 for i in range(size))


def big_text(size: int) -> str:
    """A result of ``size`` characters (kept as JSON in the queue, through the worker)."""
    return "x" * size


def something() -> object:
    """A value that is none of the above: kept as its repr."""
    return {1, 2, 3}


def mixed():
    """A frame Parquet cannot hold (a column of mixed objects): kept as its repr."""
    import pandas as pd

    return pd.DataFrame({"m": ["a", 1, 2.5]})


def describe(data, scale: float = 1.0) -> dict:
    """What the job received: its type, and the data scaled (a frame, series or array)."""
    out: dict = {"type": type(data).__name__, "module": type(data).__module__.split(".")[0]}
    if out["type"] == "DataFrame":
        out.update(columns=[str(c) for c in data.columns], index=[str(i) for i in data.index],
                   dtypes=[str(t) for t in data.dtypes], total=float(data["v"].sum() * scale))
    elif out["type"] in ("Series", "ndarray"):
        out.update(total=float(data.sum() * scale), dtype=str(data.dtype))
    return out


def scaled(data, scale: float = 2.0):
    """The frame, series or array it got, times `scale`: a frame in, a frame out."""
    return data * scale


# --- output (SPEC §7, round 3: a job's output is all of it) ------------------------------------

def all_outputs(tag: str = "x") -> str:
    """Write one line each way a program writes: print, the file descriptors, a subprocess,
    ``sys.stdout.buffer``, C code; each line ends with `tag`."""
    print(f"print {tag}")
    os.write(1, f"fd1 {tag}\n".encode())
    os.write(2, f"fd2 {tag}\n".encode())
    subprocess.run(["sh", "-c", f"echo sh {tag}; echo sh-err {tag} >&2"], check=True)
    sys.stdout.buffer.write(f"buffer {tag}\n".encode())
    sys.stdout.flush()
    import ctypes

    ctypes.CDLL(None).printf(f"printf {tag}\n".encode())
    print(f"last {tag}", file=sys.stderr)
    return "written"


def flood(size: int, line: str = "the end") -> int:
    """Write `size` bytes to fd 1 in one call (more than a pipe holds), then `line`."""
    os.write(1, b"x" * size)
    os.write(1, f"\n{line}\n".encode())
    return size


def say_and_wait(line: str, gate: str) -> str:
    """Write `line` to fd 1, then wait until the file `gate` exists."""
    os.write(1, f"{line}\n".encode())
    while not os.path.exists(gate):
        time.sleep(0.01)
    return line


def close_output() -> str:
    """Close fds 1 and 2 and put a file of its own in sys.stdout's place, as a careless job
    might (the next job in the same process must still have its output)."""
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - left open on purpose
    os.close(1)
    os.close(2)
    return "closed"


def scribble(data: str = "garbage") -> None:
    """Write ``data`` (each character one byte) into every socket this process holds: its pool
    child's pipe to the worker among them (a job that writes where it should not)."""
    import stat

    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.write(fd, data.encode("latin-1"))
        except OSError:
            pass
    time.sleep(0.5)
