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


def test_zone_opening_part_by_part_holds_each_parcel_until_its_own_day(small_cfg):
    """With access spread to fully_open_to_national_agencies, no national agency works a zone
    parcel before that parcel's own day; the days fill the span (uniform); national agencies
    still work the zone, less of it in the first months than when it all opens at once; and a
    span of no days is the all-at-once opening, step for step."""
    import sim
    from sim.dispatch import zone_open_days

    from .conftest import SMALL

    def run(overrides):
        cfg = sim.load_scenario(SMALL, overrides, environ={})
        compiled = compile_scenario(cfg)
        rngs = make_streams(replication_seeds(4, 1)[0])
        parcels = draw_truth(cfg, generate_inventory(cfg, rngs["layout"]), rngs)
        days = np.array(zone_open_days(compiled, parcels.district, make_streams(replication_seeds(4, 1)[0])["zone_access"]))
        return compiled, parcels, days, Campaign(compiled, parcels, rngs).run().log

    opens = small_cfg.peacekeeping_zone.opens_to_national_agencies
    compiled, parcels, days, log = run(["peacekeeping_zone.fully_open_to_national_agencies=2024-09-20"])
    zone_days = days[parcels.in_peacekeeping_zone]
    assert compiled.zone_opens_day <= zone_days.min() and zone_days.max() <= compiled.zone_fully_open_day
    # Uniform over the year: each quarter holds about a quarter of the zone's parcels.
    quarters = np.histogram(zone_days, bins=4, range=(compiled.zone_opens_day, compiled.zone_fully_open_day))[0]
    assert quarters.min() > 0.15 * len(zone_days), quarters
    worked = log[log[:, L["area_worked_ha"]] > 0]
    i = worked[:, L["parcel"]].astype(int)
    national = ~np.array([a.peacekeeping for a in compiled.agencies])[worked[:, L["agency"]].astype(int)]
    in_zone = parcels.in_peacekeeping_zone[i]
    assert not (national & in_zone & (worked[:, L["t0"]] < days[i])).any(), "a national agency entered a closed parcel"
    assert (national & in_zone).sum() > 0

    def first_months(log):
        w = log[log[:, L["area_worked_ha"]] > 0]
        nat = ~np.array([a.peacekeeping for a in compiled.agencies])[w[:, L["agency"]].astype(int)]
        soon = (w[:, L["t0"]] >= compiled.zone_opens_day) & (w[:, L["t0"]] < compiled.zone_opens_day + 90)
        return w[nat & soon & parcels.in_peacekeeping_zone[w[:, L["parcel"]].astype(int)], L["area_worked_ha"]].sum()

    _, _, _, at_once = run([])
    assert first_months(log) < first_months(at_once)
    _, _, _, no_span = run([f"peacekeeping_zone.fully_open_to_national_agencies={opens}"])
    np.testing.assert_array_equal(no_span, at_once)


def test_a_districts_part_of_the_zone_opens_on_its_own_date(small_cfg):
    """A district's own opening date (`zone_opens_to_national_agencies`) holds national agencies
    out of its part of the zone until then, while the rest of the zone opens on the zone's date;
    the zone's date given as the district's own changes nothing."""
    import datetime as dt

    import sim

    from .conftest import SMALL

    def run(overrides):
        cfg = sim.load_scenario(SMALL, overrides, environ={})
        compiled = compile_scenario(cfg)
        rngs = make_streams(replication_seeds(4, 1)[0])
        parcels = draw_truth(cfg, generate_inventory(cfg, rngs["layout"]), rngs)
        return compiled, parcels, Campaign(compiled, parcels, rngs).run().log

    later = dt.date(2024, 6, 1)
    compiled, parcels, log = run([f"districts.khankandi.zone_opens_to_national_agencies={later}"])
    later_day = (later - compiled.start_date).days
    worked = log[log[:, L["area_worked_ha"]] > 0]
    i = worked[:, L["parcel"]].astype(int)
    national = ~np.array([a.peacekeeping for a in compiled.agencies])[worked[:, L["agency"]].astype(int)]
    national_zone = national & parcels.in_peacekeeping_zone[i]
    khankandi = parcels.district[i] == compiled.district_keys.index("khankandi")
    t0 = worked[:, L["t0"]]
    assert compiled.zone_opens_day < later_day
    assert not (national_zone & khankandi & (t0 < later_day)).any(), "a national agency entered Khankandi before its date"
    assert (national_zone & khankandi).sum() > 0, "national agencies never worked Khankandi's part of the zone"
    assert (national_zone & ~khankandi & (t0 < later_day)).sum() > 0, "the rest of the zone did not open on the zone's date"

    opens = small_cfg.peacekeeping_zone.opens_to_national_agencies
    _, _, same = run([f"districts.khankandi.zone_opens_to_national_agencies={opens}"])
    _, _, default = run([])
    np.testing.assert_array_equal(same, default)


def test_zone_cannot_open_fully_before_it_opens():
    import pytest

    import sim

    from .conftest import SMALL

    with pytest.raises(sim.UserError, match="fully_open_to_national_agencies.*before"):
        sim.load_scenario(SMALL, ["peacekeeping_zone.fully_open_to_national_agencies=2023-01-01"], environ={})
