"""The inverse question (`demining plan`): the least-cost extra deliveries that meet a goal.

A goal is either a deadline (every hazardous hectare of the campaign, or of one district,
released by a date, at a confidence: the median replication for 0.5, nine in ten for 0.9) or a
budget to spend for the most released land or the fewest civilian casualties by a year.

The search space is a set of candidate additions: a batch of assets of one type, delivered to one
agency on one date, up to a limit per agency, type and date. The search is greedy by marginal
cost-effectiveness: each step measures every candidate added to the plan so far (the same
replications for all: common random numbers, so differences are not replication noise) and keeps
the one that gains most per dollar. Why greedy, not a Bayesian or evolutionary optimiser: the
decisions are counts in batches, the objective is noisy and one evaluation costs seconds of
simulation, and each greedy step is itself a point of the cost-outcome frontier a planner wants
to see; a Gaussian-process optimiser would treat counts as continuous and need more evaluations
than a whole greedy search makes. Greedy can miss a plan whose parts only help together (machines
that need follow-up teams); the candidates table shows each step's runners-up, so such a gap is
visible, and the tests compare greedy with brute force on a small space.

The deadline's measure of progress is the land still unreleased at the deadline (mean over
replications, in the goal's districts): smooth where the completion date is not (it is censored
at the deadline in every replication that misses it). Land is released before its last parcels
are handed over (quality control), so once no replication has land left unreleased at the
deadline, the days the handovers run past it (at most the simulated month) measure what is left.
Gains below GAIN_TOLERANCE are rounding, not progress. The goal is met when the confidence
quantile of the completion date is on or before the deadline. The plan found with few
replications is checked with more; if the check misses, the search goes on at the check's
replications.

Pure: a scenario and a way to price an addition in, tables out; no printing and no files
(`sim.outputs.write_plan` writes them).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .config import ScenarioConfig
from .ensemble import run
from .errors import UserError

# Assets added per candidate step, and at most per agency and date, by asset type (a planner
# buys machines by the few and trains teams by the ten). Overridden with --step and --limit.
DEFAULT_STEP = {"manual_team": 10, "dog_team": 10, "machine": 5, "survey_team": 5, "aerial_survey_team": 1}
DEFAULT_LIMIT = {"manual_team": 60, "dog_team": 40, "machine": 30, "survey_team": 20, "aerial_survey_team": 3}
DEFAULT_ASSET_TYPES = ("manual_team", "dog_team", "machine", "survey_team")
OBJECTIVES = {"released_ha": "maximize", "civilian_casualties": "minimize"}
# The last month of the deadline is simulated whole, so work finishing on the deadline counts.
DEADLINE_MARGIN_DAYS = 31


@dataclass(frozen=True)
class Addition:
    """`count` assets of `asset_type` delivered to `agency` on `date`."""

    agency: str
    asset_type: str
    count: int
    date: dt.date

    @property
    def key(self) -> tuple[str, str, dt.date]:
        return (self.agency, self.asset_type, self.date)

    def label(self) -> str:
        kind = self.asset_type.replace("_", " ")
        return f"{self.count} {kind if self.count == 1 else kind + 's'} to {self.agency} on {self.date}"


@dataclass(frozen=True)
class Goal:
    """A deadline (`finish_by`, optionally for one district, at `confidence`) or a budget with an
    objective by the end of `by_year`."""

    finish_by: dt.date | None = None
    district: str | None = None
    confidence: float = 0.5
    budget_usd: float | None = None
    objective: str | None = None  # a key of OBJECTIVES
    by_year: int | None = None

    @property
    def is_deadline(self) -> bool:
        return self.finish_by is not None

    @property
    def end(self) -> dt.date:
        """The last day that counts: the deadline, or the end of the objective's year."""
        return self.finish_by if self.is_deadline else dt.date(self.by_year, 12, 31)

    def describe(self) -> str:
        if self.is_deadline:
            where = self.district or "every district"
            return f"{where} released by {self.finish_by} in {self.confidence:.0%} of replications"
        verb = OBJECTIVES[self.objective]
        what = "released hectares" if self.objective == "released_ha" else "civilian casualties"
        return f"{verb} {what} by end {self.by_year} within USD {self.budget_usd:,.0f}"


