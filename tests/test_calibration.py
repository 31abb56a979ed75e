"""Calibration: deterministic fits, and a reduced check that the committed fit still holds."""

from __future__ import annotations

import numpy as np
import pandas as pd

import sim
from sim.calibration import (
    SHORT_WINDOW_DAYS,
    apply,
    block_targets,
    calibrate,
    calibration_horizon_years,
    free_parameters,
    residuals,
    start_values,
    weights,
    with_ties,
)
from sim.seeds import fitted, load_targets

from .conftest import SCENARIOS, SMALL

# Targets the committed fit does not meet, with the reason (README, "Calibration").
KNOWN_UNMET = {
    "imac_items_2020_2021": "24,000 items in 12 weeks by ~100 experts is far beyond any other agency's rate per deminer",
    "imac_houses_2020_2021": "roads first leaves no time for housing within 12 weeks; houses and roads compete",
}


def test_calibration_is_deterministic():
    cfg = sim.load_scenario(SMALL, environ={})
    targets = [t for t in load_targets() if t.agency in ("anama", "all")]
    a = calibrate(cfg, replications=2, seed=5, max_evaluations=3, rounds=1, targets=targets)
    b = calibrate(cfg, replications=2, seed=5, max_evaluations=3, rounds=1, targets=targets)
    assert a.values == b.values
    assert a.objective == b.objective
    assert a.evaluations == b.evaluations > 0
    # It moved something: a fit that returns where it started tests nothing.
    start = start_values(cfg, free_parameters(cfg, targets))
    assert any(a.values[k] != start[k] for k in start)


def test_fit_starts_from_the_scenario_and_agency_blocks_see_national_hectares():
    cfg = sim.load_scenario(SMALL, ["land_release.survey_cancellation=0.3"], environ={})
    params = free_parameters(cfg, load_targets())
    start = start_values(cfg, params)
    assert start["land_release.survey_cancellation"] == 0.3
    # The Emergencies Ministry reports hectares for one period only: its ramp-up is not fitted.
    assert "agencies.mes.initial_productivity_share" not in start
    # Every agency block also sees the national hectares its pace moves.
    national = {t.id for t in block_targets("agency anama", load_targets())}
    assert "national_processed_2023" in national and "anama_processed_2023" in national


def test_ties_and_apply():
    cfg = sim.load_scenario(SMALL, environ={})
    values = with_ties({"agencies.mod.survey_productivity": 2.5}, cfg.agencies)
    assert values["agencies.tsk.survey_productivity"] == 2.5
    assert apply(cfg, values).agencies["tsk"].survey_productivity == 2.5
    assert calibration_horizon_years(cfg, load_targets()) < cfg.horizon_years


def test_short_windows_weigh_half_and_ramp_up_is_fitted_only_where_identifiable():
    table = pd.DataFrame(
        {"window_start": ["2022-04-01", "2025-03-10", "2020-11-10"], "window_end": ["2022-04-14", "2025-03-16", "2022-04-14"]}
    )
    assert weights(table).tolist() == [0.5, 0.5, 1.0]
    cfg = sim.load_scenario(SCENARIOS / "baseline.toml", environ={})
    ramped = {p.path.split(".")[1] for p in free_parameters(cfg, load_targets()) if p.path.endswith("initial_productivity_share")}
    # Two reported periods of hectares and a ramp in the config: ANAMA, Defence, Border Service.
    # The Emergencies Ministry reports one period; the Russian centre has no ramp.
    assert ramped == {"anama", "mod", "sbs"}


def test_committed_fit_reduced_check():
    """Fewer replications and a wider tolerance than the README's 50-replication table, so a
    regression in the model's rates fails CI."""
    cfg = sim.load_scenario(SCENARIOS / "baseline.toml", environ={})
    targets = fitted(load_targets())
    cfg = cfg.model_copy(update={"horizon_years": calibration_horizon_years(cfg, targets)})
    result = sim.run(cfg, replications=8, seed=0, workers=2, targets=targets)
    table = result.targets.set_index("target")
    r = residuals(result.targets)
    # 55 at this seed when the fit was committed (54 at 50 replications).
    assert float(np.sum(r**2)) < 70.0, table[["reported", "simulated_mean"]]
    for (target, row), resid in zip(table.iterrows(), r):
        if target in KNOWN_UNMET:
            continue
        if row["metric"].startswith("victims") and not row["metric"].endswith("share"):
            assert abs(row["relative_error"]) <= 0.20, (target, row["reported"], row["simulated_mean"])
        else:
            # Within a factor of about 2.7 (7 for windows of a week or two, where a few task steps
            # decide the count; the worst was 5.5, anti-tank mines in July 2022): a regression in
            # rates moves the multi-month totals by much more.
            short = (pd.Timestamp(row["window_end"]) - pd.Timestamp(row["window_start"])).days <= SHORT_WINDOW_DAYS
            assert abs(resid) <= (2.0 if short else 1.0), (target, row["reported"], row["simulated_mean"])
