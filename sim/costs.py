"""What the campaign costs: the scenario's unit costs ([costs], sim.config.CostsConfig) and its
fleet over time turned into spend, per replication, outside the model's hot loop.

The rules, in one place:
- **Purchase** (or set-up) is paid once per asset, on its delivery date. The assets an agency has
  when it starts (delivered on or before its start, and the campaign's) are a fleet already in
  hand and cost no purchase, unless `charge_initial_fleet` (campaign-wide, or the agency's own).
  A delivery dated on or after its agency stood down is not bought.
- **Running** cost is paid per day in service (the yearly figure / 365.25), from the delivery (or
  the agency's start, if later) until the first of: the delivery's withdrawal, the agency's end,
  the agency's stand-down, the horizon. The same days as the utilisation table's available days.
- **Stand-down**: an agency stops paying for its assets when the last parcel of the districts it
  works in is handed over (that replication's completion day of those districts); when they are
  not all released within the horizon, it pays to the horizon. Spend "to completion" is therefore
  everything a replication spends.
- Costs are US dollars, nominal: no inflation, no discounting. `central` unit costs give the
  spend reported by default; `low` and `high` read every unit cost at its low or high end (a
  range of the cost assumptions, separate from the band across replications).

Spend depends on a replication only through its completion days, so it is computed from what a
run keeps of each replication (its scalars) when the run is assembled (`sim.ensemble`). The
contract for searching plans (`demining plan`): `addition_cost_usd` prices extra deliveries, and a
finished run's spend per replication is `RunResult.per_replication` (columns
`spend_usd_total`, `spend_usd_by_2025`, `spend_usd_by_2030`, and `_low` / `_high` variants), also
given by `spend_per_replication(cfg, scalars)` from the replications' scalars.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from .bands import BAND, Band
from .config import COST_LEVELS, STAGES, CostsConfig, ScenarioConfig
from .errors import UserError
from .utilisation import BUSY_COLUMNS, YearlyUse

DAYS_PER_YEAR = 365.25
SPEND_MILESTONES = (2025, 2030)  # spend to the end of these years (as sim.metrics.MILESTONE_YEARS)
LEVEL_SUFFIX = {"low": "_low", "central": "", "high": "_high"}
SPEND_COLUMNS = (
    "replication",
    "year",
    "agency",
    "asset_type",
    "purchase_usd",
    "running_usd",
    "spend_usd",
    "spend_usd_low",
    "spend_usd_high",
)


# --------------------------------------------------------------------------- unit costs
def unit_costs(costs: CostsConfig, agency: str, asset_type: str, level: str = "central") -> tuple[float, float]:
    """(purchase USD per asset, running USD per asset per year) of `asset_type` at `agency`, read at
    `level` (low, central or high): the agency's override where it gives one, else the asset type's.

    A costs block from a validated scenario knows the scenario's agencies and asset types: an
    unknown one is a UserError naming it. (A CostsConfig built on its own checks asset types only.)"""
    if level not in COST_LEVELS:
        raise UserError(f"cost level {level!r}: expected one of {', '.join(COST_LEVELS)}")
    agencies = costs._agency_keys
    if agencies is not None and agency not in agencies:
        raise UserError(f"unknown agency {agency!r}; known: {', '.join(agencies)}")
    known_types = costs._asset_type_keys
    if known_types is not None and asset_type not in known_types:
        raise UserError(f"unknown asset type {asset_type!r}; known: {', '.join(known_types)}")
    if asset_type not in costs.asset_types:
        raise UserError(
            f"no costs for asset type {asset_type!r}; give [costs.asset_types.{asset_type}] "
            f"(costs are given for {', '.join(costs.asset_types)})"
        )
    base = costs.asset_types[asset_type]
    override = costs.agencies[agency].asset_types.get(asset_type) if agency in costs.agencies else None
    purchase = override.purchase_usd if override is not None and override.purchase_usd is not None else base.purchase_usd
    running = (
        override.running_usd_per_year
        if override is not None and override.running_usd_per_year is not None
        else base.running_usd_per_year
    )
    return purchase.at(level), running.at(level)


def addition_cost_usd(
    costs: CostsConfig,
    agency: str,
    asset_type: str,
    count: int,
    start: dt.date,
    end: dt.date,
    level: str = "central",
) -> float:
    """What `count` extra assets of `asset_type` cost `agency`: their purchase, delivered on `start`,
    plus their running cost for the days from `start` up to `end` (end exclusive: `end - start`
    days, at the yearly cost / 365.25). Unknown agencies and asset types, a negative count and an
    `end` before `start` are UserErrors. Zero assets cost nothing.

    This is the cost `demining plan` weighs: a delivery on `start` that works to `end`. In a run,
    the same assets also stop when their agency stands down (see the module docstring), so a run's
    extra spend can be less when the campaign finishes before `end`."""
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
        raise UserError(f"count must be a whole number of assets >= 0, not {count!r}")
    if end < start:
        raise UserError(f"end {end} is before start {start}")
    purchase, running = unit_costs(costs, agency, asset_type, level)
    if count == 0:
        return 0.0
    return float(count * (purchase + running * (end - start).days / DAYS_PER_YEAR))


# --------------------------------------------------------------------------- the fleet
@dataclass(frozen=True)
class Fleet:
    """Every delivery of a scenario as arrays (one entry per delivery), with its unit costs: what
    spend is computed from. Days count from the scenario's start date."""

    start_date: dt.date
    horizon_day: float
    agency_keys: tuple[str, ...]
    agency_districts: tuple[tuple[str, ...], ...]  # per agency
    in_published_totals: np.ndarray  # per agency (bool)
    agency: np.ndarray  # per delivery: index into agency_keys
    asset_type: np.ndarray  # per delivery: key (str)
    count: np.ndarray
    purchase_day: np.ndarray
    bought: np.ndarray  # bool: its purchase is campaign spend (not the fleet in hand at the start)
    run_from: np.ndarray  # first day in service
    run_to: np.ndarray  # day it leaves service, before stand-down (withdrawal, agency end, horizon)
    purchase_usd: np.ndarray  # (deliveries, levels): per asset
    running_usd_per_day: np.ndarray  # (deliveries, levels): per asset

    @classmethod
    def of(cls, cfg: ScenarioConfig) -> Fleet | None:
        """The fleet of a scenario; None when it has no [costs]."""
        costs = cfg.costs
        if costs is None:
            return None
        start = cfg.start_date
        horizon = float((cfg.end_date - start).days)
        keys = tuple(cfg.agencies)
        rows = []
        for g, (key, agency) in enumerate(cfg.agencies.items()):
            agency_start = float((agency.start - start).days)
            own = costs.agencies[key].charge_initial_fleet if key in costs.agencies else None
            charge_initial = costs.charge_initial_fleet if own is None else own
            in_hand_until = max(agency.start, start)
            agency_end = float((agency.end - start).days) if agency.end else math.inf
            for _, _, d in agency.all_deliveries():
                day = float((d.date - start).days)
                withdrawn = float((d.withdrawn - start).days) if d.withdrawn else math.inf
                unit = [unit_costs(costs, key, d.asset_type, level) for level in COST_LEVELS]
                rows.append(
                    (
                        g,
                        d.asset_type,
                        d.count,
                        day,
                        charge_initial or d.date > in_hand_until,
                        max(day, agency_start),
                        min(withdrawn, agency_end, horizon),
                        [u[0] for u in unit],
                        [u[1] / DAYS_PER_YEAR for u in unit],
                    )
                )
        columns = list(zip(*rows)) if rows else [[] for _ in range(9)]
        published = np.array([costs.agencies[k].in_published_totals if k in costs.agencies else True for k in keys])
        return cls(
            start_date=start,
            horizon_day=horizon,
            agency_keys=keys,
            agency_districts=tuple(tuple(a.districts) for a in cfg.agencies.values()),
            in_published_totals=published,
            agency=np.array(columns[0], dtype=int),
            asset_type=np.array(columns[1], dtype=object),
            count=np.array(columns[2], dtype=float),
            purchase_day=np.array(columns[3], dtype=float),
            bought=np.array(columns[4], dtype=bool),
            run_from=np.array(columns[5], dtype=float),
            run_to=np.array(columns[6], dtype=float),
            purchase_usd=np.array(columns[7], dtype=float).reshape(-1, len(COST_LEVELS)),
            running_usd_per_day=np.array(columns[8], dtype=float).reshape(-1, len(COST_LEVELS)),
        )

    def day(self, date: dt.date) -> float:
        return float((date - self.start_date).days)

    @cached_property
    def year_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(years, edges): the calendar years the run spans and their 1 January as days (len + 1)."""
        first = self.start_date.year
        last = (self.start_date + dt.timedelta(days=self.horizon_day)).year
        years = np.arange(first, last + 1)
        edges = np.array([self.day(dt.date(int(y), 1, 1)) for y in range(first, last + 2)], dtype=float)
        return years, edges

    def stand_down(self, completion_day: Mapping[str, float]) -> np.ndarray:
        """Per agency, the day it stands down: its districts' last handover (the horizon if not all
        are released within it)."""
        out = np.empty(len(self.agency_keys))
        for g, districts in enumerate(self.agency_districts):
            days = [completion_day.get(d, math.inf) for d in districts]
            last = max(days) if days else 0.0
            out[g] = math.ceil(last) if math.isfinite(last) else self.horizon_day
        return np.minimum(out, self.horizon_day)

    def spend(self, completion_day: Mapping[str, float], edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(purchase, running), each (deliveries, periods, levels) in USD: what each delivery costs
        in each period [edges[k], edges[k + 1]) of one replication with these completion days."""
        down = self.stand_down(completion_day)[self.agency]
        end = np.minimum(self.run_to, down)
        lo, hi = edges[:-1], edges[1:]
        days = np.clip(np.minimum(end[:, None], hi[None, :]) - np.maximum(self.run_from[:, None], lo[None, :]), 0.0, None)
        running = days[:, :, None] * (self.count[:, None] * self.running_usd_per_day)[:, None, :]
        bought = self.bought & (self.purchase_day < down)
        in_period = (self.purchase_day[:, None] >= lo[None, :]) & (self.purchase_day[:, None] < hi[None, :])
        purchase = (in_period & bought[:, None])[:, :, None] * (self.count[:, None] * self.purchase_usd)[:, None, :]
        return purchase, running


