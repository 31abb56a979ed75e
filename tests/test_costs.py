"""Costs: unit costs as data, spend from the fleet over time, the contract `demining plan` relies on,
and the cost comparison between runs."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

import sim
from sim.compare import cost_ratio, cost_table, load_run
from sim.costs import (
    DAYS_PER_YEAR,
    Fleet,
    addition_cost_usd,
    method_spend,
    published_totals,
    spend_per_replication,
    spend_table,
    unit_costs,
)
from sim.ensemble import replication_seeds, replication_task
from sim.errors import UserError
from sim.scenario import load_scenario
from sim.seeds import load_cost_evidence, load_targets

from .conftest import SCENARIOS, SMALL, TEST_SCENARIOS, demining

D = dt.date


@pytest.fixture(scope="module")
def costs(small_cfg):
    return small_cfg.costs


# --------------------------------------------------------------------------- the contract for `plan`
def test_addition_cost_is_purchase_plus_running_pro_rata(costs):
    purchase, running = unit_costs(costs, "anama", "machine")
    assert (purchase, running) == (900_000, 230_000)
    days = (D(2027, 1, 1) - D(2025, 1, 1)).days
    assert addition_cost_usd(costs, "anama", "machine", 3, D(2025, 1, 1), D(2027, 1, 1)) == pytest.approx(
        3 * (purchase + running * days / DAYS_PER_YEAR)
    )
    # Delivered on the last day: purchase only.
    assert addition_cost_usd(costs, "anama", "machine", 2, D(2025, 1, 1), D(2025, 1, 1)) == 2 * purchase


def test_zero_additions_cost_nothing(costs):
    for asset_type in costs.asset_types:
        assert addition_cost_usd(costs, "mod", asset_type, 0, D(2025, 1, 1), D(2040, 1, 1)) == 0.0


@pytest.mark.parametrize("asset_type", ["manual_team", "survey_team", "dog_team", "machine", "aerial_survey_team"])
def test_more_assets_or_longer_service_never_cost_less(costs, asset_type):
    start = D(2024, 3, 1)
    for level in ("low", "central", "high"):
        by_count = [addition_cost_usd(costs, "anama", asset_type, n, start, D(2030, 1, 1), level) for n in range(6)]
        assert all(b >= a for a, b in zip(by_count, by_count[1:]))
        by_end = [addition_cost_usd(costs, "anama", asset_type, 2, start, D(y, 1, 1), level) for y in range(2025, 2040)]
        assert all(b >= a for a, b in zip(by_end, by_end[1:]))
    low, central, high = (
        addition_cost_usd(costs, "anama", asset_type, 4, start, D(2030, 1, 1), lv) for lv in ("low", "central", "high")
    )
    assert low <= central <= high


def test_agency_overrides_apply_only_to_their_agency(costs):
    anama = unit_costs(costs, "anama", "manual_team")
    commercial = unit_costs(costs, "commercial", "manual_team")
    assert commercial[0] == anama[0]  # the override sets running cost only
    assert commercial[1] == 350_000 > anama[1]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c: addition_cost_usd(c, "atlantis", "machine", 1, D(2025, 1, 1), D(2026, 1, 1)), "unknown agency 'atlantis'"),
        (lambda c: addition_cost_usd(c, "anama", "tank", 1, D(2025, 1, 1), D(2026, 1, 1)), "unknown asset type 'tank'"),
        (lambda c: addition_cost_usd(c, "anama", "machine", -1, D(2025, 1, 1), D(2026, 1, 1)), "count must be"),
        (lambda c: addition_cost_usd(c, "anama", "machine", 1, D(2026, 1, 1), D(2025, 1, 1)), "is before start"),
        (lambda c: addition_cost_usd(c, "anama", "machine", 1, D(2025, 1, 1), D(2026, 1, 1), "median"), "cost level"),
    ],
)
def test_bad_additions_are_clear_errors(costs, call, message):
    with pytest.raises(UserError, match=message):
        call(costs)


def test_a_run_gives_spend_per_replication_as_the_plan_search_reads_it(small_cfg, small_run):
    """`RunResult.per_replication` carries each replication's spend; `spend_per_replication` gives
    the same columns from replications' scalars (what a search that keeps scalars holds)."""
    per = small_run.per_replication
    for column in ("spend_usd_total", "spend_usd_by_2025", "spend_usd_by_2030", "spend_usd_total_low", "spend_usd_total_high"):
        assert column in per and (per[column] > 0).all()
    seeds = replication_seeds(11, 4)
    scalars = {
        i: replication_task(small_cfg.model_dump_json(), tuple(load_targets()), None, i, seeds[i])["scalars"] for i in (0, 2)
    }
    mine = spend_per_replication(small_cfg, scalars).set_index("replication")
    theirs = per.set_index("replication").loc[[0, 2], mine.columns]
    pd.testing.assert_frame_equal(mine, theirs, check_dtype=False)


