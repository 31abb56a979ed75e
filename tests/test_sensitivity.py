"""Sensitivity analysis (tornado, Sobol) and bands that hold the uncertain inputs: on the small world,
an input with no effect by construction stays at zero, a strong one ranks first, draws are
reproducible and paired, and bad options are one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import sim
from sim.ensemble import replication_seeds
from sim.errors import UserError
from sim.seeds import load_inputs
from sim.sensitivity import sensitivity
from sim.uncertainty import INPUTS, UncertainInput, make_uncertainty, uncertain_inputs

from .conftest import SMALL, TEST_SCENARIOS, demining


def _input(name, path, nominal, low, high, transform="log"):
    return UncertainInput(name, "input", (path,), transform, "uniform", nominal, low, high, "test", "assumption: test")


# A strong input (the manual teams' pace: most of the small world's clearance) and one with no
# effect on any output by construction (house plot area converts housing hectares to houses for
# comparison with the agencies' reports only).
STRONG = _input("manual_rate", "asset_types.manual_team.clearance_rate_m2_per_day", 300.0, 100.0, 500.0)
INERT = _input("house_plot", "reporting.house_plot_ha", 0.1, 0.05, 0.2)
MIDDLE = _input("machine_mtbf", "asset_types.machine.mtbf_hours", 150.0, 75.0, 300.0)


@pytest.fixture(scope="module")
def analysed(small_cfg):
    # Tornado: (1 + 2 x 3) points; Sobol over all 3 with N = 16: 16 x 5 points; one replication each.
    return sensitivity(small_cfg, inputs=[INERT, MIDDLE, STRONG], replications=1, seed=3, budget=7 + 80, top=3)


def test_the_strong_input_ranks_first_and_the_inert_one_moves_nothing(analysed):
    assert analysed.ranking[0] == "manual_rate"
    tornado = analysed.tornado.set_index(["input", "output"])
    assert (tornado.loc["house_plot", "swing"] == 0).all()
    assert tornado.loc[("manual_rate", "completion_all"), "swing"] > 0.5  # years
    # A slower manual pace finishes later, a faster one earlier.
    row = tornado.loc[("manual_rate", "completion_all")]
    assert row["at_low"] > row["base"] > row["at_high"]
    assert analysed.runs == 87 and analysed.sobol_n == 16


def test_sobol_index_of_the_inert_input_is_zero_within_its_interval(analysed):
    sobol = analysed.sobol.set_index(["input", "output"])
    inert = sobol.loc["house_plot"]
    assert (inert["S1"].abs() <= inert["S1_conf"] + 1e-9).all()
    assert (inert["ST"].abs() <= inert["ST_conf"] + 1e-9).all() and (inert["ST"].abs() < 0.02).all()
    strong = sobol.loc[("manual_rate", "completion_all")]
    assert strong["ST"] - strong["ST_conf"] > 0.2
    assert strong["ST"] > sobol.loc[("machine_mtbf", "completion_all"), "ST"]


def test_every_point_runs_the_same_replications(analysed):
    design = analysed.design
    assert set(design["replication"]) == {0}
    base = design[(design["phase"] == "tornado") & (design["point"] == 0)]
    inert_points = design[(design["phase"] == "tornado") & design["house_plot"].notna()]
    # Common random numbers: the inert input's points give the base's outputs exactly.
    for _, row in inert_points.iterrows():
        assert row[analysed.outputs].tolist() == base.iloc[0][analysed.outputs].tolist()


def test_inputs_csv_ranges_are_documented():
    rows = {row.id: row for row in load_inputs()}
    for entry in INPUTS:
        row = rows[entry.input_id]
        assert row.low is not None and row.low <= row.value <= row.high, entry.name
        assert row.range_note.startswith(("source:", "assumption:")), entry.name


def test_a_range_without_its_note_is_refused(tmp_path):
    path = tmp_path / "inputs.csv"
    header = "id,agency,metric,value,unit,window_start,window_end,district,source,note,low,high,range_note\n"
    path.write_text(header + "x,all,rate,5,ha,,,,somewhere,,1,10,\n", encoding="utf-8")
    with pytest.raises(UserError, match="row 2.*range_note"):
        load_inputs(path)
    path.write_text(header + "x,all,rate,5,ha,,,,somewhere,,6,10,source: a\n", encoding="utf-8")
    with pytest.raises(UserError, match="outside its range"):
        load_inputs(path)


# --------------------------------------------------------------------------- uncertainty bands
def test_draws_are_reproducible_within_range_and_differ_between_replications(small_cfg):
    draws = make_uncertainty(small_cfg, "all")
    seeds = replication_seeds(5, 3)
    first = [draws.draw(s) for s in seeds]
    assert first == [draws.draw(s) for s in replication_seeds(5, 3)]
    assert first[0] != first[1]
    for values in first:
        for item in draws.inputs:
            assert min(item.low, item.high) <= values[item.name] <= max(item.low, item.high), item.name


def test_draws_are_paired_across_scenarios_and_the_same_on_any_worker_count(small_cfg):
    more = sim.load_scenario(TEST_SCENARIOS / "small_more_machines.toml", environ={})
    one = sim.run(small_cfg, replications=3, seed=5, uncertainty=make_uncertainty(small_cfg, "all"), workers=1)
    two = sim.run(small_cfg, replications=3, seed=5, uncertainty=make_uncertainty(small_cfg, "all"), workers=2)
    pd.testing.assert_frame_equal(one.per_replication, two.per_replication)
    other = sim.run(more, replications=3, seed=5, uncertainty=make_uncertainty(more, "all"))
    drawn = [c for c in one.per_replication if c.startswith("drawn:")]
    assert len(drawn) == len(uncertain_inputs(small_cfg, "all"))
    pd.testing.assert_frame_equal(one.per_replication[drawn], other.per_replication[drawn])
    # The drawn inputs widen the band beyond replication noise alone.
    alone = sim.run(small_cfg, replications=3, seed=5)
    assert not [c for c in alone.per_replication if c.startswith("drawn:")]
    assert alone.summary["band_holds"].endswith("every input at its scenario value")
    assert "fitted parameters" in one.summary["band_holds"]


def test_a_scenario_decision_at_0_or_1_is_not_drawn_away(small_cfg):
    cfg = small_cfg.model_copy(deep=True)
    cfg.land_release.survey_cancellation = 1.0  # IMAS practice: a decision, not an uncertainty
    draws = make_uncertainty(cfg, "fitted")
    for seed_seq in replication_seeds(1, 5):
        drawn_cfg, values = draws.config(cfg, seed_seq)
        assert drawn_cfg.land_release.survey_cancellation == 1.0


def test_fitted_ranges_stay_within_what_the_config_accepts(small_cfg):
    """A value near a field's limit (a factor of 80, limit 100) is drawn up to the limit, not past
    it into a config that would not validate."""
    cfg = small_cfg.model_copy(deep=True)
    cfg.parcels.former_loc_mine_density_factor = 80.0
    cfg.agencies["anama"].survey_productivity = 90.0
    draws = make_uncertainty(cfg, "fitted")
    ranges = {item.name: (item.low, item.high) for item in draws.inputs}
    assert ranges["former_loc_mine_density_factor"] == (pytest.approx(40.0), 100.0)
    assert ranges["anama.survey_productivity"][1] == 100.0
    for seed_seq in replication_seeds(2, 8):
        drawn_cfg, _ = draws.config(cfg, seed_seq)
        assert 39.9 <= drawn_cfg.parcels.former_loc_mine_density_factor <= 100.0


def test_uncertainty_none_draws_nothing(small_cfg):
    assert make_uncertainty(small_cfg, "none") is None
    plain = sim.run(small_cfg, replications=2, seed=4)
    none = sim.run(small_cfg, replications=2, seed=4, uncertainty=make_uncertainty(small_cfg, "none"))
    pd.testing.assert_frame_equal(plain.monthly, none.monthly)


# --------------------------------------------------------------------------- command line
def test_sensitivity_command_writes_its_folder(tmp_path):
    out = tmp_path / "r"
    args = ["sensitivity", SMALL, "--uncertainty", "inputs", "-n", 1, "--budget", 35 + 8 * 4, "--top", 2, "--years", 6]
    proc = demining(*args, "-w", 1, "--out", out)
    assert proc.returncode == 0, proc.stderr
    folder = (out / "small-sensitivity").iterdir().__next__()
    for name in ("tornado.csv", "sobol.csv", "inputs.csv", "design.parquet", "config.toml", "metadata.json"):
        assert (folder / name).is_file(), name
    assert (folder / "plots" / "tornado.png").stat().st_size > 10_000
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["kind"] == "sensitivity" and meta["simulations"] == 67 and meta["sobol_base_samples"] == 8
    assert len(meta["sobol_inputs"]) == 2 and meta["ranking"][:2] == meta["sobol_inputs"]
    assert len(pd.read_parquet(folder / "design.parquet")) == 67
    assert "Sobol indices" in proc.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["sensitivity", SMALL, "--budget", "0"], "--budget must be a positive number of simulations, not 0"),
        (["sensitivity", SMALL, "--budget", "50"], "--budget 50: the tornado over 56 inputs takes 226 simulations"),
        (["sensitivity", SMALL, "--output", "bogus"], "--output 'bogus': unknown output; choose from completion_all"),
        (["sensitivity", SMALL, "--uncertainty", "none"], "--uncertainty none: nothing to vary"),
        (["sensitivity", SMALL, "--uncertainty", "maybe"], "--uncertainty 'maybe': choose one of none, inputs, fitted, all"),
        (["sensitivity", SMALL, "--top", "0"], "--top 0: give 1 to 56"),
        (["run", SMALL, "--uncertainty", "maybe"], "--uncertainty 'maybe': choose one of none, inputs, fitted, all"),
        (["run", "--resume", SMALL, "--uncertainty", "none"], "--resume takes its scenario, seed and settings"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, args, message):
    proc = demining(*args, "--out", tmp_path / "r") if args[1] != "--resume" else demining(*args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr.replace("\n", " "), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "r").exists()


def test_run_records_what_its_bands_hold(tmp_path):
    proc = demining("run", SMALL, "-n", 2, "-w", 1, "--years", 4, "--no-plots", "--uncertainty", "inputs", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    folder = (tmp_path / "small" / "latest").resolve()
    meta = json.loads((folder / "metadata.json").read_text())
    summary = json.loads((folder / "summary.json").read_text())
    assert meta["uncertainty"]["mode"] == "inputs" and meta["uncertainty"]["holds"] == summary["band_holds"]
    assert {row["kind"] for row in meta["uncertainty"]["inputs"]} == {"input"}
    drawn = pd.read_parquet(folder / "replications.parquet").filter(like="drawn:")
    assert drawn.shape == (2, len(meta["uncertainty"]["inputs"])) and np.isfinite(drawn.to_numpy()).all()
    check = demining("run", "--check", folder)
    assert check.returncode == 0, check.stderr


def test_design_points_give_the_same_outputs_on_one_or_two_workers(small_cfg):
    from sim.ensemble import worker_pool
    from sim.sensitivity import evaluate

    points = [{}, {"manual_rate": 150.0}, {"machine_mtbf": 250.0}]
    alone = evaluate(small_cfg, points, [STRONG, MIDDLE], 2, 9)
    with worker_pool(2) as pool:
        pooled = evaluate(small_cfg, points, [STRONG, MIDDLE], 2, 9, pool=pool)
    pd.testing.assert_frame_equal(alone, pooled)
    assert list(alone["point"]) == [0, 0, 1, 1, 2, 2] and list(alone["replication"]) == [0, 1] * 3
