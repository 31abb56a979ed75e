"""Verdicts reused: an attempt's verdict, known from an earlier run that judged the same past.

A conditioned run (sim.conditioning) judges the past of each attempt and keeps the plausible
ones; about 88 % of the baseline's attempts are rejected, and their pasts are most of a run's
cost. Attempt j's verdict depends only on the past it judges: the scenario whose past it is (the
run's own, or its history), the inputs drawn for that past from attempt j's seed (the run's seed
and j), the figures with their uncertainties, the threshold and rule, the day the past ends, the
parcel inventory, and the model's code. A what-if made of dated changes and extra deliveries is
judged on the baseline's past, so its attempt j gets the baseline's verdict for attempt j with the
same seed, and judging it again is wasted work.

So verdicts are kept under a key, the SHA-256 of all of the above (`verdict_basis`, `verdict_key`),
and a run given the known verdicts of its key skips the rejected attempts entirely and simulates
the accepted ones to the horizon without judging their past again (sim.ensemble): the same kept
attempts, the same tables bit for bit, and the same tally, with `verdicts_reused` saying how many
verdicts were not judged afresh. A key that differs in anything (another seed, threshold, input
range, fit, model revision or source file) is another past: nothing is reused.

The scenario's `name` and `question` are left out of the key: they label a scenario and no part of
the model reads them, and a what-if's history is the baseline under the what-if's name.

`VerdictCache` keeps verdicts in memory, and on disk when given a folder (the CLI's
`<results>/.verdicts/<key>.json`). This module is the CLI's, as sim.results is: the simulation
modules never read or write the cache. A file is written whole under a temporary name and renamed,
and one that cannot be read, or whose format, key or verdicts do not check out, is ignored: the
attempts are judged afresh, as without a cache.

The model discrepancy is reused the same way (`ReferenceCache`, `reference_key`): a conditioned run
first simulates REFERENCE_REPLICATIONS pasts of its history at its own values (seed REFERENCE_SEED,
nothing drawn, whatever the run's seed) to measure each figure's sigma_disc, and that measurement
depends only on the history, the figures chosen, the day the past ends, the inventory and the code.
A what-if of additions after the baseline, or a second run of the same past with another seed, has
the same key and takes the baseline's measurement instead of simulating the 8 pasts again: the same
floats (through JSON), so the same figures, verdicts and tables. Its file is
`<results>/.verdicts/reference-<key>.json`; the key and file helpers are the verdicts' own.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path

from .conditioning import REFERENCE_REPLICATIONS, REFERENCE_SEED, ROUNDING_MARGIN, RULE_RANK, STAGED
from .config import ScenarioConfig
from .model import MODEL_REVISION
from .provenance import package_version
from .results import write_bytes_atomically

FORMAT = 1  # of the key's basis and the file: a change here makes every earlier verdict unknown
FOLDER = ".verdicts"  # under the results root (a scenario's name cannot start with a dot)


def verdict_basis(config: ScenarioConfig, uncertainty, seed: int, inventory=None) -> dict | None:
    """Everything a conditioned run's verdicts depend on but the attempt number, bar the code
    (`code_identity`); None for a run that is not conditioned. `uncertainty`: the run's draws
    (`sim.uncertainty.Uncertainty`); `inventory`: its parcel inventory, if read from a file."""
    cond = None if uncertainty is None else uncertainty.condition
    if cond is None:
        return None
    own = cond.history is None
    past = unlabelled(config if own else ScenarioConfig.model_validate_json(cond.history))
    inputs = uncertainty.inputs if own else uncertainty.history_inputs
    return {
        "format": FORMAT,
        "past": past,
        "drawn": {"mode": uncertainty.mode, "inputs": [item.as_row() for item in inputs]},
        "figures": [figure.as_dict() for figure in cond.figures],  # targets, reported, both sigmas
        "threshold": cond.threshold,
        "rule_rank": RULE_RANK,
        "past_day": cond.past_day,
        "judged_on_the_way": STAGED,  # a rejection's verdict says when it was decided
        "rounding_margin": ROUNDING_MARGIN,
        # how sigma_disc was measured; when, and whether reused (sim.verdicts' ReferenceCache), change nothing
        "reference": {k: v for k, v in cond.reference.items() if k not in ("measured", "reused")},
        "seed": int(seed),
        "inventory": inventory_digest(inventory),
    }


def unlabelled(config: ScenarioConfig) -> dict:
    """A scenario as a key's basis holds it: its `name` and `question` are labels only (the baseline
    and a what-if's history are one past)."""
    past = config.model_dump(mode="json")
    past["name"] = past["question"] = ""
    return past


