"""Hostile and odd input (issue 12): scenario names used as paths, options one command checked
and another did not, runs too big for the machine, environment and --set paths, comparisons
that would mislead, odd files, usage errors. Each bad input: exit 2, one line, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pandas as pd
import pytest

import sim
from sim.errors import UserError
from sim.results import RunFolder, publish_folder

from .conftest import ROOT, SMALL, demining

QUICK = ("-n", 1, "-w", 1, "--no-plots", "--set", "parcels.area_scale=0.001")


def tree(root) -> list[str]:
    """Everything under `root`, with a file's contents, to see that nothing changed."""
    return sorted(f"{p.relative_to(root)}={p.read_text() if p.is_file() else ''}" for p in root.rglob("*"))


def one_line_error(proc) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr


# ---------------------------------------------------------------------- 1. names used as paths
HOSTILE_NAMES = ["../../escaped", "..", ".", "", "a/b", "bell\x07", "new\nline", ".hidden", "x" * 65, "ABSOLUTE"]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
@pytest.mark.parametrize("via", ["--set", "environment"])
def test_a_hostile_scenario_name_writes_nothing_anywhere(tmp_path, name, via):
    out = tmp_path / "deep" / "er" / "results"
    out.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "latest").write_text("a file of the user's")
    if name == "ABSOLUTE":
        name = str(elsewhere)
    before = tree(tmp_path)
    value = json.dumps(name)  # a TOML basic string: control characters escaped
    if via == "--set":
        proc = demining("run", SMALL, "--set", f"name={value}", *QUICK, "--out", out)
    else:
        proc = demining("run", SMALL, *QUICK, "--out", out, env_extra={"DEMINING_NAME": name})
    assert "name: " in one_line_error(proc)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("name", ["../escaped", "/tmp/absolute", "", ".", "..", "a/b", "nul\x00", "bell\x07"], ids=repr)
def test_results_writers_refuse_a_name_outside_the_root(tmp_path, small_cfg, name):
    """The second line of defence: a config that skipped validation still cannot lead a writer out."""
    out = tmp_path / "results"
    cfg = small_cfg.model_copy(update={"name": name})
    with pytest.raises(UserError, match="refusing to write outside the results root"):
        RunFolder.create(out, cfg, seed=0, replications=1, run_id="r", version="0")
    with pytest.raises(UserError, match="refusing to write outside the results root"):
        with publish_folder(out, name, "r"):
            pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["comparisons", "calibration", "backtest", "small-sweep", "Comparisons"])
def test_names_of_the_tools_own_folders_are_reserved(tmp_path, name):
    proc = demining("run", SMALL, "--set", f"name={name}", *QUICK, "--out", tmp_path / "results")
    assert f"name: {name!r} is reserved" in one_line_error(proc)
    assert not (tmp_path / "results").exists()


def test_a_plain_name_with_dots_and_dashes_is_accepted():
    cfg = sim.load_scenario(SMALL, ["name=baseline.v2-dogs_40"], environ={})
    assert cfg.name == "baseline.v2-dogs_40"


# ---------------------------------------------------------------------- 2. one set of options
@pytest.mark.parametrize(
    "args, message",
    [
        (["sweep", SMALL, "--grid", "maps.map_accuracy=0.5", "--seed", "-1"], "--seed must be a non-negative integer, not -1"),
        (["calibrate", SMALL, "--seed", "-1"], "--seed must be a non-negative integer, not -1"),
        (["sweep", SMALL, "--grid", "maps.map_accuracy=0.5", "-w", "0"], "--workers must be at least 1, not 0"),
        (["calibrate", SMALL, "-w", "0"], "--workers must be at least 1, not 0"),
        (["run", SMALL, "-n", "1000000000"], "--replications 1,000,000,000 is more than the 100,000"),
        (["sweep", SMALL, "--grid", "maps.map_accuracy=0.5", "-n", "100001"], "more than the 100,000"),
        (
            ["run", "--check", "tests", SMALL],
            "--check re-runs a finished run with its own config, seed and inventory; give no scenario",
        ),
        (["run", "--check", "tests", "--set", "maps.map_accuracy=0.5"], "give no --set"),
        (["run", "--check", "tests", "--resume", "tests"], "give no --resume"),
    ],
)
def test_every_command_checks_the_shared_options(tmp_path, args, message):
    out = tmp_path / "results"
    # calibrate always writes its fitted values to a file here, never the repository's
    output = ["--output", tmp_path / "calibrated.toml"] if args[0] == "calibrate" else []
    assert message in one_line_error(demining(*args, *output, "--out", out))
    assert not out.exists() and not (tmp_path / "calibrated.toml").exists()


