"""The built wheel carries the seed data, and the package runs from it outside the source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from .conftest import ROOT, SMALL


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built from a copy of the sources, offline (the test extras bring setuptools and wheel),
    so nothing is written into the working tree."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("sim", "seeds"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (path,) = out.glob("demining_sim-*.whl")
    return path


def test_wheel_ships_every_seeds_file_unchanged(wheel):
    with zipfile.ZipFile(wheel) as whl:
        shipped = {name for name in whl.namelist() if name.startswith("sim/_seeds/")}
        canonical = sorted(p.name for p in (ROOT / "seeds").glob("*.csv"))
        assert {"targets.csv", "inputs.csv"} <= set(canonical)
        assert shipped == {f"sim/_seeds/{name}" for name in canonical}
        for name in canonical:
            assert whl.read(f"sim/_seeds/{name}") == (ROOT / "seeds" / name).read_bytes()


def test_unpacked_wheel_runs_a_replication_from_another_folder(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as whl:
        whl.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import sim\n"
        "from importlib import resources\n"
        "from sim.seeds import seeds_dir, load_targets, load_inputs\n"
        f"assert sim.__file__.startswith({str(site)!r}), sim.__file__\n"
        "assert seeds_dir() == resources.files('sim') / '_seeds', seeds_dir()\n"
        "assert (resources.files('sim') / '_seeds' / 'targets.csv').is_file()\n"
        "assert (resources.files('sim') / '_seeds' / 'inputs.csv').is_file()\n"
        f"cfg = sim.load_scenario({str(SMALL)!r}, ['horizon_years=1', 'parcels.area_scale=0.001'], environ={{}})\n"
        "result = sim.run(cfg, replications=1, seed=1, workers=1)\n"
        "print(len(load_targets()), len(load_inputs()), len(result.targets))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMINING_")}
    env["PYTHONPATH"] = str(site)  # ahead of the editable install of the working tree
    proc = subprocess.run([sys.executable, "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    targets, inputs, table_rows = map(int, proc.stdout.split())
    assert targets == table_rows > 0 and inputs > 0
