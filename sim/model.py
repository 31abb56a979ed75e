"""One replication of the campaign: a SimPy environment in which agencies' assets release parcels.

The story of an asset (`asset_life`): wait for delivery and the agency's start; take the
highest-priority task step its agency has in reach; work it for as many calendar days as the
working calendar needs; hand over what it found; repeat until the agency stops.

The story of a parcel (`_finish_step` and the stage helpers): non-technical survey cancels land
with no evidence -> technical survey reduces the confirmed area -> clearance (manual teams, dogs,
or machines followed up by dogs or manual teams) removes what it detects -> quality control
samples the cleared land and sends it back for re-clearance if it finds an item -> handed over.

Events are task steps (about a month of one asset's work), never days or square metres.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np
import simpy

from .assets import CLEARANCE, FOLLOW_UP, NTS, QC, REMOTE, TS, AssetType, Compiled, finish_day
from .config import LAND_USES, STAGES, TERRAINS
from .world import BATTLE_AREA, MINEFIELD, Parcels

STREAMS = ("layout", "truth", "maps", "dispatch", "clearance", "breakdowns", "accidents", "civilians")
LOG_COLUMNS = (
    "t0", "t1", "parcel", "agency", "district", "asset_type", "stage", "land_use", "area_worked_ha",
    "cancelled_ha", "reduced_ha", "cleared_ha", "found_ap", "found_at", "found_uxo", "residual_delta",
)
INCIDENT_COLUMNS = ("day", "district", "agency", "deminer", "killed", "on_released_land", "outside_former_loc")
STOCK_COLUMNS = ("suspected_ha", "confirmed_ha", "released_ha", "residual_items")
EPS_HA = 1e-9


def make_streams(seed_seq: np.random.SeedSequence) -> dict[str, np.random.Generator]:
    """One named generator per source of randomness, derived from the replication's SeedSequence.

    Replication i of two scenarios gets the same streams, so their differences are not noise."""
    return {
        name: np.random.default_rng(
            np.random.SeedSequence(seed_seq.entropy, spawn_key=tuple(seed_seq.spawn_key) + (i,))
        )
        for i, name in enumerate(STREAMS)
    }


def month_edges(compiled: Compiled) -> np.ndarray:
    """Day offsets of month boundaries: 0, the first of each following month, ..., the horizon."""
    start = np.datetime64(compiled.start_date, "D")
    first = start.astype("datetime64[M]")
    end = start + int(compiled.horizon_days)
    months = np.arange(first, end.astype("datetime64[M]") + 1)
    edges = (months.astype("datetime64[D]") - start).astype(float)
    edges[0] = 0.0
    edges = edges[edges < compiled.horizon_days]
    return np.append(edges, compiled.horizon_days)


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes (for benchmarks)."""

    def __init__(self):
        super().__init__()
        self.events_processed = 0

    def step(self):
        self.events_processed += 1
        return super().step()


@dataclass
class ReplicationResult:
    """What one replication produced, as plain arrays (see LOG_COLUMNS, INCIDENT_COLUMNS, STOCK_COLUMNS)."""

    log: np.ndarray
    incidents: np.ndarray
    stocks: np.ndarray  # (months, districts, STOCK_COLUMNS)
    initial_area_ha: np.ndarray  # by district
    initial_items: np.ndarray  # (districts, 3)
    handover_day: np.ndarray  # by parcel; inf when not handed over within the horizon
    parcel_district: np.ndarray
    events_processed: int


