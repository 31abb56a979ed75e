"""Dispatch: which task step an asset takes next, and which idle assets new work wakes.

Each agency keeps (or shares with agencies of the same reach and policy) a priority queue of
parcels per stage, per class of asset that may work them (eligibility: the terrains and land uses
an asset type can enter), per hazard type and per terrain. Priority: land use by the agency's
policy, then the district's return wave (for the share of land that follows it,
`return_wave_share`; the rest goes with the first wave), then high threat first, then a random
order that interleaves parcels of equal priority. A share of the high-threat land
(`high_threat_first_share`) comes before all of that, whatever its land use; among itself it
keeps the return-wave order. Terrain is kept
apart so that an asset passes over land it cannot work today (mountain winter) without losing
its place in the queue. Entries go stale when their work has all been claimed; they are popped
when met.
"""

from __future__ import annotations

import heapq
from heapq import heappop, heappush

import numpy as np
import simpy

from .assets import Compiled
from .config import TERRAINS
from .state import ParcelState
from .world import BATTLE_AREA, MINEFIELD, Parcels

HAZARD_ORDERS = {False: (MINEFIELD, BATTLE_AREA), True: (BATTLE_AREA, MINEFIELD)}


class Ticket:
    """One wait of an idle asset (`sim.model.IdleAsset`), filed under every queue that could give it
    work: the first new work (or the month's end, when work waits out of season) wakes it, once."""

    __slots__ = ("idler", "woken")

    def __init__(self, idler):
        self.idler = idler
        self.woken = False


def _shared_tuples(masks: list[np.ndarray], n: int) -> list[tuple[int, ...]]:
    """For each of n parcels, the indices k (ascending) of the masks true there, as one shared tuple per distinct set."""
    bits = sum((mask.astype(np.int64) << k for k, mask in enumerate(masks)), np.zeros(n, dtype=np.int64))
    by_bits = {b: tuple(k for k in range(len(masks)) if b >> k & 1) for b in np.unique(bits).tolist()}
    return [by_bits[b] for b in bits.tolist()]


def zone_open_days(compiled: Compiled, district: np.ndarray, rng: np.random.Generator) -> list[float]:
    """The day each parcel opens to national agencies if it lies in the former peacekeeping zone:
    its district's opening day, or, where access came gradually (the peacekeepers left post by
    post), a uniform day from then up to `zone_fully_open_day`, drawn from a stream of its own."""
    first = np.asarray(compiled.district_zone_opens_day, dtype=float)[district]
    if compiled.zone_fully_open_day > compiled.zone_opens_day:
        last = np.maximum(first, compiled.zone_fully_open_day)
        return (first + rng.random(len(first)) * (last - first)).tolist()
    return first.tolist()


