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
    assert sorted(EXPECTED) == sorted(c[0] for c in CASES)
