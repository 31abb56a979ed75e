"""Plots: functions from result tables to matplotlib figures (seaborn styling). No file I/O here
except `save_run_plots`, which the results writer calls.

Every figure is meant to be read by a planner at a glance: a title that says what it answers, plain
labels (no column or code names), legends beside the data rather than on it, what is not finished
within a run shown as not finished (never drawn at the horizon as if it were a result), and a
footer saying the scenario, replications, seed and scale the figure comes from (`footer=`).

Imported only where plots are drawn (matplotlib, seaborn and scipy take seconds to load), and it
never chooses a matplotlib backend: a notebook keeps its own; the CLI picks a file backend.
"""

from __future__ import annotations

import calendar
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns

from .bands import BAND, Band
from .labels import AGENCY_LABELS, agency_label, input_label

UNFINISHED = "C3"  # the colour of "not finished within the run"
THOUSANDS = mticker.StrMethodFormatter("{x:,.0f}")


# --------------------------------------------------------------------------- shared pieces
def run_footer(name: str, replications: int, seed, area_scale: float = 1.0, band: Band = BAND, holds: str | None = None) -> str:
    """What a figure of one run comes from: scenario, replications, seed, scale, band and what the
    band holds (`holds`: the run's summary `band_holds`; None: replication noise only)."""
    return f"{name}: {replications} replications, seed {seed}; {scale_text(area_scale)}; {band_text(band, holds)}"


def scale_text(area_scale: float) -> str:
    if area_scale == 1:
        return "the whole hazardous area"
    return f"hazardous area scaled by {area_scale:g} (a small test world; assets are not scaled)"


def band_text(band: Band, holds: str | None = None) -> str:
    return f"bands: {band.label} of replications, holding {holds or 'replication noise only'}"


FOOTER_FULL_SIZE_WIDTH_IN = 12.0  # figures up to this wide (inches) carry an 8-point footer


def add_footer(fig: plt.Figure, text: str | None) -> plt.Figure:
    """The footer line(s) under a figure (saved with bbox_inches='tight', as every writer does)."""
    if text:
        # Wide figures are shown shrunk to the page's width: their footer is set larger to stay legible.
        size = 8 * max(1.0, fig.get_figwidth() / FOOTER_FULL_SIZE_WIDTH_IN)
        width = max(60, int(fig.get_figwidth() * 15 * 8 / size))
        fig.text(0.005, -0.01, textwrap.fill(text, width), ha="left", va="top", fontsize=size, color="0.35")
    return fig


def _legend_beside(ax, **kw) -> None:
    """The legend to the right of the axes, off the data."""
    kw = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "frameon": False, "fontsize": 9} | kw
    ax.legend(**kw)


def district_label(key: str) -> str:
    return "All districts" if key == "all" else key.replace("_", " ").title()


def _replications(per_year: pd.DataFrame) -> int:
    return max(per_year["replication"].nunique(), 1) if len(per_year) else 1


def _all_years(per_year: pd.DataFrame, columns: list[str], last_year: int | None = None) -> pd.DataFrame:
    """Mean over replications per year of `columns`, every year from the first to `last_year` (or
    the last in the table) present, zeros where nothing happened."""
    n = _replications(per_year)
    mean = per_year.groupby("year")[columns].sum() / n
    if not len(mean):
        return mean
    last = last_year or int(mean.index.max())
    return mean.reindex(range(int(mean.index.min()), last + 1), fill_value=0.0)


# Months shown after the band's low edge reaches all the hazardous area: enough to see it level off.
AFTER_ALL_RELEASED = pd.DateOffset(years=2)


def _until_all_released(ax, bands: pd.DataFrame) -> None:
    """End the time axis two years after the band's low edge reaches all of the hazardous area in
    every run (`bands`: band tables for district "all"), rather than at a distant horizon after
    which the curves are flat; the whole run when some run's low edge never gets there."""
    done = bands["low"] >= bands["initial_ha"] * (1 - 1e-9)
    runs = bands["scenario"] if "scenario" in bands else pd.Series("run", index=bands.index)
    finished = bands["month"][done].groupby(runs[done]).min()
    if len(finished) == runs.nunique():
        _time_axis_until(ax, bands["month"], finished.max())


def _time_axis_until(ax, months: pd.Series, last_change: pd.Timestamp) -> None:
    """A time axis from the first month to AFTER_ALL_RELEASED past `last_change` (at most the last month)."""
    ax.set_xlim(months.min(), min(last_change + AFTER_ALL_RELEASED, months.max()))


# --------------------------------------------------------------------------- one run
def released_over_time(released: pd.DataFrame, band: Band = BAND, footer: str | None = None) -> plt.Figure:
    """Hazardous area released (all districts): median with the band across replications.
    `released` is a run's band table (month, district, low, median, high, initial_ha), made with `band`."""
    b = released[released["district"] == "all"]
    total = b["initial_ha"].iloc[0]
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.fill_between(b["month"], b["low"] / 1000, b["high"] / 1000, alpha=0.3, label=f"{band.label} of replications")
    ax.plot(b["month"], b["median"] / 1000, lw=2, label="median")
    ax.axhline(total / 1000, color="grey", ls="--", lw=1, label="all hazardous area")
    ax.axhline(0.9 * total / 1000, color="grey", ls=":", lw=1, label="90 % of it")
    ax.yaxis.set_major_formatter(mticker.StrMethodFormatter("{x:,.1f}" if total < 10_000 else "{x:,.0f}"))
    ax.set(xlabel="", ylabel="thousand hectares released", title="Hazardous area released over time, all districts")
    ax.set_ylim(bottom=0)
    _until_all_released(ax, b)
    _legend_beside(ax)
    fig.tight_layout()
    return add_footer(fig, footer)


