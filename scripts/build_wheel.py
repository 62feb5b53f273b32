"""Build the wheel of the current source, from a clean copy of it.

setuptools builds in the source folder and reuses its ``build/lib``: a module deleted since the
last build would still ship in the wheel (setuptools issue #1871). So the source is copied to a
temporary folder first, without ``build/``, virtualenvs and caches, and built there.
``make wheel``, ``make floors`` and ``make matrix`` build with this.

    python scripts/build_wheel.py [OUT]     # the wheel into OUT (default dist/); prints its path
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: what a build never reads: earlier builds, environments, caches, a queue and its logs
LEFT_OUT = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__",
                                  ".mypy_cache", ".ruff_cache", ".pytest_cache", ".notebookjobs",
                                  "logs", "node_modules", "*.whl")


def build(out: Path, source: Path = REPO) -> Path:
    """The wheel of ``source``, built from a clean copy, in ``out`` (replacing an older one)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("notebookjobs-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="nj-wheel-") as tmp:
        copy = Path(tmp) / "source"
        shutil.copytree(source, copy, ignore=LEFT_OUT, symlinks=True)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                        "-w", str(out.resolve()), str(copy)], check=True)
    [wheel] = out.glob("notebookjobs-*.whl")
    return wheel


def main(argv: list[str]) -> int:
    print(build(Path(argv[1]) if len(argv) > 1 else REPO / "dist"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
