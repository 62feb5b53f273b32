"""The socket path rule: how long a Unix socket's path may be.

``sockaddr_un.sun_path`` holds 108 bytes on Linux and 104 on macOS (and the BSDs), its NUL
included. We keep a margin of 8 below that, as before this rule had a home (100 on Linux):
the worker's wake socket is named from its stream socket, and a path checked once must still
fit when a suffix of the same length replaces another."""

from __future__ import annotations

from . import portable

SUN_PATH_LINUX = 108  #: bytes of ``sun_path`` on Linux, its NUL included
SUN_PATH_BSD = 104  #: on macOS and the BSDs
MARGIN = 8  #: bytes kept free below the limit


def path_max() -> int:
    """The longest socket path, in bytes, we bind or connect to here."""
    return (SUN_PATH_BSD if portable() else SUN_PATH_LINUX) - MARGIN


def unix_sockets() -> bool:
    """Whether this Python has Unix sockets (not on Windows, whose Python does not expose
    them): without them no worker can be reached here, and clients use the queue's file."""
    import socket

    return hasattr(socket, "AF_UNIX")