def released_by_district(released: pd.DataFrame, footer: str | None = None) -> plt.Figure:
    """Share of each district's hazardous area released over time, median and band; a district
    whose median does not reach all of it within the run says so."""
    frame = released[released["district"] != "all"].copy()
    for col in ("low", "median", "high"):
        frame[col] = np.where(frame["initial_ha"] > 0, frame[col] / frame["initial_ha"], 1.0)
    districts = list(dict.fromkeys(frame["district"]))
    cols = 5
    rows = int(np.ceil(len(districts) / cols))
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.2 * rows + 0.6), sharex=True, sharey=True, squeeze=False)
    for ax, district in zip(axes.flat, districts):
        data = frame[frame["district"] == district]
        ax.fill_between(data["month"], data["low"], data["high"], alpha=0.3)
        ax.plot(data["month"], data["median"], lw=1.5)
        ax.set_title(district_label(district), fontsize=10)
        ax.set_ylim(0, 1.05)
        ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        last = data.iloc[-1]
        if last["median"] < 0.999:
            ax.text(
                0.97, 0.06, f"not finished:\n{last['median']:.0%} by {last['month']:%Y-%m}", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=8, color=UNFINISHED,
            )  # fmt: skip
    for ax in axes.flat[len(districts) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("released")
    fig.suptitle("Share of each district's hazardous area released over time (median and band)")
    fig.tight_layout()
    return add_footer(fig, footer)


def land_per_year(per_year: pd.DataFrame, footer: str | None = None) -> plt.Figure:
    """Land released per year by method, mean over replications: what the agencies report as
    "cleared" is the processed part (reduced by technical survey + cleared), never cancellation.
    Years after the last release are left out."""
    n = _replications(per_year)
    mean = per_year.groupby("year")[["cancelled_ha", "reduced_ha", "cleared_ha"]].sum() / n
    released = mean.sum(axis=1).to_numpy()
    if (released > 0).any():
        mean = mean.iloc[: int(np.flatnonzero(released > 0)[-1]) + 1]
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    bottom = np.zeros(len(mean))
    labels = {
        "reduced_ha": "reduced by technical survey (processed)",
        "cleared_ha": "cleared, battle-area clearance included (processed)",
        "cancelled_ha": "cancelled by non-technical survey (not processed)",
    }
    years = mean.index.to_numpy()
    for (column, label), colour in zip(labels.items(), sns.color_palette("deep", 3)):
        ax.bar(years, mean[column], bottom=bottom, label=label, color=colour, width=0.8)
        bottom += mean[column].to_numpy()
    step = max(1, int(np.ceil(len(years) / 15)))
    ax.set_xticks(years[::step])
    ax.yaxis.set_major_formatter(THOUSANDS)
    ax.set(xlabel="", ylabel="hectares per year (mean)", title=f"Land released per year, by method (mean of {n} replications)")
    handles, names = ax.get_legend_handles_labels()  # listed top to bottom, as stacked
    ax.legend(handles[::-1], names[::-1], loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    fig.tight_layout()
    return add_footer(fig, footer)


def _stacked_years(per_year: pd.DataFrame, columns: dict[str, str], ylabel: str, title: str, footer, last_year=None):
    """Stacked bars per year of the mean over replications of `columns` (named by their labels),
    every year shown (an empty year is an empty bar, not a missing one)."""
    mean = _all_years(per_year, list(columns), last_year)
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    bottom = np.zeros(len(mean))
    years = mean.index.to_numpy()
    for (column, label), colour in zip(columns.items(), sns.color_palette("deep", len(columns))):
        ax.bar(years, mean[column], bottom=bottom, label=label, color=colour, width=0.8)
        bottom += mean[column].to_numpy()
    if len(years):
        # At most about ten labels, every 1, 2, 5 or 10 years (15 labels of four digits overlapped).
        step = next((k for k in (1, 2, 5, 10) if len(years) / k <= 10), 20)
        ax.set_xticks([y for y in years if (y - years[0]) % step == 0])
    if bottom.max(initial=0) >= 1000:
        ax.yaxis.set_major_formatter(THOUSANDS)
    ax.set(xlabel="", ylabel=ylabel, title=title)
    handles, names = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], names[::-1], loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    fig.tight_layout()
    return add_footer(fig, footer)


def items_per_year(per_year: pd.DataFrame, footer: str | None = None) -> plt.Figure:
    """Items found per year by type, mean over replications (`per_year`: replication, year, items_*...)."""
    n = _replications(per_year)
    return _stacked_years(
        per_year,
        {"items_ap": "anti-personnel mines", "items_at": "anti-tank mines", "items_uxo": "unexploded ordnance (UXO)"},
        "items found per year (mean)",
        f"Mines and unexploded ordnance found and destroyed per year (mean of {n} replications)",
        footer,
    )


def casualties_per_year(per_year: pd.DataFrame, footer: str | None = None, last_year: int | None = None) -> plt.Figure:
    """Casualties per year by victim and outcome, mean over replications; every year to `last_year`."""
    n = _replications(per_year)
    columns = {
        "civilian_killed": "civilians killed",
        "civilian_injured": "civilians injured",
        "deminer_killed": "deminers killed",
        "deminer_injured": "deminers injured",
        "soldier_killed": "soldiers killed",
        "soldier_injured": "soldiers injured",
    }
    # Runs of model revisions before 11 have no soldiers' columns.
    columns = {column: label for column, label in columns.items() if column in per_year}
    return _stacked_years(
        per_year,
        columns,
        "people per year (mean)",
        f"People killed or injured per year (mean of {n} replications)",
        footer,
        last_year,
    )


def completion_stats(completion: pd.DataFrame, band: Band = BAND) -> pd.DataFrame:
    """Per district (and `all`): the date all its hazardous area is handed over, median and band
    over replications, NaT where that quantile is past the run's horizon (not finished), and the
    share of replications finished. Quantiles are replications' own dates (as in a run's summary)."""
    rows = {}
    for district, sub in completion.groupby("district", observed=True, sort=False):
        dates = pd.to_datetime(sub["completion_date"])
        days = np.where(dates.notna(), (dates - pd.Timestamp("1970-01-01")).dt.days, np.inf)
        q = np.quantile(days, band.quantiles, method="inverted_cdf")
        as_date = [pd.Timestamp("1970-01-01") + pd.Timedelta(days=float(v)) if np.isfinite(v) else pd.NaT for v in q]
        rows[district] = {"low": as_date[0], "p50": as_date[1], "high": as_date[2], "done": float(dates.notna().mean())}
    return pd.DataFrame.from_dict(rows, orient="index")


def _draw_completion(ax, stats: pd.DataFrame, y: np.ndarray, horizon_end: pd.Timestamp, colour, label: str | None, n: int):
    """One scenario's completion rows: the band as a line (running on to the horizon with an arrow
    where it does not finish), the median as a dot only where it finishes, and the replications not
    finished written past the horizon (in the grey 'after the run' strip, see `_after_the_run`)."""
    for yi, (_, row) in zip(y, stats.iterrows()):
        low = row["low"] if pd.notna(row["low"]) else None
        high = row["high"] if pd.notna(row["high"]) else horizon_end
        if low is not None:
            ax.hlines(yi, low, high, lw=3, alpha=0.55, color=colour)
            if pd.isna(row["high"]):
                ax.plot([horizon_end], [yi], marker=">", color=colour, ms=6, alpha=0.8)
        if pd.notna(row["p50"]):
            ax.plot([row["p50"]], [yi], "o", color=colour, ms=5)
        if row["done"] < 1:
            unfinished = round((1 - row["done"]) * n)
            text = "none finished" if row["done"] == 0 else f"{unfinished} of {n} not finished"
            ax.text(horizon_end, yi, f"  {text}", va="center", ha="left", fontsize=8, color=UNFINISHED)
    if label:
        ax.plot([], [], "o-", color=colour, lw=3, alpha=0.8, label=label)


def _district_rows(ax, keys: list[str]) -> None:
    """District names on the y axis, one row each; all districts together in bold, below a line."""
    ax.set_yticks(np.arange(len(keys)), [district_label(d) for d in keys])
    for tick, name in zip(ax.get_yticklabels(), keys):
        tick.set_fontweight("bold" if name == "all" else "normal")
    if keys and keys[-1] == "all":
        ax.axhline(len(keys) - 1.5, color="0.6", lw=0.8)


def _after_the_run(ax, start: pd.Timestamp, horizon_end: pd.Timestamp) -> None:
    """Dates from `start`, and past the horizon a grey strip (after the run: nothing is known there)
    wide enough for the 'not finished' notes; years on the axis."""
    import matplotlib.dates as mdates

    span = horizon_end - start
    right = horizon_end + span * 0.22
    ax.axvspan(horizon_end, right, color="0.92", zorder=0)
    ax.axvline(horizon_end, color="grey", ls="--", lw=1)
    ax.set_xlim(start, right)
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _completion_legend(ax, band: Band, horizon_end: pd.Timestamp, handles=None) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = list(handles or []) + [
        Line2D([], [], marker="o", ls="none", color="0.3", label="median date"),
        Line2D([], [], lw=3, alpha=0.55, color="0.3", label=f"{band.label} of replications"),
        Line2D([], [], marker=">", ls="none", color="0.3", label="goes on past the end of the run"),
        Patch(color="0.92", label=f"after the run (ends {horizon_end:%Y-%m-%d})"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)


def _completion_order(stats: pd.DataFrame) -> list[str]:
    """Districts by median date (the unfinished last, most finished first), then all districts."""
    rows = stats.drop(index="all", errors="ignore")
    key = sorted(
        rows.index,
        key=lambda d: (pd.isna(rows.loc[d, "p50"]), rows.loc[d, "p50"] if pd.notna(rows.loc[d, "p50"]) else -rows.loc[d, "done"]),
    )
    return key + (["all"] if "all" in stats.index else [])


def completion_dates(
    completion: pd.DataFrame,
    horizon_end: pd.Timestamp,
    band: Band = BAND,
    footer: str | None = None,
    start: pd.Timestamp | None = None,
) -> plt.Figure:
    """Per district, the date all hazardous area is handed over: median (a dot) and band (a line)
    across replications, all districts together at the bottom. A median or band end past the
    horizon is not drawn as a date: the line runs on to the horizon with an arrow, and the number
    of replications not finished is written after it."""
    stats = completion_stats(completion, band)
    n = completion["replication"].nunique()
    order = _completion_order(stats)
    stats = stats.loc[order]
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(10, 0.4 * len(order) + 1.8))
    y = np.arange(len(order))
    _draw_completion(ax, stats, y, horizon_end, "C0", None, n)
    known = [d for d in stats[["low", "p50"]].stack().tolist() if pd.notna(d)]
    _after_the_run(ax, start if start is not None else min(known, default=horizon_end - pd.DateOffset(years=5)), horizon_end)
    _district_rows(ax, order)
    ax.invert_yaxis()
    _completion_legend(ax, band, horizon_end)
    ax.set(xlabel="date all hazardous area is handed over", title="When is each district's hazardous area all released?")
    fig.tight_layout()
    return add_footer(fig, footer)


METRIC_LABELS = {
    "processed_ha": "ha processed",
    "released_ha": "ha released",
    "items_total": "items found",
    "items_mines": "mines found",
    "items_ap": "anti-personnel mines",
    "items_at": "anti-tank mines",
    "items_uxo": "UXO found",
    "roads_km": "km of road",
    "houses": "houses",
    "aerial_survey_ha": "ha surveyed from the air",
    "victims_total": "people hurt",
    "victims_killed": "people killed",
    "victims_civilian": "civilians hurt",
    "victims_military": "soldiers and deminers hurt",
    "victims_outside_former_loc_share": "share hurt outside the former front line",
    "cancelled_share": "share of released land cancelled by survey",
}


def target_label(row: dict) -> str:
    """A reported figure in words: 'ANAMA: ha processed, Nov 2020 - Apr 2022'."""
    who = AGENCY_LABELS.get(row.get("agency"), str(row.get("agency")).upper())
    district = row.get("district")
    if isinstance(district, str) and district:
        who = district_label(district)
    what = METRIC_LABELS.get(row.get("metric"), str(row.get("metric")).replace("_", " "))
    return f"{who}: {what}, {_window_text(row.get('window_start'), row.get('window_end'))}"


def _window_text(start, end) -> str:
    if end is None or (isinstance(end, float) and np.isnan(end)):
        return ""
    end = pd.Timestamp(end)
    start = pd.Timestamp(start) if start is not None and not (isinstance(start, float) and np.isnan(start)) else end
    if (start.month, start.day, end.month, end.day) == (1, 1, 12, 31):
        return str(end.year) if start.year == end.year else f"{start.year}-{end.year}"
    if (start.year, start.month) == (end.year, end.month):
        return f"{end:%b %Y}"
    return f"{start:%b %Y} - {end:%b %Y}"


def targets_vs_reported(
    targets: pd.DataFrame, tolerance: float = 0.15, band: Band = BAND, footer: str | None = None
) -> plt.Figure:
    """Simulated / reported per reported figure (fitted or only compared): mean and band, log
    scale, with a tolerance band."""
    frame = targets.dropna(subset=["simulated_mean"]).copy()
    frame = frame[frame["reported"] > 0]
    floor = 1e-3  # a zero simulated value still shows, at the left edge
    for col, ratio in (
        ("simulated_mean", "ratio_mean"),
        (f"simulated_{band.low_name}", "ratio_low"),
        (f"simulated_{band.high_name}", "ratio_high"),
    ):
        frame[ratio] = np.maximum(frame[col] / frame["reported"], floor)
    frame = frame.iloc[::-1]
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(12, 0.28 * len(frame) + 1.5))
    y = np.arange(len(frame))
    ax.axvspan(1 - tolerance, 1 + tolerance, color="C2", alpha=0.15, label=f"within {tolerance:.0%}")
    # Fitted figures in blue; figures only compared (use = check: held out or not yet fitted) in orange.
    use = frame["use"].to_numpy() if "use" in frame else np.full(len(frame), "fit")
    for kind, colour, label in (("fit", "C0", "fitted"), ("check", "C1", "compared, not fitted")):
        rows = use == kind
        if not rows.any():
            continue
        ax.hlines(y[rows], frame["ratio_low"][rows], frame["ratio_high"][rows], lw=3, alpha=0.5, color=colour)
        ax.plot(frame["ratio_mean"][rows], y[rows], "o", color=colour, label=f"{label}:\nmean and {band.label}\nof replications")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y, [target_label(r) for r in frame.to_dict("records")], fontsize=8)
    ax.set_ylim(-0.8, len(frame) - 0.2)
    ax.set(
        xlabel="simulated / reported (log scale; 1 = as reported)", title="Simulated against the figures the agencies reported"
    )
    _legend_beside(ax, fontsize=8)
    fig.tight_layout()
    return add_footer(fig, footer)


