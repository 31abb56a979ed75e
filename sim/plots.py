"""Plots: functions from result tables to matplotlib figures (seaborn styling). No file I/O here
except `save_run_plots`, which the results writer calls.

Imported only where plots are drawn (matplotlib, seaborn and scipy take seconds to load), and it
never chooses a matplotlib backend: a notebook keeps its own; the CLI picks a file backend.
"""

from __future__ import annotations

import calendar
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns

from .bands import BAND, Band


def released_over_time(released: pd.DataFrame, band: Band = BAND) -> plt.Figure:
    """Hazardous area released (all districts): median with the band across replications.
    `released` is a run's band table (month, district, low, median, high, initial_ha), made with `band`."""
    b = released[released["district"] == "all"]
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.fill_between(b["month"], b["low"] / 1000, b["high"] / 1000, alpha=0.3, label=f"{band.label} of replications")
    ax.plot(b["month"], b["median"] / 1000, lw=2, label="median")
    ax.axhline(b["initial_ha"].iloc[0] / 1000, color="grey", ls="--", lw=1, label="all hazardous area")
    ax.set(xlabel="", ylabel="released (thousand ha)", title="Hazardous area released (cancelled + reduced + cleared)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def released_by_district(released: pd.DataFrame) -> plt.Figure:
    """Share of each district's hazardous area released over time, median and band."""
    frame = released[released["district"] != "all"].copy()
    for col in ("low", "median", "high"):
        frame[col] = np.where(frame["initial_ha"] > 0, frame[col] / frame["initial_ha"], 1.0)
    sns.set_theme(style="whitegrid")
    grid = sns.FacetGrid(frame, col="district", col_wrap=5, height=2.0, aspect=1.4, sharey=True)

    def draw(data, **_):
        ax = plt.gca()
        ax.fill_between(data["month"], data["low"], data["high"], alpha=0.3)
        ax.plot(data["month"], data["median"], lw=1.5)

    grid.map_dataframe(draw)
    grid.set_titles("{col_name}")
    grid.set_axis_labels("", "share released")
    for ax in grid.axes.flat:
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.set_ylim(0, 1.02)
    grid.figure.suptitle("Share of each district's hazardous area released", y=1.02)
    return grid.figure


def _yearly_means_bars(per_year: pd.DataFrame, columns: dict[str, str], hue: str, ylabel: str, title: str) -> plt.Figure:
    """Bars per year of the mean over replications of `columns` (renamed to their labels)."""
    n = per_year["replication"].nunique()
    mean = per_year.groupby("year")[list(columns)].sum().rename(columns=columns) / max(n, 1)
    long = mean.reset_index().melt(id_vars="year", var_name=hue, value_name="value")
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    sns.barplot(long, x="year", y="value", hue=hue, ax=ax)
    ax.set(xlabel="", ylabel=ylabel, title=title)
    ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    return fig


def land_per_year(per_year: pd.DataFrame) -> plt.Figure:
    """Land released per year by method, mean over replications: what the agencies report as
    "cleared" is the processed part (reduced by technical survey + cleared), never cancellation.
    Years after the last release are left out."""
    n = max(per_year["replication"].nunique(), 1)
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
    ax.yaxis.set_major_formatter(mticker.StrMethodFormatter("{x:,.0f}"))
    ax.set(xlabel="", ylabel="ha per year (mean)", title=f"Land released per year by method ({n} replications)")
    handles, names = ax.get_legend_handles_labels()  # listed top to bottom, as stacked
    ax.legend(handles[::-1], names[::-1], loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def items_per_year(per_year: pd.DataFrame) -> plt.Figure:
    """Items found per year by type, mean over replications (`per_year`: replication, year, items_*...)."""
    return _yearly_means_bars(
        per_year,
        {"items_ap": "anti-personnel", "items_at": "anti-tank", "items_uxo": "UXO"},
        "item",
        "items found per year (mean)",
        "Items found and destroyed",
    )


def casualties_per_year(per_year: pd.DataFrame) -> plt.Figure:
    """Casualties per year by victim and outcome, mean over replications."""
    columns = {
        "civilian_killed": "civilian killed",
        "civilian_injured": "civilian injured",
        "deminer_killed": "deminer killed",
        "deminer_injured": "deminer injured",
    }
    return _yearly_means_bars(per_year, columns, "who", "people per year (mean)", "Casualties: civilians and deminers")


def completion_dates(completion: pd.DataFrame, horizon_end: pd.Timestamp, band: Band = BAND) -> plt.Figure:
    """Per district, the date all hazardous area is handed over: median and band across replications.
    Replications not done by the horizon count at the horizon (drawn hollow)."""
    frame = completion.copy()
    frame["done"] = frame["completion_date"].notna()
    frame["date"] = frame["completion_date"].fillna(horizon_end)
    stats = (
        frame.groupby("district", observed=True)
        .agg(
            low=("date", lambda s: s.quantile(band.low)),
            p50=("date", "median"),
            high=("date", lambda s: s.quantile(band.high)),
            done=("done", "mean"),
        )
        .sort_values("p50")
    )
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(stats) + 1.5))
    y = np.arange(len(stats))
    ax.hlines(y, stats["low"], stats["high"], lw=3, alpha=0.5, label=f"{band.label} of replications")
    full = stats["done"] >= 0.5
    ax.plot(stats["p50"][full], y[full], "o", color="C0", label="median")
    ax.plot(stats["p50"][~full], y[~full], "o", mfc="none", color="C3", label="median not within horizon")
    ax.axvline(horizon_end, color="grey", ls="--", lw=1, label="horizon")
    ax.set_yticks(y, stats.index)
    ax.set(xlabel="all hazardous area handed over", title=f"Completion date by district (median, {band.label})")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def targets_vs_reported(targets: pd.DataFrame, tolerance: float = 0.15, band: Band = BAND) -> plt.Figure:
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
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(frame) + 1.5))
    y = np.arange(len(frame))
    ax.axvspan(1 - tolerance, 1 + tolerance, color="C2", alpha=0.15, label=f"within {tolerance:.0%}")
    # Fitted figures in blue; figures only compared (use = check: held out or not yet fitted) in orange.
    use = frame["use"].to_numpy() if "use" in frame else np.full(len(frame), "fit")
    for kind, colour, label in (("fit", "C0", "fitted"), ("check", "C1", "compared, not fitted")):
        rows = use == kind
        if not rows.any():
            continue
        ax.hlines(y[rows], frame["ratio_low"][rows], frame["ratio_high"][rows], lw=3, alpha=0.5, color=colour)
        ax.plot(frame["ratio_mean"][rows], y[rows], "o", color=colour, label=f"{label}: mean and {band.label} of replications")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y, frame["target"], fontsize=8)
    ax.set(xlabel="simulated / reported (log scale)", title="Simulated against reported figures")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