class Dispatch:
    """Work queues of every agency and the tickets of the idle assets waiting on them."""

    def __init__(
        self,
        env: simpy.Environment,
        compiled: Compiled,
        parcels: Parcels,
        state: ParcelState,
        rng: np.random.Generator,
        workable_days: list,
        n_stages: int,
        open_from_start: tuple[int, ...],
        zone_open_day: list[float],
    ):
        self.env = env
        self.zone_open_day = zone_open_day  # per parcel: when national agencies may enter (zone parcels)
        self.compiled = compiled
        self.state = state
        self.rng = rng
        self.workable_days = workable_days  # [asset type][terrain] bytes: 1 where the day is workable
        self.peacekeeping = [agency.peacekeeping for agency in compiled.agencies]
        # Looked up once per take: what each asset type works, each agency's battle-area share.
        self._asset_work = [(asset.stages, asset.eligibility) for asset in compiled.asset_types]
        # Read per take; a dated change replaces an agency's entry.
        self.battle_area_share = [agency.battle_area_share_of_work for agency in compiled.agencies]
        # The dispatch stream's uniforms, drawn in blocks (the same sequence as one by one) and
        # read through the block's iterator: one call per take.
        self._next_uniform = iter(()).__next__
        self._found_nothing: dict[tuple[int, int], bool] = {}  # (agency, asset type): blocked (see `take_on_waking`)
        self._plans = [[None] * len(compiled.asset_types) for _ in compiled.agencies]  # built on first take
        self._last_day = len(workable_days[0][0]) - 1 if workable_days and workable_days[0] else 0
        n = len(parcels)
        n_classes = len(compiled.eligibility_classes)
        # Agencies that reach the same districts (and zone) under the same policy would keep equal
        # queues: they share one (each parcel pushed, and later popped as stale, once, not once per
        # agency). owner[g] is the first agency of g's share; only it pushes (see `_push`).
        self.owner: list[int] = []
        shares: dict[tuple, int] = {}
        for g, agency in enumerate(compiled.agencies):
            self.owner.append(shares.setdefault((agency.policy_rank, agency.districts, agency.peacekeeping), g))
        self.heaps = [
            [[[[[] for _ in TERRAINS] for _ in (MINEFIELD, BATTLE_AREA)] for _ in range(n_classes)] for _ in range(n_stages)]
            if self.owner[g] == g
            else None
            for g in range(len(compiled.agencies))
        ]
        for g, owner in enumerate(self.owner):
            self.heaps[g] = self.heaps[owner]
        self._queue_by_class()
        # Idle assets' tickets are filed under each (stage, eligibility class) they could work, so
        # new work wakes only the assets that can take it: idle[agency][stage][class] is a list.
        self.idle = [[[[] for _ in range(n_classes)] for _ in range(n_stages)] for _ in compiled.agencies]
        # Queue entries are plain ints, priority key * n + parcel: they order exactly as the pairs
        # (key, parcel) would (0 <= parcel < n), compare faster, and give the parcel back as code % n.
        self.n = n
        self._world = parcels
        self.policy_rank = [agency.policy_rank for agency in compiled.agencies]
        # Agencies of one policy share its codes (a list never changed in place).
        by_policy = {rank: self._queue_codes(rank) for rank in dict.fromkeys(self.policy_rank)}
        self.codes = [by_policy[rank] for rank in self.policy_rank]
        # The eligibility classes each parcel belongs to (the classes of asset that may work it).
        in_class = [
            (np.asarray(terrain_mask)[parcels.terrain] > 0) & (np.asarray(land_use_mask)[parcels.land_use] > 0)
            for terrain_mask, land_use_mask in compiled.eligibility_classes
        ]
        # Parcels of the same classes (and of the same agencies, below) share one tuple: a few
        # objects, not one list per parcel to build and, at the end, for the collector to walk.
        self.parcel_classes: list[tuple[int, ...]] = _shared_tuples(in_class, n)
        # The queues each agency can ever fill, as (class, hazard, terrain): `take` walks only
        # these (most are empty for good: an agency reaches a few districts, hence terrains).
        self.reachable: list[set[tuple[int, int, int]]] = [set() for _ in compiled.agencies]
        closed_zone = parcels.in_peacekeeping_zone & (np.asarray(zone_open_day) > env.now)
        cell = parcels.hazard.astype(np.int64) * len(TERRAINS) + parcels.terrain  # (hazard, terrain) as one index
        reaches = []
        for agency in compiled.agencies:
            in_districts = np.isin(parcels.district, list(agency.districts))
            reaches.append(in_districts & (parcels.in_peacekeeping_zone if agency.peacekeeping else True))
        # The agencies whose districts (and, for a peacekeeping agency, zone) include each parcel.
        self.candidates: list[tuple[int, ...]] = _shared_tuples(reaches, n)
        kinds: dict[tuple, int] = {}
        self.parcel_kind = [kinds.setdefault(pair, len(kinds)) for pair in zip(self.candidates, self.parcel_classes)]
        self._kept_targets: list[list] = [[None] * len(kinds) for _ in range(n_stages)]  # see `offer`
        for g, (agency, reach) in enumerate(zip(compiled.agencies, reaches)):
            for cls, ok in enumerate(in_class):
                for c in np.unique(cell[reach & ok]).tolist():
                    self.reachable[g].add((cls, *divmod(c, len(TERRAINS))))
            # Queue the work open from the start where the agency may go now: national agencies
            # enter the former peacekeeping zone only once it opens to them (`open_zone`).
            if not agency.peacekeeping:
                reach &= ~closed_zone
            if self.owner[g] != g:
                continue  # its queues are its owner's, filled already
            # Each queue filled at once, sorted (a sorted list is a heap).
            codes = np.asarray(self.codes[g], dtype=np.int64)
            for cls, ok in enumerate(in_class):
                for c in np.unique(cell[reach & ok]).tolist():
                    hz, terrain = divmod(c, len(TERRAINS))
                    queued = np.sort(codes[reach & ok & (cell == c)]).tolist()
                    for stage in open_from_start:
                        if self.queues[g][stage][cls] is not None:
                            self.queues[g][stage][cls][hz][terrain][:] = queued

    def _queue_by_class(self) -> None:
        """queues[agency][stage][class]: the agency's queues of that stage and class of asset by hazard
        and terrain, or None where no asset type its share of queues serves works them (nothing
        is pushed there: no `take` would ever read it, and no idle asset waits on it)."""
        n_stages, n_classes = len(self.heaps[0]), len(self.compiled.eligibility_classes)
        worked = [[set() for _ in range(n_stages)] for _ in self.owner]
        for g, agency in enumerate(self.compiled.agencies):
            for delivery in agency.deliveries:
                stages, eligibility = self._asset_work[delivery.asset_type]
                for stage in stages:
                    worked[self.owner[g]][stage].add(eligibility)
        self.queues = [
            [
                [per_class[cls] if cls in worked[self.owner[g]][stage] else None for cls in range(n_classes)]
                for stage, per_class in enumerate(self.heaps[g])
            ]
            for g in range(len(self.owner))
        ]

    def _queue_codes(self, policy_rank: tuple[int, ...]) -> list[int]:
        """Each parcel's queue entry under a policy (see `codes`)."""
        parcels, n = self._world, self.n
        rank = np.asarray(policy_rank, dtype=np.int64)[parcels.land_use]
        wave = self.compiled.district_priority[parcels.district]
        if parcels.follows_wave is not None:
            # Land outside the wave order is queued with the first wave.
            wave = np.where(parcels.follows_wave, wave, self.compiled.district_priority.min())
        if parcels.goes_first is not None:
            # High-threat land taken before everything else (`high_threat_first_share`) ranks
            # ahead of every land use; the wave still orders it among itself.
            rank = np.where(parcels.goes_first, 0, rank + 1)
        key = ((rank * 10 + wave) * 2 + parcels.threat) * n + parcels.order
        return (key.astype(np.int64) * n + np.arange(n, dtype=np.int64)).tolist()

    def change_policy(self, agency: int, policy_rank: tuple[int, ...]) -> None:
        """The agency works through land uses in a new order from now on: every entry of its queues
        is re-keyed (the same parcels, stale entries included, which are popped as before) and each
        queue re-heaped in place, so the plans that hold the queues see the new order."""
        if policy_rank == self.policy_rank[agency]:
            return
        self.policy_rank[agency] = policy_rank
        codes = self.codes[agency] = self._queue_codes(policy_rank)
        n = self.n
        if self.owner.count(self.owner[agency]) > 1:
            # It shared its queues: it leaves with a copy of them (its plans are rebuilt on them),
            # the others keep theirs.
            owner = self.owner[agency]
            others = [g for g in range(len(self.owner)) if self.owner[g] == owner and g != agency]
            for g in others:
                self.owner[g] = others[0]
            self.owner[agency] = agency
            self.heaps[agency] = [
                [[[list(heap) for heap in per_terrain] for per_terrain in per_hazard] for per_hazard in per_class]
                for per_class in self.heaps[agency]
            ]
            self._plans[agency] = [None] * len(self.compiled.asset_types)
            self._queue_by_class()
        self._kept_targets = [[None] * len(per_stage) for per_stage in self._kept_targets]  # they hold codes and queues
        for per_class in self.heaps[agency]:
            for per_hazard in per_class:
                for per_terrain in per_hazard:
                    for heap in per_terrain:
                        if heap:
                            heap[:] = [codes[code % n] for code in heap]
                            heapq.heapify(heap)

    def can_work(self, stage: int, i: int) -> bool:
        """Some agency that may reach parcel `i` has (or will receive) an asset type that works
        `stage` on its terrain and land use."""
        classes = self.parcel_classes[i]
        for g in self.candidates[i]:
            for delivery in self.compiled.agencies[g].deliveries:
                stages, eligibility = self._asset_work[delivery.asset_type]
                if stage in stages and eligibility in classes:
                    return True
        return False

    def _push_one(self, agency: int, stage: int, i: int) -> None:
        """Queue work of `stage` on parcel `i` for the agency, and wake its idle assets that could take it."""
        self._push(stage, i, (agency,))

    def _targets(self, stage: int, agencies, classes: tuple[int, ...]) -> tuple[tuple, tuple]:
        """Where work of `stage` on a parcel of `classes` goes, for `agencies` in turn: the queues
        to push it into, as (the owner's codes, its queues of a class by hazard and terrain), and
        the idle assets' lists of tickets to look at."""
        pushes, watches = [], []
        for agency in agencies:
            by_class = self.queues[agency][stage]
            for cls in classes:
                if by_class[cls] is None:
                    continue  # nobody works it (see `_queue_by_class`)
                if self.owner[agency] == agency:  # the others of a share come with their owner
                    pushes.append((self.codes[agency], by_class[cls]))
                watches.append(self.idle[agency][stage][cls])
        return tuple(pushes), tuple(watches)

    def _push(self, stage: int, i: int, agencies, targets: tuple[tuple, tuple] | None = None) -> None:
        """`_push_one` for each of `agencies` in turn (or to `targets`, see `_targets`, made for them)."""
        pushes, watches = targets or self._targets(stage, agencies, self.parcel_classes[i])
        hz, terrain = self.state.hazard[i], self.state.terrain[i]
        for codes, per_hazard in pushes:
            heappush(per_hazard[hz][terrain], codes[i])
        woken = None
        for waiting in watches:
            if waiting:
                for ticket in waiting:
                    if not ticket.woken:
                        ticket.woken = True
                        if woken is None:
                            woken = []
                        woken.append(ticket)
                waiting.clear()  # in place: idle assets hold their lists (`ticket_lists`)
        if woken is not None:
            self.wake(woken)

    def offer(self, stage: int, i: int) -> None:
        """New work of `stage` on parcel `i`: queue it for every agency that may reach it now."""
        if self.state.in_peacekeeping_zone[i] and self.env.now < self.zone_open_day[i]:
            # The parcel's part of the zone is still closed to national agencies.
            self._push(stage, i, [agency for agency in self.candidates[i] if self.peacekeeping[agency]])
            return
        # Parcels of the same agencies and classes go to the same places: found once, kept.
        kind = self.parcel_kind[i]
        targets = self._kept_targets[stage][kind]
        if targets is None:
            targets = self._kept_targets[stage][kind] = self._targets(stage, self.candidates[i], self.parcel_classes[i])
        self._push(stage, i, None, targets)

    def zone_openings(self) -> list[tuple[float, list[int]]]:
        """The days the former peacekeeping zone's parcels open to national agencies, in order, each
        with its parcels (in index order). Spread over whole days when access comes gradually: a few
        hundred events, not one per parcel."""
        zone = np.flatnonzero(self.state.in_peacekeeping_zone)
        if not len(zone):  # still one opening, empty: the run's events stay as they were
            return [(self.compiled.zone_opens_day, [])]
        days = np.asarray(self.zone_open_day, dtype=float)[zone]
        if self.compiled.zone_fully_open_day > self.compiled.zone_opens_day:
            days = np.ceil(days)
        order = np.argsort(days, kind="stable")
        cuts = np.flatnonzero(np.diff(days[order])) + 1
        return [(float(days[group[0]]), zone[group].tolist()) for group in np.split(order, cuts) if len(group)]

    def open_zone(self, in_zone: list[int]) -> None:
        """Parcels of the former peacekeeping zone open: national agencies queue the work waiting there."""
        remaining = self.state.remaining_ha
        for g, agency in enumerate(self.compiled.agencies):
            if agency.peacekeeping:
                continue
            for i in in_zone:
                if g in self.candidates[i]:
                    for stage in range(len(remaining)):
                        if remaining[stage][i] > 0:
                            self._push_one(g, stage, i)

    def ticket_lists(self, agency: int, stages: tuple[int, ...], eligibility: int) -> tuple[list[Ticket], ...]:
        """Where an idle asset files its tickets: it is woken when work of one of `stages` for
        this class of asset is queued. (The lists are emptied in place, never replaced.)"""
        return tuple(self.idle[agency][stage][eligibility] for stage in stages)

    def wake(self, tickets: list[Ticket]) -> None:
        """Wake idle assets, in order, at one SimPy event (where each had its own event before:
        nothing else is scheduled between them, so they run at the same place in the same order)."""
        for ticket in tickets:
            ticket.woken = True
        event = self.env.event()
        event.callbacks.append(self._wake_all)
        event.succeed(tickets)

    def _wake_all(self, event: simpy.Event) -> None:
        self._found_nothing.clear()
        for ticket in event.value:
            ticket.idler.wake()

    def take_on_waking(self, agency: int, asset_index: int, now: float):
        """`take` for an asset woken with others at one event (`_wake_all`). Between their takes
        nothing is queued (a take and the claim that follows only remove work), so once an asset
        found nothing, the next of the same agency and type would walk the same queues to the
        same answer: it only draws its uniform, as `take` would. (Most wake-ups find nothing: many
        assets wait on the same queues and the first takes the work.)"""
        blocked = self._found_nothing.get((agency, asset_index))
        if blocked is None:
            task, blocked = self.take(agency, asset_index, now)
            if task is None:
                self._found_nothing[agency, asset_index] = blocked
            return task, blocked
        if self.battle_area_share[agency] is not None:
            self._dispatch_uniform()
        return None, blocked

    def _dispatch_uniform(self) -> float:
        """The next uniform of the dispatch stream (see `_next_uniform`)."""
        try:
            return self._next_uniform()
        except StopIteration:
            self._next_uniform = iter(self.rng.random(4096).tolist()).__next__
            return self._next_uniform()

    def _plan(self, agency: int, asset_index: int) -> tuple:
        """What `take` walks for an asset type of an agency: per stage in preference order, the
        stage, its remaining work by parcel, per hazard type its (queue, workable days) by terrain
        (terrains the asset cannot enter, and queues the agency never fills, left out: they stay
        empty), and all those queues together (to pass over a stage with nothing queued at once)."""
        stages, eligibility = self._asset_work[asset_index]
        days = self.workable_days[asset_index]
        enters = self.compiled.eligibility_classes[eligibility][0]
        reachable = self.reachable[agency]
        plan = []
        for stage in stages:
            per_hazard = tuple(
                tuple(
                    (heap, days[t]) for t, heap in enumerate(per_terrain) if enters[t] > 0 and (eligibility, hz, t) in reachable
                )
                for hz, per_terrain in enumerate(self.heaps[agency][stage][eligibility])
            )
            queues = tuple(heap for per_terrain in per_hazard for heap, _ in per_terrain)
            plan.append((stage, self.state.remaining_ha[stage], per_hazard, queues))
        return tuple(plan)

    def take(self, agency: int, asset_index: int, now: float):
        """The best task step for an asset at time `now`: ((parcel, stage) or None, blocked), where
        `blocked` says work is waiting on land the asset cannot work today (mountain winter).

        The hot loop of dispatch: heaps are peeked inline, stale entries popped as met."""
        plan = self._plans[agency][asset_index]
        if plan is None:
            plan = self._plans[agency][asset_index] = self._plan(agency, asset_index)
        share = self.battle_area_share[agency]
        if share is None:
            hazard_order = HAZARD_ORDERS[False]
        else:
            try:
                u = self._next_uniform()
            except StopIteration:  # a new block
                u = self._dispatch_uniform()
            hazard_order = HAZARD_ORDERS[u < share]
        n = self.n
        day = int(now)
        if day > self._last_day:
            day = self._last_day
        blocked = False
        for stage, remaining, per_hazard, queues in plan:
            if not any(queues):
                continue  # all of the stage's queues empty (most often): one look at them in C
            best = None
            for h in hazard_order:
                for heap, workable in per_hazard[h]:
                    if not heap:
                        continue
                    top = heap[0]
                    if remaining[top % n] <= 0:
                        heappop(heap)  # stale: all of this stage already claimed
                        while heap and remaining[heap[0] % n] <= 0:
                            heappop(heap)
                        if not heap:
                            continue
                        top = heap[0]
                    if not workable[day]:
                        blocked = True
                    elif best is None or top < best:
                        best = top
                if best is not None and share is not None:
                    return (best % n, stage), False
            if best is not None:
                return (best % n, stage), False
        return None, blocked
