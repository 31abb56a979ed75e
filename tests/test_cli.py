"""The `demining` command end to end: exit codes, messages, files. A successful run, a bad input
and the import check start a real process; the rest run the same entry point in-process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import sim
from sim.cli import RUN_UNCERTAINTY
from sim.provenance import PROVENANCE_KEYS
from sim.results import PARTIAL_PREFIX, RUN_FILES, config_hash
from sim.uncertainty import make_uncertainty

from .conftest import ROOT, SMALL, TEST_SCENARIOS, demining, demining_process


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    proc = demining_process("run", SMALL, "--replications", 3, "--seed", 5, "--out", out, "--workers", 1)
    return proc, out


def test_run_writes_a_complete_results_folder(cli_run):
    proc, out = cli_run
    assert proc.returncode == 0, proc.stderr
    latest = out / "small" / "latest"
    assert latest.is_symlink()
    folder = latest.resolve()
    for name in RUN_FILES:
        assert (folder / name).is_file(), name
    for plot in ("released_over_time", "released_by_district", "items_per_year", "casualties_per_year", "completion_dates"):
        assert (folder / "plots" / f"{plot}.png").stat().st_size > 10_000
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["seed"] == 5 and meta["replications"] == 3 and meta["scenario"] == "small"
    assert meta["package_version"] == sim.__version__
    assert meta["git_revision"] and meta["wall_seconds"] > 0
    monthly = pd.read_parquet(folder / "monthly.parquet")
    expected = [
        "replication",
        "month",
        "district",
        "agency",
        "cancelled_ha",
        "reduced_ha",
        "cleared_ha",
        "items_ap",
        "items_at",
        "items_uxo",
        "deminer_killed",
        "deminer_injured",
        "civilian_killed",
        "civilian_injured",
        "soldier_killed",
        "soldier_injured",
    ]
    assert list(monthly.columns) == expected
    targets = pd.read_csv(folder / "targets.csv")
    assert {"target", "reported", "simulated_mean", "simulated_p5", "simulated_p95", "relative_error"} <= set(targets.columns)
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["districts"]) == set(sim.load_scenario(SMALL, environ={}).districts)
    assert "all released" in proc.stdout
    # Nothing but finished runs and their link: no partial folder (results.PARTIAL_PREFIX), no
    # temporary link, nothing else (later tests in this module add runs beside this one).
    entries = list((out / "small").iterdir())
    assert not list((out / "small").glob(f"{PARTIAL_PREFIX}*"))
    assert not [p.name for p in entries if p.name.startswith(".")]
    assert all(p.name == "latest" or (p / "metadata.json").is_file() for p in entries), [p.name for p in entries]
    assert folder.name in {p.name for p in entries}
    inside = {p.name for p in folder.iterdir()}
    assert inside == set(RUN_FILES) | {"plots"}, inside ^ (set(RUN_FILES) | {"plots"})


def test_cli_tables_equal_api_tables(cli_run):
    proc, out = cli_run
    folder = (out / "small" / "latest").resolve()
    # The CLI draws the uncertain inputs by default (RUN_UNCERTAINTY), conditioned on the record; the API
    # draws what it is given.
    cfg = sim.load_scenario(SMALL, environ={})
    api = sim.run(cfg, replications=3, seed=5, uncertainty=make_uncertainty(cfg, RUN_UNCERTAINTY, condition=True))
    written = pd.read_parquet(folder / "districts.parquet")
    pd.testing.assert_frame_equal(written, api.districts, check_categorical=False, check_dtype=False)


def test_second_run_never_overwrites_the_first(cli_run):
    proc, out = cli_run
    before = {p.name for p in (out / "small").iterdir() if not p.is_symlink()}
    again = demining("run", SMALL, "-n", 1, "--seed", 5, "--out", out, "--workers", 1, "--no-plots")
    assert again.returncode == 0, again.stderr
    after = {p.name for p in (out / "small").iterdir() if not p.is_symlink()}
    assert before < after and len(after) == len(before) + 1
    assert (out / "small" / "latest").resolve().name in after - before


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "tests/scenarios/nope.toml"], "scenario file not found"),
        (["run", SMALL, "--replications", "0"], "--replications must be at least 1"),
        (["run", SMALL, "--set", "maps.map_acuracy=0.5"], "did you mean 'map_accuracy'"),
        (
            ["run", SMALL, "--set", "asset_types.machine.mttr_days=-1"],
            "asset_types.machine.mttr_days: Input should be greater than or equal to 0",
        ),
        (["config", "show", SMALL, "--set", "agencies.anama.districts=['nowhere']"], "unknown district 'nowhere'"),
        (["run", SMALL, "--band", "95-5"], "--band '95-5': expected two percentages LOW-HIGH"),
        (["sweep", SMALL, "--grid", "maps.map_accuracy=0.5", "--band", "10"], "--band '10'"),
        (["compare", "small", "small", "--band", "x"], "--band 'x'"),
    ],
)
def test_bad_input_exit_2_one_line_nothing_written(tmp_path, args, message):
    out = tmp_path / "results"
    proc = demining(*args, "--out", out) if args[0] != "config" else demining(*args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists(), "nothing written"


def test_bad_input_in_a_real_process(tmp_path):
    out = tmp_path / "results"
    proc = demining_process("run", SMALL, "--set", "maps.map_acuracy=0.5", "--out", out)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --set: maps.map_acuracy: unknown key; did you mean 'map_accuracy'?"
    assert proc.stdout == ""
    assert not out.exists()


def test_bad_inventory_names_row(tmp_path):
    inv = tmp_path / "inv.csv"
    inv.write_text(
        "id,district,area_ha,land_use,terrain,threat,mapped\nA1,aghdam,12.5,housing,plain,high,true\nA2,atlantis,3,roads,plain,high,false\n"
    )
    proc = demining("run", SMALL, "--inventory", inv, "--out", tmp_path / "r")
    assert proc.returncode == 2
    assert f"{inv}: row 3, column district: unknown district 'atlantis'" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_inventory_run(tmp_path):
    inv = tmp_path / "inv.csv"
    rows = ["id,district,area_ha,land_use,terrain,threat,mapped"]
    for i in range(30):
        rows.append(
            f"P{i},{['aghdam', 'fuzuli', 'lachin'][i % 3]},{5 + i},{['housing', 'roads', 'agriculture'][i % 3]},plain,{['high', 'medium_low'][i % 2]},{str(i % 2 == 0).lower()}"
        )
    inv.write_text("\n".join(rows) + "\n")
    proc = demining("run", SMALL, "--inventory", inv, "-n", 2, "--out", tmp_path / "r", "--no-plots", "-w", 1)
    assert proc.returncode == 0, proc.stderr
    d = pd.read_parquet(next((tmp_path / "r" / "small").glob("2*")) / "districts.parquet")
    first = d[d["month"] == d["month"].min()]
    total = (first["suspected_ha"] + first["confirmed_ha"] + first["released_ha"]).sum() / 2
    assert total == pytest.approx(sum(5 + i for i in range(30)))


def test_config_show_and_schema():
    show = demining("config", "show", SMALL, "--set", "maps.map_accuracy=0.5")
    assert show.returncode == 0, show.stderr
    assert "map_accuracy = 0.5" in show.stdout
    schema = demining("config", "schema")
    assert schema.returncode == 0
    assert "ScenarioConfig" in json.loads(schema.stdout)["title"]


def test_cli_import_loads_no_plotting_and_library_keeps_the_users_backend():
    """`import sim.cli` stays fast (no matplotlib, seaborn or scipy); importing sim.plots leaves a
    notebook's backend alone; the CLI picks Agg only when the user chose none."""
    script = (
        "import sys, os, matplotlib\n"
        "import sim.cli\n"
        "heavy = [m for m in ('seaborn', 'scipy', 'matplotlib.pyplot') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "matplotlib.use('svg')\n"
        "import sim.plots\n"
        "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n"
        "sim.cli._file_backend()\n"
        "assert matplotlib.get_backend() == 'svg', 'the CLI overrode a chosen backend'\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "MPLBACKEND"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
    unchosen = "import matplotlib, sim.cli\nsim.cli._file_backend()\nprint(matplotlib.get_backend())\n"
    proc = subprocess.run([sys.executable, "-c", unchosen], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.stdout.strip().lower() == "agg", proc.stderr


def test_band_option_names_the_summary_and_targets(tmp_path):
    proc = demining("run", SMALL, "-n", 2, "--seed", 5, "--out", tmp_path, "-w", 1, "--no-plots", "--band", "10-90")
    assert proc.returncode == 0, proc.stderr
    folder = (tmp_path / "small" / "latest").resolve()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["band"] == {"low": 0.1, "high": 0.9} and {"p10", "p90"} <= set(summary["all_released"])
    assert {"simulated_p10", "simulated_p90"} <= set(pd.read_csv(folder / "targets.csv").columns)
    assert json.loads((folder / "metadata.json").read_text())["band"] == {"low": 0.1, "high": 0.9}
    assert "P10-P90" in proc.stdout


def _metadata(parent, alone=True):
    """The metadata of the latest folder under `parent`, after checking no temporary entry is left
    there (and, if `alone`, no other folder either)."""
    entries = {p.name for p in parent.iterdir()}
    assert not [e for e in entries if e.startswith(".")], f"temporary entries left in {parent}: {entries}"
    folder = (parent / "latest").resolve()
    if alone:
        assert entries == {folder.name, "latest"}
    return folder, json.loads((folder / "metadata.json").read_text())


def test_every_kind_of_folder_carries_the_same_provenance(cli_run, tmp_path):
    """run, comparison, sweep and calibration folders: metadata.json with the one provenance record."""
    _, runs_out = cli_run
    out = tmp_path / "out"
    assert (
        demining(
            "run", TEST_SCENARIOS / "small_more_machines.toml", "-n", 3, "--seed", 5, "--out", runs_out, "-w", 1, "--no-plots"
        ).returncode
        == 0
    )
    compare = demining("compare", "small", "small_more_machines", "--out", runs_out)
    assert compare.returncode == 0, compare.stderr
    sweep = demining("sweep", SMALL, "--grid", "maps.map_accuracy=0.25,0.75", "-n", 1, "--seed", 2, "--out", out, "-w", 1)
    assert sweep.returncode == 0, sweep.stderr
    calibrated = tmp_path / "calibrated.toml"
    calibrate = demining(
        "calibrate", SMALL, "-n", 1, "--max-evaluations", 1, "--rounds", 1, "--output", calibrated, "--out", out, "-w", 1
    )
    assert calibrate.returncode == 0, calibrate.stderr

    run_folder, run = _metadata(runs_out / "small", alone=False)  # other tests add runs here
    cmp_folder, comparison = _metadata(runs_out / "comparisons")
    sweep_folder, swept = _metadata(out / "small-sweep")
    cal_folder, calibration = _metadata(out / "calibration")
    records = {"run": run, "comparison": comparison, "sweep": swept, "calibration": calibration}
    for kind, meta in records.items():
        assert set(PROVENANCE_KEYS) <= set(meta), (kind, set(PROVENANCE_KEYS) - set(meta))
        assert meta["kind"] == kind
        assert meta["package_version"] == sim.__version__
        assert meta["git_revision"] == run["git_revision"] != ""
        assert meta["python_version"] == run["python_version"] and meta["numpy_version"] == run["numpy_version"]
        assert meta["band"] == {"low": 0.05, "high": 0.95}
        assert all(len(h) == 64 for h in meta["configs"].values()) and meta["configs"]
    assert run["seeds"] == [5] and swept["seeds"] == [2] and calibration["seeds"] == [0] and comparison["seeds"] == [5, 5]
    assert run["command"].startswith("demining run ") and calibration["command"].startswith("demining calibrate ")
    # Config hashes are those of the configs written beside them.
    small_hash = config_hash(sim.load_scenario(run_folder / "config.toml", environ={}))
    assert run["configs"] == {"small": small_hash}
    assert comparison["configs"]["small"] == small_hash and set(comparison["configs"]) == {"small", "small_more_machines"}
    assert swept["configs"] == {
        p.stem: config_hash(sim.load_scenario(p, environ={})) for p in (sweep_folder / "configs").glob("*.toml")
    }
    assert len(swept["configs"]) == 2
    assert calibration["configs"] == {"small": config_hash(sim.load_scenario(cal_folder / "config.toml", environ={}))}
    assert calibrated.read_text().startswith("# Fitted parameters")


def test_a_fit_in_a_batch_log_reports_progress_lines(monkeypatch):
    """Without a terminal the progress bar shows nothing: a line every 10 evaluations instead."""
    import io

    from rich.console import Console
    from rich.progress import Progress

    import sim.cli as cli

    log = io.StringIO()
    monkeypatch.setattr(cli, "err_console", Console(file=log, force_terminal=False, width=200))
    with Progress(console=cli.err_console) as bar:
        show = cli._fit_progress(bar, bar.add_task("", total=None), "fit ")
        for n in range(1, 22):
            show("agency anama", n, 1.0 / n)
    # (The bar itself prints its last state once when it stops.)
    lines = [line for line in log.getvalue().splitlines() if re.match(r"\d\d:\d\d:\d\d ", line)]
    assert len(lines) == 2
    assert lines[0].endswith("fit agency anama: evaluation 10, objective 0.1000")


def test_run_prints_the_people_hurt_by_kind(cli_run):
    """The closing line names civilians, soldiers and deminers hurt over the run, as summary.json has them."""
    proc, _ = cli_run
    text = " ".join(proc.stdout.split())
    # This run's own folder, the last thing printed (`latest` may be a later run of another test in
    # this module); the terminal may fold a long path, so whitespace is dropped.
    folder = Path("".join(proc.stdout.rsplit("Results:", 1)[1].split()))
    tot = json.loads((folder / "summary.json").read_text())["totals_at_horizon"]
    for who in ("civilian", "soldier", "deminer"):
        hurt = tot[f"{who}_killed"]["mean"] + tot[f"{who}_injured"]["mean"]
        assert f"{hurt:,.1f} {who}s" in text, (who, hurt)
    assert "people hurt: " in text
