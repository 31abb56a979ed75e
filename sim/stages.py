"""The land-release stages, each defined once: what it is, how its rate is given, and what it
does to a parcel.

The sequence a parcel follows (IMAS 07.11 land release): non-technical survey cancels land with
no evidence -> technical survey reduces the confirmed area -> clearance (manual teams, dogs, or
machines whose ground is then checked by a follow-up) removes what it detects -> quality control
samples the cleared land and sends it back for re-clearance if it finds an item -> handed over.
Remote (aerial) survey runs beside the sequence: it releases nothing by itself, but speeds and
sharpens the non-technical survey of land it has analysed.

A stage is one class with a few operations the engine (`sim.land_release.LandRelease`) calls:

- `start_area_ha(parcel)`: the work waiting when a parcel enters the stage;
- `draw_present(parcel, area_ha, available_ha)`: items lying in a step's share of the area, when
  a step is claimed (stages that find items);
- `finish(parcel, area_ha, present, asset, working_days)`: apply a finished step;
- `is_done(parcel)` and `next_stage(parcel)`: when the parcel moves on, and where to.

The class attributes say everything else the rest of the code derives from the stage: its key in
scenario files, the asset field giving its rate and the unit, which agency productivity scales it,
whether its work is open on every parcel from day 0, and whether it finds items. Config types,
validation and compilation read them; nothing depends on a stage's position in a tuple.

Adding a stage: subclass `Stage`, then `register(NewStage, after="technical_survey")` before the
scenario schema is built (before `sim.config` is imported); the asset types that work it list its
key in `stages` and give its rate field. `tests/test_stage_extension.py` does exactly that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

if TYPE_CHECKING:  # for type hints only: the engine imports this module
    from .assets import AssetType
    from .land_release import LandRelease

RateUnit = Literal["ha_per_day", "m2_per_day"]
ProductivityGroup = Literal["survey", "clearance"]
M2_PER_HA = 10_000.0

# What `finish` returns, in this order: land released by the step (cancelled_ha, reduced_ha,
# cleared_ha), items found per item type, the change in items left behind on released land,
# and the asset's downtime after the step (days).
StepOutcome = tuple[float, float, float, list, int, float]


class Stage:
    """One land-release stage. Subclasses set the class attributes and override what differs."""

    key: ClassVar[str]
    rate_field: ClassVar[str]  # the AssetTypeConfig field holding the rate
    rate_unit: ClassVar[RateUnit]
    rate_description: ClassVar[str]
    productivity: ClassVar[ProductivityGroup | None] = None  # agency multiplier that scales the rate
    open_from_start: ClassVar[bool] = False  # work on every parcel from day 0 (not entered by sequence)
    finds_items: ClassVar[bool] = False
    battle_area_rate: ClassVar[bool] = False  # assets' battle_area_rate_factor applies on battle areas
    in_sequence: ClassVar[bool] = True  # a step of the main sequence (not a side or optional stage)
    optional: ClassVar[bool] = False  # the parcel never waits for it

    def __init__(self, index: int, engine: LandRelease):
        self.index = index
        self.engine = engine
        self.parcels = engine.parcels
        self.districts = engine.districts
        self.compiled = engine.compiled
        # Which optional operations this stage has, so the hot loop calls only those.
        cls = type(self)
        self.has_claim_hook = cls.on_claim is not Stage.on_claim
        self.has_enter_hook = cls.on_enter is not Stage.on_enter
        self.draws_at_claim = cls.draw_present is not Stage.draw_present
        self.has_rate_multiplier = cls.rate_multiplier is not Stage.rate_multiplier

    # Defaults: the stage starts from nothing, finds nothing, and moves on when idle to the next
    # stage of the sequence.
    def start_area_ha(self, parcel: int) -> float:
        return 0.0

    def on_enter(self, parcel: int) -> None:
        """Called when the parcel enters this stage by the sequence (before any work is queued)."""

    def on_claim(self, parcel: int) -> None:
        """Called when a step of this stage is claimed on the parcel."""

    def draw_present(self, parcel: int, area_ha: float, available_ha: float):
        return None

    def rate_multiplier(self, parcel: int) -> float:
        """Parcel-specific multiplier on the asset's rate (besides terrain, land use, agency)."""
        return 1.0

    def finish(self, parcel: int, area_ha: float, present, asset: AssetType, working_days: float) -> StepOutcome:
        raise NotImplementedError

    def idle(self, parcel: int) -> bool:
        """No work of this stage left to claim on the parcel, and none in progress."""
        p = self.parcels
        return p.remaining_ha[self.index][parcel] <= 0 and p.steps_in_progress[self.index][parcel] == 0

    def is_done(self, parcel: int) -> bool:
        """The parcel may move on from this stage."""
        return self.idle(parcel)

    def next_stage(self, parcel: int) -> Stage | None:
        """The stage the parcel enters when this one is done; None hands the parcel over."""
        return self.engine.after_in_sequence(self)


