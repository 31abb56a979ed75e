"""Adding a stage is one class and one registry entry (tests/extension/surface_search.py) plus
TOML (tests/scenarios/small_surface_search.toml): shown by running it.

The stage must be registered before the scenario schema is built, so it runs in a fresh
interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT


@pytest.fixture(scope="module")
def checks():
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests/extension/run_surface_search.py"), "3"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_new_stage_is_registered_after_the_built_in_ones(checks):
    # Appended: the built-in stages keep their indices, so logs and fits stay comparable.
    assert checks["stages"][:6] == [
        "non_technical_survey",
        "technical_survey",
        "clearance",
        "follow_up",
        "quality_control",
        "remote_survey",
    ]
    assert checks["stages"][6] == "surface_search"


def test_the_new_stage_works_and_finds_only_surface_ordnance(checks):
    assert checks["search_steps"] > 20
    ap, at, uxo = checks["search_found"]
    assert ap == 0 and at == 0 and uxo > 100


def test_items_and_area_are_conserved_with_the_new_stage(checks):
    # Every item is found or still somewhere on the parcels (hidden, awaiting follow-up, residual).
    for initial, found, left in zip(checks["initial_items"], checks["found_items"], checks["items_left"]):
        assert found + left == initial
    assert checks["area_error_ha"] < 1e-6
    assert checks["stock_vs_parcels_error_ha"] < 1e-6
    assert checks["handed_over"] > 0


def test_the_new_stage_runs_in_sequence_before_clearance(checks):
    assert checks["out_of_order_parcels"] == 0


def test_registering_after_the_schema_is_built_is_refused():
    import sim.config  # noqa: F401  (builds the schema)
    from sim.stages import Stage, register

    class Late(Stage):
        key = "late"
        rate_field = "late_rate_m2_per_day"

    with pytest.raises(RuntimeError, match="before sim.config is imported"):
        register(Late, after="technical_survey")


def test_stage_code_uses_the_config_map_state_order():
    from sim.config import MAP_STATES
    from sim.stages import MAP_CORRECT

    assert MAP_STATES[MAP_CORRECT] == "correct"
