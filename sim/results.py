"""Results folders: written atomically, never over an earlier run, resumable, with provenance.

A run is written under a hidden name, `<out>/<scenario>/.partial-<run_id>/`: first its resolved
`config.toml` and `plan.json` (seed, replications, hashes), then one set of part files per
replication as it finishes (`parts/`; a replication counts as done once its `.json` is in place).
When every replication is done the parts are merged into the final tables, the summaries and
plots are written, and the folder is renamed to `<out>/<scenario>/<run_id>/`; `latest` then
points at it. An interrupted run keeps its partial folder, and `demining run --resume` finishes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import tomli_w

from .bands import BAND, Band
from .config import ScenarioConfig
from .ensemble import TABLES, RunResult
from .errors import UserError
from .provenance import git_revision, provenance

RUN_FILES = (
    "config.toml",
    "metadata.json",
    "monthly.parquet",
    "districts.parquet",
    "incidents.parquet",
    "completion.parquet",
    "replications.parquet",
    "per_year.parquet",
    "released.parquet",
    "targets.csv",
    "summary.json",
)
PARTIAL_PREFIX = ".partial-"


def config_toml(cfg: ScenarioConfig) -> str:
    return tomli_w.dumps(cfg.model_dump(mode="python", exclude_none=True))


def config_hash(cfg: ScenarioConfig) -> str:
    return hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def file_hash(path: Path | None) -> str | None:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None


def new_run_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return now.strftime("%Y%m%dT%H%M%SZ")


def results_folder(out: Path, name: str) -> Path:
    """`out/name`, where `name` must be one plain folder name: the second line of defence behind the
    config's check of scenario names, so no name (traversal, absolute, empty, control characters)
    makes the tool write outside the results root. Checked on the normalised path rather than the
    resolved one, so a folder the user linked elsewhere under `out` on purpose still works."""
    root = Path(os.path.abspath(out))
    folder = Path(os.path.abspath(root / name)) if name else root
    if folder.parent != root or folder.name != name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise UserError(f"refusing to write outside the results root: {name!r} is not a plain folder name", source=str(out))
    return Path(out) / name


def _write_bytes_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_text_atomically(path: Path, text: str) -> None:
    _write_bytes_atomically(path, text.encode("utf-8"))


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as strings, so every part has the same schema."""
    return frame.astype({c: "string" for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})


