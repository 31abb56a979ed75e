"""Backtesting a projection (`demining backtest`): fit only to the figures reported by a cutoff
date, run the fitted scenario past it, and score every figure reported later.

A projection is worth trusting as far as the model, fitted on what was known at some date, would
have predicted what was reported after it. So the reported figures are split by the end of their
window: those ending by the cutoff (and marked `use = fit`) are fitted; those ending after it,
whatever their use, are held out, never seen by the fit, and compared with the projection's
band. A figure whose window straddles the cutoff (a count since the ceasefire, say) is held out:
it ends after the cutoff, though part of it was known then.

Pure: tables in, tables out; no printing and no files (`sim.outputs.write_backtest` writes them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .bands import BAND, Band
from .calibration import PRIOR_STARTS, Fit, apply, calibrate, calibration_horizon_years, free_parameters
from .config import ScenarioConfig
from .ensemble import run
from .errors import UserError
from .metrics import CASUALTY_COLUMNS, ITEM_COLUMNS
from .seeds import Target, fitted, load_targets

# The yearly series of the fan chart and yearly.csv, each a sum of per_year columns (per
# replication and calendar year; sim.metrics.replication_scalars), named as the target metric
# the agencies' yearly figures are compared with.
# Hectares and items are the national agencies' (as the national figures count them).
YEARLY_QUANTITIES: dict[str, tuple[str, ...]] = {
    "processed_ha": ("processed_ha",),
    "items_ap": ("national_items_ap",),
    "items_at": ("national_items_at",),
    "items_uxo": ("national_items_uxo",),
    "items_total": tuple(f"national_{c}" for c in ITEM_COLUMNS),
    "victims_total": CASUALTY_COLUMNS,
}

# How held-out figures are summed up in one line: median absolute relative error per kind.
SCORE_GROUPS: dict[str, tuple[str, ...]] = {
    "hectares": ("processed_ha", "released_ha", "aerial_survey_ha"),
    "items": ("items_total", "items_mines", "items_ap", "items_at", "items_uxo"),
    "casualties": ("victims_total", "victims_killed", "victims_civilian", "victims_military"),
}


@dataclass(frozen=True)
class Split:
    """The reported figures on either side of a cutoff."""

    until: dt.date
    training: tuple[Target, ...]  # window ends by the cutoff, use = fit: what the fit sees
    held_out: tuple[Target, ...]  # window ends after the cutoff, whatever its use: what is scored


def unfittable_at_priors(cfg: ScenarioConfig, split: Split, targets: list[Target]) -> ScenarioConfig:
    """`cfg` with every parameter the full record fits but the figures by the cutoff cannot (the
    Defence Ministry's later pace, with its 2023 figure held out) back at its prior: the committed
    value saw the held-out figures."""
    trainable = {p.path for p in free_parameters(cfg, list(split.training))}
    unfittable = {p.path: p.prior for p in free_parameters(cfg, fitted(targets)) if p.path not in trainable}
    return apply(cfg, unfittable) if unfittable else cfg


def split_targets(cfg: ScenarioConfig, until: dt.date, targets: list[Target]) -> Split:
    """Split `targets` at `until` (inclusive: a window ending on the cutoff day is training).
    A one-line UserError when the cutoff is before the scenario's start or the split leaves
    nothing to fit or nothing to score."""
    if until < cfg.start_date:
        raise UserError(f"the cutoff {until} is before the scenario's start ({cfg.start_date}); nothing could be fitted")
    candidates = fitted(targets)
    training = tuple(t for t in candidates if t.window_end <= until)
    held_out = tuple(t for t in targets if t.window_end > until)
    if not candidates:
        raise UserError("no reported figure is marked use = fit, so there is nothing to fit")
    if not training:
        first = min(t.window_end for t in candidates)
        raise UserError(f"no figure to fit ends by the cutoff {until} (the first ends {first}); choose a later cutoff")
    if not held_out:
        last = max(t.window_end for t in targets)
        raise UserError(
            f"no reported figure ends after the cutoff {until} (the last ends {last}), so nothing would be scored; "
            "choose an earlier cutoff"
        )
    return Split(until=until, training=training, held_out=held_out)


def check_horizon(cfg: ScenarioConfig, split: Split) -> None:
    """A one-line UserError when the scenario stops before a held-out figure's window ends: its
    score would compare a full report with part of a simulated window."""
    beyond = [t for t in split.held_out if t.window_end >= cfg.end_date]
    if beyond:
        raise UserError(
            f"the scenario ends on {cfg.end_date} (horizon_years {cfg.horizon_years:g}), before the held-out figure "
            f"{beyond[0].id} ends ({beyond[0].window_end}); raise horizon_years"
        )


@dataclass
class Backtest:
    """What a backtest produced: the fit to the figures known by `until`, and the projection of
    the fitted scenario scored against every figure."""

    scenario: str
    until: dt.date
    seed: int
    replications_fit: int
    replications_score: int
    fit: Fit  # fitted values and the fit's table (training figures, `replications_fit` replications)
    start_objectives: list[float]  # each start's fit objective (PRIOR_STARTS order); `fit` is the lowest
    # Each start's projection scored on the held-out figures (held_out_scores, plus each figure's
    # relative error by target): on record, never used to choose the start.
    start_scores: list[dict]
    config: ScenarioConfig  # the fitted scenario as projected, its horizon covering the last window
    scored: pd.DataFrame  # every figure (sim.metrics.targets_table) plus held_out, fitted, inside_band
    yearly: pd.DataFrame  # year, quantity, simulated mean / band / median, reported where a yearly figure exists
    band: Band = BAND

    @property
    def kept_start(self) -> int:
        """Index in PRIOR_STARTS of the start whose fit is projected."""
        return lowest(self.start_objectives)

    @property
    def values(self) -> dict[str, float]:
        return self.fit.values

    @property
    def fit_table(self) -> pd.DataFrame:
        return self.fit.table

    @property
    def scores(self) -> dict:
        return held_out_scores(self.scored)


def backtest(
    cfg: ScenarioConfig,
    until: dt.date,
    replications_fit: int = 6,
    replications_score: int = 20,
    seed: int = 0,
    *,
    workers: int = 1,
    max_evaluations: int = 30,
    rounds: int = 2,
    band: Band = BAND,
    starts: int = len(PRIOR_STARTS),
    targets: list[Target] | None = None,
    on_evaluation: Callable[[str, int, float], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Backtest:
    """Fit `cfg` to the figures whose window ends by `until` (sim.calibration.calibrate, with
    `replications_fit` replications per evaluation), then run the fitted scenario for
    `replications_score` replications (same seed) far enough to cover the last figure and score
    every figure. The fit is run from the first `starts` of PRIOR_STARTS (each from the priors, the
    same seed and budget) and the one with the lowest objective on the figures by the cutoff is
    kept: which start wins is decided by those figures alone. `targets` defaults to
    seeds/targets.csv. `on_evaluation` is passed to the fits, `progress` to the scoring run."""
    targets = load_targets() if targets is None else list(targets)
    split = split_targets(cfg, until, targets)
    check_horizon(cfg, split)
    cfg = unfittable_at_priors(cfg, split, targets)
    if not 1 <= starts <= len(PRIOR_STARTS):
        raise UserError(f"starts must be from 1 to {len(PRIOR_STARTS)}, not {starts}")
    fits = [
        calibrate(
            cfg,
            replications_fit,
            seed,
            workers=workers,
            max_evaluations=max_evaluations,
            rounds=rounds,
            targets=list(split.training),
            on_evaluation=_labelled(on_evaluation, k, starts),
            band=band,
            # The scenario's own values come from the committed fit, which saw the held-out figures.
            start_from_priors=True,
            start=PRIOR_STARTS[k],
        )
        for k in range(starts)
    ]
    kept = lowest([f.objective for f in fits])
    fit = fits[kept]
    # Every start's fit is projected and scored, so that how much the choice of start matters is on
    # record (metadata.json); only the kept one's projection is the backtest's.
    projections = [
        _project(cfg, f, replications_score, seed, workers, targets, split, band, progress if k == kept else None)
        for k, f in enumerate(fits)
    ]
    projected, result, scored = projections[kept]
    last_year = max(t.window_end for t in targets).year
    years = range(cfg.start_date.year, last_year + 1)
    yearly = yearly_table(result.per_year, range(result.replications), years, targets, split, cfg.start_date, band)
    return Backtest(
        scenario=cfg.name,
        until=until,
        seed=seed,
        replications_fit=replications_fit,
        replications_score=result.replications,
        fit=fit,
        start_objectives=[f.objective for f in fits],
        start_scores=[held_out_scores(p[2]) | {"relative_error": held_out_errors(p[2])} for p in projections],
        config=projected,
        scored=scored,
        yearly=yearly,
        band=band,
    )


def lowest(objectives: list[float]) -> int:
    """The start kept: the lowest objective, the first of equals."""
    return objectives.index(min(objectives))


def _project(cfg, fit, replications, seed, workers, targets, split, band, progress):
    """The scenario with `fit`'s values, run past the last figure's window by a year (so that task
    steps overlapping it have finished, as the fit does), and every figure scored: (config, run, scored)."""
    fitted_cfg = apply(cfg, fit.values)
    projected = fitted_cfg.shortened(calibration_horizon_years(fitted_cfg, targets))
    result = run(projected, replications, seed, workers=workers, targets=targets, progress=progress, band=band)
    return projected, result, score_table(result.targets, split, band)


def _labelled(on_evaluation, k: int, starts: int):
    """`on_evaluation` with the block's name prefixed by the start it belongs to, where there are several."""
    if on_evaluation is None or starts == 1:
        return on_evaluation
    return lambda block, evaluation, objective: on_evaluation(f"start {k + 1}/{starts}, {block}", evaluation, objective)


def score_table(targets: pd.DataFrame, split: Split, band: Band = BAND) -> pd.DataFrame:
    """A run's targets table with `held_out` (window ends after the cutoff), `fitted` (the fit saw
    it: `use` alone does not say, a held-out figure may be marked fit) and `inside_band` (the
    reported figure lies within the simulated band, ends included)."""
    table = targets.copy()
    table["held_out"] = table["target"].isin({t.id for t in split.held_out})
    table["fitted"] = table["target"].isin({t.id for t in split.training})
    low, high = table[f"simulated_{band.low_name}"], table[f"simulated_{band.high_name}"]
    table["inside_band"] = (table["reported"] >= low) & (table["reported"] <= high)  # False where not simulated (NaN)
    return table


def _calendar_year(target: Target, start: dt.date) -> int | None:
    """The year a figure covers when its window is one calendar year (from the campaign's start
    in its first year), else None."""
    year = target.window_end.year
    first_day = max(dt.date(year, 1, 1), start)
    window_start = target.window_start or start  # no start: since the campaign began
    if target.agency == "all" and target.window_end == dt.date(year, 12, 31) and window_start == first_day:
        return year
    return None


def yearly_table(
    per_year: pd.DataFrame, replications, years, targets: list[Target], split: Split, start: dt.date, band: Band = BAND
) -> pd.DataFrame:
    """Per year and quantity (YEARLY_QUANTITIES): the simulated mean, band and median over
    replications (a year with no rows in a replication counts as zero), and, where a national
    figure covers that whole year, the reported value, its id, and whether it was held out or fitted.

    Simulated years count a task step in the year it ends (per_year); a scored figure spreads a
    step over its duration, so the two differ by the part of a step (about a month) that
    straddles the new year: the band of a yearly figure in the scored table is the one to judge by."""
    index = pd.MultiIndex.from_product([list(replications), list(years)], names=["replication", "year"])
    columns = sorted({c for cols in YEARLY_QUANTITIES.values() for c in cols})
    frame = per_year.set_index(["replication", "year"]) if len(per_year) else pd.DataFrame(columns=columns)
    values = frame.reindex(index=index, columns=columns).fillna(0.0)
    reported: dict[tuple[int, str], Target] = {}
    for target in targets:
        year = _calendar_year(target, start)
        if year is not None:
            reported.setdefault((year, target.metric), target)
    held_out = {t.id for t in split.held_out}
    training = {t.id for t in split.training}
    lo, mid, hi = band.quantiles
    rows = []
    for quantity, cols in YEARLY_QUANTITIES.items():
        series = values[list(cols)].sum(axis=1).unstack("year")  # replications x years
        for year in series.columns:
            v = series[year].to_numpy(dtype=float)
            figure = reported.get((int(year), quantity))
            rows.append(
                {
                    "year": int(year),
                    "quantity": quantity,
                    "simulated_mean": float(v.mean()),
                    f"simulated_{band.low_name}": float(np.quantile(v, lo)),
                    "simulated_p50": float(np.quantile(v, mid)),
                    f"simulated_{band.high_name}": float(np.quantile(v, hi)),
                    "reported": float(figure.value) if figure else float("nan"),
                    "target": figure.id if figure else None,
                    "held_out": figure.id in held_out if figure else None,
                    "fitted": figure.id in training if figure else None,
                }
            )
    return pd.DataFrame(rows)


def held_out_scores(scored: pd.DataFrame) -> dict:
    """How the projection did on the held-out figures: how many, how many inside the band, and
    the median absolute relative error of each kind (SCORE_GROUPS; None where none is held out)."""
    held = scored[scored["held_out"]]
    errors = {}
    for group, metrics in SCORE_GROUPS.items():
        rel = held.loc[held["metric"].isin(metrics), "relative_error"].abs().dropna()
        errors[group] = float(rel.median()) if len(rel) else None
    return {
        "held_out": int(len(held)),
        "inside_band": int(held["inside_band"].sum()),
        "median_abs_relative_error": errors,
    }


def held_out_errors(scored: pd.DataFrame) -> dict[str, float]:
    """Each held-out figure's relative error (simulated mean against reported), by target."""
    held = scored[scored["held_out"] & scored["relative_error"].notna()]
    return dict(zip(held["target"], held["relative_error"].astype(float), strict=True))
