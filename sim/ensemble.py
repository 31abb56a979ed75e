"""Running replications: seeds, executors, and assembling the results of a whole run.

Randomness flows from one SeedSequence per run, spawned once per replication, and from named
streams within a replication (`sim.model.make_streams`). Replication i gets the same numbers
whichever worker runs it, however many workers there are, and whether it runs in a local process
pool or on a Dask cluster.

Each replication is reduced in its worker to its tables, a released-area path (months x
districts) and a few scalars; the run keeps the small parts and either keeps the tables in memory
(the Python API) or hands them to a sink that writes them to disk and drops them (the CLI), so a
run's memory does not grow with its tables.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd

from .assets import Compiled, compile_scenario
from .bands import BAND, Band
from .conditioning import Tally, judge_past, past_values
from .config import ScenarioConfig
from .costs import Fleet, cost_summary, published_check, spend_table, spend_totals
from .errors import UserError
from .metrics import (
    Context,
    PerYear,
    completion_table,
    per_year_table,
    released_bands,
    replication_summary,
    replications_table,
    summary,
    targets_table,
)
from .model import Campaign, ReplicationResult, make_streams
from .seeds import Target, load_cost_evidence, load_targets
from .uncertainty import Uncertainty, describe
from .utilisation import YearlyUse, use_by_year_tables
from .world import Inventory, draw_truth, estimated_parcels, generate_inventory, read_inventory

TABLES = ("monthly", "districts", "incidents", "utilisation")
CATEGORICAL = ("district", "agency", "victim", "outcome", "asset_type")


@dataclass
class RunResult:
    """What a run produced. The three big tables are None when they were streamed to a results
    folder instead of kept in memory."""

    config: ScenarioConfig
    seed: int
    replications: int
    targets: pd.DataFrame
    completion: pd.DataFrame
    per_replication: pd.DataFrame
    per_year: pd.DataFrame
    released: pd.DataFrame  # band (low, median, high) of released area by month and district
    summary: dict
    events_processed: int
    monthly: pd.DataFrame | None = None
    districts: pd.DataFrame | None = None
    incidents: pd.DataFrame | None = None
    utilisation: pd.DataFrame | None = None  # asset-days by state, month, agency, asset type (sim.utilisation)
    use_by_year: pd.DataFrame | None = None  # asset-days by year, asset type and state, mean over replications
    waiting_by_year: pd.DataFrame | None = None  # land waiting per stage at each year end, mean over replications
    spend_per_year: pd.DataFrame | None = None  # USD per replication, year, agency and asset type (sim.costs)
    published_check: pd.DataFrame | None = None  # modelled spend against the published national totals (sim.costs)
    band: Band = BAND  # the quantiles of every band in targets, released and summary
    uncertainty: Uncertainty | None = None  # the inputs drawn per replication (None: replication noise only)
    # A conditioned run's verdict of each attempt it decided, by attempt number (sim.verdicts keeps them)
    verdicts: dict[int, dict] | None = None


class ReplicationSeeds(Sequence):
    """The SeedSequence of each replication, made when asked for: child i of SeedSequence(seed),
    exactly what `SeedSequence(seed).spawn(n)[i]` gives, without spawning all n up front."""

    def __init__(self, seed: int, replications: int):
        self.seed, self.replications = seed, replications

    def __len__(self) -> int:
        return self.replications

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.replications))]
        if not -self.replications <= index < self.replications:
            raise IndexError(index)
        return np.random.SeedSequence(self.seed, spawn_key=(index % self.replications,))


def replication_seeds(seed: int, replications: int) -> ReplicationSeeds:
    return ReplicationSeeds(seed, replications)


# How big a run may be without --force. One replication holds about 3 KB per parcel on top of
# ~160 MB (measured: the baseline's 12,507 parcels peak at 265 MB, 4x its area at 385 MB), so
# 400,000 parcels is ~1.4 GB in every worker process.
MAX_PARCELS = 400_000
BASELINE_PARCELS = 12_500
_BASE_MB, _KB_PER_PARCEL = 160, 3


def estimated_memory_mb(parcels: int) -> float:
    """Peak memory of one replication (one worker process), MB."""
    return _BASE_MB + parcels * _KB_PER_PARCEL / 1024


def check_run_size(config: ScenarioConfig, inventory: Inventory | None = None, *, force: bool = False) -> int:
    """The number of parcels a replication of `config` holds; an error when it is far beyond a
    usual run (more than MAX_PARCELS) and not forced."""
    parcels = len(inventory) if inventory is not None else estimated_parcels(config)
    if parcels > MAX_PARCELS and not force:
        raise UserError(
            f"this run would hold about {parcels:,} parcels (the baseline ~{BASELINE_PARCELS:,}) and need about "
            f"{estimated_memory_mb(parcels) / 1024:,.1f} GB per worker; above {MAX_PARCELS:,} a run is refused: "
            "lower parcels.area_scale or raise parcels.mean_parcel_area_ha, or give --force to run it anyway"
        )
    return parcels


def simulate(
    compiled: Compiled, cfg: ScenarioConfig, seed_seq: np.random.SeedSequence, inventory: Inventory | None = None
) -> ReplicationResult:
    """One replication: draw the world's truth from the replication's streams, then run the campaign."""
    with _cyclic_gc_paused():
        return _campaign(compiled, cfg, seed_seq, inventory).run()


def _campaign(compiled: Compiled, cfg: ScenarioConfig, seed_seq: np.random.SeedSequence, inventory: Inventory | None):
    rngs = make_streams(seed_seq)
    records = inventory if inventory is not None else generate_inventory(cfg, rngs["layout"])
    parcels = draw_truth(cfg, records, rngs)
    return Campaign(compiled, parcels, rngs)


def simulate_past(
    cfg: ScenarioConfig,
    seed_seq: np.random.SeedSequence,
    targets: tuple[Target, ...],
    day: float,
    inventory: Inventory | None = None,
) -> dict[str, float]:
    """The figures `targets` of one replication of `cfg`, simulated up to `day` only."""
    cfg, compiled, ctx = _Prepared.get(cfg.model_dump_json(), tuple(targets))
    with _cyclic_gc_paused():
        campaign = _campaign(compiled, cfg, seed_seq, inventory)
        campaign.start()
        campaign.advance(day)
        return past_values(ctx, *campaign.past())


@contextmanager
def _cyclic_gc_paused():
    """No cyclic garbage collection during a replication: it allocates hundreds of thousands of
    lists and tuples that live to its end, which the collector would scan again and again (about
    4 % of a replication). Reference counting still frees everything else; the collector resumes
    (and collects) afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Prepared:
    """A scenario made ready to simulate in a worker: validated, compiled, with its table context.
    Workers keep the last one, so a run ships its config with each task but compiles it once."""

    cache: dict = {}

    @classmethod
    def get(cls, cfg_json: str, targets: tuple[Target, ...]):
        key = (cfg_json, targets)
        if key not in cls.cache:
            cfg = ScenarioConfig.model_validate_json(cfg_json)
            compiled = compile_scenario(cfg)
            if len(cls.cache) >= 3:  # the run's scenario, a draw of it and of the history it is conditioned on
                cls.cache.pop(next(iter(cls.cache)))
            cls.cache[key] = (cfg, compiled, Context.build(cfg, compiled, targets))
        else:  # the least recently used goes first: not the run's scenario, asked for by every attempt
            cls.cache[key] = cls.cache.pop(key)
        return cls.cache[key]