@dataclass(frozen=True)
class SearchSpace:
    """Candidate additions: every agency x asset type x date, in batches of `step`, at most
    `limit` per agency, type and date."""

    agencies: tuple[str, ...]
    asset_types: tuple[str, ...]
    dates: tuple[dt.date, ...]
    step: dict[str, int]
    limit: dict[str, int]

    def candidates(self, plan: dict[tuple, int]) -> list[Addition]:
        out = []
        for agency in self.agencies:
            for asset_type in self.asset_types:
                for date in self.dates:
                    have = plan.get((agency, asset_type, date), 0)
                    step = min(self.step[asset_type], self.limit[asset_type] - have)
                    if step > 0:
                        out.append(Addition(agency, asset_type, step, date))
        return out


@dataclass
class Evaluation:
    """A plan measured over replications (arrays: one value per replication)."""

    plan: tuple[Addition, ...]
    cost_usd: float
    completion_day: np.ndarray  # days from the campaign start until the goal's land is all released (inf: not by the end)
    unreleased_ha: np.ndarray  # the goal's land still unreleased at the goal's end
    objective: np.ndarray  # released ha or civilian casualties by the goal's end

    def completion_quantile(self, q: float) -> float:
        return float(np.quantile(self.completion_day, q, method="inverted_cdf"))


@dataclass
class PlanResult:
    goal: Goal
    met: bool
    plan: tuple[Addition, ...]
    final: Evaluation  # the plan measured at the check's replications
    reference: Evaluation  # no additions, at the check's replications
    steps: list[Evaluation]  # the greedy path, from no additions: the cost-outcome frontier
    candidates: pd.DataFrame  # every candidate measured, and why it was kept or not
    simulations: int
    replications: int
    check_replications: int
    start_date: dt.date
    notes: list[str] = field(default_factory=list)


def plan_config(cfg: ScenarioConfig, additions: Iterable[Addition], end: dt.date) -> ScenarioConfig:
    """`cfg` with the additions as extra deliveries (noted "plan"), simulated to `end` plus a
    month: what happens after the goal's end cannot change whether it is met."""
    data = cfg.model_dump()
    for a in additions:
        data["agencies"][a.agency]["extra_deliveries"].append(
            {"asset_type": a.asset_type, "count": a.count, "date": a.date, "note": "plan"}
        )
    return ScenarioConfig.model_validate(data).shortened(((end - cfg.start_date).days + DEADLINE_MARGIN_DAYS) / 365.25)


def merged(plan: dict[tuple, int]) -> tuple[Addition, ...]:
    return tuple(Addition(agency, asset_type, count, date) for (agency, asset_type, date), count in sorted(plan.items()) if count)


