"""One uncertainty band convention (sim.bands) in the summary, targets, released area, comparisons
and sweeps, with names that follow the band."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.bands import BAND, Band, parse_band
from sim.compare import LoadedRun, comparison_table, district_completion_table, district_table, from_result, markdown_table
from sim.errors import UserError


def test_parse_band_and_names():
    assert parse_band("10-90") == Band(0.1, 0.9)
    assert (parse_band("2.5-97.5").low_name, parse_band("2.5-97.5").high_name) == ("p2.5", "p97.5")
    assert (BAND.low_name, BAND.high_name, BAND.label) == ("p5", "p95", "5-95 %")
    for bad in ("95-5", "5", "a-b", "0-100", "50-90"):
        with pytest.raises(UserError, match="--band"):
            parse_band(bad)


@pytest.fixture(scope="module")
def narrow_run(small_cfg):
    """The session's small run (seed 11, 4 replications) again, summarised with a 10-90 band."""
    return sim.run(small_cfg, replications=4, seed=11, band=Band(0.1, 0.9))


def test_default_band_is_used_by_summary_targets_and_released(small_run):
    s = small_run.summary
    assert s["band"] == {"low": 0.05, "high": 0.95}
    assert {"p5", "p50", "p95"} <= set(s["all_released"])
    assert {"mean", "p5", "p95"} == set(s["totals_at_horizon"]["released_ha"])
    assert {"simulated_p5", "simulated_p95"} <= set(small_run.targets.columns)


def test_another_band_changes_names_and_narrows_the_band(small_run, narrow_run):
    s = narrow_run.summary
    assert s["band"] == {"low": 0.1, "high": 0.9}
    assert {"p10", "p50", "p90"} <= set(s["all_released"]) and "p5" not in s["all_released"]
    assert {"mean", "p10", "p90"} == set(s["totals_at_horizon"]["released_ha"])
    assert {"simulated_p10", "simulated_p90"} <= set(narrow_run.targets.columns)
    assert "simulated_p5" not in narrow_run.targets.columns
    # Same replications, so the same medians, and the 10-90 band lies within the 5-95 one.
    wide, narrow = small_run.released, narrow_run.released
    np.testing.assert_array_equal(wide["median"], narrow["median"])
    assert (narrow["low"] >= wide["low"] - 1e-9).all() and (narrow["high"] <= wide["high"] + 1e-9).all()
    assert ((narrow["high"] - narrow["low"]) < (wide["high"] - wide["low"]) - 1e-9).any()


def _loaded(result, name: str) -> LoadedRun:
    return from_result(result, name)


def test_comparison_columns_and_labels_follow_the_band(small_run):
    runs = [_loaded(small_run, "a"), _loaded(small_run, "b")]
    default = comparison_table(runs)
    assert {"all_released_p5", "all_released_p95", "released_ha_by_2030_diff_p5"} <= set(default.columns)
    narrow = comparison_table(runs, Band(0.1, 0.9))
    assert {"all_released_p10", "all_released_p90", "released_ha_by_2030_diff_p90"} <= set(narrow.columns)
    assert not any(c.endswith("_p5") for c in narrow.columns)
    assert "(10-90 %)" in markdown_table(narrow, Band(0.1, 0.9))
    assert {"p10", "p90"} <= set(district_completion_table(runs, Band(0.1, 0.9)).columns)
    assert {"all_released_p10", "released_90pct_diff_months_p90"} <= set(district_table(runs, Band(0.1, 0.9)).columns)