STATE_LABELS = {"idle_season_days": "idle: season", "down_days": "down (repair)", "idle_no_work_days": "idle: no work in reach"}


def utilisation_by_year(use: pd.DataFrame) -> plt.Figure:
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
            label = STATE_LABELS.get(column, "busy: " + column[len("busy_") : -len("_days")].replace("_", " "))
            ax.bar(shares.index, shares[column], bottom=bottom, color=colour, width=0.85, label=label)
            bottom += shares[column].to_numpy()
        ax.set(ylim=(0, 1.05), ylabel="share of days")
        ax.set_title(kind.replace("_", " "), loc="left", fontsize=10)
    axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.suptitle("How assets spent their days (what limits progress)", y=1.0)
    fig.tight_layout()
    return fig


def waiting_by_year(waiting: pd.DataFrame) -> plt.Figure:
    """Land waiting for each stage at year ends (all districts; mean over replications): where land
    piles up, capacity is short."""
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(9, 4))
    for stage, rows in waiting.groupby("stage", sort=False):
        if stage == "remote_survey" or rows["waiting_ha"].max() <= 0:
            continue
        ax.plot(rows["year"], rows["waiting_ha"] / 1000, marker="o", ms=3, label=stage.replace("_", " "))
    ax.set(xlabel="", ylabel="thousand ha", title="Land waiting for each stage at year end", yscale="symlog")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def _millions(ax, axis: str = "y") -> None:
    """Axis ticks in millions with thousands separators (values are USD)."""
    target = ax.yaxis if axis == "y" else ax.xaxis

    def fmt(value, _):
        digits = 0 if max(abs(v) for v in target.get_view_interval()) >= 10e6 else 1
        return f"{value / 1e6:,.{digits}f}"

    target.set_major_formatter(mticker.FuncFormatter(fmt))