def measure(cfg: ScenarioConfig, goal: Goal, result) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per replication: completion day of the goal's land, its unreleased hectares at the goal's
    end, and the budget objective by then."""
    start = np.datetime64(cfg.start_date, "D")
    scope = goal.district or "all"
    done = result.completion[result.completion["district"] == scope].sort_values("replication")["completion_date"]
    days = (done.to_numpy(dtype="datetime64[D]") - start).astype(float)
    days[np.isnat(done.to_numpy(dtype="datetime64[D]"))] = math.inf
    districts = result.districts
    # A row holds its month's end stock, labelled by the month's first day: the last month that
    # ends by the goal's end.
    month_end = districts["month"] + pd.offsets.MonthEnd(0)
    at_end = districts[month_end <= pd.Timestamp(goal.end)]
    last = at_end[at_end["month"] == at_end["month"].max()]
    if goal.district:
        last = last[last["district"] == goal.district]
    unreleased = (last["suspected_ha"] + last["confirmed_ha"]).groupby(last["replication"], observed=True).sum()
    per_year = result.per_year[result.per_year["year"] <= goal.end.year]
    by_rep = per_year.groupby("replication")
    if goal.objective == "civilian_casualties":
        objective = (by_rep["civilian_killed"].sum() + by_rep["civilian_injured"].sum()).to_numpy(dtype=float)
    else:
        released = per_year["cancelled_ha"] + per_year["reduced_ha"] + per_year["cleared_ha"]
        objective = released.groupby(per_year["replication"]).sum().to_numpy(dtype=float)
    # Suspected and confirmed land are running differences: a district done leaves a rounding
    # residue of either sign (-0 ha printed), so it is clipped at zero.
    return days, np.clip(unreleased.sort_index().to_numpy(dtype=float), 0.0, None), objective


# Gains smaller than this are rounding in the sums of hectares, not land (or casualties) bought.
GAIN_TOLERANCE = 1e-6


def days_late(goal: Goal, evaluation: Evaluation, start: dt.date) -> np.ndarray:
    """Per replication, days the goal's land is all handed over after the deadline (0 when on
    time), capped at the simulated month past it (a replication not done by then counts a month
    and a day)."""
    deadline = (goal.finish_by - start).days
    return np.clip(evaluation.completion_day - deadline, 0.0, DEADLINE_MARGIN_DAYS + 1.0)


def gain(goal: Goal, before: Evaluation, after: Evaluation, start: dt.date, unit: str) -> float:
    """What an addition buys (means over the shared replications), in `unit`: "ha" less
    unreleased at the deadline, "days" less late (the land is released but its last parcels not
    yet handed over), "ha released" more, or "casualties" fewer."""
    if unit == "ha":
        value = float(np.mean(before.unreleased_ha - after.unreleased_ha))
    elif unit == "days":
        value = float(np.mean(days_late(goal, before, start) - days_late(goal, after, start)))
    else:
        sign = 1.0 if OBJECTIVES[goal.objective] == "maximize" else -1.0
        value = sign * float(np.mean(after.objective - before.objective))
    return value if abs(value) > GAIN_TOLERANCE else 0.0


def goal_met(goal: Goal, evaluation: Evaluation, start: dt.date) -> bool:
    if not goal.is_deadline:
        return True
    return evaluation.completion_quantile(goal.confidence) <= (goal.finish_by - start).days


def search(
    cfg: ScenarioConfig,
    goal: Goal,
    space: SearchSpace,
    cost_of: Callable[[tuple[Addition, ...], dt.date], float],
    *,
    replications: int = 10,
    check_replications: int = 50,
    seed: int = 0,
    max_steps: int = 40,
    workers: int = 1,
    pool=None,
    uncertainty=None,
    on_step: Callable[[int, str], None] | None = None,
) -> PlanResult:
    """Greedy search for the least-cost plan meeting `goal` (see the module docstring).
    `cost_of(plan, end)` prices a plan's additions from their delivery to `end`. `uncertainty`
    (sim.uncertainty.make_uncertainty) draws uncertain inputs per replication, the same draws for
    every candidate (paired); None: replication noise only."""
    counter = {"simulations": 0}

    def evaluate(plan: dict[tuple, int], n: int) -> Evaluation:
        additions = merged(plan)
        run_cfg = plan_config(cfg, additions, goal.end)
        result = run(run_cfg, n, seed, workers=workers, pool=pool, targets=[], uncertainty=uncertainty)
        counter["simulations"] += n
        days, unreleased, objective = measure(cfg, goal, result)
        return Evaluation(additions, cost_of(additions, goal.end), days, unreleased, objective)

    def tell(step: int, text: str) -> None:
        if on_step:
            on_step(step, text)

    plan: dict[tuple, int] = {}
    n = replications
    current = evaluate(plan, n)
    steps = [current]
    rows = []
    notes = []
    step = 0
    while True:
        while step < max_steps and not (goal.is_deadline and goal_met(goal, current, cfg.start_date)):
            step += 1
            options = []
            for candidate in space.candidates(plan):
                trial = dict(plan)
                trial[candidate.key] = trial.get(candidate.key, 0) + candidate.count
                extra_cost = cost_of((candidate,), goal.end)
                if goal.budget_usd is not None and current.cost_usd + extra_cost > goal.budget_usd:
                    rows.append(_row(step, candidate, extra_cost, math.nan, "over the budget left", ""))
                    continue
                evaluation = evaluate(trial, n)
                options.append([candidate, trial, evaluation, 0.0, extra_cost])
                tell(step, f"measured {candidate.label()}")
            # A deadline's progress is land still unreleased at it; once every replication has
            # released it all, the last handovers decide, so days late measure what is left.
            units = ("ha", "days") if goal.is_deadline else (goal.objective,)
            for unit in units:
                for option in options:
                    option[3] = gain(goal, current, option[2], cfg.start_date, unit)
                if any(o[3] > 0 for o in options):
                    break
            useful = [o for o in options if o[3] > 0]
            if not useful:
                for candidate, _, _, g, c in options:
                    rows.append(_row(step, candidate, c, g, f"no gain at {n} replications", unit))
                notes.append(f"step {step}: no candidate gains anything; the search stops")
                break
            # Where some candidates already meet a deadline, the cheapest of them ends the search:
            # gain per dollar measures land or days, not the goal, and can prefer a step that misses it.
            meeting = [o for o in useful if goal.is_deadline and goal_met(goal, o[2], cfg.start_date)]
            if meeting:
                best, kept = min(meeting, key=lambda o: o[4]), "kept: the cheapest that meets the goal"
            else:
                best, kept = max(useful, key=lambda o: o[3] / max(o[4], 1e-9)), "kept: most gain per dollar"
            for candidate, _, _, g, c in options:
                if candidate is best[0]:
                    reason = kept
                elif g <= 0:
                    reason = f"no gain at {n} replications"
                elif meeting:
                    reason = f"{'costs more than' if any(o[0] is candidate for o in meeting) else 'misses the goal, unlike'} {best[0].label()}"
                else:
                    reason = f"less gain per dollar than {best[0].label()}"
                rows.append(_row(step, candidate, c, g, reason, unit))
            plan, current = best[1], best[2]
            steps.append(current)
            tell(step, f"kept {best[0].label()}")
        if not goal.is_deadline or n >= check_replications:
            break
        checked = evaluate(plan, check_replications)
        if goal_met(goal, checked, cfg.start_date) or step >= max_steps:
            current = checked
            break
        notes.append(
            f"the plan met the goal at {n} replications but not at {check_replications}; the search went on at {check_replications}"
        )
        n = check_replications
        current = checked
        steps[-1] = checked
    final = current if current.completion_day.size == check_replications else evaluate(plan, check_replications)
    if not plan:  # nothing added: the plan is the reference, measured once
        reference = final
    elif steps[0].completion_day.size == check_replications:
        reference = steps[0]
    else:
        reference = evaluate({}, check_replications)
    met = goal_met(goal, final, cfg.start_date)
    if goal.is_deadline and not met:
        notes.append(f"goal not reached within {max_steps} steps and the limits given: the best plan's outcome is shown")
    columns = ["step", "agency", "asset_type", "count", "date", "extra_cost_usd", "gain", "gain_unit", "reason"]
    table = pd.DataFrame(rows, columns=columns)
    return PlanResult(
        goal=goal,
        met=met,
        plan=merged(plan),
        final=final,
        reference=reference,
        steps=steps,
        candidates=table,
        simulations=counter["simulations"],
        replications=replications,
        check_replications=check_replications,
        start_date=cfg.start_date,
        notes=notes,
    )


def _row(step: int, a: Addition, cost: float, g: float, reason: str, unit: str) -> tuple:
    return (step, a.agency, a.asset_type, a.count, a.date, cost, g, unit, reason)


def check_goal(cfg: ScenarioConfig, goal: Goal) -> None:
    """Goals that cannot be searched, as one-line errors, before any simulation."""
    if goal.is_deadline:
        if goal.finish_by <= cfg.start_date:
            raise UserError(f"--finish-by {goal.finish_by} is not after the campaign start {cfg.start_date}")
        if goal.district is not None and goal.district not in cfg.districts:
            raise UserError(f"--district {goal.district!r} is not a district; known: {', '.join(cfg.districts)}")
        if not 0 < goal.confidence < 1:
            raise UserError(f"--confidence must be between 0 and 1 (0.5: median, 0.9: nine in ten), not {goal.confidence}")
    else:
        if goal.objective not in OBJECTIVES:
            raise UserError(f"objective {goal.objective!r} unknown; known: {', '.join(OBJECTIVES)}")
        if goal.budget_usd is None or not goal.budget_usd > 0:
            raise UserError(f"--budget must be a positive amount in USD, not {goal.budget_usd}")
        if not cfg.start_date.year <= goal.by_year <= cfg.end_date.year:
            raise UserError(f"--by-year {goal.by_year} is outside the campaign {cfg.start_date.year}-{cfg.end_date.year}")


def frontier(result: PlanResult) -> pd.DataFrame:
    """The greedy path: cost and outcome after each step (quantiles of the completion date)."""
    rows = []
    for i, e in enumerate(result.steps):
        rows.append(
            {
                "step": i,
                "cost_usd": e.cost_usd,
                "replications": int(e.completion_day.size),
                "completion_day_p50": e.completion_quantile(0.5),
                "completion_day_p90": e.completion_quantile(0.9),
                "unreleased_ha_mean": float(np.mean(e.unreleased_ha)),
                "objective_mean": float(np.mean(e.objective)),
                "plan": "; ".join(a.label() for a in e.plan) or "no additions",
            }
        )
    return pd.DataFrame(rows)


def plan_table(result: PlanResult, cost_of: Callable[[tuple[Addition, ...], dt.date], float]) -> pd.DataFrame:
    """The plan, one row per addition, with its cost to the goal's end."""
    return pd.DataFrame(
        [
            {
                "agency": a.agency,
                "asset_type": a.asset_type,
                "count": a.count,
                "date": a.date,
                "cost_usd": cost_of((a,), result.goal.end),
            }
            for a in result.plan
        ],
        columns=["agency", "asset_type", "count", "date", "cost_usd"],
    )


