"""Results folders of comparisons, sweeps, calibrations and backtests, written by the library so
that a notebook produces the same folders as the CLI.

Each is filled under a hidden `.partial-*` name and renamed into place when complete (as runs are,
`sim.results`), never over an earlier one, and carries `metadata.json` with the provenance record
every results folder has (`sim.provenance`). Plotting (and scipy) is imported only when needed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import tomli_w

from .bands import BAND
from .compare import (
    ASSUMPTIONS,
    Comparison,
    figure_png,
    html_report,
    markdown_costs,
    markdown_table,
    national_outcomes,
    released_difference,
)
from .config import (
    BACKTEST_FOLDER,
    CALIBRATION_FOLDER,
    COMPARISONS_FOLDER,
    PLANS_FOLDER,
    SENSITIVITY_SUFFIX,
    SWEEP_SUFFIX,
    ScenarioConfig,
)
from .errors import UserError
from .provenance import now, provenance
from .results import config_hash, config_toml, new_run_id, publish_folder, write_bytes_atomically, write_json
from .sweep import Sweep

if TYPE_CHECKING:  # sim.calibration loads scipy: imported only when a calibration or backtest is written
    from .backtest import Backtest
    from .calibration import Fit
    from .plan import PlanResult
    from .sensitivity import Sensitivity

CALIBRATED_HEADER = "# Fitted parameters, extended by baseline.toml. Written by `demining calibrate`; refit rather than edit.\n"
BACKTEST_HEADER = (
    "# Parameters fitted only to the figures reported by {until}, by `demining backtest`: for judging the\n"
    "# projection, not for use as scenarios/calibrated.toml (which is fitted to every figure).\n"
)


def write_comparison(
    comparison: Comparison, out: Path, *, started: dt.datetime | None = None, command: str | None = None
) -> Path:
    """`<out>/comparisons/<id>/`: comparison.csv and .md (the whole campaign), comparison_districts.csv
    (per district), comparison_years.csv (per calendar year), comparison_costs.csv (when every run
    recorded its spend), plots/, a self-contained report.html, runs.json and metadata.json. Returns
    the folder."""
    from . import plots as pl

    started = started or now()
    band = comparison.band
    figures = comparison_figures(comparison)
    cost_figures = {}
    if comparison.costs is not None:
        cost_figures = {
            "Spend over time": pl.compare_spend(comparison.spend, band, comparison_footer(comparison)),
            "Cost per hectare": pl.compare_cost_per_ha(comparison.per_replication, band, comparison_footer(comparison)),
        }
    pngs = {title: figure_png(fig) for title, fig in figures.items()}
    cost_pngs = {title: figure_png(fig) for title, fig in cost_figures.items()}
    for fig in [*figures.values(), *cost_figures.values()]:
        pl.plt.close(fig)
    runs = comparison.runs
    # Two runs of one scenario are told apart by their folder.
    labels = [r.name if [q.name for q in runs].count(r.name) == 1 else f"{r.name}/{r.path.name}" for r in runs]
    record = provenance(
        "comparison",
        started=started,
        seeds=[r.metadata["seed"] for r in runs],
        configs={label: r.metadata.get("config_sha256") for label, r in zip(labels, runs)},
        band=band,
        command=command,
    )
    with publish_folder(Path(out), COMPARISONS_FOLDER, new_run_id(started)) as (tmp, final):
        comparison.table.to_csv(tmp / "comparison.csv", index=False)
        comparison.districts.to_csv(tmp / "comparison_districts.csv", index=False)
        comparison.years.to_csv(tmp / "comparison_years.csv", index=False)
        markdown = markdown_table(comparison.table, band, comparison.asked)
        if comparison.costs is not None:
            comparison.costs.to_csv(tmp / "comparison_costs.csv", index=False)
            markdown += "\nCosts (USD; scenario minus reference):\n\n" + markdown_costs(comparison.costs, band)
        (tmp / "comparison.md").write_text(markdown, encoding="utf-8")
        (tmp / "plots").mkdir()
        for title, png in {**pngs, **cost_pngs}.items():
            (tmp / "plots" / (title.lower().replace(" ", "_") + ".png")).write_bytes(png)
        report = html_report(
            runs, comparison.table, pngs, ASSUMPTIONS, band, comparison, costs=comparison.costs, cost_figures=cost_pngs
        )
        (tmp / "report.html").write_text(report, encoding="utf-8")
        (tmp / "runs.json").write_text(
            json.dumps({label: str(r.path) for label, r in zip(labels, runs)}, indent=2), encoding="utf-8"
        )
        write_json(
            tmp / "metadata.json",
            record
            | {
                "reference": labels[0],
                "runs": labels,
                "paired": bool(comparison.table["paired"].all()),
                "shares": list(comparison.asked.shares),
                "years": list(comparison.asked.years),
                "districts": list(comparison.asked.districts) if comparison.asked.districts else None,
                "warnings": comparison.warnings,
            },
        )
    return final["path"]


def comparison_footer(comparison: Comparison) -> str:
    """What a comparison's figures come from: the runs, their replications and seeds, scale, band."""
    from .plots import band_text, scale_text

    runs = comparison.runs
    reps = {r.replications for r in runs}
    seeds = {r.seed for r in runs}
    if len(reps) == 1 and len(seeds) == 1:
        how = f"{reps.pop()} replications each, seed {seeds.pop()} (paired)"
    else:
        how = "; ".join(f"{r.name}: {r.replications} replications, seed {r.seed}" for r in runs) + " (unpaired)"
    scales = sorted({r.area_scale for r in runs})
    scale = scale_text(scales[0]) if len(scales) == 1 else "area scales differ: " + ", ".join(f"{s:g}" for s in scales)
    holds = {(r.metadata.get("uncertainty") or {}).get("holds") for r in runs}
    held = holds.pop() if len(holds) == 1 else "what each run's bands hold (they differ)"
    return f"Reference {runs[0].name}; {how}; {scale}; {band_text(comparison.band, held)}"


