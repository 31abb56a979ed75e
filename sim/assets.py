"""Assets and agencies as plain data for the hot loop, and the working calendars.

Built once per run from the validated config; every rate here is in hectares per working day,
every time in days since the scenario's start date.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left
from dataclasses import dataclass

import numpy as np

from .config import ITEM_TYPES, LAND_USES, MAP_STATES, STAGE_CLASSES, STAGES, TERRAINS, ScenarioConfig
from .stages import M2_PER_HA


@dataclass(frozen=True)
class AssetType:
    key: str
    index: int  # position in the scenario's asset types (the log's asset_type column)
    stages: tuple[int, ...]  # preference order
    rate_ha_per_day: tuple[float, ...]  # by stage; 0 where it cannot work
    battle_area_rate_factor: float
    task_days: float
    hours_per_day: float
    terrain_factor: tuple[float, ...]
    land_use_factor: tuple[float, ...]
    detection: tuple[float, ...]  # ap, at, uxo
    needs_follow_up: bool
    scaled_by_agency_productivity: bool
    mtbf_hours: float | None
    mttr_days: float
    at_damage_probability: float
    at_repair_days: float
    accident_probability_per_item: tuple[float, ...]  # ap, at, uxo
    eligibility: int  # index of the class of parcels it may work (same exclusions, same class)


@dataclass(frozen=True)
class Delivery:
    asset_type: int
    count: int
    day: float
    withdrawn_day: float


@dataclass(frozen=True)
class Agency:
    key: str
    peacekeeping: bool
    districts: frozenset[int]
    start_day: float
    end_day: float
    policy_rank: tuple[int, ...]  # rank of each land use (0 first)
    productivity: tuple[float, ...]  # rate multiplier by stage index (its survey or clearance productivity)
    battle_area_share_of_work: float | None
    deliveries: tuple[Delivery, ...]
    ramp_days: float  # productivity rises linearly from ramp_start_share to 1 over these days from start_day
    ramp_start_share: float
    ramp_end_day: float  # start_day + ramp_days: one comparison per task step
    later_pace_day: float  # from this day on the rate is multiplied by later_pace_share (inf: never)
    later_pace_share: float


@dataclass(frozen=True)
class DatedSettings:
    """The settings a dated change may set (sim.config.TIME_VARYING), as the model reads them, in
    force from `day` on: the whole set, not only what the change names."""

    day: float
    note: str
    nts_cancel_share: tuple[float, ...]  # by map state, with the national practice applied
    ts_reduce_share: tuple[float, ...]
    remote_survey_nts_speedup: float
    map_accuracy: float
    new_maps_share: float
    redraw_maps: bool  # accuracy or coverage differ from the settings before: re-draw unsurveyed parcels' maps
    productivity: tuple[tuple[float, ...], ...]  # by agency, then stage
    battle_area_share_of_work: tuple[float | None, ...]  # by agency
    policy_rank: tuple[tuple[int, ...], ...]  # by agency, then land use
    incidents: object  # IncidentsConfig (read-only)


@dataclass(frozen=True)
class Compiled:
    """Everything the model needs from a scenario, as plain data."""

    start_date: dt.date
    horizon_days: float
    district_keys: tuple[str, ...]
    asset_types: tuple[AssetType, ...]
    agencies: tuple[Agency, ...]
    eligibility_classes: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]  # (terrain, land use) masks
    zone_opens_day: float  # the earliest of the districts' zone opening days
    zone_fully_open_day: float  # the zone_opens_day where the whole zone opens at once
    district_zone_opens_day: tuple[float, ...]  # per district: when national agencies enter its part of the zone
    nts_cancel_share: tuple[float, ...]  # by map state, with the national practice applied
    remote_survey_nts_speedup: float
    ts_reduce_share: tuple[float, ...]
    qc_sample_share: float
    max_reworks: int
    calendars: np.ndarray  # (asset types, terrains, days + 1) cumulative working days
    incidents: object  # IncidentsConfig (read-only)
    district_returns_weight: np.ndarray
    district_priority: np.ndarray  # return-programme wave by district (1 first)
    new_asset_ramp_days: float  # an asset delivered after its agency's start works up to full pace over these days
    new_asset_start_share: float  # from this share of full pace on its delivery day
    changes: tuple[DatedSettings, ...] = ()  # in date order

    def day(self, date: dt.date) -> float:
        return float((date - self.start_date).days)


def working_calendars(cfg: ScenarioConfig, horizon_days: int) -> np.ndarray:
    """Cumulative working days from the start to each day, per asset type and terrain.

    A day counts days_per_week/7 x the asset's monthly availability x the terrain's winter
    availability, so a task step's calendar length follows seasons without a daily event."""
    days = np.arange(horizon_days)
    dates = np.datetime64(cfg.start_date) + days.astype("timedelta64[D]")
    months = dates.astype("datetime64[M]").astype(int) % 12  # 0 = January
    out = np.zeros((len(cfg.asset_types), len(TERRAINS), horizon_days + 1))
    for a, asset in enumerate(cfg.asset_types.values()):
        monthly = np.asarray(asset.monthly_availability)[months] * asset.days_per_week / 7.0
        for t, terrain in enumerate(TERRAINS):
            tc = cfg.terrain[terrain]
            winter = np.isin(months + 1, tc.winter_months)
            avail = monthly * np.where(winter, tc.winter_availability, 1.0)
            out[a, t, 1:] = np.cumsum(avail)
    return out