def replication_task(
    cfg_json: str,
    targets: tuple[Target, ...],
    inventory: Inventory | None,
    index: int,
    seed_seq: np.random.SeedSequence,
    uncertainty: Uncertainty | None = None,
    keep_tables: bool = True,
) -> dict:
    """Run replication `index` and reduce it. A plain function of picklable arguments, so any
    executor (a process pool, a Dask cluster) can run it. With `uncertainty`, the replication
    first draws its uncertain inputs from its own seed and runs with them (`scalars["drawn"]`);
    without `keep_tables` only the scalars and the released-area path come back."""
    drawn = None
    if uncertainty is not None:
        base = _Prepared.get(cfg_json, targets)[0]
        drawn_cfg, drawn = uncertainty.config(base, seed_seq)
        cfg_json = drawn_cfg.model_dump_json()
    cfg, compiled, ctx = _Prepared.get(cfg_json, targets)
    result = simulate(compiled, cfg, seed_seq, inventory)
    output = replication_summary(ctx, result, index)
    if drawn is not None:
        output["scalars"]["drawn"] = drawn
    if not keep_tables:
        output.pop("tables")
    return output


def attempt_task(
    cfg_json: str,
    targets: tuple[Target, ...],
    inventory: Inventory | None,
    index: int,
    seed_seq: np.random.SeedSequence,
    uncertainty: Uncertainty,
    keep_tables: bool = True,
    accepted: dict | None = None,
) -> dict:
    """Attempt `index` of a conditioned run (sim.conditioning): draw, simulate the past and judge it
    against the record (on the way: `judge_past`); a plausible one goes on to the horizon and comes
    back as a replication (`replication_task`'s output), a rejected one as its verdict only
    (`"rejected": True`). `accepted`: this attempt's verdict, known to accept it (sim.verdicts):
    its past is not judged again, so a history's past is not simulated at all."""
    cond = uncertainty.condition
    base = _Prepared.get(cfg_json, targets)[0]
    drawn_cfg, drawn = uncertainty.config(base, seed_seq)
    cfg, compiled, ctx = _Prepared.get(drawn_cfg.model_dump_json(), targets)
    history = uncertainty.history_config(seed_seq) if accepted is None else None
    campaign = None
    with _cyclic_gc_paused():
        if accepted is not None:
            verdict = accepted
            if cond.history is None:
                # The run's own past, simulated as judging it would: stopped at its end (a stop
                # counted as an event, as there), so the replication is the same to the last event.
                campaign = _campaign(compiled, cfg, seed_seq, inventory)
                campaign.start()
                campaign.advance(cond.past_day)
        elif history is None:  # the run's own past: simulate it, judge it, and go on from there
            campaign = _campaign(compiled, cfg, seed_seq, inventory)
            campaign.start()
            verdict = judge_past(campaign, cond, Context.build(cfg, compiled, cond.targets))
        else:
            history, history_compiled, history_ctx = _Prepared.get(history.model_dump_json(), cond.targets)
            past = _campaign(history_compiled, history, seed_seq, inventory)
            past.start()
            verdict = judge_past(past, cond, history_ctx)
            del past  # freed before the run's own world is built, as it was when simulate_past returned
        if not verdict["accepted"]:
            return {"replication": index, "rejected": True, "verdict": verdict}
        if campaign is None:
            campaign = _campaign(compiled, cfg, seed_seq, inventory)
            campaign.start()
        result = campaign.finish()
    output = replication_summary(ctx, result, index)
    output["scalars"]["drawn"] = drawn
    output["scalars"]["implausibility"] = verdict["implausibility"]
    output["verdict"] = verdict
    if not keep_tables:
        output.pop("tables")
    return output


