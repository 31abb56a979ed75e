"""From one replication's arrays to tidy tables, and from many replications to summaries.

Tables (one row per replication and key), as the results folder writes them:
- monthly: flows in each month by district and agency (land released by mode, items found,
  casualties). A task step counts in the month it ends.
- districts: stocks at each month end (suspected, confirmed, released, residual items).
- incidents: one row per person hurt.
Calibration targets cover windows as short as a week, shorter than a task step, so for them each
step's output is spread evenly over its calendar duration (the rate of work in progress).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .assets import Compiled
from .bands import BAND, Band
from .config import ITEM_TYPES, LAND_USES, STAGES, ScenarioConfig
from .model import ReplicationResult, month_edges
from .recording import FOUND_COLUMNS, LOG_COLUMNS, STOCK, VICTIM_CIVILIAN, VICTIM_DEMINER, VICTIMS
from .recording import INCIDENT as I
from .recording import LOG as L
from .seeds import Target
from .utilisation import WAITING_COLUMNS, binding_constraints, in_array_format, utilisation_table, yearly_use

LAND_COLUMNS = ("cancelled_ha", "reduced_ha", "cleared_ha")
ITEM_COLUMNS = tuple(f"items_{item}" for item in ITEM_TYPES)
CASUALTY_COLUMNS = (
    "deminer_killed",
    "deminer_injured",
    "civilian_killed",
    "civilian_injured",
    "soldier_killed",
    "soldier_injured",
)
FLOW_COLUMNS = LAND_COLUMNS + ITEM_COLUMNS + CASUALTY_COLUMNS
FLOW = {name: k for k, name in enumerate(FLOW_COLUMNS)}
# The flow column of an incident by its victim code (recording.VICTIMS) and whether it killed.
CASUALTY_FLOW = np.array([[FLOW[f"{who}_injured"], FLOW[f"{who}_killed"]] for who in VICTIMS])
NO_AGENCY = "none"  # civilian and soldier incidents belong to no agency
RELEASED = STOCK["released_ha"]


@dataclass(frozen=True)
class Context:
    """What turning arrays into tables needs to know about the scenario."""

    compiled: Compiled
    district_keys: tuple[str, ...]
    agency_keys: tuple[str, ...]
    # The agencies whose work the national figures count: not the peacekeepers' centre, which
    # reported its own (and the national series cover the agencies ANAMA coordinates).
    national_agency_keys: tuple[str, ...]
    month_starts: tuple[dt.date, ...]
    edges: np.ndarray
    targets: tuple[Target, ...]
    road_ha_to_km: float
    housing_ha_to_houses: float

    @classmethod
    def build(cls, cfg: ScenarioConfig, compiled: Compiled, targets) -> Context:
        edges = month_edges(compiled)
        first = np.datetime64(compiled.start_date, "M")
        starts = tuple((first + k).astype("datetime64[D]").astype(dt.date) for k in range(len(edges) - 1))
        return cls(
            compiled=compiled,
            district_keys=compiled.district_keys,
            agency_keys=tuple(cfg.agencies),
            national_agency_keys=tuple(key for key, agency in cfg.agencies.items() if agency.kind == "national"),
            month_starts=starts,
            edges=edges,
            targets=tuple(targets),
            road_ha_to_km=10.0 / cfg.reporting.road_corridor_width_m,  # 1 ha = 10,000 m2; / width m / 1000
            housing_ha_to_houses=1.0 / cfg.reporting.house_plot_ha,
        )

    def day(self, date: dt.date) -> float:
        return float((date - self.compiled.start_date).days)


def _month_of(ctx: Context, days: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(ctx.edges, days, side="right") - 1, 0, len(ctx.edges) - 2)


def monthly_table(ctx: Context, res: ReplicationResult, replication: int) -> pd.DataFrame:
    n_m, n_d, n_g = len(ctx.edges) - 1, len(ctx.district_keys), len(ctx.agency_keys) + 1
    acc = np.zeros((n_m, n_d, n_g, len(FLOW_COLUMNS)))
    log = res.log
    if len(log):
        idx = (_month_of(ctx, log[:, L["t1"]]), log[:, L["district"]].astype(int), log[:, L["agency"]].astype(int))
        values = log[:, [L[c] for c in LAND_COLUMNS + FOUND_COLUMNS]]
        np.add.at(acc[..., : len(LAND_COLUMNS) + len(ITEM_COLUMNS)], idx, values)
    inc = res.incidents
    if len(inc):
        killed = inc[:, I["killed"]] > 0
        deminer = inc[:, I["victim"]] == VICTIM_DEMINER
        col = CASUALTY_FLOW[inc[:, I["victim"]].astype(int), killed.astype(int)]
        agency = np.where(deminer, inc[:, I["agency"]], n_g - 1).astype(int)
        np.add.at(acc, (_month_of(ctx, inc[:, I["day"]]), inc[:, I["district"]].astype(int), agency, col), 1.0)
    m, d, g = np.nonzero(acc.any(axis=-1))
    frame = pd.DataFrame(acc[m, d, g], columns=FLOW_COLUMNS)
    frame.insert(0, "agency", np.array(ctx.agency_keys + (NO_AGENCY,))[g])
    frame.insert(0, "district", np.array(ctx.district_keys)[d])
    frame.insert(0, "month", pd.to_datetime(np.array(ctx.month_starts, dtype="datetime64[D]")[m]))
    frame.insert(0, "replication", replication)
    return frame


def districts_table(ctx: Context, res: ReplicationResult, replication: int) -> pd.DataFrame:
    n_m, n_d, _ = res.stocks.shape
    m, d = np.meshgrid(np.arange(n_m), np.arange(n_d), indexing="ij")
    flat = res.stocks.reshape(n_m * n_d, -1)
    return pd.DataFrame(
        {
            "replication": replication,
            "month": pd.to_datetime(np.array(ctx.month_starts, dtype="datetime64[D]")[m.ravel()]),
            "district": np.array(ctx.district_keys)[d.ravel()],
            **{column: flat[:, k] for column, k in STOCK.items()},
            **{column: res.waiting[:, :, k].ravel() for k, column in enumerate(WAITING_COLUMNS)},
        }
    )


def incidents_table(ctx: Context, res: ReplicationResult, replication: int) -> pd.DataFrame:
    inc = res.incidents
    order = np.argsort(inc[:, I["day"]], kind="stable") if len(inc) else np.array([], dtype=int)
    inc = inc[order]
    agency_names = np.array(ctx.agency_keys + (NO_AGENCY,))
    agency_idx = np.where(inc[:, I["victim"]] == VICTIM_DEMINER, inc[:, I["agency"]], len(ctx.agency_keys)).astype(int)
    return pd.DataFrame(
        {
            "replication": replication,
            "date": pd.to_datetime(
                np.datetime64(ctx.compiled.start_date, "D") + np.floor(inc[:, I["day"]]).astype("timedelta64[D]")
            ),
            "district": np.array(ctx.district_keys)[inc[:, I["district"]].astype(int)],
            "agency": agency_names[agency_idx],
            "victim": np.array(VICTIMS)[inc[:, I["victim"]].astype(int)],
            "outcome": np.where(inc[:, I["killed"]] > 0, "killed", "injured"),
            "on_released_land": inc[:, I["on_released_land"]] > 0,
            "outside_former_loc": inc[:, I["outside_former_loc"]] > 0,
        }
    )


def _window_share(t0: np.ndarray, t1: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Share of each step's output that falls in [lo, hi): overlap over duration (instant steps: 0 or 1)."""
    duration = t1 - t0
    overlap = np.clip(np.minimum(t1, hi) - np.maximum(t0, lo), 0.0, None)
    instant = (t1 >= lo) & (t1 < hi)
    return np.where(duration > 0, overlap / np.where(duration > 0, duration, 1.0), instant.astype(float))