def finish_day(calendar, start: float, working_days: float) -> float:
    """Calendar day on which `working_days` of work started at `start` are done (inf past the horizon).

    `calendar` is a cumulative working-day sequence (a list in the hot loop: bisect, no numpy scalars)."""
    i = int(start)
    last = len(calendar) - 1
    if i >= last:
        return math.inf
    lo = calendar[i]
    target = lo + (calendar[i + 1] - lo) * (start - i) + working_days
    if target > calendar[last]:
        return math.inf
    # Searched from day i on: target >= calendar[i], so an earlier day could only tie with it,
    # and the day found then gives `start` all the same. A step ends within weeks, so the next
    # 64 days are searched first (the same day found, in half the comparisons of the whole rest).
    near = i + 64
    if near < last:
        j = bisect_left(calendar, target, i, near)
        if j == near:
            j = bisect_left(calendar, target, near)
    else:
        j = bisect_left(calendar, target, i)
    if j == 0:
        return start
    lo, hi = calendar[j - 1], calendar[j]
    day = j - 1 + ((target - lo) / (hi - lo) if hi > lo else 0.0)
    return day if day > start else start  # max(start, day)


def _asset_type(index: int, key: str, a, classes: list) -> AssetType:
    """An asset type as plain data; `classes` collects the distinct eligibility classes."""
    rates = []
    for stage in STAGE_CLASSES:
        value = getattr(a, stage.rate_field) or 0.0
        rates.append(value / M2_PER_HA if stage.rate_unit == "m2_per_day" else value)
    stages = tuple(STAGES.index(s) for s in a.stages)
    rates = [r if s in stages else 0.0 for s, r in enumerate(rates)]
    terrain_factor = tuple(a.terrain_rate_factor[t] for t in TERRAINS)
    land_use_factor = tuple(a.land_use_rate_factor[u] for u in LAND_USES)
    # Asset types that may enter the same terrains and land uses share one dispatch queue.
    mask = (tuple(float(f > 0) for f in terrain_factor), tuple(float(f > 0) for f in land_use_factor))
    if mask not in classes:
        classes.append(mask)
    return AssetType(
        key=key,
        index=index,
        stages=stages,
        rate_ha_per_day=tuple(rates),
        battle_area_rate_factor=a.battle_area_rate_factor,
        task_days=a.task_days,
        hours_per_day=a.hours_per_day,
        terrain_factor=terrain_factor,
        land_use_factor=land_use_factor,
        detection=tuple(a.detection_probability[i] for i in ITEM_TYPES),
        needs_follow_up=a.needs_follow_up,
        scaled_by_agency_productivity=a.scaled_by_agency_productivity,
        mtbf_hours=a.mtbf_hours,
        mttr_days=a.mttr_days,
        at_damage_probability=a.at_damage_probability,
        at_repair_days=a.at_repair_days,
        accident_probability_per_item=tuple(a.accident_probability_per_item[i] for i in ITEM_TYPES),
        eligibility=classes.index(mask),
    )


