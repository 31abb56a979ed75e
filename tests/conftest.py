"""Shared fixtures: a small scenario run once per session (seeded), and paths."""

from __future__ import annotations

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