def target_values(ctx: Context, res: ReplicationResult) -> dict[str, float]:
    """The simulated value of every calibration target in one replication."""
    log, inc = res.log, res.incidents
    # The log's columns as contiguous arrays: the operations below read whole columns, 3-7x faster
    # than through the log's strided columns, and element by element the same numbers.
    column = dict(zip(LOG_COLUMNS, np.ascontiguousarray(log.T)))
    out = {}
    # What the agencies report as "cleared": land released by physical means (technical survey
    # and clearance, battle-area clearance included), never survey cancellation.
    processed = column["reduced_ha"] + column["cleared_ha"]
    released = column["cancelled_ha"] + column["reduced_ha"] + column["cleared_ha"]
    land_use = column["land_use"].astype(int)
    per_metric = {
        "released_ha": released,
        "processed_ha": processed,
        **{f"items_{item}": column[f"found_{item}"] for item in ITEM_TYPES},
        "items_total": log[:, [L[c] for c in FOUND_COLUMNS]].sum(axis=1),
        "items_mines": column["found_ap"] + column["found_at"],
        # Roads and houses worked: processed land, like the hectares.
        "roads_km": processed * (land_use == LAND_USES.index("roads")) * ctx.road_ha_to_km,
        "houses": processed * (land_use == LAND_USES.index("housing")) * ctx.housing_ha_to_houses,
        "aerial_survey_ha": column["area_worked_ha"] * (column["stage"] == STAGES.index("remote_survey")),
    }
    national = np.isin(column["agency"], [ctx.agency_keys.index(k) for k in ctx.national_agency_keys])
    shares: dict[tuple[float, float], np.ndarray] = {}
    masks: dict[tuple, np.ndarray] = {}
    for target in ctx.targets:
        lo = ctx.day(target.window_start) if target.window_start else 0.0
        hi = ctx.day(target.window_end) + 1.0  # the end date is inclusive
        if target.metric.startswith("victims"):
            days = inc[:, I["day"]]
            in_window = (days >= lo) & (days < hi)
            if target.metric == "victims_total":
                value = float(in_window.sum())
            elif target.metric == "victims_killed":
                value = float((in_window & (inc[:, I["killed"]] > 0)).sum())
            elif target.metric in ("victims_civilian", "victims_military"):
                civilian = inc[:, I["victim"]] == VICTIM_CIVILIAN
                value = float((in_window & (civilian if target.metric == "victims_civilian" else ~civilian)).sum())
            else:
                total = in_window.sum()
                value = float((in_window & (inc[:, I["outside_former_loc"]] > 0)).sum() / total) if total else float("nan")
        else:
            missing = (target.agency != "all" and target.agency not in ctx.agency_keys) or (
                target.district is not None and target.district not in ctx.district_keys
            )
            if missing:  # a scenario without that agency or district
                out[target.id] = float("nan")
                continue
            # Many targets share a window, agency and district (82 targets, 35 masks): each mask
            # is made once, by the same operations as before, so the values are the same.
            key = (lo, hi, target.agency, target.district)
            mask = masks.get(key)
            if mask is None:
                mask = shares.get((lo, hi))
                if mask is None:
                    mask = shares[lo, hi] = _window_share(column["t0"], column["t1"], lo, hi)
                if target.agency == "all":
                    mask = mask * national
                else:
                    mask = mask * (column["agency"] == ctx.agency_keys.index(target.agency))
                if target.district is not None:
                    mask = mask * (column["district"] == ctx.district_keys.index(target.district))
                masks[key] = mask
            if target.metric == "cancelled_share":  # of the land released in the window, by any method
                whole = float((released * mask).sum())
                value = float((column["cancelled_ha"] * mask).sum()) / whole if whole else float("nan")
            else:
                value = float((per_metric[target.metric] * mask).sum())
        out[target.id] = value
    return out