def inventory_digest(inventory) -> str | None:
    """SHA-256 of a parcel inventory's records (None: the parcels are drawn from the scenario)."""
    if inventory is None:
        return None
    digest = hashlib.sha256("\n".join(inventory.ids).encode())
    for column in ("district", "area_ha", "land_use", "terrain", "threat", "mapped"):
        values = getattr(inventory, column)
        digest.update(f"|{column}|".encode())
        if values is not None:
            digest.update(f"{values.dtype.str}{values.shape}".encode() + values.tobytes())
    return digest.hexdigest()


@functools.cache
def code_identity() -> dict:
    """The model's code: its revision, the package's version and a digest of every source file of
    the package, so that any edit, even one not yet given a revision, makes earlier verdicts unknown."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return {"model_revision": MODEL_REVISION, "package_version": package_version(), "source_sha256": digest.hexdigest()}


def verdict_key(config: ScenarioConfig, uncertainty, seed: int, inventory=None) -> str | None:
    """The key a conditioned run's verdicts are known under (None: not conditioned)."""
    basis = verdict_basis(config, uncertainty, seed, inventory)
    return None if basis is None else _key(basis)


def _key(basis: dict) -> str:
    """The SHA-256 of a basis with the code's identity: the name a cache file is kept under."""
    text = json.dumps(basis | {"code": code_identity()}, sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def reference_basis(history: ScenarioConfig, targets, past_day: float, inventory=None) -> dict:
    """Everything the model discrepancy measured for a past depends on but the code
    (sim.conditioning.make_conditioning): the history scenario (labels left out), the figures
    chosen, the past's end, the reference replications and their seed, and the inventory."""
    return {
        "format": FORMAT,
        "kind": "reference",
        "past": unlabelled(history),
        "targets": [target.model_dump(mode="json") for target in targets],
        "past_day": float(past_day),
        "replications": REFERENCE_REPLICATIONS,
        "seed": REFERENCE_SEED,
        "inventory": inventory_digest(inventory),
    }


def reference_key(history: ScenarioConfig, targets, past_day: float, inventory=None) -> str:
    """The key a past's measured model discrepancy is known under."""
    return _key(reference_basis(history, targets, past_day, inventory))


def _write_record(folder: Path, name: str, record: dict) -> None:
    """`record` as `folder/name`, atomically (sim.results.write_bytes_atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(folder / name, json.dumps(record, allow_nan=False).encode("utf-8"))


def _read_record(path: Path, key: str) -> dict | None:
    """A file this module wrote under `key` (its format and key check out), else None: not trusted."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("key") != key:
        return None
    return record


def _checked(verdicts) -> dict[int, dict] | None:
    """Verdicts as read from a file, by attempt, or None when any is not one `Conditioning.judge` gives."""
    if not isinstance(verdicts, dict):
        return None
    out = {}
    for attempt, verdict in verdicts.items():
        if not (isinstance(attempt, str) and attempt.isdigit() and isinstance(verdict, dict)):
            return None
        if not isinstance(verdict.get("accepted"), bool) or not isinstance(verdict.get("over"), list):
            return None
        numbers = (verdict.get("implausibility"), verdict.get("max_implausibility"))
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in numbers):
            return None
        out[int(attempt)] = verdict
    return out