STATE_LABELS = {
    "idle_season_days": "idle: out of season",
    "down_days": "down for repair",
    "idle_no_work_days": "idle: no work in reach",
}
ASSET_LABELS = {
    "manual_team": "Manual deminer teams",
    "survey_team": "Survey teams",
    "dog_team": "Dog teams",
    "machine": "Machines",
    "aerial_survey_team": "Drone (aerial survey) teams",
}
STAGE_LABELS = {
    "non_technical_survey": "non-technical survey",
    "technical_survey": "technical survey",
    "clearance": "clearance",
    "follow_up": "follow-up search",
    "quality_control": "quality control",
    "remote_survey": "aerial survey",
}


def stage_label(key: str) -> str:
    return STAGE_LABELS.get(key, key.replace("_", " "))


def utilisation_by_year(use: pd.DataFrame, footer: str | None = None) -> plt.Figure:
    """How each kind of asset spent its days, per year (all agencies; mean over replications):
    shares of busy time by stage, seasonal idleness, repairs and idleness for want of work."""
    from .utilisation import BUSY_COLUMNS

    sns.set_theme(style="whitegrid")
    kinds = list(dict.fromkeys(use["asset_type"]))
    fig, axes = plt.subplots(len(kinds), 1, figsize=(9, 1.9 * len(kinds) + 0.6), sharex=True, squeeze=False)
    columns = [c for c in BUSY_COLUMNS if use[c].sum() > 0] + list(STATE_LABELS)
    colours = sns.color_palette("tab10", len(columns))
    for ax, kind in zip(axes[:, 0], kinds):
        rows = use[use["asset_type"] == kind].set_index("year")
        shares = rows[columns].div(rows["available_days"].where(rows["available_days"] > 0), axis=0).fillna(0.0)
        bottom = np.zeros(len(shares))
        for colour, column in zip(colours, columns):
            label = STATE_LABELS.get(column, "busy: " + stage_label(column[len("busy_") : -len("_days")]))
            ax.bar(shares.index, shares[column], bottom=bottom, color=colour, width=0.85, label=label)
            bottom += shares[column].to_numpy()
        ax.set(ylim=(0, 1.05), ylabel="share of days")
        ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
        ax.set_title(ASSET_LABELS.get(kind, kind.replace("_", " ")), loc="left", fontsize=10)
    axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.suptitle("How each kind of asset spent its days, per year (what limits progress)", y=1.0)
    fig.tight_layout()
    return add_footer(fig, footer)


