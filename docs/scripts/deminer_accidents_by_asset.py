"""Effects explained (docs/planner-guide.md): deminer casualties with 40 more dog pairs. For 8 paired
replications of baseline and more_dogs (12-year horizon, seed 7): items found by asset type by the
end of 2030, the deminer casualties drawn, and those the items imply (items x accident_probability_per_item).
Run from the repository: .venv/bin/python docs/scripts/deminer_accidents_by_asset.py (about a minute)."""

import numpy as np

import sim
from sim.assets import compile_scenario
from sim.ensemble import replication_seeds, simulate
from sim.recording import INCIDENT, LOG, VICTIM_DEMINER

out = {}
for name in ("baseline", "more_dogs"):
    cfg = sim.load_scenario(f"scenarios/{name}.toml", ["horizon_years=12"], environ={})
    comp = compile_scenario(cfg)
    day_2031 = (np.datetime64("2031-01-01") - np.datetime64(cfg.start_date)).astype(int)
    types = [t.key for t in comp.asset_types]
    prob = {t.key: t.accident_probability_per_item for t in comp.asset_types}
    seeds = replication_seeds(7, 8)
    rows = []
    for r in range(8):
        res = simulate(comp, cfg, seeds[r])
        log = res.log
        by = log[:, LOG["t1"]] < day_2031
        found = log[:, LOG["found_ap"]] + log[:, LOG["found_at"]] + log[:, LOG["found_uxo"]]
        items = {t: float(found[by & (log[:, LOG["asset_type"]] == k)].sum()) for k, t in enumerate(types)}
        inc = res.incidents
        dem = int(((inc[:, INCIDENT["victim"]] == VICTIM_DEMINER) & (inc[:, INCIDENT["day"]] < day_2031)).sum())
        rows.append((items, dem, sum(items[t] * prob[t] for t in types)))
    out[name] = rows
    for items, dem, expected in rows:
        print(
            name,
            {k: round(v) for k, v in items.items() if v},
            "deminer casualties by 2030:",
            dem,
            "expected from items:",
            round(expected, 1),
        )
for r in range(8):
    b, d = out["baseline"][r], out["more_dogs"][r]
    diff = {k: round(d[0][k] - b[0][k]) for k in b[0] if d[0][k] or b[0][k]}
    print("rep", r, "items more_dogs - baseline:", diff, "casualties:", d[1] - b[1], "expected:", round(d[2] - b[2], 1))
