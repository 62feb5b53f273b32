"""What is wrong that the worker cannot fix itself (SPEC §14: faults are reported, jobs go on):
unwritable logs, failing commits, a queue file deleted under it, an invalid whitelist.yaml.

Each kind of problem has one current message: shown by ``worker_status()["problems"]`` and
logged once, when it appears or changes, so a fault that lasts does not flood worker.log.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)


class Problems:
    """The worker's current problems, by kind (thread-safe)."""

    def __init__(self) -> None:
        self._messages: dict[str, str] = {}
        self._lock = threading.Lock()

    def report(self, kind: str, message: str) -> None:
        """``kind`` is wrong now, as ``message`` says (logged if it is new)."""
        with self._lock:
            if self._messages.get(kind) == message:
                return
            self._messages[kind] = message
        logger.error("%s", message)

    def clear(self, kind: str) -> None:
        """``kind`` is fine again."""
        with self._lock:
            if self._messages.pop(kind, None) is None:
                return
        logger.info("resolved: %s", kind)

    def messages(self) -> list[str]:
        """The current problems, ordered by kind."""
        with self._lock:
            return [self._messages[kind] for kind in sorted(self._messages)]