def waiting_by_year(waiting: pd.DataFrame, footer: str | None = None) -> plt.Figure:
    """Land waiting for each stage at year ends (all districts; mean over replications): where land
    piles up, capacity is short."""
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(9, 4))
    top = 0.0
    order = {stage: k for k, stage in enumerate(STAGE_LABELS)}  # the order land goes through them
    groups = sorted(waiting.groupby("stage", sort=False), key=lambda item: order.get(item[0], len(order)))
    for stage, rows in groups:
        if stage == "remote_survey" or rows["waiting_ha"].max() <= 0:
            continue
        ax.plot(rows["year"], rows["waiting_ha"], marker="o", ms=3, label=stage_label(stage))
        top = max(top, float(rows["waiting_ha"].max()))
    # Hectares on a scale that is linear near zero and logarithmic above 10 ha, so a stage with
    # little land waiting is not lost under one with much.
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylim(bottom=0, top=max(top * 1.5, 20))
    ax.yaxis.set_major_formatter(THOUSANDS)
    ax.set(xlabel="", ylabel="hectares waiting (mean)", title="Land waiting for each stage at the end of each year")
    _legend_beside(ax, title="waiting for", title_fontsize=9)
    ax.text(0.0, -0.14, "Where land piles up, that stage's capacity is short.", transform=ax.transAxes, fontsize=8, color="0.35")
    fig.tight_layout()
    return add_footer(fig, footer)


def _millions(ax, axis: str = "y") -> None:
    """Axis ticks in millions with thousands separators (values are USD)."""
    target = ax.yaxis if axis == "y" else ax.xaxis

    def fmt(value, _):
        digits = 0 if max(abs(v) for v in target.get_view_interval()) >= 10e6 else 1
        return f"{value / 1e6:,.{digits}f}"

    target.set_major_formatter(mticker.FuncFormatter(fmt))