def test_calibrate_refuses_an_output_it_could_not_write_before_fitting(tmp_path):
    missing = tmp_path / "no_such_folder" / "calibrated.toml"
    proc = demining("calibrate", SMALL, "--output", missing, "--out", tmp_path / "results")
    assert "--output: folder" in one_line_error(proc) and "does not exist" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_out_root_that_is_a_file_is_refused_before_any_work(tmp_path):
    (tmp_path / "results").write_text("not a folder")
    proc = demining("sweep", SMALL, "--grid", "maps.map_accuracy=0.5", "--out", tmp_path / "results" / "sub")
    assert "is not a folder" in one_line_error(proc)


@pytest.fixture
def partial_run(tmp_path):
    cfg = sim.load_scenario(SMALL, ["parcels.area_scale=0.001", "horizon_years=3"], environ={})
    folder = RunFolder.create(tmp_path / "results", cfg, seed=4, replications=1, run_id="r", version=sim.__version__)
    folder.unlock()  # as when the process that started it has ended
    return tmp_path / "results", folder.path


@pytest.mark.parametrize(
    "option, message",
    [
        (["-n", "3"], "this run has --replications 1, not 3"),
        (["--seed", "5"], "this run has --seed 4, not 5"),
        (["--out", "elsewhere"], "belongs to the results root"),
        ([SMALL], "give no scenario"),
        (["--force"], "give no --force"),
    ],
)
def test_resume_refuses_options_that_differ_from_the_run(partial_run, option, message):
    _, partial = partial_run
    before = tree(partial)
    assert message in one_line_error(demining("run", "--resume", partial, *option))
    assert tree(partial) == before


def test_resume_accepts_the_stored_values(partial_run):
    out, partial = partial_run
    proc = demining("run", "--resume", partial, "-n", 1, "--seed", 4, "--out", out, "-w", 1, "--no-plots")
    assert proc.returncode == 0, proc.stderr
    assert (out / "small" / "latest" / "metadata.json").is_file()


def test_replication_seeds_are_made_lazily_and_equal_spawning():
    seeds = sim.ensemble.replication_seeds(7, 100_000)
    spawned = np.random.SeedSequence(7).spawn(3)
    for i in (0, 1, 2):
        assert seeds[i].generate_state(4).tolist() == spawned[i].generate_state(4).tolist()
    assert len(seeds) == 100_000 and seeds[-1].spawn_key == (99_999,)
    with pytest.raises(IndexError):
        seeds[100_000]


# ---------------------------------------------------------------------- 3. runs too big
TOO_BIG = ["--set", "parcels.area_scale=10", "--set", "parcels.mean_parcel_area_ha.forest_pasture=1"]


@pytest.mark.parametrize("command", ["run", "sweep", "calibrate"])
def test_a_run_far_beyond_the_machine_is_refused_with_how_to_force_it(tmp_path, command):
    extra = {"sweep": ["--grid", "maps.map_accuracy=0.5"], "calibrate": ["--output", tmp_path / "c.toml"]}.get(command, [])
    message = one_line_error(demining(command, SMALL, *extra, *TOO_BIG, "--out", tmp_path / "results"))
    assert "parcels (the baseline ~12,500)" in message and "give --force" in message
    assert list(tmp_path.iterdir()) == []


def test_force_runs_what_the_size_check_refuses(tmp_path, monkeypatch):
    monkeypatch.setattr(sim.ensemble, "MAX_PARCELS", 50)  # small.toml makes ~130 parcels
    out = tmp_path / "results"
    assert "give --force" in one_line_error(demining("run", SMALL, *QUICK, "--out", out))
    assert not out.exists()
    proc = demining("run", SMALL, *QUICK, "--out", out, "--force")
    assert proc.returncode == 0, proc.stderr
    assert (out / "small" / "latest" / "metadata.json").is_file()