def comparison_figures(comparison: Comparison) -> dict:
    """The comparison's figures by title, in the order the report shows them."""
    from . import plots as pl

    band, runs, asked = comparison.band, comparison.runs, comparison.asked
    footer = comparison_footer(comparison)
    shown = list(asked.districts) if asked.districts else None
    last_year = min((r.horizon_end - dt.timedelta(days=1)).year for r in runs)
    return {
        "Released area over time": pl.compare_released(comparison.released, comparison.released_band, footer),
        "Difference from the reference over time": pl.compare_difference_over_time(
            released_difference(runs, band), comparison.years, runs[0].name, band, footer
        ),
        "Difference from the reference": pl.compare_differences(comparison.table, national_outcomes(asked), band, footer),
        "Completion date by district": pl.compare_completion(comparison.completion, band, footer, shown),
        "Difference by district": pl.compare_district_differences(
            comparison.districts, asked.date_outcomes(), band, footer, shown, comparison.table
        ),
        "Casualties per year": pl.compare_casualties(comparison.per_year, footer, last_year),
    }


def write_sweep(
    sweep: Sweep, out: Path, *, started: dt.datetime | None = None, command: str | None = None, executor: str | None = None
) -> Path:
    """`<out>/<scenario>-sweep/<id>/`: sweep.csv, replications.parquet, sweep.png, every point's
    resolved config (configs/point-NNN.toml, NNN the `point` column) and metadata.json."""
    from .plots import plt, scale_text, sweep_heatmaps

    started = started or now()
    names = {index: f"point-{index:03d}" for index in range(len(sweep.points))}
    record = provenance(
        "sweep",
        started=started,
        seeds=[sweep.seed],
        band=sweep.band,
        command=command,
        configs={names[k]: config_hash(cfg) for k, (_, cfg) in enumerate(sweep.points)},
    )
    with publish_folder(Path(out), sweep.scenario + SWEEP_SUFFIX, new_run_id(started)) as (tmp, final):
        sweep.table.to_csv(tmp / "sweep.csv", index=False)
        sweep.per_replication.to_parquet(tmp / "replications.parquet", index=False)
        (tmp / "configs").mkdir()
        for k, (_, cfg) in enumerate(sweep.points):
            (tmp / "configs" / f"{names[k]}.toml").write_text(config_toml(cfg), encoding="utf-8")
        scale = sweep.points[0][1].parcels.area_scale
        points = (
            f"{len(sweep.points)} grid points x {sweep.replications} replications, seed {sweep.seed} (the same at every point)"
        )
        fig = sweep_heatmaps(sweep.table, list(sweep.grid), f"{sweep.scenario}: {points}; {scale_text(scale)}")
        fig.savefig(tmp / "sweep.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        write_json(
            tmp / "metadata.json",
            record | {"scenario": sweep.scenario, "grid": sweep.grid, "replications": sweep.replications, "executor": executor},
        )
    return final["path"]