def spend_per_year(spend: pd.DataFrame, band: Band = BAND, footer: str | None = None) -> plt.Figure:
    """Spend per calendar year by agency (stacked bars, mean over replications, central unit costs),
    with the band across replications of the yearly total. `spend` is a run's spend_per_year table."""
    n = max(spend["replication"].nunique(), 1)
    by_agency = spend.pivot_table(index="year", columns="agency", values="spend_usd", aggfunc="sum", fill_value=0.0) / n
    by_agency = by_agency[by_agency.sum().sort_values(ascending=False).index]
    totals = spend.groupby(["replication", "year"])["spend_usd"].sum().unstack(fill_value=0.0).reindex(columns=by_agency.index)
    totals = totals.fillna(0.0)
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(10, 4.8))
    years = by_agency.index.to_numpy()
    bottom = np.zeros(len(years))
    colors = sns.color_palette("tab10", n_colors=max(len(by_agency.columns), 1))
    for k, agency in enumerate(by_agency.columns):
        ax.bar(
            years,
            by_agency[agency].to_numpy(),
            bottom=bottom,
            color=colors[k % len(colors)],
            label=agency_label(agency),
            width=0.8,
        )
        bottom += by_agency[agency].to_numpy()
    lo, hi = np.quantile(totals.to_numpy(), [band.low, band.high], axis=0)
    ax.vlines(years, lo, hi, color="k", lw=1.2, label=f"yearly total: {band.label} of replications")
    _millions(ax)
    ax.set(xlabel="calendar year", ylabel="spend (million USD per year)",
           title="Spend per year by agency (mean of replications, central unit costs)")  # fmt: skip
    ax.set_xticks(years[:: max(1, len(years) // 18)])
    ax.tick_params(axis="x", labelrotation=45)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="agency", title_fontsize=8)
    fig.tight_layout()
    return add_footer(fig, footer)


def save_run_plots(folder: Path, result) -> list[Path]:
    """Write the standard plots of one run into `folder` as PNGs; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    horizon_end = pd.Timestamp(result.summary["horizon_end"])
    footer = run_footer(
        result.config.name,
        result.replications,
        result.seed,
        result.config.parcels.area_scale,
        result.band,
        result.summary.get("band_holds"),
    )
    last_year = (horizon_end - pd.Timedelta(days=1)).year
    figures = {
        "released_over_time.png": released_over_time(result.released, result.band, footer),
        "released_by_district.png": released_by_district(result.released, footer),
        "land_per_year.png": land_per_year(result.per_year, footer),
        "items_per_year.png": items_per_year(result.per_year, footer),
        "casualties_per_year.png": casualties_per_year(result.per_year, footer, last_year),
        "completion_dates.png": completion_dates(
            result.completion, horizon_end, result.band, footer, pd.Timestamp(result.summary["start_date"])
        ),
        "targets_vs_reported.png": targets_vs_reported(result.targets, band=result.band, footer=footer),
    }
    if result.spend_per_year is not None and len(result.spend_per_year):
        figures["spend_per_year.png"] = spend_per_year(result.spend_per_year, result.band, footer)
    if result.use_by_year is not None and len(result.use_by_year):
        figures["utilisation_by_year.png"] = utilisation_by_year(result.use_by_year, footer)
        figures["waiting_by_year.png"] = waiting_by_year(result.waiting_by_year, footer)
    paths = []
    for name, fig in figures.items():
        path = folder / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- backtests
# The fan chart's panels: yearly quantity (sim.backtest.YEARLY_QUANTITIES), title, axis label with unit.
FAN_PANELS = (
    ("processed_ha", "Hectares processed by the national agencies (technical survey and clearance)", "hectares per year (ha)"),
    ("items_ap", "Anti-personnel mines found by the national agencies", "mines per year"),
    ("items_at", "Anti-tank mines found by the national agencies", "mines per year"),
    ("items_uxo", "Unexploded ordnance found by the national agencies", "items per year"),
    ("victims_total", "Casualties (civilians, soldiers and deminers)", "people killed or injured per year"),
)


def backtest_fan(
    yearly: pd.DataFrame, *, until, scenario: str, replications: int, band: Band = BAND, footer: str | None = None
) -> plt.Figure:
    """Fan chart of a backtest: per quantity, the simulated median and band per calendar year, the
    reported yearly figures (fitted ones apart from held-out ones) and the cutoff. `yearly` is a
    backtest's yearly table (sim.backtest.yearly_table), made with `band`; `until` a date."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    # A year is drawn at its middle, so the cutoff falls between the years either side of it.
    cutoff_x = until.year + until.timetuple().tm_yday / (366 if calendar.isleap(until.year) else 365)
    point_styles = {
        "fitted": dict(marker="o", color="C0", ms=7, ls="none", label="reported, fitted"),
        "held out": dict(marker="D", color="C3", ms=8, ls="none", label="reported, held out (not fitted): the test"),
        "compared": dict(marker="o", mfc="none", color="grey", ms=7, ls="none", label="reported, compared only"),
    }
    drawn: set[str] = set()
    for ax, (quantity, title, ylabel) in zip(axes.flat, FAN_PANELS):
        rows = yearly[yearly["quantity"] == quantity].sort_values("year")
        x = rows["year"].to_numpy(dtype=float) + 0.5
        ax.fill_between(x, rows[f"simulated_{band.low_name}"], rows[f"simulated_{band.high_name}"], color="C0", alpha=0.2)
        ax.plot(x, rows["simulated_p50"], color="C0", lw=2)
        known = rows[rows["reported"].notna()]
        kind = np.where(known["held_out"].astype(bool), "held out", np.where(known["fitted"].astype(bool), "fitted", "compared"))
        for name, style in point_styles.items():
            chosen = kind == name
            if chosen.any():
                drawn.add(name)
            ax.plot(known["year"].to_numpy(dtype=float)[chosen] + 0.5, known["reported"].to_numpy()[chosen], **style)
        ax.axvline(cutoff_x, color="k", ls="--", lw=1)
        ax.set_xticks(x, [str(int(y)) for y in rows["year"]])
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set(xlabel="calendar year", ylabel=ylabel)
        ax.set_title(title, fontsize=10)
    legend = axes.flat[-1]
    legend.axis("off")
    handles = [
        Line2D([], [], color="C0", lw=2, label="model: median of replications"),
        Patch(color="C0", alpha=0.2, label=f"model: {band.label} of replications"),
        *(Line2D([], [], **style) for name, style in point_styles.items() if name in drawn),
        Line2D([], [], color="k", ls="--", lw=1, label=f"cutoff {until}: fitted up to here"),
    ]
    legend.legend(handles=handles, loc="center", frameon=False, fontsize=10)
    fig.suptitle(
        f"Backtest of {scenario}: fitted to figures reported by {until}, projected beyond it ({replications} replications)",
        fontsize=12,
    )
    fig.tight_layout()
    return add_footer(fig, footer)


# --------------------------------------------------------------------------- comparisons
def _scenario_colours(names) -> dict[str, str]:
    return {name: f"C{k % 10}" for k, name in enumerate(names)}


def compare_released(released: pd.DataFrame, band: Band = BAND, footer: str | None = None) -> plt.Figure:
    """Released area over time per scenario, median and band, on one axis (`released`: band tables
    of several runs, made with `band`, with a `scenario` column)."""
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    everything = released[released["district"] == "all"]
    colours = _scenario_colours(dict.fromkeys(everything["scenario"]))
    for name, b in everything.groupby("scenario", sort=False):
        ax.fill_between(b["month"], b["low"] / 1000, b["high"] / 1000, alpha=0.2, color=colours[name])
        ax.plot(b["month"], b["median"] / 1000, lw=2, color=colours[name], label=name)
    total = everything["initial_ha"].iloc[0]
    ax.axhline(total / 1000, color="grey", ls="--", lw=1, label="all hazardous area")
    ax.yaxis.set_major_formatter(mticker.StrMethodFormatter("{x:,.1f}" if total < 10_000 else "{x:,.0f}"))
    ax.set_ylim(bottom=0)
    ax.set(
        xlabel="",
        ylabel="thousand hectares released",
        title=f"Hazardous area released over time, all districts (median and {band.label})",
    )
    _until_all_released(ax, everything)
    _legend_beside(ax)
    fig.tight_layout()
    return add_footer(fig, footer)


def _over_time_frame(ax, ylabel: str, title: str) -> None:
    """A panel of differences from the reference: the zero line, labels, legend beside the data."""
    ax.axhline(0, color="k", lw=1)
    ax.set(ylabel=ylabel, title=title)
    ax.title.set_fontsize(10)
    _legend_beside(ax)


def compare_difference_over_time(
    released_difference: pd.DataFrame, years: pd.DataFrame, reference: str, band: Band = BAND, footer: str | None = None
) -> plt.Figure:
    """Each scenario against the reference over time: hectares released more (or less) than the
    reference month by month, and civilians spared since the start (reference minus scenario),
    with their bands (`released_difference`: sim.compare.released_difference; `years`:
    sim.compare.yearly_table)."""
    sns.set_theme(style="whitegrid")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=False)
    names = list(dict.fromkeys(released_difference["scenario"]))
    colours = _scenario_colours([reference, *names])
    for name, rows in released_difference.groupby("scenario", sort=False):
        top.fill_between(rows["month"], rows["low"], rows["high"], alpha=0.2, color=colours[name])
        top.plot(rows["month"], rows["median"], lw=2, color=colours[name], label=name)
    top.yaxis.set_major_formatter(THOUSANDS)
    # The differences are zero (to rounding) once every run has released everything.
    moving = released_difference[(released_difference["low"].abs() >= 0.5) | (released_difference["high"].abs() >= 0.5)]
    if len(moving):
        _time_axis_until(top, released_difference["month"], moving["month"].max())
    _over_time_frame(
        top,
        "hectares",
        f"Hazardous area released, more (+) or less (-) than {reference}\n"
        f"(line: median of the differences replication by replication; shaded: {band.label})",
    )
    lo, hi = band.low_name, band.high_name
    column = "civilian_casualties_avoided_since_start"
    for name in names:
        rows = years[years["scenario"] == name].sort_values("year")
        x = pd.to_datetime(rows["year"].astype(str) + "-12-31")
        bottom.fill_between(x, rows[f"{column}_{lo}"], rows[f"{column}_{hi}"], alpha=0.2, color=colours[name])
        bottom.plot(x, rows[f"{column}_mean"], marker="o", ms=3, lw=2, color=colours[name], label=f"{name} (mean)")
    _over_time_frame(
        bottom,
        "people",
        f"Civilians spared since the start, by each year's end: {reference} minus the scenario\n"
        f"(+: fewer hurt; line: mean of the differences; shaded: {band.label})",
    )
    fig.tight_layout()
    return add_footer(fig, footer)


def compare_casualties(per_year: pd.DataFrame, footer: str | None = None, last_year: int | None = None) -> plt.Figure:
    """Civilian, deminer and soldier casualties per year per scenario (mean over replications),
    every year to `last_year`. Runs of model revisions before 11 had no soldiers (no columns: none)."""
    victims = ["civilian", "deminer"] + (["soldier"] if "soldier_killed" in per_year else [])
    frame = per_year.assign(**{v: (per_year[f"{v}_killed"] + per_year[f"{v}_injured"]).fillna(0.0) for v in victims})
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, len(victims), figsize=(6 * len(victims), 4))
    colours = _scenario_colours(dict.fromkeys(frame["scenario"]))
    for name, sub in frame.groupby("scenario", sort=False):
        mean = _all_years(sub, victims, last_year)
        for ax, col in zip(axes, victims):
            ax.plot(mean.index, mean[col], marker="o", ms=3, color=colours[name], label=name)
    for ax, who in zip(axes, (f"{v.capitalize()}s" for v in victims)):
        ax.set(title=f"{who} killed or injured per year (mean)", xlabel="", ylabel="people per year")
        ax.set_ylim(bottom=0)
        ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    _legend_beside(axes[-1])
    fig.tight_layout()
    return add_footer(fig, footer)


