"""Run the small scenario with the toy surface-search stage and print checks as JSON (for
tests/test_stage_extension.py, which runs this in a fresh interpreter)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import sim  # noqa: E402
import tests.extension.surface_search  # noqa: E402,F401  (registers the stage first)
from sim.assets import compile_scenario  # noqa: E402
from sim.config import STAGES  # noqa: E402
from sim.ensemble import replication_seeds  # noqa: E402
from sim.model import Campaign, make_streams  # noqa: E402
from sim.recording import FOUND_COLUMNS, LOG  # noqa: E402
from sim.world import draw_truth, generate_inventory  # noqa: E402

cfg = sim.load_scenario(ROOT / "tests/scenarios/small_surface_search.toml", environ={})
rngs = make_streams(replication_seeds(int(sys.argv[1]) if len(sys.argv) > 1 else 3, 1)[0])
parcels = draw_truth(cfg, generate_inventory(cfg, rngs["layout"]), rngs)
campaign = Campaign(compile_scenario(cfg), parcels, rngs)
res = campaign.run()
log = res.log
stage = log[:, LOG["stage"]]
search, clearance = STAGES.index("surface_search"), STAGES.index("clearance")
found = log[:, [LOG[c] for c in FOUND_COLUMNS]].sum(axis=0)
state = campaign.parcels
left = sum(np.sum(getattr(state, pool), axis=0) for pool in ("hidden_items", "follow_up_items", "residual_items"))
out_of_order = 0
for parcel in np.unique(log[stage == search, LOG["parcel"]]):
    steps = log[log[:, LOG["parcel"]] == parcel]
    last_search = steps[steps[:, LOG["stage"]] == search, LOG["t1"]].max()
    first_clearance = steps[steps[:, LOG["stage"]] == clearance, LOG["t0"]]
    out_of_order += int(len(first_clearance) and first_clearance.min() < last_search - 1e-9)
print(
    json.dumps(
        {
            "stages": list(STAGES),
            "search_steps": int((stage == search).sum()),
            "search_found": log[stage == search][:, [LOG[c] for c in FOUND_COLUMNS]].sum(axis=0).tolist(),
            "initial_items": parcels.items.sum(axis=0).tolist(),
            "found_items": found.tolist(),
            "items_left": np.asarray(left).tolist(),
            "area_error_ha": float(np.abs(res.stocks[:, :, :3].sum(axis=2) - res.initial_area_ha).max()),
            "stock_vs_parcels_error_ha": float(np.abs(res.stocks[-1, :, :3] - campaign.parcel_stocks()).max()),
            "out_of_order_parcels": out_of_order,
            "handed_over": int(np.isfinite(res.handover_day).sum()),
        }
    )
)
