"""Writing a run's results folder: atomically, never over an earlier run, with its provenance.

Layout: `<out>/<scenario>/<run_id>/` holding config.toml, metadata.json, monthly.parquet,
districts.parquet, incidents.parquet, completion.parquet, targets.csv, summary.json and plots/;
`<out>/<scenario>/latest` points at the newest run. Everything is written into a hidden
temporary folder beside it and renamed into place only when complete.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import tomli_w

from .config import ScenarioConfig
from .ensemble import RunResult
from .errors import UserError

RUN_FILES = ("config.toml", "metadata.json", "monthly.parquet", "districts.parquet", "incidents.parquet", "targets.csv", "summary.json")


def git_revision(where: Path | None = None) -> str:
    """The source tree's git commit (with '-dirty' when it has uncommitted changes), or 'unknown'."""
    where = where or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where, capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def config_toml(cfg: ScenarioConfig) -> str:
    return tomli_w.dumps(cfg.model_dump(mode="python", exclude_none=True))


def config_hash(cfg: ScenarioConfig) -> str:
    return hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def new_run_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ")


@contextmanager
def staged_run_dir(out: Path, scenario: str, run_id: str):
    """Yield a temporary folder to fill; on success rename it to `<out>/<scenario>/<run_id>` (a new
    name if that exists) and point `latest` at it. On failure remove it: no half-written run."""
    parent = Path(out) / scenario
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create results folder ({exc.strerror})", source=str(parent)) from None
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{run_id}-", dir=parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a results folder is for sharing
    final_holder: dict[str, Path] = {}
    try:
        yield tmp, final_holder
        final = parent / run_id
        n = 1
        while True:
            try:
                os.rename(tmp, final)  # fails if `final` exists and is not empty: never overwrite a run
                break
            except OSError:
                if not final.exists():
                    raise
                n += 1
                final = parent / f"{run_id}-{n}"
        final_holder["path"] = final
        link_tmp = parent / f".latest-{os.getpid()}"
        if link_tmp.is_symlink() or link_tmp.exists():
            link_tmp.unlink()
        link_tmp.symlink_to(final.name)
        os.replace(link_tmp, parent / "latest")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_tables(folder: Path, result: RunResult) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(config_toml(result.config), encoding="utf-8")
    result.monthly.to_parquet(folder / "monthly.parquet", index=False)
    result.districts.to_parquet(folder / "districts.parquet", index=False)
    result.incidents.to_parquet(folder / "incidents.parquet", index=False)
    result.completion.to_parquet(folder / "completion.parquet", index=False)
    result.targets.to_csv(folder / "targets.csv", index=False)
    (folder / "summary.json").write_text(json.dumps(result.summary, indent=2, default=str), encoding="utf-8")


def metadata(result: RunResult, *, started: dt.datetime, finished: dt.datetime, version: str, workers: int, inventory: str | None) -> dict:
    return {
        "scenario": result.config.name,
        "question": result.config.question,
        "seed": result.seed,
        "replications": result.replications,
        "workers": workers,
        "package_version": version,
        "git_revision": git_revision(),
        "config_sha256": config_hash(result.config),
        "inventory": inventory,
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "wall_seconds": round((finished - started).total_seconds(), 3),
        "simpy_events": result.events_processed,
    }
