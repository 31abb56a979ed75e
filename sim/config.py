"""The scenario configuration: pydantic models, each field documented with its unit and source.

A scenario is validated here once, at the edge; the model itself only sees the plain arrays and
frozen dataclasses built from it (`sim.world`, `sim.assets`).
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from typing_extensions import TypedDict, is_typeddict

from .stages import freeze

# Vocabularies: each a Literal type for the schema and, derived from it, a tuple whose order the
# model's arrays use.
LandUse = Literal["housing", "roads", "infrastructure", "agriculture", "forest_pasture"]
Terrain = Literal["plain", "hills", "mountain"]
Threat = Literal["high", "medium_low"]
ItemType = Literal["ap", "at", "uxo"]  # anti-personnel mine, anti-tank mine, unexploded ordnance
HazardType = Literal["minefield", "battle_area"]
MapState = Literal["correct", "wrong", "none"]  # a parcel's handed-over map: right, wrong, or none
LAND_USES: tuple[str, ...] = get_args(LandUse)
TERRAINS: tuple[str, ...] = get_args(Terrain)
THREATS: tuple[str, ...] = get_args(Threat)
ITEM_TYPES: tuple[str, ...] = get_args(ItemType)
HAZARD_TYPES: tuple[str, ...] = get_args(HazardType)
MAP_STATES: tuple[str, ...] = get_args(MapState)
# The land-release stages come from the stage registry (sim.stages), in index order.
STAGE_CLASSES = freeze()
STAGES: tuple[str, ...] = tuple(stage.key for stage in STAGE_CLASSES)
Stage = Literal[STAGES]  # type: ignore[valid-type]


def _not_a_boolean(value):
    # pydantic takes true/false as 1/0; in a scenario that is always a typo.
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


NotBoolean = BeforeValidator(_not_a_boolean)
# Every number in a scenario is finite (allow_inf_nan=False below) and within a range the model
# can run: the generic ceiling keeps huge values from overflowing arrays; fields that set the size
# of a run have tighter ranges of their own.
SANE_MAX = 1e6


def number(*, ge: float | None = None, gt: float | None = None, le: float = SANE_MAX):
    """A finite float in a range, never a boolean."""
    return Annotated[float, NotBoolean, Field(ge=ge, gt=gt, le=le)]


def whole(*, ge: int, le: int):
    """An integer in a range, never a boolean."""
    return Annotated[int, NotBoolean, Field(ge=ge, le=le)]


# Dates the calendars can hold: the campaign is modern, and 60-year horizons end before 2150.
CalendarDate = Annotated[dt.date, Field(ge=dt.date(1990, 1, 1), le=dt.date(2150, 12, 31))]
Probability = number(ge=0.0, le=1.0)
NonNegativeFloat = number(ge=0.0)
# Rates and the factors that multiply them: the smallest are far below any real value, and their
# product stays a normal float (a product that underflows to 0 would stop time).
MIN_RATE = 1e-3
Rate = number(ge=MIN_RATE)
Multiplier = number(ge=1e-3, le=100.0)


def _zero_or_multiplier(value: float) -> float:
    if 0.0 < value < 1e-3:
        raise ValueError("must be 0 (cannot work there) or at least 0.001")
    return value


RateFactor = Annotated[float, NotBoolean, Field(ge=0.0, le=100.0), AfterValidator(_zero_or_multiplier)]

CAMPAIGN_START = dt.date(2020, 11, 10)

# Folders the tool itself writes beside the scenarios' folders under a results root: a scenario
# may not take these names, so a run never lands among comparisons, calibrations, backtests or sweeps.
COMPARISONS_FOLDER = "comparisons"
CALIBRATION_FOLDER = "calibration"
BACKTEST_FOLDER = "backtest"
PLANS_FOLDER = "plans"
SWEEP_SUFFIX = "-sweep"  # a sweep of scenario X writes <out>/X-sweep/
SENSITIVITY_SUFFIX = "-sensitivity"  # and its sensitivity analysis <out>/X-sensitivity/
# A scenario's name is its results folder's name: one plain, portable path component.
SCENARIO_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")


def _scenario_name(value):
    if not isinstance(value, str):
        return value  # the str type reports it
    if not SCENARIO_NAME.fullmatch(value):
        raise ValueError("must be 1-64 letters, digits, '-', '_' or '.' (not first), as it names the results folder")
    reserved = (COMPARISONS_FOLDER, CALIBRATION_FOLDER, BACKTEST_FOLDER, PLANS_FOLDER)
    if value.lower() in reserved or value.lower().endswith((SWEEP_SUFFIX, SENSITIVITY_SUFFIX)):
        raise ValueError(
            f"{value!r} is reserved for the tool's own results folders ({COMPARISONS_FOLDER}, "
            f"{CALIBRATION_FOLDER}, {BACKTEST_FOLDER}, {PLANS_FOLDER}, *{SWEEP_SUFFIX}, *{SENSITIVITY_SUFFIX}); "
            "choose another name"
        )
    return value


ScenarioName = Annotated[str, BeforeValidator(_scenario_name)]


def every_key(name: str, keys: tuple[str, ...], value_type) -> type:
    """A mapping that must give a `value_type` for every one of `keys`, and no other key."""
    mapping = TypedDict(name, {key: value_type for key in keys})  # type: ignore[operator]
    mapping.__pydantic_config__ = ConfigDict(extra="forbid", allow_inf_nan=False)
    return mapping


def deep_merge(base: dict, override) -> dict:
    """A new dict: `override` on top of `base`, merging nested tables key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class Strict(BaseModel):
    """Base for every config block: unknown keys are errors, values are checked on assignment, and
    a table that sets some keys of a dict-valued default (`[maps.nts_cancel_share] wrong = 0.5`)
    changes those keys and keeps the rest."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _merge_into_dict_defaults(cls, data):
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, field in cls.model_fields.items():
            if isinstance(out.get(name), dict) and field.default_factory is not None:
                default = field.default_factory()
                if isinstance(default, dict) and not any(isinstance(v, BaseModel) for v in default.values()):
                    out[name] = deep_merge(default, out[name])
        return out


class DistrictConfig(Strict):
    """A district of the liberated territory and how its share of the hazardous area is set."""

    territory_km2: number(ge=0.01) = Field(
        description="Approximate territory, km2 (not contaminated area). Source: seeds/inputs.csv territory_*."
    )
    terrain: Terrain = Field(description="Dominant terrain: sets machine access and the winter season.")
    contamination_weight: Multiplier = Field(
        1.0,
        description="Relative density of hazardous area per km2. The national hazardous area not given to "
        "districts by hazardous_area_ha is apportioned by territory_km2 x contamination_weight.",
    )
    hazardous_area_ha: number(ge=0.0, le=1e7) | None = Field(
        None,
        description="The district's hazardous area, ha, where public figures give it (before parcels.area_scale); "
        "None = its share of the rest of the national area by territory_km2 x contamination_weight.",
    )
    former_line_of_contact_share: Probability = Field(
        0.0, description="Share of the district's hazardous area lying near the 1994-2020 line of contact."
    )
    peacekeeping_zone_share: Probability = Field(
        0.0, description="Share of the district's hazardous area inside the 2020-2023 Russian peacekeeping zone."
    )
    zone_opens_to_national_agencies: CalendarDate | None = Field(
        None,
        description="Date national agencies gain access to the district's part of the former peacekeeping zone "
        "(with fully_open_to_national_agencies, the first day of its gradual opening); None: "
        "peacekeeping_zone.opens_to_national_agencies.",
    )
    map_coverage: Probability = Field(
        0.5, description="Share of the district's minefields that appear on a handed-over minefield map."
    )
    returns_weight: NonNegativeFloat = Field(
        1.0, description="Relative number of people returning to or working in the district (exposure)."
    )
    priority: whole(ge=1, le=9) = Field(
        2, description="Return-programme wave (1 = first): among parcels of the same land use, earlier waves go first."
    )


class ParcelConfig(Strict):
    """How hazardous-area records (parcels) and their hidden contamination are generated."""

    high_threat_area_ha: number(ge=0.0, le=1e7) = Field(
        211_800, description="High-threat hazardous area, ha. Source: seeds/inputs.csv hazardous_area_high."
    )
    medium_low_threat_area_ha: number(ge=0.0, le=1e7) = Field(
        954_902, description="Medium/low-threat hazardous area, ha. Source: seeds/inputs.csv hazardous_area_medium_low."
    )
    area_scale: number(gt=0.0, le=10.0) = Field(1.0, description="Multiplies both areas; < 1 for quick test scenarios.")
    land_use_area_share: every_key("LandUseShares", LAND_USES, Probability) = Field(
        default_factory=lambda: {
            "housing": 0.02,
            "roads": 0.03,
            "infrastructure": 0.05,
            "agriculture": 0.45,
            "forest_pasture": 0.45,
        },
        description="Share of hazardous area by land use (sums to 1). Project assumption.",
    )
    mean_parcel_area_ha: every_key("LandUseAreasHa", LAND_USES, number(ge=0.1, le=1e5)) = Field(
        default_factory=lambda: {
            "housing": 10.0,
            "roads": 20.0,
            "infrastructure": 30.0,
            "agriculture": 120.0,
            "forest_pasture": 250.0,
        },
        description="Mean area of one hazardous-area record, ha, by land use. Project assumption.",
    )
    parcel_area_sigma: number(ge=0.0, le=3.0) = Field(0.8, description="Log-normal sigma of parcel area.")
    contaminated_share_mean: every_key("ThreatShares", THREATS, Probability) = Field(
        default_factory=lambda: {"high": 0.12, "medium_low": 0.015},
        description="Mean share of a parcel that really holds items, by threat. Literature: under 5 % overall "
        "(seeds/inputs.csv contaminated_share_*).",
    )
    contaminated_share_concentration: number(ge=0.01, le=1e4) = Field(
        4.0, description="Beta concentration (a+b) of the contaminated share: lower = more spread between parcels."
    )
    battle_area_share: every_key("LandUseBattleAreaShares", LAND_USES, Probability) = Field(
        default_factory=lambda: {"housing": 0.8, "roads": 0.5, "infrastructure": 0.6, "agriculture": 0.15, "forest_pasture": 0.1},
        description="Share of parcels that are battle areas (UXO) rather than minefields, by land use.",
    )
    item_density_per_ha: every_key(
        "HazardItemDensities", HAZARD_TYPES, every_key("ItemDensitiesPerHa", ITEM_TYPES, number(ge=0.0, le=1e4))
    ) = Field(
        default_factory=lambda: {
            "minefield": {"ap": 30.0, "at": 8.0, "uxo": 2.0},
            "battle_area": {"ap": 1.0, "at": 0.3, "uxo": 25.0},
        },
        description="Mean items per truly contaminated ha, by hazard type and item type. Set so the "
        "national total is near the 1.5 million mines believed present (seeds/inputs.csv mines_believed_present).",
    )
    former_loc_mine_density_factor: number(ge=0.0, le=100.0) = Field(
        1.0,
        description="Anti-personnel and anti-tank mines per ha of minefield near the 1994-2020 line of contact, "
        "relative to minefields elsewhere: the fortified belts on both sides of the line were mined densely. "
        "Fitted by calibration (the record's early mine counts, from work that started along the line).",
    )
    peacekeeping_zone_uxo_density_factor: number(ge=0.0, le=100.0) = Field(
        1.0,
        description="UXO per contaminated ha inside the 2020-2023 Russian peacekeeping zone, relative to elsewhere: "
        "the zone was fought over in September 2023 and held the armed formations' abandoned ammunition. Fitted by "
        "calibration (UXO per processed ha doubled in 2024, the first year agencies worked the zone: "
        "seeds/targets.csv national_uxo_*, national_uxo_month_2024_08).",
    )

    @model_validator(mode="after")
    def _shares(self):
        total = sum(self.land_use_area_share.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"land_use_area_share must sum to 1, not {total:.4f}")
        return self


class MapsConfig(Strict):
    """Minefield maps handed over after the war and how they steer survey."""

    map_accuracy: Probability = Field(
        0.25,
        description="Probability a mapped minefield is where the map says. Reported: at most 25 % (seeds/inputs.csv map_accuracy).",
    )
    new_maps_share: Probability = Field(
        0.0,
        description="Share of the minefields missing from the handed-over maps that new maps cover "
        "(0 = as handed over, 1 = every minefield mapped); 'better maps' scenarios raise it.",
    )
    nts_cancel_share: every_key("MapStateCancelShares", MAP_STATES, Probability) = Field(
        default_factory=lambda: {"correct": 0.9, "wrong": 0.6, "none": 0.75},
        description="Share of the empty part of a suspected area that non-technical survey cancels, by map state. "
        "A wrong map records a minefield that must be confirmed on empty ground.",
    )
    ts_reduce_share: every_key("MapStateReduceShares", MAP_STATES, Probability) = Field(
        default_factory=lambda: {"correct": 0.95, "wrong": 0.7, "none": 0.8},
        description="Share of the empty part of a confirmed area that technical survey reduces, by map state; "
        "the rest is cleared in full.",
    )

    remote_survey_nts_speedup: number(ge=1.0, le=100.0) = Field(
        2.0, description="Non-technical survey rate multiplier on land already analysed by remote survey."
    )


class LandReleaseConfig(Strict):
    """National land-release practice: how much survey may cancel rather than process physically."""

    survey_cancellation: Probability = Field(
        1.0,
        description="Share of the land non-technical survey finds no evidence on (what `maps.nts_cancel_share` "
        "allows it to cancel) that the national practice does cancel; the rest is confirmed and processed "
        "physically by technical survey and (battle-area) clearance. 1 = IMAS 07.11. Azerbaijan's agencies "
        "publish no cancellation and report processed area only (facts/record.md), so the baseline fits it.",
    )


class TerrainConfig(Strict):
    """Season of a terrain: which months lose working days to snow."""

    winter_months: list[whole(ge=1, le=12)] = Field(default_factory=list, description="Months (1-12) of the winter season.")
    winter_availability: Probability = Field(1.0, description="Share of working days left in winter months.")


class _AssetTypeIdentity(Strict):
    description: str = Field("", description="What the asset is (free text).")
    stages: list[Stage] = Field(description="Stages the asset can work, in order of preference.", min_length=1)


# One optional rate field per registered stage, named and described by the stage (sim.stages).
_AssetTypeRates = create_model(
    "_AssetTypeRates",
    __base__=_AssetTypeIdentity,
    **{stage.rate_field: (Rate | None, Field(None, description=stage.rate_description)) for stage in STAGE_CLASSES},
)


class AssetTypeConfig(_AssetTypeRates):
    """One kind of asset (a team, a dog pair, a machine, a drone team) and its productivity."""

    battle_area_rate_factor: Multiplier = Field(
        1.0, description="Clearance rate multiplier on battle areas (surface and shallow UXO search) relative to minefields."
    )
    task_days: number(ge=1.0, le=365.0) = Field(20.0, description="Working days in one task step: the unit of dispatch.")
    days_per_week: number(ge=0.1, le=7.0) = Field(6.0, description="Working days per week.")
    hours_per_day: number(ge=0.1, le=24.0) = Field(6.0, description="Working hours per day (for breakdowns).")
    monthly_availability: list[Probability] = Field(
        default_factory=lambda: [1.0] * 12,
        min_length=12,
        max_length=12,
        description="Share of working days usable in each month Jan..Dec (dogs lose hot months).",
    )
    terrain_rate_factor: every_key("TerrainRateFactors", TERRAINS, RateFactor) = Field(
        default_factory=lambda: {"plain": 1.0, "hills": 0.8, "mountain": 0.6},
        description="Rate multiplier by terrain; 0 means the asset cannot work there.",
    )
    land_use_rate_factor: every_key("LandUseRateFactors", LAND_USES, RateFactor) = Field(
        default_factory=lambda: dict.fromkeys(LAND_USES, 1.0),
        description="Rate multiplier by land use; 0 means the asset cannot work there (machines in housing).",
    )
    detection_probability: every_key("ItemDetectionProbabilities", ITEM_TYPES, Probability) = Field(
        default_factory=lambda: {"ap": 0.98, "at": 0.99, "uxo": 0.97},
        description="Probability an item in the worked area is found (or set off, for machines).",
    )
    needs_follow_up: bool = Field(
        False, description="True for machines: the ground must be checked by dogs or manual teams afterwards."
    )
    scaled_by_agency_productivity: bool = Field(
        True,
        description="Whether an agency's survey_productivity and clearance_productivity scale this asset's rates. "
        "They stand for what the model does not count (how many deminers a team has, how it is organised); "
        "a machine's rate is set by the machine, so false for machines.",
    )
    mtbf_hours: number(ge=1.0) | None = Field(None, description="Mean working hours between breakdowns; None for no breakdowns.")
    mttr_days: number(ge=0.0, le=3650.0) = Field(0.0, description="Mean calendar days to repair a breakdown.")
    at_damage_probability: Probability = Field(0.0, description="Probability an anti-tank mine set off damages the asset.")
    at_repair_days: number(ge=0.0, le=3650.0) = Field(0.0, description="Mean calendar days to repair anti-tank damage.")
    accident_probability_per_item: every_key("ItemAccidentProbabilities", ITEM_TYPES, Probability) = Field(
        default_factory=lambda: dict.fromkeys(ITEM_TYPES, 0.0),
        description="Probability of a deminer accident per item handled, by item type (ap/at/uxo); one number "
        "sets all three. Digging up a buried mine is where most accidents happen (DDAS), not picking up "
        "a shell from the surface.",
    )

    @field_validator("accident_probability_per_item", mode="before")
    @classmethod
    def _one_probability_for_every_item_type(cls, value):
        return dict.fromkeys(ITEM_TYPES, value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _rates_for_stages(self):
        for stage in STAGE_CLASSES:
            if stage.key in self.stages and getattr(self, stage.rate_field) is None:
                raise ValueError(f"works stage {stage.key!r} but gives no {stage.rate_field}")
        if len(set(self.stages)) != len(self.stages):
            raise ValueError("stages must not repeat")
        if self.mtbf_hours is not None and self.mttr_days <= 0:
            raise ValueError("mttr_days must be positive when mtbf_hours is set")
        return self


class Delivery(Strict):
    """Assets an agency receives on a date."""

    asset_type: str = Field(description="A key of [asset_types].")
    count: whole(ge=1, le=100_000) = Field(description="Number of assets (teams, dog pairs, machines).")
    date: CalendarDate = Field(description="Date they start work.")
    withdrawn: CalendarDate | None = Field(None, description="Date they stop taking new work; None = with the agency.")
    note: str = Field("", description="Where the figure comes from.")

    @model_validator(mode="after")
    def _order(self):
        if self.withdrawn is not None and self.withdrawn < self.date:
            raise ValueError(f"withdrawn {self.withdrawn} is before date {self.date}")
        return self


class AgencyConfig(Strict):
    """A mine action operator: where and when it works, its assets, and how it picks work."""

    name: str = Field(description="Display name.")
    kind: Literal["national", "peacekeeping"] = Field(
        "national",
        description="Peacekeeping agencies work only the peacekeeping zone; national ones enter it from peacekeeping_zone.opens_to_national_agencies.",
    )
    districts: list[str] = Field(min_length=1, description="Keys of [districts] it works in.")
    start: CalendarDate = Field(CAMPAIGN_START, description="First day of work.")
    end: CalendarDate | None = Field(None, description="Last day it takes new work; None = to the horizon.")
    policy: str = Field("housing_first", description="A key of [priority_policies].")
    survey_productivity: Multiplier = Field(
        1.0, description="Multiplier on its assets' survey rates (non-technical and technical survey); fitted by calibration."
    )
    clearance_productivity: Multiplier = Field(
        1.0, description="Multiplier on its assets' clearance, follow-up and quality-control rates; fitted by calibration."
    )
    ramp_up_years: number(ge=0.0, le=30.0) = Field(
        0.0,
        description="Years from `start` over which its productivity rises linearly from initial_productivity_share "
        "to full (staff trained, procedures settled); 0 = full pace from the start.",
    )
    initial_productivity_share: number(ge=1e-3, le=1.0) = Field(
        1.0,
        description="Share of full productivity on `start`, during ramp_up_years; fitted by calibration where the "
        "agency reports hectares for two periods.",
    )
    later_pace_from: CalendarDate | None = Field(
        None,
        description="Date from which the agency works at later_pace_share of its pace (its staff or machines "
        "moved to other tasks, as its own yearly figures show); None = no such change.",
    )
    later_pace_share: number(ge=1e-3, le=10.0) = Field(
        1.0,
        description="Its pace from later_pace_from on, as a share of the pace before; fitted by calibration where "
        "the agency reports hectares on both sides of the date.",
    )
    battle_area_share_of_work: Probability | None = Field(
        None,
        description="Share of task steps the agency's assets take on battle areas (UXO) rather than minefields "
        "when both are waiting; None = whichever ranks first by policy (fitted by calibration).",
    )
    deliveries: list[Delivery] = Field(default_factory=list, description="Assets received over time.")
    extra_deliveries: list[Delivery] = Field(
        default_factory=list, description="Deliveries a what-if adds on top of `deliveries`, so it need not repeat them."
    )

    def all_deliveries(self):
        """(field name, index, delivery) for `deliveries` then `extra_deliveries`."""
        for field in ("deliveries", "extra_deliveries"):
            for i, delivery in enumerate(getattr(self, field)):
                yield field, i, delivery

    @model_validator(mode="after")
    def _dates(self):
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if self.later_pace_share != 1.0 and self.later_pace_from is None:
            raise ValueError(
                f"later_pace_share {self.later_pace_share} is given without later_pace_from: give the date it starts"
            )
        return self


class NewAssetsConfig(Strict):
    """How an asset delivered after its agency started works up to full pace: its crew is new."""

    ramp_up_years: number(ge=0.0, le=30.0) = Field(
        0.0,
        description="Years from its delivery over which an asset delivered after its agency's start works up "
        "linearly from initial_productivity_share to full pace (new deminers, handlers and crews learn the "
        "work); 0 = full pace on delivery. The assets an agency starts with follow only the agency's own ramp "
        "(ramp_up_years of [agencies.<key>]); one delivered during that ramp follows both, multiplied.",
    )
    initial_productivity_share: number(ge=1e-3, le=1.0) = Field(
        1.0,
        description="Share of full pace on its delivery day, during ramp_up_years; fitted by calibration "
        "(the yearly national hectares, as the agencies grew their staff).",
    )


class PeacekeepingZoneConfig(Strict):
    opens_to_national_agencies: CalendarDate = Field(
        dt.date(2023, 9, 20), description="Date national agencies gain access (seeds/inputs.csv peacekeeping_access)."
    )
    fully_open_to_national_agencies: CalendarDate | None = Field(
        None,
        description="Date by which national agencies reach all of the zone: each of its parcels opens to them on "
        "a uniform day between the two dates (the peacekeepers left their posts by June 2024: seeds/inputs.csv "
        "peacekeeping_withdrawal). None: the whole zone opens on opens_to_national_agencies.",
    )

    @model_validator(mode="after")
    def _fully_open_after_opening(self):
        if (
            self.fully_open_to_national_agencies is not None
            and self.fully_open_to_national_agencies < self.opens_to_national_agencies
        ):
            raise ValueError(
                f"fully_open_to_national_agencies {self.fully_open_to_national_agencies} is before "
                f"opens_to_national_agencies {self.opens_to_national_agencies}"
            )
        return self


class ReturnPoint(Strict):
    date: CalendarDate = Field(description="Date of this point of the returns curve.")
    share: Probability = Field(description="Share of the displaced population back by this date.")


class IncidentsConfig(Strict):
    """Deminer accidents, and civilians' and soldiers' exposure."""

    deminer_killed_share: Probability = Field(0.3, description="Share of deminer accidents that kill.")
    soldier_exposure_rate_per_item_month: number(ge=0.0, le=1.0) = Field(
        0.0,
        description="Expected incidents among soldiers, away from clearance work, per month per exposure-weighted "
        "hidden item (fitted by calibration; 0 leaves soldiers out). Troops held the whole territory from "
        "November 2020, so no returns curve scales it; the record counts them with military deminers.",
    )
    soldier_awareness_half_life_years: number(ge=0.01, le=1000.0) = Field(
        1.0,
        description="Years for drills, marking and mapped positions to halve soldiers' removable exposure per item.",
    )
    soldier_awareness_floor: Probability = Field(
        0.1,
        description="Share of soldiers' exposure per item that drills and marking never remove (patrols and "
        "engineering works go on near what is left).",
    )
    soldier_killed_share: Probability = Field(
        0.08, description="Share of soldiers' incidents that kill (13 of 165 military casualties to September 2023)."
    )
    civilian_killed_share: Probability = Field(
        0.18, description="Share of civilian incidents that kill (39/225 and 70/382 reported)."
    )
    civilian_exposure_rate_per_item_month: number(ge=0.0, le=1.0) = Field(
        2.0e-5,
        description="Expected civilian incidents per month per exposure-weighted hidden item, at activity 1 (fitted by calibration).",
    )
    land_use_exposure_weight: every_key("LandUseExposureWeights", LAND_USES, NonNegativeFloat) = Field(
        default_factory=lambda: {"housing": 1.0, "roads": 1.0, "infrastructure": 0.6, "agriculture": 0.4, "forest_pasture": 0.15},
        description="How often people enter each land use, relative to housing.",
    )
    former_loc_exposure_factor: NonNegativeFloat = Field(
        0.3, description="Relative exposure near the former line of contact (fenced, marked, rarely entered)."
    )
    released_land_exposure_factor: NonNegativeFloat = Field(
        5.0, description="Exposure to an item missed on released land relative to one in marked hazardous area."
    )
    baseline_activity: NonNegativeFloat = Field(
        0.5, description="Activity before returns begin (herders, workers, visitors), relative to a full return."
    )
    awareness_half_life_years: number(ge=0.01, le=1000.0) = Field(
        3.0, description="Years for risk education and marking to halve the part of the exposure per item they can remove."
    )
    awareness_floor: Probability = Field(
        0.1,
        description="Share of the exposure per item that risk education and marking never remove (people still "
        "herd, farm and collect scrap near what is left): casualties fall fast, then settle at a floor set by "
        "the contamination left, as in Bosnia and Herzegovina and Croatia (facts/record.md comparators).",
    )
    returns: list[ReturnPoint] = Field(
        default_factory=lambda: [
            ReturnPoint(date=dt.date(2020, 11, 10), share=0.0),
            ReturnPoint(date=dt.date(2022, 7, 1), share=0.01),
            ReturnPoint(date=dt.date(2025, 1, 1), share=0.05),
            ReturnPoint(date=dt.date(2030, 1, 1), share=0.4),
            ReturnPoint(date=dt.date(2040, 1, 1), share=1.0),
        ],
        min_length=1,
        description="Share of displaced people back, by date (linear between points; dates in increasing order). Project assumption.",
    )

    @field_validator("returns")
    @classmethod
    def _returns_in_date_order(cls, points: list) -> list:
        for earlier, later in zip(points, points[1:]):
            if later.date <= earlier.date:
                raise ValueError(f"dates must increase: {later.date} comes after {earlier.date}")
        return points


class QualityControlConfig(Strict):
    sample_share: Probability = Field(0.1, description="Share of cleared area sampled by quality control (IMAS 09.20).")
    max_reworks: whole(ge=0, le=20) = Field(
        2, description="Re-clearances after failed sampling before the parcel is handed over anyway."
    )


class ReportingConfig(Strict):
    """Conversions used only to compare with how agencies report."""

    road_corridor_width_m: number(ge=0.1, le=1000.0) = Field(20.0, description="Width of a road corridor, m: road ha -> km.")
    house_plot_ha: number(ge=1e-4, le=100.0) = Field(0.1, description="Area per house plot, ha: housing ha -> houses.")


# ----------------------------------------------------------------------------- costs
# What the campaign costs, as data: per asset type a purchase (or set-up) cost paid once when the
# asset is delivered and a running cost per year in service, each as low / central / high, with
# per-agency overrides where an operator pays differently. sim.costs turns them and the fleet over
# time into spend; the evidence behind each figure is in seeds/costs.csv.
COST_LEVELS: tuple[str, ...] = ("low", "central", "high")
MAX_USD = 1e11  # far above any campaign (the 2020-24 campaign spent about USD 3.5e8)
Usd = number(ge=0.0, le=MAX_USD)


class CostRange(Strict):
    """A cost in US dollars as a range: `central` is used unless a low or high reading is asked for."""

    low: Usd = Field(description="Low end of the plausible range, USD.")
    central: Usd = Field(description="Best estimate, USD: what spend is reported with by default.")
    high: Usd = Field(description="High end of the plausible range, USD.")

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low <= self.central <= self.high:
            raise ValueError(f"must be low <= central <= high, not {self.low:,.0f}, {self.central:,.0f}, {self.high:,.0f}")
        return self

    def at(self, level: str) -> float:
        return float(getattr(self, level))


def _source_given(value: str) -> str:
    if not value.strip():
        raise ValueError("name the source (a seeds/costs.csv id) or state the assumption")
    return value


CostSource = Annotated[str, AfterValidator(_source_given)]


class AssetTypeCosts(Strict):
    """What one asset of a type costs: once when it is delivered, and each year it is in service."""

    purchase_usd: CostRange = Field(
        description="Purchase or set-up cost of one asset (equipment, vehicles, dogs, training), USD, paid once on "
        "its delivery date."
    )
    running_usd_per_year: CostRange = Field(
        description="Running cost of one asset in service, USD per year: staff, maintenance and repairs, fuel, "
        "insurance and its share of the operator's overheads; counted pro rata per day in service."
    )
    source: CostSource = Field(description="Evidence (seeds/costs.csv ids) or the stated assumption behind the figures.")


class AssetTypeCostsOverride(Strict):
    """An agency's own costs for one asset type; what it leaves unset is the asset type's."""

    purchase_usd: CostRange | None = Field(None, description="Purchase or set-up cost of one asset at this agency, USD.")
    running_usd_per_year: CostRange | None = Field(
        None, description="Running cost of one asset at this agency, USD per year in service."
    )
    source: CostSource = Field(description="Evidence (seeds/costs.csv ids) or the stated assumption behind the override.")

    @model_validator(mode="after")
    def _sets_something(self):
        if self.purchase_usd is None and self.running_usd_per_year is None:
            raise ValueError("overrides nothing; give purchase_usd or running_usd_per_year")
        return self


class AgencyCosts(Strict):
    """How an agency's costs differ from the asset types' own, and who pays them."""

    in_published_totals: bool = Field(
        True,
        description="Counted when modelled spend is checked against Azerbaijan's published spending; false for "
        "agencies a foreign state pays (the Turkish Armed Forces, the Russian centre).",
    )
    asset_types: dict[str, AssetTypeCostsOverride] = Field(
        default_factory=dict, description="Per asset type key: this agency's purchase or running cost, where it differs."
    )
    charge_initial_fleet: bool | None = Field(
        None, description="This agency's own costs.charge_initial_fleet (None: the campaign-wide setting)."
    )


class CostsConfig(Strict):
    """What the campaign costs: per asset type, purchase and yearly running cost, each low / central / high,
    with per-agency overrides. Used outside the model (sim.costs), from the fleet over time."""

    asset_types: dict[str, AssetTypeCosts] = Field(
        description="Per asset type key: purchase (or set-up) cost and yearly running cost of one asset, USD."
    )
    agencies: dict[str, AgencyCosts] = Field(
        default_factory=dict, description="Per agency key: its own costs where they differ, and whether the state pays it."
    )
    charge_initial_fleet: bool = Field(
        False,
        description="Whether the assets an agency has when it starts (delivered on or before its start date, and "
        "the campaign's) cost their purchase: false = they are a fleet already in hand (bought before), so only "
        "their running cost is campaign spend; an agency may set its own.",
    )
    # The scenario's agency and asset type keys, set when a whole scenario is validated, so that a
    # cost asked for an unknown one is an error (sim.costs.unit_costs).
    _agency_keys: tuple[str, ...] | None = PrivateAttr(None)
    _asset_type_keys: tuple[str, ...] | None = PrivateAttr(None)


# ----------------------------------------------------------------------------- dated changes
# What a scenario may change from a date on ([[changes]]), and why only these: each is read by the
# model when it is used (a step's rate when the step starts, a share when the step finishes, a
# policy when an asset takes work, the incident rates each month), so a change applies from its
# date and leaves the past as it was. The rest shapes the world (districts, parcels, terrain),
# the run (start, horizon), what an asset is (asset types) or who works when (agencies' dates
# and deliveries, which are dated already), and cannot change part-way. The maps' accuracy and
# coverage are part of the hidden truth drawn at the start: a change re-draws, with the same
# uniforms, the map state of parcels whose non-technical survey has not begun by its date.
TIME_VARYING: dict[str, tuple[str, ...]] = {
    "land_release": ("survey_cancellation",),
    "maps": ("map_accuracy", "new_maps_share", "nts_cancel_share", "ts_reduce_share", "remote_survey_nts_speedup"),
    "incidents": (
        "civilian_exposure_rate_per_item_month",
        "civilian_killed_share",
        "former_loc_exposure_factor",
        "released_land_exposure_factor",
        "baseline_activity",
        "awareness_half_life_years",
        "awareness_floor",
    ),
}
AGENCY_TIME_VARYING = ("survey_productivity", "clearance_productivity", "battle_area_share_of_work", "policy")


def time_varying_keys() -> list[str]:
    """The keys a dated change may set, as a planner writes them, grouped by table."""
    groups = [*TIME_VARYING.items(), ("agencies.<agency>", AGENCY_TIME_VARYING)]
    return [f"{table}.{fields[0]}" if len(fields) == 1 else f"{table}.{{{','.join(fields)}}}" for table, fields in groups]


def _some_keys(mapping: type) -> type:
    """A fixed-key table (`every_key`) of which a change may set only some keys."""
    hints = typing.get_type_hints(mapping, include_extras=True)
    partial = TypedDict(f"{mapping.__name__}Change", hints, total=False)  # type: ignore[operator]
    partial.__pydantic_config__ = ConfigDict(extra="forbid", allow_inf_nan=False)
    return partial


def _unchanged_unless_given(model: type[BaseModel], name: str):
    """A field of `model` as a change gives it: the same type and checks, None when not changed."""
    field = model.model_fields[name]
    annotation = _some_keys(field.annotation) if is_typeddict(field.annotation) else field.annotation
    if field.metadata:
        annotation = Annotated[(annotation, *field.metadata)]
    return (annotation | None, Field(None, description=field.description))


def _change_block(name: str, model: type[BaseModel], fields: tuple[str, ...]) -> type[BaseModel]:
    return create_model(
        name,
        __base__=Strict,
        __doc__=f"The settings of [{model.__name__}] a dated change may set (unset: unchanged).",
        **{field: _unchanged_unless_given(model, field) for field in fields},
    )


LandReleaseChange = _change_block("LandReleaseChange", LandReleaseConfig, TIME_VARYING["land_release"])
MapsChange = _change_block("MapsChange", MapsConfig, TIME_VARYING["maps"])
IncidentsChange = _change_block("IncidentsChange", IncidentsConfig, TIME_VARYING["incidents"])
AgencyChange = _change_block("AgencyChange", AgencyConfig, AGENCY_TIME_VARYING)


class DatedChange(Strict):
    """Settings that change from a date on (a `[[changes]]` table): the model applies them on
    that date, so the run up to it is the run without them."""

    date: CalendarDate = Field(description="Day the change takes effect (from the start date to the horizon).")
    note: str = Field("", description="What the change stands for (free text).")
    land_release: LandReleaseChange | None = Field(None, description="National land-release practice from the date.")
    maps: MapsChange | None = Field(
        None,
        description="Maps from the date: shares used when survey steps finish; accuracy and coverage re-draw the "
        "map state of parcels whose non-technical survey has not begun.",
    )
    agencies: dict[str, AgencyChange] | None = Field(
        None, description="Per agency key: productivity, battle-area share and policy from the date."
    )
    incidents: IncidentsChange | None = Field(None, description="Civilian exposure from the date (the month is split at it).")

    def settings(self) -> dict:
        """The settings it changes, as a nested table (no date, no note, nothing unset)."""
        return self.model_dump(exclude_none=True, exclude={"date", "note"})


def not_changeable_reason(path: tuple[str, ...]) -> str:
    """Why a scenario key cannot be given in a dated change (`path` below `changes.N`)."""
    if path[0] == "agencies" and path[-1] in ("deliveries", "extra_deliveries"):
        why = "deliveries are dated already: add one to extra_deliveries (or --add) with its date"
    elif path[0] == "costs":
        why = "costs hold for the whole run; a what-if scenario may give other costs"
    elif path[0] in ("districts", "parcels", "terrain", "asset_types", "start_date", "horizon_years"):
        why = "it shapes the world, the assets or the run from the start"
    elif path[0] == "incidents" and path[-1].startswith("soldier_"):
        why = "soldiers' settings hold for the whole run: their awareness counts from the start"
    else:
        why = "the model reads it once, at the start"
    return f"cannot change over time ({why}); a dated change may set {', '.join(time_varying_keys())}"


class ScenarioConfig(BaseSettings):
    """A whole scenario: the world, the assets, the agencies and the incident model."""

    model_config = SettingsConfigDict(
        env_prefix="DEMINING_", env_nested_delimiter="__", extra="forbid", validate_assignment=True, allow_inf_nan=False
    )

    name: ScenarioName = Field(
        "scenario",
        description="Short name of the results folder: 1-64 letters, digits, '-', '_' or '.' (not first); "
        "not comparisons, calibration or a name ending in -sweep.",
    )
    question: str = Field("", description="The planner's question this scenario answers.")
    start_date: CalendarDate = Field(CAMPAIGN_START, description="Day the simulation starts (the ceasefire).")
    horizon_years: number(gt=0.0, le=60.0) = Field(20.0, description="Years simulated.")
    districts: dict[str, DistrictConfig] = Field(
        min_length=1, description="The districts, by key (e.g. aghdam): territory, terrain, maps, exposure."
    )
    parcels: ParcelConfig = Field(
        default_factory=ParcelConfig, description="How hazardous-area records and their hidden contamination are generated."
    )
    maps: MapsConfig = Field(default_factory=MapsConfig, description="Handed-over minefield maps and how they steer survey.")
    land_release: LandReleaseConfig = Field(
        default_factory=LandReleaseConfig,
        description="National land-release practice: cancellation by survey or physical processing.",
    )
    terrain: every_key("TerrainSeasons", TERRAINS, TerrainConfig) = Field(
        default_factory=lambda: {
            "plain": TerrainConfig(),
            "hills": TerrainConfig(winter_months=[1, 2], winter_availability=0.6),
            "mountain": TerrainConfig(winter_months=[12, 1, 2, 3], winter_availability=0.0),
        },
        description="Winter season of each terrain (plain, hills, mountain): months and working days left.",
    )
    asset_types: dict[str, AssetTypeConfig] = Field(
        min_length=1, description="Kinds of asset (teams, dogs, machines, drones), by key, with their rates."
    )
    agencies: dict[str, AgencyConfig] = Field(
        min_length=1, description="Mine action operators, by key: where and when they work, their assets and policy."
    )
    return_wave_share: Probability = Field(
        1.0,
        description="Share of each district's hazardous land the agencies take in the order of the return waves "
        "(districts.*.priority); they work the rest alongside the first wave, keeping teams in every district "
        "(ANAMA's weekly reports list work in all districts). Fitted by calibration; 1 = strictly wave by wave.",
    )
    high_threat_first_share: Probability = Field(
        0.0,
        description="Share of the high-threat hazardous land the agencies take before all other land, whatever its "
        "land use (among itself in return-wave order) (IMAS 07.11 sets priorities by threat and impact; ANAMA worked the front line's "
        "recorded minefields and battle areas first). The record's items per processed ha fell from 2022 to 2023 "
        "(anti-personnel mines by two thirds, seeds/targets.csv national_ap_*). Fitted by calibration; 0 = land "
        "use and return wave first, high threat first only among equals.",
    )
    priority_policies: dict[str, list[LandUse]] = Field(
        default_factory=lambda: {
            "housing_first": ["housing", "roads", "infrastructure", "agriculture", "forest_pasture"],
            "agriculture_first": ["agriculture", "roads", "housing", "infrastructure", "forest_pasture"],
            "roads_first": ["roads", "housing", "infrastructure", "agriculture", "forest_pasture"],
        },
        description="Orders of land use an agency works through.",
    )
    new_assets: NewAssetsConfig = Field(
        default_factory=NewAssetsConfig, description="How assets delivered after their agency started work up to full pace."
    )
    peacekeeping_zone: PeacekeepingZoneConfig = Field(
        default_factory=PeacekeepingZoneConfig,
        description="The 2020-2023 Russian peacekeeping zone and when national agencies may enter it.",
    )
    incidents: IncidentsConfig = Field(
        default_factory=IncidentsConfig, description="Deminer accidents and civilian exposure to hidden and residual items."
    )
    quality_control: QualityControlConfig = Field(
        default_factory=QualityControlConfig, description="Sampling of cleared land before handover (IMAS 09.20)."
    )
    reporting: ReportingConfig = Field(
        default_factory=ReportingConfig,
        description="Conversions used only to compare with how agencies report (km of road, houses).",
    )
    costs: CostsConfig | None = Field(
        None,
        description="What the campaign costs: per asset type (and agency) purchase and yearly running cost, USD, "
        "low / central / high. None: no spend is reported.",
    )
    calibration: dict[str, str | float | int] = Field(
        default_factory=dict, description="Metadata of the fit behind the fitted values (written by `demining calibrate`)."
    )
    changes: list[DatedChange] = Field(
        default_factory=list,
        description="Settings that change from a date on ([[changes]] tables), applied in date order; "
        "the keys they may set are sim.config.TIME_VARYING and AGENCY_TIME_VARYING.",
    )

    @model_validator(mode="before")
    @classmethod
    def _merge_into_fixed_key_defaults(cls, data):
        # A table with fixed keys ([terrain.mountain] from a file, --set or the environment) may
        # set some of them; the others keep their defaults rather than being missing.
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, field in cls.model_fields.items():
            if isinstance(out.get(name), dict) and is_typeddict(field.annotation) and field.default_factory is not None:
                default = {k: v.model_dump() if isinstance(v, BaseModel) else v for k, v in field.default_factory().items()}
                out[name] = deep_merge(default, out[name])
        return out

    @property
    def end_date(self) -> dt.date:
        return self.start_date + dt.timedelta(days=round(self.horizon_years * 365.25))

    def shortened(self, horizon_years: float) -> ScenarioConfig:
        """This scenario run for `horizon_years` at most. Deliveries and dated changes after the
        new end are left out: they cannot change anything before it, and a scenario refuses them
        past its end (a fit to early figures, a plan's deadline)."""
        data = self.model_dump()
        data["horizon_years"] = min(self.horizon_years, horizon_years)
        end = self.start_date + dt.timedelta(days=round(data["horizon_years"] * 365.25))
        for agency in data["agencies"].values():
            for field_name in ("deliveries", "extra_deliveries"):
                agency[field_name] = [d for d in agency[field_name] if d["date"] <= end]
        data["changes"] = [c for c in data.get("changes", []) if c["date"] <= end]
        return ScenarioConfig.model_validate(data)

    @model_validator(mode="after")
    def _cross_references(self):
        for name, policy in self.priority_policies.items():
            if sorted(policy) != sorted(LAND_USES):
                raise ValueError(f"priority_policies.{name} must list each land use once: {', '.join(LAND_USES)}")
        end = self.end_date
        for key, agency in self.agencies.items():
            for district in agency.districts:
                if district not in self.districts:
                    raise ValueError(
                        f"agencies.{key}.districts: unknown district {district!r}; known: {', '.join(self.districts)}"
                    )
            if agency.policy not in self.priority_policies:
                raise ValueError(
                    f"agencies.{key}.policy: unknown policy {agency.policy!r}; known: {', '.join(self.priority_policies)}"
                )
            for field, i, delivery in agency.all_deliveries():
                if delivery.asset_type not in self.asset_types:
                    raise ValueError(
                        f"agencies.{key}.{field}.{i}.asset_type: unknown asset type {delivery.asset_type!r}; "
                        f"known: {', '.join(self.asset_types)}"
                    )
                if not self.start_date <= delivery.date <= end:
                    raise ValueError(
                        f"agencies.{key}.{field}.{i}.date: {delivery.date} is outside the horizon {self.start_date} to {end} "
                        "(lengthen horizon_years or drop the delivery)"
                    )
        return self

    @model_validator(mode="after")
    def _district_areas(self):
        national = self.parcels.high_threat_area_ha + self.parcels.medium_low_threat_area_ha
        given = {k: d.hazardous_area_ha for k, d in self.districts.items() if d.hazardous_area_ha is not None}
        rest = [d.territory_km2 * d.contamination_weight for d in self.districts.values() if d.hazardous_area_ha is None]
        total = sum(given.values())
        said = f"districts.*.hazardous_area_ha: the districts given sum to {total:,.0f} ha"
        national_is = f"the national {national:,.0f} ha (parcels.high_threat_area_ha + medium_low_threat_area_ha)"
        if total > national * (1 + 1e-9):
            raise ValueError(f"{said}, more than {national_is}")
        if not sum(rest) and abs(total - national) > 1e-6 * national:
            raise ValueError(f"{said}, not {national_is}, and no other district with a territory and weight takes the rest")
        return self

    @model_validator(mode="after")
    def _costs_cross_references(self):
        costs = self.costs
        if costs is None:
            return self
        for key in costs.asset_types:
            if key not in self.asset_types:
                raise ValueError(f"costs.asset_types.{key}: unknown asset type {key!r}; known: {', '.join(self.asset_types)}")
        for key, agency in costs.agencies.items():
            if key not in self.agencies:
                raise ValueError(f"costs.agencies.{key}: unknown agency {key!r}; known: {', '.join(self.agencies)}")
            for asset_type in agency.asset_types:
                if asset_type not in self.asset_types:
                    raise ValueError(
                        f"costs.agencies.{key}.asset_types.{asset_type}: unknown asset type {asset_type!r}; "
                        f"known: {', '.join(self.asset_types)}"
                    )
        for key, agency in self.agencies.items():
            for field, i, delivery in agency.all_deliveries():
                if delivery.asset_type not in costs.asset_types:
                    raise ValueError(
                        f"costs.asset_types: no costs for asset type {delivery.asset_type!r}, which agencies.{key}.{field}.{i} "
                        f"delivers; give [costs.asset_types.{delivery.asset_type}] its purchase_usd, running_usd_per_year and source"
                    )
        costs._agency_keys = tuple(self.agencies)
        costs._asset_type_keys = tuple(self.asset_types)
        return self

    @model_validator(mode="after")
    def _dated_changes(self):
        if not self.changes:
            return self
        end = self.end_date
        for i, change in enumerate(self.changes):
            if not self.start_date <= change.date <= end:
                raise ValueError(
                    f"changes.{i}.date: {change.date} is outside the run {self.start_date} to {end} "
                    "(a change applies within the run: move it, or lengthen horizon_years)"
                )
            if not any(change.settings().values()):
                raise ValueError(f"changes.{i}: sets nothing; give at least one of {', '.join(time_varying_keys())}")
            for key in change.agencies or {}:
                if key not in self.agencies:
                    raise ValueError(f"changes.{i}.agencies.{key}: unknown agency {key!r}; known: {', '.join(self.agencies)}")
        self.dated_configs()  # each change's values pass the checks of a whole scenario
        return self

    def dated_configs(self) -> list[tuple[int, DatedChange, ScenarioConfig]]:
        """The changes in date order (ties in file order), each with its index in `changes` and the
        whole scenario in force from its date: the settings so far, this change's on top. A value
        the scenario would refuse is a ValueError naming the change and the key."""
        out = []
        current = self.model_dump(exclude={"changes"})
        for i, change in sorted(enumerate(self.changes), key=lambda pair: (pair[1].date, pair[0])):
            current = deep_merge(current, change.settings())
            try:
                in_force = ScenarioConfig.model_validate(current)
            except ValidationError as exc:
                err = exc.errors()[0]
                msg = err["msg"].removeprefix("Value error, ")
                where = ".".join(str(part) for part in err["loc"])
                raise ValueError(f"changes.{i}.{where}: {msg}" if where else f"changes.{i}.{msg}") from None
            out.append((i, change, in_force))
        return out

    @model_serializer(mode="wrap")
    def _no_empty_changes(self, handler):
        # A scenario without dated changes is written (config.toml) and hashed as before they existed.
        # Likewise without costs: configs written before costs existed keep their hash.
        data = handler(self)
        if isinstance(data, dict) and not data.get("changes"):
            data.pop("changes", None)
        if isinstance(data, dict) and data.get("costs", False) is None:
            data.pop("costs")
        return data