def completion_days(ctx: Context, res: ReplicationResult) -> dict[str, float]:
    """Day each district (and all of them) has every parcel handed over; inf if not within the horizon."""
    out = {}
    for k, key in enumerate(ctx.district_keys):
        days = res.handover_day[res.parcel_district == k]
        out[key] = float(days.max()) if len(days) else 0.0
    out["all"] = float(res.handover_day.max()) if len(res.handover_day) else 0.0
    return out


# Shares of the hazardous area whose release date every run reports: the last parcels (often out
# of reach or waiting on a stage's capacity) decide completion, not the bulk of the work.
RELEASE_SHARES = (0.5, 0.9, 0.95)


def release_days(ctx: Context, res: ReplicationResult) -> dict[str, dict[str, float]]:
    """Per district (and `all`), the month end by which 50 %, 90 % and 95 % of the hazardous area is
    released (day since the start; inf if not within the horizon). Month-end resolution."""
    released = res.stocks[:, :, RELEASED]
    month_end = ctx.edges[1:] - 1.0  # the month's last day (stocks are taken as the next month begins)
    series = {key: (released[:, k], res.initial_area_ha[k]) for k, key in enumerate(ctx.district_keys)}
    series["all"] = (released.sum(axis=1), res.initial_area_ha.sum())
    out = {}
    for key, (path, initial) in series.items():
        reached = {}
        for share in RELEASE_SHARES:
            months = np.flatnonzero(path >= share * initial - 1e-6)  # a district with no area: month 0
            reached[f"{share:.0%}"] = float(month_end[months[0]]) if len(months) else math.inf
        out[key] = reached
    return out