# --------------------------------------------------------------------------- spend in a run
def test_spend_per_year_sums_to_the_total(small_run):
    spend = small_run.spend_per_year
    assert list(spend.columns) == [
        "replication", "year", "agency", "asset_type", "purchase_usd", "running_usd", "spend_usd", "spend_usd_low", "spend_usd_high",
    ]  # fmt: skip
    assert (spend[["purchase_usd", "running_usd", "spend_usd"]] >= 0).all().all()
    np.testing.assert_allclose(spend["purchase_usd"] + spend["running_usd"], spend["spend_usd"], rtol=1e-12)
    assert (spend["spend_usd_low"] <= spend["spend_usd"]).all() and (spend["spend_usd"] <= spend["spend_usd_high"]).all()
    per = small_run.per_replication.set_index("replication")
    by_rep = spend.groupby("replication")
    np.testing.assert_allclose(by_rep["spend_usd"].sum(), per["spend_usd_total"], rtol=1e-12)
    np.testing.assert_allclose(by_rep["spend_usd_high"].sum(), per["spend_usd_total_high"], rtol=1e-12)
    up_to_2025 = spend[spend["year"] <= 2025].groupby("replication")["spend_usd"].sum()
    np.testing.assert_allclose(up_to_2025, per["spend_usd_by_2025"], rtol=1e-12)
    costs = small_run.summary["costs"]
    assert costs["spend_usd"]["to_completion"]["mean"] == pytest.approx(per["spend_usd_total"].mean())
    assert sum(costs["spend_per_year_usd_mean"].values()) == pytest.approx(per["spend_usd_total"].mean())


def test_nothing_is_spent_after_every_district_is_released(small_run):
    """Agencies stand down when their districts are released: no spend in the years after the
    last handover, though the horizon runs on."""
    completion = small_run.completion.query("district == 'all'").set_index("replication")["completion_date"]
    spend = small_run.spend_per_year
    assert completion.notna().all()
    for rep, done in completion.items():
        years = spend.loc[spend["replication"] == rep, "year"]
        assert years.max() <= done.year
    assert small_run.summary["horizon_end"] > f"{completion.max().year + 1}"


def test_the_fleet_in_hand_at_the_start_costs_no_purchase(small_cfg):
    """The assets an agency has when it starts were bought before; charge_initial_fleet counts
    their purchase too, on their delivery date."""
    done = {"completion_day": {d: 2000.0 for d in small_cfg.districts} | {"all": 2000.0}}
    base = spend_table(Fleet.of(small_cfg), {0: done})
    charged_cfg = load_scenario(SMALL, ["costs.charge_initial_fleet=true"], environ={})
    charged = spend_table(Fleet.of(charged_cfg), {0: done})
    initial = sum(
        d.count * unit_costs(small_cfg.costs, key, d.asset_type)[0]
        for key, agency in small_cfg.agencies.items()
        for _, _, d in agency.all_deliveries()
        if d.date <= max(agency.start, small_cfg.start_date)
    )
    assert initial > 0
    assert charged["purchase_usd"].sum() - base["purchase_usd"].sum() == pytest.approx(initial)
    assert base.loc[base["year"] == 2020, "purchase_usd"].sum() == 0.0