class RunFolder:
    """A run being written (see the module docstring)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.parts = self.path / "parts"

    # ------------------------------------------------------------------ creating and opening
    @classmethod
    def create(
        cls,
        out: Path,
        cfg: ScenarioConfig,
        *,
        seed: int,
        replications: int,
        run_id: str,
        version: str,
        inventory: Path | None = None,
        band: Band = BAND,
    ) -> RunFolder:
        parent = results_folder(out, cfg.name)
        try:
            parent.mkdir(parents=True, exist_ok=True)
            path = parent / f"{PARTIAL_PREFIX}{run_id}"
            n = 1
            while True:
                try:
                    path.mkdir()
                    break
                except FileExistsError:
                    n += 1
                    path = parent / f"{PARTIAL_PREFIX}{run_id}-{n}"
        except OSError as exc:
            raise UserError(f"cannot create results folder ({exc.strerror})", source=str(parent)) from None
        folder = cls(path)
        folder.parts.mkdir()
        _write_text_atomically(path / "config.toml", config_toml(cfg))
        plan = {
            "scenario": cfg.name,
            "run_id": run_id + ("" if n == 1 else f"-{n}"),
            "seed": seed,
            "replications": replications,
            "config_sha256": config_hash(cfg),
            "inventory": str(inventory) if inventory else None,
            "inventory_sha256": file_hash(inventory),
            "band": band.as_dict(),
            "package_version": version,
            "git_revision": git_revision(),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        _write_text_atomically(path / "plan.json", json.dumps(plan, indent=2))
        return folder

    @classmethod
    def open_partial(cls, path: Path) -> RunFolder:
        """An interrupted run to resume; a clear error if `path` is not one."""
        path = Path(path)
        if (path / "metadata.json").is_file() and not (path / "plan.json").is_file():
            raise UserError("this run is already complete; nothing to resume", source=str(path))
        if not (path / "plan.json").is_file() or not (path / "config.toml").is_file():
            raise UserError("not an unfinished run (no plan.json and config.toml)", source=str(path))
        return cls(path)

    @property
    def plan(self) -> dict:
        return json.loads((self.path / "plan.json").read_text(encoding="utf-8"))

    @property
    def band(self) -> Band:
        """The band the run was started with (runs started before bands were recorded: the default)."""
        recorded = self.plan.get("band")
        return Band(recorded["low"], recorded["high"]) if recorded else BAND

    # ------------------------------------------------------------------ replications
    def _part(self, kind: str, rep: int, suffix: str) -> Path:
        return self.parts / f"{kind}-{rep:06d}.{suffix}"

    def write_replication(self, output: dict) -> None:
        rep = output["replication"]
        for kind in TABLES:
            table = pa.Table.from_pandas(_plain(output["tables"][kind]), preserve_index=False)
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink)
            _write_bytes_atomically(self._part(kind, rep, "parquet"), sink.getvalue().to_pybytes())
        buffer = _npy_bytes(output["released_ha"])
        _write_bytes_atomically(self._part("released", rep, "npy"), buffer)
        # Written last: its presence marks the replication as done.
        _write_text_atomically(self._part("scalars", rep, "json"), json.dumps(output["scalars"]))

    def finished_replications(self):
        for path in sorted(self.parts.glob("scalars-*.json")):
            rep = int(path.stem.split("-")[1])
            scalars = json.loads(path.read_text(encoding="utf-8"))
            released = np.load(self._part("released", rep, "npy"), allow_pickle=False)
            yield rep, scalars, released

    # ------------------------------------------------------------------ finishing
    def finalize(self, result: RunResult, metadata: dict, draw_plots=None) -> Path:
        """Merge the parts, write summaries (and plots), and move the run to its final name."""
        for kind in TABLES:
            self._merge(kind, result.replications)
        write_summaries(self.path, result)
        if draw_plots is not None:
            draw_plots(self.path / "plots", result)
        _write_text_atomically(self.path / "metadata.json", json.dumps(metadata, indent=2))
        plan = self.plan
        shutil.rmtree(self.parts)
        (self.path / "plan.json").unlink()
        return _publish(self.path, plan["run_id"])

    def _merge(self, kind: str, replications: int) -> None:
        """Concatenate one table's parts, one part in memory at a time."""
        target = self.path / f"{kind}.parquet"
        tmp = self.path / f".{kind}.parquet.tmp"
        writer = None
        try:
            for rep in range(replications):
                table = pq.read_table(self._part(kind, rep, "parquet"))
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
        finally:
            if writer is not None:
                writer.close()
        os.replace(tmp, target)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _publish(path: Path, run_id: str) -> Path:
    """Rename a finished folder to `run_id` beside it (never over an existing run) and point `latest` at it."""
    parent = path.parent
    final = parent / run_id
    n = 1
    while True:
        try:
            os.rename(path, final)  # fails if `final` exists and is not empty: never overwrite a run
            break
        except OSError:
            if not final.exists():
                raise
            n += 1
            final = parent / f"{run_id}-{n}"
    link_tmp = parent / f".latest-{os.getpid()}"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    link_tmp.symlink_to(final.name)
    os.replace(link_tmp, parent / "latest")
    return final


@contextmanager
def publish_folder(out: Path, name: str, run_id: str):
    """A hidden folder to fill; renamed to `out/name/run_id` (never over another) when the block
    ends without error, removed otherwise. Yields (folder, holder) with holder["path"] set on success."""
    parent = results_folder(out, name)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{run_id}-", dir=parent))
    except OSError as exc:
        raise UserError(f"cannot create results folder ({exc.strerror})", source=str(parent)) from None
    tmp.chmod(0o755)
    holder: dict[str, Path] = {}
    try:
        yield tmp, holder
        holder["path"] = _publish(tmp, run_id)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: Path, data: dict) -> None:
    _write_text_atomically(path, json.dumps(data, indent=2, default=str))


