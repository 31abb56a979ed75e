"""What limits progress: utilisation adds up, land waiting is tracked exactly, and a bottleneck
built on purpose is the one named."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.config import STAGES
from sim.ensemble import replication_seeds
from sim.model import Campaign, make_streams
from sim.recording import LOG
from sim.utilisation import BUSY_COLUMNS, UTILISATION_COLUMNS, spread_over_months
from sim.world import draw_truth, generate_inventory

from .conftest import TEST_SCENARIOS


def test_spread_over_months_splits_at_edges():
    edges = np.array([0.0, 31.0, 59.0, 90.0])
    which, month, days = spread_over_months(edges, np.array([10.0, 30.0, 80.0]), np.array([20.0, 65.0, 200.0]))
    assert which.tolist() == [0, 1, 1, 1, 2]
    assert month.tolist() == [0, 0, 1, 2, 2]
    np.testing.assert_allclose(days, [10.0, 1.0, 28.0, 6.0, 10.0])


def test_utilisation_accounts_for_every_asset_day(small_run):
    u = small_run.utilisation
    states = list(UTILISATION_COLUMNS[:-1])
    assert (u[states + ["available_days"]] >= -1e-9).all().all()
    # No asset is counted for more days than it had (steps and repairs past a withdrawal count as
    # days with the agency: the small world's Russian centre ends in June 2024 mid-step).
    assert (u[states].sum(axis=1) <= u["available_days"] + 1e-6).all()
    # Where an asset had idle days, its states add up to its days with the agency exactly.
    idle = u["idle_no_work_days"] > 0
    np.testing.assert_allclose(u.loc[idle, states].sum(axis=1), u.loc[idle, "available_days"], rtol=1e-9, atol=1e-6)
    assert u[list(BUSY_COLUMNS)].to_numpy().sum() > 0
    # Asset-days available match the deliveries: anama's 4 manual teams from day 0 for 12 years.
    teams = u[(u["replication"] == 0) & (u["agency"] == "anama") & (u["asset_type"] == "manual_team")]
    assert teams["available_days"].sum() == pytest.approx(4 * 12 * 365.25, rel=0.002)


def test_busy_days_equal_the_steps_in_the_log(small_cfg, small_compiled):
    from sim.metrics import Context
    from sim.utilisation import utilisation_table

    rngs = make_streams(replication_seeds(2, 1)[0])
    parcels = draw_truth(small_cfg, generate_inventory(small_cfg, rngs["layout"]), rngs)
    res = Campaign(small_compiled, parcels, rngs).run()
    table = utilisation_table(Context.build(small_cfg, small_compiled, []), res, 0)
    for k, column in enumerate(BUSY_COLUMNS):
        steps = res.log[res.log[:, LOG["stage"]] == k]
        cut = res.asset_time[(res.asset_time[:, 2] == 0) & (res.asset_time[:, 3] == k)]
        expected = (steps[:, LOG["t1"]] - steps[:, LOG["t0"]]).sum() + (cut[:, 5] - cut[:, 4]).sum()
        assert table[column].sum() == pytest.approx(expected, rel=1e-9, abs=1e-6), column


def test_land_waiting_matches_the_parcels_own_state(small_cfg, small_compiled):
    rngs = make_streams(replication_seeds(6, 1)[0])
    parcels = draw_truth(small_cfg, generate_inventory(small_cfg, rngs["layout"]), rngs)
    campaign = Campaign(small_compiled, parcels, rngs)
    district = np.asarray(campaign.parcels.district)
    checked = []
    snapshot = campaign.recorder.snapshot

    def checked_snapshot(month, stocks, waiting):
        # At every month end, the running sums equal the parcels' own waiting work.
        for k in range(len(STAGES)):
            expected = np.bincount(district, weights=np.asarray(campaign.parcels.remaining_ha[k]), minlength=len(waiting[k]))
            np.testing.assert_allclose(waiting[k], expected, rtol=1e-9, atol=1e-6)
        checked.append(month)
        snapshot(month, stocks, waiting)

    campaign.recorder.snapshot = checked_snapshot
    res = campaign.run()
    assert len(checked) == res.waiting.shape[0]
    assert max(campaign.parcels.reworks) >= 1, "rework (re-clearance after quality control) exercised"
    for k in range(len(STAGES)):
        expected = np.bincount(district, weights=np.asarray(campaign.parcels.remaining_ha[k]), minlength=res.waiting.shape[1])
        np.testing.assert_allclose(res.waiting[-1, :, k], expected, rtol=1e-9, atol=1e-6)
    assert (res.waiting >= -1e-6).all()
    assert res.waiting[:, :, STAGES.index("clearance")].max() > 0, "land waited for clearance at some month end"


def test_a_scarce_follow_up_is_named_as_the_limit():
    """One dog team follows eight machines: from the second year the dogs are the bottleneck,
    machine-prepared land waits for follow-up, and the machines stand idle most of the time."""
    cfg = sim.load_scenario(TEST_SCENARIOS / "small_scarce_follow_up.toml", environ={})
    result = sim.run(cfg, replications=2, seed=3)
    periods = result.summary["what_limits_progress"]
    late = [p for p in periods if p["to_year"] >= 2022]
    assert late and all(p["stage"] == "follow_up" and p["capacity_bound"] for p in late), periods
    assert all(p["busy_share_by_asset_type"]["dog_team"] > 0.95 for p in late), periods
    assert "follow up capacity" in late[0]["text"]
    u = result.utilisation
    machines = u[u["asset_type"] == "machine"]
    assert machines[list(BUSY_COLUMNS)].to_numpy().sum() < 0.5 * machines["available_days"].sum()
    # And with enough dogs the limit moves away from follow-up.
    more_dogs = sim.load_scenario(
        TEST_SCENARIOS / "small_scarce_follow_up.toml",
        ['agencies.anama.extra_deliveries=[{asset_type = "dog_team", count = 12, date = 2020-11-10}]'],
        environ={},
    )
    relieved = sim.run(more_dogs, replications=2, seed=3).summary["what_limits_progress"]
    assert not any(p["stage"] == "follow_up" and p["capacity_bound"] for p in relieved if p["to_year"] >= 2022), relieved
    # Nobody in this world does quality control (no manual teams): said, not hidden.
    assert any(
        p["stage"] == "quality_control"
        and p["text"].startswith(f"{p['from_year']}")
        and "no asset can do quality control" in p["text"]
        for p in relieved
    ), relieved


def test_the_run_command_says_what_limits_progress(tmp_path):
    from .conftest import demining

    proc = demining(
        "run", TEST_SCENARIOS / "small_scarce_follow_up.toml", "-n", "2", "-w", "1", "--seed", "3",
        "--no-plots", "--out", tmp_path / "results",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "What limits progress" in proc.stdout
    assert "follow up capacity" in proc.stdout.replace("\n", " ")
    folder = next((tmp_path / "results" / "small_scarce_follow_up").glob("2*"))
    assert (folder / "utilisation.parquet").is_file()


def test_a_gap_year_splits_a_period():
    from sim.utilisation import UTILISATION_COLUMNS, YearlyUse, binding_constraints

    def year(busy):
        days = dict.fromkeys(UTILISATION_COLUMNS, 0.0) | {"busy_clearance_days": busy, "available_days": 365.0}
        return {"assets": {"manual_team": days}, "waiting_ha": {"clearance": 100.0}}

    periods = binding_constraints(
        [YearlyUse.from_json({"2024": year(365.0), "2026": year(365.0)})], {"manual_team": ("clearance",)}
    )
    assert [(p["from_year"], p["to_year"]) for p in periods] == [(2024, 2024), (2026, 2026)]
    periods = binding_constraints(
        [YearlyUse.from_json({"2024": year(365.0), "2025": year(360.0)})], {"manual_team": ("clearance",)}
    )
    assert [(p["from_year"], p["to_year"], p["capacity_bound"]) for p in periods] == [(2024, 2025, True)]