def test_method_shares_add_up_to_the_spend(small_cfg, small_run):
    spend = small_run.spend_per_year
    rep = int(spend["replication"].iloc[0])
    seeds = replication_seeds(11, 4)
    scalars = replication_task(small_cfg.model_dump_json(), tuple(load_targets()), None, rep, seeds[rep])["scalars"]
    shares = method_spend(spend[spend["replication"] == rep], scalars["use_by_year"])
    assert set(shares) == {"survey", "technical_survey", "clearance", "idle"}
    assert sum(shares.values()) == pytest.approx(spend.loc[spend["replication"] == rep, "spend_usd"].sum())
    assert all(v >= 0 for v in shares.values())
    methods = small_run.summary["costs"]["by_method"]
    assert methods["clearance"]["usd_per_ha"] > methods["survey"]["usd_per_ha"] > 0


def test_published_totals_are_read_from_the_seeds_and_converted_at_the_cited_rate():
    rows = load_cost_evidence()
    figures = {f["id"]: f for f in published_totals(rows)}
    assert set(figures) == {"published_spend_2021", "published_spend_2022", "published_spend_2020_2024"}
    assert figures["published_spend_2021"]["published_usd"] == pytest.approx(105.8e6 / 1.70)
    assert figures["published_spend_2022"]["published_usd"] == pytest.approx(99.9e6 / 1.70)
    assert figures["published_spend_2020_2024"]["published_usd"] == 349.1e6
    assert all(row.source.strip() for row in rows)


def test_the_check_against_published_totals_counts_only_agencies_azerbaijan_pays(small_run):
    check = small_run.published_check
    assert list(check["id"]) == ["published_spend_2021", "published_spend_2022", "published_spend_2020_2024"]
    assert (check["modelled_usd_low"] <= check["modelled_usd"]).all() and (
        check["modelled_usd"] <= check["modelled_usd_high"]
    ).all()
    # The Russian centre works in the small world and is paid by Russia: left out.
    spend = small_run.spend_per_year
    paid = spend[(spend["year"] == 2021) & (spend["agency"] != "imac")]["spend_usd"].sum() / spend["replication"].nunique()
    assert check.iloc[0]["modelled_usd"] == pytest.approx(paid)
    assert spend[(spend["year"] == 2021) & (spend["agency"] == "imac")]["spend_usd"].sum() > 0


def test_baseline_costs_match_their_evidence():
    """Each unit cost names its evidence, and the figures it cites exist in seeds/costs.csv."""
    base = load_scenario(SCENARIOS / "baseline.toml", environ={})
    ids = {row.id for row in load_cost_evidence()}
    assert set(base.costs.asset_types) == set(base.asset_types)
    cited = " ".join(c.source for c in base.costs.asset_types.values())
    assert {"anama_budget_2012", "mdd_price", "gcs200_mes_2022", "bozena5_price_2008", "sapper_training_equipment"} <= ids
    for key in ("anama_budget_2012", "mdd_price", "gcs200_mes_2022", "bozena_crew"):
        assert key in cited
    assert not base.costs.agencies["tsk"].in_published_totals and not base.costs.agencies["imac"].in_published_totals


def test_a_scenario_without_costs_runs_and_reports_no_spend(small_cfg):
    cfg = sim.ScenarioConfig.model_validate(small_cfg.model_dump() | {"costs": None, "horizon_years": 3})
    result = sim.run(cfg, replications=1, seed=1)
    assert "costs" not in result.summary
    assert result.spend_per_year.empty and result.published_check.empty
    assert "spend_usd_total" not in result.per_replication
    assert "costs" not in json.loads(cfg.model_dump_json())  # hashed and written as before costs existed


