"""``nj.progress(fraction, message=None)``: a job reports how far it got.

The call only validates and hands the report to a reporter hook. The pool's children install a
reporter that sends it to the worker over their pipe; with no reporter (plain Python, a notebook
cell) the call does nothing, so job code can call it unconditionally.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from ..errors import InvalidArgumentsError

#: Receives (fraction, message) for every valid report; None: reports are dropped.
Reporter = Callable[[float, str | None], None]
PROGRESS_INTERVAL_S = 0.1  #: seconds: a throttled reporter passes on one report per interval

_reporter: Reporter | None = None


def set_reporter(reporter: Reporter | None) -> None:
    """Install the hook that receives reports in this process (None removes it)."""
    global _reporter
    _reporter = reporter


def throttled(reporter: Reporter, interval_s: float = PROGRESS_INTERVAL_S) -> Reporter:
    """``reporter``, passing on at most one report per ``interval_s``; 1.0 (done) always."""
    last = -math.inf

    def report(fraction: float, message: str | None) -> None:
        nonlocal last
        now = time.monotonic()
        if fraction >= 1.0 or now - last >= interval_s:
            last = now
            reporter(fraction, message)

    return report


def progress(fraction: float, message: str | None = None) -> None:
    """Report that the running job is ``fraction`` (0 to 1) done, with an optional message.

    Raises ``InvalidArgumentsError`` when ``fraction`` is not a number from 0 to 1 or ``message``
    is not a string. Outside a worker's child, and with no reporter set, it does nothing.
    """
    number = isinstance(fraction, (int, float)) and not isinstance(fraction, bool)
    if not number or not math.isfinite(fraction) or not 0 <= fraction <= 1:
        raise InvalidArgumentsError(
            f"progress fraction {fraction!r} is not allowed; pass a number from 0 (nothing done) "
            "to 1 (all done), e.g. nj.progress(i / total)"
        )
    if message is not None and not isinstance(message, str):
        raise InvalidArgumentsError(
            f"progress message {message!r} is not a string; pass text or leave it out"
        )
    reporter = _reporter
    if reporter is not None:
        reporter(float(fraction), message)
