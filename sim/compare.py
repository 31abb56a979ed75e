"""Comparing finished runs: paired differences from a reference scenario, and a report.

Two runs with the same seed and replication count share their random numbers replication by
replication (common random numbers), so the difference scenario - reference is taken per
replication and summarised (median and band, `sim.bands`): a small real difference is not lost
in the noise between replications. Runs with other seeds or replication counts are compared
unpaired (the differences of every combination of their replications), and said so.

A comparison answers for the whole campaign and for each district, in sections built from one
list of outcomes (`Outcome`): the dates a share of the hazardous area is released (90 %, any
share asked for, and every parcel handed over), released area, items and casualties by the end of
given years, and casualties over the whole run; and per calendar year, casualties avoided. The
district and yearly numbers come from each run's district stocks and monthly flows
(districts.parquet, monthly.parquet), reduced per replication (`RunPaths`).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .bands import BAND, Band, band_of
from .errors import UserError
from .metrics import MILESTONE_YEARS
from .recording import VICTIMS
from .results import read_record, uncertainty_record

# (column in replications.parquet, label, unit): whole-campaign outcomes read from each run's
# per-replication table.
METRICS = (
    ("released_ha_by_2025", "released by end 2025", "ha"),
    ("released_ha_by_2030", "released by end 2030", "ha"),
    ("items_by_2030", "items found by end 2030", "items"),
    ("civilian_casualties_by_2030", "civilian casualties by end 2030", "people"),
    ("deminer_casualties_by_2030", "deminer casualties by end 2030", "people"),
    ("soldier_casualties_by_2030", "soldier casualties by end 2030", "people"),
)

# (key in the comparison table, label, column of replications.parquet): the dates the hazardous
# area of all districts reaches a share released, always reported; inf in a replication that does
# not reach it (censored at the horizon).
DATE_MILESTONES = (
    ("released_90pct", "90 % released", "released_90pct_day"),
    ("all_released", "all released", "all_released_day"),
)
DEFAULT_SHARES = (0.9,)
DAYS_PER_MONTH = 365.25 / 12
ALL = "all"  # the region of the whole campaign (every district)
MAX_PAIRS = 100_000  # unpaired differences: at most this many combinations of replications

# Spend (sim.costs), when every run recorded it: (column in replications.parquet, label, unit).
COST_METRICS = (
    ("spend_usd_by_2030", "spend to end 2030", "USD"),
    ("spend_usd_total", "spend to completion", "USD"),
)
BOOTSTRAP_RESAMPLES = 2000  # of replications, for the interval of a cost-effectiveness ratio


# --------------------------------------------------------------------------- outcomes
@dataclass(frozen=True)
class Outcome:
    """One number a comparison reports per scenario and region, with its difference from the
    reference. A date (`unit` "date") is when a share of the hazardous area is released (`share`;
    None: every parcel handed over); an amount is a `measure` by the end of `year` (None: to the
    horizon)."""

    key: str  # column prefix in the tables
    label: str  # for people
    unit: str  # "date", or the unit of an amount: ha, items, people
    share: float | None = None
    measure: str = ""  # released_ha, items, or one of CASUALTY_MEASURES
    year: int | None = None

    @property
    def is_date(self) -> bool:
        return self.unit == "date"


MEASURES = (
    ("released_ha", "released", "ha"),
    ("items", "items found", "items"),
    *((f"{who}_casualties", f"{who} casualties", "people") for who in VICTIMS),
)
CASUALTY_MEASURES = tuple(f"{who}_casualties" for who in VICTIMS)


def _percent(share: float) -> str:
    return f"{round(share * 100, 6):g}"


def share_outcome(share: float) -> Outcome:
    return Outcome(f"released_{_percent(share)}pct", f"{_percent(share)} % released", "date", share=share)


ALL_RELEASED = Outcome("all_released", "all released", "date")


def by_year_outcome(measure: str, year: int) -> Outcome:
    label, unit = {m: (lab, u) for m, lab, u in MEASURES}[measure]
    return Outcome(f"{measure}_by_{year}", f"{label} by end {year}", unit, measure=measure, year=year)


def campaign_outcome(measure: str) -> Outcome:
    label, unit = {m: (lab, u) for m, lab, u in MEASURES}[measure]
    return Outcome(f"{measure}_to_horizon", f"{label}, whole run", unit, measure=measure)


@dataclass(frozen=True)
class Asked:
    """What a comparison reports besides its fixed outcomes: shares of the hazardous area whose
    release date it gives (besides 90 % and all), years by whose end it totals released area,
    items and casualties (besides 2025 and 2030), and the districts shown (None: all; the CSV
    files always hold every district)."""

    shares: tuple[float, ...] = ()
    years: tuple[int, ...] = ()
    districts: tuple[str, ...] | None = None

    def date_outcomes(self) -> list[Outcome]:
        shares = sorted({*DEFAULT_SHARES, *(s for s in self.shares if s < 1)})
        return [share_outcome(s) for s in shares] + [ALL_RELEASED]

    def all_years(self) -> list[int]:
        return sorted({*MILESTONE_YEARS, *self.years})

    def year_outcomes(self) -> list[Outcome]:
        return [by_year_outcome(m, y) for y in self.all_years() for m, _, _ in MEASURES]

    def campaign_outcomes(self) -> list[Outcome]:
        return [campaign_outcome(m) for m in CASUALTY_MEASURES]


def national_outcomes(asked: Asked) -> list[Outcome]:
    """The rows of the whole-campaign table, in order: dates, then by year the METRICS and the
    totals by the other years asked for, then casualties over the whole run."""
    amounts = [Outcome(column, label, unit, year=_year_of(column)) for column, label, unit in METRICS]
    amounts += [o for o in asked.year_outcomes() if o.year not in MILESTONE_YEARS]
    amounts.sort(key=lambda o: o.year or 10_000)  # stable: METRICS keep their order within a year
    return asked.date_outcomes() + amounts + asked.campaign_outcomes()


def _year_of(column: str) -> int | None:
    """The year of a METRICS column named ..._by_YYYY (None for others)."""
    tail = column.rsplit("_by_", 1)[-1]
    return int(tail) if len(tail) == 4 and tail.isdigit() and "_by_" in column else None


def district_outcomes(asked: Asked) -> list[Outcome]:
    """The rows of the per-district table: dates, totals by every year, casualties over the whole run."""
    return asked.date_outcomes() + asked.year_outcomes() + asked.campaign_outcomes()


def district_summary_outcomes(asked: Asked) -> list[Outcome]:
    """The per-district rows shown in the terminal and the report (the CSV holds them all): dates,
    released area by every year, civilian casualties by the years asked for and over the whole run."""
    out = asked.date_outcomes()
    out += [by_year_outcome("released_ha", y) for y in asked.all_years()]
    out += [by_year_outcome(m, y) for y in asked.years for m in ("items", "civilian_casualties")]
    return out + [campaign_outcome("civilian_casualties")]


# --------------------------------------------------------------------------- per-replication paths
@dataclass
class RunPaths:
    """Per replication, what district and yearly questions need, in replication order: released
    area at each month end and each district's hazardous area (from the district stocks), and
    items and casualties per calendar year and district (from the monthly flows)."""

    districts: tuple[str, ...]
    months: pd.DatetimeIndex  # the months' labels (first of the month)
    month_end_day: np.ndarray  # (months,) day since the start of each month's last day
    released: np.ndarray  # (replications, months, districts) ha released by the month's end
    initial: np.ndarray  # (replications, districts) hazardous area, ha
    years: np.ndarray  # (years,) calendar years the run covers
    flows: dict[str, np.ndarray]  # items and CASUALTY_MEASURES -> (replications, years, districts)
    # The replications' numbers in order (0 to n-1, or the attempts a conditioned run accepted).
    numbers: np.ndarray | None = None

    @classmethod
    def empty(cls, districts, replications, start: pd.Timestamp, horizon_end: pd.Timestamp) -> RunPaths:
        """`replications`: a count (numbered 0 to n-1) or the replications' numbers."""
        numbers = np.arange(replications) if isinstance(replications, int | np.integer) else np.sort(np.asarray(replications))
        replications = len(numbers)
        first = start.to_period("M")
        months = pd.period_range(first, (horizon_end - pd.Timedelta(days=1)).to_period("M"), freq="M").to_timestamp()
        edges = np.array([(m - start).days for m in months[1:]] + [(horizon_end - start).days], dtype=float)
        years = np.arange(start.year, months[-1].year + 1)
        n, m, d = replications, len(months), len(districts)
        return cls(
            districts=tuple(districts),
            months=months,
            month_end_day=edges - 1.0,
            released=np.zeros((n, m, d)),
            initial=np.zeros((n, d)),
            years=years,
            flows={k: np.zeros((n, len(years), d)) for k in FLOW_MEASURES},
            numbers=numbers,
        )

    def _index(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        months = pd.DatetimeIndex(frame["month"])
        first = self.months[0]
        month = (months.year - first.year) * 12 + (months.month - first.month)
        district = pd.Categorical(frame["district"].astype(str), categories=self.districts).codes
        if (district < 0).any():
            raise ValueError(f"unknown district {frame['district'][district < 0].iloc[0]!r}")
        rep = frame["replication"].to_numpy()
        if self.numbers is not None:
            rep = np.searchsorted(self.numbers, rep)
        return rep, np.asarray(month), np.asarray(district), np.asarray(months.year - self.years[0])

    def add_stocks(self, frame: pd.DataFrame) -> None:
        rep, month, district, _ = self._index(frame)
        self.released[rep, month, district] = frame["released_ha"].to_numpy()
        first = month == 0
        self.initial[rep[first], district[first]] = (
            frame["suspected_ha"].to_numpy() + frame["confirmed_ha"].to_numpy() + frame["released_ha"].to_numpy()
        )[first]

    def add_flows(self, frame: pd.DataFrame) -> None:
        rep, _, district, year = self._index(frame)
        # Runs of model revisions before 11 had no soldiers: their columns are absent, and zero.
        frame = frame.reindex(columns=[*frame.columns, *(c for c in FLOW_COLUMNS if c not in frame)], fill_value=0.0)
        for measure, columns in FLOW_MEASURES.items():
            np.add.at(self.flows[measure], (rep, year, district), frame[list(columns)].to_numpy().sum(axis=1))

    @classmethod
    def from_frames(cls, stocks, monthly, districts, replications, start, horizon_end) -> RunPaths:
        """From a run's districts and monthly tables in memory (the Python API's RunResult)."""
        paths = cls.empty(districts, replications, start, horizon_end)
        paths.add_stocks(stocks)
        paths.add_flows(monthly)
        return paths

    @classmethod
    def read(cls, folder: Path, districts, replications, start, horizon_end) -> RunPaths:
        """From a results folder, a batch of rows at a time (a big run's tables need not fit in memory)."""
        paths = cls.empty(districts, replications, start, horizon_end)
        for name, columns, add in (
            ("districts.parquet", STOCK_COLUMNS, paths.add_stocks),
            ("monthly.parquet", FLOW_COLUMNS, paths.add_flows),
        ):
            table = pq.ParquetFile(folder / name)
            present = [c for c in columns if c in table.schema_arrow.names]  # older runs lack some (`add_flows`)
            for batch in table.iter_batches(batch_size=200_000, columns=present):
                add(batch.to_pandas())
        return paths

    # ---- per-replication outcomes of a region (a district, or ALL)
    def _columns(self, region: str) -> slice | list[int]:
        return slice(None) if region == ALL else [self.districts.index(region)]

    def share_days(self, region: str, share: float) -> np.ndarray:
        """Day (month end) the region's released area first reaches `share` of its hazardous
        area, per replication; inf where it does not within the run."""
        cols = self._columns(region)
        path = self.released[:, :, cols].sum(axis=2)
        initial = self.initial[:, cols].sum(axis=1)
        reached = path >= share * initial[:, None] - 1e-6
        first = reached.argmax(axis=1)
        return np.where(reached.any(axis=1), self.month_end_day[first], np.inf)

    def released_by(self, region: str, year: int) -> np.ndarray:
        last = np.flatnonzero(self.months.year <= year)
        if not len(last):
            return np.zeros(len(self.released))
        return self.released[:, last[-1], self._columns(region)].sum(axis=1)

    def flow_by(self, region: str, measure: str, year: int | None) -> np.ndarray:
        """A flow summed from the start to the end of `year` (None: the whole run), per replication."""
        flows = self.flows[measure][:, :, self._columns(region)].sum(axis=2)
        upto = self.years <= year if year is not None else np.ones(len(self.years), bool)
        return flows[:, upto].sum(axis=1)


STOCK_COLUMNS = ("replication", "month", "district", "suspected_ha", "confirmed_ha", "released_ha")
FLOW_MEASURES = {
    "items": ("items_ap", "items_at", "items_uxo"),
    **{f"{who}_casualties": (f"{who}_killed", f"{who}_injured") for who in VICTIMS},
}
FLOW_COLUMNS = ("replication", "month", "district", *(c for cols in FLOW_MEASURES.values() for c in cols))


# --------------------------------------------------------------------------- loading runs
@dataclass
class LoadedRun:
    """The parts of a finished run a comparison needs."""

    path: Path
    name: str
    question: str
    metadata: dict
    summary: dict
    completion: pd.DataFrame
    per_replication: pd.DataFrame
    per_year: pd.DataFrame
    released: pd.DataFrame
    paths: RunPaths | None = None  # district stocks and flows per replication (None: whole-campaign tables only)
    config: dict = field(default_factory=dict)  # the run's resolved config.toml
    spend: pd.DataFrame | None = None  # spend_per_year.parquet; None for runs made before costs existed

    @property
    def has_costs(self) -> bool:
        return self.spend is not None and "spend_usd_total" in self.per_replication

    @property
    def horizon_end(self) -> pd.Timestamp:
        return pd.Timestamp(self.summary["horizon_end"])

    @property
    def start_date(self) -> pd.Timestamp:
        return pd.Timestamp(self.summary["start_date"])

    @property
    def replications(self) -> int:
        return int(self.metadata["replications"])

    @property
    def seed(self):
        return self.metadata["seed"]

    @property
    def area_scale(self) -> float:
        return float(self.config.get("parcels", {}).get("area_scale", 1.0))

    @property
    def districts(self) -> tuple[str, ...]:
        return _district_keys(self.completion)


def _district_keys(completion: pd.DataFrame) -> tuple[str, ...]:
    return tuple(k for k in dict.fromkeys(completion["district"].astype(str)) if k != ALL)


def load_run(path: Path) -> LoadedRun:
    path = Path(path)
    try:
        meta = read_record(path / "metadata.json", ("scenario", "seed", "replications", "package_version", "git_revision"))
        cfg = tomllib.loads((path / "config.toml").read_text(encoding="utf-8"))
        summary = read_record(path / "summary.json", ("start_date", "horizon_end"))
        completion = pd.read_parquet(path / "completion.parquet")
        start, end = pd.Timestamp(summary["start_date"]), pd.Timestamp(summary["horizon_end"])
        per_replication = pd.read_parquet(path / "replications.parquet")
        numbers = sorted(int(r) for r in per_replication["replication"])
        paths = RunPaths.read(path, _district_keys(completion), numbers, start, end)
        return LoadedRun(
            path=path,
            name=meta["scenario"],
            question=cfg.get("question", ""),
            metadata=meta,
            summary=summary,
            completion=completion,
            per_replication=per_replication,
            per_year=pd.read_parquet(path / "per_year.parquet"),
            released=pd.read_parquet(path / "released.parquet"),
            paths=paths,
            config=cfg,
            spend=pd.read_parquet(path / "spend_per_year.parquet") if (path / "spend_per_year.parquet").is_file() else None,
        )
    except (OSError, KeyError, ValueError, IndexError) as exc:
        raise UserError(f"not a complete results folder ({exc})", source=str(path)) from None


def from_result(result, name: str | None = None) -> LoadedRun:
    """A run made in this process (`sim.run`, its tables kept in memory) as a comparison's input."""
    if result.districts is None or result.monthly is None:
        raise UserError("this run's tables were written to a folder, not kept: compare its folder (load_run)")
    start, end = pd.Timestamp(result.summary["start_date"]), pd.Timestamp(result.summary["horizon_end"])
    keys = _district_keys(result.completion)
    cfg = result.config.model_dump(mode="json", exclude_none=True)
    return LoadedRun(
        path=Path(name or result.config.name),
        name=name or result.config.name,
        question=result.config.question,
        metadata={
            "seed": result.seed,
            "replications": result.replications,
            "package_version": "",
            "git_revision": "",
            "uncertainty": uncertainty_record(result.uncertainty),
        },
        summary=result.summary,
        completion=result.completion,
        per_replication=result.per_replication,
        per_year=result.per_year,
        released=result.released,
        paths=RunPaths.from_frames(
            result.districts, result.monthly, keys, list(result.per_replication["replication"]), start, end
        ),
        config=cfg,
    )


# --------------------------------------------------------------------------- the comparison
@dataclass
class Comparison:
    """Finished runs compared with the first (the reference): the tables a report is made of."""

    runs: list[LoadedRun]
    table: pd.DataFrame  # one row per scenario (comparison_table)
    districts: pd.DataFrame  # one row per scenario and district (district_table)
    band: Band  # of the tables
    released_band: Band  # of the runs' released-area bands (written when each run finished)
    asked: Asked = field(default_factory=Asked)
    years: pd.DataFrame | None = None  # one row per scenario and calendar year (yearly_table)
    completion: pd.DataFrame | None = None  # per scenario and district completion, dates (district_completion_table)
    warnings: list[str] = field(default_factory=list)  # how the runs differ in ways that weaken the comparison
    costs: pd.DataFrame | None = None  # cost_table; None unless every run recorded its spend

    @property
    def released(self) -> pd.DataFrame:
        return pd.concat([r.released.assign(scenario=r.name) for r in self.runs], ignore_index=True)

    @property
    def per_year(self) -> pd.DataFrame:
        return pd.concat([r.per_year.assign(scenario=r.name) for r in self.runs], ignore_index=True)

    @property
    def shown_districts(self) -> tuple[str, ...]:
        return self.asked.districts or self.runs[0].districts

    @property
    def spend(self) -> pd.DataFrame | None:
        """Every run's spend per replication, year, agency and asset type, with a `scenario` column."""
        if self.costs is None:
            return None
        return pd.concat([r.spend.assign(scenario=r.name) for r in self.runs], ignore_index=True)

    @property
    def per_replication(self) -> pd.DataFrame:
        return pd.concat([r.per_replication.assign(scenario=r.name) for r in self.runs], ignore_index=True)


def compare_runs(runs: list[LoadedRun], band: Band = BAND, asked: Asked | None = None, *, force: bool = False) -> Comparison:
    """Compare finished runs (the first is the reference); see `sim.outputs.write_comparison` for
    the folder. `asked` adds shares, years and a focus on districts; `force` compares runs whose
    horizon or world (area scale, inventory) differ, which is otherwise refused."""
    asked = asked or Asked()
    if len(runs) < 2:
        raise UserError("compare needs at least two runs (the first is the reference)")
    runs = comparable(runs, force=force)
    warnings = settings_warnings(runs, force=force)
    released_bands = {band_of(r.summary) for r in runs}
    if len(released_bands) > 1:
        labels = ", ".join(sorted(b.label for b in released_bands))
        raise UserError(f"the runs' released-area bands differ ({labels}); run them with the same --band")
    missing = [r.name for r in runs if r.paths is None]
    if missing:
        raise UserError(f"{', '.join(missing)}: no district tables to compare (load the run with load_run or from_result)")
    check_asked(runs, asked)
    return Comparison(
        runs,
        comparison_table(runs, band, asked),
        district_table(runs, band, asked),
        band,
        released_bands.pop(),
        asked=asked,
        years=yearly_table(runs, band),
        completion=district_completion_table(runs, band),
        warnings=warnings,
        costs=cost_table(runs, band),
    )


def comparable(runs: list[LoadedRun], *, force: bool = False) -> list[LoadedRun]:
    """The runs, each with a label of its own; an error when their numbers would mislead.

    Two runs of one scenario (other seeds) are told apart by their folder's name. Runs must share
    start and horizon (unless forced): a run cut short would show as finishing *earlier* (its
    completion is censored at its own horizon); and every run must reach the last milestone year
    reported."""
    folders = [r.path.resolve() for r in runs]
    for i, folder in enumerate(folders):
        if folder in folders[:i]:
            raise UserError(f"the same run is given twice: {runs[i].path}")
    names = [r.name for r in runs]
    runs = [replace(r, name=f"{r.name}/{r.path.name}") if names.count(r.name) > 1 else r for r in runs]
    ref = runs[0]
    for run in runs[1:]:
        if (run.start_date, run.horizon_end) != (ref.start_date, ref.horizon_end) and not force:
            raise UserError(
                f"{run.name} runs {run.start_date:%Y-%m-%d} to {run.horizon_end:%Y-%m-%d}, {ref.name} "
                f"{ref.start_date:%Y-%m-%d} to {ref.horizon_end:%Y-%m-%d}; compare runs with the same start_date and "
                "horizon_years (or give --force: dates past the shorter horizon then count at it)"
            )
        if run.start_date != ref.start_date:
            raise UserError(
                f"{run.name} starts on {run.start_date:%Y-%m-%d}, {ref.name} on {ref.start_date:%Y-%m-%d}; "
                "compare runs with the same start_date"
            )
    last = pd.Timestamp(max(MILESTONE_YEARS), 12, 31)
    if min(r.horizon_end for r in runs) < last:
        raise UserError(
            f"the runs end on {min(r.horizon_end for r in runs):%Y-%m-%d}, before the end of {max(MILESTONE_YEARS)} that "
            f"the comparison reports on; run them with a horizon to {max(MILESTONE_YEARS) + 1} or later"
        )
    return runs


def settings_warnings(runs: list[LoadedRun], *, force: bool = False) -> list[str]:
    """How the runs' settings differ from the reference's, one line each. A different world (area
    scale, parcel inventory) is refused unless forced; other seeds or replication counts only
    lose the pairing, and are said."""
    ref = runs[0]
    lines = []
    for run in runs[1:]:
        world = []
        if run.area_scale != ref.area_scale:
            world.append(f"parcels.area_scale {run.area_scale:g} (reference {ref.area_scale:g})")
        if run.metadata.get("inventory_sha256") != ref.metadata.get("inventory_sha256"):
            world.append(
                f"parcel inventory {run.metadata.get('inventory') or 'generated'} (reference {ref.metadata.get('inventory') or 'generated'})"
            )
        if world and not force:
            raise UserError(
                f"{run.name} has {' and '.join(world)}: areas, items and casualties of another world are not "
                f"comparable with {ref.name}'s; compare runs of one world (or give --force)"
            )
        if world:
            lines.append(f"{run.name} has {' and '.join(world)}: compared anyway (--force)")
        if run.horizon_end != ref.horizon_end:
            lines.append(
                f"{run.name} ends on {run.horizon_end:%Y-%m-%d}, {ref.name} on {ref.horizon_end:%Y-%m-%d}: compared anyway "
                "(--force); a date past a run's horizon counts at its horizon"
            )
    settings = (("seed", lambda r: r.seed), ("replications", lambda r: r.replications), ("uncertain inputs", uncertainty_mode))
    differ = [(what, [f"{r.name} {value(r)}" for r in runs]) for what, value in settings if len({value(r) for r in runs}) > 1]
    if differ:
        said = "; ".join(f"{what}: {', '.join(values)}" for what, values in differ)
        lines.append(
            f"the runs differ in {' and '.join(w for w, _ in differ)} ({said}): compared unpaired, so the difference "
            "bands hold the noise of both runs; run them with the same --seed, --replications and --uncertainty to pair them"
        )
    elif len({kept_replications(r) for r in runs}) > 1:
        alike = set.intersection(*(set(kept_replications(r)) for r in runs))
        lines.append(
            f"the runs kept different drawn worlds ({len(alike)} of {ref.replications} alike: each was conditioned on "
            "its own past, sim.conditioning): compared unpaired; run a what-if that changes the past with "
            "--condition-on and the reference's scenario to pair them"
        )
    return lines


def kept_replications(run: LoadedRun) -> tuple[int, ...]:
    """The replications a run kept, by number: 0 to n-1, or the attempts a conditioned run accepted
    (sim.conditioning), which pair with another run's only where the numbers agree."""
    return tuple(sorted(int(r) for r in run.per_replication["replication"]))


def check_asked(runs: list[LoadedRun], asked: Asked) -> None:
    """One-line errors naming the option for shares, years and districts the runs cannot answer."""
    for share in asked.shares:
        if not 0 < share <= 1:
            raise UserError(
                f"--milestone {share:g}: give a share of the hazardous area released, above 0 and at most 1 (e.g. 0.95)"
            )
    start = runs[0].start_date
    end = min(r.horizon_end for r in runs)
    last = end.year if end >= pd.Timestamp(end.year, 12, 31) else end.year - 1
    for year in asked.years:
        if not start.year <= year <= last:
            raise UserError(
                f"--by-year {year}: the runs cover {start:%Y-%m-%d} to {end:%Y-%m-%d}; give a year from {start.year} to {last}"
            )
    known = runs[0].districts
    for run in runs[1:]:
        if run.districts != known:
            raise UserError(f"{run.name} has other districts than {runs[0].name}; compare runs of one set of districts")
    for name in asked.districts or ():
        if name not in known:
            raise UserError(f"--districts: unknown district {name!r}; valid names: {', '.join(known)}")


def what_bands_hold(runs: list[LoadedRun]) -> str:
    """What each run's bands hold, in words, with the words every run shares said once (runs made
    alike differ only in, say, whose past they were checked on), cut at a clause (", " or "; ")."""
    texts = [(r.metadata.get("uncertainty") or {}).get("holds", "replication noise only") for r in runs]
    common = os.path.commonprefix(texts)
    if len(set(texts)) == 1:
        return f"{common} (every scenario)"
    at_clause = all(t[len(common) :][:2] in ("", ", ", "; ") for t in texts)
    cut = len(common) if at_clause else max(common.rfind(", "), common.rfind("; "))
    if cut <= 0:
        return "; ".join(f"{r.name}: {t}" for r, t in zip(runs, texts, strict=True))
    rest = [(r.name, t[cut:].removeprefix(", ").removeprefix("; ")) for r, t in zip(runs, texts, strict=True)]
    return f"{texts[0][:cut]} (every scenario)" + "".join(f"; {name}: {tail}" for name, tail in rest if tail)


def uncertainty_mode(run: LoadedRun) -> str:
    """What the run's bands hold: none (replication noise only), inputs, fitted or all."""
    return (run.metadata.get("uncertainty") or {}).get("mode", "none")


def paired(runs: list[LoadedRun]) -> bool:
    """Same seed, replications and uncertain inputs drawn: replication i of each run shares its
    random numbers and its draws, so differences are taken replication by replication."""
    ref = runs[0].metadata
    return all(
        r.metadata["seed"] == ref["seed"]
        and r.metadata["replications"] == ref["replications"]
        and uncertainty_mode(r) == uncertainty_mode(runs[0])
        and kept_replications(r) == kept_replications(runs[0])
        for r in runs
    )


# --------------------------------------------------------------------------- values and differences
def outcome_values(run: LoadedRun, region: str, outcome: Outcome) -> np.ndarray:
    """Per replication (in replication order): days from the start for a date (inf: not within
    the run), else the amount."""
    if outcome.is_date:
        if outcome.share is None:
            dates = run.completion[run.completion["district"].astype(str) == region].sort_values("replication")["completion_date"]
            days = (dates - run.start_date).dt.days.to_numpy(dtype=float)
            return np.where(np.isnan(days), np.inf, days)
        return run.paths.share_days(region, outcome.share)
    if outcome.measure == "":  # a METRICS column of the per-replication table
        return run.per_replication.sort_values("replication")[outcome.key].to_numpy(dtype=float)
    if outcome.measure == "released_ha":
        return run.paths.released_by(region, outcome.year)
    return run.paths.flow_by(region, outcome.measure, outcome.year)


def _difference_samples(values: np.ndarray, reference: np.ndarray, pair: bool) -> np.ndarray:
    """Differences scenario - reference along the first axis: per replication when paired, else
    of every combination of replications (a fixed sample of MAX_PAIRS of them when more)."""
    if pair:
        return values - reference
    n, m = len(values), len(reference)
    if n * m <= MAX_PAIRS:
        i, j = np.divmod(np.arange(n * m), m)
    else:
        rng = np.random.default_rng(0)
        i, j = rng.integers(0, n, MAX_PAIRS), rng.integers(0, m, MAX_PAIRS)
    return values[i] - reference[j]


def _difference(values: np.ndarray, reference: np.ndarray, pair: bool, band: Band) -> dict:
    """Median and band of scenario - reference: per replication when paired, else of the
    difference of independent draws (every combination)."""
    lo, mid, hi = np.quantile(_difference_samples(values, reference, pair), band.quantiles)
    return {band.low_name: float(lo), "p50": float(mid), band.high_name: float(hi)}


def _fmt_date(start: pd.Timestamp, days: float, horizon_end: pd.Timestamp) -> str:
    date = start + pd.Timedelta(days=float(days))
    return f">{horizon_end:%Y-%m}" if date >= horizon_end else f"{date:%Y-%m}"


def _horizon_days(run: LoadedRun) -> float:
    return float((run.horizon_end - run.start_date).days)


def outcome_columns(run: LoadedRun, ref: LoadedRun, region: str, outcome: Outcome, pair: bool, band: Band) -> dict:
    """The columns of one outcome for one scenario and region: level (median and band) and the
    difference from the reference. Dates: as YYYY-MM ('>YYYY-MM' past the horizon, where a
    replication that does not get there counts), the share of replications that get there, and the
    difference in months."""
    values, ref_values = outcome_values(run, region, outcome), outcome_values(ref, region, outcome)
    key, lo, hi = outcome.key, band.low_name, band.high_name
    if outcome.is_date:
        reached = float(np.isfinite(values).mean())
        values = np.minimum(values, _horizon_days(run))
        ref_values = np.minimum(ref_values, _horizon_days(ref))
        # Dates are quantiles that are some replication's date (as in a run's summary), not between two.
        q = np.quantile(values, band.quantiles, method="inverted_cdf")
        row = {f"{key}_{name}": _fmt_date(run.start_date, v, run.horizon_end) for name, v in zip((lo, "p50", hi), q)}
        row[f"{key}_reached"] = reached
        diff = _difference(values, ref_values, pair, band)
        row.update({f"{key}_diff_months_{k}": v / DAYS_PER_MONTH for k, v in diff.items()})
        if key == ALL_RELEASED.key:
            row.update({f"{key}_diff_days_{k}": v for k, v in diff.items()})
        return row
    q = np.quantile(values, band.quantiles)
    row = {f"{key}_{lo}": float(q[0]), f"{key}_p50": float(q[1]), f"{key}_{hi}": float(q[2])}
    row.update({f"{key}_diff_{k}": v for k, v in _difference(values, ref_values, pair, band).items()})
    return row


# --------------------------------------------------------------------------- tables
def comparison_table(runs: list[LoadedRun], band: Band = BAND, asked: Asked | None = None) -> pd.DataFrame:
    """One row per scenario (the whole campaign): the outcomes of `national_outcomes`, each as
    median and band with the difference from the first run (paired by replication when possible;
    dates in months, and days for all released)."""
    asked = asked or Asked()
    ref, pair = runs[0], paired(runs)
    rows = []
    for run in runs:
        row = {"scenario": run.name, "replications": run.replications, "seed": run.seed, "uncertainty": uncertainty_mode(run)}
        for outcome in national_outcomes(asked):
            row.update(outcome_columns(run, ref, ALL, outcome, pair, band))
        row["share_done_by_horizon"] = row[f"{ALL_RELEASED.key}_reached"]
        row["paired"] = pair
        rows.append(row)
    return pd.DataFrame(rows)


def _sorted(run: LoadedRun, column: str) -> np.ndarray:
    return run.per_replication.sort_values("replication")[column].to_numpy(dtype=float)


def _civilian_casualties(run: LoadedRun) -> np.ndarray:
    return _sorted(run, "civilian_killed_at_horizon") + _sorted(run, "civilian_injured_at_horizon")


def cost_ratio(cost: np.ndarray, ref_cost: np.ndarray, gain: np.ndarray, ref_gain: np.ndarray, pair: bool, band: Band) -> dict:
    """Extra cost per unit gained, scenario against reference: (mean cost - mean reference cost) /
    (mean gain - mean reference gain), the ratio of mean differences (a ratio per replication
    explodes where a replication gains nothing). Its band comes from resampling replications
    (BOOTSTRAP_RESAMPLES, a fixed seed): pairs of replications together when paired, each run on
    its own otherwise. No gain (the difference of means <= 0): NaN. When more than the band's low
    share of resamples gain nothing, the upper end is unbounded (inf): the gain may be nil.
    A negative ratio is a what-if that gains and costs less."""
    rng = np.random.default_rng(0)
    n, m = len(cost), len(ref_cost)
    mine = rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))
    theirs = mine if pair else rng.integers(0, m, size=(BOOTSTRAP_RESAMPLES, m))
    d_cost = cost[mine].mean(axis=1) - ref_cost[theirs].mean(axis=1)
    d_gain = gain[mine].mean(axis=1) - ref_gain[theirs].mean(axis=1)
    gain_diff = gain.mean() - ref_gain.mean()
    estimate = (cost.mean() - ref_cost.mean()) / gain_diff if gain_diff > 0 else np.nan
    ok = d_gain > 0
    if not ok.any():
        return {"estimate": float(estimate), band.low_name: np.nan, band.high_name: np.nan}
    ratios = d_cost[ok] / d_gain[ok]
    low, high = float(np.quantile(ratios, band.low)), float(np.quantile(ratios, band.high))
    if (~ok).mean() > band.low:
        high = np.inf
    return {"estimate": float(estimate), band.low_name: low, band.high_name: high}


