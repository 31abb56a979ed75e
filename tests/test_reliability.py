"""Results are never lost or mixed: interrupted runs resume to identical tables; checks re-run.
The runs that are killed or interrupted are real processes; the others run in-process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from .conftest import ROOT, SMALL, assert_resume_reuses_the_kept_verdicts, assert_same_tables, demining

BIGGER = ["--set", "parcels.area_scale=0.05"]  # slow enough to interrupt mid-ensemble (~0.17 s a replication on one worker)


def _wait_for_parts(parent, at_least, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        parts = list(parent.glob(".partial-*/parts/scalars-*.json"))
        if len(parts) >= at_least:
            return parts
        if proc.poll() is not None:
            pytest.fail(f"run ended before it could be interrupted: {proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail("no replication finished in time")


def _start(out, *extra, replications=10):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMINING_")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sim",
            "run",
            str(SMALL),
            "-n",
            str(replications),
            "--seed",
            "4",
            "--out",
            str(out),
            "--no-plots",
            *BIGGER,
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_from_a_terminal_below_the_tests_priority,
    )


def _as_from_a_terminal_below_the_tests_priority():
    # A suite started as a background job inherits SIGINT ignored, and Python then installs no
    # KeyboardInterrupt handler; a user's terminal gives the run the default disposition.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # The run and its workers below the test's priority: on a loaded machine the test must still
    # see the first parts and signal the run while most of it is to do (once, the whole run ended
    # between the second part and the SIGTERM).
    os.nice(10)


def finished_run(out, *args):
    """Run the small scenario to the end with `args`; its published folder."""
    proc = demining("run", SMALL, *args, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return (out / "small" / "latest").resolve()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return finished_run(tmp_path_factory.mktemp("whole"), "-n", 10, "--seed", 4, "--no-plots", "-w", 2, *BIGGER)


def test_sigkill_then_resume_gives_identical_tables(tmp_path, uninterrupted):
    proc = _start(tmp_path, "-w", "1")
    _wait_for_parts(tmp_path / "small", 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = next((tmp_path / "small").glob(".partial-*"))
    assert not (tmp_path / "small" / "latest").exists(), "a killed run is never published"
    done_before = len(list(partial.glob("parts/scalars-*.json")))
    assert 3 <= done_before < 10
    resumed = demining("run", "--resume", partial, "-w", 2)
    assert resumed.returncode == 0, resumed.stderr
    final = (tmp_path / "small" / "latest").resolve()
    assert not partial.exists()
    assert_same_tables(final, uninterrupted)


def test_ctrl_c_exits_130_and_keeps_finished_replications(tmp_path):
    # 30 replications: many are still to run when the signal lands.
    proc = _start(tmp_path, "-w", "2", replications=30)
    _wait_for_parts(tmp_path / "small", 2, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "demining run --resume" in stderr
    assert "Traceback" not in stderr
    partial = next((tmp_path / "small").glob(".partial-*"))
    assert len(list(partial.glob("parts/scalars-*.json"))) >= 2


def test_ctrl_c_keeps_the_verdicts_decided_and_the_resume_reuses_them(tmp_path, uninterrupted, monkeypatch):
    # A conditioned run (the default) stopped by a real Ctrl-C keeps the verdict of every attempt it
    # had decided (sim.verdicts, written as it stops); the resume decides those again from the cache.
    # tests/test_verdicts.py stops one at a set point (the second kept replication being written).
    proc = _start(tmp_path, "-w", "1")
    # At the first part, not the third: once (2026-11-27, a loaded machine) the seven replications
    # left after the third ran out before the signal was handled.
    _wait_for_parts(tmp_path / "small", 1, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "demining run --resume" in stderr and "Traceback" not in stderr
    assert_resume_reuses_the_kept_verdicts(tmp_path, uninterrupted, monkeypatch)


def test_check_confirms_and_detects_tampering(uninterrupted, tmp_path):
    ok = demining("run", "--check", uninterrupted)
    assert ok.returncode == 0, ok.stderr
    assert "matches" in ok.stdout
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(uninterrupted, copy)
    stored = pd.read_parquet(copy / "districts.parquet")
    stored.loc[0, "released_ha"] += 1.0
    stored.to_parquet(copy / "districts.parquet", index=False)
    bad = demining("run", "--check", copy)
    assert bad.returncode == 1
    assert "districts.parquet differs for replication 0" in bad.stderr


def test_metadata_records_hashes(uninterrupted):
    import json

    from sim.results import config_hash
    from sim.scenario import load_scenario

    meta = json.loads((uninterrupted / "metadata.json").read_text())
    assert meta["config_sha256"] == config_hash(load_scenario(uninterrupted / "config.toml", environ={}))
    assert meta["inventory"] is None and meta["inventory_sha256"] is None
    assert meta["replications"] == 10 and meta["seed"] == 4


def test_config_hash_is_equal_for_equal_configs_and_differs_for_a_changed_value(uninterrupted):
    from sim.results import config_hash
    from sim.scenario import load_scenario

    scenario = load_scenario(SMALL, BIGGER[1:], environ={})
    written = load_scenario(uninterrupted / "config.toml", environ={})  # the same config, through TOML
    assert scenario is not written and config_hash(scenario) == config_hash(written)
    assert config_hash(load_scenario(SMALL, BIGGER[1:], environ={})) == config_hash(scenario)
    changed = load_scenario(SMALL, [*BIGGER[1:], "maps.map_accuracy=0.26"], environ={})
    assert config_hash(changed) != config_hash(scenario)
    deep = load_scenario(SMALL, [*BIGGER[1:], "agencies.anama.clearance_productivity=1.0001"], environ={})
    assert config_hash(deep) != config_hash(scenario)


def test_resume_refuses_what_is_not_an_unfinished_run(uninterrupted):
    proc = demining("run", "--resume", uninterrupted)
    assert proc.returncode == 2
    assert "already complete" in proc.stderr
    proc = demining("run", "--resume", ROOT / "tests")
    assert proc.returncode == 2
    assert "not an unfinished run" in proc.stderr
