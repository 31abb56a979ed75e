"""Running replications: seeds, worker processes, and the tables of a whole run.

Randomness flows from one SeedSequence per run, spawned once per replication, and from named
streams within a replication (`sim.model.make_streams`). Replication i gets the same numbers
whichever worker runs it and however many workers there are.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .assets import Compiled, compile_scenario
from .config import ScenarioConfig
from .metrics import Context, completion_table, replication_summary, summary, targets_table
from .model import Campaign, ReplicationResult, make_streams
from .seeds import Target, load_targets
from .world import Inventory, draw_truth, generate_inventory


@dataclass
class RunResult:
    """The tables of a run, as `demining run` writes them."""

    config: ScenarioConfig
    seed: int
    replications: int
    monthly: pd.DataFrame
    districts: pd.DataFrame
    incidents: pd.DataFrame
    targets: pd.DataFrame
    completion: pd.DataFrame
    summary: dict
    events_processed: int


def replication_seeds(seed: int, replications: int) -> list[np.random.SeedSequence]:
    return np.random.SeedSequence(seed).spawn(replications)


def simulate(compiled: Compiled, cfg: ScenarioConfig, seed_seq: np.random.SeedSequence, inventory: Inventory | None = None) -> ReplicationResult:
    """One replication: draw the world's truth from the replication's streams, then run the campaign."""
    rngs = make_streams(seed_seq)
    records = inventory if inventory is not None else generate_inventory(cfg, rngs["layout"])
    parcels = draw_truth(cfg, records, rngs["truth"], rngs["maps"])
    return Campaign(compiled, parcels, rngs).run()


class _Prepared:
    """A scenario made ready to simulate in a worker: validated, compiled, with its table context.
    Workers keep the last one, so a run ships its config once per task but compiles it once."""

    cache: dict = {}

    @classmethod
    def get(cls, cfg_json: str, targets: tuple[Target, ...]):
        key = (cfg_json, targets)
        if key not in cls.cache:
            cfg = ScenarioConfig.model_validate_json(cfg_json)
            compiled = compile_scenario(cfg)
            cls.cache.clear()
            cls.cache[key] = (cfg, compiled, Context.build(cfg, compiled, targets))
        return cls.cache[key]


def replication_task(cfg_json: str, targets: tuple[Target, ...], inventory: Inventory | None, index: int, seed_seq: np.random.SeedSequence) -> dict:
    """Run replication `index` and reduce it to its tables. A plain function of picklable arguments,
    so any executor (a process pool, a Dask cluster) can run it."""
    cfg, compiled, ctx = _Prepared.get(cfg_json, targets)
    result = simulate(compiled, cfg, seed_seq, inventory)
    return replication_summary(ctx, result, index)


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


@contextmanager
def worker_pool(workers: int):
    """A process pool to reuse across runs (e.g. the evaluations of a calibration); None for 1 worker."""
    if workers <= 1:
        yield None
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield pool


def run(
    config: ScenarioConfig,
    replications: int = 10,
    seed: int = 0,
    *,
    workers: int = 1,
    pool: ProcessPoolExecutor | None = None,
    inventory: Inventory | None = None,
    targets: list[Target] | None = None,
    progress: Callable[[int], None] | None = None,
) -> RunResult:
    """Run `replications` replications of a scenario and return its tables.

    Replications run in `pool` if given, else in a new pool of `workers` processes (in this
    process for 1). `progress` is called with 1 after each finished replication."""
    if replications < 1:
        raise ValueError("replications must be at least 1")
    targets = tuple(load_targets() if targets is None else targets)
    cfg_json = config.model_dump_json()
    seeds = replication_seeds(seed, replications)
    outputs: list[dict] = []
    if pool is None and workers > 1:
        with worker_pool(min(workers, replications)) as own:
            return run(config, replications, seed, pool=own, inventory=inventory, targets=list(targets), progress=progress)
    if pool is None:
        for index, seed_seq in enumerate(seeds):
            outputs.append(replication_task(cfg_json, targets, inventory, index, seed_seq))
            if progress:
                progress(1)
    else:
        futures = [pool.submit(replication_task, cfg_json, targets, inventory, index, s) for index, s in enumerate(seeds)]
        for future in as_completed(futures):
            outputs.append(future.result())
            if progress:
                progress(1)
    cfg, compiled, ctx = _Prepared.get(cfg_json, targets)
    return assemble(ctx, config, seed, outputs)


def assemble(ctx: Context, config: ScenarioConfig, seed: int, outputs: list[dict]) -> RunResult:
    outputs = sorted(outputs, key=lambda o: o["replication"])
    monthly = pd.concat([o["monthly"] for o in outputs], ignore_index=True)
    districts = pd.concat([o["districts"] for o in outputs], ignore_index=True)
    incidents = pd.concat([o["incidents"] for o in outputs], ignore_index=True)
    for frame in (monthly, districts, incidents):
        for column in ("district", "agency", "victim", "outcome"):
            if column in frame:
                frame[column] = frame[column].astype("category")
    return RunResult(
        config=config,
        seed=seed,
        replications=len(outputs),
        monthly=monthly,
        districts=districts,
        incidents=incidents,
        targets=targets_table(ctx, [o["targets"] for o in outputs]),
        completion=completion_table(ctx, outputs),
        summary=summary(ctx, outputs, monthly, incidents, districts),
        events_processed=int(sum(o["events_processed"] for o in outputs)),
    )


def load_inventory(path: str | Path, config: ScenarioConfig) -> Inventory:
    from .world import read_inventory

    return read_inventory(Path(path), config)
