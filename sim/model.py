"""One replication of the campaign: a SimPy environment in which agencies' assets release parcels.

The story of an asset (`asset_life`): wait for delivery and the agency's start; take the
highest-priority task step its agency has in reach (`sim.dispatch`); work it for as many calendar
days as the working calendar needs; hand it to the land-release engine (`sim.land_release`),
which applies it through its stage (`sim.stages`: one class per stage) and moves the parcel on;
repeat until the agency stops. Each month, civilians meet the items still hidden or left behind.

Events are task steps (about a month of one asset's work), never days or square metres.
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_right
from dataclasses import dataclass
from heapq import heappop, heappush
from operator import attrgetter

import numpy as np
import simpy
from simpy.events import NORMAL, URGENT

from .assets import Compiled, finish_day
from .config import HAZARD_TYPES, LAND_USES, STAGES, TERRAINS
from .dispatch import Ticket
from .land_release import LandRelease
from .recording import BUSY, DOWN, IDLE_SEASON, INCIDENT_COLUMNS, LOG_COLUMNS, NO_STAGE, OVERTIME, STOCK_COLUMNS, Recorder
from .world import BATTLE_AREA, Parcels

__all__ = [
    "Campaign",
    "ReplicationResult",
    "make_streams",
    "month_edges",
    "STREAMS",
    "LOG_COLUMNS",
    "INCIDENT_COLUMNS",
    "STOCK_COLUMNS",
]

# Changes whenever the model's numbers change on purpose (the golden files are refreshed with it):
# a run started by another revision cannot be resumed, since its replications would not match.
MODEL_REVISION = "2026-11-27 (11): soldiers hurt away from clearance work (the record's military, half the casualties to 2023); deminer accidents by item type (buried mines, not surface UXO); incidents refit"

STREAMS = (
    "layout",
    "truth",
    "placement",
    "maps",
    "dispatch",
    "clearance",
    "breakdowns",
    "accidents",
    "civilians",
    "soldiers",
    "zone_access",
)


def stream_key(name: str) -> int:
    """A stream's place in the replication's seed tree: a stable hash of its name, so adding a
    stream never changes the numbers of the others (as it would if keyed by position)."""
    return int.from_bytes(hashlib.sha256(f"demining-sim stream {name}".encode()).digest()[:8], "little")


_STREAM_KEYS = {name: stream_key(name) for name in STREAMS}
if len(set(_STREAM_KEYS.values())) != len(STREAMS):  # pragma: no cover - a 64-bit collision
    raise RuntimeError("two random streams hash to the same key: rename one")


def make_streams(seed_seq: np.random.SeedSequence) -> dict[str, np.random.Generator]:
    """One named generator per source of randomness, derived from the replication's SeedSequence.

    Replication i of two scenarios gets the same streams, so their differences are not noise."""
    return {
        name: np.random.default_rng(np.random.SeedSequence(seed_seq.entropy, spawn_key=tuple(seed_seq.spawn_key) + (key,)))
        for name, key in _STREAM_KEYS.items()
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
    """A SimPy environment that counts the events it processes (for benchmarks), with SimPy's
    event loop and timeouts written out (they run once per event: a method call less each).

    Counted once, when `run` returns, not per event (a per-event `step` override costs about 4 % of
    a replication): SimPy numbers every event it schedules (`_eid`), so the events processed are
    those numbered less those still queued. (The `until` event SimPy puts back on stopping is both
    numbered again and queued, so it cancels out.)"""

    def __init__(self):
        super().__init__()
        self.events_processed = 0
        self._numbers_read = 0  # reading the next number takes it: not an event

    def run(self, until=None):
        try:
            if until is None or isinstance(until, simpy.Event):
                return super().run(until)
            return self._run_until(until)
        finally:
            numbered = next(self._eid) - self._numbers_read
            self._numbers_read += 1
            self.events_processed = numbered - len(self._queue)

    def _run_until(self, until: float):
        """`simpy.Environment.run(until)` with `step` inlined: the same events in the same order."""
        at = until if isinstance(until, int) else float(until)
        if at <= self.now:
            raise ValueError(f"until ({at}) must be greater than the current simulation time")
        stop = simpy.Event(self)
        stop._ok, stop._value = True, None
        self.schedule(stop, URGENT, at - self.now)
        stop.callbacks.append(simpy.core.StopSimulation.callback)
        queue = self._queue
        try:
            while queue:
                self._now, _, _, event = heappop(queue)
                callbacks, event.callbacks = event.callbacks, None
                for callback in callbacks:
                    callback(event)
                if not event._ok and not hasattr(event, "_defused"):
                    # A failed event nobody handled: crash, as SimPy does.
                    exc = type(event._value)(*event._value.args)
                    exc.__cause__ = event._value
                    raise exc
        except simpy.core.StopSimulation as exc:
            return exc.args[0]
        raise RuntimeError(f'No scheduled events left but "until" event was not triggered: {stop}')

    # SimPy's `now` is a Python property; read through a C getter it costs no Python call.
    now = property(attrgetter("_now"))

    def timeout(self, delay: float, value=None) -> simpy.Timeout:
        """`simpy.Timeout(self, delay, value)`, built without its two nested calls."""
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        event = _new_timeout(simpy.Timeout)
        event.env, event.callbacks, event._value, event._delay, event._ok = self, [], value, delay, True
        heappush(self._queue, (self._now + delay, NORMAL, next(self._eid), event))
        return event

    def step_end(self, t0: float, t1: float) -> StepEnd:
        """The end of a task step that starts now (`t0`, now) and ends on day `t1`: `timeout(t1 - t0)`,
        the same event in the same place, marked so that the steps under way can be found."""
        delay = t1 - t0
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        event = _new_timeout(StepEnd)
        event.env, event.callbacks, event._value, event._delay, event._ok = self, [], t0, delay, True
        heappush(self._queue, (self._now + delay, NORMAL, next(self._eid), event))
        return event

    def steps_under_way_from(self) -> float:
        """The earliest start day of the task steps under way (inf: none)."""
        return min((event._value for _, _, _, event in self._queue if type(event) is StepEnd), default=math.inf)

    def uncount_stop(self) -> None:
        """Do not count the stop of the last `run(until)` as an event processed."""
        self._numbers_read += 1
        self.events_processed -= 1


class StepEnd(simpy.Timeout):
    """A task step's end: its value is the step's start day."""


_new_timeout = object.__new__


class IdleAsset:
    """An asset with no work in reach, waiting until work it may take is queued or, when work
    waits on land out of season, until the next month (seasons change by the month).

    When woken it looks for work at once, as its process would on resuming (record the seasonal
    wait, stop past its working life, take), and resumes its process only with a step to work or
    to stop: a wake-up that finds nothing files a new ticket without a process switch."""

    __slots__ = (
        "campaign",
        "env",
        "dispatch",
        "agency_index",
        "asset_index",
        "last_day",
        "ticket_lists",
        "event",
        "idle_from",
        "blocked",
    )

    def __init__(self, campaign: Campaign, agency_index: int, asset_index: int, last_day: float):
        self.campaign, self.env, self.dispatch = campaign, campaign.env, campaign.land.dispatch
        self.agency_index, self.asset_index, self.last_day = agency_index, asset_index, last_day
        asset = campaign.compiled.asset_types[asset_index]
        self.ticket_lists = self.dispatch.ticket_lists(agency_index, asset.stages, asset.eligibility)
        self.event: simpy.Event | None = None

    def start(self, blocked: bool) -> simpy.Event:
        """The event the asset's process waits on: its value is the step taken on waking (or None)."""
        self.event = self.env.event()
        self.wait(blocked)
        return self.event

    def wait(self, blocked: bool) -> None:
        """File a ticket with dispatch; when work waits out of season (`blocked`), also look again
        at the next month and record the wait when woken."""
        env, dispatch = self.env, self.dispatch
        ticket = Ticket(self)
        for waiting in self.ticket_lists:
            waiting.append(ticket)
        if blocked:
            edges = self.campaign.edges
            k = min(int(np.searchsorted(edges, env.now, side="right")), len(edges) - 1)
            env.timeout(max(edges[k] - env.now, 1.0)).callbacks.append(lambda _, t=ticket: t.woken or dispatch.wake([t]))
        self.idle_from = env.now
        self.blocked = blocked

    def wake(self) -> None:
        """Woken (by `sim.dispatch.Dispatch.wake`): what the asset's loop would do on resuming."""
        now = self.env.now
        if self.blocked:
            self.campaign.recorder.asset_time.append(
                (self.agency_index, self.asset_index, IDLE_SEASON, NO_STAGE, self.idle_from, now)
            )
        if now >= self.last_day:
            self._resume(None)
            return
        task, blocked = self.dispatch.take_on_waking(self.agency_index, self.asset_index, now)
        if task is None:
            self.wait(blocked)
        else:
            self._resume(task)

    def _resume(self, task) -> None:
        """Process the waited event here and now, as SimPy would: it was never scheduled."""
        event, self.event = self.event, None
        event._ok, event._value = True, task
        callbacks, event.callbacks = event.callbacks, None
        for callback in callbacks:
            callback(event)


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
    waiting: np.ndarray  # (months, districts, stages): land waiting for each stage at month ends, ha
    asset_time: np.ndarray  # ASSET_TIME_COLUMNS rows: seasonal idleness, downtime, steps cut by the horizon
    stranded_ha: np.ndarray  # (districts, stages): unreleased land no agency can work at the stage it waits for