@dataclass(frozen=True, eq=False)
class PerYear:
    """One replication's yearly figures (`per_year.parquet`'s columns) as one float64 array
    [year, column], not dicts of Python floats: a run holds one per replication until its tables
    are written (~60 KB a baseline replication as dicts, ~5 KB as an array). `to_json`/`from_json`
    for a results folder's part files; `shared` lets replications share their column names."""

    years: np.ndarray  # int64 (Y,), increasing
    columns: tuple[str, ...]
    values: np.ndarray  # float64 (Y, len(columns))

    FORMAT = "per_year/1"

    def shared(self, labels: dict) -> PerYear:
        columns = labels.setdefault(self.columns, self.columns)
        return self if columns is self.columns else PerYear(self.years, columns, self.values)

    def to_json(self) -> dict:
        return {
            "format": self.FORMAT,
            "years": self.years.tolist(),
            "columns": list(self.columns),
            "values": self.values.tolist(),
        }

    @classmethod
    def from_json(cls, data) -> PerYear:
        """From `to_json`, or from the {year: {column: value}} dicts part files written before it
        hold. ValueError if neither."""
        array_format = in_array_format(data, "per_year", cls.FORMAT)
        try:
            if array_format:
                years, columns = np.array(data["years"], dtype=np.int64), tuple(data["columns"])
                values = np.array(data["values"], dtype=np.float64).reshape(len(years), len(columns))
            else:  # {year: {column: value}}, years in order
                rows = list(data.values())
                columns = tuple(rows[0]) if rows else ()
                years = np.array([int(y) for y in data], dtype=np.int64)
                values = np.array([[row[c] for c in columns] for row in rows], dtype=np.float64).reshape(len(years), len(columns))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"per_year: not a replication's yearly figures ({type(exc).__name__}: {exc})") from None
        return cls(years, columns, values)


MILESTONE_YEARS = (2025, 2030)
TOTAL_COLUMNS = ("released_ha",) + FLOW_COLUMNS + ("residual_items",)