class NonTechnicalSurvey(Stage):
    """Visits and interviews: cancels the empty part of suspected land where no evidence is found.

    How much of the empty land it can cancel depends on the parcel's map (a wrong map records a
    minefield that must be confirmed on empty ground); remote survey's imagery shows where the
    evidence is, as a right map would."""

    key = "non_technical_survey"
    rate_field = "non_technical_survey_rate_ha_per_day"
    rate_unit = "ha_per_day"
    rate_description = "Area surveyed per working day, ha."
    productivity = "survey"
    open_from_start = True

    def __init__(self, index: int, engine: LandRelease):
        super().__init__(index, engine)
        from .world import MAP_CORRECT  # here, not at import: sim.config imports this module

        self.map_correct = MAP_CORRECT
        self.practice = engine.practice  # read per step: a dated change replaces its shares

    def on_claim(self, parcel: int) -> None:
        self.engine.close_remote_survey(parcel)

    def rate_multiplier(self, parcel: int) -> float:
        p = self.parcels
        if p.remote_analysed_ha[parcel] > 0:
            speedup = self.practice.remote_survey_nts_speedup
            return 1.0 + (speedup - 1.0) * min(1.0, p.remote_analysed_ha[parcel] / p.area_ha[parcel])
        return 1.0

    def finish(self, parcel, area_ha, present, asset, working_days) -> StepOutcome:
        p, cancel_share = self.parcels, self.practice.nts_cancel_share
        empty_share = 1.0 - p.contaminated_ha[parcel] / p.area_ha[parcel]
        share = cancel_share[p.map_state[parcel]]
        analysed = min(1.0, p.remote_analysed_ha[parcel] / p.area_ha[parcel])
        if analysed:
            share += analysed * max(0.0, cancel_share[self.map_correct] - share)
        cancelled = area_ha * empty_share * share
        p.surveyed(parcel, area_ha, cancelled)
        self.districts.surveyed(p.district[parcel], area_ha, cancelled)
        return cancelled, 0.0, 0.0, [0, 0, 0], 0, 0.0

    def start_area_ha(self, parcel: int) -> float:
        return self.parcels.area_ha[parcel]


class TechnicalSurvey(Stage):
    """Sampling by search teams: reduces the empty part of confirmed land; the rest goes to clearance."""

    key = "technical_survey"
    rate_field = "technical_survey_rate_m2_per_day"
    rate_unit = "m2_per_day"
    rate_description = "Area technically surveyed per working day, m2."
    productivity = "survey"

    def start_area_ha(self, parcel: int) -> float:
        return self.parcels.confirmed_ha[parcel]

    def finish(self, parcel, area_ha, present, asset, working_days) -> StepOutcome:
        p = self.parcels
        total = p.confirmed_ha[parcel]
        empty_share = max(0.0, 1.0 - p.contaminated_ha[parcel] / total) if total > 0 else 0.0
        reduced = area_ha * empty_share * self.engine.practice.ts_reduce_share[p.map_state[parcel]]
        p.technically_surveyed(parcel, area_ha, reduced)
        self.districts.released_from_confirmed(p.district[parcel], reduced, 0.0)
        return 0.0, reduced, 0.0, [0, 0, 0], 0, 0.0