def test_the_estimate_is_the_number_of_parcels_generated(small_cfg):
    from sim.world import estimated_parcels, generate_inventory

    assert estimated_parcels(small_cfg) == len(generate_inventory(small_cfg, np.random.default_rng(0)))


def test_an_inventory_past_the_limit_stops_being_read(tmp_path, small_cfg, monkeypatch):
    inv = tmp_path / "inv.csv"
    rows = [f"p{i},aghdam,1.5,housing,plain,high,false" for i in range(5)]
    inv.write_text("id,district,area_ha,land_use,terrain,threat,mapped\n" + "\n".join(rows) + "\n")
    monkeypatch.setattr(sim.ensemble, "MAX_PARCELS", 3)
    with pytest.raises(UserError, match="more than 3 parcels; .* --force"):
        sim.ensemble.load_inventory(inv, small_cfg)
    assert len(sim.ensemble.load_inventory(inv, small_cfg, force=True)) == 5


# ---------------------------------------------------------------------- 4. environment and --set
@pytest.mark.parametrize("name, value", [("DEMINING_MAPS", "{bad"), ("DEMINING_AGENCIES__MES__DISTRICTS", "[bad")])
def test_malformed_json_in_an_environment_variable_names_it(tmp_path, name, value):
    proc = demining("run", SMALL, "--out", tmp_path / "results", env_extra={name: value})
    assert f"environment variable {name}: not valid JSON" in one_line_error(proc)


def test_terrain_can_be_overridden_by_set_and_environment():
    cfg = sim.load_scenario(SMALL, ["terrain.mountain.winter_availability=0.2"], environ={})
    assert cfg.terrain["mountain"].winter_availability == 0.2
    assert cfg.terrain["mountain"].winter_months == [12, 1, 2, 3]  # the rest keeps its default
    cfg = sim.load_scenario(SMALL, environ={"DEMINING_TERRAIN__HILLS__WINTER_AVAILABILITY": "0.3"})
    assert cfg.terrain["hills"].winter_availability == 0.3 and cfg.terrain["hills"].winter_months == [1, 2]


@pytest.mark.parametrize(
    "override, message",
    [
        ("terrain.mountian.winter_availability=0.2", "unknown terrain 'mountian'; did you mean 'mountain'?"),
        ("terrain.mountain.winter_availabilty=0.2", "unknown key; did you mean 'winter_availability'?"),
        ("parcels.mean_parcel_area_ha.housng=3", "unknown key; did you mean 'housing'?"),
    ],
)
def test_a_typo_under_a_fixed_key_table_gets_a_hint(override, message):
    with pytest.raises(UserError, match=f"^--set: .*{message}"):
        sim.load_scenario(SMALL, [override], environ={})


@pytest.mark.parametrize(
    "overrides, environ, source",
    [
        (["agencies.mes.districts=['atlantis']"], {}, "--set: agencies.mes.districts: unknown district"),
        ([], {"DEMINING_AGENCIES__MES__DISTRICTS": '["atlantis"]'}, "environment variable DEMINING_AGENCIES__MES__DISTRICTS:"),
        (["parcels.land_use_area_share.housing=0.5"], {}, "--set: parcels: land_use_area_share must sum to 1"),
    ],
)
def test_a_value_from_set_or_the_environment_is_blamed_on_it(overrides, environ, source):
    with pytest.raises(UserError) as err:
        sim.load_scenario(SMALL, overrides, environ=environ)
    assert str(err.value).startswith(source), str(err.value)


def test_a_check_across_the_scenario_names_the_file_and_the_override():
    with pytest.raises(UserError) as err:
        sim.load_scenario(ROOT / "scenarios" / "baseline.toml", ["horizon_years=1"], environ={})
    assert str(err.value).startswith(f"{ROOT / 'scenarios' / 'baseline.toml'} with --set: agencies."), str(err.value)


# ---------------------------------------------------------------------- 5. compare
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    made = {}
    for key, seed, years in (("a", 1, 12), ("b", 2, 12), ("short", 1, 11), ("early1", 1, 9), ("early2", 2, 9)):
        proc = demining("run", SMALL, *QUICK, "-n", 2, "--seed", seed, "--years", years, "--out", out)
        assert proc.returncode == 0, proc.stderr
        made[key] = (out / "small" / "latest").resolve()
    return out, made


