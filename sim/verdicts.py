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
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from .conditioning import ROUNDING_MARGIN, RULE_RANK, STAGED
from .config import ScenarioConfig
from .model import MODEL_REVISION
from .provenance import package_version

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
    past = (config if own else ScenarioConfig.model_validate_json(cond.history)).model_dump(mode="json")
    past["name"] = past["question"] = ""  # labels only: the baseline and a what-if's history are one past
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
        "reference": {k: v for k, v in cond.reference.items() if k != "measured"},  # the date changes nothing
        "seed": int(seed),
        "inventory": inventory_digest(inventory),
    }


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
    if basis is None:
        return None
    text = json.dumps(basis | {"code": code_identity()}, sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


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
        merged = self.known(key) | dict(verdicts)
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
        self.folder.mkdir(parents=True, exist_ok=True)
        # Written whole under a temporary name of this process's own, then renamed: a reader, or a
        # run of the same past finishing at the same time, sees the old file or a new one, whole.
        tmp = self.folder / f".{key}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(record, f, allow_nan=False)
            os.replace(tmp, self.folder / f"{key}.json")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @staticmethod
    def _read(path: Path, key: str) -> dict[int, dict] | None:
        """A file's verdicts if it is one this module wrote for `key`, else None (not trusted)."""
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("key") != key:
            return None
        return _checked(record.get("verdicts"))