class Clearance(Stage):
    """Clearance to depth: finds what it detects among the items lying in the worked share.

    Land cleared by manual teams or dogs is cleared at once, and what they missed stays behind;
    land prepared by machines waits for a follow-up, which inherits the machines' misses."""

    key = "clearance"
    rate_field = "clearance_rate_m2_per_day"
    rate_unit = "m2_per_day"
    rate_description = "Area cleared to depth per working day, m2."
    productivity = "clearance"
    finds_items = True
    battle_area_rate = True

    def __init__(self, index: int, engine: LandRelease):
        super().__init__(index, engine)
        self.follow_up_index = engine.stage_index["follow_up"]

    def start_area_ha(self, parcel: int) -> float:
        return self.parcels.to_clear_ha[parcel]

    def is_done(self, parcel: int) -> bool:
        # Idle here and in the follow-up (written out: this runs after every clearance step).
        p, follow_up = self.parcels, self.follow_up_index
        return (
            p.remaining_ha[self.index][parcel] <= 0
            and p.steps_in_progress[self.index][parcel] == 0
            and p.remaining_ha[follow_up][parcel] <= 0
            and p.steps_in_progress[follow_up][parcel] == 0
        )

    def draw_present(self, parcel, area_ha, available_ha):
        return self.engine.draw_present(self.parcels.hidden_items[parcel], area_ha / available_ha)

    def finish(self, parcel, area_ha, present, asset, working_days) -> StepOutcome:
        engine, p = self.engine, self.parcels
        found = engine.detect(present, asset.detection)
        missed = [present[0] - found[0], present[1] - found[1], present[2] - found[2]]
        self.districts.found_on_hazardous_land(
            p.district[parcel], p.near_former_loc[parcel], p.exposure_weight[parcel] * sum(found)
        )
        if asset.needs_follow_up:
            p.await_follow_up(parcel, missed)
            engine.add_work(self.follow_up_index, parcel, area_ha)
            cleared, residual_delta = 0.0, 0
        else:
            cleared = area_ha
            residual_delta = engine.leave_behind(parcel, missed)
            p.cleared(parcel, cleared)
            self.districts.released_from_confirmed(p.district[parcel], 0.0, cleared)
        downtime = engine.machine_downtime(asset, working_days, found[1])
        return 0.0, 0.0, cleared, found, residual_delta, downtime


class FollowUp(Stage):
    """Dogs or manual teams checking machine-prepared ground (and re-clearing land that failed
    quality control). A side stage of clearance: clearance is done when both are idle."""

    key = "follow_up"
    rate_field = "follow_up_rate_m2_per_day"
    rate_unit = "m2_per_day"
    rate_description = "Machine-prepared area checked per working day, m2."
    productivity = "clearance"
    finds_items = True
    battle_area_rate = True
    in_sequence = False

    def __init__(self, index: int, engine: LandRelease):
        super().__init__(index, engine)
        self.clearance_index = engine.stage_index["clearance"]

    def start_area_ha(self, parcel: int) -> float:
        return self.parcels.cleared_ha[parcel]  # re-clearance of the whole lot (IMAS 09.20)

    def draw_present(self, parcel, area_ha, available_ha):
        p = self.parcels
        pool = p.residual_items[parcel] if p.in_rework[parcel] else p.follow_up_items[parcel]
        return self.engine.draw_present(pool, area_ha / available_ha)

    def finish(self, parcel, area_ha, present, asset, working_days) -> StepOutcome:
        engine, p = self.engine, self.parcels
        found = engine.detect(present, asset.detection)
        missed = [present[0] - found[0], present[1] - found[1], present[2] - found[2]]
        d, loc, weight = p.district[parcel], p.near_former_loc[parcel], p.exposure_weight[parcel]
        n_found = sum(found)
        if p.in_rework[parcel]:
            p.left_behind(parcel, missed)  # still on the released land
            self.districts.found_on_released_land(d, loc, weight * n_found)
            return 0.0, 0.0, 0.0, found, -n_found, 0.0
        self.districts.found_on_hazardous_land(d, loc, weight * n_found)
        residual_delta = engine.leave_behind(parcel, missed)
        p.cleared(parcel, area_ha)
        self.districts.released_from_confirmed(d, 0.0, area_ha)
        return 0.0, 0.0, area_ha, found, residual_delta, 0.0

    def is_done(self, parcel: int) -> bool:
        return self.engine.stages[self.clearance_index].is_done(parcel)

    def next_stage(self, parcel: int) -> Stage | None:
        return self.engine.after_in_sequence(self.engine.stages[self.clearance_index])


