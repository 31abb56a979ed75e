"""The land-release engine: claims task steps, applies finished ones through their stage, and
moves each parcel along the sequence. The successor rule lives here once (`enter`, `advance`);
what each stage does lives in `sim.stages`.
"""

from __future__ import annotations

import numpy as np

from .assets import AssetType, Compiled, DatedSettings
from .config import LAND_USES
from .dispatch import Dispatch, zone_open_days
from .recording import Recorder
from .stages import SEQUENCE, Stage, freeze
from .state import DistrictTotals, ParcelState
from .world import Parcels, draw_map_state

EPS_HA = 1e-9  # work below this is none (float round-off of areas split into steps)


class SurveyPractice:
    """The shares and speed-up survey steps read when they start or finish: one object per
    replication, whose values a dated change replaces (the compiled scenario is shared)."""

    __slots__ = ("nts_cancel_share", "ts_reduce_share", "remote_survey_nts_speedup")

    def __init__(self, nts_cancel_share: tuple, ts_reduce_share: tuple, remote_survey_nts_speedup: float):
        self.nts_cancel_share = nts_cancel_share  # by map state, with the national practice applied
        self.ts_reduce_share = ts_reduce_share  # by map state
        self.remote_survey_nts_speedup = remote_survey_nts_speedup


class LandRelease:
    """Parcels' and districts' state, the stages acting on it, dispatch and the record."""

    def __init__(
        self,
        env,
        compiled: Compiled,
        parcels: Parcels,
        rngs: dict[str, np.random.Generator],
        workable_days: list,
        recorder: Recorder,
    ):
        self.env = env
        self.compiled = compiled
        self.rng = rngs
        stage_classes = freeze()
        weight = np.array([compiled.incidents.land_use_exposure_weight[u] for u in LAND_USES])[parcels.land_use]
        self.parcels = ParcelState.from_parcels(parcels, weight, len(stage_classes))
        self.districts = DistrictTotals.from_parcels(parcels, weight, len(compiled.district_keys), len(stage_classes))
        self.world = parcels
        self.practice = SurveyPractice(compiled.nts_cancel_share, compiled.ts_reduce_share, compiled.remote_survey_nts_speedup)
        self.stage_index = {cls.key: k for k, cls in enumerate(stage_classes)}
        self.stages: list[Stage] = [cls(k, self) for k, cls in enumerate(stage_classes)]
        sequence = [self.stages[self.stage_index[key]] for key in SEQUENCE]
        self._next_in_sequence = {stage.index: nxt for stage, nxt in zip(sequence, [*sequence[1:], None])}
        open_from_start = tuple(s.index for s in self.stages if s.open_from_start)
        for stage in open_from_start:
            self.parcels.remaining_ha[stage] = list(self.parcels.area_ha)
            self.districts.waiting_ha[stage] = list(self.districts.suspected_ha)
        self._remote = self.stage_index.get("remote_survey")
        self.recorder = recorder
        self._log_append = recorder.log.append  # the hot loop appends rows directly (LOG_COLUMNS order)
        self._binomial = rngs["clearance"].binomial  # bound once: drawn several times per step
        self.dispatch = Dispatch(
            env,
            compiled,
            parcels,
            self.parcels,
            rngs["dispatch"],
            workable_days,
            len(self.stages),
            open_from_start,
            zone_open_days(compiled, parcels.district, rngs["zone_access"]),
        )

    # ------------------------------------------------------------------ stages and sequence
    def after_in_sequence(self, stage: Stage) -> Stage | None:
        return self._next_in_sequence[stage.index]

    def enter(self, stage: Stage | None, i: int) -> None:
        """The parcel enters `stage`; a stage with nothing to do is skipped; None hands it over."""
        while stage is not None:
            if stage.has_enter_hook:
                stage.on_enter(i)
            area = stage.start_area_ha(i)
            if area > EPS_HA:
                self.set_waiting(stage.index, i, area)
                self.dispatch.offer(stage.index, i)
                return
            stage = stage.next_stage(i)
        self.parcels.handover_day[i] = self.env.now

    def set_waiting(self, stage: int, i: int, area_ha: float) -> None:
        """Set the stage's work waiting to be claimed on the parcel, and its district's queue."""
        remaining = self.parcels.remaining_ha[stage]
        self.districts.waiting_ha[stage][self.parcels.district[i]] += area_ha - remaining[i]
        remaining[i] = area_ha

    def add_work(self, stage: int, i: int, area_ha: float) -> None:
        self.set_waiting(stage, i, self.parcels.remaining_ha[stage][i] + area_ha)
        self.dispatch.offer(stage, i)

    def close_remote_survey(self, i: int) -> None:
        """Ground survey has begun on the parcel: no more remote analysis there."""
        if self._remote is not None:
            self.set_waiting(self._remote, i, 0.0)

    def apply_survey_practice(self, change: DatedSettings) -> None:
        """A dated change: the survey shares from now on, and the maps of parcels not yet surveyed."""
        practice = self.practice
        practice.nts_cancel_share = change.nts_cancel_share
        practice.ts_reduce_share = change.ts_reduce_share
        practice.remote_survey_nts_speedup = change.remote_survey_nts_speedup
        if change.redraw_maps:
            # Only parcels whose non-technical survey has not begun: a map already used by survey
            # stays what it was, so the past is not rewritten.
            world, p = self.world, self.parcels
            redrawn = draw_map_state(world.map_draw, world.hazard, change.map_accuracy, change.new_maps_share).tolist()
            remaining = p.remaining_ha[self.stage_index["non_technical_survey"]]
            for i, area in enumerate(p.area_ha):
                if remaining[i] >= area:  # no step claimed: every claim takes some of the area
                    p.map_state[i] = redrawn[i]

    # ------------------------------------------------------------------ task steps
    def claim(self, i: int, stage: Stage, max_area_ha: float):
        """Claim up to `max_area_ha` of the stage's waiting work: (area_ha, items present or None)."""
        p, k = self.parcels, stage.index
        remaining = p.remaining_ha[k]
        available = remaining[i]
        area = max_area_ha if max_area_ha < available else available  # min(), without the call
        left = 0.0 if available - area <= EPS_HA else available - area
        # set_waiting written out: this runs once per task step.
        remaining[i] = left
        self.districts.waiting_ha[k][p.district[i]] += left - available
        p.steps_in_progress[k][i] += 1
        if stage.has_claim_hook:
            stage.on_claim(i)
        return area, stage.draw_present(i, area, available) if stage.draws_at_claim else None

    def finish(
        self,
        agency: int,
        asset: AssetType,
        i: int,
        stage: Stage,
        area_ha: float,
        present,
        t0: float,
        t1: float,
        working_days: float,
    ) -> float:
        """Apply a finished step to the parcel and its district, record it; returns the asset's downtime (days)."""
        p, k = self.parcels, stage.index
        p.steps_in_progress[k][i] -= 1
        cancelled, reduced, cleared, found, residual_delta, downtime = stage.finish(i, area_ha, present, asset, working_days)
        d = p.district[i]
        self.districts.residual_items[d] += residual_delta
        found_ap, found_at, found_uxo = found
        # fmt: off
        self._log_append((t0, t1, i, agency, d, asset.index, k, p.land_use[i], area_ha,
                          cancelled, reduced, cleared, found_ap, found_at, found_uxo, residual_delta))  # LOG_COLUMNS
        # fmt: on
        if stage.finds_items and any(found) and any(asset.accident_probability_per_item):
            self.recorder.deminer_accidents(
                self.rng["accidents"],
                agency,
                d,
                p.near_former_loc[i],
                found,
                asset.accident_probability_per_item,
                t0,
                t1,
                self.compiled.incidents.deminer_killed_share,
            )
        # Once the stage is done on the parcel, it enters the next one.
        if not stage.optional and stage.is_done(i):
            self.enter(stage.next_stage(i), i)
        return downtime

    # ------------------------------------------------------------------ items
    def draw_present(self, pool: list, fraction: float) -> list:
        """Items lying in the share `fraction` of what is left of the area; taken out of `pool`."""
        # Written out for the three item types (ITEM_TYPES); draws in item order, none for no items.
        ap, at, uxo = pool
        if fraction >= 1.0:
            pool[0] = pool[1] = pool[2] = 0
            return [ap, at, uxo]
        binomial = self._binomial
        present = [
            binomial(ap, fraction) if ap else 0,
            binomial(at, fraction) if at else 0,
            binomial(uxo, fraction) if uxo else 0,
        ]
        pool[0] = ap - present[0]
        pool[1] = at - present[1]
        pool[2] = uxo - present[2]
        return present

    def detect(self, present: list, detection: tuple) -> list:
        """Items found among those present, per item type (drawn in item order, none for no items)."""
        ap, at, uxo = present
        if not (ap or at or uxo):
            return [0, 0, 0]
        binomial = self._binomial
        return [
            binomial(ap, detection[0]) if ap else 0,
            binomial(at, detection[1]) if at else 0,
            binomial(uxo, detection[2]) if uxo else 0,
        ]

    def leave_behind(self, i: int, missed: list) -> int:
        """Items missed on land now counted as cleared stay behind as residual risk; returns their number."""
        n = sum(missed)
        if n:
            p = self.parcels
            p.left_behind(i, missed)
            self.districts.left_on_released_land(p.district[i], p.near_former_loc[i], p.exposure_weight[i] * n)
        return n

    def machine_downtime(self, asset: AssetType, working_days: float, at_set_off: int) -> float:
        """Days out of work after a step: breakdowns, and damage from anti-tank mines set off."""
        rng = self.rng["breakdowns"]
        downtime = 0.0
        if asset.mtbf_hours:
            failures = rng.poisson(working_days * asset.hours_per_day / asset.mtbf_hours)
            if failures:
                downtime += rng.gamma(failures, asset.mttr_days)
        if at_set_off and asset.at_damage_probability > 0:
            damaged = rng.binomial(at_set_off, asset.at_damage_probability)
            if damaged and asset.at_repair_days > 0:
                downtime += rng.gamma(damaged, asset.at_repair_days)
        return downtime

    # ------------------------------------------------------------------ checks
    def stranded_ha(self) -> np.ndarray:
        """Unreleased land on parcels not handed over whose waiting stage no agency can work
        there (no asset type for that stage, terrain and land use among the agencies that reach
        it), ha by district and stage: what keeps a scenario from ever finishing."""
        p, n_stages = self.parcels, len(self.stages)
        out = np.zeros((len(self.compiled.district_keys), n_stages))
        for i, day in enumerate(p.handover_day):
            if day != float("inf"):
                continue
            for k in range(n_stages):
                if p.steps_in_progress[k][i] > 0:
                    break  # being worked
                if p.remaining_ha[k][i] > EPS_HA and not self.stages[k].optional:
                    if not self.dispatch.can_work(k, i):
                        out[p.district[i], k] += p.unreleased_ha(i)
                    break
        return out

    def parcel_stocks(self) -> np.ndarray:
        """District stocks recomputed from the parcels' own accounts (suspected, confirmed, released ha)."""
        p = self.parcels
        d = np.asarray(p.district)
        n_d = len(self.compiled.district_keys)
        area = np.asarray(p.area_ha)
        surveyed, confirmed = np.asarray(p.surveyed_ha), np.asarray(p.confirmed_ha)
        reduced, cleared = np.asarray(p.reduced_ha), np.asarray(p.cleared_ha)
        return np.stack(
            [
                np.bincount(d, weights=area - surveyed, minlength=n_d),
                np.bincount(d, weights=confirmed - reduced - cleared, minlength=n_d),
                np.bincount(d, weights=(surveyed - confirmed) + reduced + cleared, minlength=n_d),
            ],
            axis=1,
        )
