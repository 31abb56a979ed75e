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


def yearly_use(utilisation: pd.DataFrame, waiting: np.ndarray, month_years: np.ndarray) -> dict:
    """Per year: asset-days by asset type and state (all agencies), and national land waiting per
    stage at the year's last month end. JSON-ready, for the run summary."""
    year = utilisation["month"].dt.year
    by_type = utilisation.groupby([year, "asset_type"], observed=True)[list(UTILISATION_COLUMNS)].sum()
    out: dict = {}
    for (y, asset_type), row in by_type.iterrows():
        out.setdefault(str(y), {"assets": {}, "waiting_ha": {}})["assets"][asset_type] = {k: float(v) for k, v in row.items()}
    for y in np.unique(month_years):
        last = np.flatnonzero(month_years == y)[-1]
        entry = out.setdefault(str(int(y)), {"assets": {}, "waiting_ha": {}})
        entry["waiting_ha"] = {stage: float(waiting[last, :, k].sum()) for k, stage in enumerate(STAGES)}
    return out


def _sum_over_replications(per_replication: list[dict], years: list[str]) -> tuple[dict, dict]:
    """Over `years`: asset-days by asset type and state summed over replications and years; land
    waiting by stage at year ends, mean over replications and years."""
    assets: dict[str, dict] = {}
    waiting: dict[str, float] = {}
    for year in years:
        for rep in per_replication:
            entry = rep.get(year, {"assets": {}, "waiting_ha": {}})
            for key, values in entry["assets"].items():
                acc = assets.setdefault(key, dict.fromkeys(values, 0.0))
                for column, v in values.items():
                    acc[column] += v
            for stage, v in entry["waiting_ha"].items():
                waiting[stage] = waiting.get(stage, 0.0) + v / (len(per_replication) * len(years))
    return assets, waiting


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


def binding_constraints(per_replication: list[dict], asset_stages: dict[str, tuple[str, ...]]) -> list[dict]:
    """Periods of consecutive years with the same binding constraint, in plain words.

    Per year (over replications): the stage where most land waits, and the share of days the
    assets able to work it were busy. Busy above BUSY_THRESHOLD: that stage's capacity limits
    progress. Below it: assets wait for work they may do (reach, access, seasons, eligibility)."""
    years = sorted({y for rep in per_replication for y in rep}, key=int)
    periods: list[dict] = []
    for year in years:
        assets, waiting = _sum_over_replications(per_replication, [year])
        if not assets:
            continue
        limit = _limit_of_year(assets, waiting, asset_stages)
        kind = (limit["stage"], limit["capacity_bound"])
        if periods and periods[-1]["kind"] == kind and int(year) == int(periods[-1]["years"][-1]) + 1:
            periods[-1]["years"].append(year)
        else:
            periods.append({"kind": kind, "years": [year]})
    out = []
    for p in periods:
        # The period's words come from its days summed over its years (and its mean waiting land).
        limit = _limit_of_year(*_sum_over_replications(per_replication, p["years"]), asset_stages)
        first, last = int(p["years"][0]), int(p["years"][-1])
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


def use_by_year_tables(per_replication: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Means over replications, per year: asset-days by asset type and state (all agencies), and
    national land waiting per stage at the year end. Small tables, kept with every run."""
    n = max(len(per_replication), 1)
    assets: dict[tuple, np.ndarray] = {}
    waiting: dict[tuple, float] = {}
    for rep in per_replication:
        for year, entry in rep.items():
            for asset_type, values in entry["assets"].items():
                row = np.array([values[c] for c in UTILISATION_COLUMNS])
                assets[(int(year), asset_type)] = assets.get((int(year), asset_type), 0.0) + row / n
            for stage, ha in entry["waiting_ha"].items():
                waiting[(int(year), stage)] = waiting.get((int(year), stage), 0.0) + ha / n
    use = pd.DataFrame([(y, a, *v) for (y, a), v in sorted(assets.items())], columns=["year", "asset_type", *UTILISATION_COLUMNS])
    land = pd.DataFrame([(y, s, v) for (y, s), v in sorted(waiting.items())], columns=["year", "stage", "waiting_ha"])
    return use, land