# --------------------------------------------------------------------------- config errors
def _extends_small(tmp_path, body: str):
    path = tmp_path / "s.toml"
    path.write_text(f'extends = "{SMALL}"\n{body}', encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "body, overrides, expected",
    [
        (
            "[costs.asset_types.machine]\npurchase_usd = { low = -1, central = 5, high = 6 }\n",
            [],
            "costs.asset_types.machine.purchase_usd.low: Input should be greater than or equal to 0",
        ),
        (
            "[costs.asset_types.machine]\npurchace_usd = 5\n",
            [],
            "costs.asset_types.machine.purchace_usd: unknown key; did you mean 'purchase_usd'?",
        ),
        (
            "[costs.asset_types.machine]\nrunning_usd_per_year = { low = 5, central = 4, high = 6 }\n",
            [],
            "costs.asset_types.machine.running_usd_per_year: must be low <= central <= high",
        ),
        ("", ["costs.asset_types.machine.source=' '"], "costs.asset_types.machine.source: name the source"),
        (
            "",
            ["costs.asset_types.machne.purchase_usd.central=5"],
            "costs.asset_types.machne.purchase_usd.central: unknown asset type 'machne'; did you mean 'machine'?",
        ),
        ("", ["costs.agencies.anamma.in_published_totals=false"], "unknown agency 'anamma'; did you mean 'anama'?"),
        (
            "[costs.agencies.mod.asset_types.machine]\nsource = 'x'\n",
            [],
            "costs.agencies.mod.asset_types.machine: overrides nothing",
        ),
        (
            "[asset_types.robot]\nstages = ['clearance']\nclearance_rate_m2_per_day = 100\n"
            "[costs.asset_types.robot]\npurchase_usd = { low = 1, central = 2, high = 3 }\n"
            "running_usd_per_year = { low = 1, central = 2, high = 3 }\nsource = 'x'\n"
            "[agencies.mod]\nextra_deliveries = [{ asset_type = 'robot', count = 1, date = 2022-01-01 }]\n",
            ["costs.asset_types.robot.purchase_usd.high=1e12"],
            "costs.asset_types.robot.purchase_usd.high: Input should be less than or equal to",
        ),
        (
            "[asset_types.robot]\nstages = ['clearance']\nclearance_rate_m2_per_day = 100\n"
            "[agencies.mod]\nextra_deliveries = [{ asset_type = 'robot', count = 1, date = 2022-01-01 }]\n",
            [],
            "costs.asset_types: no costs for asset type 'robot', which agencies.mod.extra_deliveries.0 delivers",
        ),
        (
            "[[changes]]\ndate = 2024-01-01\n[changes.costs]\ncharge_initial_fleet = true\n",
            [],
            "changes.0.costs: cannot change over time",
        ),
        ("", ["costs.asset_types.machine.purchase_usd.central=true"], "expected a number, not true/false"),
    ],
)
def test_cost_errors_are_one_line_naming_the_key_and_exit_2(tmp_path, body, overrides, expected):
    path = _extends_small(tmp_path, body)
    with pytest.raises(UserError) as err:
        load_scenario(path, overrides, environ={})
    assert expected in str(err.value) and "\n" not in str(err.value)
    sets = [a for o in overrides for a in ("--set", o)]
    proc = demining("config", "show", path, *sets)
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr


def test_an_unknown_cost_key_at_the_top_is_named(tmp_path):
    path = _extends_small(tmp_path, "[costs.asset_typs.machine]\nsource = 'x'\n")
    proc = demining("config", "show", path)
    assert proc.returncode == 2
    assert "costs.asset_typs: unknown key; did you mean 'asset_types'?" in proc.stderr


def test_costs_can_be_set_from_the_command_line_and_the_environment():
    cfg = load_scenario(SMALL, ["costs.asset_types.machine.purchase_usd.central=1e6"], environ={})
    assert cfg.costs.asset_types["machine"].purchase_usd.central == 1e6
    assert cfg.costs.asset_types["machine"].purchase_usd.low == 600_000  # the rest of the range survives
    env = {"DEMINING_COSTS__AGENCIES__MOD__IN_PUBLISHED_TOTALS": "false"}
    assert not load_scenario(SMALL, environ=env).costs.agencies["mod"].in_published_totals


# --------------------------------------------------------------------------- the comparison
@pytest.fixture(scope="module")
def long_small_world(tmp_path_factory):
    """A small world five times larger, so no replication finishes by 2030 (every agency pays to
    the end of 2030), and a what-if that gives ANAMA machines in 2025; both run and written."""
    folder = tmp_path_factory.mktemp("costs")
    (folder / "ref.toml").write_text(
        f'extends = "{SMALL}"\nname = "long_small"\n[parcels]\narea_scale = 0.02\n', encoding="utf-8"
    )
    (folder / "more.toml").write_text(
        'extends = "ref.toml"\nname = "long_small_machines"\n[agencies.anama]\n'
        'extra_deliveries = [{ asset_type = "machine", count = 3, date = 2025-01-01 }]\n',
        encoding="utf-8",
    )
    out = folder / "results"
    for name in ("ref", "more"):
        proc = demining("run", folder / f"{name}.toml", "-n", 3, "--seed", 4, "--out", out, "-w", 1, "--no-plots")
        assert proc.returncode == 0, proc.stderr
    return folder, out


