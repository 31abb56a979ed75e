"""Which uncertain inputs matter: a one-at-a-time tornado over every ranged input, then a
variance-based (Sobol) analysis over the inputs the tornado ranks highest.

Every design point runs the same replications of the same seed (common random numbers), so two
points differ only by their inputs: an input with no effect moves no output at all. The budget
counts simulated replications: the tornado takes (1 + 2 x inputs) x replications, and Sobol
(SALib, Saltelli's scheme without second-order terms) gets what is left, N x (k + 2) x
replications for k inputs. Outputs are each point's mean over its replications.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import ScenarioConfig
from .ensemble import _completed, _pool_width, replication_seeds, replication_task
from .errors import UserError
from .uncertainty import UncertainInput, apply_values, check_ranges, uncertain_inputs

# output key: (column of the replications table, label, unit)
OUTPUTS = {
    "completion_all": ("all_released_day", "all hazardous area released", "years from the start"),
    "completion_90": ("released_90pct_day", "90 % of the hazardous area released", "years from the start"),
    "released_2030": ("released_ha_by_2030", "area released by 2030", "ha"),
    "casualties_2030": ("civilian_casualties_by_2030", "civilian casualties by 2030", "people"),
}
DATE_OUTPUTS = ("completion_all", "completion_90")
DEFAULT_BUDGET = 600  # simulated replications: about 15 minutes of the baseline on 2 cores (README)
DEFAULT_REPLICATIONS = 2
DEFAULT_TOP = 6
MIN_SOBOL_N = 8  # base samples below this give intervals wider than the indices
CONF_LEVEL = 0.95


@dataclass
class Sensitivity:
    """A finished analysis: the ranged inputs, the tornado, the Sobol indices and every point run."""

    scenario: str
    config: ScenarioConfig
    inputs: list[UncertainInput]
    outputs: list[str]
    seed: int
    replications: int
    budget: int
    runs: int  # replications simulated (tornado and Sobol)
    sobol_n: int
    base: dict[str, float]
    tornado: pd.DataFrame  # input, kind, low, high, output, base, at_low, at_high, swing, rank
    sobol: pd.DataFrame  # input, output, S1, S1_conf, ST, ST_conf
    design: pd.DataFrame  # phase, point, replication, each input's value where set, each output

    @property
    def ranking(self) -> list[str]:
        return list(self.tornado.drop_duplicates("input").sort_values("rank")["input"])


def check_outputs(outputs: list[str] | None) -> list[str]:
    outputs = list(outputs or OUTPUTS)
    for name in outputs:
        if name not in OUTPUTS:
            raise UserError(f"--output {name!r}: unknown output; choose from {', '.join(OUTPUTS)}")
    return list(dict.fromkeys(outputs))


def plan(n_inputs: int, replications: int, budget: int, top: int | None) -> tuple[int, int]:
    """(k, N): the inputs Sobol analyses and its base sample size, within the budget; a one-line
    error saying the smallest budget that works when it is too small."""
    if budget < 1:
        raise UserError(f"--budget must be a positive number of simulations, not {budget}")
    if replications < 1:
        raise UserError(f"--replications must be at least 1, not {replications}")
    k = min(DEFAULT_TOP if top is None else top, n_inputs)
    if top is not None and not 1 <= top <= n_inputs:
        raise UserError(f"--top {top}: give 1 to {n_inputs} (the ranged inputs of this scenario)")
    tornado = (1 + 2 * n_inputs) * replications
    n = (budget - tornado) // ((k + 2) * replications)
    if n < MIN_SOBOL_N:
        need = tornado + MIN_SOBOL_N * (k + 2) * replications
        raise UserError(
            f"--budget {budget}: the tornado over {n_inputs} inputs takes {tornado} simulations and Sobol over {k} at least "
            f"{need - tornado} more; give --budget {need} or more (or fewer --top or --replications)"
        )
    return k, int(n)


def _outcomes(scalars_rows: pd.DataFrame, cfg: ScenarioConfig) -> pd.DataFrame:
    """The outputs of each replication; dates in years from the start, censored at the horizon."""
    horizon_days = cfg.horizon_years * 365.25
    out = pd.DataFrame(index=scalars_rows.index)
    for key, (column, _, _) in OUTPUTS.items():
        values = scalars_rows[column].astype(float)
        out[key] = np.minimum(values, horizon_days) / 365.25 if key in DATE_OUTPUTS else values
    return out


def evaluate(
    cfg: ScenarioConfig,
    points: list[dict[str, float]],
    inputs: list[UncertainInput],
    replications: int,
    seed: int,
    *,
    pool=None,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Run every point (input values to set; others at the scenario's) for the same replications
    of `seed`; one row per point and replication, in that order whatever the workers."""
    from .metrics import replications_table

    seeds = replication_seeds(seed, replications)
    jsons = [apply_values(cfg, inputs, values).model_dump_json() for values in points]
    items = [(p, r) for p in range(len(points)) for r in range(replications)]
    scalars: dict[tuple[int, int], dict] = {}

    def task(item):
        p, r = item
        return replication_task(jsons[p], (), None, r, seeds[r], None, False)

    if pool is None:
        for item in items:
            scalars[item] = task(item)["scalars"]
            if progress:
                progress(1)
    else:
        futures = {}

        def submit(item):
            future = pool.submit(replication_task, jsons[item[0]], (), None, item[1], seeds[item[1]], None, False)
            futures[future] = item
            return future

        finished = _completed(pool, submit, items, window=4 * _pool_width(pool))
        try:
            for future in finished:
                scalars[futures.pop(future)] = future.result()["scalars"]
                if progress:
                    progress(1)
        finally:
            finished.close()
    rows = replications_table({i: scalars[item] for i, item in enumerate(items)})
    frame = _outcomes(rows, cfg)
    frame.insert(0, "point", [p for p, _ in items])
    frame.insert(1, "replication", [r for _, r in items])
    return frame