def compare_completion(
    districts: pd.DataFrame, band: Band = BAND, footer: str | None = None, shown: list[str] | None = None
) -> plt.Figure:
    """Per district (those `shown`, or all) and all districts together, the completion date per
    scenario: median (a dot) and band (a line); a median or band end past the horizon is not drawn
    as a date (see `completion_dates`). `districts`: sim.compare.district_completion_table."""
    scenarios = list(dict.fromkeys(districts["scenario"]))
    first = districts[districts["scenario"] == scenarios[0]].set_index("district")
    first = first.rename(columns={"share_done": "done"})
    order = [d for d in _completion_order(first) if d == "all" or shown is None or d in shown]
    horizon_end = districts["horizon_end"].max()
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(10.5, 0.3 * len(order) * max(2, len(scenarios)) + 1.8))
    width = 0.8 / max(len(scenarios), 1)
    colours = _scenario_colours(scenarios)
    for k, name in enumerate(scenarios):
        sub = districts[districts["scenario"] == name].set_index("district").reindex(order)
        stats = sub.rename(columns={band.low_name: "low", band.high_name: "high", "share_done": "done"})
        y = np.arange(len(order)) + (k - (len(scenarios) - 1) / 2) * width
        _draw_completion(ax, stats, y, sub["horizon_end"].iloc[0], colours[name], name, int(sub["replications"].iloc[0]))
    start = districts["start"].min() if "start" in districts else None
    known = [d for d in districts[[band.low_name, "p50"]].stack().tolist() if pd.notna(d)]
    _after_the_run(ax, start if start is not None else min(known, default=horizon_end - pd.DateOffset(years=5)), horizon_end)
    _district_rows(ax, order)
    ax.set_ylim(len(order) - 0.5, -0.5)
    handles, _ = ax.get_legend_handles_labels()
    _completion_legend(ax, band, horizon_end, handles)
    ax.set(xlabel="date all hazardous area is handed over", title="When is each district's hazardous area all released?")
    fig.tight_layout()
    return add_footer(fig, footer)


def _difference_panel(ax, rows: pd.DataFrame, prefix: str, labels: list[str], colours: list[str], marks=None) -> None:
    """Median (dot) and band (line) of differences, one row per label, a line at zero."""
    y = np.arange(len(rows))
    low, mid, high = (rows[f"{prefix}_{k}"].to_numpy(dtype=float) for k in ("low", "p50", "high"))
    for yi, lo, m, hi, colour, mark in zip(y, low, mid, high, colours, marks if marks is not None else [False] * len(y)):
        ax.hlines(yi, lo, hi, lw=3, alpha=0.5, color=colour)
        ax.plot([m], [yi], "o", color=colour, mfc="white" if mark else colour)
    ax.axvline(0, color="k", lw=1)
    ax.set_yticks(y, labels)
    ax.set_ylim(len(y) - 0.4, -0.6)
    span = max(np.nanmax(np.abs(np.r_[low, high, mid])), 1e-9)
    if span < 0.5:  # no difference: an axis around zero, not one of 1e-12
        ax.set_xlim(-1, 1)
    ax.ticklabel_format(axis="x", style="plain", useOffset=False)
    # At most five labels: signed six-digit hectares ran into each other in a third of the width.
    ax.xaxis.set_major_locator(mticker.MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:+,.0f}" if span >= 10 else f"{v:+,.1f}"))


def _band_columns(table: pd.DataFrame, prefix: str, band: Band) -> pd.DataFrame:
    return table.rename(columns={f"{prefix}_{band.low_name}": f"{prefix}_low", f"{prefix}_{band.high_name}": f"{prefix}_high"})