class QualityControl(Stage):
    """Sampling of cleared land (IMAS 09.20): an item found rejects the lot, which is cleared again
    (up to max_reworks times); otherwise, or then, the parcel is handed over."""

    key = "quality_control"
    rate_field = "quality_control_rate_m2_per_day"
    rate_unit = "m2_per_day"
    rate_description = "Area sampled for quality control per working day, m2."
    productivity = "clearance"
    finds_items = True
    battle_area_rate = True

    def on_enter(self, parcel: int) -> None:
        self.parcels.qc_items_found[parcel] = 0

    def start_area_ha(self, parcel: int) -> float:
        return self.compiled.qc_sample_share * self.parcels.cleared_ha[parcel]

    def finish(self, parcel, area_ha, present, asset, working_days) -> StepOutcome:
        engine, p = self.engine, self.parcels
        cleared = p.cleared_ha[parcel]
        share = area_ha / cleared if cleared > 0 else 1.0
        in_sample = engine.draw_present(p.residual_items[parcel], min(1.0, share))
        found = engine.detect(in_sample, asset.detection)
        p.sampled(parcel, in_sample, found)
        self.districts.found_on_released_land(
            p.district[parcel], p.near_former_loc[parcel], p.exposure_weight[parcel] * sum(found)
        )
        return 0.0, 0.0, 0.0, found, -sum(found), 0.0

    def next_stage(self, parcel: int) -> Stage | None:
        p = self.parcels
        if p.qc_items_found[parcel] and p.reworks[parcel] < self.compiled.max_reworks:
            p.start_rework(parcel)
            return self.engine.stages[self.engine.stage_index["follow_up"]]
        return None


class RemoteSurvey(Stage):
    """Drones and image analysis over suspected land not yet visited by ground survey."""

    key = "remote_survey"
    rate_field = "remote_survey_rate_ha_per_day"
    rate_unit = "ha_per_day"
    rate_description = "Area analysed by remote (aerial) survey per working day, ha."
    open_from_start = True
    in_sequence = False
    optional = True

    def start_area_ha(self, parcel: int) -> float:
        return self.parcels.area_ha[parcel]

    def finish(self, parcel, area_ha, present, asset, working_days) -> StepOutcome:
        self.parcels.remote_analysed_ha[parcel] += area_ha
        return 0.0, 0.0, 0.0, [0, 0, 0], 0, 0.0

    def next_stage(self, parcel: int) -> Stage | None:
        raise AssertionError("remote survey is optional: the parcel never waits for it")


# ----------------------------------------------------------------------------- registry
# Registration order gives each stage its index (stored in logs, so it only ever grows);
# SEQUENCE gives the order a parcel follows.
REGISTRY: list[type[Stage]] = [
    NonTechnicalSurvey,
    TechnicalSurvey,
    Clearance,
    FollowUp,
    QualityControl,
    RemoteSurvey,
]
SEQUENCE: list[str] = ["non_technical_survey", "technical_survey", "clearance", "quality_control"]
_frozen = False


def register(stage: type[Stage], after: str | None = None) -> None:
    """Add a stage. `after` places it in the sequence after that stage's key (None: a side stage).

    Must run before the scenario schema is built, since the schema's stage names and rate fields
    come from the registry."""
    if _frozen:
        raise RuntimeError("register stages before sim.config is imported: the scenario schema is built from the registry")
    # Every check before any change, so a refused stage leaves the registry as it was.
    keys = [s.key for s in REGISTRY]
    if stage.key in keys or any(s.rate_field == stage.rate_field for s in REGISTRY):
        raise ValueError(f"stage {stage.key!r} or its rate field {stage.rate_field!r} is already registered")
    if stage.in_sequence and after is None:
        raise ValueError(f"stage {stage.key!r} is in the sequence: say after which stage (after=...)")
    if after is not None:
        if not stage.in_sequence:
            raise ValueError(f"stage {stage.key!r} is not in the sequence (in_sequence is False): give no after")
        if after not in SEQUENCE:
            raise ValueError(f"after={after!r} is not a stage of the sequence; it is: {', '.join(SEQUENCE)}")
    REGISTRY.append(stage)
    if after is not None:
        SEQUENCE.insert(SEQUENCE.index(after) + 1, stage.key)


def freeze() -> tuple[type[Stage], ...]:
    """The registry as the schema sees it; no registration after this."""
    global _frozen
    _frozen = True
    return tuple(REGISTRY)


def stage_keys() -> tuple[str, ...]:
    return tuple(s.key for s in REGISTRY)
