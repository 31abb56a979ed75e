"""Parameter sweeps: the product of a few config values, each point a full ensemble.

Every point is validated before any runs, and all points use the same seed, so replication i of
every point shares its random numbers: the surface is not blurred by sampling noise.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .bands import BAND, Band
from .config import ScenarioConfig
from .ensemble import run
from .errors import UserError
from .scenario import load_scenario

# A count swept as extra deliveries: `--grid add:AGENCY:ASSET_TYPE@YYYY-MM-DD=0,10,20` adds that
# many assets on that date at each point (0: none), as `--add AGENCY:ASSET_TYPE:COUNT@DATE` would.
ADD_PREFIX = "add:"
_ADD_KEY = re.compile(r"add:([^:@=]+):([^:@=]+)@(\S+)")


def parse_grid(items: list[str]) -> dict[str, list]:
    """`key.path=v1,v2,...` strings as {key: [values]}; values are TOML scalars (bare words are
    strings). A key `add:AGENCY:ASSET_TYPE@DATE` sweeps a count of extra deliveries (whole
    numbers >= 0)."""
    if not items:
        raise UserError("sweep needs at least one --grid key=v1,v2,...")
    grid: dict[str, list] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--grid {item!r}: expected key.path=v1,v2,...")
        key, raw = (part.strip() for part in item.split("=", 1))
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if not key or not values:
            raise UserError(f"--grid {item!r}: the grid is empty; give a key and at least one value")
        if key in grid:
            raise UserError(f"--grid {key}: given twice")
        grid[key] = [_scalar(v) for v in values]
        if key.startswith(ADD_PREFIX):
            if not _ADD_KEY.fullmatch(key):
                raise UserError(f"--grid {item!r}: a count of deliveries is add:AGENCY:ASSET_TYPE@YYYY-MM-DD=0,10,...")
            bad = [v for v in grid[key] if isinstance(v, bool) or not isinstance(v, int) or v < 0]
            if bad:
                raise UserError(f"--grid {key}: counts must be whole numbers >= 0, not {', '.join(map(str, bad))}")
    return grid


def _scalar(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def grid_points(grid: dict[str, list]) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def point_configs(
    scenario: Path, grid: dict[str, list], overrides: list[str], additions: list[str] = ()
) -> list[tuple[dict, ScenarioConfig]]:
    """Every grid point's validated config (errors name the point), before anything runs;
    `additions` are extra deliveries (`--add`) at every point."""
    out = []
    for point in grid_points(grid):
        sets = list(overrides) + [f"{k}={_toml(v)}" for k, v in point.items() if not k.startswith(ADD_PREFIX)]
        counts = [_addition(k, v) for k, v in point.items() if k.startswith(ADD_PREFIX) and v > 0]
        try:
            out.append((point, load_scenario(scenario, sets, additions=list(additions) + counts)))
        except UserError as exc:
            raise UserError(f"grid point {point}: {exc}") from None
    return out


def _addition(key: str, count: int) -> str:
    """`add:anama:machine@2026-01-01` and 10 as `--add`'s `anama:machine:10@2026-01-01`."""
    agency, asset_type, date = _ADD_KEY.fullmatch(key).groups()
    return f"{agency}:{asset_type}:{count}@{date}"


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    return repr(value)


@dataclass
class Sweep:
    """A finished sweep: one row per grid point, and one per point and replication."""

    scenario: str
    grid: dict[str, list]
    points: list[tuple[dict, ScenarioConfig]]
    table: pd.DataFrame
    per_replication: pd.DataFrame
    replications: int
    seed: int
    band: Band


class DiscardTables:
    """A sink that keeps nothing of the big tables: a sweep needs only each point's summaries."""

    def write_replication(self, output: dict) -> None:
        pass

    def finished_replications(self):
        return iter(())


def run_sweep(
    points: list[tuple[dict, ScenarioConfig]],
    replications: int,
    seed: int,
    *,
    pool=None,
    progress: Callable[[int], None] | None = None,
    band: Band = BAND,
) -> Sweep:
    """Run every point (see `point_configs`). Completion (years from the start, censored at the
    horizon) and civilian casualties come with their band; `sim.outputs.write_sweep` writes the folder."""
    rows, reps = [], []
    for index, (point, cfg) in enumerate(points):
        result = run(cfg, replications, seed, pool=pool, sink=DiscardTables(), progress=progress, band=band)
        start = pd.Timestamp(cfg.start_date)
        horizon_end = pd.Timestamp(result.summary["horizon_end"])
        days = result.per_replication["all_released_day"].to_numpy(dtype=float)
        censored = np.where(np.isfinite(days), days, (horizon_end - start).days)
        # inverted_cdf, as every other date quantile (run summaries, compare, plan): a replication's own day
        low, p50, high = (float(q) for q in np.quantile(censored, band.quantiles, method="inverted_cdf"))
        row = {
            "point": index,
            **point,
            "all_released_p50": (start + pd.Timedelta(days=p50)).date().isoformat()
            if np.isfinite(days).mean() >= 0.5
            else "not within horizon",
            "all_released_p50_years": p50 / 365.25,
            f"all_released_{band.low_name}_years": low / 365.25,
            f"all_released_{band.high_name}_years": high / 365.25,
            "share_done_by_horizon": float(np.isfinite(days).mean()),
        }
        for column in ("released_ha_by_2030", "civilian_casualties_by_2030", "deminer_casualties_by_2030", "items_by_2030"):
            row[f"{column}_mean"] = float(result.per_replication[column].mean())
        civilians = (
            result.per_replication["civilian_killed_at_horizon"] + result.per_replication["civilian_injured_at_horizon"]
        ).to_numpy(dtype=float)
        row["civilian_casualties_at_horizon_mean"] = float(civilians.mean())
        row[f"civilian_casualties_at_horizon_{band.low_name}"] = float(np.quantile(civilians, band.low))
        row[f"civilian_casualties_at_horizon_{band.high_name}"] = float(np.quantile(civilians, band.high))
        rows.append(row)
        reps.append(result.per_replication.assign(point=index, **{k: str(v) for k, v in point.items()}))
    grid = {key: list(dict.fromkeys(point[key] for point, _ in points)) for key in points[0][0]}
    return Sweep(
        points[0][1].name, grid, points, pd.DataFrame(rows), pd.concat(reps, ignore_index=True), replications, seed, band
    )
