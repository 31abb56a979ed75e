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
import fcntl
import hashlib
import io
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
from .costs import published_check, spend_table
from .ensemble import TABLES, RunResult
from .errors import UserError
from .metrics import PerYear
from .model import MODEL_REVISION
from .provenance import git_revision, provenance
from .uncertainty import Uncertainty, describe
from .utilisation import YearlyUse

RUN_FILES = (
    "config.toml",
    "metadata.json",
    "monthly.parquet",
    "districts.parquet",
    "incidents.parquet",
    "utilisation.parquet",
    "completion.parquet",
    "replications.parquet",
    "per_year.parquet",
    "released.parquet",
    "spend_per_year.parquet",
    "published_spend_check.csv",
    "targets.csv",
    "summary.json",
)
PARTIAL_PREFIX = ".partial-"
# What a finished replication's scalars must hold for a run to be assembled from them.
REPLICATION_KEYS = frozenset(
    {"targets", "completion_day", "initial_area_ha", "initial_items", "totals", "district_totals", "milestones",
     "per_year", "events_processed"}
)  # fmt: skip


def config_toml(cfg: ScenarioConfig) -> str:
    return tomli_w.dumps(cfg.model_dump(mode="python", exclude_none=True))


def config_hash(cfg: ScenarioConfig) -> str:
    return hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def file_hash(path: Path | None) -> str | None:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None


def new_run_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return now.strftime("%Y%m%dT%H%M%SZ")


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable: without it a power cut can undo a rename that was reported done."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_durably(tmp: Path, path: Path) -> None:
    """Rename a finished temporary file over `path`, its contents on disk first (else the rename
    can land before the data and leave an empty file after a crash)."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


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


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """`data` as `path`, written whole under a temporary name of this process's own, on disk, then
    renamed: a reader, or another process writing the same file at the same time, sees the old
    file or a new one, whole; an interrupted write leaves no file behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _write_text_atomically(path: Path, text: str) -> None:
    write_bytes_atomically(path, text.encode("utf-8"))


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as strings, so every part has the same schema."""
    return frame.astype({c: "string" for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})


PLAN_KEYS = (
    "scenario",
    "run_id",
    "seed",
    "replications",
    "config_sha256",
    "inventory",
    "inventory_sha256",
    "package_version",
    "git_revision",
    "started",
)
LOCK_FILE = "lock"  # holds the pid of the process writing the folder; flock'ed while it runs
DAMAGED = "damaged"  # part files found damaged on --resume are moved here, never deleted


def _read_json(path: Path) -> object:
    """A JSON file of a results folder; a one-line error naming it when it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("missing", source=str(path)) from None
    except OSError as exc:
        raise UserError(f"cannot be read ({exc.strerror})", source=str(path)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"damaged: not valid JSON ({exc})", source=str(path)) from None


