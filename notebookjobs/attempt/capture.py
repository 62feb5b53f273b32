"""An attempt's output, caught where the operating system sees it (SPEC §7, round 3).

File descriptors 1 and 2 of the process that runs attempts (a pool child, a Dask worker's
child, or the caller of ``notebookjobs run``) are the write end of one pipe while an attempt
runs, and ``sys.stdout`` / ``sys.stderr`` are text streams over them with their ``.buffer``. So
``print``, ``sys.stdout.buffer.write``, ``os.write(1, ...)``, a C library's ``printf``, and every
subprocess the job starts (they inherit fds 1 and 2) write into the same pipe, in the order
they wrote. One thread per process reads the pipe into the current attempt's ``BoundedOutput``
(the end kept, as before) and, in the foreground, echoes it to the terminal.

Why a pipe and a thread that lives as long as the process, not a thread or a file per attempt:
an attempt that prints nothing costs a ``dup2`` pair as it begins (a job may have closed or
replaced fd 1) and, as it ends, the flush of empty streams, the C library's ``fflush`` and one
``poll``: no read, no thread woken (about 1.7 µs of CPU in all, measured against the
``redirect_stdout`` it replaces); and a pipe, unlike a file, cannot fill the disk with the
output of a job that prints for hours (the bound is in memory).

Text that is not valid UTF-8 becomes U+FFFD, whether a job prints lone surrogates or its
subprocess writes bytes of another encoding (SPEC §14).
"""

from __future__ import annotations

import codecs
import contextlib
import io
import math
import os
import select
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from ..system import stdio

OUTPUT_LIMIT_CHARS = 64 * 1024  #: captured output kept per attempt (the end is kept)
LAST_LINE_CHARS = 200  #: the last printed line shown for a running job is cut to this
READ_BYTES = 64 * 1024  #: bytes read from the pipe at a time (a Linux pipe's default size)
#: the error handler of the attempt's text streams: what cannot be encoded (a lone surrogate)
#: is written as U+FFFD, as SPEC §14 stores invalid text
REPLACE = "notebookjobs.fffd"


