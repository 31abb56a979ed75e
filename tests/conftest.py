"""Shared fixtures: a small scenario run once per session (seeded), paths, and running `demining`."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import sim
from sim.assets import compile_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
TEST_SCENARIOS = Path(__file__).resolve().parent / "scenarios"
SMALL = TEST_SCENARIOS / "small.toml"


@pytest.fixture(scope="session")
def small_cfg():
    return sim.load_scenario(SMALL, environ={})


@pytest.fixture(scope="session")
def small_compiled(small_cfg):
    return compile_scenario(small_cfg)


@pytest.fixture(scope="session")
def small_run(small_cfg):
    return sim.run(small_cfg, replications=4, seed=11)


@dataclass
class Outcome:
    """What a `demining` command left behind: exit code and the text it wrote."""

    returncode: int
    stdout: str
    stderr: str


def demining(*args, env_extra: dict | None = None, cwd: Path | None = None) -> Outcome:
    """Run `demining ARGS` in this process through the real entry point (`sim.cli.main`), with the
    process's DEMINING_* variables replaced by `env_extra` and the working folder set to `cwd`
    (default: the repository). Starting a new interpreter for every command made the suite slow;
    `demining_process` still does, for the few tests that need a real process."""
    from sim.cli import main

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        for key in [k for k in os.environ if k.startswith("DEMINING_")]:
            del os.environ[key]
        os.environ.update(env_extra or {})
        os.chdir(cwd or ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return Outcome(code, out.getvalue(), err.getvalue())


def demining_process(*args, env_extra: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `demining ARGS` as a real subprocess (`python -m sim`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMINING_")}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "sim", *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd or ROOT, timeout=600
    )


def counting_pasts(monkeypatch) -> list:
    """Every past judged from now on, recorded (sim.ensemble's `judge_past`)."""
    from sim import conditioning, ensemble

    judged = []

    def judge_past(*args):
        judged.append(conditioning.judge_past(*args))
        return judged[-1]

    monkeypatch.setattr(ensemble, "judge_past", judge_past)
    return judged


def assert_same_tables(a: Path, b: Path) -> None:
    """Two published run folders hold the same tables."""
    import pandas as pd

    for name in ("monthly.parquet", "districts.parquet", "incidents.parquet", "completion.parquet", "replications.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(a / name), pd.read_parquet(b / name))
    pd.testing.assert_frame_equal(pd.read_csv(a / "targets.csv"), pd.read_csv(b / "targets.csv"))


def assert_resume_reuses_the_kept_verdicts(out: Path, whole: Path, monkeypatch) -> tuple[dict[int, dict], set[int]]:
    """After a conditioned run of the small scenario under `out` was stopped: its verdicts are in one
    cache file, written whole (no temporary file left), that holds every replication kept as a part
    as accepted; `demining run --resume` on one worker reuses every verdict decided but not kept as
    a part, judges the past of only the attempts not decided, and gives the tally and tables of
    `whole` (the published folder of the same run, not stopped). The verdicts kept, by attempt, and
    the attempts kept as parts."""
    import json

    from sim.verdicts import FOLDER

    files = list((out / FOLDER).glob("[0-9a-f]*.json"))
    assert len(files) == 1 and not list((out / FOLDER).glob(".*"))
    kept = {int(j): v for j, v in json.loads(files[0].read_text())["verdicts"].items()}
    (partial,) = (out / "small").glob(".partial-*")
    parts = {int(p.stem.split("-")[1]) for p in partial.glob("parts/scalars-*.json")}  # numbered by attempt
    assert parts <= {j for j, v in kept.items() if v["accepted"]}  # every kept replication was decided
    judged = counting_pasts(monkeypatch)
    resumed = demining("run", "--resume", partial, "-w", 1)
    assert resumed.returncode == 0, resumed.stderr
    final = (out / "small" / "latest").resolve()
    tally = json.loads((final / "summary.json").read_text())["conditioning"]
    reused = len(set(kept) - parts)  # decided before the stop, not kept as parts
    assert tally["verdicts_reused"] == reused
    assert set(kept) <= set(range(tally["attempts"]))
    assert len(judged) == tally["attempts"] - len(kept)  # only the attempts after the stop judged
    assert tally == json.loads((whole / "summary.json").read_text())["conditioning"] | {"verdicts_reused": reused}
    assert_same_tables(final, whole)
    return kept, parts
