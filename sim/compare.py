"""Comparing finished runs: paired differences from a reference scenario, and a report.

Two runs with the same seed and replication count share their random numbers replication by
replication (common random numbers), so the difference scenario - reference is taken per
replication and summarised (median and band, `sim.bands`): a small real difference is not lost
in the noise between replications. Runs with other seeds are compared unpaired, and said so.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .bands import BAND, Band, band_of
from .errors import UserError
from .metrics import MILESTONE_YEARS
from .results import read_record

# (column in replications.parquet, label, unit)
METRICS = (
    ("released_ha_by_2025", "released by end 2025", "ha"),
    ("released_ha_by_2030", "released by end 2030", "ha"),
    ("items_by_2030", "items found by 2030", "items"),
    ("civilian_casualties_by_2030", "civilian casualties by 2030", "people"),
    ("deminer_casualties_by_2030", "deminer casualties by 2030", "people"),
)

# (key in the comparison table, label, column of replications.parquet): dates the hazardous area
# of all districts reaches a share released; inf in a replication that does not reach it (censored
# at the horizon).
DATE_MILESTONES = (
    ("released_90pct", "90 % released", "released_90pct_day"),
    ("all_released", "all released", "all_released_day"),
)
DAYS_PER_MONTH = 365.25 / 12

# Spend (sim.costs), when every run recorded it: (column in replications.parquet, label, unit).
COST_METRICS = (
    ("spend_usd_by_2030", "spend to end 2030", "USD"),
    ("spend_usd_total", "spend to completion", "USD"),
)
BOOTSTRAP_RESAMPLES = 2000  # of replications, for the interval of a cost-effectiveness ratio


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


def load_run(path: Path) -> LoadedRun:
    path = Path(path)
    try:
        meta = read_record(path / "metadata.json", ("scenario", "seed", "replications", "package_version", "git_revision"))
        cfg = tomllib.loads((path / "config.toml").read_text(encoding="utf-8"))
        return LoadedRun(
            path=path,
            name=meta["scenario"],
            question=cfg.get("question", ""),
            metadata=meta,
            summary=read_record(path / "summary.json", ("start_date", "horizon_end")),
            completion=pd.read_parquet(path / "completion.parquet"),
            per_replication=pd.read_parquet(path / "replications.parquet"),
            per_year=pd.read_parquet(path / "per_year.parquet"),
            released=pd.read_parquet(path / "released.parquet"),
            spend=pd.read_parquet(path / "spend_per_year.parquet") if (path / "spend_per_year.parquet").is_file() else None,
        )
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"not a complete results folder ({exc})", source=str(path)) from None


@dataclass
class Comparison:
    """Finished runs compared with the first (the reference): the tables a report is made of."""

    runs: list[LoadedRun]
    table: pd.DataFrame  # one row per scenario (comparison_table)
    districts: pd.DataFrame  # per scenario and district completion (district_completion_table)
    band: Band  # of the tables
    released_band: Band  # of the runs' released-area bands (written when each run finished)
    costs: pd.DataFrame | None = None  # cost_table; None unless every run recorded its spend

    @property
    def released(self) -> pd.DataFrame:
        return pd.concat([r.released.assign(scenario=r.name) for r in self.runs], ignore_index=True)

    @property
    def per_year(self) -> pd.DataFrame:
        return pd.concat([r.per_year.assign(scenario=r.name) for r in self.runs], ignore_index=True)

    @property
    def spend(self) -> pd.DataFrame | None:
        """Every run's spend per replication, year, agency and asset type, with a `scenario` column."""
        if self.costs is None:
            return None
        return pd.concat([r.spend.assign(scenario=r.name) for r in self.runs], ignore_index=True)

    @property
    def per_replication(self) -> pd.DataFrame:
        return pd.concat([r.per_replication.assign(scenario=r.name) for r in self.runs], ignore_index=True)


def compare_runs(runs: list[LoadedRun], band: Band = BAND) -> Comparison:
    """Compare finished runs (the first is the reference); see `sim.outputs.write_comparison` for the folder."""
    if len(runs) < 2:
        raise UserError("compare needs at least two runs (the first is the reference)")
    runs = comparable(runs)
    released_bands = {band_of(r.summary) for r in runs}
    if len(released_bands) > 1:
        labels = ", ".join(sorted(b.label for b in released_bands))
        raise UserError(f"the runs' released-area bands differ ({labels}); run them with the same --band")
    return Comparison(
        runs,
        comparison_table(runs, band),
        district_completion_table(runs, band),
        band,
        released_bands.pop(),
        cost_table(runs, band),
    )