def spend_per_year(spend: pd.DataFrame, band: Band = BAND) -> plt.Figure:
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
        ax.bar(years, by_agency[agency].to_numpy(), bottom=bottom, color=colors[k % len(colors)], label=agency, width=0.8)
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
    return fig


def save_run_plots(folder: Path, result) -> list[Path]:
    """Write the standard plots of one run into `folder` as PNGs; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    horizon_end = pd.Timestamp(result.summary["horizon_end"])
    figures = {
        "released_over_time.png": released_over_time(result.released, result.band),
        "released_by_district.png": released_by_district(result.released),
        "land_per_year.png": land_per_year(result.per_year),
        "items_per_year.png": items_per_year(result.per_year),
        "casualties_per_year.png": casualties_per_year(result.per_year),
        "completion_dates.png": completion_dates(result.completion, horizon_end, result.band),
        "targets_vs_reported.png": targets_vs_reported(result.targets, band=result.band),
    }
    if result.spend_per_year is not None and len(result.spend_per_year):
        figures["spend_per_year.png"] = spend_per_year(result.spend_per_year, result.band)
    if result.use_by_year is not None and len(result.use_by_year):
        figures["utilisation_by_year.png"] = utilisation_by_year(result.use_by_year)
        figures["waiting_by_year.png"] = waiting_by_year(result.waiting_by_year)
    paths = []
    holds = result.summary.get("band_holds")
    for name, fig in figures.items():
        path = folder / name
        if holds:  # every figure says what its bands hold
            fig.text(0.01, -0.01, f"Bands: {holds}.", fontsize=7, color="dimgrey", ha="left", va="top", wrap=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- backtests
# The fan chart's panels: yearly quantity (sim.backtest.YEARLY_QUANTITIES), title, axis label with unit.
FAN_PANELS = (
    ("processed_ha", "Hectares processed (technical survey and clearance)", "hectares per year (ha)"),
    ("items_ap", "Anti-personnel mines found", "mines per year"),
    ("items_at", "Anti-tank mines found", "mines per year"),
    ("items_uxo", "Unexploded ordnance found", "items per year"),
    ("victims_total", "Casualties (civilians and deminers)", "people killed or injured per year"),
)


def backtest_fan(yearly: pd.DataFrame, *, until, scenario: str, replications: int, band: Band = BAND) -> plt.Figure:
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
    return fig


# --------------------------------------------------------------------------- comparisons
def compare_released(released: pd.DataFrame, band: Band = BAND) -> plt.Figure:
    """Released area over time per scenario, median and band, on one axis (`released`: band tables
    of several runs, made with `band`, with a `scenario` column)."""
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for k, (name, b) in enumerate(released[released["district"] == "all"].groupby("scenario", sort=False)):
        ax.fill_between(b["month"], b["low"] / 1000, b["high"] / 1000, alpha=0.2, color=f"C{k}")
        ax.plot(b["month"], b["median"] / 1000, lw=2, color=f"C{k}", label=name)
    ax.set(xlabel="", ylabel="released (thousand ha)", title=f"Hazardous area released: median and {band.label} band")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def compare_casualties(per_year: pd.DataFrame) -> plt.Figure:
    """Civilian and deminer casualties per year per scenario (mean over replications)."""
    frame = per_year.assign(
        civilian=per_year["civilian_killed"] + per_year["civilian_injured"],
        deminer=per_year["deminer_killed"] + per_year["deminer_injured"],
    )
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for k, (name, sub) in enumerate(frame.groupby("scenario", sort=False)):
        mean = sub.groupby("year")[["civilian", "deminer"]].sum() / sub["replication"].nunique()
        for ax, col in zip(axes, ("civilian", "deminer")):
            ax.plot(mean.index, mean[col], marker="o", ms=3, color=f"C{k}", label=name)
    for ax, col in zip(axes, ("civilian", "deminer")):
        ax.set(title=f"{col} casualties per year (mean)", xlabel="", ylabel="people")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def compare_completion(districts: pd.DataFrame, band: Band = BAND) -> plt.Figure:
    """Per district, completion date per scenario: median with the band (censored at the horizon)."""
    scenarios = list(dict.fromkeys(districts["scenario"]))
    order = districts[districts["scenario"] == scenarios[0]].sort_values("p50")["district"].tolist()
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(order) + 1.5))
    width = 0.8 / max(len(scenarios), 1)
    for k, name in enumerate(scenarios):
        sub = districts[districts["scenario"] == name].set_index("district").reindex(order)
        y = np.arange(len(order)) + (k - (len(scenarios) - 1) / 2) * width
        ax.hlines(y, sub[band.low_name], sub[band.high_name], color=f"C{k}", lw=2, alpha=0.6)
        ax.plot(sub["p50"], y, "o", color=f"C{k}", label=name, ms=4)
    ax.axvline(districts["horizon_end"].max(), color="grey", ls="--", lw=1, label="horizon")
    ax.set_yticks(np.arange(len(order)), order)
    ax.invert_yaxis()
    ax.set(xlabel="all hazardous area handed over", title=f"Completion date by district and scenario (median, {band.label})")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def compare_differences(table: pd.DataFrame, metrics, band: Band = BAND) -> plt.Figure:
    """Difference from the reference scenario, median and band, one panel per outcome."""
    panels = [("released_90pct_diff_months", "90 % released (months)"), ("all_released_diff_months", "all released (months)")] + [
        (f"{c}_diff", f"{label} ({unit})") for c, label, unit in metrics
    ]
    others = table.iloc[1:]
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 1.0 + 1.1 * len(panels) * max(1, len(others)) ** 0.5), squeeze=False)
    for ax, (prefix, label) in zip(axes[:, 0], panels):
        y = np.arange(len(others))
        ax.hlines(y, others[f"{prefix}_{band.low_name}"], others[f"{prefix}_{band.high_name}"], lw=3, alpha=0.5)
        ax.plot(others[f"{prefix}_p50"], y, "o")
        ax.axvline(0, color="k", lw=1)
        ax.set_yticks(y, others["scenario"])
        ax.set_title(f"{label}: minus {table.iloc[0]['scenario']} (median, {band.label})", fontsize=10)
    fig.tight_layout()
    return fig


def compare_spend(spend: pd.DataFrame, band: Band = BAND) -> plt.Figure:
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
    return fig


def compare_cost_per_ha(per_replication: pd.DataFrame, band: Band = BAND) -> plt.Figure:
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
    return fig


# --------------------------------------------------------------------------- sweeps
def sweep_heatmaps(points: pd.DataFrame, keys: list[str]) -> plt.Figure:
    """P50 completion (years from the start) and civilian casualties over the grid: a heatmap for two
    keys, lines for one (other keys, if any, are averaged over)."""
    outcomes = [
        ("all_released_p50_years", "all released, P50 (years from start)"),
        ("civilian_casualties_at_horizon_mean", "civilian casualties to the horizon (mean)"),
    ]
    sns.set_theme(style="white")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, (column, title) in zip(axes, outcomes):
        if len(keys) >= 2:
            table = points.pivot_table(index=keys[0], columns=keys[1], values=column, aggfunc="mean")
            sns.heatmap(table, annot=True, fmt=".1f", cmap="viridis_r", ax=ax, cbar=False)
        else:
            mean = points.groupby(keys[0])[column].mean()
            ax.plot(mean.index.astype(str), mean.to_numpy(), marker="o")
            ax.set_xlabel(keys[0])
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


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
        ax.set_title(labels.get(out, out), fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    axes[0][0].set_yticks(y, names, fontsize=8)
    axes[0][-1].legend(loc="lower right", fontsize=7)
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
        ax.set_title(labels.get(out, out), fontsize=9)
        ax.set_xlabel("share of the output's variance", fontsize=8)
    axes[0][0].set_yticks(y, names, fontsize=8)
    axes[0][-1].legend(loc="lower right", fontsize=7)
    fig.suptitle(f"Sobol indices with {conf_level:.0%} confidence intervals", y=1.0)
    fig.tight_layout()
    return fig