def replication_scalars(ctx: Context, res: ReplicationResult, monthly: pd.DataFrame) -> dict:
    """The per-replication numbers an ensemble summary needs (no tables): JSON-ready but for
    the arrays `per_year` here and `use_by_year` (sim.results writes them with their to_json)."""
    flows = monthly[list(FLOW_COLUMNS)].sum()
    totals = {k: float(flows[k]) for k in FLOW_COLUMNS}
    totals["released_ha"] = totals["cancelled_ha"] + totals["reduced_ha"] + totals["cleared_ha"]
    totals["residual_items"] = float(res.stocks[-1, :, STOCK["residual_items"]].sum())
    by_district = monthly.groupby("district", observed=True)[
        ["cancelled_ha", "reduced_ha", "cleared_ha", "civilian_killed", "civilian_injured"]
    ].sum()
    district_totals = {}
    for k, key in enumerate(ctx.district_keys):
        row = by_district.loc[key] if key in by_district.index else None
        district_totals[key] = {
            "released_ha": float(res.stocks[-1, k, RELEASED]),
            "civilian_casualties": float(row["civilian_killed"] + row["civilian_injured"]) if row is not None else 0.0,
        }
    year = monthly["month"].dt.year
    per_year = monthly.groupby(year)[list(LAND_COLUMNS + ITEM_COLUMNS + CASUALTY_COLUMNS)].sum()
    # What the national yearly figures count (target metrics processed_ha and items_* of agency
    # `all`): land processed physically by technical survey and clearance, never cancelled by
    # survey, and the items found, by the national agencies only (Context.national_agency_keys).
    national = monthly["agency"].isin(ctx.national_agency_keys).to_numpy()
    reported = monthly[national].groupby(year[national])[["reduced_ha", "cleared_ha", *ITEM_COLUMNS]].sum()
    reported = reported.reindex(per_year.index, fill_value=0.0)
    per_year.insert(0, "processed_ha", reported["reduced_ha"] + reported["cleared_ha"])
    for column in ITEM_COLUMNS:
        per_year[f"national_{column}"] = reported[column]
    month_years = np.array([d.year for d in ctx.month_starts])
    milestones = {}
    for y in MILESTONE_YEARS:
        upto = per_year[per_year.index <= y].sum()
        months = np.flatnonzero(month_years <= y)
        milestones[str(y)] = {
            "released_ha": float(res.stocks[months[-1], :, RELEASED].sum()) if len(months) else 0.0,
            "items": float(upto[list(ITEM_COLUMNS)].sum()),
            **{f"{who}_casualties": float(upto[f"{who}_killed"] + upto[f"{who}_injured"]) for who in VICTIMS},
        }
    return {
        "targets": target_values(ctx, res),
        "completion_day": completion_days(ctx, res),
        "release_day": release_days(ctx, res),
        "initial_area_ha": res.initial_area_ha.tolist(),
        "initial_items": res.initial_items.sum(axis=0).tolist(),
        "totals": totals,
        "district_totals": district_totals,
        "milestones": milestones,
        "per_year": PerYear(
            per_year.index.to_numpy().astype(np.int64), tuple(per_year.columns), per_year.to_numpy(dtype=np.float64)
        ),
        "events_processed": int(res.events_processed),
        "stranded_ha": {
            key: {STAGES[k]: float(res.stranded_ha[d, k]) for k in np.flatnonzero(res.stranded_ha[d] > 0)}
            for d, key in enumerate(ctx.district_keys)
            if res.stranded_ha[d].any()
        },
    }


def replication_summary(ctx: Context, res: ReplicationResult, replication: int) -> dict:
    """What a run keeps of one replication: its tables, its released-area path (months x districts)
    for the uncertainty bands, and its scalars."""
    monthly = monthly_table(ctx, res, replication)
    utilisation = utilisation_table(ctx, res, replication)
    scalars = replication_scalars(ctx, res, monthly)
    scalars["use_by_year"] = yearly_use(
        utilisation, res.waiting, np.array([d.year for d in ctx.month_starts]), [t.key for t in ctx.compiled.asset_types]
    )
    return {
        "replication": replication,
        "tables": {
            "monthly": monthly,
            "districts": districts_table(ctx, res, replication),
            "incidents": incidents_table(ctx, res, replication),
            "utilisation": utilisation,
        },
        "released_ha": res.stocks[:, :, RELEASED].astype(np.float32),
        "scalars": scalars,
    }


# --------------------------------------------------------------------------- ensemble summaries
def quantile_date(ctx: Context, days: np.ndarray, q: float) -> str:
    value = float(np.quantile(days, q, method="inverted_cdf"))
    if not np.isfinite(value):
        return "not within horizon"
    return (ctx.compiled.start_date + dt.timedelta(days=int(np.ceil(value)))).isoformat()


def completion_table(ctx: Context, scalars: dict[int, dict]) -> pd.DataFrame:
    """Per replication and district (and `all`), the date every parcel is handed over (NaT: not within horizon)."""
    rows = []
    start = np.datetime64(ctx.compiled.start_date, "D")
    for rep, s in sorted(scalars.items()):
        for key, day in s["completion_day"].items():
            date = start + np.timedelta64(int(np.ceil(day)), "D") if np.isfinite(day) else np.datetime64("NaT")
            rows.append((rep, key, date))
    return pd.DataFrame(rows, columns=["replication", "district", "completion_date"]).astype(
        {"completion_date": "datetime64[ns]"}
    )


