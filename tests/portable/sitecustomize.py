"""Loaded by every Python process of `make test`'s portable run (PYTHONPATH=tests/portable, with
NOTEBOOKJOBS_PORTABLE=1): takes away what macOS does not have, so that a call the portable path
must not make fails loudly here instead of passing on Linux. (PDEATHSIG is not taken away:
``system.parent`` never reaches for it in that mode, and tests/test_system.py checks that the
package imports and works with ``prctl`` unavailable.)"""
from __future__ import annotations

import os
import select

if os.environ.get("NOTEBOOKJOBS_PORTABLE") == "1":
    # selectors, imported after this, then picks poll as its default: no epoll anywhere
    if hasattr(select, "epoll"):
        del select.epoll
    if hasattr(os, "fdatasync"):
        del os.fdatasync
    os.environ["NOTEBOOKJOBS_PORTABLE_CHECKED"] = "1"  # tests/test_system.py: this file ran