def write_calibration(
    fit: Fit,
    cfg: ScenarioConfig,
    out: Path,
    *,
    seed: int,
    replications: int,
    scenario: str,
    output: Path | None = None,
    started: dt.datetime | None = None,
    command: str | None = None,
) -> Path:
    """`<out>/calibration/<id>/`: targets.csv, calibrated.toml, fit.json, calibration.png, the fitted
    scenario's resolved config (config.toml) and metadata.json. With `output`, the fitted values
    are also written there (replacing it atomically: the file the baseline extends)."""
    from .calibration import apply, calibrated_toml
    from .plots import plt, run_footer, targets_vs_reported

    started = started or now()
    text = CALIBRATED_HEADER + tomli_w.dumps(calibrated_toml(fit, seed=seed, replications=replications, scenario=scenario))
    fitted = apply(cfg, fit.values)
    record = provenance(
        "calibration", started=started, seeds=[seed], configs={cfg.name: config_hash(fitted)}, band=fit.band, command=command
    )
    if output is not None:
        _replace_file(Path(output), text)
    with publish_folder(Path(out), CALIBRATION_FOLDER, new_run_id(started)) as (tmp, final):
        fit.table.to_csv(tmp / "targets.csv", index=False)
        (tmp / "calibrated.toml").write_text(text, encoding="utf-8")
        (tmp / "config.toml").write_text(config_toml(fitted), encoding="utf-8")
        (tmp / "fit.json").write_text(
            json.dumps({"values": fit.values, "objective": fit.objective, "history": fit.history}, indent=2), encoding="utf-8"
        )
        footer = run_footer(f"{scenario}, fitted", replications, seed, fitted.parcels.area_scale, fit.band)
        fig = targets_vs_reported(fit.table, band=fit.band, footer=footer)
        fig.savefig(tmp / "calibration.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        write_json(
            tmp / "metadata.json",
            record
            | {
                "scenario": scenario,
                "replications": replications,
                "objective": fit.objective,
                "evaluations": fit.evaluations,
                "output": str(output) if output else None,
            },
        )
    return final["path"]


def write_backtest(backtest: Backtest, out: Path, *, started: dt.datetime | None = None, command: str | None = None) -> Path:
    """`<out>/backtest/<id>/`: backtest.csv (every figure scored: held_out, fitted, inside_band),
    yearly.csv (simulated yearly series and the reported yearly figures), fitted_values.toml, the
    fitted scenario's resolved config (config.toml), backtest_fan.png and metadata.json."""
    from .calibration import calibrated_toml
    from .plots import backtest_fan, plt, run_footer

    started = started or now()
    bt = backtest
    scores = bt.scores
    values = calibrated_toml(bt.fit, seed=bt.seed, replications=bt.replications_fit, scenario=bt.scenario)
    values["calibration"]["fitted_to_figures_ending_by"] = bt.until
    record = provenance(
        "backtest", started=started, seeds=[bt.seed], configs={bt.scenario: config_hash(bt.config)}, band=bt.band, command=command
    )
    with publish_folder(Path(out), BACKTEST_FOLDER, new_run_id(started)) as (tmp, final):
        bt.scored.to_csv(tmp / "backtest.csv", index=False)
        bt.yearly.to_csv(tmp / "yearly.csv", index=False)
        header = BACKTEST_HEADER.format(until=bt.until)
        (tmp / "fitted_values.toml").write_text(header + tomli_w.dumps(values), encoding="utf-8")
        (tmp / "config.toml").write_text(config_toml(bt.config), encoding="utf-8")
        footer = run_footer(bt.scenario, bt.replications_score, bt.seed, bt.config.parcels.area_scale, bt.band)
        fig = backtest_fan(
            bt.yearly, until=bt.until, scenario=bt.scenario, replications=bt.replications_score, band=bt.band, footer=footer
        )
        fig.savefig(tmp / "backtest_fan.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        write_json(
            tmp / "metadata.json",
            record
            | {
                "scenario": bt.scenario,
                "until": bt.until.isoformat(),
                "replications": bt.replications_score,
                "fit_replications": bt.replications_fit,
                "objective": bt.fit.objective,
                "evaluations": bt.fit.evaluations,
                "start_objectives": bt.start_objectives,
                "start_scores": bt.start_scores,
                "fitted": bt.scored.loc[bt.scored["fitted"], "target"].tolist(),
                "held_out": bt.scored.loc[bt.scored["held_out"], "target"].tolist(),
                "scores": scores,
            },
        )
    return final["path"]