def concat_tables(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frame = pd.concat(frames, ignore_index=True)
    for column in CATEGORICAL:
        if column in frame:
            frame[column] = frame[column].astype("category")
    return frame


class Accumulator:
    """Collects replications as they finish, in any order: scalars and released-area paths always;
    the tables in memory, or handed to a sink (a results folder being written) and dropped."""

    def __init__(self, ctx: Context, sink=None):
        self.ctx = ctx
        self.sink = sink
        self.scalars: dict[int, dict] = {}
        self.released: dict[int, np.ndarray] = {}
        self.tables: dict[str, dict[int, pd.DataFrame]] = {k: {} for k in TABLES}
        self.labels: dict = {}  # the keys and axis labels replications share (add_reduced)

    def add(self, output: dict) -> None:
        rep = output["replication"]
        if self.sink is not None:
            self.sink.write_replication(output)
        else:
            for kind in TABLES:
                self.tables[kind][rep] = output["tables"][kind]
        self.add_reduced(rep, output["scalars"], output["released_ha"])

    def add_reduced(self, rep: int, scalars: dict, released: np.ndarray) -> None:
        # Replications share their labels: a replication that came through a pickle (a worker) or
        # a part file brings its own copy of every key (~13 KB of a baseline replication's
        # target ids, district names and shares) and axis label.
        scalars = self._shared_keys(scalars)
        for key in ("use_by_year", "per_year"):
            if isinstance(scalars.get(key), (YearlyUse, PerYear)):
                scalars[key] = scalars[key].shared(self.labels)
        self.scalars[rep] = scalars
        self.released[rep] = released

    def _shared_keys(self, tree: dict) -> dict:
        """`tree` (nested dicts) with its string keys taken from (or added to) `self.labels`."""
        return {
            (self.labels.setdefault(k, k) if type(k) is str else k): (self._shared_keys(v) if type(v) is dict else v)
            for k, v in tree.items()
        }

    def result(
        self,
        config: ScenarioConfig,
        seed: int,
        band: Band = BAND,
        uncertainty: Uncertainty | None = None,
        conditioning: dict | None = None,
    ) -> RunResult:
        reps = sorted(self.scalars)
        if not reps and conditioning is not None:
            raise UserError(
                f"no drawn world was plausible against the record in {conditioning['attempts']} attempts "
                f"(the cap: {conditioning['max_attempts']}); most rejected by "
                f"{', '.join(r['figure'] for r in conditioning['rejected_by'][:3]) or 'nothing'}: "
                "check the scenario's past, or give --no-condition"
            )
        released = [self.released[r] for r in reps]
        initial = np.array([self.scalars[r]["initial_area_ha"] for r in reps])
        tables = {}
        if self.sink is None:
            tables = {kind: concat_tables([self.tables[kind][r] for r in reps]) for kind in TABLES}
        use_by_year, waiting_by_year = use_by_year_tables([s["use_by_year"] for s in self.scalars.values() if "use_by_year" in s])
        # Spend follows from the config and each replication's completion days (sim.costs).
        fleet = Fleet.of(config)
        scalars = {r: self.scalars[r] for r in reps}
        spend = spend_table(fleet, scalars)
        per_replication = replications_table(self.scalars)
        check = published_check(fleet, scalars, load_cost_evidence() if fleet is not None else [])
        run_summary = summary(self.ctx, self.scalars, band)
        run_summary["band_holds"] = describe("none") if uncertainty is None else uncertainty.describe()
        if conditioning is not None:
            run_summary["conditioning"] = conditioning
        if fleet is not None:
            totals = spend_totals(spend, reps)
            per_replication = per_replication.merge(totals, on="replication", how="left")
            run_summary["costs"] = cost_summary(fleet, scalars, spend, totals, check, band)
        return RunResult(
            config=config,
            seed=seed,
            replications=len(reps),
            targets=targets_table(self.ctx, self.scalars, band),
            completion=completion_table(self.ctx, self.scalars),
            per_replication=per_replication,
            per_year=per_year_table(self.scalars),
            released=released_bands(self.ctx, released, initial, band),
            summary=run_summary,
            events_processed=int(sum(s["events_processed"] for s in self.scalars.values())),
            band=band,
            uncertainty=uncertainty,
            use_by_year=use_by_year,
            waiting_by_year=waiting_by_year,
            spend_per_year=spend,
            published_check=check,
            **tables,
        )


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def _start_worker(parent: int, interval: float = 0.5) -> None:
    """Pool initializer. SIGTERM gets its default action back: a forked worker inherits the CLI's
    handler, which would turn the pool's own terminate() into an exception and hang its shutdown.
    And the worker ends soon after the process that started it dies (SIGKILL, the out-of-memory
    killer): it holds its own copy of the task queue's write end, so it never sees end-of-file
    and would otherwise wait on the queue forever, holding its memory."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@contextmanager
def worker_pool(workers: int):
    """A process pool to reuse across runs (e.g. the evaluations of a calibration); None for 1 worker.
    Its workers end when this process ends, however it ends."""
    if workers <= 1:
        yield None
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_start_worker, initargs=(os.getpid(),)) as pool:
        yield pool


def _pool_width(pool) -> int:
    """How many tasks a pool runs at once: a Dask client's threads, a process pool's workers."""
    if type(pool).__module__.startswith("distributed"):
        return max(1, sum(pool.nthreads().values()))
    return max(1, getattr(pool, "_max_workers", 1))


def _completed(pool, submit, items, window: int):
    """Finished futures in completion order, with at most `window` others submitted and not yet
    handed on (a replacement is submitted before a finished one is handed on, to keep workers busy).

    Submitting everything at once would keep every finished replication's tables referenced by
    its future until the run ends, so memory would grow with the number of replications."""
    items = iter(items)
    in_flight = {submit(item) for item in islice(items, window)}
    try:
        if type(pool).__module__.startswith("distributed"):
            from distributed import as_completed as dask_as_completed

            queue = dask_as_completed(list(in_flight))
            for future in queue:
                in_flight.discard(future)
                for item in islice(items, 1):
                    new = submit(item)
                    in_flight.add(new)
                    queue.add(new)
                yield future
        else:
            while in_flight:
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    for item in islice(items, 1):
                        in_flight.add(submit(item))
                    yield future
    finally:
        for future in in_flight:
            future.cancel()


def run(
    config: ScenarioConfig,
    replications: int = 10,
    seed: int = 0,
    *,
    workers: int = 1,
    pool=None,
    inventory: Inventory | None = None,
    targets: list[Target] | None = None,
    progress: Callable[[int], None] | None = None,
    sink=None,
    band: Band = BAND,
    uncertainty: Uncertainty | None = None,
    verdicts: Mapping[int, dict] | None = None,
    decided: dict[int, dict] | None = None,
) -> RunResult:
    """Run `replications` replications of a scenario and return its results.

    Replications run in `pool` if given (a process pool or a Dask `distributed.Client`), else in
    a new pool of `workers` processes (in this process for 1). With a `sink` (a results folder
    being written), each replication's tables go to it as it finishes, and replications it already
    holds are not run again (resuming an interrupted run). `progress` is called with the number of
    replications finished since its last call. `band` sets the quantiles of every band reported.
    `uncertainty` (`sim.uncertainty.make_uncertainty`) draws uncertain inputs per replication, so
    the bands hold what we do not know as well as replication noise; None draws nothing.
    `verdicts`: a conditioned run's verdicts already known for its past, by attempt (sim.verdicts:
    only those of the same key), reused rather than judged again; the result's `verdicts` holds
    those of every attempt it decided. `decided`: a dict of the caller's that gets each verdict as
    it is decided (the result's `verdicts`), so that those of a run that stops are not lost."""
    if replications < 1:
        raise ValueError("replications must be at least 1")
    targets = tuple(load_targets() if targets is None else targets)
    cfg_json = config.model_dump_json()
    _, _, ctx = _Prepared.get(cfg_json, targets)
    acc = Accumulator(ctx, sink)
    if sink is not None:
        for rep, scalars, released in sink.finished_replications():
            acc.add_reduced(rep, scalars, released)
    seeds = replication_seeds(seed, replications)
    todo = [i for i in range(replications) if i not in acc.scalars]
    if progress and acc.scalars:
        progress(len(acc.scalars))
    conditioned = uncertainty is not None and uncertainty.condition is not None
    decided = {} if decided is None else decided

    def jobs(pool):
        if conditioned:
            known = dict(verdicts or {})
            return _run_conditioned(pool, cfg_json, targets, inventory, seeds, todo, acc, progress, uncertainty, known, decided)
        return _run_jobs(pool, cfg_json, targets, inventory, seeds, todo, acc, progress, uncertainty)

    if pool is None and workers > 1 and len(todo) > 1:
        with worker_pool(min(workers, len(todo))) as own:
            tally = jobs(own)
    else:
        tally = jobs(pool)
    result = acc.result(config, seed, band, uncertainty, tally)
    result.verdicts = decided if conditioned else None
    return result


def _wait_first(pool, futures):
    """The futures of `futures` that are done, waiting for at least one (process pool or Dask)."""
    if type(pool).__module__.startswith("distributed"):
        from distributed import wait as dask_wait

        return dask_wait(list(futures), return_when="FIRST_COMPLETED").done
    return wait(list(futures), return_when=FIRST_COMPLETED).done


def _run_conditioned(
    pool, cfg_json, targets, inventory, seeds, todo, acc: Accumulator, progress, uncertainty, known, decided
) -> dict:
    """Attempts in order until `len(seeds)` are accepted or the cap is reached (sim.conditioning).
    Attempts run in any order on any number of workers, but are decided in attempt order: an
    accepted one is kept (handed to the accumulator) only once every earlier attempt is decided,
    so the accepted set is the same however many workers run them. `known`: verdicts by attempt
    already known for this past (sim.verdicts): a rejected attempt is decided without being run,
    an accepted one runs without its past being judged. Each attempt's verdict goes into `decided`.
    Returns the tally's record."""
    replications = len(seeds)
    cap = uncertainty.condition.max_attempts(replications)
    attempts = replication_seeds(seeds.seed, cap)
    resumed = set(acc.scalars)  # accepted when the run was interrupted
    tally = Tally(reference_reused=bool(uncertainty.condition.reference.get("reused", False)))

    def decide(j: int, output: dict | None) -> None:
        if output is None:  # kept from before a resume
            tally.add(j, None)
            return
        decided[j] = output.pop("verdict")
        tally.add(j, decided[j], reused=j in known)
        if not output.get("rejected"):
            acc.add(output)
            if progress:
                progress(1)

    def known_rejection(j: int) -> dict | None:
        """Attempt j's outcome when it is known to be rejected: what running it would return."""
        if j in known and not known[j]["accepted"]:
            return {"replication": j, "rejected": True, "verdict": known[j]}
        return None

    def args(j: int):
        return (attempt_task, cfg_json, targets, inventory, j, attempts[j], uncertainty, True, known.get(j))

    if pool is None:
        j = 0
        while len(tally.accepted) < replications and j < cap:
            decide(j, None if j in resumed else known_rejection(j) or attempt_task(*args(j)[1:]))
            j += 1
        return tally.record(replications, cap)

    width = _pool_width(pool)
    pending: dict[int, dict | None] = {}
    in_flight: dict = {}
    next_j = frontier = 0

    def expected() -> int:
        """Accepted so far, with those decided but waiting on earlier attempts, and those running."""
        waiting = sum(1 for out in pending.values() if out is None or not out.get("rejected"))
        return len(tally.accepted) + waiting + len(in_flight)

    try:
        while len(tally.accepted) < replications and frontier < cap:
            while next_j < cap and len(in_flight) < 2 * width and expected() < replications + width:
                if next_j in resumed:
                    pending[next_j] = None
                elif rejection := known_rejection(next_j):
                    pending[next_j] = rejection
                else:
                    in_flight[pool.submit(*args(next_j))] = next_j
                next_j += 1
            while frontier in pending and len(tally.accepted) < replications:
                decide(frontier, pending.pop(frontier))
                frontier += 1
            if len(tally.accepted) >= replications or frontier >= cap or not in_flight:
                continue
            for future in _wait_first(pool, in_flight):
                pending[in_flight.pop(future)] = future.result()
    finally:
        for future in in_flight:
            future.cancel()
    return tally.record(replications, cap)


def _run_jobs(pool, cfg_json, targets, inventory, seeds, todo, acc: Accumulator, progress, uncertainty=None) -> None:
    """Replications `todo`, every one kept."""
    if pool is None:
        for index in todo:
            acc.add(replication_task(cfg_json, targets, inventory, index, seeds[index], uncertainty))
            if progress:
                progress(1)
        return

    def submit(index: int):
        return pool.submit(replication_task, cfg_json, targets, inventory, index, seeds[index], uncertainty)

    finished = _completed(pool, submit, todo, window=4 * _pool_width(pool))
    try:
        for future in finished:
            acc.add(future.result())
            if progress:
                progress(1)
    finally:
        finished.close()  # cancels what is still queued when a replication failed or on Ctrl-C


def load_inventory(path: str | Path, config: ScenarioConfig, *, force: bool = False) -> Inventory:
    """A parcel inventory CSV; past MAX_PARCELS rows reading stops with an error unless forced."""
    return read_inventory(Path(path), config, None if force else MAX_PARCELS)