def targets_table(ctx: Context, scalars: dict[int, dict], band: Band = BAND) -> pd.DataFrame:
    rows = []
    for target in ctx.targets:
        values = np.array([s["targets"][target.id] for _, s in sorted(scalars.items())], dtype=float)
        values = values[np.isfinite(values)]
        mean = float(values.mean()) if len(values) else float("nan")
        rows.append(
            {
                "target": target.id,
                "use": target.use,
                "agency": target.agency,
                "district": target.district,
                "metric": target.metric,
                "window_start": target.window_start,
                "window_end": target.window_end,
                "reported": target.value,
                "simulated_mean": mean,
                f"simulated_{band.low_name}": float(np.quantile(values, band.low)) if len(values) else float("nan"),
                f"simulated_{band.high_name}": float(np.quantile(values, band.high)) if len(values) else float("nan"),
                "relative_error": (mean - target.value) / target.value if target.value else float("nan"),
                "source": target.source,
            }
        )
    return pd.DataFrame(rows)


def replications_table(scalars: dict[int, dict]) -> pd.DataFrame:
    """One row per replication: totals at the horizon and cumulative outcomes at milestone years."""
    rows = []
    for rep, s in sorted(scalars.items()):
        row = {"replication": rep, **{f"{k}_at_horizon": v for k, v in s["totals"].items()}}
        for year, values in s["milestones"].items():
            row.update({f"{k}_by_{year}": v for k, v in values.items()})
        row["all_released_day"] = s["completion_day"]["all"]
        for share, day in s.get("release_day", {}).get("all", {}).items():
            row[f"released_{share.rstrip('%')}pct_day"] = day
        # The uncertain inputs the replication drew (runs with --uncertainty other than none).
        row.update({f"drawn:{name}": value for name, value in s.get("drawn", {}).items()})
        if "implausibility" in s:  # conditioned runs: the largest implausibility of its past (sim.conditioning)
            row["implausibility"] = s["implausibility"]
        rows.append(row)
    return pd.DataFrame(rows)


def per_year_table(scalars: dict[int, dict]) -> pd.DataFrame:
    """One row per replication and year: the replications' PerYear stacked, replications in order."""
    reps = sorted(scalars)
    tables = [scalars[r]["per_year"] for r in reps]
    if not any(len(t.years) for t in tables):
        return pd.DataFrame()
    columns = tables[0].columns
    if any(t.columns != columns for t in tables):  # not from one run: columns in order of appearance
        columns = tuple(dict.fromkeys(c for t in tables for c in t.columns))
        tables = [_with_columns(t, columns) for t in tables]
    frame = pd.DataFrame(np.concatenate([t.values for t in tables]), columns=list(columns))
    frame.insert(0, "year", np.concatenate([t.years for t in tables]).astype(np.int64))
    frame.insert(0, "replication", np.repeat(np.array(reps, dtype=np.int64), [len(t.years) for t in tables]))
    return frame


def _with_columns(table: PerYear, columns: tuple[str, ...]) -> PerYear:
    values = np.full((len(table.years), len(columns)), np.nan)
    values[:, [columns.index(c) for c in table.columns]] = table.values
    return PerYear(table.years, columns, values)


def released_bands(ctx: Context, released: list[np.ndarray], initial_area: np.ndarray, band: Band = BAND) -> pd.DataFrame:
    """The band over replications (low, median, high) of the released area at each month end, per
    district and for `all`. `released` holds each replication's (months, districts) path, stacked
    one district at a time so that a run never holds a second copy of every path (the same
    quantiles as of the whole stack); `initial_area` is (replications, districts)."""
    lo, mid, hi = band.quantiles
    frames = []
    months = pd.to_datetime(np.array(ctx.month_starts, dtype="datetime64[D]"))
    series = {
        key: (lambda k=k: np.stack([r[:, k] for r in released]), initial_area[:, k]) for k, key in enumerate(ctx.district_keys)
    }
    series["all"] = (lambda: np.stack([r.sum(axis=1) for r in released]), initial_area.sum(axis=1))
    for key, (values, initial) in series.items():
        q = np.quantile(values(), [lo, mid, hi], axis=0)
        frames.append(
            pd.DataFrame(
                {"month": months, "district": key, "low": q[0], "median": q[1], "high": q[2], "initial_ha": float(initial.mean())}
            )
        )
    return pd.concat(frames, ignore_index=True)


