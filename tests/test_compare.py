"""`compare` by district and for any milestone: per-district paired differences with their bands,
dates of any share released, totals by any year, casualties over the whole run and avoided per
year, and refusals or warnings when the runs' settings differ."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.compare import ALL_RELEASED, Asked, compare_runs, load_run, outcome_values, share_outcome

from .conftest import SMALL, TEST_SCENARIOS, demining


def one_line_error(proc) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    made = {}
    for key, name, scenario, extra in (
        ("small", "small", SMALL, ["--seed", 3]),
        ("more", "small_more_machines", TEST_SCENARIOS / "small_more_machines.toml", ["--seed", 3]),
        ("seed5", "small_seed5", SMALL, ["--seed", 5]),
        ("scale", "small_scale", SMALL, ["--seed", 3, "--set", "parcels.area_scale=0.005"]),
        ("short", "small_short", SMALL, ["--seed", 3, "--years", 11]),
    ):
        extra += [] if name.startswith("small_more") or name == "small" else ["--set", f"name={name}"]
        proc = demining("run", scenario, "-n", 4, *extra, "--out", out, "-w", 1, "--no-plots")
        assert proc.returncode == 0, proc.stderr
        made[key] = (out / name / "latest").resolve()
    return out, made


@pytest.fixture(scope="module")
def focused(runs):
    out, made = runs
    proc = demining(
        "compare", made["small"], made["more"], "--districts", "fuzuli,aghdam", "--milestone", "0.95", "--by-year", 2027,
        "--out", out,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return (out / "comparisons" / "latest").resolve(), proc


def test_district_differences_are_paired_replication_by_replication(runs, focused):
    _, made = runs
    folder, _ = focused
    districts = pd.read_csv(folder / "comparison_districts.csv")
    assert len(districts) == 2 * 13  # every district in the CSV, whatever the focus
    row = districts.set_index(["scenario", "district"]).loc[("small_more_machines", "fuzuli")]
    small, more = load_run(made["small"]), load_run(made["more"])
    by_hand = outcome_values(more, "fuzuli", ALL_RELEASED) - outcome_values(small, "fuzuli", ALL_RELEASED)
    assert np.isfinite(by_hand).all()
    assert row["all_released_diff_days_p50"] == pytest.approx(np.median(by_hand))
    assert row["all_released_diff_days_p5"] == pytest.approx(np.quantile(by_hand, 0.05))
    assert row["all_released_diff_months_p50"] * 30.4375 == pytest.approx(np.median(by_hand))
    # The reference's difference from itself is nothing.
    ref = districts.set_index(["scenario", "district"]).loc[("small", "aghdam")]
    assert ref["released_95pct_diff_months_p50"] == 0 and ref["released_ha_by_2027_diff_p95"] == 0
    # The columns the user asked for are there, for every district.
    for column in ("released_95pct_p50", "released_ha_by_2027_p50", "items_by_2027_diff_p50",
                   "civilian_casualties_by_2027_p95", "deminer_casualties_to_horizon_diff_p5"):  # fmt: skip
        assert districts[column].notna().all(), column


def test_district_and_national_milestones_agree_with_the_runs_own_tables(runs):
    _, made = runs
    run = load_run(made["small"])
    per_rep = run.per_replication.sort_values("replication")
    # The whole campaign from the district stocks and flows: as each run recorded it.
    np.testing.assert_array_equal(run.paths.share_days("all", 0.9), per_rep["released_90pct_day"])
    np.testing.assert_array_equal(run.paths.share_days("all", 0.95), per_rep["released_95pct_day"])
    for year in (2025, 2030):
        np.testing.assert_allclose(run.paths.released_by("all", year), per_rep[f"released_ha_by_{year}"])
        for measure in ("items", "civilian_casualties", "deminer_casualties"):
            np.testing.assert_allclose(run.paths.flow_by("all", measure, year), per_rep[f"{measure}_by_{year}"])
    # The districts add up to the whole.
    total = sum(run.paths.flow_by(d, "items", None) for d in run.districts)
    np.testing.assert_allclose(total, per_rep[["items_ap_at_horizon", "items_at_at_horizon", "items_uxo_at_horizon"]].sum(axis=1))
    # A share's date is the first month end the district's released area reaches it.
    days = run.paths.share_days("fuzuli", 0.5)
    k = run.districts.index("fuzuli")
    for rep in range(run.replications):
        month = np.flatnonzero(run.paths.released[rep, :, k] >= 0.5 * run.paths.initial[rep, k] - 1e-6)[0]
        assert days[rep] == run.paths.month_end_day[month]


def test_terminal_shows_the_districts_asked_for_and_the_milestones(focused):
    folder, proc = focused
    text = proc.stdout
    assert "Fuzuli" in text and "Aghdam" in text and "Lachin" not in text
    assert "95 % released" in text and "2027" in text
    assert "whole run" in text
    assert "Civilian casualties per year" in text
    national = pd.read_csv(folder / "comparison.csv").set_index("scenario")
    for column in ("released_95pct_p50", "released_ha_by_2027_diff_p50", "items_by_2027_p50",
                   "civilian_casualties_to_horizon_diff_p50", "deminer_casualties_by_2027_p5",
                   "soldier_casualties_by_2030_p50", "soldier_casualties_by_2030_diff_p95"):  # fmt: skip
        assert column in national.columns, column
    report = (folder / "report.html").read_text()
    assert "<h3>Fuzuli</h3>" in report and "<h3>Lachin</h3>" not in report


def test_casualties_avoided_per_year_are_the_reference_minus_the_scenario(runs, focused):
    _, made = runs
    folder, _ = focused
    years = pd.read_csv(folder / "comparison_years.csv")
    small, more = load_run(made["small"]), load_run(made["more"])
    ref_year = small.paths.flows["civilian_casualties"].sum(axis=2)
    more_year = more.paths.flows["civilian_casualties"].sum(axis=2)
    rows = years[years["scenario"] == "small_more_machines"].sort_values("year")
    assert list(rows["year"]) == list(range(2020, 2033))
    np.testing.assert_allclose(rows["civilian_casualties_avoided_mean"], (ref_year - more_year).mean(axis=0))
    np.testing.assert_allclose(
        rows["civilian_casualties_avoided_since_start_mean"], np.cumsum(ref_year - more_year, axis=1).mean(axis=0)
    )
    assert (years[years["scenario"] == "small"]["civilian_casualties_avoided_p95"] == 0).all()
    assert rows["period"].iloc[0] == "2020-11-10 to 2020-12-31"


def test_unknown_district_is_one_line_naming_the_option_and_the_valid_names(runs, tmp_path):
    _, made = runs
    proc = demining("compare", made["small"], made["more"], "--districts", "fuzuli,atlantis", "--out", tmp_path)
    line = one_line_error(proc)
    assert "--districts: unknown district 'atlantis'; valid names: aghdam, fuzuli," in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "option, message",
    [
        (["--by-year", "2040"], "--by-year 2040: the runs cover 2020-11-10 to 2032-11-10; give a year from 2020 to 2031"),
        (["--by-year", "soon"], "--by-year 'soon': give a calendar year"),
        (["--milestone", "1.5"], "--milestone 1.5: give a share of the hazardous area released, above 0 and at most 1"),
        (["--milestone", "most"], "--milestone 'most': give a share"),
        (["--districts", ","], "--districts: give district names"),
    ],
)
def test_bad_milestones_are_one_line_naming_the_option(runs, tmp_path, option, message):
    _, made = runs
    proc = demining("compare", made["small"], made["more"], *option, "--out", tmp_path)
    assert message in one_line_error(proc)
    assert list(tmp_path.iterdir()) == []


def test_other_seed_is_compared_unpaired_with_a_warning(runs, tmp_path):
    _, made = runs
    proc = demining("compare", made["small"], made["seed5"], "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "warning: the runs differ in seed (seed: small 3, small_seed5 5): compared unpaired" in proc.stderr
    table = pd.read_csv((tmp_path / "comparisons" / "latest" / "comparison.csv").resolve())
    assert not table["paired"].any()


@pytest.mark.parametrize(
    "other, message",
    [
        ("scale", "small_scale has parcels.area_scale 0.005 (reference 0.004): areas, items and casualties of another world"),
        ("short", "compare runs with the same start_date and horizon_years (or give --force"),
    ],
)
def test_other_world_or_horizon_is_refused_unless_forced(runs, tmp_path, other, message):
    _, made = runs
    proc = demining("compare", made["small"], made[other], "--out", tmp_path / "refused")
    assert message in one_line_error(proc)
    assert not (tmp_path / "refused").exists()
    forced = demining("compare", made["small"], made[other], "--force", "--out", tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "compared anyway (--force)" in forced.stderr


def test_a_share_of_one_is_all_released_and_shares_are_ordered(runs):
    _, made = runs
    loaded = [load_run(made["small"]), load_run(made["more"])]
    comparison = compare_runs(loaded, asked=Asked(shares=(0.95, 1.0, 0.5)))
    keys = [o.key for o in comparison.asked.date_outcomes()]
    assert keys == ["released_50pct", "released_90pct", "released_95pct", "all_released"]
    assert share_outcome(0.975).label == "97.5 % released"


def test_a_run_made_before_soldiers_compares_with_none(runs, tmp_path):
    """A results folder of a model revision before 11 has no soldier columns: compare reads it,
    with no soldiers, and the other casualties as they were."""
    import shutil

    import pyarrow.parquet as pq

    from sim.compare import campaign_outcome

    _, made = runs
    old = tmp_path / "old"
    shutil.copytree(made["small"], old)
    monthly = pq.read_table(old / "monthly.parquet")
    pq.write_table(monthly.drop(["soldier_killed", "soldier_injured"]), old / "monthly.parquet")
    before, now = load_run(old), load_run(made["small"])
    soldiers, civilians = campaign_outcome("soldier_casualties"), campaign_outcome("civilian_casualties")
    assert (outcome_values(before, "all", soldiers) == 0).all() and outcome_values(now, "all", soldiers).sum() > 0
    np.testing.assert_array_equal(outcome_values(before, "all", civilians), outcome_values(now, "all", civilians))


def test_report_says_what_every_runs_bands_hold_once_and_what_differs_per_run():
    from types import SimpleNamespace

    from sim.compare import what_bands_hold

    def run(name, holds=None):
        return SimpleNamespace(name=name, metadata={"uncertainty": {"holds": holds}} if holds else {})

    shared = "noise and 17 input ranges, drawn per replication, conditioned on the record (95 figures)"
    past = "checked on the past of"
    demo = [
        run("baseline", shared),
        run("more_machines", f"{shared}, {past} more_machines"),
        run("imas", f"{shared}, {past} baseline"),
    ]
    assert what_bands_hold(demo) == (f"{shared} (every scenario); more_machines: {past} more_machines; imas: {past} baseline")
    # The shared words end mid-clause ("... past of "): said once up to the last whole clause.
    two = demo[1:]
    assert what_bands_hold(two) == f"{shared} (every scenario); more_machines: {past} more_machines; imas: {past} baseline"
    assert what_bands_hold([run("a"), run("b")]) == "replication noise only (every scenario)"
    assert what_bands_hold([run("a", "x, y"), run("b", "z")]) == "a: x, y; b: z"
