"""The `demining` command end to end, run as a real subprocess: exit codes, messages, files."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

import sim
from sim.results import RUN_FILES

from .conftest import ROOT, SMALL


def demining(*args, env_extra=None, cwd=None):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMINING_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "sim", *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd or ROOT, timeout=600)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    proc = demining("run", SMALL, "--replications", 3, "--seed", 5, "--out", out, "--workers", 1)
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
    expected = ["replication", "month", "district", "agency", "cancelled_ha", "reduced_ha", "cleared_ha", "items_ap", "items_at",
                "items_uxo", "deminer_killed", "deminer_injured", "civilian_killed", "civilian_injured"]
    assert list(monthly.columns) == expected
    targets = pd.read_csv(folder / "targets.csv")
    assert {"target", "reported", "simulated_mean", "simulated_p5", "simulated_p95", "relative_error"} <= set(targets.columns)
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["districts"]) == set(sim.load_scenario(SMALL, environ={}).districts)
    assert "all released" in proc.stdout
    assert not list((out / "small").glob(".tmp-*")), "no temporary folder left behind"


def test_cli_tables_equal_api_tables(cli_run):
    proc, out = cli_run
    folder = (out / "small" / "latest").resolve()
    api = sim.run(sim.load_scenario(SMALL, environ={}), replications=3, seed=5)
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
        (["run", SMALL, "--set", "asset_types.machine.mttr_days=-1"], "asset_types.machine.mttr_days: Input should be greater than or equal to 0"),
        (["config", "show", SMALL, "--set", "agencies.anama.districts=['nowhere']"], "unknown district 'nowhere'"),
    ],
)
def test_bad_input_exit_2_one_line_nothing_written(tmp_path, args, message):
    out = tmp_path / "results"
    proc = demining(*args, "--out", out) if args[0] == "run" else demining(*args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists() or not any(out.rglob("*.parquet"))


def test_bad_inventory_names_row(tmp_path):
    inv = tmp_path / "inv.csv"
    inv.write_text("id,district,area_ha,land_use,terrain,threat,mapped\nA1,aghdam,12.5,housing,plain,high,true\nA2,atlantis,3,roads,plain,high,false\n")
    proc = demining("run", SMALL, "--inventory", inv, "--out", tmp_path / "r")
    assert proc.returncode == 2
    assert f"{inv}: row 3, column district: unknown district 'atlantis'" in proc.stderr


def test_inventory_run(tmp_path):
    inv = tmp_path / "inv.csv"
    rows = ["id,district,area_ha,land_use,terrain,threat,mapped"]
    for i in range(30):
        rows.append(f"P{i},{['aghdam', 'fuzuli', 'lachin'][i % 3]},{5 + i},{['housing', 'roads', 'agriculture'][i % 3]},plain,{['high', 'medium_low'][i % 2]},{str(i % 2 == 0).lower()}")
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
