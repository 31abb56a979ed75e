"""One provenance record, written as `metadata.json` into every results folder (run, comparison,
sweep, calibration, backtest), so any output can be traced to the code, seeds and configs that made it."""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from .bands import Band

# Every kind of folder carries at least these keys; a run adds its own (scenario, workers, ...).
PROVENANCE_KEYS = (
    "kind",
    "command",
    "created",
    "started",
    "wall_seconds",
    "package_version",
    "git_revision",
    "python_version",
    "numpy_version",
    "seeds",
    "configs",
    "band",
)
KINDS = ("run", "comparison", "sweep", "calibration", "backtest", "plan", "sensitivity")


def package_version() -> str:
    try:
        return version("demining-sim")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0+unknown"


def git_revision(where: Path | None = None) -> str:
    """The source tree's git commit (with '-dirty' when it has uncommitted changes), or 'unknown'."""
    where = where or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=where, capture_output=True, text=True, timeout=10
        )
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def provenance(
    kind: str,
    *,
    started: dt.datetime,
    seeds: list[int],
    configs: dict[str, str],
    band: Band,
    command: str | None = None,
    created: dt.datetime | None = None,
    git: str | None = None,
) -> dict:
    """The record for a folder of `kind`. `configs` maps each scenario (or grid point) to the SHA-256
    of its resolved config; `command` is the command line, None when called from Python; `git` is
    the revision when it was taken earlier (a run records it when it starts)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of results folder {kind!r}; known: {', '.join(KINDS)}")
    created = created or now()
    return {
        "kind": kind,
        "command": command,
        "created": created.isoformat(timespec="seconds"),
        "started": started.isoformat(timespec="seconds"),
        "wall_seconds": round((created - started).total_seconds(), 3),
        "package_version": package_version(),
        "git_revision": git or git_revision(),
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "seeds": [int(s) for s in seeds],
        "configs": dict(configs),
        "band": band.as_dict(),
    }
