"""Plots: functions from result tables to matplotlib figures (seaborn styling). No file I/O here
except `save_run_plots`, which the results writer calls."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: plots are files, never windows

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

BAND = (0.05, 0.95)


def _bands(frame: pd.DataFrame, by: list[str], value: str, band=BAND) -> pd.DataFrame:
    grouped = frame.groupby(by, observed=True)[value]
    return pd.DataFrame(
        {"median": grouped.median(), "low": grouped.quantile(band[0]), "high": grouped.quantile(band[1])}
    ).reset_index()


def released_over_time(districts: pd.DataFrame, band=BAND) -> plt.Figure:
    """Released hazardous area (all districts), median with a quantile band across replications."""
    total = districts.groupby(["replication", "month"], observed=True)[["released_ha", "suspected_ha", "confirmed_ha"]].sum().reset_index()
    total["released_kha"] = total["released_ha"] / 1000
    b = _bands(total, ["month"], "released_kha", band)
    initial = (total["released_ha"] + total["suspected_ha"] + total["confirmed_ha"]).max() / 1000
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.fill_between(b["month"], b["low"], b["high"], alpha=0.3, label=f"P{int(band[0]*100)}-P{int(band[1]*100)}")
    ax.plot(b["month"], b["median"], lw=2, label="median")
    ax.axhline(initial, color="grey", ls="--", lw=1, label="all hazardous area")
    ax.set(xlabel="", ylabel="released (thousand ha)", title="Hazardous area released (cancelled + reduced + cleared)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def released_by_district(districts: pd.DataFrame, band=BAND) -> plt.Figure:
    """Share of each district's hazardous area released over time, median and band."""
    frame = districts.copy()
    frame["initial"] = frame["released_ha"] + frame["suspected_ha"] + frame["confirmed_ha"]
    frame["released_share"] = np.where(frame["initial"] > 0, frame["released_ha"] / frame["initial"], 1.0)
    b = _bands(frame, ["district", "month"], "released_share", band)
    sns.set_theme(style="whitegrid")
    grid = sns.FacetGrid(b, col="district", col_wrap=5, height=2.0, aspect=1.4, sharey=True)

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


def items_per_year(monthly: pd.DataFrame) -> plt.Figure:
    """Items found per year by type, mean over replications."""
    n = monthly["replication"].nunique()
    frame = monthly.assign(year=monthly["month"].dt.year)
    per_year = frame.groupby("year")[["items_ap", "items_at", "items_uxo"]].sum() / max(n, 1)
    per_year.columns = ["anti-personnel", "anti-tank", "UXO"]
    long = per_year.reset_index().melt(id_vars="year", var_name="item", value_name="items")
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    sns.barplot(long, x="year", y="items", hue="item", ax=ax)
    ax.set(xlabel="", ylabel="items found per year (mean)", title="Items found and destroyed")
    ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    return fig


def casualties_per_year(incidents: pd.DataFrame, replications: int) -> plt.Figure:
    """Casualties per year by victim and outcome, mean over replications."""
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    if len(incidents):
        frame = incidents.assign(year=incidents["date"].dt.year, who=incidents["victim"].astype(str) + " " + incidents["outcome"].astype(str))
        counts = frame.groupby(["year", "who"]).size().div(max(replications, 1)).rename("people").reset_index()
        sns.barplot(counts, x="year", y="people", hue="who", ax=ax)
    ax.set(xlabel="", ylabel="people per year (mean)", title="Casualties: civilians and deminers")
    ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    return fig


def completion_dates(completion: pd.DataFrame, horizon_end: pd.Timestamp) -> plt.Figure:
    """Per district, the date all hazardous area is handed over: median and P10-P90 across replications.
    Replications not done by the horizon count at the horizon (drawn hollow)."""
    frame = completion.copy()
    frame["done"] = frame["completion_date"].notna()
    frame["date"] = frame["completion_date"].fillna(horizon_end)
    stats = frame.groupby("district", observed=True).agg(
        p10=("date", lambda s: s.quantile(0.1)), p50=("date", "median"), p90=("date", lambda s: s.quantile(0.9)), done=("done", "mean")
    ).sort_values("p50")
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(stats) + 1.5))
    y = np.arange(len(stats))
    ax.hlines(y, stats["p10"], stats["p90"], lw=3, alpha=0.5)
    full = stats["done"] >= 0.5
    ax.plot(stats["p50"][full], y[full], "o", color="C0", label="median")
    ax.plot(stats["p50"][~full], y[~full], "o", mfc="none", color="C3", label="median not within horizon")
    ax.axvline(horizon_end, color="grey", ls="--", lw=1, label="horizon")
    ax.set_yticks(y, stats.index)
    ax.set(xlabel="all hazardous area handed over", title="Completion date by district (P10-P90)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def targets_vs_reported(targets: pd.DataFrame, tolerance: float = 0.15) -> plt.Figure:
    """Simulated / reported per calibration target: mean and 5-95 % interval, log scale, with a tolerance band."""
    frame = targets.dropna(subset=["simulated_mean"]).copy()
    frame = frame[frame["reported"] > 0]
    floor = 1e-3  # a zero simulated value still shows, at the left edge
    for col in ("simulated_mean", "simulated_p5", "simulated_p95"):
        frame[col.replace("simulated", "ratio")] = np.maximum(frame[col] / frame["reported"], floor)
    frame = frame.iloc[::-1]
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(frame) + 1.5))
    y = np.arange(len(frame))
    ax.axvspan(1 - tolerance, 1 + tolerance, color="C2", alpha=0.15, label=f"within {tolerance:.0%}")
    ax.hlines(y, frame["ratio_p5"], frame["ratio_p95"], lw=3, alpha=0.5, color="C0", label="5-95 % of replications")
    ax.plot(frame["ratio_mean"], y, "o", color="C0", label="mean")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y, frame["target"], fontsize=8)
    ax.set(xlabel="simulated / reported (log scale)", title="Calibration: simulated against reported figures")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def save_run_plots(folder: Path, result) -> list[Path]:
    """Write the standard plots of one run into `folder` as PNGs; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    horizon_end = pd.Timestamp(result.summary["horizon_end"])
    figures = {
        "released_over_time.png": released_over_time(result.districts),
        "released_by_district.png": released_by_district(result.districts),
        "items_per_year.png": items_per_year(result.monthly),
        "casualties_per_year.png": casualties_per_year(result.incidents, result.replications),
        "completion_dates.png": completion_dates(result.completion, horizon_end),
        "targets_vs_reported.png": targets_vs_reported(result.targets),
    }
    paths = []
    for name, fig in figures.items():
        path = folder / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths
