"""Land no agency can work keeps a scenario from finishing, and the run says which land and why."""

from __future__ import annotations

import sim

from .conftest import TEST_SCENARIOS

MACHINES_AND_SURVEY_ONLY = [
    'agencies.anama.deliveries=[{asset_type="survey_team", count=2, date=2020-11-10}, {asset_type="machine", count=2, date=2020-11-10}]',
    "agencies.mod.deliveries=[]",
    "agencies.imac.deliveries=[]",
    "horizon_years=4",
]


def test_land_only_machines_could_clear_is_stranded_where_machines_cannot_go():
    cfg = sim.load_scenario(TEST_SCENARIOS / "small.toml", MACHINES_AND_SURVEY_ONLY, environ={})
    result = sim.run(cfg, replications=1, seed=2)
    stranded = result.summary["land_no_agency_can_work"]
    by_place = {(row["district"], row["stage"]): row["area_ha"] for row in stranded}
    # Machines cannot work mountain ground (terrain factor 0): confirmed land in Lachin and
    # Kalbajar (and housing anywhere) waits for clearance for ever; nothing can follow machines up.
    assert by_place.get(("lachin", "clearance"), 0) > 0 or by_place.get(("kalbajar", "clearance"), 0) > 0
    assert any(stage == "follow_up" for _, stage in by_place)
    assert all(row["area_ha"] > 0 and row["district"] in row["text"] for row in stranded)
    # Never more than the land still unreleased at the end.
    unreleased = result.summary["initial_hazardous_area_ha"] - result.summary["totals_at_horizon"]["released_ha"]["mean"]
    assert sum(by_place.values()) <= unreleased + 1e-6


def test_nothing_is_stranded_when_manual_teams_can_go_everywhere(small_run):
    assert small_run.summary["land_no_agency_can_work"] == []
