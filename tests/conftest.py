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
