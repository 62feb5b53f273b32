"""A real small disk for the fault tests and the soak: a tmpfs of a few MiB mounted over a
folder (root only, as CI runs), filled up to the last few KiB and freed again. ENOSPC then
comes from the kernel, as on a full disk, not from a faked errno."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

#: why a test that needs a small disk is skipped when it cannot have one
NEEDS_ROOT = "needs root to mount a small tmpfs (CI runs as root)"


def can_mount() -> bool:
    return os.geteuid() == 0


class SmallDisk:
    """A tmpfs of ``size_bytes`` mounted at ``path``; ``fill`` takes its free space but
    ``leave`` bytes, ``free`` gives it back."""

    def __init__(self, path: Path, size_bytes: int) -> None:
        self.path = path
        self.filler = path / "filler"
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0700", "tmpfs",
                        str(path)], check=True, capture_output=True)

    def fill(self, leave: int = 0) -> None:
        """Write a file that takes every free byte but ``leave`` (rounded to the page)."""
        with open(self.filler, "ab", buffering=0) as fh:
            chunk = b"\0" * 65536
            with contextlib.suppress(OSError):  # ENOSPC: full
                while True:
                    fh.write(chunk)
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * 4096)
        if leave:
            os.truncate(self.filler, max(0, self.filler.stat().st_size - leave))

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


@contextlib.contextmanager
def small_disk(path: Path, size_bytes: int) -> Iterator[SmallDisk]:
    disk = SmallDisk(path, size_bytes)
    try:
        yield disk
    finally:
        disk.unmount()
