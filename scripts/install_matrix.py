"""The install matrix (``make matrix``, run by ``make test``): the wheel of the current source,
installed as a pip user installs it, one extra at a time, and walked.

For each of no extra, ``[dashboard]``, ``[notebooks]`` and ``[dask]`` alone: a venv of its own
(``.venv-matrix/<extra>``, made with ``pip install "<wheel>[extra]"`` and kept while
pyproject.toml and the Python are the same; nothing pinned, as a user pins nothing), the wheel
reinstalled into it each time (built from a clean copy of the source: ``scripts/build_wheel.py``),
then ``tests/wheel_walk.py`` with its Python. The wheel's modules must be the source's, no more.

    python scripts/install_matrix.py [EXTRA ...]     # default: all four ('' or base: none)

Prints a line per extra with what it cost, and exits 1 when any walk failed (its output shown).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_wheel  # noqa: E402

REPO = build_wheel.REPO
VENVS = REPO / ".venv-matrix"
OUT = REPO / "build" / "matrix"
EXTRAS = ("", "dashboard", "notebooks", "dask")
WALK = REPO / "tests" / "wheel_walk.py"


def venv_key() -> str:
    """What a kept venv was made from: pyproject.toml (the dependencies) and the Python."""
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def pip(python: Path, *args: str) -> None:
    """``pip ARGS`` in that venv; what it said only when it failed."""
    out = subprocess.run([str(python), "-m", "pip", "--quiet", "--disable-pip-version-check",
                          *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"matrix: `pip {' '.join(args)}` failed:\n{out.stdout}{out.stderr}")


def installed(extra: str, wheel: Path) -> Path:
    """The Python of the venv of ``extra`` with ``wheel`` installed (not editable) in it."""
    folder = VENVS / (extra or "base")
    python = folder / "bin" / "python"
    stamp = folder / ".made-from"
    if stamp.exists() and stamp.read_text() == venv_key():
        pip(python, "install", "--no-deps", "--force-reinstall", str(wheel))
        return python
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    pip(python, "install", f"{wheel}[{extra}]" if extra else str(wheel))
    stamp.write_text(venv_key())
    return python


def check_contents(wheel: Path) -> None:
    """The wheel ships the package's modules and nothing else (no stale ``build/lib``)."""
    package = REPO / "notebookjobs"
    source = {p.relative_to(REPO).as_posix() for p in package.rglob("*.py")
              if "__pycache__" not in p.parts}
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n for n in archive.namelist() if n.endswith(".py")}
    if shipped != source:
        raise SystemExit(f"matrix: {wheel.name} ships {sorted(shipped - source)} and lacks "
                         f"{sorted(source - shipped)}")


def main(argv: list[str]) -> int:
    extras = [("" if e == "base" else e) for e in argv[1:]] or list(EXTRAS)
    started = time.monotonic()
    wheel = build_wheel.build(OUT)
    check_contents(wheel)
    print(f"matrix: {wheel.name} built from a clean copy ({time.monotonic() - started:.0f} s)",
          flush=True)
    failed = []
    for extra in extras:
        began = time.monotonic()
        python = installed(extra, wheel)
        ready = time.monotonic()
        walk = subprocess.run([str(python), str(WALK), extra], capture_output=True, text=True)
        name = f"[{extra}]" if extra else "no extra"
        print(f"matrix {name}: {'ok' if walk.returncode == 0 else 'FAILED'} (venv "
              f"{ready - began:.0f} s, walk {time.monotonic() - ready:.0f} s)", flush=True)
        if walk.returncode != 0:
            failed.append(name)
            print(walk.stdout + walk.stderr, flush=True)
    print(f"matrix: {len(extras) - len(failed)} of {len(extras)} extras ok "
          f"({time.monotonic() - started:.0f} s in all)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