def comparable(runs: list[LoadedRun]) -> list[LoadedRun]:
    """The runs, each with a label of its own; an error when their numbers would mislead.

    Two runs of one scenario (other seeds) are told apart by their folder's name. Runs must share
    start and horizon: a run cut short would show as finishing *earlier* (its completion is
    censored at its own horizon), and every run must reach the last milestone year reported."""
    folders = [r.path.resolve() for r in runs]
    for i, folder in enumerate(folders):
        if folder in folders[:i]:
            raise UserError(f"the same run is given twice: {runs[i].path}")
    names = [r.name for r in runs]
    runs = [replace(r, name=f"{r.name}/{r.path.name}") if names.count(r.name) > 1 else r for r in runs]
    ref = runs[0]
    for run in runs[1:]:
        if (run.start_date, run.horizon_end) != (ref.start_date, ref.horizon_end):
            raise UserError(
                f"{run.name} runs {run.start_date:%Y-%m-%d} to {run.horizon_end:%Y-%m-%d}, {ref.name} "
                f"{ref.start_date:%Y-%m-%d} to {ref.horizon_end:%Y-%m-%d}; compare runs with the same start_date and horizon_years"
            )
    last = pd.Timestamp(max(MILESTONE_YEARS), 12, 31)
    if ref.horizon_end < last:
        raise UserError(
            f"the runs end on {ref.horizon_end:%Y-%m-%d}, before the end of {max(MILESTONE_YEARS)} that the comparison "
            f"reports on; run them with a horizon to {max(MILESTONE_YEARS) + 1} or later"
        )
    return runs


def _days(completion: pd.DataFrame, district: str, horizon_end: pd.Timestamp, start: pd.Timestamp) -> np.ndarray:
    """Days from the start to completion per replication; the horizon where not done (censored)."""
    dates = completion[completion["district"] == district].sort_values("replication")["completion_date"]
    return ((dates.fillna(horizon_end) - start).dt.days).to_numpy(dtype=float)


def _fmt_date(start: pd.Timestamp, days: float, horizon_end: pd.Timestamp) -> str:
    date = start + pd.Timedelta(days=float(days))
    return f">{horizon_end:%Y-%m}" if date >= horizon_end else f"{date:%Y-%m}"


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
        for r in runs
    )


def _milestone_days(run: LoadedRun, column: str) -> np.ndarray:
    """Days from the start per replication (in replication order); the horizon where not reached."""
    horizon_days = float((run.horizon_end - run.start_date).days)
    days = run.per_replication.sort_values("replication")[column].to_numpy(dtype=float)
    return np.minimum(days, horizon_days)


def comparison_table(runs: list[LoadedRun], band: Band = BAND) -> pd.DataFrame:
    """One row per scenario: the dates 90 % and all of the hazardous area are released and the
    METRICS, each as median and band, with the difference from the first run (paired by
    replication when possible; dates in months, and days for all released)."""
    ref = runs[0]
    start = ref.start_date
    pair = paired(runs)
    rows = []
    for run in runs:
        row = {"scenario": run.name, "replications": run.metadata["replications"], "seed": run.metadata["seed"]}
        row["uncertainty"] = uncertainty_mode(run)
        for key, _, column in DATE_MILESTONES:
            days, ref_days = _milestone_days(run, column), _milestone_days(ref, column)
            lo, mid, hi = np.quantile(days, band.quantiles)
            row[f"{key}_p50"] = _fmt_date(start, mid, run.horizon_end)
            row[f"{key}_{band.low_name}"] = _fmt_date(start, lo, run.horizon_end)
            row[f"{key}_{band.high_name}"] = _fmt_date(start, hi, run.horizon_end)
            diff = _difference(days, ref_days, pair, band)
            row.update({f"{key}_diff_months_{k}": v / DAYS_PER_MONTH for k, v in diff.items()})
            if key == "all_released":
                row.update({f"all_released_diff_days_{k}": v for k, v in diff.items()})
        row["share_done_by_horizon"] = float(run.completion.query("district == 'all'")["completion_date"].notna().mean())
        for column, _, _ in METRICS:
            values = run.per_replication.sort_values("replication")[column].to_numpy(dtype=float)
            ref_values = ref.per_replication.sort_values("replication")[column].to_numpy(dtype=float)
            q = np.quantile(values, band.quantiles)
            row.update({f"{column}_{band.low_name}": q[0], f"{column}_p50": q[1], f"{column}_{band.high_name}": q[2]})
            row.update({f"{column}_diff_{k}": v for k, v in _difference(values, ref_values, pair, band).items()})
        row["paired"] = pair
        rows.append(row)
    return pd.DataFrame(rows)


def _difference(values: np.ndarray, reference: np.ndarray, pair: bool, band: Band) -> dict:
    """Median and band of scenario - reference: per replication when paired, else of the
    difference of independent draws (every combination)."""
    if pair:
        diff = values - reference
    else:
        diff = (values[:, None] - reference[None, :]).ravel()
    lo, mid, hi = np.quantile(diff, band.quantiles)
    return {band.low_name: float(lo), "p50": float(mid), band.high_name: float(hi)}


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
    """Per scenario and district: completion date, median and band (censored at the horizon)."""
    rows = []
    for run in runs:
        start = run.start_date
        for district in run.completion["district"].unique():
            days = _days(run.completion, district, run.horizon_end, start)
            lo, mid, hi = np.quantile(days, band.quantiles)
            rows.append(
                {
                    "scenario": run.name,
                    "district": district,
                    band.low_name: start + pd.Timedelta(days=lo),
                    "p50": start + pd.Timedelta(days=mid),
                    band.high_name: start + pd.Timedelta(days=hi),
                    "share_done": float(run.completion[run.completion["district"] == district]["completion_date"].notna().mean()),
                    "horizon_end": run.horizon_end,
                }
            )
    return pd.DataFrame(rows)