def test_two_runs_of_one_scenario_are_labelled_by_their_folder(runs):
    out, made = runs
    proc = demining("compare", made["a"], made["b"], "--out", out)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv((out / "comparisons" / "latest" / "comparison.csv").resolve())
    assert list(table["scenario"]) == [f"small/{made['a'].name}", f"small/{made['b'].name}"]


@pytest.mark.parametrize(
    "pair, message",
    [
        (("a", "a"), "the same run is given twice"),
        (("a", "short"), "compare runs with the same start_date and horizon_years"),
        (("early1", "early2"), "before the end of 2030 that the comparison reports on"),
    ],
)
def test_compare_refuses_runs_whose_numbers_would_mislead(runs, tmp_path, pair, message):
    _, made = runs
    proc = demining("compare", *(made[k] for k in pair), "--out", tmp_path)
    assert message in one_line_error(proc)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- 6. odd files
def test_an_inventory_field_over_128_kib_is_one_line_naming_the_row(tmp_path):
    inv = tmp_path / "inv.csv"
    inv.write_text("id,district,area_ha,land_use,terrain,threat,mapped\np1,aghdam,1,housing,plain,high,false\n" + "x" * 140_000)
    proc = demining("run", SMALL, "--inventory", inv, "--out", tmp_path / "results")
    assert "inv.csv: row 3: not a CSV record" in one_line_error(proc)


def test_an_inventory_is_read_row_by_row(tmp_path, small_cfg):
    """A 20 MB file with a bad second row: the error comes without holding the file in memory."""
    inv = tmp_path / "big.csv"
    with inv.open("w") as f:
        f.write("id,district,area_ha,land_use,terrain,threat,mapped\np1,aghdam,1,housing,plain,high,false\np2,atlantis,1\n")
        f.write(("p,aghdam,1,housing,plain,high,false\n") * 560_000)
    tracemalloc.start()
    try:
        with pytest.raises(UserError, match="row 3, column district"):
            sim.world.read_inventory(inv, small_cfg)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, peak


def test_a_deep_extends_chain_is_one_line(tmp_path):
    for i in range(40):
        (tmp_path / f"s{i}.toml").write_text(f'extends = "s{i + 1}.toml"\n')
    (tmp_path / "s40.toml").write_text(f'extends = "{SMALL}"\n')
    assert "extends: a chain deeper than 32 files" in one_line_error(demining("config", "show", tmp_path / "s0.toml"))


def test_a_symlink_loop_is_one_line(tmp_path):
    (tmp_path / "loop.toml").symlink_to("loop.toml")
    assert "cannot read scenario file" in one_line_error(demining("config", "show", tmp_path / "loop.toml"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("what", ["scenario", "inventory"])
def test_a_fifo_is_refused_not_waited_on(tmp_path, what):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    args = ["config", "show", fifo] if what == "scenario" else ["run", SMALL, "--inventory", fifo, "--out", tmp_path / "r"]
    proc = subprocess.run(  # a real process with a timeout: the defect was a hang
        [sys.executable, "-m", "sim", *map(str, args)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 2 and "not a regular file" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------- 7. usage errors
@pytest.mark.parametrize(
    "args, message",
    [
        (["run", SMALL, "--seed", "1.5"], "error: --seed: '1.5': input should be a valid integer"),
        (["sweep", SMALL, "-n", "ten"], "error: --replications: 'ten': input should be a valid integer"),
        (["run", SMALL, "--no-such-option"], "error: No such option: --no-such-option"),
        (["sweep"], "error: Missing argument"),
    ],
)
def test_a_usage_error_is_one_line(args, message):
    assert message in one_line_error(demining(*args))


def test_inventory_rows_are_named_by_their_line_in_the_file(tmp_path, small_cfg):
    """A quoted field spanning two lines: the next record's error names its own line."""
    inv = tmp_path / "inv.csv"
    inv.write_text(
        "id,district,area_ha,land_use,terrain,threat,mapped\n"
        '"p\n1",aghdam,1,housing,plain,high,false\n'
        "p2,aghdam,-1,housing,plain,high,false\n"
    )
    with pytest.raises(sim.UserError, match="row 4, column area_ha"):
        sim.world.read_inventory(inv, small_cfg)