def _agency(cfg: ScenarioConfig, key: str, ag) -> Agency:
    start = cfg.start_date
    district_keys, asset_keys = list(cfg.districts), list(cfg.asset_types)
    order = cfg.priority_policies[ag.policy]
    start_day = float((ag.start - start).days)
    ramp_days = ag.ramp_up_years * 365.25
    multiplier = {"survey": ag.survey_productivity, "clearance": ag.clearance_productivity, None: 1.0}
    return Agency(
        key=key,
        peacekeeping=ag.kind == "peacekeeping",
        districts=frozenset(district_keys.index(d) for d in ag.districts),
        start_day=start_day,
        end_day=float((ag.end - start).days) if ag.end else float("inf"),
        policy_rank=tuple(order.index(u) for u in LAND_USES),
        productivity=tuple(multiplier[stage.productivity] for stage in STAGE_CLASSES),
        battle_area_share_of_work=ag.battle_area_share_of_work,
        ramp_days=ramp_days,
        ramp_start_share=ag.initial_productivity_share,
        ramp_end_day=start_day + ramp_days,
        later_pace_day=float((ag.later_pace_from - start).days) if ag.later_pace_from else float("inf"),
        later_pace_share=ag.later_pace_share,
        deliveries=tuple(
            Delivery(
                asset_keys.index(d.asset_type),
                d.count,
                float((d.date - start).days),
                float((d.withdrawn - start).days) if d.withdrawn else float("inf"),
            )
            for _, _, d in ag.all_deliveries()
        ),
    )


def _survey_shares(cfg: ScenarioConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Shares of the empty land that non-technical survey cancels (with the national practice
    applied) and technical survey reduces, by map state."""
    cancel = tuple(cfg.maps.nts_cancel_share[s] * cfg.land_release.survey_cancellation for s in MAP_STATES)
    return cancel, tuple(cfg.maps.ts_reduce_share[s] for s in MAP_STATES)


def _dated_settings(cfg: ScenarioConfig, before: ScenarioConfig, change) -> DatedSettings:
    """The settings of `cfg` (the scenario in force from the change's date) the model can change."""
    agencies = [_agency(cfg, key, ag) for key, ag in cfg.agencies.items()]
    cancel, reduce = _survey_shares(cfg)
    maps, maps_before = cfg.maps, before.maps
    return DatedSettings(
        day=float((change.date - cfg.start_date).days),
        note=change.note,
        nts_cancel_share=cancel,
        ts_reduce_share=reduce,
        remote_survey_nts_speedup=maps.remote_survey_nts_speedup,
        map_accuracy=maps.map_accuracy,
        new_maps_share=maps.new_maps_share,
        redraw_maps=(maps.map_accuracy, maps.new_maps_share) != (maps_before.map_accuracy, maps_before.new_maps_share),
        productivity=tuple(agency.productivity for agency in agencies),
        battle_area_share_of_work=tuple(agency.battle_area_share_of_work for agency in agencies),
        policy_rank=tuple(agency.policy_rank for agency in agencies),
        incidents=cfg.incidents,
    )


def compile_scenario(cfg: ScenarioConfig) -> Compiled:
    """A validated scenario as the plain data the model's hot loop reads."""
    start = cfg.start_date
    horizon_days = int(round(cfg.horizon_years * 365.25))
    classes: list[tuple[tuple[float, ...], tuple[float, ...]]] = []
    asset_types = tuple(_asset_type(k, key, a, classes) for k, (key, a) in enumerate(cfg.asset_types.items()))
    nts_cancel_share, ts_reduce_share = _survey_shares(cfg)
    changes, before = [], cfg
    for _, change, in_force in cfg.dated_configs():
        changes.append(_dated_settings(in_force, before, change))
        before = in_force
    zone = cfg.peacekeeping_zone
    district_zone_days = tuple(
        float(((d.zone_opens_to_national_agencies or zone.opens_to_national_agencies) - start).days)
        for d in cfg.districts.values()
    )
    return Compiled(
        start_date=start,
        horizon_days=float(horizon_days),
        district_keys=tuple(cfg.districts),
        asset_types=asset_types,
        agencies=tuple(_agency(cfg, key, ag) for key, ag in cfg.agencies.items()),
        eligibility_classes=tuple(classes),
        zone_opens_day=min(district_zone_days),
        zone_fully_open_day=float(((zone.fully_open_to_national_agencies or zone.opens_to_national_agencies) - start).days),
        district_zone_opens_day=district_zone_days,
        nts_cancel_share=nts_cancel_share,
        remote_survey_nts_speedup=cfg.maps.remote_survey_nts_speedup,
        ts_reduce_share=ts_reduce_share,
        qc_sample_share=cfg.quality_control.sample_share,
        max_reworks=cfg.quality_control.max_reworks,
        calendars=working_calendars(cfg, horizon_days),
        incidents=cfg.incidents,
        district_returns_weight=np.array([d.returns_weight for d in cfg.districts.values()]),
        district_priority=np.array([d.priority for d in cfg.districts.values()], dtype=np.int64),
        new_asset_ramp_days=cfg.new_assets.ramp_up_years * 365.25,
        new_asset_start_share=cfg.new_assets.initial_productivity_share,
        changes=tuple(changes),
    )