def write_sensitivity(
    sens: Sensitivity, out: Path, *, started: dt.datetime | None = None, command: str | None = None, executor: str | None = None
) -> Path:
    """`<out>/<scenario>-sensitivity/<id>/`: tornado.csv, sobol.csv, inputs.csv (every ranged input:
    paths, range, distribution, source), design.parquet (every point and replication run: its
    input values and outputs), plots/tornado.png and plots/sobol.png, the scenario's resolved
    config (config.toml) and metadata.json."""
    from .bands import BAND
    from .plots import plt, sobol_bars, tornado
    from .sensitivity import CONF_LEVEL, OUTPUTS

    started = started or now()
    labels = {key: f"{label} ({unit})" for key, (_, label, unit) in OUTPUTS.items()}
    record = provenance(
        "sensitivity",
        started=started,
        seeds=[sens.seed],
        configs={sens.scenario: config_hash(sens.config)},
        band=BAND,
        command=command,
    )
    with publish_folder(Path(out), sens.scenario + SENSITIVITY_SUFFIX, new_run_id(started)) as (tmp, final):
        sens.tornado.to_csv(tmp / "tornado.csv", index=False)
        sens.sobol.to_csv(tmp / "sobol.csv", index=False)
        pd.DataFrame([item.as_row() for item in sens.inputs]).to_csv(tmp / "inputs.csv", index=False)
        sens.design.to_parquet(tmp / "design.parquet", index=False)
        (tmp / "config.toml").write_text(config_toml(sens.config), encoding="utf-8")
        (tmp / "plots").mkdir()
        for name, fig in (
            ("tornado.png", tornado(sens.tornado, labels)),
            ("sobol.png", sobol_bars(sens.sobol, labels, CONF_LEVEL)),
        ):
            fig.savefig(tmp / "plots" / name, dpi=110, bbox_inches="tight")
            plt.close(fig)
        write_json(
            tmp / "metadata.json",
            record
            | {
                "scenario": sens.scenario,
                "outputs": {key: labels[key] for key in sens.outputs},
                "replications_per_point": sens.replications,
                "budget": sens.budget,
                "simulations": sens.runs,
                "sobol_base_samples": sens.sobol_n,
                "sobol_inputs": list(dict.fromkeys(sens.sobol["input"])),
                "confidence_level": CONF_LEVEL,
                "ranking": sens.ranking,
                "base": sens.base,
                "executor": executor,
            },
        )
    return final["path"]


def _replace_file(path: Path, text: str) -> None:
    try:
        write_bytes_atomically(path, text.encode("utf-8"))
    except OSError as exc:
        raise UserError(f"cannot write ({exc.strerror})", source=str(path)) from None


PLAN_HEADER = (
    "# The least-cost additions `demining plan` found for: {goal}.\n"
    "# Run it with: demining run <this folder>/plan.toml --replications {n} --seed {seed} --uncertainty {uncertainty}\n"
)


def write_plan(
    result: PlanResult,
    cfg: ScenarioConfig,
    scenario_path: Path,
    cost_of,
    out: Path,
    *,
    seed: int,
    uncertainty: str = "none",
    started: dt.datetime | None = None,
    command: str | None = None,
) -> Path:
    """`<out>/plans/<id>/`: plan.csv (the additions and their cost), plan.toml (a scenario extending
    the searched one that `demining run` reproduces the plan with), frontier.csv and frontier.png
    (cost against outcome, step by step), candidates.csv (every candidate measured and why it was
    kept or not), summary.json and metadata.json. Returns the folder."""
    from . import plots as pl
    from .plan import frontier, plan_scenario, plan_summary, plan_table

    started = started or now()
    # The default band is recorded like every folder's; a plan itself reports the quantile its goal
    # names, the median and the 90 % point.
    record = provenance("plan", started=started, seeds=[seed], configs={cfg.name: config_hash(cfg)}, band=BAND, command=command)
    steps = frontier(result)
    goal = result.goal
    with publish_folder(Path(out), PLANS_FOLDER, new_run_id(started)) as (tmp, final):
        plan_table(result, cost_of).to_csv(tmp / "plan.csv", index=False)
        steps.to_csv(tmp / "frontier.csv", index=False)
        result.candidates.to_csv(tmp / "candidates.csv", index=False)
        # The published folder sits beside the hidden one, so a path relative to it holds there too.
        extends = os.path.relpath(Path(scenario_path).resolve(), tmp.resolve())
        scenario = plan_scenario(cfg, result, extends=Path(extends).as_posix(), name=f"plan_{cfg.name}"[:64])
        header = PLAN_HEADER.format(goal=goal.describe(), n=result.check_replications, seed=seed, uncertainty=uncertainty)
        (tmp / "plan.toml").write_text(header + tomli_w.dumps(scenario), encoding="utf-8")
        fig = pl.plan_frontier(
            steps, goal_text=goal.describe(), deadline=goal.finish_by, confidence=goal.confidence, start_date=result.start_date
        )
        fig.savefig(tmp / "frontier.png", dpi=110, bbox_inches="tight")
        pl.plt.close(fig)
        summary = plan_summary(result)
        write_json(tmp / "summary.json", summary)
        write_json(
            tmp / "metadata.json",
            record
            | {
                "scenario": cfg.name,
                "scenario_file": str(scenario_path),
                "replications": result.replications,
                "check_replications": result.check_replications,
                "uncertainty": uncertainty,
            },
        )
    return final["path"]
