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


REFUSALS = r"""
import json
import sim.stages as S

class Side(S.Stage):
    key, rate_field, in_sequence = "side", "side_rate_m2_per_day", False

class Step(S.Stage):
    key, rate_field = "step", "step_rate_m2_per_day"

class Again(S.Stage):
    key, rate_field = "clearance", "other_rate_m2_per_day"

before = ([s.key for s in S.REGISTRY], list(S.SEQUENCE))
out = {}
for name, stage, after in (("side_with_after", Side, "technical_survey"), ("step_without_after", Step, None),
                           ("unknown_after", Step, "nope"), ("after_a_side_stage", Step, "follow_up"),
                           ("duplicate_key", Again, "technical_survey")):
    try:
        S.register(stage, after=after)
        out[name] = "accepted"
    except ValueError as exc:
        out[name] = str(exc)
out["unchanged"] = ([s.key for s in S.REGISTRY], list(S.SEQUENCE)) == before
print(json.dumps(out))
"""


def test_a_refused_registration_leaves_the_registry_as_it_was():
    proc = subprocess.run([sys.executable, "-c", REFUSALS], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert "give no after" in out["side_with_after"]
    assert "say after which stage" in out["step_without_after"]
    assert "'nope' is not a stage of the sequence" in out["unknown_after"]
    assert "'follow_up' is not a stage of the sequence" in out["after_a_side_stage"]
    assert "already registered" in out["duplicate_key"]
    assert out["unchanged"] is True
