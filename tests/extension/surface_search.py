"""A toy extra stage, to show what adding a stage takes: one class and one registry entry.

Surface search (drones or teams with detectors walking the surface) runs between technical survey
and clearance on the land to be cleared, and lifts a share of the unexploded ordnance lying on
the surface before clearance to depth. It releases no land by itself.

Import this module before anything imports `sim.config` (the scenario schema is built from the
stage registry); an asset type then lists "surface_search" in its stages and gives
`surface_search_rate_m2_per_day`.
"""

from __future__ import annotations

from sim.stages import Stage, register

SURFACE_SHARE_OF_UXO = 0.4  # share of a parcel's UXO lying on the surface (toy figure)


class SurfaceSearch(Stage):
    key = "surface_search"
    rate_field = "surface_search_rate_m2_per_day"
    rate_unit = "m2_per_day"
    rate_description = "Area searched for surface ordnance per working day, m2."
    productivity = "clearance"
    finds_items = True
    battle_area_rate = True

    def start_area_ha(self, parcel: int) -> float:
        return self.parcels.to_clear_ha[parcel]

    def draw_present(self, parcel, area_ha, available_ha):
        # Only UXO, and only the surface share of it: the rest waits for clearance to depth.
        hidden = self.parcels.hidden_items[parcel]
        uxo = [0, 0, hidden[2]]
        present = self.engine.draw_present(uxo, SURFACE_SHARE_OF_UXO * area_ha / available_ha)
        hidden[2] -= present[2]
        return present

    def finish(self, parcel, area_ha, present, asset, working_days):
        p = self.parcels
        found = self.engine.detect(present, asset.detection)
        hidden = p.hidden_items[parcel]
        hidden[2] += present[2] - found[2]  # missed on the surface: still there for clearance
        self.districts.found_on_hazardous_land(
            p.district[parcel], p.near_former_loc[parcel], p.exposure_weight[parcel] * sum(found)
        )
        return 0.0, 0.0, 0.0, found, 0, 0.0


register(SurfaceSearch, after="technical_survey")
