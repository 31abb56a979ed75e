"""`demining plan`: the greedy search against brute force on a tiny space, the deadline's horizon
cut, budgets, the scenario it writes, and the one-line errors of goals it cannot search."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pytest

import sim
from sim.ensemble import run
from sim.plan import Addition, Evaluation, Goal, SearchSpace, goal_met, measure, plan_config, plan_scenario, search

from .conftest import SMALL, demining

DELIVERED = dt.date(2022, 1, 1)
DEADLINE = Goal(finish_by=dt.date(2027, 12, 31))  # the small world alone finishes in 2028-2029
# Prices for the search tests (arbitrary units a year; a purchase worth one year of running):
# the search is tested apart from the scenario's [costs], which sim.costs and its tests own.
PRICE = {"manual_team": 1.0, "dog_team": 0.8, "survey_team": 0.7, "machine": 3.0}


def cost(additions, end: dt.date) -> float:
    return sum(a.count * PRICE[a.asset_type] * (1 + (end - a.date).days / 365.25) for a in additions)


def tiny_space(limit: int = 2) -> SearchSpace:
    kinds = ("manual_team", "dog_team", "survey_team")
    return SearchSpace(("anama",), kinds, (DELIVERED,), {k: 1 for k in kinds}, {k: limit for k in kinds})


def evaluate(cfg, goal: Goal, additions: tuple[Addition, ...], replications: int) -> Evaluation:
    result = run(plan_config(cfg, additions, goal.end), replications, 0, targets=[])
    return Evaluation(additions, cost(additions, goal.end), *measure(cfg, goal, result))


def test_greedy_finds_the_cheapest_plan_brute_force_finds(small_cfg):
    """Every plan of the tiny space (0-2 each of three asset types: 27 plans) measured on the same
    replications: none meeting the deadline is cheaper than the greedy plan."""
    space = tiny_space()
    found = search(small_cfg, DEADLINE, space, cost, replications=6, check_replications=6)
    assert found.met and found.plan
    assert found.simulations < 27 * 6  # the point of searching
    cheapest = None
    for counts in itertools.product(range(3), repeat=3):
        additions = tuple(Addition("anama", k, c, DELIVERED) for k, c in zip(space.asset_types, counts) if c)
        e = evaluate(small_cfg, DEADLINE, additions, 6)
        if goal_met(DEADLINE, e, small_cfg.start_date) and (cheapest is None or e.cost_usd < cheapest):
            cheapest = e.cost_usd
    assert cheapest is not None
    assert found.final.cost_usd == pytest.approx(cheapest)
    # The greedy path starts from no additions and each step costs more and leaves less undone.
    costs = [e.cost_usd for e in found.steps]
    undone = [e.unreleased_ha.mean() for e in found.steps]
    assert costs[0] == 0 and costs == sorted(costs)
    assert undone == sorted(undone, reverse=True)
    kept = found.candidates[found.candidates["reason"].str.startswith("kept")]
    assert len(kept) == len(found.steps) - 1


def test_no_additions_when_the_scenario_already_meets_the_goal(small_cfg):
    late = Goal(finish_by=dt.date(2031, 12, 31))
    found = search(small_cfg, late, tiny_space(), cost, replications=4, check_replications=4)
    assert found.met and found.plan == () and found.final.cost_usd == 0
    assert found.simulations == 4  # one evaluation: the check is the search itself, the reference the plan


def test_unreachable_goal_says_so_and_keeps_the_best_plan(small_cfg):
    """A deadline a year after the start cannot be met with two teams more of each kind."""
    soon = Goal(finish_by=dt.date(2021, 12, 31))
    space = SearchSpace(("anama",), ("survey_team",), (dt.date(2021, 1, 1),), {"survey_team": 1}, {"survey_team": 2})
    found = search(small_cfg, soon, space, cost, replications=3, check_replications=3)
    assert not found.met
    assert found.plan  # the survey teams still gain land: the best plan is kept and reported
    assert any("not reached" in note for note in found.notes)


def test_cutting_the_horizon_at_the_deadline_changes_no_completion_before_it(small_cfg):
    """The search simulates only to the deadline: completion dates on or before it are those of a
    full-horizon run of the same replications (common random numbers)."""
    additions = (Addition("anama", "dog_team", 1, DELIVERED),)
    cut = run(plan_config(small_cfg, additions, DEADLINE.end), 4, 0, targets=[])
    full_cfg = sim.scenario.add_deliveries(small_cfg, [f"anama:dog_team:1@{DELIVERED}"])
    full = run(full_cfg, 4, 0, targets=[])
    assert cut.config.end_date < full.config.end_date
    deadline = np.datetime64(DEADLINE.finish_by)
    a = cut.completion.set_index(["replication", "district"])["completion_date"]
    b = full.completion.set_index(["replication", "district"])["completion_date"]
    early = b[b <= deadline]
    assert len(early) > 0
    assert (a.loc[early.index] == early).all()


def test_budget_plan_stays_within_budget_and_gains(small_cfg):
    goal = Goal(budget_usd=12.0, objective="released_ha", by_year=2024)
    found = search(small_cfg, goal, tiny_space(), cost, replications=4, check_replications=4)
    assert 0 < found.final.cost_usd <= 12.0
    assert found.final.objective.mean() > found.reference.objective.mean()
    over = found.candidates[found.candidates["reason"] == "over the budget left"]
    assert (over["extra_cost_usd"] > 0).all()


def test_plan_scenario_reproduces_the_plan(small_cfg, tmp_path):
    """plan.toml extends the searched scenario; run at the check's replications and seed it meets
    the goal the search said it meets, over the full horizon."""
    import tomli_w

    found = search(small_cfg, DEADLINE, tiny_space(), cost, replications=6, check_replications=6)
    data = plan_scenario(small_cfg, found, extends=str(SMALL), name="plan_small")
    path = tmp_path / "plan.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    cfg = sim.load_scenario(path, environ={})
    added = [d for d in cfg.agencies["anama"].extra_deliveries if d.note == "plan"]
    assert sorted((d.asset_type, d.count) for d in added) == sorted((a.asset_type, a.count) for a in found.plan)
    result = run(cfg, 6, 0, targets=[])
    days, _, _ = measure(cfg, DEADLINE, result)
    assert np.quantile(days, DEADLINE.confidence, method="inverted_cdf") <= (DEADLINE.finish_by - cfg.start_date).days


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a goal"),
        (["--finish-by", "2030", "--budget", "1e6", "--maximize", "released_ha"], "give a goal"),
        (["--finish-by", "2019"], "not after the campaign start"),
        (["--finish-by", "2030-02-30"], "--finish-by"),
        (["--finish-by", "2030", "--district", "atlantis"], "--district 'atlantis' is not a district"),
        (["--finish-by", "2030", "--confidence", "1.5"], "--confidence must be between 0 and 1"),
        (["--budget", "-5", "--maximize", "released_ha"], "--budget must be a positive amount"),
        (["--budget", "1e6", "--maximize", "happiness"], "--maximize 'happiness'"),
        (["--budget", "1e6"], "needs one objective"),
        (["--finish-by", "2030", "--agencies", "anama,unicef"], "--agencies: unknown 'unicef'"),
        (["--finish-by", "2030", "--step", "tank=3"], "--step: 'tank=3'"),
        (["--finish-by", "2030", "--limit", "machine=0"], "at least 1"),
        (["--finish-by", "2030", "--dates", "2031-01-01"], "--dates: 2031-01-01"),
        (["--finish-by", "2030", "-n", "20", "--check-replications", "10"], "--check-replications (10)"),
        (["--finish-by", "2030", "--cost-level", "cheap"], "--cost-level"),
        (["--finish-by", "2030", "--uncertainty", "maybe"], "--uncertainty"),
        (["--budget", "1e6", "--maximize", "released_ha", "--confidence", "0.9"], "give no --confidence"),
        (["--finish-by", "2030", "--by-year", "2028"], "give no --by-year"),
    ],
)
def test_goals_it_cannot_search_are_one_line_errors(args, message, tmp_path):
    outcome = demining("plan", SMALL, "--out", tmp_path, *args)
    assert outcome.returncode == 2, outcome
    assert message in outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_plan_command_end_to_end_and_its_scenario_meets_the_goal(tmp_path):
    """`demining plan` writes its folder; `demining run` of its plan.toml, at the check's
    replications and seed, meets the deadline at the stated confidence."""
    import json

    import pandas as pd

    outcome = demining(
        "plan", SMALL, "--finish-by", "2027-12-31", "--asset-types", "dog_team,survey_team", "--dates", "2022-01-01",
        "--step", "dog_team=1,survey_team=1", "--limit", "dog_team=2,survey_team=2",
        "-n", "4", "--check-replications", "6", "--workers", "1", "--out", tmp_path,
    )  # fmt: skip
    assert outcome.returncode == 0, outcome
    assert "meets the goal" in outcome.stdout
    (folder,) = (tmp_path / "plans").glob("2*")
    for name in ("plan.csv", "plan.toml", "frontier.csv", "frontier.png", "candidates.csv", "summary.json", "metadata.json"):
        assert (folder / name).is_file(), name
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["met"] and summary["cost_usd"] > 0
    plan = pd.read_csv(folder / "plan.csv")
    assert plan["cost_usd"].sum() == pytest.approx(summary["cost_usd"])
    ran = demining(
        "run", folder / "plan.toml", "-n", "6", "--seed", "0", "--uncertainty", "none", "-w", "1", "--out", tmp_path / "runs"
    )
    assert ran.returncode == 0, ran
    completion = pd.read_parquet(next((tmp_path / "runs").glob("*/2*")) / "completion.parquet")
    done = completion[completion["district"] == "all"]["completion_date"]
    assert done.notna().all()
    days = (done - pd.Timestamp("2020-11-10")).dt.days.to_numpy()
    assert np.quantile(days, 0.5, method="inverted_cdf") <= (pd.Timestamp("2027-12-31") - pd.Timestamp("2020-11-10")).days


def test_gains_below_rounding_are_none_and_handovers_count_in_days():
    """Once all land is released by the deadline, hectares gain nothing (float rounding of 1e-10 ha
    is not land bought), and the days the last handovers run past the deadline measure progress."""
    from sim.plan import gain

    start = dt.date(2020, 11, 10)
    deadline_day = (DEADLINE.finish_by - start).days
    zero = np.array([1e-10, 0.0, 2e-10])
    before = Evaluation((), 0.0, np.array([deadline_day + 10.0, deadline_day + 3.0, np.inf]), zero, zero)
    after = Evaluation((), 1.0, np.array([deadline_day - 5.0, deadline_day + 1.0, deadline_day + 20.0]), zero * 0.5, zero)
    assert gain(DEADLINE, before, after, start, "ha") == 0.0
    # (10 - 0) + (3 - 1) + (32 - 20): a replication not done within the simulated month counts 32 days.
    assert gain(DEADLINE, before, after, start, "days") == pytest.approx((10 + 2 + 12) / 3)


def test_a_district_deadline_counts_only_that_district(small_cfg):
    """Tartar alone by a date the whole small world misses: the district's completion decides."""
    goal = Goal(finish_by=dt.date(2026, 6, 30), district="tartar")
    found = search(small_cfg, goal, tiny_space(), cost, replications=3, check_replications=3)
    whole = search(small_cfg, DEADLINE, tiny_space(), cost, replications=3, check_replications=3)
    assert found.met
    assert found.final.unreleased_ha.mean() <= whole.reference.unreleased_ha.mean()
    assert found.reference.unreleased_ha.mean() < whole.reference.unreleased_ha.mean()


def test_deliveries_and_changes_after_the_cut_are_left_out(small_cfg):
    """A run cut at the deadline cannot hold a delivery dated after it (the config refuses it); it
    cannot change the goal either, so the shortened run leaves it out, and the search runs."""
    cfg = sim.scenario.add_deliveries(small_cfg, ["anama:machine:2@2029-01-01"])
    cut = plan_config(cfg, (Addition("anama", "dog_team", 1, DELIVERED),), DEADLINE.end)
    assert all(d.date <= cut.end_date for a in cut.agencies.values() for d in a.deliveries + a.extra_deliveries)
    assert any(d.note == "plan" for d in cut.agencies["anama"].extra_deliveries)
    found = search(cfg, DEADLINE, tiny_space(1), cost, replications=2, check_replications=2, max_steps=1)
    assert found.simulations >= 2
