"""Entry point of ``python -m notebookjobs.worker``."""

from __future__ import annotations

import sys

from ..supervisor import main

sys.exit(main())
