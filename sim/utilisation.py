"""What limits progress: how each agency's assets spent their days, and where land waits.

Utilisation, per replication, month, agency and asset type, in asset-days (calendar days):
- `busy_<stage>_days`: on a task step of that stage (a step spans its calendar days, weekends
  and winter stops inside it included);
- `idle_season_days`: work was waiting, but on land the asset cannot work in that season;
- `down_days`: broken down or repairing anti-tank damage;
- `idle_no_work_days`: the rest of the days it was with its agency: nothing it may work was
  waiting in its reach (its stages, its agency's districts, land it can enter);
- `available_days`: days with its agency (from delivery or the agency's start to its withdrawal,
  the agency's end or the horizon, and any days past those spent finishing a step or a repair).

The binding constraint of a period is named from the stage where most land waits and how busy
the assets that can work it are: "2026-2029: clearance capacity: land waits for clearance and the
assets that can do it are busy (manual team 100 %, dog team 98 %)".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .config import STAGE_CLASSES, STAGES
from .recording import ASSET_TIME as A
from .recording import BUSY, DOWN, IDLE_SEASON, OVERTIME
from .recording import LOG as L

if TYPE_CHECKING:
    from .metrics import Context
    from .model import ReplicationResult

BUSY_COLUMNS = tuple(f"busy_{stage}_days" for stage in STAGES)
UTILISATION_COLUMNS = (*BUSY_COLUMNS, "idle_season_days", "down_days", "idle_no_work_days", "available_days")
WAITING_COLUMNS = tuple(f"waiting_{stage}_ha" for stage in STAGES)
# Share of available days busy above which an asset type is the limit (below it, work is lacking).
BUSY_THRESHOLD = 0.85
NOTHING_WAITING_HA = 1.0  # national land waiting below this is none (ha)


def spread_over_months(edges: np.ndarray, t_start: np.ndarray, t_end: np.ndarray):
    """Split intervals [t_start, t_end) at month edges: (interval index, month index, days)."""
    t_end = np.minimum(t_end, edges[-1])
    t_start = np.clip(t_start, edges[0], edges[-1])
    keep = t_end > t_start
    idx = np.flatnonzero(keep)
    if not len(idx):
        return idx, idx, np.zeros(0)
    lo, hi = t_start[idx], t_end[idx]
    m0 = np.searchsorted(edges, lo, side="right") - 1
    m1 = np.searchsorted(edges, hi, side="left") - 1
    counts = m1 - m0 + 1
    which = np.repeat(np.arange(len(idx)), counts)
    month = m0[which] + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    days = np.minimum(hi[which], edges[month + 1]) - np.maximum(lo[which], edges[month])
    return idx[which], month, np.maximum(days, 0.0)


def _available(ctx: Context, n_months: int) -> np.ndarray:
    """Asset-days with their agency: (months, agencies, asset types)."""
    compiled = ctx.compiled
    out = np.zeros((n_months, len(compiled.agencies), len(compiled.asset_types)))
    starts, ends, agencies, types, counts = [], [], [], [], []
    for g, agency in enumerate(compiled.agencies):
        for d in agency.deliveries:
            starts.append(max(d.day, agency.start_day, 0.0))
            ends.append(min(agency.end_day, d.withdrawn_day, compiled.horizon_days))
            agencies.append(g)
            types.append(d.asset_type)
            counts.append(d.count)
    if starts:
        which, month, days = spread_over_months(ctx.edges, np.array(starts), np.array(ends))
        np.add.at(out, (month, np.array(agencies)[which], np.array(types)[which]), days * np.array(counts)[which])
    return out


def utilisation_table(ctx: Context, res: ReplicationResult, replication: int) -> pd.DataFrame:
    n_months = len(ctx.edges) - 1
    compiled = ctx.compiled
    shape = (n_months, len(compiled.agencies), len(compiled.asset_types))
    acc = np.zeros((*shape, len(UTILISATION_COLUMNS)))
    log = res.log
    if len(log):
        which, month, days = spread_over_months(ctx.edges, log[:, L["t0"]], log[:, L["t1"]])
        rows = log[which]
        np.add.at(
            acc,
            (month, rows[:, L["agency"]].astype(int), rows[:, L["asset_type"]].astype(int), rows[:, L["stage"]].astype(int)),
            days,
        )
    other = res.asset_time
    if len(other):
        which, month, days = spread_over_months(ctx.edges, other[:, A["t_start"]], other[:, A["t_end"]])
        rows = other[which]
        state = rows[:, A["state"]].astype(int)
        # Overtime (days kept past withdrawal to finish a step) adds to the days with the agency.
        column = np.select(
            [state == BUSY, state == IDLE_SEASON, state == DOWN, state == OVERTIME],
            [
                rows[:, A["stage"]].astype(int),
                UTILISATION_COLUMNS.index("idle_season_days"),
                UTILISATION_COLUMNS.index("down_days"),
                UTILISATION_COLUMNS.index("available_days"),
            ],
            default=-1,
        )
        keep = column >= 0
        np.add.at(
            acc,
            (month[keep], rows[keep, A["agency"]].astype(int), rows[keep, A["asset_type"]].astype(int), column[keep]),
            days[keep],
        )
    available = _available(ctx, n_months) + acc[..., UTILISATION_COLUMNS.index("available_days")]
    accounted = acc[..., : UTILISATION_COLUMNS.index("idle_no_work_days")].sum(axis=-1)
    acc[..., UTILISATION_COLUMNS.index("idle_no_work_days")] = np.maximum(available - accounted, 0.0)
    acc[..., UTILISATION_COLUMNS.index("available_days")] = available
    m, g, a = np.nonzero(available > 0)
    frame = pd.DataFrame(acc[m, g, a], columns=UTILISATION_COLUMNS)
    frame.insert(0, "asset_type", np.array([t.key for t in compiled.asset_types])[a])
    frame.insert(0, "agency", np.array(ctx.agency_keys)[g])
    frame.insert(0, "month", pd.to_datetime(np.array(ctx.month_starts, dtype="datetime64[D]")[m]))
    frame.insert(0, "replication", replication)
    return frame


def in_array_format(data, what: str, expected: str) -> bool:
    """Whether a replication's `what` read from a part file is in the array format `expected`
    (else the dicts older part files hold); ValueError if it is not a JSON object or names
    another format (written by a newer version?)."""
    if not isinstance(data, dict):
        raise ValueError(f"{what}: not a JSON object")
    if "format" in data and data["format"] != expected:
        raise ValueError(f"{what}: unknown format {data['format']!r} (written by a newer version?)")
    return data.get("format") == expected


@dataclass(frozen=True, eq=False)
class YearlyUse:
    """One replication's use by year (`yearly_use`): asset-days by year, asset type and state (all
    agencies) and national land waiting per stage at each year's last month end.

    Arrays, not dicts of Python floats: a run holds one per replication until its summaries are
    written, and as nested dicts the baseline's 36 years took ~250 KB a replication, the bulk of
    what a run held for each. Picklable (Dask and process pools send it back from the workers);
    `to_json`/`from_json` for a results folder's part files. Axis labels are tuples that
    replications share (`shared`)."""

    years: np.ndarray  # int64 (Y,), increasing
    asset_types: tuple[str, ...]  # (A,), sorted by name
    assets: np.ndarray  # float64 (Y, A, len(columns)); a row of NaN: that type had no days that year
    waiting_ha: np.ndarray  # float64 (Y, len(stages))
    columns: tuple[str, ...] = UTILISATION_COLUMNS
    stages: tuple[str, ...] = STAGES

    FORMAT = "yearly_use/1"

    @property
    def present(self) -> np.ndarray:
        """(Y, A): whether the asset type had days with an agency that year."""
        return ~np.isnan(self.assets[:, :, 0])

    def shared(self, labels: dict) -> YearlyUse:
        """The same use with its axis labels taken from (or added to) `labels`, so replications
        that came through a pickle or a file do not each hold their own copies."""
        a, c, s = (labels.setdefault(v, v) for v in (self.asset_types, self.columns, self.stages))
        if a is self.asset_types and c is self.columns and s is self.stages:
            return self
        return YearlyUse(self.years, a, self.assets, self.waiting_ha, c, s)

    def to_json(self) -> dict:
        return {
            "format": self.FORMAT,
            "years": self.years.tolist(),
            "asset_types": list(self.asset_types),
            "columns": list(self.columns),
            "stages": list(self.stages),
            # A type's row is null in a year it had no days (NaN is not JSON).
            "assets": [[None if np.isnan(row[0]) else row.tolist() for row in year] for year in self.assets],
            "waiting_ha": self.waiting_ha.tolist(),
        }

    @classmethod
    def from_json(cls, data) -> YearlyUse:
        """From `to_json`, or from the nested dicts ({year: {"assets": {type: {column: days}},
        "waiting_ha": {stage: ha}}}) that part files written before it hold. ValueError if neither."""
        array_format = in_array_format(data, "use_by_year", cls.FORMAT)
        try:
            if array_format:
                columns, stages = tuple(data["columns"]), tuple(data["stages"])
                asset_types = tuple(data["asset_types"])
                nan_row = [math.nan] * len(columns)
                assets = np.array(
                    [[nan_row if row is None else row for row in year] for year in data["assets"]], dtype=np.float64
                ).reshape(len(data["years"]), len(asset_types), len(columns))
                waiting = np.array(data["waiting_ha"], dtype=np.float64).reshape(len(data["years"]), len(stages))
                years = np.array(data["years"], dtype=np.int64)
            else:  # nested dicts by year (part files written before the arrays)
                years = np.array(sorted(int(y) for y in data), dtype=np.int64)
                asset_types = tuple(sorted({t for entry in data.values() for t in entry["assets"]}))
                columns, stages = UTILISATION_COLUMNS, STAGES
                assets = np.full((len(years), len(asset_types), len(columns)), np.nan)
                waiting = np.zeros((len(years), len(stages)))
                for i, y in enumerate(years):
                    entry = data[str(y)]
                    for t, values in entry["assets"].items():
                        assets[i, asset_types.index(t)] = [values[c] for c in columns]
                    waiting[i] = [entry["waiting_ha"].get(k, 0.0) for k in stages]
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"use_by_year: not a replication's use by year ({type(exc).__name__}: {exc})") from None
        if columns != UTILISATION_COLUMNS or stages != STAGES:
            raise ValueError("use_by_year: written with other columns or stages than this version's")
        return cls(years, asset_types, assets, waiting, columns, stages)


def yearly_use(utilisation: pd.DataFrame, waiting: np.ndarray, month_years: np.ndarray, asset_types) -> YearlyUse:
    """Per year: asset-days by asset type and state (all agencies), and national land waiting per
    stage at the year's last month end. `asset_types`: the scenario's asset type keys."""
    years = np.unique(month_years).astype(np.int64)
    types = tuple(sorted(asset_types))
    assets = np.full((len(years), len(types), len(UTILISATION_COLUMNS)), np.nan)
    year = utilisation["month"].dt.year
    by_type = utilisation.groupby([year, "asset_type"], observed=True)[list(UTILISATION_COLUMNS)].sum()
    if len(by_type):
        y = np.searchsorted(years, by_type.index.get_level_values(0).to_numpy())
        a = pd.Index(types).get_indexer(by_type.index.get_level_values(1))
        assets[y, a] = by_type.to_numpy(dtype=np.float64)
    # The last month of each year (month_years is in month order).
    last = len(month_years) - 1 - np.unique(month_years[::-1], return_index=True)[1]
    # Summed over districts along a contiguous axis: the same floats as waiting[m, :, k].sum().
    waiting_ha = np.ascontiguousarray(waiting[last].transpose(0, 2, 1)).sum(axis=2)
    return YearlyUse(years, types, assets, waiting_ha)


def _on_common_axes(uses: list[YearlyUse]) -> tuple[np.ndarray, tuple[str, ...], list[tuple]]:
    """Replications' use on common axes: the years, the asset types (by name), and per replication
    (assets (Y, A, C), NaN rows where absent; waiting (Y, S); whether it has the year (Y,)). When
    the replications are laid out alike (every run's are), their own arrays, not copies."""
    for use in uses:
        if use.columns != UTILISATION_COLUMNS or use.stages != STAGES:
            raise ValueError("use_by_year: columns or stages differ from this version's")
    if uses and all(u.asset_types == uses[0].asset_types and np.array_equal(u.years, uses[0].years) for u in uses):
        every = np.ones(len(uses[0].years), dtype=bool)
        return uses[0].years, uses[0].asset_types, [(u.assets, u.waiting_ha, every) for u in uses]
    years = np.unique(np.concatenate([u.years for u in uses])) if uses else np.zeros(0, dtype=np.int64)
    types = tuple(sorted({t for u in uses for t in u.asset_types}))
    reps = []
    for u in uses:
        assets = np.full((len(years), len(types), len(UTILISATION_COLUMNS)), np.nan)
        waiting, has_year = np.zeros((len(years), len(STAGES))), np.zeros(len(years), dtype=bool)
        y, k = np.searchsorted(years, u.years), pd.Index(types).get_indexer(u.asset_types)
        assets[y[:, None], k[None, :]] = u.assets
        waiting[y], has_year[y] = u.waiting_ha, True
        reps.append((assets, waiting, has_year))
    return years, types, reps


def _as_dicts(total: np.ndarray, held: np.ndarray, first: np.ndarray, held_any: bool, types) -> tuple[dict, dict]:
    """Summed asset-days as {asset type: {column: days}}, types in the order they first appeared
    (`first`: an order key per type, -1 never; ties by name), and waiting as {stage: ha}."""
    order = sorted((k for k in range(len(types)) if first[k] >= 0), key=lambda k: (first[k], types[k]))
    assets = {types[k]: dict(zip(UTILISATION_COLUMNS, total[k].tolist())) for k in order}
    return assets, (dict(zip(STAGES, held.tolist())) if held_any else {})


def _yearly_sums(reps: list[tuple], n_types: int) -> list[tuple]:
    """Per year, over replications: asset-days by asset type and state summed, land waiting by
    stage averaged; every year at once, added replication by replication. Per year: (assets,
    waiting, first appearance of each type, whether any replication has the year)."""
    n_years = len(reps[0][1]) if reps else 0
    total = np.zeros((n_years, n_types, len(UTILISATION_COLUMNS)))
    held = np.zeros((n_years, len(STAGES)))
    first = np.full((n_years, n_types), -1)
    for r, (assets, waiting, has_year) in enumerate(reps):
        present = ~np.isnan(assets[..., 0])
        total = np.where(present[..., None], total + assets, total)
        held = np.where(has_year[:, None], held + waiting / len(reps), held)
        first = np.where((first < 0) & present, r, first)
    has_any = np.logical_or.reduce([h for _, _, h in reps]) if reps else np.zeros(0, dtype=bool)
    return [(total[i], held[i], first[i], bool(has_any[i])) for i in range(n_years)]


def _period_sums(reps: list[tuple], rows: list[int], n_types: int) -> tuple:
    """`_yearly_sums` over the years `rows` together: added year by year, then replication by
    replication, in that order; waiting averaged over replications and years."""
    total = np.zeros((n_types, len(UTILISATION_COLUMNS)))
    held = np.zeros(len(STAGES))
    first = np.full(n_types, -1)
    held_any = False
    for j, y in enumerate(rows):
        for r, (assets, waiting, has_year) in enumerate(reps):
            present = ~np.isnan(assets[y, :, 0])
            total = np.where(present[:, None], total + assets[y], total)
            first = np.where((first < 0) & present, j * len(reps) + r, first)
            if has_year[y]:
                held = held + waiting[y] / (len(reps) * len(rows))
                held_any = True
    return total, held, first, held_any


def _limit_of_year(assets: dict, waiting: dict, asset_stages: dict[str, tuple[str, ...]]) -> dict:
    """The binding constraint of one year: the stage where most land waits (after survey has
    begun on it, else survey itself), and whether the assets that can work it are busy."""
    ground = [s.key for s in STAGE_CLASSES if not s.optional and s.key != "non_technical_survey"]
    stage = max(ground, key=lambda k: waiting.get(k, 0.0))
    if waiting.get(stage, 0.0) < NOTHING_WAITING_HA:
        stage = "non_technical_survey" if waiting.get("non_technical_survey", 0.0) >= NOTHING_WAITING_HA else None
    down = {k: v["down_days"] / v["available_days"] for k, v in assets.items() if v["available_days"] > 0}
    repairs = ", ".join(f"{k.replace('_', ' ')} down {share:.0%} of their days" for k, share in down.items() if share >= 0.3)
    if stage is None:
        return {"stage": None, "capacity_bound": False, "text": "little land left in reach", "repairs": repairs, "busy": {}}
    able = {k: v for k, v in assets.items() if stage in asset_stages.get(k, ()) and v["available_days"] > 0}
    busy = {k: sum(v[c] for c in BUSY_COLUMNS) / v["available_days"] for k, v in able.items()}
    total = sum(v["available_days"] for v in able.values())
    # Days in repair are not days waiting for work: they count as occupied.
    occupied = sum(sum(v[c] for c in BUSY_COLUMNS) + v["down_days"] for v in able.values())
    share = occupied / total if total else 0.0
    teams = ", ".join(f"{k.replace('_', ' ')} {b:.0%}" for k, b in sorted(busy.items(), key=lambda kv: -kv[1]))
    name = stage.replace("_", " ")
    if not able:
        text = f"no asset can do {name}: land waits for it and nobody in reach works that stage"
    elif share >= BUSY_THRESHOLD:
        text = f"{name} capacity: land waits for {name} and the assets that can do it are busy ({teams})"
    else:
        text = (
            f"land the assets may work: land waits for {name} while the assets that can do it are occupied "
            f"{share:.0%} of their days (busy: {teams})"
        )
    return {"stage": stage, "capacity_bound": share >= BUSY_THRESHOLD, "text": text, "repairs": repairs, "busy": busy}


def binding_constraints(per_replication: list[YearlyUse], asset_stages: dict[str, tuple[str, ...]]) -> list[dict]:
    """Periods of consecutive years with the same binding constraint, in plain words.

    Per year (over replications): the stage where most land waits, and the share of days the
    assets able to work it were busy. Busy above BUSY_THRESHOLD: that stage's capacity limits
    progress. Below it: assets wait for work they may do (reach, access, seasons, eligibility)."""
    years, types, reps = _on_common_axes(per_replication)
    yearly = _yearly_sums(reps, len(types))
    periods: list[dict] = []
    for i, year in enumerate(years.tolist()):
        assets, waiting = _as_dicts(*yearly[i], types)
        if not assets:
            continue
        limit = _limit_of_year(assets, waiting, asset_stages)
        kind = (limit["stage"], limit["capacity_bound"])
        if periods and periods[-1]["kind"] == kind and year == periods[-1]["years"][-1] + 1:
            periods[-1]["years"].append(year)
            periods[-1]["rows"].append(i)
        else:
            periods.append({"kind": kind, "years": [year], "rows": [i]})
    out = []
    for p in periods:
        # The period's words come from its days summed over its years (and its mean waiting land).
        sums = yearly[p["rows"][0]] if len(p["rows"]) == 1 else _period_sums(reps, p["rows"], len(types))
        limit = _limit_of_year(*_as_dicts(*sums, types), asset_stages)
        first, last = p["years"][0], p["years"][-1]
        span = f"{first}" if first == last else f"{first}-{last}"
        repairs = f"; {limit['repairs']}" if limit["repairs"] else ""
        out.append(
            {
                "from_year": first,
                "to_year": last,
                "stage": p["kind"][0],
                "capacity_bound": p["kind"][1],
                "busy_share_by_asset_type": {k: round(v, 3) for k, v in limit["busy"].items()},
                "text": f"{span}: {limit['text']}{repairs}",
            }
        )
    return out


def use_by_year_tables(per_replication: list[YearlyUse]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Means over replications, per year: asset-days by asset type and state (all agencies), and
    national land waiting per stage at the year end. Small tables, kept with every run."""
    n = max(len(per_replication), 1)
    years, types, reps = _on_common_axes(per_replication)
    use = np.zeros((len(years), len(types), len(UTILISATION_COLUMNS)))
    land = np.zeros((len(years), len(STAGES)))
    present_any = np.zeros(use.shape[:2], dtype=bool)
    has_any = np.zeros(len(years), dtype=bool)
    # Added replication by replication, each divided by n first, as the run summary always has.
    for assets, waiting, has_year in reps:
        present = ~np.isnan(assets[..., 0])
        use = np.where(present[..., None], use + assets / n, use)
        land = np.where(has_year[:, None], land + waiting / n, land)
        present_any |= present
        has_any |= has_year
    # Rows by year, then asset type (stage) by name.
    by_name = np.array(sorted(range(len(types)), key=types.__getitem__), dtype=int)
    y, k = np.nonzero(present_any[:, by_name])
    k = by_name[k]
    names = np.array(types, dtype=object)
    use_table = pd.DataFrame(
        [(int(years[i]), names[j], *use[i, j]) for i, j in zip(y, k)], columns=["year", "asset_type", *UTILISATION_COLUMNS]
    )
    stage_order = sorted(range(len(STAGES)), key=STAGES.__getitem__)
    land_table = pd.DataFrame(
        [(int(years[i]), STAGES[j], land[i, j]) for i in np.flatnonzero(has_any) for j in stage_order],
        columns=["year", "stage", "waiting_ha"],
    )
    return use_table, land_table