class Campaign:
    """The state of one replication and the processes that change it."""

    def __init__(self, compiled: Compiled, parcels: Parcels, rngs: dict[str, np.random.Generator]):
        self.c = compiled
        self.p = parcels
        self.rng = rngs
        self.env = CountingEnvironment()
        n = len(parcels)
        n_districts = len(compiled.district_keys)
        self.district = parcels.district.tolist()
        self.terrain = parcels.terrain.tolist()
        self.land_use = parcels.land_use.tolist()
        self.hazard = parcels.hazard.tolist()
        self.map_state = parcels.map_state.tolist()
        self.in_zone = parcels.in_peacekeeping_zone.tolist()
        self.loc = parcels.near_former_loc.astype(int).tolist()
        self.area = parcels.area_ha.tolist()
        self.contaminated = parcels.contaminated_ha.tolist()

        # Work left to claim and task steps in progress, per stage and parcel.
        self.remaining = [[0.0] * n for _ in STAGES]
        self.remaining[NTS] = list(self.area)
        self.remaining[REMOTE] = list(self.area)
        self.remote_done = [0.0] * n  # ha analysed by remote survey before ground survey began
        self.inflight = [[0] * n for _ in STAGES]
        # Land-release accounting per parcel (ha): completed survey, confirmed, reduced, cleared.
        self.nts_done = [0.0] * n
        self.confirmed = [0.0] * n
        self.reduced = [0.0] * n
        self.to_clear = [0.0] * n
        self.cleared = [0.0] * n
        self.hidden = parcels.items.tolist()  # items not yet reached by clearance
        self.follow_up_items = [[0, 0, 0] for _ in range(n)]  # missed by machines, awaiting follow-up
        self.residual = [[0, 0, 0] for _ in range(n)]  # missed, on land counted as cleared
        self.qc_found = [0] * n
        self.reworks = [0] * n
        self.in_rework = [False] * n
        self.handover = [math.inf] * n

        # Civilian hazard: exposure-weighted items by district and near/away from the former line of contact.
        weight = np.array([compiled.incidents.land_use_exposure_weight[u] for u in LAND_USES])[parcels.land_use]
        self.exposure_weight = weight.tolist()
        # Running sums are plain lists: the hot loop updates them once per task step, and indexing
        # numpy arrays element by element costs several times more.
        hazard_unreleased = np.zeros((n_districts, 2))
        np.add.at(hazard_unreleased, (parcels.district, parcels.near_former_loc.astype(int)), weight * parcels.items.sum(axis=1))
        self.hazard_unreleased = hazard_unreleased.tolist()  # [district][near former line of contact]
        self.hazard_released = np.zeros((n_districts, 2)).tolist()
        # Running district stocks (ha, items); a test checks them against the parcels' own state.
        self.suspected_ha = np.bincount(parcels.district, weights=parcels.area_ha, minlength=n_districts).tolist()
        self.confirmed_ha = [0.0] * n_districts
        self.released_ha = [0.0] * n_districts
        self.residual_items = [0.0] * n_districts

        # Per asset type and terrain: cumulative working days (a list, for bisect) and whether each
        # day is workable at all (bytes), so the hot loop touches no numpy scalars.
        self.calendar_lists = [[cal.tolist() for cal in per_terrain] for per_terrain in compiled.calendars]
        self.workable_days = [[(np.diff(cal) > 0).astype(np.uint8).tobytes() for cal in per_terrain] for per_terrain in compiled.calendars]
        self.log: list[tuple] = []
        self.incidents: list[tuple] = []
        self._uniforms: list[float] = []
        self._uniform_next = 0
        self.edges = month_edges(compiled)
        self.stocks = np.zeros((len(self.edges) - 1, n_districts, len(STOCK_COLUMNS)))
        self._build_dispatch()

    # ----------------------------------------------------------------- dispatch
    def _build_dispatch(self) -> None:
        c, p = self.c, self.p
        n = len(p)
        n_classes = len(c.eligibility_classes)
        # heaps[agency][stage][class][hazard][terrain]: terrain apart so that an asset passes over
        # land it cannot work today (mountain winter) without losing its place in the queue.
        self.heaps = [[[[[[] for _ in TERRAINS] for _ in (MINEFIELD, BATTLE_AREA)] for _ in range(n_classes)] for _ in STAGES] for _ in c.agencies]
        # Idle assets wait on an event filed under each (stage, eligibility class) they could work,
        # so new work wakes only the assets that can take it.
        self.idle = [{} for _ in c.agencies]
        self.keys = []
        for agency in c.agencies:
            rank = np.asarray(agency.policy_rank)[p.land_use]
            wave = c.district_priority[p.district]
            # Land use by policy, then the district's return wave, then high threat first, then a
            # random order that interleaves parcels of equal priority.
            self.keys.append((((rank * 10 + wave) * 2 + p.threat) * n + p.order).tolist())
        # The eligibility classes each parcel belongs to (the classes of asset that may work it).
        self.parcel_classes = [[] for _ in range(n)]
        for cls, (terrain_mask, land_use_mask) in enumerate(c.eligibility_classes):
            ok = (np.asarray(terrain_mask)[p.terrain] > 0) & (np.asarray(land_use_mask)[p.land_use] > 0)
            for i in np.flatnonzero(ok).tolist():
                self.parcel_classes[i].append(cls)
        self.candidates = [[] for _ in range(n)]
        for g, agency in enumerate(c.agencies):
            in_districts = np.isin(p.district, list(agency.districts))
            reach = in_districts & (p.in_peacekeeping_zone if agency.peacekeeping else True)
            for i in np.flatnonzero(reach):
                self.candidates[i].append(g)
        for g, agency in enumerate(c.agencies):
            for i in range(n):
                if g in self.candidates[i] and self._reachable(g, i):
                    self._push_one(g, NTS, i, wake=False)
                    self._push_one(g, REMOTE, i, wake=False)
        for stage_heaps in self.heaps:
            for stage in (NTS, REMOTE):
                for per_class in stage_heaps[stage]:
                    for per_hazard in per_class:
                        for heap in per_hazard:
                            heapq.heapify(heap)

    def _reachable(self, g: int, i: int) -> bool:
        agency = self.c.agencies[g]
        if self.in_zone[i] and not agency.peacekeeping:
            return self.env.now >= self.c.zone_opens_day
        return True

    def _push_one(self, g: int, stage: int, i: int, wake: bool = True) -> None:
        key = self.keys[g][i]
        hz, terrain = self.hazard[i], self.terrain[i]
        per_class = self.heaps[g][stage]
        for cls in self.parcel_classes[i]:
            if wake:
                heapq.heappush(per_class[cls][hz][terrain], (key, i))
                waiting = self.idle[g].pop((stage, cls), None)
                if waiting:
                    for event in waiting:
                        if not event.triggered:
                            event.succeed()
            else:
                per_class[cls][hz][terrain].append((key, i))

    def _push(self, stage: int, i: int) -> None:
        for g in self.candidates[i]:
            if self._reachable(g, i):
                self._push_one(g, stage, i)

    def _open_zone(self):
        """National agencies enter the former peacekeeping zone."""
        yield self.env.timeout(max(0.0, self.c.zone_opens_day))
        for g, agency in enumerate(self.c.agencies):
            if agency.peacekeeping:
                continue
            for i in range(len(self.area)):
                if self.in_zone[i] and g in self.candidates[i]:
                    for stage in range(len(STAGES)):
                        if self.remaining[stage][i] > 0:
                            self._push_one(g, stage, i)

    def _dispatch_uniform(self) -> float:
        """The next uniform of the dispatch stream, drawn in blocks (the same sequence as one by one)."""
        if self._uniform_next == len(self._uniforms):
            self._uniforms = self.rng["dispatch"].random(4096).tolist()
            self._uniform_next = 0
        u = self._uniforms[self._uniform_next]
        self._uniform_next += 1
        return u

    def _take(self, g: int, a: int):
        """The best task step for asset type `a` of agency `g`: ((parcel, stage) or None, blocked),
        where `blocked` says work is waiting on land the asset cannot work today (mountain winter).
        The hot loop of dispatch: heaps are peeked inline, stale entries popped as met."""
        asset = self.c.asset_types[a]
        share = self.c.agencies[g].battle_area_share_of_work
        if share is None:
            hazard_order = (MINEFIELD, BATTLE_AREA)
        elif self._dispatch_uniform() < share:
            hazard_order = (BATTLE_AREA, MINEFIELD)
        else:
            hazard_order = (MINEFIELD, BATTLE_AREA)
        days = self.workable_days[a]
        day = -1  # looked up only when a heap has work
        blocked = False
        heappop = heapq.heappop
        heaps = self.heaps[g]
        remaining_by_stage = self.remaining
        eligibility = asset.eligibility
        for stage in asset.stages:
            remaining = remaining_by_stage[stage]
            per_hazard = heaps[stage][eligibility]
            best = None
            for h in hazard_order:
                t = 0
                for heap in per_hazard[h]:
                    while heap and remaining[heap[0][1]] <= 0:
                        heappop(heap)  # stale: all of this stage already claimed
                    if heap:
                        if day < 0:
                            day = min(int(self.env.now), len(days[0]) - 1)
                        if not days[t][day]:
                            blocked = True
                        elif best is None or heap[0] < best:
                            best = heap[0]
                    t += 1
                if best is not None and share is not None:
                    return (best[1], stage), False
            if best is not None:
                return (best[1], stage), False
        return None, blocked

    # ----------------------------------------------------------------- processes
    def asset_life(self, g: int, a: int, delivered_day: float, withdrawn_day: float):
        """One asset's working life in its agency."""
        env, c = self.env, self.c
        agency, asset = c.agencies[g], c.asset_types[a]
        yield env.timeout(max(delivered_day, agency.start_day, 0.0))
        calendars = self.calendar_lists[a]
        last_day = min(agency.end_day, withdrawn_day)
        while env.now < last_day:
            task, blocked = self._take(g, a)
            if task is None:
                event = env.event()
                idle = self.idle[g]
                for stage in asset.stages:
                    idle.setdefault((stage, asset.eligibility), []).append(event)
                if blocked:  # seasons change by the month: look again then
                    k = min(int(np.searchsorted(self.edges, env.now, side="right")), len(self.edges) - 1)
                    env.timeout(max(self.edges[k] - env.now, 1.0)).callbacks.append(lambda _, e=event: e.triggered or e.succeed())
                yield event
                continue
            i, stage = task
            ha_per_day = (
                asset.rate_ha_per_day[stage]
                * asset.terrain_factor[self.terrain[i]]
                * asset.land_use_factor[self.land_use[i]]
                * agency.productivity[stage]
            )
            if stage in (CLEARANCE, FOLLOW_UP, QC) and self.hazard[i] == BATTLE_AREA:
                ha_per_day *= asset.battle_area_rate_factor
            elif stage == NTS and self.remote_done[i] > 0:
                ha_per_day *= 1.0 + (c.remote_survey_nts_speedup - 1.0) * min(1.0, self.remote_done[i] / self.area[i])
            if env.now < agency.ramp_end_day:
                # A new organisation works up to its full pace (the rate is fixed for the whole step).
                into_ramp = max(0.0, env.now - agency.start_day) / agency.ramp_days
                ha_per_day *= agency.ramp_start_share + (1.0 - agency.ramp_start_share) * into_ramp
            area, present = self._claim(i, stage, ha_per_day * asset.task_days)
            t0 = env.now
            working_days = area / ha_per_day
            t1 = finish_day(calendars[self.terrain[i]], t0, working_days)
            if t1 > c.horizon_days:
                return  # the step would end past the horizon: nothing more from this asset
            yield env.timeout(t1 - t0)
            downtime = self._finish_step(g, a, i, stage, area, present, t0, t1, working_days)
            if downtime > 0:
                yield env.timeout(downtime)

    def civilian_exposure(self):
        """Each month, civilian incidents drawn from exposure to hidden and residual items."""
        env, inc = self.env, self.c.incidents
        rng = self.rng["civilians"]
        returns_days = np.array([(r.date - self.c.start_date).days for r in inc.returns], dtype=float)
        returns_share = np.array([r.share for r in inc.returns])
        loc_factor = np.array([1.0, inc.former_loc_exposure_factor])
        weight = self.c.district_returns_weight
        for m in range(len(self.edges) - 1):
            lo, hi = self.edges[m], self.edges[m + 1]
            yield env.timeout(hi - env.now)
            mid = 0.5 * (lo + hi)
            activity = (inc.baseline_activity + np.interp(mid, returns_days, returns_share)) * weight
            awareness = 0.5 ** (mid / 365.25 / inc.awareness_half_life_years)
            scale = inc.civilian_exposure_rate_per_item_month * awareness * (hi - lo) / 30.4375
            lam = np.stack(
                [np.array(self.hazard_unreleased), np.array(self.hazard_released) * inc.released_land_exposure_factor], axis=-1
            ) * (activity[:, None, None] * loc_factor[None, :, None] * scale)
            # Float round-off in the running sums can leave -1e-12; exposure is never negative.
            np.clip(lam, 0.0, None, out=lam)
            counts = rng.poisson(lam)
            for d, loc, released in zip(*np.nonzero(counts)):
                for _ in range(counts[d, loc, released]):
                    day = lo + rng.random() * (hi - lo)
                    killed = rng.random() < inc.civilian_killed_share
                    self.incidents.append((day, d, -1, 0, killed, released, 1 - loc))
            self._snapshot(m)

    def _snapshot(self, m: int) -> None:
        self.stocks[m, :, 0] = self.suspected_ha
        self.stocks[m, :, 1] = self.confirmed_ha
        self.stocks[m, :, 2] = self.released_ha
        self.stocks[m, :, 3] = self.residual_items

    def parcel_stocks(self) -> np.ndarray:
        """District stocks recomputed from the parcels' own state (suspected, confirmed, released ha)."""
        d = self.p.district
        n_d = len(self.c.district_keys)
        area = self.p.area_ha
        nts_done, confirmed = np.asarray(self.nts_done), np.asarray(self.confirmed)
        reduced, cleared = np.asarray(self.reduced), np.asarray(self.cleared)
        return np.stack(
            [
                np.bincount(d, weights=area - nts_done, minlength=n_d),
                np.bincount(d, weights=confirmed - reduced - cleared, minlength=n_d),
                np.bincount(d, weights=(nts_done - confirmed) + reduced + cleared, minlength=n_d),
            ],
            axis=1,
        )

    # ----------------------------------------------------------------- land release
    def _claim(self, i: int, stage: int, max_area: float):
        remaining = self.remaining[stage]
        available = remaining[i]
        area = min(available, max_area)
        remaining[i] = 0.0 if available - area <= EPS_HA else available - area
        self.inflight[stage][i] += 1
        if stage == NTS:
            self.remaining[REMOTE][i] = 0.0  # ground survey has begun: no more remote analysis here
        present = None
        if stage == CLEARANCE:
            present = self._draw_present(self.hidden[i], area / available)
        elif stage == FOLLOW_UP:
            pool = self.residual[i] if self.in_rework[i] else self.follow_up_items[i]
            present = self._draw_present(pool, area / available)
        return area, present

    def _draw_present(self, pool: list, fraction: float) -> list:
        """Items lying in the share `fraction` of what is left of the area; taken out of `pool`."""
        if fraction >= 1.0:
            present = list(pool)
        else:
            binomial = self.rng["clearance"].binomial
            present = [binomial(n, fraction) if n else 0 for n in pool]
        for k in range(3):
            pool[k] -= present[k]
        return present

    def _detect(self, present: list, detection: tuple) -> list:
        binomial = self.rng["clearance"].binomial
        return [binomial(n, q) if n else 0 for n, q in zip(present, detection)]

    def _finish_step(self, g, a, i, stage, area, present, t0, t1, working_days) -> float:
        """Apply a finished task step to the parcel; returns the asset's downtime (days)."""
        c = self.c
        asset = c.asset_types[a]
        self.inflight[stage][i] -= 1
        cancelled = reduced = cleared = 0.0
        found = [0, 0, 0]
        residual_delta = 0
        d, loc, w = self.district[i], self.loc[i], self.exposure_weight[i]
        downtime = 0.0

        if stage == REMOTE:
            self.remote_done[i] += area
        elif stage == NTS:
            empty_share = 1.0 - self.contaminated[i] / self.area[i]
            share = c.nts_cancel_share[self.map_state[i]]
            analysed = min(1.0, self.remote_done[i] / self.area[i])
            if analysed:
                # Imagery shows where evidence is, as a right map would.
                share += analysed * max(0.0, c.nts_cancel_share[0] - share)
            cancelled = area * empty_share * share
            self.nts_done[i] += area
            self.confirmed[i] += area - cancelled
        elif stage == TS:
            total = self.confirmed[i]
            empty_share = max(0.0, 1.0 - self.contaminated[i] / total) if total > 0 else 0.0
            reduced = area * empty_share * c.ts_reduce_share[self.map_state[i]]
            self.reduced[i] += reduced
            self.to_clear[i] += area - reduced
        elif stage == CLEARANCE:
            found = self._detect(present, asset.detection)
            missed = [n - f for n, f in zip(present, found)]
            self.hazard_unreleased[d][loc] -= w * sum(found)
            if asset.needs_follow_up:
                pool = self.follow_up_items[i]
                for k in range(3):
                    pool[k] += missed[k]
                self.remaining[FOLLOW_UP][i] += area
                self._push(FOLLOW_UP, i)
            else:
                cleared = area
                residual_delta = self._leave_residual(i, missed, w)
            downtime = self._machine_downtime(asset, working_days, found[1])
        elif stage == FOLLOW_UP:
            found = self._detect(present, asset.detection)
            missed = [n - f for n, f in zip(present, found)]
            if self.in_rework[i]:
                for k in range(3):
                    self.residual[i][k] += missed[k]
                self.hazard_released[d][loc] -= w * sum(found)
                residual_delta = -sum(found)
            else:
                cleared = area
                self.hazard_unreleased[d][loc] -= w * sum(found)
                residual_delta = self._leave_residual(i, missed, w)
        elif stage == QC:
            share = area / self.cleared[i] if self.cleared[i] > 0 else 1.0
            in_sample = self._draw_present(self.residual[i], min(1.0, share))
            found = self._detect(in_sample, asset.detection)
            for k in range(3):
                self.residual[i][k] += in_sample[k] - found[k]
            self.qc_found[i] += sum(found)
            self.hazard_released[d][loc] -= w * sum(found)
            residual_delta = -sum(found)

        if cleared:
            self.cleared[i] += cleared
        released = cancelled + reduced + cleared
        if stage == NTS:
            self.suspected_ha[d] -= area
            self.confirmed_ha[d] += area - cancelled
        else:
            self.confirmed_ha[d] -= reduced + cleared
        self.released_ha[d] += released
        self.residual_items[d] += residual_delta
        self.log.append(
            (t0, t1, i, g, d, a, stage, self.land_use[i], area, cancelled, reduced, cleared,
             found[0], found[1], found[2], residual_delta)
        )
        n_found = sum(found)
        if n_found and asset.accident_probability_per_item > 0:
            self._deminer_accidents(g, i, n_found, asset.accident_probability_per_item, t0, t1)
        self._advance(i, stage)
        return downtime

    def _leave_residual(self, i: int, missed: list, w: float) -> int:
        """Items missed on land now counted as cleared: they stay behind as residual risk."""
        n = sum(missed)
        if n:
            for k in range(3):
                self.residual[i][k] += missed[k]
            d, loc = self.district[i], self.loc[i]
            self.hazard_unreleased[d][loc] -= w * n
            self.hazard_released[d][loc] += w * n
        return n

    def _machine_downtime(self, asset: AssetType, working_days: float, at_set_off: int) -> float:
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

    def _deminer_accidents(self, g, i, n_found, probability, t0, t1) -> None:
        rng = self.rng["accidents"]
        n = rng.binomial(n_found, probability)
        killed_share = self.c.incidents.deminer_killed_share
        for _ in range(n):
            day = t0 + rng.random() * (t1 - t0)
            self.incidents.append((day, self.district[i], g, 1, rng.random() < killed_share, 0, 1 - self.loc[i]))

    def _stage_idle(self, stage: int, i: int) -> bool:
        return self.remaining[stage][i] <= 0 and self.inflight[stage][i] == 0

    def _advance(self, i: int, stage: int) -> None:
        """Move the parcel to its next stage once every step of the current one is done."""
        if stage == REMOTE:
            return  # optional: the parcel's ground survey never waits for it
        if stage == NTS:
            if self._stage_idle(NTS, i):
                self._start(TS, i, self.confirmed[i])
        elif stage == TS:
            if self._stage_idle(TS, i):
                self._start(CLEARANCE, i, self.to_clear[i])
        elif stage in (CLEARANCE, FOLLOW_UP):
            if self._stage_idle(CLEARANCE, i) and self._stage_idle(FOLLOW_UP, i):
                self.qc_found[i] = 0
                self._start(QC, i, self.c.qc_sample_share * self.cleared[i])
        elif stage == QC and self._stage_idle(QC, i):
            if self.qc_found[i] and self.reworks[i] < self.c.max_reworks:
                # IMAS 09.20: a failed sample rejects the lot; it is cleared again.
                self.reworks[i] += 1
                self.in_rework[i] = True
                self._start(FOLLOW_UP, i, self.cleared[i])
            else:
                self.handover[i] = self.env.now

    def _start(self, stage: int, i: int, area: float) -> None:
        if area <= EPS_HA:
            # Nothing left for this stage: skip ahead (e.g. all land cancelled, nothing to clear).
            if stage == TS:
                self._start(CLEARANCE, i, self.to_clear[i])
            elif stage == CLEARANCE:
                self._start(QC, i, self.c.qc_sample_share * self.cleared[i])
            else:
                self.handover[i] = self.env.now
            return
        self.remaining[stage][i] = area
        self._push(stage, i)

    # ----------------------------------------------------------------- run
    def run(self) -> ReplicationResult:
        env = self.env
        for g, agency in enumerate(self.c.agencies):
            for delivery in agency.deliveries:
                for _ in range(delivery.count):
                    env.process(self.asset_life(g, delivery.asset_type, delivery.day, delivery.withdrawn_day))
        env.process(self._open_zone())
        env.process(self.civilian_exposure())
        # A hair past the horizon so the last month-end snapshot (scheduled at the horizon) runs.
        env.run(until=self.c.horizon_days + 1e-6)
        p = self.p
        n_d = len(self.c.district_keys)
        return ReplicationResult(
            log=np.array(self.log, dtype=float).reshape(-1, len(LOG_COLUMNS)),
            incidents=np.array(self.incidents, dtype=float).reshape(-1, len(INCIDENT_COLUMNS)),
            stocks=self.stocks,
            initial_area_ha=np.bincount(p.district, weights=p.area_ha, minlength=n_d),
            initial_items=np.stack([np.bincount(p.district, weights=p.items[:, k], minlength=n_d) for k in range(3)], axis=1),
            handover_day=np.array(self.handover),
            parcel_district=p.district,
            events_processed=env.events_processed,
        )