def tornado_table(inputs: list[UncertainInput], means: pd.DataFrame, outputs: list[str]) -> pd.DataFrame:
    """Per input and output: the output at the base, at the low and high ends, and the swing.
    `means` holds point 0 (the base) then each input's low and high points. Inputs are ranked by
    their mean over the outputs of the swing relative to the largest of any input: an input that
    moves several outputs ranks above one that alone moves an output nothing else moves (a casualty
    count of 0 or 1 in a small world would otherwise put any input first)."""
    rows = []
    for i, item in enumerate(inputs):
        for out in outputs:
            base, low, high = (float(means.loc[p, out]) for p in (0, 1 + 2 * i, 2 + 2 * i))
            rows.append(
                {
                    "input": item.name,
                    "kind": item.kind,
                    "low": item.low,
                    "high": item.high,
                    "output": out,
                    "base": base,
                    "at_low": low,
                    "at_high": high,
                    "swing": abs(high - low),
                }  # fmt: skip
            )
    table = pd.DataFrame(rows)
    largest = table.groupby("output")["swing"].transform("max").replace(0.0, np.nan)
    table["relative_swing"] = (table["swing"] / largest).fillna(0.0)
    score = table.groupby("input", sort=False)["relative_swing"].mean()
    order = score.sort_values(ascending=False, kind="stable").index
    table["rank"] = table["input"].map({name: r + 1 for r, name in enumerate(order)})
    return table.sort_values(["rank", "output"], kind="stable").reset_index(drop=True)


def sensitivity(
    cfg: ScenarioConfig,
    *,
    mode: str = "all",
    inputs: list[UncertainInput] | None = None,
    outputs: list[str] | None = None,
    replications: int = DEFAULT_REPLICATIONS,
    seed: int = 0,
    budget: int = DEFAULT_BUDGET,
    top: int | None = None,
    pool=None,
    progress: Callable[[int], None] | None = None,
    on_phase: Callable[[str, int], None] | None = None,
) -> Sensitivity:
    """The tornado over `inputs` (default: every ranged input of `mode`) and Sobol indices over
    its top `top`, within `budget` simulated replications. `on_phase(name, runs)` is told each
    phase's size before it starts (for a progress bar)."""
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    outputs = check_outputs(outputs)
    inputs = list(uncertain_inputs(cfg, mode) if inputs is None else inputs)
    if not inputs:
        raise UserError(f"--uncertainty {mode}: this scenario has no ranged input to vary")
    check_ranges(cfg, inputs)
    k, n = plan(len(inputs), replications, budget, top)

    points = [{}] + [{item.name: getattr(item, end)} for item in inputs for end in ("low", "high")]
    if on_phase:
        on_phase("tornado", len(points) * replications)
    tornado_runs = evaluate(cfg, points, inputs, replications, seed, pool=pool, progress=progress)
    means = tornado_runs.groupby("point")[outputs].mean()
    tornado = tornado_table(inputs, means, outputs)
    ranked = list(dict.fromkeys(tornado["input"]))[:k]
    chosen = [item for item in inputs if item.name in ranked]
    chosen.sort(key=lambda item: ranked.index(item.name))

    problem = {"num_vars": k, "names": [item.name for item in chosen], "bounds": [[0.0, 1.0]] * k}
    with warnings.catch_warnings():  # N need not be a power of 2 here; the intervals say how well it did
        warnings.filterwarnings("ignore", message=".*power of 2.*")
        quantiles = sobol_sample.sample(problem, n, calc_second_order=False, seed=seed)
    sobol_points = [{item.name: item.ppf(u) for item, u in zip(chosen, row)} for row in quantiles]
    if on_phase:
        on_phase("sobol", len(sobol_points) * replications)
    sobol_runs = evaluate(cfg, sobol_points, inputs, replications, seed, pool=pool, progress=progress)
    sobol_means = sobol_runs.groupby("point")[outputs].mean()
    rows = []
    for out in outputs:
        y = sobol_means[out].to_numpy(dtype=float)
        if np.ptp(y) == 0:  # the output does not move at all: every index is 0
            indices = {key: np.zeros(k) for key in ("S1", "S1_conf", "ST", "ST_conf")}
        else:
            indices = sobol_analyze.analyze(problem, y, calc_second_order=False, conf_level=CONF_LEVEL, seed=seed)
        for j, item in enumerate(chosen):
            rows.append(
                {"input": item.name, "output": out, **{key: float(indices[key][j]) for key in ("S1", "S1_conf", "ST", "ST_conf")}}
            )

    names = [item.name for item in inputs]
    design = pd.concat(
        [
            _design(tornado_runs, points, names, "tornado", outputs),
            _design(sobol_runs, sobol_points, names, "sobol", outputs),
        ],
        ignore_index=True,
    )
    return Sensitivity(
        scenario=cfg.name,
        config=cfg,
        inputs=inputs,
        outputs=outputs,
        seed=seed,
        replications=replications,
        budget=budget,
        runs=len(design),
        sobol_n=n,
        base={out: float(means.loc[0, out]) for out in outputs},
        tornado=tornado,
        sobol=pd.DataFrame(rows),
        design=design,
    )


def _design(runs: pd.DataFrame, points: list[dict], names: list[str], phase: str, outputs: list[str]) -> pd.DataFrame:
    values = pd.DataFrame([{name: point.get(name, np.nan) for name in names} for point in points])
    frame = runs[["point", "replication", *outputs]].join(values, on="point")
    frame.insert(0, "phase", phase)
    return frame
