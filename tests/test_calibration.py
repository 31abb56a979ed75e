"""Calibration: deterministic fits, and a reduced check that the committed fit still holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from sim.calibration import (
    PRACTICE,
    SCALE_LIMIT,
    SHORT_WINDOW_DAYS,
    apply,
    block_targets,
    calibrate,
    calibrated_toml,
    calibration_horizon_years,
    free_parameters,
    residuals,
    scale_step,
    start_values,
    weighted_objective,
    weights,
    with_ties,
)
from sim.seeds import fitted, load_targets

from .conftest import SCENARIOS, SMALL

# Fitted targets the committed fit misses by more than the general bound, with the reason
# (README, "Calibration").
KNOWN_UNMET = {
    "national_uxo_month_2024_08": "27,872 UXO in one month (a cluster-munition task); the model spreads UXO evenly over battle areas",
    "mes_items_2020_2022": "4,097 items on 100 ha: early minefield clearance denser than the national average",
    # Where the work went: the model spreads each district's work by its hazardous area (territory
    # x weight where no area is published) and the return waves; the record's 2023 work left Lachin
    # and Khojaly (outside the peacekeeping zone) almost untouched, and the mines found to 2024 sit
    # in Fuzuli at four times the model's count.
    "district_processed_lachin_2023": "1,454 ha against the model's ~9,000: Lachin's area is territory x weight, not published",
    "district_processed_khojaly_2023": "175 ha: the model works Khojaly's land outside the zone from 2020",
    "district_mines_fuzuli_2020_2024": "15,528 mines: the front line's minefields denser than one factor for every belt",
}
NATIONAL_YEARS = (2022, 2023, 2024, 2025)
# Bounds at 8 replications (seed 0), set when the fit was committed with its values then (README).
# Measured then (revision 11): objective 32.7 (32.9 with the comparators' cancelled share, added
# since); worst national year +6 % hectares (2024), +19 % items (2023), +8 % casualties (2023;
# revision 10: +34 % in 2024, before soldiers). Nine
# exceptions of revision 8 are met since high-threat land goes first (the agencies' early, dense
# item counts). Revision 10's casualty bound was 50 %; revision 9's bounds were 45, 25 %, 60 %
# and 60 %.
OBJECTIVE_BOUND = 40.0
HECTARE_BOUND = 0.15
ITEM_BOUND = 0.35
CASUALTY_BOUND = 0.25


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


def test_fitting_chosen_blocks_keeps_the_other_parameters(tmp_path):
    cfg = sim.load_scenario(SMALL, ["return_wave_share=1"], environ={})
    targets = [t for t in load_targets() if t.agency in ("anama", "all")]
    fit = calibrate(cfg, replications=1, seed=5, max_evaluations=3, rounds=1, targets=targets, blocks=["incidents"])
    start = start_values(cfg, free_parameters(cfg, targets))
    moved = {k for k in start if fit.values[k] != start[k]}
    assert moved and all(k.startswith("incidents.") for k in moved)
    # A value outside a parameter's bounds stays as the scenario has it (1, not the bound 0.99).
    assert cfg.return_wave_share == 1.0 and fit.values["return_wave_share"] == 1.0
    assert {h["block"] for h in fit.history} == {"incidents"}
    written = calibrated_toml(fit, seed=5, replications=1, scenario="small")
    assert written["calibration"]["blocks"] == "incidents"
    # What a refit of some blocks writes loads as a scenario (it once wrote a list, which did not).
    import dataclasses

    import tomli_w

    two = dataclasses.replace(fit, blocks=["practice", "incidents"])
    written = tomli_w.dumps({"extends": str(SMALL), **calibrated_toml(two, seed=5, replications=1, scenario="s")})
    (tmp_path / "s.toml").write_text(written, encoding="utf-8")
    assert sim.load_scenario(tmp_path / "s.toml", environ={}).calibration["blocks"] == "practice, incidents"
    # Every evaluation records the values it tried.
    assert all(set(h["values"]) == {k for k in start if k.startswith("incidents.")} for h in fit.history)
    with pytest.raises(ValueError, match="no parameter block nosuch; the blocks are practice, anama, incidents"):
        calibrate(cfg, replications=1, seed=5, max_evaluations=1, targets=targets, blocks=["nosuch"])


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
    # Where the work went is the practice block's (return_wave_share), not every agency's.
    assert "district_processed_jabrayil_2023" not in national
    practice = {t.id for t in block_targets(PRACTICE, fitted(load_targets()))}
    assert {"district_processed_jabrayil_2023", "district_mines_aghdam_2020_2024", "national_processed_2023"} <= practice
    every = {t.id for t in block_targets(PRACTICE, load_targets())}
    assert "district_processed_jabrayil_2025" in every  # block_targets leaves choosing to `fitted`
    assert "mod_processed_kalbajar_2023" not in every  # one agency's district figure is its block's


def _table(rows):
    """A targets table with the columns the objective reads: (metric, agency, reported, simulated) per row."""
    return pd.DataFrame(
        [
            {
                "target": f"t{i}",
                "metric": m,
                "agency": a,
                "district": None,
                "reported": r,
                "simulated_mean": s,
                "window_start": "2023-01-01",
                "window_end": "2023-12-31",
            }
            for i, (m, a, r, s) in enumerate(rows)
        ]
    )


def test_scale_step_moves_each_level_to_its_own_figures():
    cfg = sim.load_scenario(SMALL, environ={})
    params = [p for p in free_parameters(cfg, load_targets()) if p.stage in (PRACTICE, "agency anama", "agency mod")]
    x = np.array([p.to_x(p.prior) for p in params])
    table = _table(
        [
            ("items_ap", "all", 8000.0, 2000.0),  # 4 times too few AP mines
            ("items_ap", "anama", 3000.0, 750.0),
            ("items_uxo", "all", 1000.0, 10000.0),  # 10 times too many UXO
            ("processed_ha", "anama", 20000.0, 10000.0),  # ANAMA works half the hectares
            ("processed_ha", "all", 50000.0, 50000.0),  # the nation's: no agency's own figure
        ]
    )
    moved = dict(zip((p.path for p in params), scale_step(params, x, table) - x))
    ap = moved.pop("parcels.item_density_per_ha.minefield.ap")
    uxo = moved.pop("parcels.item_density_per_ha.battle_area.uxo")
    assert ap == pytest.approx(np.log(4.0), abs=0.01)
    assert uxo == pytest.approx(-np.log(10.0), abs=0.01)
    for key in ("survey_productivity", "clearance_productivity"):
        assert moved.pop(f"agencies.anama.{key}") == pytest.approx(np.log(2.0), abs=0.01)
    # No figure of their own (AT mines, the Defence Ministry's hectares) or no level to scale
    # (shares, logit parameters): they stay.
    assert all(v == 0.0 for v in moved.values()), moved
    # A step is at most a factor SCALE_LIMIT, and never past a parameter's bound.
    far = _table([("items_at", "all", 1e7, 10.0)])
    at = next(k for k, p in enumerate(params) if p.path.endswith("minefield.at"))
    assert scale_step(params, x, far)[at] - x[at] == pytest.approx(np.log(SCALE_LIMIT))
    near_bound = x.copy()
    near_bound[at] = params[at].bounds_x[1] - 0.1
    assert scale_step(params, near_bound, far)[at] == params[at].bounds_x[1]


def test_scale_steps_reach_a_lower_objective_in_a_small_budget(monkeypatch):
    """From the priors, the first simplex alone spends a small budget; scale steps first get the
    levels right (a backtest's fit: 26 evaluations per block, 9 parameters in the practice block)."""
    import sim.calibration as calibration

    cfg = sim.load_scenario(SMALL, environ={})
    targets = [t for t in load_targets() if t.agency in ("anama", "all") and not t.district]
    kwargs = dict(replications=2, seed=5, max_evaluations=6, rounds=1, targets=targets, start_from_priors=True)
    scaled = calibrate(cfg, **kwargs)
    monkeypatch.setattr(calibration, "SCALE_STEPS", 0)
    simplex_only = calibrate(cfg, **kwargs)
    assert scaled.evaluations == simplex_only.evaluations
    assert scaled.objective < 0.8 * simplex_only.objective, (scaled.objective, simplex_only.objective)


def test_ties_and_apply():
    cfg = sim.load_scenario(SMALL, environ={})
    values = with_ties({"agencies.mod.survey_productivity": 2.5}, cfg.agencies)
    assert values["agencies.tsk.survey_productivity"] == 2.5
    assert apply(cfg, values).agencies["tsk"].survey_productivity == 2.5
    assert calibration_horizon_years(cfg, load_targets()) < cfg.horizon_years


def test_short_windows_weigh_half_and_ramp_up_is_fitted_only_where_identifiable():
    table = pd.DataFrame(
        {
            "window_start": [
                "2022-04-01",
                "2025-03-10",
                "2020-11-10",
                "2023-01-01",
                "2023-01-01",
                "2023-01-01",
                "2023-01-01",
                "2020-11-10",
            ],
            "window_end": [
                "2022-04-14",
                "2025-03-16",
                "2022-04-14",
                "2023-12-31",
                "2023-12-31",
                "2023-12-31",
                "2023-12-31",
                "2023-12-31",
            ],
            "agency": ["anama", "anama", "anama", "all", "anama", "all", "all", "all"],
            "district": [None, None, None, None, None, None, "aghdam", None],
            "metric": [
                "processed_ha",
                "items_ap",
                "processed_ha",
                "processed_ha",
                "processed_ha",
                "victims_total",
                "processed_ha",
                "cancelled_share",
            ],
        }
    )
    # Short windows half; the national yearly series (every district, not casualties) four times;
    # the rest, a district's year and the comparators' cancelled share among them, 1.
    assert weights(table).tolist() == [0.5, 0.5, 1.0, 4.0, 1.0, 1.0, 1.0, 1.0]
    cfg = sim.load_scenario(SCENARIOS / "baseline.toml", environ={})
    paths = [p.path for p in free_parameters(cfg, load_targets())]
    ramped = {p.split(".")[1] for p in paths if p.startswith("agencies.") and p.endswith("initial_productivity_share")}
    # Two reported periods of hectares and a ramp in the config: ANAMA, Defence, Border Service.
    # The Emergencies Ministry reports one period; the Russian centre has no ramp.
    assert ramped == {"anama", "mod", "sbs"}
    # New crews' starting pace is fitted where they have a ramp, in the practice block.
    assert "new_assets.initial_productivity_share" in paths
    no_ramp = sim.load_scenario(SCENARIOS / "baseline.toml", ["new_assets.ramp_up_years=0"], environ={})
    assert "new_assets.initial_productivity_share" not in [p.path for p in free_parameters(no_ramp, load_targets())]
    # Soldiers' exposure is fitted only where the military casualties are: the totals alone cannot
    # tell soldiers from civilians.
    soldiers = {
        "incidents.soldier_exposure_rate_per_item_month",
        "incidents.soldier_awareness_half_life_years",
        "incidents.soldier_awareness_floor",
    }
    assert soldiers <= set(paths)
    totals_only = [t.model_copy(update={"use": "check"}) if t.metric == "victims_military" else t for t in load_targets()]
    assert not soldiers & {p.path for p in free_parameters(cfg, totals_only)}


def test_committed_fit_reduced_check():
    """Fewer replications and wider bounds than the README's 20-replication table, so a
    regression in the model's rates or practice fails CI."""
    cfg = sim.load_scenario(SCENARIOS / "baseline.toml", environ={})
    targets = load_targets()  # the fitted figures and those only compared
    cfg = cfg.model_copy(update={"horizon_years": calibration_horizon_years(cfg, targets)})
    result = sim.run(cfg, replications=8, seed=0, workers=2, targets=targets)
    table = result.targets.set_index("target")
    fit_rows = result.targets[result.targets["use"] == "fit"]
    objective = weighted_objective(fit_rows)
    assert objective < OBJECTIVE_BOUND, objective
    error = table["relative_error"]
    # The national record the agencies publish: processed hectares (never cancellation) per year,
    # items per year in total, and casualties per year.
    for year in NATIONAL_YEARS:
        assert abs(error[f"national_processed_{year}"]) <= HECTARE_BOUND, (year, table.loc[f"national_processed_{year}"])
        ids = [f"national_{k}_{year}" for k in ("ap", "at", "uxo")]
        items = table.loc[ids, "simulated_mean"].sum() / table.loc[ids, "reported"].sum() - 1
        assert abs(items) <= ITEM_BOUND, (year, items)
        assert abs(error[f"victims_in_{year}"]) <= CASUALTY_BOUND, (year, error[f"victims_in_{year}"])
    for target, row in table[table["use"] == "fit"].iterrows():
        if target in KNOWN_UNMET:
            continue
        # Within a factor of about 3.3 (7 for windows of a week or two, where a few task steps
        # decide the count): a regression in rates moves the multi-month totals by much more.
        short = (pd.Timestamp(row["window_end"]) - pd.Timestamp(row["window_start"])).days <= SHORT_WINDOW_DAYS
        resid = residuals(row.to_frame().T.reset_index(names="target"))[0]
        assert abs(resid) <= (2.0 if short else 1.2), (target, row["reported"], row["simulated_mean"])