def compare_differences(table: pd.DataFrame, outcomes, band: Band = BAND, footer: str | None = None) -> plt.Figure:
    """The whole campaign: each scenario's difference from the reference, median and band, one
    panel per outcome (`outcomes`: sim.compare.Outcome, as national_outcomes gives them): dates
    in the left column, amounts in the right."""
    others = table.iloc[1:]
    reference = table.iloc[0]["scenario"]
    colours = [f"C{k % 10}" for k in range(1, len(table))]
    dates = [o for o in outcomes if o.is_date]
    amounts = [o for o in outcomes if not o.is_date]
    rows = max(len(dates), (len(amounts) + 1) // 2, 1)
    sns.set_theme(style="whitegrid")
    height = 0.35 * max(1, len(others)) + 0.85
    fig, axes = plt.subplots(rows, 3, figsize=(16, height * rows + 0.8), squeeze=False)
    slots = [axes[k, 0] for k in range(rows)] + [axes[k, c] for k in range(rows) for c in (1, 2)]
    chosen = list(zip(slots[: len(dates)], dates)) + list(zip(slots[rows : rows + len(amounts)], amounts))
    for ax in axes.flat:
        ax.axis("off")
    for ax, outcome in chosen:
        ax.axis("on")
        if outcome.is_date:
            prefix = f"{outcome.key}_diff_months"
            title = f"{outcome.label}: months earlier (-) or later (+)"
            marks = [min(r[f"{outcome.key}_reached"], table.iloc[0][f"{outcome.key}_reached"]) < 1 for _, r in others.iterrows()]
        else:
            prefix = f"{outcome.key}_diff"
            more = "more (+) or less (-)" if outcome.unit == "ha" else "more (+) or fewer (-)"
            title = f"{outcome.label}: {outcome.unit} {more}"
            marks = None
        _difference_panel(ax, _band_columns(others, prefix, band), prefix, list(others["scenario"]), colours, marks)
        ax.set_title(title, fontsize=10, loc="left")
    fig.suptitle(
        f"Whole campaign: differences from {reference} (dot: median of the differences replication by replication; "
        f"line: {band.label}; hollow: some replication not finished, the difference may be larger)",
        y=1.0,
        fontsize=11,
    )
    fig.tight_layout()
    return add_footer(fig, footer)


def compare_district_differences(
    districts: pd.DataFrame,
    outcomes,
    band: Band = BAND,
    footer: str | None = None,
    shown: list[str] | None = None,
    national: pd.DataFrame | None = None,
) -> plt.Figure:
    """By district (and all districts, from the `national` table if given): each scenario's
    difference in months from the reference for the date outcomes (`outcomes`: sim.compare.Outcome
    with unit 'date'), median and band; a hollow dot where some replication does not get there
    within the run (the difference may then be larger)."""
    from matplotlib.lines import Line2D

    frame = districts
    if national is not None:
        frame = pd.concat([districts, national.assign(district="all")], ignore_index=True)
    scenarios = list(dict.fromkeys(frame["scenario"]))
    reference, others = scenarios[0], scenarios[1:]
    keys = [d for d in dict.fromkeys(districts["district"]) if shown is None or d in shown]
    keys += ["all"] if national is not None else []
    colours = _scenario_colours(scenarios)
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(
        1,
        len(outcomes),
        figsize=(4.2 * len(outcomes) + 1.8, 0.3 * len(keys) * max(2, len(others)) + 1.8),
        sharey=True,
        squeeze=False,
    )
    ref_rows = frame[frame["scenario"] == reference].set_index("district").reindex(keys)
    for ax, outcome in zip(axes[0], outcomes):
        prefix = f"{outcome.key}_diff_months"
        for k, name in enumerate(others):
            rows = _band_columns(frame[frame["scenario"] == name].set_index("district").reindex(keys), prefix, band)
            y = np.arange(len(keys)) + (k - (len(others) - 1) / 2) * (0.8 / len(others))
            marks = np.minimum(rows[f"{outcome.key}_reached"], ref_rows[f"{outcome.key}_reached"]) < 1
            for yi, lo, m, hi, mark in zip(y, rows[f"{prefix}_low"], rows[f"{prefix}_p50"], rows[f"{prefix}_high"], marks):
                ax.hlines(yi, lo, hi, lw=3, alpha=0.5, color=colours[name])
                ax.plot([m], [yi], "o", color=colours[name], mfc="white" if mark else colours[name])
            ax.plot([], [], "o-", lw=3, color=colours[name], label=name)
        ax.axvline(0, color="k", lw=1)
        _district_rows(ax, keys)
        ax.set_title(outcome.label, fontsize=10)
    axes[0, 0].set_ylim(len(keys) - 0.5, -0.5)
    fig.supxlabel(f"months earlier (-) or later (+) than {reference}", fontsize=10)
    handles, _ = axes[0, -1].get_legend_handles_labels()
    handles.append(
        Line2D(
            [],
            [],
            marker="o",
            mfc="white",
            ls="none",
            color="0.3",
            label="some replication not finished:\nthe difference may be larger",
        )
    )
    axes[0, -1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    fig.suptitle(f"By district: months earlier or later than {reference} (dot: median of the differences; line: {band.label})")
    fig.tight_layout()
    return add_footer(fig, footer)


def compare_spend(spend: pd.DataFrame, band: Band = BAND, footer: str | None = None) -> plt.Figure:
    """Cumulative spend over time per scenario (central unit costs): median across replications with
    the band, at each year end. `spend`: the runs' spend_per_year tables with a `scenario` column."""
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    years = np.arange(int(spend["year"].min()), int(spend["year"].max()) + 1)
    # From zero at the first year's start, then at each year end (flat once a run stops spending).
    x = [pd.Timestamp(int(years[0]), 1, 1)] + [pd.Timestamp(int(y), 12, 31) for y in years]
    for k, (name, sub) in enumerate(spend.groupby("scenario", sort=False)):
        yearly = sub.groupby(["replication", "year"])["spend_usd"].sum().unstack(fill_value=0.0)
        cumulative = yearly.reindex(columns=years, fill_value=0.0).cumsum(axis=1).to_numpy()
        cumulative = np.hstack([np.zeros((len(cumulative), 1)), cumulative])
        lo, mid, hi = np.quantile(cumulative, band.quantiles, axis=0)
        ax.fill_between(x, lo, hi, alpha=0.2, color=f"C{k}")
        ax.plot(x, mid, lw=2, color=f"C{k}", label=name)
    _millions(ax)
    ax.set(xlabel="", ylabel="spend since the start (million USD)",
           title=f"Cumulative spend: median and {band.label} band (central unit costs, at year ends)")  # fmt: skip
    ax.legend(loc="upper left")
    fig.tight_layout()
    return add_footer(fig, footer)


def compare_cost_per_ha(per_replication: pd.DataFrame, band: Band = BAND, footer: str | None = None) -> plt.Figure:
    """Per scenario: spend to completion (million USD) and USD per ha released over the whole
    campaign, median and band across replications. `per_replication`: the runs' replications
    tables with a `scenario` column."""
    frame = per_replication.assign(
        usd_per_ha=per_replication["spend_usd_total"] / per_replication["released_ha_at_horizon"].where(lambda v: v > 0)
    )
    scenarios = list(dict.fromkeys(frame["scenario"]))
    panels = (("spend_usd_total", "spend to completion (million USD)", 1e6), ("usd_per_ha", "USD per ha released", 1.0))
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.5 * len(scenarios) + 2.0), squeeze=False)
    y = np.arange(len(scenarios))
    for ax, (column, label, scale) in zip(axes[0], panels):
        for k, name in enumerate(scenarios):
            values = frame.loc[frame["scenario"] == name, column].dropna().to_numpy() / scale
            if not len(values):
                continue
            lo, mid, hi = np.quantile(values, band.quantiles)
            ax.hlines(y[k], lo, hi, color=f"C{k}", lw=3, alpha=0.6)
            ax.plot(mid, y[k], "o", color=f"C{k}")
        ax.set_yticks(y, scenarios)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set(xlabel=label, title=f"{label}: median, {band.label}")
    axes[0][1].set_yticklabels([])
    fig.suptitle("Cost of the whole campaign (central unit costs)", y=1.0)
    fig.tight_layout()
    return add_footer(fig, footer)


# --------------------------------------------------------------------------- sweeps
def setting_label(key: str) -> str:
    """A scenario setting in words: 'agencies.anama.clearance_productivity' -> 'ANAMA: clearance productivity'."""
    parts = key.split(".")
    if parts[0] == "agencies" and len(parts) >= 3:
        return f"{AGENCY_LABELS.get(parts[1], parts[1].upper())}: {' '.join(parts[2:]).replace('_', ' ')}"
    if key == "maps.map_accuracy":
        return "share of minefield maps that are accurate"
    return " ".join(parts[-2:] if len(parts) > 1 else parts).replace("_", " ")


def sweep_heatmaps(points: pd.DataFrame, keys: list[str], footer: str | None = None) -> plt.Figure:
    """Median completion (years from the start) and civilian casualties over the grid: a heatmap
    with its colour bar for two keys (other keys averaged over), lines for one. A point whose
    median replication does not finish within the run is shown as not finished, not as the horizon."""
    done = points["share_done_by_horizon"] >= 0.5 if "share_done_by_horizon" in points else pd.Series(True, index=points.index)
    frame = points.assign(all_released_p50_years=points["all_released_p50_years"].where(done))
    outcomes = [
        (
            "all_released_p50_years",
            "When is all hazardous area released?\n(median, years from the start)",
            "years from the start",
            "viridis_r",
        ),
        ("civilian_casualties_at_horizon_mean", "Civilians killed or injured over the whole run\n(mean)", "people", "rocket_r"),
    ]
    sns.set_theme(style="white")
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    for ax, (column, title, unit, cmap) in zip(axes, outcomes):
        if len(keys) >= 2:
            table = frame.pivot_table(index=keys[0], columns=keys[1], values=column, aggfunc="mean", dropna=False)
            ax.set_facecolor("0.88")  # cells with no value (not finished) show as grey, and say so
            sns.heatmap(table, annot=True, fmt=".1f", cmap=cmap, ax=ax, cbar=True, cbar_kws={"label": unit}, linewidths=0.5)
            for i, j in zip(*np.nonzero(table.isna().to_numpy())):
                ax.text(j + 0.5, i + 0.5, "not finished\nwithin the run", ha="center", va="center", fontsize=9, color=UNFINISHED)
            ax.set_ylabel(setting_label(keys[0]))
            ax.set_xlabel(setting_label(keys[1]))
        else:
            mean = frame.groupby(keys[0])[column].mean()
            x = np.arange(len(mean))
            ax.plot(x, mean.to_numpy(), marker="o")
            for xi, value in zip(x, mean.to_numpy()):
                if pd.isna(value):
                    ax.text(
                        xi,
                        0.5,
                        "not finished\nwithin the run",
                        ha="center",
                        va="center",
                        fontsize=9,
                        color=UNFINISHED,
                        transform=ax.get_xaxis_transform(),
                    )
            ax.set_xticks(x, [str(v) for v in mean.index])
            ax.set_xlim(-0.5, len(x) - 0.5)
            ax.set_xlabel(setting_label(keys[0]))
            ax.set_ylabel(unit)
            ax.grid(True, alpha=0.3)
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return add_footer(fig, footer)