def cost_table(runs: list[LoadedRun], band: Band = BAND) -> pd.DataFrame | None:
    """One row per scenario: spend to end 2030 and to completion (P50 and band across replications,
    and the extra spend against the reference, paired by replication when possible), the spend to
    completion at low and high unit costs (means), USD per ha released over the whole campaign,
    and for each what-if the extra spend per extra ha released by end 2030 and the extra spend to
    completion per civilian casualty avoided (to the horizon), with their bands (`cost_ratio`).
    None unless every run recorded its spend (runs made before costs existed, or without [costs])."""
    if not all(r.has_costs for r in runs):
        return None
    ref = runs[0]
    pair = paired(runs)
    rows = []
    for run in runs:
        row = {"scenario": run.name}
        for column, _, _ in COST_METRICS:
            values, ref_values = _sorted(run, column), _sorted(ref, column)
            q = np.quantile(values, band.quantiles)
            row.update({f"{column}_{band.low_name}": q[0], f"{column}_p50": q[1], f"{column}_{band.high_name}": q[2]})
            row.update({f"{column}_diff_{k}": v for k, v in _difference(values, ref_values, pair, band).items()})
        for level in ("low", "high"):
            row[f"spend_usd_total_{level}_unit_costs_mean"] = float(_sorted(run, f"spend_usd_total_{level}").mean())
        released = _sorted(run, "released_ha_at_horizon")
        per_ha = np.where(released > 0, _sorted(run, "spend_usd_total") / np.where(released > 0, released, 1.0), np.nan)
        q = np.nanquantile(per_ha, band.quantiles) if np.isfinite(per_ha).any() else [np.nan] * 3
        row.update(
            {
                f"usd_per_ha_released_{band.low_name}": q[0],
                "usd_per_ha_released_p50": q[1],
                f"usd_per_ha_released_{band.high_name}": q[2],
            }
        )
        if run is ref:
            row.update({f"usd_per_ha_gained_by_2030_{k}": np.nan for k in ("estimate", band.low_name, band.high_name)})
            row.update({f"usd_per_casualty_avoided_{k}": np.nan for k in ("estimate", band.low_name, band.high_name)})
        else:
            per_ha_gained = cost_ratio(
                _sorted(run, "spend_usd_by_2030"),
                _sorted(ref, "spend_usd_by_2030"),
                _sorted(run, "released_ha_by_2030"),
                _sorted(ref, "released_ha_by_2030"),
                pair,
                band,
            )
            per_casualty = cost_ratio(
                _sorted(run, "spend_usd_total"),
                _sorted(ref, "spend_usd_total"),
                -_civilian_casualties(run),  # the gain is casualties avoided
                -_civilian_casualties(ref),
                pair,
                band,
            )
            row.update({f"usd_per_ha_gained_by_2030_{k}": v for k, v in per_ha_gained.items()})
            row.update({f"usd_per_casualty_avoided_{k}": v for k, v in per_casualty.items()})
        row["paired"] = pair
        rows.append(row)
    return pd.DataFrame(rows)


