"""Running replications: seeds, worker processes, and the tables of a whole run.

Randomness flows from one SeedSequence per run, spawned once per replication, and from named
streams within a replication (`sim.model.make_streams`). Replication i gets the same numbers
whichever worker runs it and however many workers there are.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
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


# Worker state, set once per process so each task ships only a replication index.
_WORKER: dict = {}


def _init_worker(cfg_data: dict, inventory: Inventory | None, targets: list[Target]) -> None:
    cfg = ScenarioConfig.model_validate(cfg_data)
    compiled = compile_scenario(cfg)
    _WORKER.update(cfg=cfg, compiled=compiled, inventory=inventory, ctx=Context.build(cfg, compiled, targets))


def _run_one(args: tuple[int, np.random.SeedSequence]) -> dict:
    index, seed_seq = args
    w = _WORKER
    result = simulate(w["compiled"], w["cfg"], seed_seq, w["inventory"])
    return replication_summary(w["ctx"], result, index)


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def run(
    config: ScenarioConfig,
    replications: int = 10,
    seed: int = 0,
    *,
    workers: int = 1,
    inventory: Inventory | None = None,
    targets: list[Target] | None = None,
    progress: Callable[[int], None] | None = None,
) -> RunResult:
    """Run `replications` replications of a scenario and return its tables.

    `progress` is called with 1 after each finished replication (the CLI draws a bar with it)."""
    if replications < 1:
        raise ValueError("replications must be at least 1")
    targets = load_targets() if targets is None else targets
    seeds = replication_seeds(seed, replications)
    cfg_data = config.model_dump(mode="json")
    jobs = list(enumerate(seeds))
    outputs: list[dict] = []
    if workers <= 1:
        _init_worker(cfg_data, inventory, targets)
        for job in jobs:
            outputs.append(_run_one(job))
            if progress:
                progress(1)
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(cfg_data, inventory, targets)) as pool:
            for out in pool.map(_run_one, jobs, chunksize=1):
                outputs.append(out)
                if progress:
                    progress(1)
    cfg = ScenarioConfig.model_validate(cfg_data)
    compiled = compile_scenario(cfg)
    ctx = Context.build(cfg, compiled, targets)
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