# --------------------------------------------------------------------------- spend per replication
def spend_table(fleet: Fleet | None, scalars: Mapping[int, dict]) -> pd.DataFrame:
    """Spend per replication, calendar year, agency and asset type (rows with spend only): purchase
    and running (central), their sum `spend_usd`, and the sum at low and high unit costs."""
    if fleet is None or not len(fleet.agency):
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in SPEND_COLUMNS}).astype(
            {"replication": "int64", "year": "int64", "agency": "object", "asset_type": "object"}
        )
    years, edges = fleet.year_edges
    groups = pd.MultiIndex.from_arrays([np.array(fleet.agency_keys)[fleet.agency], fleet.asset_type])
    codes, uniques = pd.factorize(groups)
    frames = []
    central = COST_LEVELS.index("central")
    for rep, s in sorted(scalars.items()):
        purchase, running = fleet.spend(s["completion_day"], edges)
        total = purchase + running  # (deliveries, years, levels)
        summed = np.zeros((len(uniques), len(years), len(COST_LEVELS) + 2))
        np.add.at(summed[..., : len(COST_LEVELS)], codes, total)
        np.add.at(summed[..., len(COST_LEVELS)], codes, purchase[..., central])
        np.add.at(summed[..., len(COST_LEVELS) + 1], codes, running[..., central])
        g, y = np.nonzero(summed[..., : len(COST_LEVELS)].sum(axis=-1) > 0)
        frames.append(
            pd.DataFrame(
                {
                    "replication": rep,
                    "year": years[y],
                    "agency": uniques.get_level_values(0)[g],
                    "asset_type": uniques.get_level_values(1)[g],
                    "purchase_usd": summed[g, y, len(COST_LEVELS)],
                    "running_usd": summed[g, y, len(COST_LEVELS) + 1],
                    "spend_usd": summed[g, y, central],
                    "spend_usd_low": summed[g, y, COST_LEVELS.index("low")],
                    "spend_usd_high": summed[g, y, COST_LEVELS.index("high")],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def spend_totals(spend: pd.DataFrame, replications) -> pd.DataFrame:
    """Per replication: spend to the end of each SPEND_MILESTONES year and in all (to completion,
    or to the horizon where not finished), at central, low and high unit costs."""
    reps = pd.Index(sorted(replications), name="replication")
    out = pd.DataFrame(index=reps)
    for level in COST_LEVELS:
        column = "spend_usd" + LEVEL_SUFFIX[level]
        for year in SPEND_MILESTONES:
            upto = spend[spend["year"] <= year].groupby("replication")[column].sum()
            out[f"spend_usd_by_{year}{LEVEL_SUFFIX[level]}"] = upto.reindex(reps, fill_value=0.0)
        out[f"spend_usd_total{LEVEL_SUFFIX[level]}"] = spend.groupby("replication")[column].sum().reindex(reps, fill_value=0.0)
    return out.reset_index()


def spend_per_replication(cfg: ScenarioConfig, scalars: Mapping[int, dict]) -> pd.DataFrame:
    """The spend columns of `RunResult.per_replication` from replications' scalars (what
    `sim.metrics.replication_scalars` returns, keyed by replication): one row per replication.
    Empty when the scenario has no [costs]."""
    fleet = Fleet.of(cfg)
    if fleet is None:
        return pd.DataFrame({"replication": sorted(scalars)})
    return spend_totals(spend_table(fleet, scalars), scalars)


def window_spend(fleet: Fleet, completion_day: Mapping[str, float], start: dt.date, end: dt.date, agencies=None) -> np.ndarray:
    """Spend at each cost level (low, central, high) in [start, end) of one replication, of the
    agencies whose index `agencies` selects (a bool array; default all)."""
    purchase, running = fleet.spend(completion_day, np.array([fleet.day(start), fleet.day(end)]))
    keep = np.ones(len(fleet.agency), dtype=bool) if agencies is None else np.asarray(agencies)[fleet.agency]
    return (purchase + running)[keep, 0, :].sum(axis=0)


# --------------------------------------------------------------------------- against the published totals
def published_totals(rows, manat_per_usd: float | None = None) -> list[dict]:
    """The published national spending figures of seeds/costs.csv (metric national_spend), in USD:
    manat converted at the row `manat_per_usd`."""
    by_id = {row.id: row for row in rows}
    rate = manat_per_usd if manat_per_usd is not None else by_id["manat_per_usd"].value
    out = []
    for row in rows:
        if row.metric != "national_spend" or row.agency != "all":
            continue
        usd = row.value / rate if row.unit == "AZN" else row.value
        shown = f"{row.value / 1e6:,.1f} M manat" if row.unit == "AZN" else f"USD {row.value / 1e6:,.1f} M"
        out.append(
            {
                "id": row.id,
                "start": row.window_start,
                "end": row.window_end,
                "published": shown,
                "published_usd": usd,
                "source": row.source,
            }
        )
    return out


def published_check(fleet: Fleet | None, scalars: Mapping[int, dict], rows, manat_per_usd: float | None = None) -> pd.DataFrame:
    """Modelled spend of the agencies Azerbaijan pays (costs.agencies.<key>.in_published_totals)
    over each published figure's window, mean over replications, at central, low and high unit
    costs, against the figure. Windows the run does not cover whole are left out."""
    columns = [
        "id",
        "window",
        "published",
        "published_usd",
        "modelled_usd",
        "modelled_usd_low",
        "modelled_usd_high",
        "ratio",
        "source",
    ]
    if fleet is None or not scalars:
        return pd.DataFrame(columns=columns)
    out = []
    horizon_end = fleet.start_date + dt.timedelta(days=fleet.horizon_day)
    for fig in published_totals(rows, manat_per_usd):
        if fig["start"] < fleet.start_date or fig["end"] >= horizon_end:
            continue
        end = fig["end"] + dt.timedelta(days=1)  # the published window's last day counts
        values = np.array(
            [window_spend(fleet, s["completion_day"], fig["start"], end, fleet.in_published_totals) for s in scalars.values()]
        ).mean(axis=0)
        low, central, high = (values[COST_LEVELS.index(level)] for level in COST_LEVELS)
        out.append(
            {
                "id": fig["id"],
                "window": f"{fig['start']} to {fig['end']}",
                "published": fig["published"],
                "published_usd": fig["published_usd"],
                "modelled_usd": central,
                "modelled_usd_low": low,
                "modelled_usd_high": high,
                "ratio": central / fig["published_usd"] if fig["published_usd"] else math.nan,
                "source": fig["source"],
            }
        )
    return pd.DataFrame(out, columns=columns)


# --------------------------------------------------------------------------- cost per hectare and item
# Which land a stage's work is counted against: survey cancels, technical survey reduces, and the
# rest (clearance, follow-up, quality control, any extra stage) clears.
METHODS = (
    ("survey", "cancelled_ha", ("non_technical_survey", "remote_survey")),
    ("technical_survey", "reduced_ha", ("technical_survey",)),
    ("clearance", "cleared_ha", None),  # None: every other stage
)


def _method_of_stage() -> dict[str, str]:
    out = {}
    for stage in STAGES:
        out[stage] = next((name for name, _, stages in METHODS if stages is not None and stage in stages), "clearance")
    return out


def method_spend(spend: pd.DataFrame, use_by_year: YearlyUse | None) -> dict[str, float]:
    """One replication's spend split by method: each asset type's spend in a year is shared among
    the stages in proportion to its busy days in them that year (all agencies together); a year
    in which it did no work at all goes to `idle`. `use_by_year` is the replication's
    scalars["use_by_year"] (sim.utilisation.yearly_use; None: no use recorded, all idle)."""
    method = _method_of_stage()
    names = [name for name, _, _ in METHODS]
    out = dict.fromkeys(names + ["idle"], 0.0)
    by_type = spend.groupby(["year", "asset_type"])["spend_usd"].sum()
    if not len(by_type):
        return out
    usd = by_type.to_numpy(dtype=np.float64)
    busy = np.zeros((len(by_type), len(STAGES)))
    if use_by_year is not None:
        columns = [use_by_year.columns.index(c) for c in BUSY_COLUMNS]
        y = pd.Index(use_by_year.years).get_indexer(by_type.index.get_level_values(0).astype(np.int64))
        k = pd.Index(use_by_year.asset_types).get_indexer(by_type.index.get_level_values(1))
        found = (y >= 0) & (k >= 0)
        busy[found] = use_by_year.assets[y[found], k[found]][:, columns]
        busy[np.isnan(busy)] = 0.0  # a type with no days that year
    # Stage by stage, as a sum over them always has (the same floats).
    total = np.zeros(len(usd))
    for s in range(len(STAGES)):
        total = total + busy[:, s]
    idle = total <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        share = usd[:, None] * busy / total[:, None]
    # Each method's spend added group by group, stage by stage, in order: a running sum from 0.
    of_stage = np.array([method[stage] for stage in STAGES], dtype=object)
    for name in names:
        parts = share[~idle][:, of_stage == name].ravel()
        out[name] = float(np.add.accumulate(np.concatenate([[0.0], parts]))[-1])
    out["idle"] = float(np.add.accumulate(np.concatenate([[0.0], usd[idle]]))[-1])
    return out


def cost_summary(
    fleet: Fleet | None,
    scalars: Mapping[int, dict],
    spend: pd.DataFrame,
    totals: pd.DataFrame,
    check: pd.DataFrame,
    band: Band = BAND,
) -> dict | None:
    """The `costs` part of a run's summary.json: spend to 2025, 2030 and completion (mean and band
    across replications at central unit costs, and the means at low and high unit costs); mean spend
    per year and per agency; USD per ha released and processed and per item found; spend and USD
    per ha by method; and `check`, the check against the published national totals (`published_check`)."""
    if fleet is None or not scalars:
        return None
    reps = sorted(scalars)
    totals = totals.set_index("replication").loc[reps]

    def spread(values) -> dict:
        values = np.asarray(values, dtype=float)
        finite = values[np.isfinite(values)]
        if not len(finite):
            return {"mean": math.nan, band.low_name: math.nan, band.high_name: math.nan}
        return {
            "mean": float(finite.mean()),
            band.low_name: float(np.quantile(finite, band.low)),
            band.high_name: float(np.quantile(finite, band.high)),
        }

    spend_usd = {}
    for key, column in [(f"by_{y}", f"spend_usd_by_{y}") for y in SPEND_MILESTONES] + [("to_completion", "spend_usd_total")]:
        spend_usd[key] = spread(totals[column]) | {
            "low_unit_costs_mean": float(totals[column + "_low"].mean()),
            "high_unit_costs_mean": float(totals[column + "_high"].mean()),
        }
    n = len(reps)
    per_year = spend.groupby("year")["spend_usd"].sum() / n
    per_agency = spend.groupby("agency")["spend_usd"].sum() / n
    released = np.array([scalars[r]["totals"]["released_ha"] for r in reps])
    processed = np.array([scalars[r]["totals"]["reduced_ha"] + scalars[r]["totals"]["cleared_ha"] for r in reps])
    items = np.array([sum(scalars[r]["totals"][f"items_{k}"] for k in ("ap", "at", "uxo")) for r in reps])
    total = totals["spend_usd_total"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        per_ha_released = np.where(released > 0, total / released, np.nan)
        per_ha_processed = np.where(processed > 0, total / processed, np.nan)
        per_item = np.where(items > 0, total / items, np.nan)
    methods = {}
    # One pass over the spend table (not a filter per replication: quadratic in replications).
    by_replication = dict(tuple(spend.groupby("replication", sort=False)))
    shares = [method_spend(by_replication.get(r, spend.iloc[:0]), scalars[r].get("use_by_year")) for r in reps]
    for name, land, _ in METHODS:
        usd = np.array([s[name] for s in shares])
        ha = np.array([scalars[r]["totals"][land] for r in reps])
        methods[name] = {
            "land": land,
            "spend_usd_mean": float(usd.mean()),
            "area_ha_mean": float(ha.mean()),
            "usd_per_ha": float(usd.mean() / ha.mean()) if ha.mean() > 0 else math.nan,
        }
    methods["idle"] = {"spend_usd_mean": float(np.mean([s["idle"] for s in shares]))}
    finished = float(np.mean([math.isfinite(scalars[r]["completion_day"]["all"]) for r in reps]))
    return {
        "currency": "USD, nominal (no inflation or discounting)",
        "horizon_end": (fleet.start_date + dt.timedelta(days=fleet.horizon_day)).isoformat(),
        "share_of_replications_finished": finished,  # below 1: "to completion" stops at the horizon for the others
        "unit_costs": "central; *_unit_costs_mean: every unit cost at its low or high end",
        "spend_usd": spend_usd,
        "spend_per_year_usd_mean": {str(int(y)): float(v) for y, v in per_year.items()},
        "spend_by_agency_usd_mean": {str(k): float(v) for k, v in per_agency.items()},
        "usd_per_ha_released": spread(per_ha_released),
        "usd_per_ha_processed": spread(per_ha_processed),
        "usd_per_item_found": spread(per_item),
        "by_method": methods,
        "published_check": check.to_dict("records"),
    }