class VerdictCache:
    """Verdicts by key: in memory for this process, and in `folder` (one `<key>.json` a key) when given."""

    def __init__(self, folder: Path | None = None):
        self.folder = None if folder is None else Path(folder)
        self.memory: dict[str, dict[int, dict]] = {}

    def known(self, key: str | None) -> dict[int, dict]:
        """The verdicts known under `key`, by attempt ({} when none, or when the file does not check out)."""
        if key is None:
            return {}
        if key not in self.memory and self.folder is not None:
            found = self._read(self.folder / f"{key}.json", key)
            if found:
                self.memory[key] = found
        return dict(self.memory.get(key, {}))

    def keep(self, key: str | None, verdicts: Mapping[int, dict], about: dict | None = None) -> None:
        """Add `verdicts` to those known under `key`, and write them to the folder (atomically).
        `about`: a few words for a reader of the file (scenario, seed); never read back."""
        if key is None or not verdicts:
            return
        merged = self.memory.get(key, {}) | dict(verdicts)
        if self.folder is not None:  # with what another run of the same past kept meanwhile
            merged = (self._read(self.folder / f"{key}.json", key) or {}) | merged
        self.memory[key] = merged
        if self.folder is None:
            return
        record = {
            "format": FORMAT,
            "key": key,
            "about": about or {},
            "verdicts": {str(j): merged[j] for j in sorted(merged)},
        }
        _write_record(self.folder, f"{key}.json", record)

    @staticmethod
    def _read(path: Path, key: str) -> dict[int, dict] | None:
        """A file's verdicts if it is one this module wrote for `key`, else None (not trusted)."""
        record = _read_record(path, key)
        return None if record is None else _checked(record.get("verdicts"))


class ReferenceCache:
    """Model discrepancies measured for a past (sim.conditioning.make_conditioning's `references`),
    in memory and in `folder` (`reference-<key>.json`) when given. A file that does not check out is
    ignored, and one that cannot be written costs only the reuse: `unkept` says why (the CLI warns)."""

    def __init__(self, folder: Path | None = None):
        self.folder = None if folder is None else Path(folder)
        self.memory: dict[str, dict] = {}
        self.unkept: str | None = None

    def measured(self, history: ScenarioConfig, targets, past_day: float, inventory=None) -> dict | None:
        """The measurement kept for this past ({"sigma_disc": {figure: float}, "measured": date}),
        or None: measure it."""
        key = reference_key(history, targets, past_day, inventory)
        if key not in self.memory and self.folder is not None:
            record = _read_record(self.folder / f"reference-{key}.json", key)
            found = None if record is None else _checked_measurement(record.get("measurement"), targets)
            if found is not None:
                self.memory[key] = found
        known = self.memory.get(key)
        return None if known is None else {"sigma_disc": dict(known["sigma_disc"]), "measured": known["measured"]}

    def keep(self, history: ScenarioConfig, targets, past_day: float, measurement: dict, inventory=None) -> None:
        """Keep a measurement for later runs of the same past (atomically, in the folder)."""
        key = reference_key(history, targets, past_day, inventory)
        self.memory[key] = measurement
        if self.folder is None:
            return
        record = {"format": FORMAT, "key": key, "about": {"history": history.name}, "measurement": measurement}
        try:
            _write_record(self.folder, f"reference-{key}.json", record)
        except (OSError, ValueError) as exc:
            self.unkept = str(exc) or type(exc).__name__


def _checked_measurement(measurement, targets) -> dict | None:
    """A measurement as read from a file, or None when it is not one make_conditioning gives for
    `targets`: a sigma_disc (finite, >= 0) for some of the figures chosen, and the date measured."""
    if not isinstance(measurement, dict) or not isinstance(measurement.get("measured"), str):
        return None
    sigmas = measurement.get("sigma_disc")
    ids = {target.id for target in targets}
    if not isinstance(sigmas, dict) or not set(sigmas) <= ids:
        return None
    for value in sigmas.values():
        if not isinstance(value, float) or not math.isfinite(value) or value < 0:
            return None
    return {"sigma_disc": sigmas, "measured": measurement["measured"]}
