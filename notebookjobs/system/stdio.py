"""What the attempt's output capture (``attempt.capture``) needs from the system: how much a
pipe holds, and the C library's ``fflush``."""

from __future__ import annotations

from collections.abc import Callable

from . import portable

DEFAULT_PIPE_BYTES = 1 << 16  #: what a pipe holds on Linux and macOS unless it was resized


def pipe_size(fd: int) -> int:
    """Bytes the pipe ``fd`` holds: ``F_GETPIPE_SZ`` on Linux (a pipe may have been resized),
    the default elsewhere and in the forced portable mode."""
    if portable():
        return DEFAULT_PIPE_BYTES
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)


def c_fflush() -> Callable[[None], object] | None:
    """The C library's ``fflush``: what C code printed with ``printf`` waits in its buffer (a
    pipe is not a terminal), and a child killed later would lose it. None where ctypes or the C
    library cannot be had (the output of Python code is flushed all the same)."""
    try:
        import ctypes

        return ctypes.CDLL(None).fflush
    except (ImportError, OSError, AttributeError):
        return None
