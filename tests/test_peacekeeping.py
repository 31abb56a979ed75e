"""The former peacekeeping zone, parcel by parcel from the task log: national agencies work zone
parcels only once it opens to them (and then do), and the peacekeepers' centre works only there.

(tests/test_model.py checks the zone through one district; this test follows each parcel.)"""

from __future__ import annotations

import numpy as np

from sim.assets import compile_scenario
from sim.ensemble import replication_seeds
from sim.model import Campaign, make_streams
from sim.recording import LOG as L
from sim.world import draw_truth, generate_inventory


def test_zone_parcels_by_agency_kind_before_and_after_opening(small_cfg):
    compiled = compile_scenario(small_cfg)
    rngs = make_streams(replication_seeds(4, 1)[0])
    parcels = draw_truth(small_cfg, generate_inventory(small_cfg, rngs["layout"]), rngs)
    log = Campaign(compiled, parcels, rngs).run().log
    worked = log[log[:, L["area_worked_ha"]] > 0]
    in_zone = parcels.in_peacekeeping_zone[worked[:, L["parcel"]].astype(int)]
    peacekeeping = np.array([a.peacekeeping for a in compiled.agencies])[worked[:, L["agency"]].astype(int)]
    opened = worked[:, L["t0"]] >= compiled.zone_opens_day
    assert 0 < parcels.in_peacekeeping_zone.sum() < len(parcels.in_peacekeeping_zone)

    national = ~peacekeeping
    assert not (national & in_zone & ~opened).any(), "a national agency worked in the zone before it opened"
    assert (national & in_zone & opened).sum() > 0, "national agencies never worked the zone after it opened"
    assert (national & ~in_zone & ~opened).sum() > 0, "national agencies worked elsewhere before the opening"
    assert peacekeeping.sum() > 0, "the peacekeepers' centre did some work"
    assert in_zone[peacekeeping].all(), "the peacekeepers' centre worked outside its zone"