def district_table(runs: list[LoadedRun], band: Band = BAND, asked: Asked | None = None) -> pd.DataFrame:
    """One row per scenario and district (every district, whatever the focus): the outcomes of
    `district_outcomes` with their differences from the reference in that district."""
    asked = asked or Asked()
    ref, pair = runs[0], paired(runs)
    rows = []
    for run in runs:
        for district in ref.districts:
            row = {"scenario": run.name, "district": district}
            for outcome in district_outcomes(asked):
                row.update(outcome_columns(run, ref, district, outcome, pair, band))
            row["paired"] = pair
            rows.append(row)
    return pd.DataFrame(rows)


def yearly_table(runs: list[LoadedRun], band: Band = BAND) -> pd.DataFrame:
    """One row per scenario and calendar year (the whole campaign): released area by the year's
    end, and civilian and deminer casualties in the year, with the difference from the reference
    (released: scenario - reference; casualties: avoided, reference - scenario, in the year and
    since the start). Means as well as medians: a year's casualties are small counts."""
    ref, pair = runs[0], paired(runs)
    lo, hi = band.low_name, band.high_name
    years = [y for y in ref.paths.years if all(y in r.paths.years for r in runs)]

    def spread(prefix: str, values: np.ndarray) -> dict:
        q = np.quantile(values, band.quantiles)
        return {f"{prefix}_mean": float(values.mean()), f"{prefix}_{lo}": q[0], f"{prefix}_p50": q[1], f"{prefix}_{hi}": q[2]}

    rows = []
    for run in runs:
        cumulative = {}
        for year in years:
            start = max(run.start_date, pd.Timestamp(year, 1, 1))
            end = min(run.horizon_end - pd.Timedelta(days=1), pd.Timestamp(year, 12, 31))
            row = {"scenario": run.name, "year": year, "period": f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"}
            released, ref_released = run.paths.released_by(ALL, year), ref.paths.released_by(ALL, year)
            row.update(spread("released_ha_by_end", released))
            row.update(spread("released_ha_by_end_diff", _difference_samples(released, ref_released, pair)))
            for measure in CASUALTY_MEASURES:
                k = np.flatnonzero(run.paths.years == year)[0]
                kr = np.flatnonzero(ref.paths.years == year)[0]
                values = run.paths.flows[measure][:, k, :].sum(axis=1)
                ref_values = ref.paths.flows[measure][:, kr, :].sum(axis=1)
                avoided = -_difference_samples(values, ref_values, pair)
                cumulative[measure] = cumulative.get(measure, 0) + avoided
                row.update(spread(measure, values))
                row.update(spread(f"{measure}_avoided", avoided))
                row.update(spread(f"{measure}_avoided_since_start", cumulative[measure]))
            row["paired"] = pair
            rows.append(row)
    return pd.DataFrame(rows)


def released_difference(runs: list[LoadedRun], band: Band = BAND) -> pd.DataFrame:
    """Per scenario other than the reference and month: the released area (all districts) minus
    the reference's, median and band (paired by replication when possible); months both runs cover."""
    ref, pair = runs[0], paired(runs)
    frames = []
    for run in runs[1:]:
        months = min(len(run.paths.months), len(ref.paths.months))
        values = run.paths.released[:, :months, :].sum(axis=2)
        ref_values = ref.paths.released[:, :months, :].sum(axis=2)
        diff = _difference_samples(values, ref_values, pair)
        q = np.quantile(diff, band.quantiles, axis=0)
        frames.append(
            pd.DataFrame({"scenario": run.name, "month": run.paths.months[:months], "low": q[0], "median": q[1], "high": q[2]})
        )
    return pd.concat(frames, ignore_index=True)


def _money(value: float) -> str:
    """USD in millions for tables: 'USD 12.3 M'; n/a for NaN, unbounded for inf."""
    if value != value:
        return "n/a"
    if np.isinf(value):
        return "unbounded" if value > 0 else "-unbounded"
    return f"{value / 1e6:,.1f} M"


def _ratio_text(row: dict, prefix: str, band: Band) -> str:
    """A cost-effectiveness ratio in USD with its band: '45,000 (30,000 to 90,000)'; n/a when nothing is gained."""
    est, lo, hi = row[f"{prefix}_estimate"], row[f"{prefix}_{band.low_name}"], row[f"{prefix}_{band.high_name}"]
    if est != est:
        return "n/a (no gain)"

    def one(v: float) -> str:
        if v != v:
            return "n/a"
        return "unbounded" if np.isinf(v) else f"{v:,.0f}"

    return f"{one(est)} ({one(lo)} to {one(hi)})"


COST_HEADINGS = (
    "spend to end 2030, USD P50 ({band})",
    "extra vs reference",
    "spend to completion, USD P50 ({band})",
    "extra vs reference",
    "to completion at low-high unit costs (means)",
    "USD per ha released, P50 ({band})",
    "extra USD per extra ha released by end 2030",
    "extra USD to completion per civilian casualty avoided",
)


def cost_rows(costs: pd.DataFrame, band: Band) -> list[list[str]]:
    """The cost table's cells as text, one list per scenario, in COST_HEADINGS order."""
    lo, hi = band.low_name, band.high_name
    out = []
    for row in costs.to_dict("records"):
        cells = [row["scenario"]]
        for column, _, _ in COST_METRICS:
            d = f"{column}_diff"
            cells += [
                f"{_money(row[column + '_p50'])} ({_money(row[f'{column}_{lo}'])} to {_money(row[f'{column}_{hi}'])})",
                f"{row[d + '_p50'] / 1e6:+,.1f} M ({row[f'{d}_{lo}'] / 1e6:+,.1f} to {row[f'{d}_{hi}'] / 1e6:+,.1f})",
            ]
        cells.append(
            f"{_money(row['spend_usd_total_low_unit_costs_mean'])} to {_money(row['spend_usd_total_high_unit_costs_mean'])}"
        )
        cells.append(
            f"{row['usd_per_ha_released_p50']:,.0f} ({row[f'usd_per_ha_released_{lo}']:,.0f} to {row[f'usd_per_ha_released_{hi}']:,.0f})"
        )
        cells.append(_ratio_text(row, "usd_per_ha_gained_by_2030", band) if len(out) else "reference")
        cells.append(_ratio_text(row, "usd_per_casualty_avoided", band) if len(out) else "reference")
        out.append(cells)
    return out


def markdown_costs(costs: pd.DataFrame, band: Band = BAND) -> str:
    """The cost comparison as a Markdown table."""
    header = ["scenario", *(h.format(band=band.label) for h in COST_HEADINGS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in cost_rows(costs, band)]
    return "\n".join(lines) + "\n"


def district_completion_table(runs: list[LoadedRun], band: Band = BAND) -> pd.DataFrame:
    """Per scenario and district (and `all`): the date all hazardous area is handed over, median
    and band over replications (replications' own dates; NaT where that quantile is past the run's
    horizon: not finished), and the share of replications finished (for plots)."""
    rows = []
    for run in runs:
        start = run.start_date
        for district in [*run.districts, ALL]:
            days = outcome_values(run, district, ALL_RELEASED)
            q = np.quantile(days, band.quantiles, method="inverted_cdf")
            dates = [start + pd.Timedelta(days=float(v)) if np.isfinite(v) else pd.NaT for v in q]
            rows.append(
                {
                    "scenario": run.name,
                    "district": district,
                    band.low_name: dates[0],
                    "p50": dates[1],
                    band.high_name: dates[2],
                    "share_done": float(np.isfinite(days).mean()),
                    "replications": run.replications,
                    "start": start,
                    "horizon_end": run.horizon_end,
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- cells, for people
def level_text(row: dict, outcome: Outcome, band: Band, sep: str = " to ") -> str:
    """The median and band of an outcome in a table row, e.g. '2027-08 (2027-05 to 2028-05)'."""
    key, lo, hi = outcome.key, band.low_name, band.high_name
    if outcome.is_date:
        return f"{row[key + '_p50']} ({row[f'{key}_{lo}']}{sep}{row[f'{key}_{hi}']})"
    digits = 1 if outcome.unit == "people" and max(abs(row[f"{key}_{hi}"]), abs(row[f"{key}_{lo}"])) < 10 else 0
    return f"{row[key + '_p50']:,.{digits}f} ({row[f'{key}_{lo}']:,.{digits}f}{sep}{row[f'{key}_{hi}']:,.{digits}f})"


def difference_text(row: dict, ref_row: dict, outcome: Outcome, band: Band, sep: str = " to ") -> str:
    """The difference from the reference, e.g. '-5.2 months (-8.0 to -2.1)'; a '*' when some
    replication of either run does not reach a date within its run (the difference then counts
    it at the horizon, so the true difference may be larger)."""
    if outcome.is_date:
        prefix, digits, unit = f"{outcome.key}_diff_months", 1, " months"
    else:
        prefix, unit = f"{outcome.key}_diff", f" {outcome.unit}"
        digits = (
            1
            if outcome.unit == "people"
            and max(abs(row[f"{prefix}_{band.high_name}"]), abs(row[f"{prefix}_{band.low_name}"])) < 10
            else 0
        )
    text = _signed(row, prefix, band, digits, sep).replace(" (", unit + " (", 1)
    if outcome.is_date and min(row[f"{outcome.key}_reached"], ref_row[f"{outcome.key}_reached"]) < 1:
        text += " *"
    return text


def censored(comparison: Comparison) -> bool:
    """Whether some replication of a compared run does not reach a reported date (whole campaign
    or a district shown) within its run."""
    shown = comparison.districts[comparison.districts["district"].isin(comparison.shown_districts)]
    columns = [f"{o.key}_reached" for o in comparison.asked.date_outcomes()]
    return bool((comparison.table[columns] < 1).any().any() or (shown[columns] < 1).any().any())


CENSORED_NOTE = (
    "*: some replications do not get there within the run; they count at the horizon "
    "('>YYYY-MM'), so the difference may be larger than shown."
)


def _signed(row: dict, prefix: str, band: Band, digits: int = 0, sep: str = " to ") -> str:
    lo, mid, hi = (_unsigned_zero(row[f"{prefix}_{n}"], digits) for n in (band.low_name, "p50", band.high_name))
    return f"{mid:+,.{digits}f} ({lo:+,.{digits}f}{sep}{hi:+,.{digits}f})"


def spared_text(row, prefix: str, band: Band, sep: str = " to ") -> str:
    """A mean and band of casualties avoided, e.g. '+0.4 (-1 to +2)'."""
    mean, lo, hi = (_unsigned_zero(row[f"{prefix}_{k}"], d) for k, d in (("mean", 1), (band.low_name, 0), (band.high_name, 0)))
    return f"{mean:+.1f} ({lo:+.0f}{sep}{hi:+.0f})"


def _unsigned_zero(value: float, digits: int) -> float:
    """Rounded as shown, with no '-0' (a difference of -0.001 ha is no difference)."""
    return round(float(value), digits) + 0.0


def outcome_rows(
    table: pd.DataFrame, outcomes: list[Outcome], band: Band, sep: str = " to "
) -> list[tuple[str, list[tuple[str, str]]]]:
    """A table with one row per outcome and one column per scenario: (label, [(level, difference
    from the reference or '') per scenario]); the scenarios in the table's order."""
    records = table.to_dict("records")
    ref = records[0]
    out = []
    for outcome in outcomes:
        label = outcome.label if outcome.is_date else f"{outcome.label} ({outcome.unit})"
        cells = [
            (level_text(r, outcome, band, sep), "" if k == 0 else difference_text(r, ref, outcome, band, sep))
            for k, r in enumerate(records)
        ]
        out.append((label, cells))
    return out


def markdown_table(table: pd.DataFrame, band: Band = BAND, asked: Asked | None = None) -> str:
    """The whole-campaign comparison as a Markdown table a planner can paste: one row per outcome,
    one column per scenario (P50 and band; below, the difference from the reference)."""
    asked = asked or Asked()
    scenarios = list(table["scenario"])
    header = [f"outcome: P50 ({band.label})", *scenarios]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, cells in outcome_rows(table, national_outcomes(asked), band):
        parts = [level if not diff else f"{level}<br>vs {scenarios[0]}: {diff}" for level, diff in cells]
        lines.append("| " + " | ".join([label, *parts]) + " |")
    modes = ", ".join(f"{row['scenario']}: {row['uncertainty']}" for row in table.to_dict("records"))
    lines += ["", f"Bands hold replication noise and the uncertain inputs drawn per replication (--uncertainty; {modes})."]
    return "\n".join(lines) + "\n\n" + CENSORED_NOTE + "\n"


def figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


# --------------------------------------------------------------------------- the report
REPORT_STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
    ".scroll{overflow-x:auto;max-width:100%}"
    "table{border-collapse:collapse;font-size:13px;margin:0.5em 0}"
    "td,th{border:1px solid #ccc;padding:4px 6px;text-align:right;vertical-align:top}"
    "td:first-child,th:first-child{text-align:left}th{background:#f4f4f4}"
    ".diff{color:#555;font-size:12px}img{max-width:100%;height:auto}"
    "caption{caption-side:bottom;text-align:left;font-size:12px;color:#555;padding-top:4px}"
)


def html_report(
    runs: list[LoadedRun],
    table: pd.DataFrame,
    figures: dict[str, bytes],
    assumptions: str,
    band: Band = BAND,
    comparison: Comparison | None = None,
    costs: pd.DataFrame | None = None,
    cost_figures: dict[str, bytes] | None = None,
) -> str:
    """One self-contained page: the tables, every plot embedded as data, each scenario's question and
    the model's assumptions. No scripts, styles or images from the network."""
    asked = comparison.asked if comparison else Asked()
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>Demining scenarios compared</title>",
        f"<style>{REPORT_STYLE}</style></head><body>",
        "<h1>Demining scenarios compared</h1>",
        f"<p>Reference scenario: <b>{html.escape(runs[0].name)}</b>. Differences are scenario minus reference, "
        + (
            "paired by replication (same seed: common random numbers)."
            if paired(runs)
            else "<b>unpaired</b> (seeds, replication counts or uncertain inputs drawn differ)."
        )
        + f" Intervals are {band.label} of replications; they hold "
        + html.escape(what_bands_hold(runs))
        + ".</p>",
    ]
    for warning in comparison.warnings if comparison else []:
        parts.append(f"<p><b>Warning:</b> {html.escape(warning)}</p>")
    parts.append("<h2>Scenarios</h2><ul>")
    for run in runs:
        meta = run.metadata
        parts.append(
            f"<li><b>{html.escape(run.name)}</b>: {html.escape(run.question)} "
            f"<small>({meta['replications']} replications, seed {meta['seed']}, area scale {run.area_scale:g}, "
            f"version {html.escape(str(meta['package_version']))}, git {html.escape(str(meta['git_revision'])[:12])})</small></li>"
        )
    parts.append("</ul><h2>The whole campaign</h2>")
    parts.append(_html_outcome_table(table, national_outcomes(asked), band, note=comparison is None or censored(comparison)))
    if comparison is not None:
        parts.append(_html_district_section(comparison))
        parts.append(_html_years_section(comparison))
    for title, png in figures.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
    parts.append("<h2>Costs</h2>")
    if costs is None:
        parts.append(
            "<p>Not every run recorded its spend (runs made before costs existed, or scenarios without a [costs] block).</p>"
        )
    else:
        parts.append(_html_costs(costs, band))
        parts.append(COST_NOTE)
        for title, png in (cost_figures or {}).items():
            data = base64.b64encode(png).decode("ascii")
            parts.append(f"<h3>{html.escape(title)}</h3><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
    parts.append("<h2>What limits progress</h2>")
    for run in runs:
        periods = run.summary.get("what_limits_progress", [])
        items = "".join(f"<li>{html.escape(p['text'])}</li>" for p in periods) or "<li>not recorded by this run</li>"
        parts.append(f"<p><b>{html.escape(run.name)}</b></p><ul>{items}</ul>")
    parts.append(
        "<p><small>Per period: the stage where most land waits, and how much of their days the assets able "
        "to work it were busy or in repair (over 85 %: that stage's capacity limits progress). Each run's "
        "utilisation.parquet and plots/utilisation_by_year.png hold the detail.</small></p>"
    )
    parts.append("<h2>Assumptions</h2>")
    parts.append("".join(f"<p>{html.escape(p)}</p>" for p in assumptions.strip().split("\n\n")))
    parts.append(f"<p><small>Written {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by demining-sim.</small></p></body></html>")
    return "\n".join(parts)


def _html_outcome_table(table: pd.DataFrame, outcomes: list[Outcome], band: Band, first: str = "", note: bool = True) -> str:
    scenarios = [html.escape(s) for s in table["scenario"]]
    head = f"<tr><th>{first}</th>" + "".join(f"<th>{s}</th>" for s in scenarios) + "</tr>"
    rows = []
    for label, cells in outcome_rows(table, outcomes, band):
        tds = "".join(
            f"<td>{html.escape(level)}" + (f"<br><span class='diff'>{html.escape(diff)}</span>" if diff else "") + "</td>"
            for level, diff in cells
        )
        rows.append(f"<tr><td>{html.escape(label)}</td>{tds}</tr>")
    caption = (
        f"<caption>Each cell: median ({band.label} of replications); below, the difference from "
        f"{scenarios[0]} (median and {band.label} of the differences). {html.escape(CENSORED_NOTE) if note else ''}</caption>"
    )
    return f"<div class='scroll'><table>{caption}{head}{''.join(rows)}</table></div>"


def _html_district_section(comparison: Comparison) -> str:
    band, asked = comparison.band, comparison.asked
    parts = ["<h2>By district</h2>"]
    if asked.districts:
        parts.append(
            f"<p>Districts asked for: {html.escape(', '.join(asked.districts))}. comparison_districts.csv holds every district.</p>"
        )
    for district in comparison.shown_districts:
        rows = comparison.districts[comparison.districts["district"] == district]
        parts.append(f"<h3>{html.escape(district.title())}</h3>")
        parts.append(_html_outcome_table(rows, district_summary_outcomes(asked), band, note=censored(comparison)))
    return "".join(parts)


def _html_years_section(comparison: Comparison) -> str:
    years, band = comparison.years, comparison.band
    if years is None or comparison.table["scenario"].size < 2:
        return ""
    scenarios = list(dict.fromkeys(years["scenario"]))
    head = "<tr><th>year</th>" + f"<th>{html.escape(scenarios[0])}: civilian casualties (mean)</th>"
    head += "".join(f"<th>{html.escape(s)}: civilians spared (mean, {band.label})</th>" for s in scenarios[1:]) + "</tr>"
    rows = []
    for year, sub in years.groupby("year", sort=True):
        by = sub.set_index("scenario")
        cells = [f"{by.loc[scenarios[0], 'civilian_casualties_mean']:.1f}"]
        for s in scenarios[1:]:
            r = by.loc[s]
            cells.append(
                f"{spared_text(r, 'civilian_casualties_avoided', band)}; since the start "
                f"{spared_text(r, 'civilian_casualties_avoided_since_start', band)}"
            )
        rows.append(f"<tr><td>{year}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    caption = (
        "<caption>Civilians spared: reference minus scenario (positive: fewer people hurt), mean over "
        f"replications and {band.label} of the differences; first and last years are partial "
        "(from the start, to the horizon). comparison_years.csv has deminers and released area too.</caption>"
    )
    return f"<h2>Civilian casualties avoided per year</h2><div class='scroll'><table>{caption}{head}{''.join(rows)}</table></div>"


def _html_costs(costs: pd.DataFrame, band: Band) -> str:
    head = (
        "<tr><th>scenario</th>" + "".join(f"<th>{html.escape(h.format(band=band.label))}</th>" for h in COST_HEADINGS) + "</tr>"
    )
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>" for cells in cost_rows(costs, band))
    return f"<table>{head}{rows}</table>"


COST_NOTE = (
    "<p><small>US dollars, nominal (no inflation, no discounting), at the scenarios' central unit costs ([costs] in "
    "each run's config.toml; evidence in seeds/costs.csv). Purchase is paid on delivery, running cost per day in "
    "service until the asset is withdrawn or its agency's last district is released, so a what-if that finishes "
    "sooner also saves running cost. Extra spend is scenario minus reference; the cost-effectiveness ratios divide "
    "the difference of mean spend by the difference of mean gain (extra hectares released by end 2030; civilian "
    "casualties avoided to the horizon), with bands from resampling replications; 'unbounded' means the gain may be "
    "nil, a negative ratio a what-if that gains and costs less.</small></p>"
)


ASSUMPTIONS = """Each run is an ensemble of replications of a discrete-event model (SimPy) of the land release campaign in the Karabakh and East Zangazur districts from 10 November 2020. Parcels of hazardous area (1,166,702 ha nationally, apportioned to districts by territory and a front-line weight) go through non-technical survey, technical survey, clearance, quality control and handover.

Survey cancels and reduces land with no evidence; how much depends on the minefield maps (reported accurate in at most 25 % of cases). Clearance finds each item with the asset's detection probability; missed items stay behind as residual risk on released land.

Agency productivity, the share of work on battle areas versus minefields, the density of UXO in battle areas and the civilian exposure rate are fitted to the figures the agencies reported (see targets.csv in each run). Completion dates are when every parcel of a district has been handed over; a date after the horizon means not all replications finish within it.

Civilian incidents follow exposure to hidden and residual items, weighted by land use, returns and a decaying awareness factor. All figures used as inputs are listed with their sources in seeds/inputs.csv.

The bands hold the variation between replications (where parcels and items lie, how long tasks take, who is hurt) and, for runs made with --uncertainty, the uncertain inputs drawn per replication (each scenario above says which); never the uncertainty of future funding or policy. A difference's band is of the differences replication by replication when runs are paired; the median of differences is not the difference of the medians."""