def _exposure(rate_per_item_month: float, floor: float, halvings: float, days: float) -> float:
    """Expected incidents per exposure-weighted item over `days`: the rate, times the exposure
    awareness leaves after `halvings` half-lives (it never removes `floor` of it)."""
    awareness = floor + (1.0 - floor) * 0.5**halvings
    return rate_per_item_month * awareness * days / 30.4375


def _draw_incidents(rng: np.random.Generator, lam: np.ndarray, a: float, b: float, killed_share: float, record) -> None:
    """Poisson counts by cell of `lam`, each incident on a uniform day of [a, b), killed with
    `killed_share`: `record(day, killed, *cell)` (a Recorder's `civilian` or `soldier`)."""
    # Float round-off in the running sums can leave -1e-12; exposure is never negative.
    np.clip(lam, 0.0, None, out=lam)
    counts = rng.poisson(lam)
    for cell in zip(*np.nonzero(counts)):
        for _ in range(counts[cell]):
            day = a + rng.random() * (b - a)
            record(day, rng.random() < killed_share, *cell)


class Campaign:
    """The SimPy processes of one replication: assets at work, the zone opening, civilians' and soldiers' exposure."""

    def __init__(self, compiled: Compiled, parcels: Parcels, rngs: dict[str, np.random.Generator]):
        self.compiled = compiled
        self.rng = rngs
        self.env = CountingEnvironment()
        # Per asset type and terrain: cumulative working days (a list, for bisect) and whether each
        # day is workable at all (bytes), so the hot loop touches no numpy scalars.
        self.calendar_lists = [[cal.tolist() for cal in per_terrain] for per_terrain in compiled.calendars]
        workable_days = [
            [(np.diff(cal) > 0).astype(np.uint8).tobytes() for cal in per_terrain] for per_terrain in compiled.calendars
        ]
        self.edges = month_edges(compiled)
        self.recorder = Recorder(len(self.edges) - 1, len(compiled.district_keys), len(STAGES))
        self.land = LandRelease(self.env, compiled, parcels, rngs, workable_days, self.recorder)
        self.parcels = self.land.parcels
        # Each parcel's cell in the rate tables: (hazard, terrain, land use) as one index.
        p = self.parcels
        self.rate_cell = [(hz * len(TERRAINS) + t) * len(LAND_USES) + u for hz, t, u in zip(p.hazard, p.terrain, p.land_use)]
        self.world = parcels
        # Each agency's productivity by stage, and one rate table per (agency, asset type) that
        # its assets share: a dated change refills the tables in place, so an asset's loop reads
        # the new rates from its next step on.
        self.productivity = [agency.productivity for agency in compiled.agencies]
        self.rate_tables: dict[tuple[int, int], list[list[float]]] = {}
        self.civilians_recorded_to = 0.0  # civilian incidents on the days before it are recorded

    def asset_life(self, agency_index: int, asset_index: int, delivered_day: float, withdrawn_day: float):
        """One asset's working life in its agency."""
        env, land = self.env, self.land
        agency, asset = self.compiled.agencies[agency_index], self.compiled.asset_types[asset_index]
        yield env.timeout(max(delivered_day, agency.start_day, 0.0))
        # Bound once: the loop below runs once per task step.
        take, claim, finish, stages = land.dispatch.take, land.claim, land.finish, land.stages
        timeout, step_end = env.timeout, env.step_end
        asset_time = self.recorder.asset_time
        calendars = self.calendar_lists[asset_index]
        terrain, horizon_days = self.parcels.terrain, self.compiled.horizon_days
        cell = self.rate_cell
        rates = self.rate_tables.get((agency_index, asset_index))
        if rates is None:
            rates = self.rate_tables[agency_index, asset_index] = self._rate_table(self.productivity[agency_index], asset)
        task_days, ramp_end_day = asset.task_days, agency.ramp_end_day
        later_pace_day, later_pace_share = agency.later_pace_day, agency.later_pace_share
        # A crew delivered after its agency started is new to the work: it works up to full pace.
        crew_ramp_days, crew_start_share = self.compiled.new_asset_ramp_days, self.compiled.new_asset_start_share
        new_crew = delivered_day > agency.start_day and crew_ramp_days > 0 and crew_start_share < 1.0
        crew_ramp_end_day = delivered_day + crew_ramp_days if new_crew else -1.0
        last_day = min(agency.end_day, withdrawn_day)
        idle = None
        while True:
            t0 = env.now  # the step, if any, starts now: nothing below advances the clock before its timeout
            if t0 >= last_day:
                break
            task, blocked = take(agency_index, asset_index, t0)
            if task is None:
                # Idle until work it may take is queued: it resumes with that step, taken as it
                # wakes, or with None when its working life ended while it was idle.
                if idle is None:
                    idle = IdleAsset(self, agency_index, asset_index, last_day)
                task = yield idle.start(blocked)
                if task is None:
                    break
                t0 = env.now
            parcel, stage_index = task
            stage = stages[stage_index]
            # The asset's rate on this parcel for the whole step (ha per working day).
            ha_per_day = rates[stage_index][cell[parcel]]
            if stage.has_rate_multiplier:
                ha_per_day *= stage.rate_multiplier(parcel)
            if t0 < ramp_end_day:
                # A new organisation works up to its full pace (the rate is fixed for the whole step).
                into_ramp = max(0.0, t0 - agency.start_day) / agency.ramp_days
                ha_per_day *= agency.ramp_start_share + (1.0 - agency.ramp_start_share) * into_ramp
            if t0 < crew_ramp_end_day:
                ha_per_day *= crew_start_share + (1.0 - crew_start_share) * (t0 - delivered_day) / crew_ramp_days
            if t0 >= later_pace_day:
                ha_per_day *= later_pace_share
            area, present = claim(parcel, stage, ha_per_day * task_days)
            working_days = area / ha_per_day
            t1 = finish_day(calendars[terrain[parcel]], t0, working_days)
            if t1 > horizon_days:
                # The step would end past the horizon: the asset is busy on it to the end.
                asset_time.append((agency_index, asset_index, BUSY, stage_index, t0, horizon_days))
                if horizon_days > last_day:
                    asset_time.append((agency_index, asset_index, OVERTIME, NO_STAGE, last_day, horizon_days))
                return
            yield step_end(t0, t1)
            downtime = finish(agency_index, asset, parcel, stage, area, present, t0, t1, working_days)
            if downtime > 0:
                asset_time.append((agency_index, asset_index, DOWN, NO_STAGE, t1, t1 + downtime))
                yield timeout(downtime)
        if env.now > last_day:
            # It stayed past its withdrawal or its agency's end to finish a step (or a repair).
            asset_time.append((agency_index, asset_index, OVERTIME, NO_STAGE, last_day, env.now))

    def _rate_table(self, productivity: tuple[float, ...], asset) -> list[list[float]]:
        """The asset's rate (ha per working day) by stage and parcel cell (`rate_cell`): the asset's
        rate for the stage x terrain factor x land-use factor x the agency's `productivity` (if it
        scales this asset type), x the battle-area factor on battle areas for the stages it applies to; multiplied in that order,
        as the step would, so the figures are the same to the last bit."""
        table = []
        if not asset.scaled_by_agency_productivity:
            productivity = (1.0,) * len(productivity)
        for k, stage in enumerate(self.land.stages):
            row = []
            for hz in range(len(HAZARD_TYPES)):
                for t in range(len(TERRAINS)):
                    for u in range(len(LAND_USES)):
                        rate = asset.rate_ha_per_day[k] * asset.terrain_factor[t] * asset.land_use_factor[u] * productivity[k]
                        if stage.battle_area_rate and hz == BATTLE_AREA:
                            rate *= asset.battle_area_rate_factor
                        row.append(rate)
            table.append(row)
        return table

    def dated_changes(self):
        """Apply each dated change on its date (compiled.changes, in date order)."""
        changes = self.compiled.changes
        # Every date is scheduled now, before any asset's first event: at its date a change
        # applies before any step that starts or ends that day.
        dates = [self.env.timeout(change.day) for change in changes]
        for date, change in zip(dates, changes):
            yield date
            self.apply_change(change)

    def apply_change(self, change) -> None:
        """Swap in the settings of a dated change. Steps under way keep the rate they started
        with; survey shares apply to steps finishing from now; civilian exposure reads its
        settings by date (`civilian_exposure`)."""
        self.land.apply_survey_practice(change)
        dispatch = self.land.dispatch
        for g, productivity in enumerate(change.productivity):
            if productivity != self.productivity[g]:
                self.productivity[g] = productivity
                for (agency_index, asset_index), table in self.rate_tables.items():
                    if agency_index == g:
                        table[:] = self._rate_table(productivity, self.compiled.asset_types[asset_index])
            dispatch.battle_area_share[g] = change.battle_area_share_of_work[g]
            dispatch.change_policy(g, change.policy_rank[g])

    def open_zone(self):
        """National agencies enter the former peacekeeping zone, at once or part by part."""
        for day, parcels in self.land.dispatch.zone_openings():
            yield self.env.timeout(max(0.0, day - self.env.now))
            self.land.dispatch.open_zone(parcels)

    def civilian_exposure(self):
        """Each month, civilian incidents drawn from exposure to hidden and residual items, and
        soldiers' from exposure to hidden items. A month in which a dated change of the incident
        settings falls is split at its date, each part drawn with the settings in force then, so
        the change rewrites no day before it. Soldiers' settings hold for the whole run (a dated
        change may not set them), so theirs are drawn once a month with the starting settings."""
        env, compiled, inc = self.env, self.compiled, self.compiled.incidents
        districts = self.land.districts
        rng, soldiers_rng = self.rng["civilians"], self.rng["soldiers"]
        returns_days = np.array([(r.date - compiled.start_date).days for r in inc.returns], dtype=float)
        returns_share = np.array([r.share for r in inc.returns])
        weight = compiled.district_returns_weight
        schedule = self._incident_schedule()
        from_days = [entry[0] for entry in schedule]
        for m in range(len(self.edges) - 1):
            lo, hi = self.edges[m], self.edges[m + 1]
            yield env.timeout(hi - env.now)
            cuts = [lo, *(day for day in from_days if lo < day < hi), hi]
            for a, b in zip(cuts, cuts[1:]):
                from_day, inc, halvings = schedule[bisect_right(from_days, a) - 1]
                mid = 0.5 * (a + b)
                activity = (inc.baseline_activity + np.interp(mid, returns_days, returns_share)) * weight
                # Risk education halves the removable exposure every half-life: the halvings so far
                # under earlier settings, then at the current half-life (`_incident_schedule`).
                elapsed = halvings + (mid - from_day) / 365.25 / inc.awareness_half_life_years
                scale = _exposure(inc.civilian_exposure_rate_per_item_month, inc.awareness_floor, elapsed, b - a)
                loc_factor = np.array([1.0, inc.former_loc_exposure_factor])
                lam = np.stack(
                    [
                        np.array(districts.hazard_unreleased),
                        np.array(districts.hazard_released) * inc.released_land_exposure_factor,
                    ],
                    axis=-1,
                ) * (activity[:, None, None] * loc_factor[None, :, None] * scale)
                _draw_incidents(rng, lam, a, b, inc.civilian_killed_share, self.recorder.civilian)
            if compiled.incidents.soldier_exposure_rate_per_item_month > 0:
                self._soldiers(soldiers_rng, compiled.incidents, lo, hi)
            self.recorder.snapshot(m, districts.stocks(), districts.waiting_ha)
            self.civilians_recorded_to = hi

    def _soldiers(self, rng: np.random.Generator, inc, a: float, b: float) -> None:
        """Soldiers' incidents over days [a, b): troops everywhere from the start, exposed to the
        hidden items of unreleased land (weighted as civilians' are, and as much more near the
        former line of contact, with no returns curve), their removable exposure halving every
        soldier_awareness_half_life_years down to their floor."""
        elapsed = 0.5 * (a + b) / 365.25 / inc.soldier_awareness_half_life_years
        scale = _exposure(inc.soldier_exposure_rate_per_item_month, inc.soldier_awareness_floor, elapsed, b - a)
        loc_factor = np.array([1.0, inc.former_loc_exposure_factor])
        lam = np.array(self.land.districts.hazard_unreleased) * loc_factor[None, :] * scale
        _draw_incidents(rng, lam, a, b, inc.soldier_killed_share, self.recorder.soldier)

    def _incident_schedule(self) -> list[tuple[float, object, float]]:
        """The incident settings by date: (from day, settings, awareness half-lives elapsed by
        that day). Only changes that alter them count, so a change of anything else leaves the
        civilians' draws as they were."""
        inc = self.compiled.incidents
        schedule = [(0.0, inc, 0.0)]
        for change in self.compiled.changes:
            from_day, before, halvings = schedule[-1]
            if change.incidents == before:
                continue
            halvings += (change.day - from_day) / 365.25 / before.awareness_half_life_years
            if change.day <= from_day:  # the same day (or the start): it replaces the settings there
                schedule[-1] = (from_day, change.incidents, schedule[-1][2])
            else:
                schedule.append((change.day, change.incidents, halvings))
        return schedule

    def parcel_stocks(self) -> np.ndarray:
        """District stocks recomputed from the parcels' own accounts (suspected, confirmed, released ha)."""
        return self.land.parcel_stocks()

    def run(self) -> ReplicationResult:
        self.start()
        return self.finish()

    def start(self) -> None:
        """Start every process, at day 0 (`run` does this and `finish`)."""
        env = self.env
        if self.compiled.changes:
            env.process(self.dated_changes())  # first: its dates go before any other event of the same day
        for g, agency in enumerate(self.compiled.agencies):
            for delivery in agency.deliveries:
                for _ in range(delivery.count):
                    env.process(self.asset_life(g, delivery.asset_type, delivery.day, delivery.withdrawn_day))
        env.process(self.open_zone())
        env.process(self.civilian_exposure())

    def advance(self, day: float, *, counted: bool = True) -> None:
        """Simulate up to `day` (before the horizon), to look at the past before going on with
        `finish`: the events are the same, in the same order, as in one `run`. The stop counts as
        an event processed, as it did when the past was looked at once, unless not `counted` (a
        look on the way), so a replication counts the same events however often it is looked at."""
        self.env.run(until=min(day, self.compiled.horizon_days))
        if not counted:
            self.env.uncount_stop()

    def past(self) -> tuple[np.ndarray, np.ndarray]:
        """The task-step log and incidents recorded so far (what `sim.metrics.target_values` reads)."""
        return self.recorder.log_array(), self.recorder.incident_array()

    def final_before(self) -> float:
        """The day before which the record so far is final: every task step still to be logged
        (with its deminers' accidents) starts on or after it, whether under way or to start from
        now on, and the civilian incidents of the days before it are recorded (each month's at the
        month's end). What `sim.conditioning.judge_past` judges a figure by."""
        return min(self.env.now, self.env.steps_under_way_from(), self.civilians_recorded_to)

    def finish(self) -> ReplicationResult:
        """Simulate to the horizon (from wherever `advance` stopped) and return the replication's arrays."""
        env = self.env
        # A hair past the horizon so the last month-end snapshot (scheduled at the horizon) runs.
        env.run(until=self.compiled.horizon_days + 1e-6)
        p = self.world
        n_d = len(self.compiled.district_keys)
        result = ReplicationResult(
            log=self.recorder.log_array(),
            incidents=self.recorder.incident_array(),
            stocks=self.recorder.stocks,
            initial_area_ha=np.bincount(p.district, weights=p.area_ha, minlength=n_d),
            initial_items=np.stack(
                [np.bincount(p.district, weights=p.items[:, k], minlength=n_d) for k in range(p.items.shape[1])], axis=1
            ),
            handover_day=np.array(self.parcels.handover_day),
            parcel_district=p.district,
            events_processed=env.events_processed,
            waiting=self.recorder.waiting,
            asset_time=self.recorder.asset_time_array(),
            stranded_ha=self.land.stranded_ha(),
        )
        # The rows are in the arrays now. Dropped here, they are freed at once; left to the cyclic
        # collector with the rest of the campaign, its first pass would walk every one (0.05 s).
        self.recorder.drop_rows()
        return result