# --------------------------------------------------------------------------- plans
def _calendar_year(date, days: float = 0.0) -> float:
    """A date (plus days) as a fractional calendar year, for a date axis in years."""
    return date.year + (date.timetuple().tm_yday - 1 + days) / 365.25


def plan_frontier(
    frontier: pd.DataFrame, *, goal_text: str, deadline=None, confidence: float = 0.5, start_date=None
) -> plt.Figure:
    """Cost against outcome along a plan's greedy path (`sim.plan.frontier`). For a deadline, two
    panels: the completion date at the goal's confidence (steps that miss the deadline drawn above
    it with a cross: their date is past the simulated end) and the land still unreleased at the
    deadline, which shows what each step bought even before the deadline is met. For a budget, the
    objective's mean."""
    from matplotlib.ticker import FuncFormatter

    sns.set_theme(style="whitegrid")
    cost_m = frontier["cost_usd"].to_numpy(dtype=float) / 1e6
    steps = frontier["step"].to_numpy()

    def label_steps(ax, y) -> None:
        for x, value, step in zip(cost_m, y, steps):
            ax.annotate(f"step {step}", (x, value), textcoords="offset points", xytext=(4, 4), fontsize=8)

    if deadline is None:
        fig, ax = plt.subplots(figsize=(9, 4.8))
        y = frontier["objective_mean"].to_numpy(dtype=float)
        ax.plot(cost_m, y, "o-", color="C0", label="mean over replications")
        label_steps(ax, y)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set(xlabel="cost of the additions to the goal's end (million USD)", ylabel="objective by the end of the goal's year")
        ax.legend(loc="best", fontsize=9)
        ax.set_title(f"Cost against outcome, step by step: {goal_text}", fontsize=10)
        fig.tight_layout()
        return fig
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    column = "completion_day_p90" if confidence >= 0.9 else "completion_day_p50"
    days = frontier[column].to_numpy(dtype=float)
    finite = np.isfinite(days)
    goal_year = _calendar_year(deadline)
    y = np.array([_calendar_year(start_date, d) if f else np.nan for d, f in zip(days, finite)])
    top = max(goal_year, np.nanmax(y) if finite.any() else goal_year) + 0.25
    y = np.where(finite, y, top)
    left.plot(cost_m, y, "-", color="C0", alpha=0.4)
    left.plot(cost_m[finite], y[finite], "o", color="C0", label=f"all released, in {confidence:.0%} of replications")
    if (~finite).any():
        left.plot(cost_m[~finite], y[~finite], "x", color="C3", ms=9, label="not all released by the deadline")
    left.axhline(goal_year, color="k", ls="--", lw=1, label=f"deadline {deadline}")
    label_steps(left, y)
    left.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{int(v)}-{int(v % 1 * 12) + 1:02d}"))
    left.set(xlabel="cost of the additions to the deadline (million USD)", ylabel="completion (year-month)")
    left.legend(loc="best", fontsize=9)
    unreleased = frontier["unreleased_ha_mean"].to_numpy(dtype=float)
    right.plot(cost_m, unreleased, "o-", color="C1")
    label_steps(right, unreleased)
    right.set_ylim(bottom=0)
    right.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    right.set(xlabel="cost of the additions to the deadline (million USD)", ylabel="hectares unreleased at the deadline (mean)")
    reps = sorted(set(frontier["replications"]))
    fig.suptitle(f"Cost against outcome, step by step: {goal_text} ({' then '.join(map(str, reps))} replications)", fontsize=11)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- sensitivity
def tornado(table: pd.DataFrame, labels: dict[str, str], top: int = 15) -> plt.Figure:
    """One panel per output: each input's output at the low and at the high end of its range (bars
    from the base value), the `top` inputs of the ranking. `table` is a sensitivity's tornado table;
    `labels` names each output with its unit, in the order of the panels."""
    outputs = [out for out in labels if out in set(table["output"])]
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, len(outputs), figsize=(4.2 * len(outputs), 0.32 * top + 1.8), sharey=True, squeeze=False)
    ranked = table[table["rank"] <= top]
    names = list(dict.fromkeys(ranked.sort_values("rank")["input"]))
    y = np.arange(len(names))[::-1]
    for ax, out in zip(axes[0], outputs):
        rows = ranked[ranked["output"] == out].set_index("input").loc[names]
        base = float(rows["base"].iloc[0])
        ax.barh(y, rows["at_low"] - base, left=base, height=0.7, color="tab:blue", label="input at its low end")
        ax.barh(y, rows["at_high"] - base, left=base, height=0.7, color="tab:orange", alpha=0.8, label="input at its high end")
        ax.axvline(base, color="black", lw=1)
        ax.set_title(textwrap.fill(labels.get(out, out), 32), fontsize=9)  # four panels side by side
        ax.tick_params(axis="x", labelsize=8)
        ax.xaxis.set_major_formatter(THOUSANDS if abs(base) >= 10_000 else mticker.ScalarFormatter())
        # A quarter of the figure's width: at most four labels (seven of "1,000,000" overlapped).
        ax.xaxis.set_major_locator(mticker.MaxNLocator(4))
    axes[0][0].set_yticks(y, [input_label(name) for name in names], fontsize=8)
    fig.legend(*axes[0][-1].get_legend_handles_labels(), loc="upper right", fontsize=7, ncol=2)
    fig.suptitle("One input at a time over its range (same replications: common random numbers)", y=1.0)
    fig.tight_layout()
    return fig


def sobol_bars(table: pd.DataFrame, labels: dict[str, str], conf_level: float = 0.95) -> plt.Figure:
    """One panel per output: first-order (S1) and total (ST) Sobol indices of each input analysed,
    with their bootstrap confidence intervals. `table` is a sensitivity's Sobol table; `labels`
    names each output with its unit, in the order of the panels."""
    outputs = [out for out in labels if out in set(table["output"])]
    names = list(dict.fromkeys(table["input"]))
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, len(outputs), figsize=(4.2 * len(outputs), 0.45 * len(names) + 1.8), sharey=True, squeeze=False)
    y = np.arange(len(names))[::-1]
    for ax, out in zip(axes[0], outputs):
        rows = table[table["output"] == out].set_index("input").loc[names]
        ax.barh(y + 0.18, rows["S1"], xerr=rows["S1_conf"], height=0.36, color="tab:blue", label="first order (S1)")
        ax.barh(y - 0.18, rows["ST"], xerr=rows["ST_conf"], height=0.36, color="tab:red", alpha=0.8, label="total (ST)")
        ax.axvline(0, color="black", lw=1)
        ax.set_title(textwrap.fill(labels.get(out, out), 32), fontsize=9)  # four panels side by side
        ax.set_xlabel("share of the output's variance", fontsize=8)
    axes[0][0].set_yticks(y, [input_label(name) for name in names], fontsize=8)
    axes[0][-1].legend(loc="lower right", fontsize=7)
    fig.suptitle(f"Sobol indices with {conf_level:.0%} confidence intervals", y=1.0)
    fig.tight_layout()
    return fig
