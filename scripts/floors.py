"""Print pip constraints that pin every dependency of pyproject.toml to its floor.

`make floors` installs the notebookjobs wheel with them (`pip install -c`), so each direct
dependency is at the lowest version pyproject.toml allows (what uv calls lowest-direct; pip has
no such resolution), then runs tests/floors_smoke.py. A dependency written without a `>=` floor
is left to pip.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
_FLOOR = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*>=\s*([^,;\s]+)")


def floors(dependencies: list[str]) -> list[str]:
    """``name==floor`` for each ``name>=floor`` of ``dependencies``."""
    pins = []
    for dependency in dependencies:
        found = _FLOOR.match(dependency)
        if found:
            pins.append(f"{found.group(1)}=={found.group(2)}")
    return pins


def main() -> int:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    print("\n".join(floors(project["dependencies"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