def _fffd(exc: UnicodeError) -> tuple[bytes, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    # bytes: UTF-8's encoder takes a replacement text of ASCII only
    return "\ufffd".encode() * (exc.end - exc.start), exc.end


codecs.register_error(REPLACE, _fffd)

#: called by the reading thread with the attempt's output after text arrived, or when the time
#: it last asked for has passed; returns seconds until it wants to be called again (None: not
#: before more text)
Watcher = Callable[["BoundedOutput"], "float | None"]


class BoundedOutput:
    """The text of one attempt's output: the last OUTPUT_LIMIT_CHARS characters, and how many
    were dropped before them. Written by ``Capture`` under its lock."""

    def __init__(self, limit: int = OUTPUT_LIMIT_CHARS) -> None:
        self._parts: list[str] = []
        self._size = 0
        self._dropped = 0
        self._limit = limit
        self._last = ""  # the last write with something on it, for last_line()

    def write(self, text: str) -> None:
        if text.strip():
            self._last = text
        self._parts.append(text)
        self._size += len(text)
        if self._size > 2 * self._limit:
            self._trim()

    def _trim(self) -> None:
        joined = "".join(self._parts)
        keep = joined[-self._limit:]
        self._dropped += len(joined) - len(keep)
        self._parts, self._size = [keep], len(keep)

    def last_line(self) -> str:
        """The last line printed that has something on it ('' before any): what a running job
        that reports no progress shows instead of a bar."""
        lines = [line for line in self._last.splitlines() if line.strip()]
        return lines[-1].strip()[:LAST_LINE_CHARS] if lines else ""

    def getvalue(self) -> str:
        if self._size > self._limit:
            self._trim()
        text = "".join(self._parts)
        return f"[... {self._dropped} characters dropped ...]\n{text}" if self._dropped else text


def _text_stream(fd: int) -> TextIO:
    """A line-buffered UTF-8 text stream over ``fd`` that leaves it open: as on a terminal,
    each line reaches the pipe when it is printed (the last line shows while the job runs, and
    lines keep their order with what subprocesses write)."""
    return io.TextIOWrapper(io.BufferedWriter(io.FileIO(fd, "w", closefd=False)),
                            encoding="utf-8", errors=REPLACE, line_buffering=True)


class Capture:
    """Fds 1 and 2 of this process as one pipe, read by a thread into the current attempt's
    output. ``start()`` once; then ``begin()`` and ``end()`` around each attempt; ``close()``
    gives the process its own fds and streams back (a pool child never closes it: it lives
    for its attempts).

    ``echo``: also write what is read to the process's original stdout (``notebookjobs run``
    shows the job's output as it comes). ``watcher``: see ``Watcher``.
    """

    def __init__(self, *, echo: bool = False, watcher: Watcher | None = None) -> None:
        self._echo = echo
        self._watcher = watcher
        self._lock = threading.Lock()  #: the reading thread and end()'s drain, in turn
        self._output: BoundedOutput | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._decoded = False  #: the decoder has had bytes since the attempt began
        self._look = select.poll()  #: end()'s look at whether the pipe holds anything
        self._saved: tuple[int, int] = (-1, -1)  #: the process's own fds 1 and 2 (dups)
        self._streams: tuple[TextIO, TextIO] | None = None
        self._previous: tuple[TextIO, TextIO] | None = None  #: sys.stdout, sys.stderr before
        self._read_fd = self._write_fd = self._stop_r = self._stop_w = -1
        self._pipe_size = READ_BYTES
        self._thread: threading.Thread | None = None
        self._fflush = stdio.c_fflush()

    def start(self) -> None:
        """Make fds 1 and 2 the pipe, and start the reading thread."""
        for stream in (sys.stdout, sys.stderr):  # what was printed before is not the job's
            with contextlib.suppress(Exception):
                if stream is not None:
                    stream.flush()
        self._read_fd, self._write_fd = os.pipe()
        self._stop_r, self._stop_w = os.pipe()
        os.set_blocking(self._read_fd, False)
        self._look.register(self._read_fd, select.POLLIN)
        with contextlib.suppress(OSError):  # what one drain must read
            self._pipe_size = max(READ_BYTES, stdio.pipe_size(self._read_fd))
        self._saved = (os.dup(1), os.dup(2))
        self._previous = (sys.stdout, sys.stderr)
        self._point()
        self._thread = threading.Thread(target=self._read_loop, name="notebookjobs-output",
                                        daemon=True)
        self._thread.start()

    def _point(self) -> None:
        """Fds 1 and 2 to the pipe, sys.stdout and sys.stderr to streams over them."""
        os.dup2(self._write_fd, 1)
        os.dup2(self._write_fd, 2)
        if self._streams is None or self._streams[0].closed or self._streams[1].closed:
            self._streams = (_text_stream(1), _text_stream(2))
        sys.stdout, sys.stderr = self._streams

    def begin(self, output: BoundedOutput) -> None:
        """An attempt begins: what is written from now on is ``output``'s. Fds 1 and 2 and the
        streams are pointed at the pipe again: the previous job may have closed or replaced
        them."""
        self._point()
        with self._lock:
            if self._decoded:
                self._decoder.reset()
                self._decoded = False
            self._output = output

    def end(self) -> None:
        """The attempt ended: what it wrote (also what its streams and the C library still
        buffered) is read into its output before this returns."""
        # Ours, the job's replacements of them, and the interpreter's own (also over fds 1
        # and 2 now): flushing one that holds nothing costs no system call. (try, not
        # contextlib.suppress: five of those per attempt showed in a child's profile.)
        for stream in (sys.stdout, sys.stderr, *(self._streams or ()), sys.__stdout__,
                       sys.__stderr__):
            try:
                if stream is not None:
                    stream.flush()
            except Exception:  # a job's own replacement may fail to flush
                continue
        if self._fflush is not None:
            self._fflush(None)
        with self._lock:
            # At most one pipe's worth: that holds all that was written before end() began
            # (the thread empties it as it fills), and a subprocess the job left running
            # cannot keep this loop reading for ever. A look first (poll), not a read that
            # fails: an attempt that wrote nothing costs one system call here.
            taken = 0
            while taken <= self._pipe_size and self._look.poll(0):
                data = os.read(self._read_fd, READ_BYTES)
                if not data:
                    break
                taken += len(data)
                self._take(data)
            if self._output is not None and self._decoded:
                self._output.write(self._decoder.decode(b"", final=True))
            self._output = None

    def close(self) -> None:
        """Give the process its own fds 1 and 2 and streams back; stop the thread."""
        if self._thread is None:
            return
        for stream in self._streams or ():
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        if self._previous is not None:
            sys.stdout, sys.stderr = self._previous
        os.write(self._stop_w, b"x")
        self._thread.join()
        for fd in (*self._saved, self._read_fd, self._write_fd, self._stop_r, self._stop_w):
            os.close(fd)
        self._thread = None

    def _take(self, data: bytes) -> None:
        """Bytes read from the pipe: echoed, and decoded into the attempt's output (none between
        attempts: what a process the job left behind writes then is nobody's)."""
        if self._echo:
            view = memoryview(data)
            with contextlib.suppress(OSError):  # a closed terminal: the output is still kept
                while view:
                    view = view[os.write(self._saved[0], view):]
        if self._output is not None:
            self._decoded = True
            self._output.write(self._decoder.decode(data))

    def _read_loop(self) -> None:
        poller = select.poll()
        poller.register(self._read_fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        timeout: float | None = None  # seconds until the watcher wants to look again
        while True:
            # (rounded up: a wait rounded down to 0 ms would spin until the time has come)
            events = poller.poll(None if timeout is None else math.ceil(timeout * 1000))
            if any(fd == self._stop_r for fd, _ in events):
                return
            with self._lock:
                arrived = False
                with contextlib.suppress(BlockingIOError):  # end() emptied it meanwhile
                    data = os.read(self._read_fd, READ_BYTES)
                    arrived = bool(data)
                    self._take(data)
                output = self._output
                if output is None:
                    timeout = None
                elif self._watcher is not None and (arrived or timeout is not None):
                    timeout = self._watcher(output)
