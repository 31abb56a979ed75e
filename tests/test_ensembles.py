"""Executors, comparison, sweeps and the report (issue: ensembles and comparison)."""

from __future__ import annotations

import html
import json
import re

import pandas as pd
import pytest

import sim
from sim.compare import comparison_table, district_completion_table, load_run
from sim.errors import UserError
from sim.sweep import parse_grid

from .conftest import SMALL, TEST_SCENARIOS, demining


def _tables(result):
    return result.monthly, result.districts, result.incidents, result.targets, result.completion


def test_identical_tables_with_1_2_workers_and_a_dask_cluster(small_cfg):
    # 10 replications: more than the 8 a 2-wide pool has in flight, so refilling is exercised too.
    distributed = pytest.importorskip("distributed")
    one = sim.run(small_cfg, replications=10, seed=21, workers=1)
    two = sim.run(small_cfg, replications=10, seed=21, workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            dask = sim.run(small_cfg, replications=10, seed=21, pool=client)
    for a, b, c in zip(_tables(one), _tables(two), _tables(dask)):
        pd.testing.assert_frame_equal(a, b)
        pd.testing.assert_frame_equal(a, c)


def test_jobs_in_flight_are_bounded_so_memory_does_not_grow_with_replications():
    """Never more than `window` futures submitted and not yet handed on (besides the one being
    handed on now), and every item comes back exactly once."""
    from concurrent.futures import ThreadPoolExecutor

    from sim.ensemble import _completed

    submitted, handed_on, most_outstanding = [], [], 0
    with ThreadPoolExecutor(max_workers=3) as pool:

        def submit(item):
            submitted.append(item)
            return pool.submit(lambda: item * item)

        for future in _completed(pool, submit, range(50), window=5):
            handed_on.append(future.result())
            most_outstanding = max(most_outstanding, len(submitted) - len(handed_on))
    assert most_outstanding <= 5
    assert sorted(handed_on) == [i * i for i in range(50)]
    assert len(submitted) == 50


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp")
    for name in ("small", "small_more_machines", "small_better_maps"):
        # Better maps from the start changes the past: its draws are conditioned on the small
        # world's past, as the reference's are, so that the comparison stays paired.
        history = ["--condition-on", TEST_SCENARIOS / "small.toml"] if name == "small_better_maps" else []
        proc = demining(
            "run", TEST_SCENARIOS / f"{name}.toml", "-n", 6, "--seed", 3, "--out", out, "-w", 2, "--no-plots", *history
        )
        assert proc.returncode == 0, proc.stderr
    proc = demining("compare", "small", "small_more_machines", "small_better_maps", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_comparison_differences_have_the_right_sign(compared):
    out, _ = compared
    runs = [load_run((out / n / "latest").resolve()) for n in ("small", "small_more_machines", "small_better_maps")]
    table = comparison_table(runs).set_index("scenario")
    assert table["paired"].all()
    assert table.loc["small", "all_released_diff_days_p50"] == 0
    # More machines and crews finish earlier, replication by replication.
    assert table.loc["small_more_machines", "all_released_diff_days_p50"] < 0
    # Dates compared in months too, 90 % released as well as all: earlier with more assets, and
    # the months are the days over 30.44.
    assert table.loc["small", "released_90pct_diff_months_p50"] == 0
    assert table.loc["small_more_machines", "released_90pct_diff_months_p50"] < 0
    assert table.loc["small_more_machines", "all_released_diff_months_p50"] * 30.4375 == pytest.approx(
        table.loc["small_more_machines", "all_released_diff_days_p50"]
    )
    # Finishing earlier never releases less land by 2025.
    assert table.loc["small_more_machines", "released_ha_by_2025_diff_p50"] >= 0
    districts = district_completion_table(runs)
    assert set(districts["scenario"]) == {"small", "small_more_machines", "small_better_maps"}


def test_report_is_self_contained_with_every_plot(compared):
    out, proc = compared
    folder = (out / "comparisons" / "latest").resolve()
    report = (folder / "report.html").read_text()
    pngs = sorted(p.name for p in (folder / "plots").glob("*.png"))
    # Released area, its difference over time, the differences, completion and months by district,
    # casualties; and the cost section's spend over time and cost per ha.
    assert len(pngs) == 8 and {"spend_over_time.png", "cost_per_hectare.png"} <= set(pngs)
    assert len(re.findall(r"src='data:image/png;base64,", report)) == len(pngs)
    # Nothing fetched from a network: no external src/href at all.
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", report)
    for name in ("small", "small_more_machines", "small_better_maps"):
        assert name in report
    assert "paired by replication" in report
    # Each scenario's binding constraints, period by period, as its run's summary says them.
    section = report.split("<h2>What limits progress</h2>", 1)[1].split("<h2>", 1)[0]
    for name in ("small", "small_more_machines"):
        periods = json.loads((out / name / "latest" / "summary.json").read_text())["what_limits_progress"]
        assert periods and all(html.escape(p["text"]) in section for p in periods)
    assert "<h2>Costs</h2>" in report and "spend to completion" in report
    for f in ("comparison.csv", "comparison.md", "comparison_districts.csv", "comparison_costs.csv"):
        assert (folder / f).stat().st_size > 0
    assert "Whole campaign, compared with small" in proc.stdout


def test_compare_needs_finished_runs(tmp_path):
    proc = demining("compare", "nope", "small", "--out", tmp_path)
    assert proc.returncode == 2
    assert "no such results folder" in proc.stderr
    (tmp_path / "half").mkdir()
    proc = demining("compare", tmp_path / "half", tmp_path / "half", "--out", tmp_path)
    assert proc.returncode == 2
    assert "not a results folder of a finished run" in proc.stderr


def test_sweep_covers_every_grid_point(tmp_path):
    proc = demining(
        "sweep",
        SMALL,
        "--grid",
        "maps.map_accuracy=0.25,0.75",
        "--grid",
        "agencies.anama.clearance_productivity=1,2,3",
        "-n",
        2,
        "--out",
        tmp_path,
        "-w",
        2,
    )
    assert proc.returncode == 0, proc.stderr
    folder = (tmp_path / "small-sweep" / "latest").resolve()
    table = pd.read_csv(folder / "sweep.csv")
    assert len(table) == 6
    assert set(zip(table["maps.map_accuracy"], table["agencies.anama.clearance_productivity"])) == {
        (a, c) for a in (0.25, 0.75) for c in (1, 2, 3)
    }
    assert (folder / "sweep.png").stat().st_size > 10_000
    reps = pd.read_parquet(folder / "replications.parquet")
    assert len(reps) == 12


def test_sweep_grid_errors():
    with pytest.raises(UserError, match="needs at least one --grid"):
        parse_grid([])
    with pytest.raises(UserError, match="the grid is empty"):
        parse_grid(["maps.map_accuracy="])
    proc = demining("sweep", SMALL, "--grid", "maps.map_accuracy=0.5,1.5")
    assert proc.returncode == 2
    assert "grid point {'maps.map_accuracy': 1.5}" in proc.stderr


def test_sweep_over_a_count_of_extra_deliveries(tmp_path):
    """`--grid add:AGENCY:ASSET_TYPE@DATE=0,N` sweeps extra deliveries as `--add` would: N more
    manual teams finish the small world sooner at every replication (common random numbers)."""
    proc = demining(
        "sweep", SMALL, "--grid", "add:anama:manual_team@2022-01-01=0,6", "-n", 2, "--out", tmp_path, "-w", 1
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    folder = (tmp_path / "small-sweep" / "latest").resolve()
    reps = pd.read_parquet(folder / "replications.parquet")
    key = "add:anama:manual_team@2022-01-01"
    count = reps[key].astype(int)  # grid values are stored as text in replications.parquet
    days = {n: reps[count == n].set_index("replication")["all_released_day"] for n in (0, 6)}
    assert len(days[6]) == 2 and (days[6] < days[0]).all()
    added = (folder / "configs").glob("point-*.toml")
    assert any("count = 6" in p.read_text() and '"--add"' in p.read_text() for p in added)


def test_count_grid_errors():
    with pytest.raises(UserError, match="counts must be whole numbers >= 0"):
        parse_grid(["add:anama:machine@2026-01-01=0,2.5"])
    with pytest.raises(UserError, match="add:AGENCY:ASSET_TYPE@YYYY-MM-DD"):
        parse_grid(["add:anama@2026-01-01=1"])
    proc = demining("sweep", SMALL, "--grid", "add:unicef:machine@2026-01-01=0,3")
    assert proc.returncode == 2
    assert "unknown agency 'unicef'" in proc.stderr
