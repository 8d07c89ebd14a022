"""Virtual environments of the benchmark's Python peers and tools, created on demand.

Each lives in ``bench/.venvs/<name>`` (the directory ignores itself for git) with only its own
requirements, so a peer's pins (quixstreams pins an older confluent-kafka) never constrain the
project's, and matplotlib never becomes a dependency of kstreams. A stamp file records the
requirements installed; a venv whose stamp matches is reused as it is.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("bench.compare")

VENVS_DIR = Path(__file__).resolve().parents[1] / ".venvs"
STAMP = ".bench-requirements.json"
INSTALL_TIMEOUT = 900.0

QUIXSTREAMS_REQUIREMENTS = ("quixstreams==3.28.1",)
"""Pinned for reproducible figures; the version the harness was written and checked against."""
PLOT_REQUIREMENTS = ("matplotlib>=3.8",)


class VenvError(RuntimeError):
    """A virtual environment could not be created or filled."""


def venv_python(name: str, base: Path = VENVS_DIR) -> Path:
    """Path of the interpreter of venv ``name``."""
    return base / name / "bin" / "python"


def ensure_venv(name: str, requirements: Sequence[str], base: Path = VENVS_DIR) -> Path:
    """Return the interpreter of venv ``name`` holding ``requirements``, creating it if needed."""
    base.mkdir(parents=True, exist_ok=True)
    ignore = base / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# created by bench/compare/venvs.py: nothing here is source\n*\n")
    root = base / name
    python = venv_python(name, base)
    stamp = root / STAMP
    wanted = {"requirements": list(requirements), "python": sys.version.split()[0]}
    try:
        if python.exists() and json.loads(stamp.read_text()) == wanted:
            return python
    except (OSError, ValueError):
        pass
    if not python.exists() or _stamp_python(stamp) not in (None, wanted["python"]):
        shutil.rmtree(root, ignore_errors=True)
        log.info("creating venv %s", root)
        _run([sys.executable, "-m", "venv", str(root)], 300.0)
    log.info("installing %s into %s (once)", " ".join(requirements), root)
    _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
         INSTALL_TIMEOUT)
    stamp.write_text(json.dumps(wanted))
    return python


def _stamp_python(stamp: Path) -> str | None:
    try:
        return json.loads(stamp.read_text()).get("python")
    except (OSError, ValueError, AttributeError):
        return None


def _run(command: list[str], timeout: float) -> None:
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise VenvError(f"{' '.join(command[:4])} ... did not finish within {timeout:.0f} s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise VenvError(f"{' '.join(command[:4])} ... failed (exit {done.returncode}):\n{tail}")
