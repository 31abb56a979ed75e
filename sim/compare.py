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

    @property
    def released(self) -> pd.DataFrame:
        return pd.concat([r.released.assign(scenario=r.name) for r in self.runs], ignore_index=True)

    @property
    def per_year(self) -> pd.DataFrame:
        return pd.concat([r.per_year.assign(scenario=r.name) for r in self.runs], ignore_index=True)


def compare_runs(runs: list[LoadedRun], band: Band = BAND) -> Comparison:
    """Compare finished runs (the first is the reference); see `sim.outputs.write_comparison` for the folder."""
    if len(runs) < 2:
        raise UserError("compare needs at least two runs (the first is the reference)")
    runs = comparable(runs)
    released_bands = {band_of(r.summary) for r in runs}
    if len(released_bands) > 1:
        labels = ", ".join(sorted(b.label for b in released_bands))
        raise UserError(f"the runs' released-area bands differ ({labels}); run them with the same --band")
    return Comparison(runs, comparison_table(runs, band), district_completion_table(runs, band), band, released_bands.pop())


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
    runs: list[LoadedRun], table: pd.DataFrame, figures: dict[str, bytes], assumptions: str, band: Band = BAND
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


ASSUMPTIONS = """Each run is an ensemble of replications of a discrete-event model (SimPy) of the land release campaign in the Karabakh and East Zangazur districts from 10 November 2020. Parcels of hazardous area (1,166,702 ha nationally, apportioned to districts by territory and a front-line weight) go through non-technical survey, technical survey, clearance, quality control and handover.

Survey cancels and reduces land with no evidence; how much depends on the minefield maps (reported accurate in at most 25 % of cases). Clearance finds each item with the asset's detection probability; missed items stay behind as residual risk on released land.

Agency productivity, the share of work on battle areas versus minefields, the density of UXO in battle areas and the civilian exposure rate are fitted to the figures the agencies reported (see targets.csv in each run). Completion dates are when every parcel of a district has been handed over; a date after the horizon means not all replications finish within it.

Civilian incidents follow exposure to hidden and residual items, weighted by land use, returns and a decaying awareness factor. All figures used as inputs are listed with their sources in seeds/inputs.csv."""
