"""The model's outputs, held fixed: refactorings must keep every number bit for bit.

A change that alters numbers on purpose refreshes `tests/golden/model_outputs.json` with
`tests/golden/refresh.py` in its own commit, saying why."""

from __future__ import annotations

import json

import pytest

from .golden.refresh import CASES, GOLDEN, case_outputs

EXPECTED = json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("name, scenario, overrides, seed, index", CASES, ids=[c[0] for c in CASES])
def test_model_outputs_unchanged(name, scenario, overrides, seed, index):
    assert case_outputs(scenario, overrides, seed, index) == EXPECTED[name]


def test_every_case_has_a_golden_record():
    assert sorted(k for k in EXPECTED if k != "model_revision") == sorted(c[0] for c in CASES)


def test_golden_records_belong_to_this_model_revision():
    """The refresh script refuses new numbers under an unchanged revision, and runs started by
    another revision cannot be resumed: the revision says which numbers a run was made with."""
    from sim.model import MODEL_REVISION

    assert EXPECTED["model_revision"] == MODEL_REVISION