def read_record(path: Path, keys: tuple[str, ...]) -> dict:
    """A JSON object with at least `keys` (plan.json, metadata.json, summary.json)."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise UserError("damaged: not a JSON object", source=str(path))
    missing = [k for k in keys if k not in data]
    if missing:
        raise UserError(f"damaged: no {', '.join(repr(k) for k in missing)}", source=str(path))
    return data


def recorded_inventory(recorded: str | None, sha256: str | None, source: Path) -> Path | None:
    """The inventory a run used, checked against its recorded hash. Runs store it absolute; older
    ones stored the path as typed, relative to a folder they did not record, so a relative path
    that is not found (or not the same file) from here is reported as not found, not as changed."""
    if not recorded:
        return None
    path = Path(recorded)
    if path.is_absolute():
        if not path.is_file():
            raise UserError(f"the run's inventory {path} is missing", source=str(source))
        if file_hash(path) != sha256:
            raise UserError(f"the run's inventory {path} changed since the run (SHA-256 differs)", source=str(source))
        return path
    if not path.is_file() or file_hash(path) != sha256:
        raise UserError(
            f"the run's inventory {recorded} was not found (recorded relative to the folder the run was started in; "
            "run this command from that folder)",
            source=str(source),
        )
    return path


class RunFolder:
    """A run being written (see the module docstring). One process at a time writes it: creating
    or opening one takes an exclusive lock on its lock file, released by `unlock` (or by the
    process ending, however it ends)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.parts = self.path / "parts"
        self._lock_fd: int | None = None

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
        uncertainty: Uncertainty | None = None,
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
        folder.lock()
        try:
            folder._write_plan(cfg, n, seed=seed, replications=replications, run_id=run_id, version=version,
                               inventory=inventory, band=band, uncertainty=uncertainty)  # fmt: skip
        except BaseException as exc:
            # Nothing is finished yet: leave no stray folder and no held lock behind.
            folder.unlock()
            shutil.rmtree(path, ignore_errors=True)
            if isinstance(exc, OSError):
                raise UserError(f"cannot start the run ({exc.strerror or exc})", source=str(path)) from None
            raise
        return folder

    def _write_plan(
        self, cfg: ScenarioConfig, n: int, *, seed, replications, run_id, version, inventory, band, uncertainty
    ) -> None:
        path = self.path
        self.parts.mkdir()
        _write_text_atomically(path / "config.toml", config_toml(cfg))
        plan = {
            "scenario": cfg.name,
            "run_id": run_id + ("" if n == 1 else f"-{n}"),
            "seed": seed,
            "replications": replications,
            "config_sha256": config_hash(cfg),
            # absolute, so that --resume and --check find it from any working folder
            "inventory": str(Path(inventory).resolve()) if inventory else None,
            "inventory_sha256": file_hash(inventory),
            "band": band.as_dict(),
            "uncertainty": uncertainty_record(uncertainty),
            "package_version": version,
            "model_revision": MODEL_REVISION,
            "git_revision": git_revision(),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        _write_text_atomically(path / "plan.json", json.dumps(plan, indent=2))

    @classmethod
    def open_partial(cls, path: Path) -> RunFolder:
        """An interrupted run to resume (not yet locked); a clear error if `path` is not one or its plan is damaged."""
        path = Path(path)
        if (path / "metadata.json").is_file() and not (path / "plan.json").is_file():
            raise UserError("this run is already complete; nothing to resume", source=str(path))
        if not (path / "plan.json").is_file() or not (path / "config.toml").is_file():
            raise UserError("not an unfinished run (no plan.json and config.toml)", source=str(path))
        folder = cls(path)
        plan = folder.plan
        for key, low in (("seed", 0), ("replications", 1)):
            if type(plan[key]) is not int or plan[key] < low:
                raise UserError(f"damaged: {key} is {plan[key]!r}, not an integer >= {low}", source=str(path / "plan.json"))
        started_by = plan.get("model_revision", "an earlier one")
        if started_by != MODEL_REVISION:
            raise UserError(
                f"started by model revision {started_by!r}, not this one ({MODEL_REVISION!r}): its replications "
                "would not match new ones; start the run again",
                source=str(path),
            )
        return folder

    def lock(self) -> None:
        """Take the folder's exclusive lock; a one-line error naming the holder if another process has it."""
        try:
            fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            raise UserError("not an unfinished run (it was finished or removed meanwhile)", source=str(self.path)) from None
        except OSError as exc:
            raise UserError(f"cannot create its lock file ({exc.strerror})", source=str(self.path)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise UserError(f"already being run or resumed by pid {holder}; wait for it to end", source=str(self.path)) from None
        except OSError:
            pass  # a file system without flock (some network mounts): run unlocked rather than not at all
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def plan(self) -> dict:
        return read_record(self.path / "plan.json", PLAN_KEYS)

    @property
    def uncertainty(self) -> Uncertainty | None:
        """What the run draws per replication, as recorded when it started (older runs: nothing)."""
        return Uncertainty.from_dict(self.plan.get("uncertainty"))

    @property
    def band(self) -> Band:
        """The band the run was started with (runs started before bands were recorded: the default)."""
        recorded = self.plan.get("band")
        return Band(recorded["low"], recorded["high"]) if recorded else BAND

    # ------------------------------------------------------------------ replications
    def _part(self, kind: str, rep: int, suffix: str) -> Path:
        return self.parts / f"{kind}-{rep:06d}.{suffix}"

    def _part_files(self, rep: int) -> list[Path]:
        return [
            *(self._part(kind, rep, "parquet") for kind in TABLES),
            self._part("released", rep, "npy"),
            self._part("scalars", rep, "json"),
        ]

    def write_replication(self, output: dict) -> None:
        rep = output["replication"]
        for kind in TABLES:
            table = pa.Table.from_pandas(_plain(output["tables"][kind]), preserve_index=False)
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink)
            write_bytes_atomically(self._part(kind, rep, "parquet"), sink.getvalue().to_pybytes())
        buffer = _npy_bytes(output["released_ha"])
        write_bytes_atomically(self._part("released", rep, "npy"), buffer)
        # Written last: its presence marks the replication as done.
        _write_text_atomically(self._part("scalars", rep, "json"), json.dumps(output["scalars"], default=_scalars_json))

    def count_finished(self) -> int:
        """Finished replications (those with their scalars file); raises OSError when the parts
        cannot be listed, so that an unreadable folder is never taken for an empty one."""
        try:
            names = os.listdir(self.parts)
        except FileNotFoundError:
            return 0
        return sum(1 for name in names if name.startswith("scalars-") and name.endswith(".json"))

    def finished_replications(self):
        for path in sorted(self.parts.glob("scalars-*.json")):
            try:
                rep = int(path.stem.split("-")[1])
                scalars = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(scalars, dict) or not scalars.keys() >= REPLICATION_KEYS:
                    raise ValueError("not the scalars of a finished replication")
                _read_scalars(scalars)
                released = np.load(self._part("released", rep, "npy"), allow_pickle=False)
            except (OSError, ValueError, IndexError, EOFError) as exc:
                raise UserError(f"damaged part ({exc}); --resume sets it aside", source=str(path)) from None
            yield rep, scalars, released

    def _damage(self, rep: int, replications: int) -> str | None:
        """What is wrong with finished replication `rep`'s part files (None: they are intact)."""
        if not 0 <= rep < replications:
            return f"replication {rep} is not in this run of {replications}"
        scalars = self._part("scalars", rep, "json")
        try:
            content = json.loads(scalars.read_text(encoding="utf-8"))
            if not isinstance(content, dict):
                return f"{scalars.name}: not a JSON object"
            missing = sorted(REPLICATION_KEYS - content.keys())
            if missing:
                return f"{scalars.name}: missing {', '.join(missing)}"
            _read_scalars(content)
        except (OSError, ValueError) as exc:
            return f"{scalars.name}: {exc}"
        released = self._part("released", rep, "npy")
        try:
            np.load(released, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            return f"{released.name}: {exc}"
        for kind in TABLES:
            part = self._part(kind, rep, "parquet")
            try:
                pq.read_table(part)
            except (OSError, ValueError, pa.ArrowException) as exc:  # a missing file is an OSError too
                return f"{part.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        return None

    def set_aside_damaged(self) -> list[str]:
        """Check every finished replication's part files; move the files of a damaged one into
        `damaged/` (kept for inspection, never deleted) so that the resumed run runs it again.
        Returns one line per replication set aside."""
        replications = self.plan["replications"]
        condition = (self.plan.get("uncertainty") or {}).get("condition")
        if condition:  # a conditioned run numbers its replications by attempt (sim.conditioning)
            replications *= condition["max_attempts_factor"]
        reports = []
        for path in sorted(self.parts.glob("scalars-*.json")):
            try:
                rep = int(path.stem.split("-")[1])
                problem = self._damage(rep, replications)
                files = self._part_files(rep)
            except (IndexError, ValueError):
                problem, files = f"{path.name}: not a part file name", [path]
            if problem is None:
                continue
            aside = self.path / DAMAGED
            aside.mkdir(exist_ok=True)
            for file in files:
                if file.exists():
                    target = aside / file.name
                    n = 1
                    while target.exists():  # an earlier resume set aside a file of the same name
                        n += 1
                        target = aside / f"{file.name}.{n}"
                    os.replace(file, target)
            reports.append(f"{self.parts / path.name}: damaged part ({problem}); files moved to {aside}, replication run again")
        return reports

    # ------------------------------------------------------------------ finishing
    def finalize(self, result: RunResult, metadata: dict, draw_plots=None) -> Path:
        """Merge the parts, write summaries (and plots), and move the run to its final name. Until
        the parts are removed the folder stays resumable: a failure here loses nothing."""
        # Replications by number: 0 to n-1, or the attempts a conditioned run accepted.
        kept = sorted(int(r) for r in result.per_replication["replication"])
        for kind in TABLES:
            self._merge(kind, kept)
        write_summaries(self.path, result)
        if draw_plots is not None:
            draw_plots(self.path / "plots", result)
        _write_text_atomically(self.path / "metadata.json", json.dumps(metadata, indent=2))
        plan = self.plan
        shutil.rmtree(self.parts)
        (self.path / "plan.json").unlink()
        final = _publish(self.path, plan["run_id"])
        (final / LOCK_FILE).unlink(missing_ok=True)  # after the rename: a waiting --resume finds no folder, not a fresh lock
        self.unlock()
        return final

    def _merge(self, kind: str, replications: list[int]) -> None:
        """Concatenate one table's parts (of `replications`, by number), one part in memory at a time."""
        target = self.path / f"{kind}.parquet"
        tmp = self.path / f".{kind}.parquet.tmp"
        writer = None
        try:
            for rep in replications:
                part = self._part(kind, rep, "parquet")
                try:
                    table = pq.read_table(part)
                except (OSError, ValueError, pa.ArrowException) as exc:
                    raise UserError(f"missing or damaged part ({str(exc).splitlines()[0]})", source=str(part)) from None
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
        finally:
            if writer is not None:
                writer.close()
        _replace_durably(tmp, target)

    def discard(self) -> bool:
        """Remove the folder if it holds no finished replication (nothing of value) and say whether
        it did; a folder with finished replications, or one that cannot be listed, is kept."""
        try:
            if self.count_finished():
                return False
        except OSError:
            return False
        self.unlock()
        shutil.rmtree(self.path, ignore_errors=True)
        try:
            self.path.parent.rmdir()  # the scenario's folder, when this run made it and left it empty
        except OSError:
            pass
        return not self.path.exists()


def _scalars_json(value):
    """What json.dumps writes for the parts of a replication's scalars that are not JSON already."""
    if isinstance(value, (YearlyUse, PerYear)):
        return value.to_json()
    raise TypeError(f"{type(value).__name__} in a replication's scalars is not JSON")


def _read_scalars(scalars: dict) -> dict:
    """A scalars part file's content as a run keeps it (in place): its use by year and yearly
    figures as arrays, read from this version's arrays or from the nested dicts earlier versions
    wrote (so their unfinished runs still resume). ValueError if neither."""
    if "use_by_year" in scalars:
        scalars["use_by_year"] = YearlyUse.from_json(scalars["use_by_year"])
    scalars["per_year"] = PerYear.from_json(scalars["per_year"])
    return scalars


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _write_parquet_atomically(path: Path, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    write_bytes_atomically(path, buffer.getvalue())


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
    _fsync_dir(parent)
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


def uncertainty_record(uncertainty: Uncertainty | None) -> dict:
    """What a run's bands hold, for plan.json and metadata.json: the mode, in words, and the inputs
    drawn with their ranges (enough to draw them again on --resume and --check)."""
    if uncertainty is None:
        return {"mode": "none", "holds": describe("none"), "inputs": []}
    return uncertainty.as_dict()


def write_json(path: Path, data: dict) -> None:
    _write_text_atomically(path, json.dumps(data, indent=2, default=str))


def write_summaries(folder: Path, result: RunResult) -> None:
    """The small tables and summary of a run (the big ones are merged from parts or written by write_tables)."""
    _write_parquet_atomically(folder / "completion.parquet", result.completion)
    _write_parquet_atomically(folder / "replications.parquet", result.per_replication)
    _write_parquet_atomically(folder / "per_year.parquet", result.per_year)
    _write_parquet_atomically(folder / "released.parquet", result.released)
    # Spend (sim.costs): empty tables when the scenario has no [costs] block.
    spend = result.spend_per_year if result.spend_per_year is not None else spend_table(None, {})
    _write_parquet_atomically(folder / "spend_per_year.parquet", spend)
    check = result.published_check if result.published_check is not None else published_check(None, {}, [])
    _write_text_atomically(folder / "published_spend_check.csv", check.to_csv(index=False))
    _write_text_atomically(folder / "targets.csv", result.targets.to_csv(index=False))
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
        "uncertainty": uncertainty_record(result.uncertainty),
        # Conditioned runs (sim.conditioning): attempts, accepted, acceptance rate, the figures that
        # rejected most and whether the cap of attempts was reached.
        "conditioning": result.summary.get("conditioning"),
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


def _ranges(numbers: list[int]) -> str:
    return "0 to " + str(numbers[-1]) if numbers == list(range(len(numbers))) else ", ".join(map(str, numbers[:10]))


def check_run(path: Path, replication: int | None = None) -> list[str]:
    """Re-run one replication of a finished run and list where it differs from the stored tables
    (empty: it matches). Also checks the config and inventory against their recorded hashes."""
    from .ensemble import replication_seeds, replication_task
    from .scenario import load_scenario
    from .seeds import load_targets
    from .world import read_inventory

    path = Path(path)
    if not is_run_folder(path):
        raise UserError("not a results folder of a finished run (no metadata.json and config.toml)", source=str(path))
    meta = read_record(path / "metadata.json", ("seed", "replications", "config_sha256"))
    uncertainty = Uncertainty.from_dict(meta.get("uncertainty"))
    cfg = load_scenario(path / "config.toml", environ={})
    problems = []
    if config_hash(cfg) != meta["config_sha256"]:
        problems.append("config.toml does not match the config hash recorded in metadata.json")
    inv_path = recorded_inventory(meta.get("inventory"), meta.get("inventory_sha256"), path / "metadata.json")
    inventory = read_inventory(inv_path, cfg) if inv_path else None
    # A conditioned run keeps the attempts it accepted, numbered as attempted (sim.conditioning).
    conditioned = uncertainty is not None and uncertainty.condition is not None
    kept = sorted((meta.get("conditioning") or {}).get("accepted_attempts") or range(meta["replications"]))
    if replication is None:
        replication = kept[0]
    if replication not in kept:
        raise UserError(f"replication {replication} is not in this run ({_ranges(kept)})", source=str(path))
    attempts = uncertainty.condition.max_attempts(meta["replications"]) if conditioned else meta["replications"]
    seeds = replication_seeds(meta["seed"], max(attempts, replication + 1))
    output = replication_task(
        cfg.model_dump_json(), tuple(load_targets()), inventory, replication, seeds[replication], uncertainty
    )
    for kind in TABLES:
        table = path / f"{kind}.parquet"
        try:
            stored = pd.read_parquet(table, filters=[("replication", "==", replication)])
        except FileNotFoundError:
            raise UserError("missing: this results folder is incomplete", source=str(table)) from None
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise UserError(f"damaged: cannot be read ({str(exc).splitlines()[0]})", source=str(table)) from None
        fresh = _plain(output["tables"][kind])
        stored = stored.reset_index(drop=True).astype(fresh.dtypes.to_dict(), errors="ignore")
        try:
            pd.testing.assert_frame_equal(stored, fresh.reset_index(drop=True), check_dtype=False, check_exact=True)
        except AssertionError as exc:
            problems.append(f"{kind}.parquet differs for replication {replication}: {str(exc).splitlines()[0]}")
    return problems