def stranded_land(ctx: Context, reps: list[dict]) -> list[dict]:
    """Land that keeps a scenario from finishing: unreleased at the horizon, waiting for a stage no
    agency can do there. Mean ha over replications, by district and stage, with the reason."""
    rows = []
    for d_key in ctx.district_keys:
        for stage in STAGES:
            ha = [s.get("stranded_ha", {}).get(d_key, {}).get(stage, 0.0) for s in reps]
            if any(ha):
                mean = float(np.mean(ha))
                rows.append(
                    {
                        "district": d_key,
                        "stage": stage,
                        "area_ha": mean,
                        "text": f"{d_key}: {mean:,.0f} ha wait for {stage.replace('_', ' ')}, and no agency working "
                        f"there has an asset type that does it on that terrain and land use",
                    }
                )
    return rows


def summary(ctx: Context, scalars: dict[int, dict], band: Band = BAND) -> dict:
    """Completion dates (median and band), totals at the horizon (mean and band) and casualties per year."""
    reps = [s for _, s in sorted(scalars.items())]
    n = len(reps)

    def spread(values) -> dict:
        values = np.asarray(values, dtype=float)
        return {
            "mean": float(values.mean()),
            band.low_name: float(np.quantile(values, band.low)),
            band.high_name: float(np.quantile(values, band.high)),
        }

    completion = {}
    names = (band.low_name, "p50", band.high_name)
    for key in ctx.district_keys + ("all",):
        days = np.array([s["completion_day"][key] for s in reps])
        completion[key] = {name: quantile_date(ctx, days, q) for name, q in zip(names, band.quantiles)} | {
            "share_of_replications_done": float(np.isfinite(days).mean())
        }
    release_dates = {}
    for key in ctx.district_keys + ("all",):
        release_dates[key] = {}
        for share in (f"{q:.0%}" for q in RELEASE_SHARES):
            days = np.array([s["release_day"][key][share] for s in reps if "release_day" in s] or [math.inf])
            release_dates[key][share] = {name: quantile_date(ctx, days, q) for name, q in zip(names, band.quantiles)}
    by_district = {
        key: {
            "completion": completion[key],
            "release_dates": release_dates[key],
            "released_ha": spread([s["district_totals"][key]["released_ha"] for s in reps]),
            "civilian_casualties": spread([s["district_totals"][key]["civilian_casualties"] for s in reps]),
        }
        for key in ctx.district_keys
    }
    per_year = per_year_table(scalars)
    casualties = {}
    if len(per_year):
        cols = list(CASUALTY_COLUMNS)
        mean = per_year.groupby("year")[cols].sum() / n
        casualties = {str(y): {c: float(v) for c, v in row.items()} for y, row in mean.iterrows()}
    return {
        "replications": n,
        "band": band.as_dict(),
        "start_date": ctx.compiled.start_date.isoformat(),
        "horizon_end": (ctx.compiled.start_date + dt.timedelta(days=int(ctx.compiled.horizon_days))).isoformat(),
        "initial_hazardous_area_ha": float(np.mean([sum(s["initial_area_ha"]) for s in reps])),
        "initial_items": float(np.mean([sum(s["initial_items"]) for s in reps])),
        "all_released": completion["all"],
        "all_release_dates": release_dates["all"],
        "totals_at_horizon": {k: spread([s["totals"][k] for s in reps]) for k in TOTAL_COLUMNS},
        "milestones": {
            y: {k: spread([s["milestones"][y][k] for s in reps]) for k in reps[0]["milestones"][y]} for y in reps[0]["milestones"]
        },
        "casualties_per_year_mean": casualties,
        "districts": by_district,
        "land_no_agency_can_work": stranded_land(ctx, reps),
        "what_limits_progress": binding_constraints(
            [s["use_by_year"] for s in reps if "use_by_year" in s],
            {t.key: tuple(STAGES[k] for k in t.stages) for t in ctx.compiled.asset_types},
        ),
    }
