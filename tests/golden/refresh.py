"""Refresh the golden model outputs that `tests/test_golden.py` holds fixed.

Run it only in a commit that changes the model's numbers on purpose, and say why in that commit:

    .venv/bin/python tests/golden/refresh.py

Each case is one replication of a small scenario; what is stored is its event count, a few
totals (to read a difference at a glance) and SHA-256 hashes of the raw arrays the model returns
(task-step log, incidents, monthly stocks, handover days, land waiting per stage, asset time that
is not a step), so any change of any number shows.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
GOLDEN = HERE / "model_outputs.json"

# (case name, scenario file relative to the repository, overrides, seed, replication index)
CASES = (
    ("small_seed3", "tests/scenarios/small.toml", (), 3, 0),
    ("small_seed11_rep1", "tests/scenarios/small.toml", (), 11, 1),
    ("small_more_machines", "tests/scenarios/small_more_machines.toml", (), 5, 0),
    ("small_better_maps", "tests/scenarios/small_better_maps.toml", (), 5, 0),
    # The whole inventory of agencies (peacekeeping centre, zone opening, ramp-up) on little land.
    ("baseline_2pct", "scenarios/baseline.toml", ("parcels.area_scale=0.02", "horizon_years=12"), 1, 0),
)


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype="<f8").tobytes()).hexdigest()


def case_outputs(scenario: str, overrides, seed: int, index: int) -> dict:
    """The golden record of one replication."""
    import sim
    from sim.assets import compile_scenario
    from sim.ensemble import replication_seeds, simulate

    cfg = sim.load_scenario(ROOT / scenario, list(overrides), environ={})
    res = simulate(compile_scenario(cfg), cfg, replication_seeds(seed, index + 1)[index])
    return {
        "events_processed": int(res.events_processed),
        "task_steps": int(len(res.log)),
        "incidents": int(len(res.incidents)),
        "released_ha_at_end": round(float(res.stocks[-1, :, 2].sum()), 6),
        "items_found": round(float(res.log[:, 12:15].sum()), 6) if len(res.log) else 0.0,
        "sha256": {
            "log": _digest(res.log),
            "incidents": _digest(res.incidents),
            "stocks": _digest(res.stocks),
            "handover_day": _digest(res.handover_day),
            "waiting": _digest(res.waiting),
            "asset_time": _digest(res.asset_time),
        },
    }


def all_outputs() -> dict:
    return {name: case_outputs(scenario, overrides, seed, index) for name, scenario, overrides, seed, index in CASES}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from sim.model import MODEL_REVISION

    new = all_outputs()
    old = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    # A hash that was stored before and differs now: the numbers changed (new hashes do not count).
    changed = [
        f"{name}.{array}"
        for name, case in new.items()
        for array, digest in case["sha256"].items()
        if old.get(name, {}).get("sha256", {}).get(array, digest) != digest
    ]
    if changed and old.get("model_revision") == MODEL_REVISION:
        sys.exit(f"numbers changed ({', '.join(changed)}): give sim.model.MODEL_REVISION a new value first")
    GOLDEN.write_text(json.dumps(new | {"model_revision": MODEL_REVISION}, indent=2, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN.relative_to(ROOT)}")