def plan_scenario(cfg: ScenarioConfig, result: PlanResult, *, extends: str, name: str) -> dict:
    """A scenario (TOML as a dict) that `demining run` reproduces the plan with: the base scenario
    extended by each agency's extra deliveries, those it had (from --add or the file) and the plan's."""
    data: dict = {
        "extends": extends,
        "name": name,
        "question": f"Least-cost additions found by `demining plan` for: {result.goal.describe()}",
        "agencies": {},
    }
    for agency in sorted({a.agency for a in result.plan}):
        had = [d.model_dump(exclude_defaults=True) for d in cfg.agencies[agency].extra_deliveries]
        new = [
            {"asset_type": a.asset_type, "count": a.count, "date": a.date, "note": "plan"}
            for a in result.plan
            if a.agency == agency
        ]
        data["agencies"][agency] = {"extra_deliveries": had + new}
    return data


def priced(cfg: ScenarioConfig, level: str = "central") -> Callable[[tuple[Addition, ...], dt.date], float]:
    """The scenario's costs (`[costs]`, sim.costs) as a price for a plan's additions: each one's
    purchase plus its running cost from delivery to `end`."""
    from .costs import addition_cost_usd

    def cost_of(additions: tuple[Addition, ...], end: dt.date) -> float:
        return float(
            sum(addition_cost_usd(cfg.costs, a.agency, a.asset_type, a.count, a.date, end, level=level) for a in additions)
        )

    return cost_of


def plan_summary(result: PlanResult) -> dict:
    """What the plan reaches against no additions, at the check's replications."""

    def date_of(day: float) -> str | None:
        return (result.start_date + dt.timedelta(days=math.ceil(day))).isoformat() if math.isfinite(day) else None

    goal = result.goal
    out = {
        "goal": goal.describe(),
        "met": result.met,
        "cost_usd": result.final.cost_usd,
        "simulations": result.simulations,
        "notes": result.notes,
        "additions": [a.label() for a in result.plan],
    }
    for name, e in (("reference", result.reference), ("plan", result.final)):
        out[name] = {
            "completion_p50": date_of(e.completion_quantile(0.5)),
            "completion_p90": date_of(e.completion_quantile(0.9)),
            f"completion_at_{goal.confidence:.0%}": date_of(e.completion_quantile(goal.confidence)),
            "unreleased_ha_at_goal_end_mean": float(e.unreleased_ha.mean()),
            "objective_mean": float(e.objective.mean()),
        }
    return out