def test_compare_extra_cost_of_added_machines_is_their_purchase_and_running(long_small_world):
    folder, out = long_small_world
    runs = [load_run((out / n / "latest").resolve()) for n in ("long_small", "long_small_machines")]
    for run in runs:  # nobody stands down before 2031: the extra machines run to the end of 2030
        done = run.completion.query("district == 'all'")["completion_date"]
        assert (done.isna() | (done > "2031-01-01")).all()
    costs = cost_table(runs).set_index("scenario")
    cfg = load_scenario(folder / "more.toml", environ={})
    expected = addition_cost_usd(cfg.costs, "anama", "machine", 3, D(2025, 1, 1), D(2031, 1, 1))
    row = costs.loc["long_small_machines"]
    for k in ("p5", "p50", "p95"):  # the same in every replication: paired differences agree
        assert row[f"spend_usd_by_2030_diff_{k}"] == pytest.approx(expected, rel=1e-9)
    assert costs.loc["long_small", "spend_usd_by_2030_diff_p50"] == 0
    assert bool(row["paired"])


def test_compare_writes_a_cost_section(long_small_world):
    folder, out = long_small_world
    proc = demining("compare", "long_small", "long_small_machines", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "Costs, USD" in proc.stdout
    report_folder = (out / "comparisons" / "latest").resolve()
    report = (report_folder / "report.html").read_text()
    section = report.split("<h2>Costs</h2>", 1)[1].split("<h2>", 1)[0]
    assert "spend to completion" in section and "Spend over time" in section and "Cost per hectare" in section
    written = pd.read_csv(report_folder / "comparison_costs.csv")
    assert {"spend_usd_total_diff_p50", "usd_per_ha_gained_by_2030_estimate", "usd_per_casualty_avoided_estimate"} <= set(
        written.columns
    )
    assert "Costs (USD" in (report_folder / "comparison.md").read_text()


def test_cost_ratio_is_the_ratio_of_mean_differences_with_a_band():
    band = sim.bands.BAND
    rng = np.random.default_rng(3)
    ref_cost = rng.normal(100.0, 5.0, 40)
    ref_gain = rng.normal(50.0, 2.0, 40)
    cost, gain = ref_cost + 30.0, ref_gain + 10.0 + rng.normal(0, 0.5, 40)
    ratio = cost_ratio(cost, ref_cost, gain, ref_gain, True, band)
    assert ratio["estimate"] == pytest.approx(30.0 / (gain.mean() - ref_gain.mean()))
    assert ratio["p5"] <= ratio["estimate"] <= ratio["p95"] < np.inf
    # No gain at all: nothing to divide by.
    none = cost_ratio(cost, ref_cost, ref_gain, ref_gain, True, band)
    assert np.isnan(none["estimate"])
    # A gain that may be nil: the band's upper end is unbounded.
    noisy = cost_ratio(cost, ref_cost, ref_gain + rng.normal(0.05, 3.0, 40), ref_gain, True, band)
    assert noisy["p95"] == np.inf


def test_run_summary_and_folder_carry_the_costs(tmp_path):
    proc = demining("run", TEST_SCENARIOS / "small.toml", "-n", 2, "--seed", 2, "--out", tmp_path, "-w", 1, "--no-plots")
    assert proc.returncode == 0, proc.stderr
    folder = (tmp_path / "small" / "latest").resolve()
    summary = json.loads((folder / "summary.json").read_text())
    assert {"by_2025", "by_2030", "to_completion"} <= set(summary["costs"]["spend_usd"])
    assert len(pd.read_csv(folder / "published_spend_check.csv")) == 3
    assert not pd.read_parquet(folder / "spend_per_year.parquet").empty
    assert "Spend, USD" in proc.stdout and "to completion" in proc.stdout
    assert "Against Azerbaijan's published spending" in proc.stdout