def write_summaries(folder: Path, result: RunResult) -> None:
    """The small tables and summary of a run (the big ones are merged from parts or written by write_tables)."""
    result.completion.to_parquet(folder / "completion.parquet", index=False)
    result.per_replication.to_parquet(folder / "replications.parquet", index=False)
    result.per_year.to_parquet(folder / "per_year.parquet", index=False)
    result.released.to_parquet(folder / "released.parquet", index=False)
    result.targets.to_csv(folder / "targets.csv", index=False)
    _write_text_atomically(folder / "summary.json", json.dumps(result.summary, indent=2, default=str))


def metadata(
    result: RunResult, plan: dict, *, finished: dt.datetime, workers: int, executor: str, command: str | None = None
) -> dict:
    """The run's metadata.json: the provenance record every results folder carries, and the run's own details."""
    started = dt.datetime.fromisoformat(plan["started"])
    record = provenance(
        "run",
        started=started,
        created=finished,
        seeds=[result.seed],
        configs={result.config.name: plan["config_sha256"]},
        band=result.band,
        command=command,
        git=plan["git_revision"],
    )
    return record | {
        "scenario": result.config.name,
        "question": result.config.question,
        "seed": result.seed,
        "replications": result.replications,
        "workers": workers,
        "executor": executor,
        "package_version": plan["package_version"],
        "git_revision": plan["git_revision"],
        "config_sha256": plan["config_sha256"],
        "inventory": plan["inventory"],
        "inventory_sha256": plan["inventory_sha256"],
        "started": plan["started"],
        "finished": finished.isoformat(timespec="seconds"),
        "wall_seconds": round((finished - started).total_seconds(), 3),
        "simpy_events": result.events_processed,
    }


def is_run_folder(path: Path) -> bool:
    return (Path(path) / "metadata.json").is_file() and (Path(path) / "config.toml").is_file()


def resolve_run(spec: str, out: Path = Path("results")) -> Path:
    """A results folder, or a scenario name meaning its latest run; a clear error otherwise."""
    path = Path(spec)
    candidates = [path, Path(out) / spec / "latest"]
    for candidate in candidates:
        if candidate.exists() and is_run_folder(candidate):
            return candidate.resolve()
    if path.exists():
        raise UserError("not a results folder of a finished run (no metadata.json and config.toml)", source=str(path))
    raise UserError(f"no such results folder, and no finished run of a scenario named {spec!r} under {out}")


def check_run(path: Path, replication: int = 0) -> list[str]:
    """Re-run one replication of a finished run and list where it differs from the stored tables
    (empty: it matches). Also checks the config and inventory against their recorded hashes."""
    from .ensemble import replication_seeds, replication_task
    from .scenario import load_scenario
    from .seeds import load_targets
    from .world import read_inventory

    path = Path(path)
    if not is_run_folder(path):
        raise UserError("not a results folder of a finished run (no metadata.json and config.toml)", source=str(path))
    meta = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
    cfg = load_scenario(path / "config.toml", environ={})
    problems = []
    if config_hash(cfg) != meta["config_sha256"]:
        problems.append("config.toml does not match the config hash recorded in metadata.json")
    inventory = None
    if meta.get("inventory"):
        inv_path = Path(meta["inventory"])
        if not inv_path.is_file() or file_hash(inv_path) != meta["inventory_sha256"]:
            raise UserError("the run's inventory is missing or changed (SHA-256 differs)", source=str(inv_path))
        inventory = read_inventory(inv_path, cfg)
    if not 0 <= replication < meta["replications"]:
        raise UserError(f"replication {replication} is not in this run (0 to {meta['replications'] - 1})", source=str(path))
    seeds = replication_seeds(meta["seed"], meta["replications"])
    output = replication_task(cfg.model_dump_json(), tuple(load_targets()), inventory, replication, seeds[replication])
    for kind in TABLES:
        stored = pd.read_parquet(path / f"{kind}.parquet", filters=[("replication", "==", replication)])
        fresh = _plain(output["tables"][kind])
        stored = stored.reset_index(drop=True).astype(fresh.dtypes.to_dict(), errors="ignore")
        try:
            pd.testing.assert_frame_equal(stored, fresh.reset_index(drop=True), check_dtype=False, check_exact=True)
        except AssertionError as exc:
            problems.append(f"{kind}.parquet differs for replication {replication}: {str(exc).splitlines()[0]}")
    return problems
