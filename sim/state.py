"""Named state of one replication: each parcel's land-release accounts, each district's running
totals, and the verbs that change them.

Plain lists inside: the hot loop reads and writes single elements once per task step, and
indexing numpy arrays element by element costs several times more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import ITEM_TYPES
from .world import Parcels

ITEM_INDICES = range(len(ITEM_TYPES))  # anti-personnel, anti-tank, UXO


@dataclass(slots=True, eq=False)
class ParcelState:
    """Records and land-release accounts of every parcel (lists indexed by parcel; areas in ha)."""

    # The record and the hidden truth (read-only during a run).
    district: list[int]
    terrain: list[int]
    land_use: list[int]
    hazard: list[int]  # world.MINEFIELD or world.BATTLE_AREA
    map_state: list[int]  # world.MAP_CORRECT, MAP_WRONG or MAP_NONE
    in_peacekeeping_zone: list[bool]
    near_former_loc: list[int]  # 1 near the former line of contact
    area_ha: list[float]
    contaminated_ha: list[float]
    exposure_weight: list[float]  # how often people enter the parcel's land use
    # Work: left to claim and steps in progress, per stage index then parcel.
    remaining_ha: list[list[float]]
    steps_in_progress: list[list[int]]
    # Land-release accounts.
    remote_analysed_ha: list[float]  # analysed by remote survey before ground survey began
    surveyed_ha: list[float]  # completed by non-technical survey
    confirmed_ha: list[float]  # surveyed and not cancelled
    reduced_ha: list[float]
    to_clear_ha: list[float]  # technically surveyed and not reduced
    cleared_ha: list[float]
    # Items [parcel][item type]: not yet reached by clearance; missed by machines and awaiting the
    # follow-up; missed on land counted as cleared (residual risk).
    hidden_items: list[list[int]]
    follow_up_items: list[list[int]]
    residual_items: list[list[int]]
    qc_items_found: list[int]  # in the current quality-control sample
    reworks: list[int]
    in_rework: list[bool]  # sticky: once re-cleared, follow-up on the parcel draws from its residual items
    handover_day: list[float]  # inf until handed over

    @classmethod
    def from_parcels(cls, parcels: Parcels, exposure_weight: np.ndarray, n_stages: int) -> ParcelState:
        n = len(parcels)
        return cls(
            district=parcels.district.tolist(),
            terrain=parcels.terrain.tolist(),
            land_use=parcels.land_use.tolist(),
            hazard=parcels.hazard.tolist(),
            map_state=parcels.map_state.tolist(),
            in_peacekeeping_zone=parcels.in_peacekeeping_zone.tolist(),
            near_former_loc=parcels.near_former_loc.astype(int).tolist(),
            area_ha=parcels.area_ha.tolist(),
            contaminated_ha=parcels.contaminated_ha.tolist(),
            exposure_weight=exposure_weight.tolist(),
            remaining_ha=[[0.0] * n for _ in range(n_stages)],
            steps_in_progress=[[0] * n for _ in range(n_stages)],
            remote_analysed_ha=[0.0] * n,
            surveyed_ha=[0.0] * n,
            confirmed_ha=[0.0] * n,
            reduced_ha=[0.0] * n,
            to_clear_ha=[0.0] * n,
            cleared_ha=[0.0] * n,
            hidden_items=parcels.items.tolist(),
            follow_up_items=[[0] * len(ITEM_TYPES) for _ in range(n)],
            residual_items=[[0] * len(ITEM_TYPES) for _ in range(n)],
            qc_items_found=[0] * n,
            reworks=[0] * n,
            in_rework=[False] * n,
            handover_day=[math.inf] * n,
        )

    def __len__(self) -> int:
        return len(self.area_ha)

    # Verbs, one per thing that happens to a parcel.
    def unreleased_ha(self, i: int) -> float:
        """Land of the parcel not yet released: still suspected, or confirmed and not yet reduced or cleared."""
        return (self.area_ha[i] - self.surveyed_ha[i]) + (self.confirmed_ha[i] - self.reduced_ha[i] - self.cleared_ha[i])

    def surveyed(self, i: int, area_ha: float, cancelled_ha: float) -> None:
        self.surveyed_ha[i] += area_ha
        self.confirmed_ha[i] += area_ha - cancelled_ha

    def technically_surveyed(self, i: int, area_ha: float, reduced_ha: float) -> None:
        self.reduced_ha[i] += reduced_ha
        self.to_clear_ha[i] += area_ha - reduced_ha

    def cleared(self, i: int, area_ha: float) -> None:
        self.cleared_ha[i] += area_ha

    def await_follow_up(self, i: int, missed: list) -> None:
        pool = self.follow_up_items[i]
        for k in ITEM_INDICES:
            pool[k] += missed[k]

    def left_behind(self, i: int, missed: list) -> None:
        residual = self.residual_items[i]
        for k in ITEM_INDICES:
            residual[k] += missed[k]

    def sampled(self, i: int, in_sample: list, found: list) -> None:
        """Quality control took `in_sample` out of the residual items and found `found` of them."""
        residual = self.residual_items[i]
        for k in ITEM_INDICES:
            residual[k] += in_sample[k] - found[k]
        self.qc_items_found[i] += sum(found)

    def start_rework(self, i: int) -> None:
        self.reworks[i] += 1
        self.in_rework[i] = True


@dataclass(slots=True, eq=False)
class DistrictTotals:
    """Running totals by district (lists indexed by district), kept as steps finish; a test checks
    them against the parcels' own accounts."""

    suspected_ha: list[float]
    confirmed_ha: list[float]
    released_ha: list[float]
    residual_items: list[float]  # items left behind on released land
    # Exposure-weighted items by [district][near the former line of contact], for civilian risk.
    hazard_unreleased: list[list[float]]
    hazard_released: list[list[float]]
    # Land waiting for each stage, not yet claimed by any asset, [stage index][district] (ha):
    # where land piles up is where capacity is short.
    waiting_ha: list[list[float]]

    @classmethod
    def from_parcels(cls, parcels: Parcels, exposure_weight: np.ndarray, n_districts: int, n_stages: int) -> DistrictTotals:
        hazard_unreleased = np.zeros((n_districts, 2))
        near = parcels.near_former_loc.astype(int)
        np.add.at(hazard_unreleased, (parcels.district, near), exposure_weight * parcels.items.sum(axis=1))
        return cls(
            suspected_ha=np.bincount(parcels.district, weights=parcels.area_ha, minlength=n_districts).tolist(),
            confirmed_ha=[0.0] * n_districts,
            released_ha=[0.0] * n_districts,
            residual_items=[0.0] * n_districts,
            hazard_unreleased=hazard_unreleased.tolist(),
            hazard_released=np.zeros((n_districts, 2)).tolist(),
            waiting_ha=[[0.0] * n_districts for _ in range(n_stages)],
        )

    def surveyed(self, d: int, area_ha: float, cancelled_ha: float) -> None:
        self.suspected_ha[d] -= area_ha
        self.confirmed_ha[d] += area_ha - cancelled_ha
        self.released_ha[d] += cancelled_ha

    def released_from_confirmed(self, d: int, reduced_ha: float, cleared_ha: float) -> None:
        self.confirmed_ha[d] -= reduced_ha + cleared_ha
        self.released_ha[d] += reduced_ha + cleared_ha

    def found_on_hazardous_land(self, d: int, near_loc: int, weighted_items: float) -> None:
        self.hazard_unreleased[d][near_loc] -= weighted_items

    def found_on_released_land(self, d: int, near_loc: int, weighted_items: float) -> None:
        self.hazard_released[d][near_loc] -= weighted_items

    def left_on_released_land(self, d: int, near_loc: int, weighted_items: float) -> None:
        """Items missed on land now counted as cleared: their risk moves to released land."""
        self.hazard_unreleased[d][near_loc] -= weighted_items
        self.hazard_released[d][near_loc] += weighted_items

    def stocks(self) -> tuple[list[float], ...]:
        """The month-end stock columns, in STOCK_COLUMNS order."""
        return self.suspected_ha, self.confirmed_ha, self.released_ha, self.residual_items