def markdown_table(table: pd.DataFrame, band: Band = BAND) -> str:
    """The comparison as a Markdown table a planner can paste."""
    lo, hi = band.low_name, band.high_name
    header = ["scenario"]
    for _, label, _ in DATE_MILESTONES:
        header += [f"{label} P50 ({band.label})", "vs reference, months"]
    header += [f"{label} ({unit}), P50 ({band.label})" for _, label, unit in METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.to_dict("records"):
        cells = [row["scenario"]]
        for key, _, _ in DATE_MILESTONES:
            cells += [
                f"{row[key + '_p50']} ({row[f'{key}_{lo}']} to {row[f'{key}_{hi}']})",
                _signed(row, key + "_diff_months", band, 1),
            ]
        for column, _, _ in METRICS:
            cells.append(
                f"{row[column + '_p50']:,.0f} ({row[f'{column}_{lo}']:,.0f} to {row[f'{column}_{hi}']:,.0f}); "
                f"diff {_signed(row, column + '_diff', band)}"
            )
        lines.append("| " + " | ".join(cells) + " |")
    modes = ", ".join(f"{row['scenario']}: {row['uncertainty']}" for row in table.to_dict("records"))
    lines += ["", f"Bands hold replication noise and the uncertain inputs drawn per replication (--uncertainty; {modes})."]
    return "\n".join(lines) + "\n"


def _signed(row: dict, prefix: str, band: Band, digits: int = 0) -> str:
    lo, hi = row[f"{prefix}_{band.low_name}"], row[f"{prefix}_{band.high_name}"]
    return f"{row[prefix + '_p50']:+,.{digits}f} ({lo:+,.{digits}f} to {hi:+,.{digits}f})"


def figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def html_report(
    runs: list[LoadedRun],
    table: pd.DataFrame,
    figures: dict[str, bytes],
    assumptions: str,
    band: Band = BAND,
    costs: pd.DataFrame | None = None,
    cost_figures: dict[str, bytes] | None = None,
) -> str:
    """One self-contained page: the table, every plot embedded as data, each scenario's question and
    the model's assumptions. No scripts, styles or images from the network."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Demining scenarios compared</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:4px 6px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}</style></head><body>",
        "<h1>Demining scenarios compared</h1>",
        f"<p>Reference scenario: <b>{html.escape(runs[0].name)}</b>. Differences are scenario minus reference, "
        + (
            "paired by replication (same seed: common random numbers)."
            if paired(runs)
            else "<b>unpaired</b> (seeds, replication counts or uncertain inputs drawn differ)."
        )
        + f" Intervals are {band.label} of replications; they hold "
        + html.escape(
            "; ".join(f"{r.name}: {(r.metadata.get('uncertainty') or {}).get('holds', 'replication noise only')}" for r in runs)
        )
        + ".</p>",
        "<h2>Scenarios</h2><ul>",
    ]
    for run in runs:
        meta = run.metadata
        parts.append(
            f"<li><b>{html.escape(run.name)}</b>: {html.escape(run.question)} "
            f"<small>({meta['replications']} replications, seed {meta['seed']}, version {html.escape(str(meta['package_version']))}, "
            f"git {html.escape(str(meta['git_revision'])[:12])})</small></li>"
        )
    parts.append("</ul><h2>Outcomes</h2>")
    parts.append(_html_table(table, band))
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


def _html_table(table: pd.DataFrame, band: Band) -> str:
    lo, hi = band.low_name, band.high_name
    head = "<tr><th>scenario</th>" + "".join(
        f"<th>{label} P50</th><th>{band.label}</th><th>vs reference (months)</th>" for _, label, _ in DATE_MILESTONES
    )
    head += "".join(f"<th>{html.escape(label)} ({unit})</th><th>vs reference</th>" for _, label, unit in METRICS) + "</tr>"
    rows = []
    for row in table.to_dict("records"):
        cells = [html.escape(row["scenario"])]
        for key, _, _ in DATE_MILESTONES:
            cells += [
                row[key + "_p50"],
                f"{row[f'{key}_{lo}']} to {row[f'{key}_{hi}']}",
                _signed(row, key + "_diff_months", band, 1),
            ]
        for column, _, _ in METRICS:
            cells += [
                f"{row[column + '_p50']:,.0f} ({row[f'{column}_{lo}']:,.0f} to {row[f'{column}_{hi}']:,.0f})",
                _signed(row, column + "_diff", band),
            ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


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

Civilian incidents follow exposure to hidden and residual items, weighted by land use, returns and a decaying awareness factor. All figures used as inputs are listed with their sources in seeds/inputs.csv."""
