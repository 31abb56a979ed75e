"""Reported figures are compared with the model quantity they count: like with like."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest

import sim
from sim.metrics import Context, target_values
from sim.seeds import fitted, load_targets


def test_national_cleared_hectares_compare_with_processed_land_not_release():
    """Azerbaijan's agencies report land physically processed (technical survey and clearance,
    battle-area clearance included) and publish no cancellation: those rows use processed_ha."""
    targets = load_targets()
    national = [t for t in targets if t.id.startswith("national_processed_")]
    yearly = [t for t in national if "week" not in t.id and "month" not in t.id]
    assert len(yearly) == 5  # 2022-2025 and the cumulative headline
    assert all(t.metric == "processed_ha" for t in national)
    # ANAMA's weekly and monthly reports sum all operators: compared with the whole sector, not ANAMA.
    reports = [t for t in targets if "week" in t.id or "month" in t.id]
    assert len(reports) >= 8
    assert all(t.agency == "all" for t in reports)
    # The whole record is fitted; compared only: the cumulative headline (the sum of the yearly
    # rows), the district figures (held out to check where the work went), the mines of 2020-2021
    # and the months around the zone's opening (README, Calibration: fitted, they left the
    # backtest no closer).
    checked = {t.id for t in targets if t.use == "check"}
    national_checked = {i for i in checked if not next(t for t in targets if t.id == i).district}
    early_mines = {"national_mines_2020", "national_ap_2020_2021", "national_at_2020_2021"}
    months = {i for i in national_checked if "_month_2022_12" in i or "_month_2023_" in i or "_month_2024_03" in i}
    assert len(months) == 24
    assert national_checked == {"national_processed_2020_2025"} | early_mines | months
    assert not checked & {"national_ap_2023", "national_at_2023", "national_processed_month_2024_08"}

    # Casualties by who was hurt: the record's military (soldiers and military deminers) apart from civilians.
    by_who = {t.id: t.metric for t in targets if t.id.startswith(("civilians_", "military_"))}
    assert by_who == {
        "civilians_2020_2021": "victims_civilian",
        "civilians_2020_2023_09": "victims_civilian",
        "military_2020_2021": "victims_military",
        "military_2020_2023_09": "victims_military",
    }
    # No area target compares with IMAS release (cancellation included): none is published.
    assert not [t.id for t in targets if t.metric == "released_ha"]
    # Each row names its source.
    assert all(t.source for t in targets)


def test_early_mines_add_up_with_the_reviews_totals():
    """The 2020-2021 mine rows are derived from the State Statistics Committee's review: its
    anti-personnel and anti-tank totals to the end of 2024 less the national yearly rows; the
    review's yearly mines for 2020 and 2021 sum to the same."""
    value = {t.id: t.value for t in load_targets()}
    years = (2022, 2023, 2024)
    assert value["national_ap_2020_2021"] + sum(value[f"national_ap_{y}"] for y in years) == 35_338
    assert value["national_at_2020_2021"] + sum(value[f"national_at_{y}"] for y in years) == 21_122
    assert value["national_ap_2020_2021"] + value["national_at_2020_2021"] == value["national_mines_2020"] + 19_561


def test_district_targets_count_only_their_district(small_cfg, small_compiled):
    from sim.ensemble import replication_seeds, simulate

    targets = [t for t in load_targets() if t.id.startswith("district_processed_")]
    windows = {(t.window_start, t.window_end) for t in targets}
    assert len(windows) == 4  # to April 2023, 2023, Aghdam to June 2025, 2025
    whole = [t.model_copy(update={"id": t.id + "_all", "district": None}) for t in targets]
    ctx = Context.build(small_cfg, small_compiled, targets + whole)
    values = target_values(ctx, simulate(small_compiled, small_cfg, replication_seeds(4, 1)[0]))
    assert 0 < values["district_processed_aghdam_2023_04"] < values["district_processed_aghdam_2023_04_all"]
    for window in windows:
        # Within one window the districts together are part of the whole, never more; with every
        # district named (2025), exactly the whole.
        same = [t for t in targets if (t.window_start, t.window_end) == window]
        by_district = sum(values[t.id] for t in same)
        national = values[same[0].id + "_all"]
        assert 0 < by_district <= national + 1e-9
        if len({t.district for t in same}) == len(small_cfg.districts):
            assert by_district == pytest.approx(national, rel=1e-9)


def test_processed_ha_is_reduced_plus_cleared_and_excludes_cancellation(small_cfg, small_compiled):
    from sim.ensemble import replication_seeds, simulate

    targets = [t for t in load_targets() if t.id in ("national_processed_2022", "national_processed_2023")]
    ctx = Context.build(small_cfg, small_compiled, targets)
    res = simulate(small_compiled, small_cfg, replication_seeds(11, 1)[0])
    values = target_values(ctx, res)
    # Independently, from the monthly table (steps counted in the month they end; whole years
    # agree up to steps spanning New Year, which the targets spread over their duration).
    monthly = sim.run(small_cfg, replications=1, seed=11).monthly
    for target in targets:
        year = monthly[monthly["month"].dt.year == target.window_end.year]
        processed = float((year["reduced_ha"] + year["cleared_ha"]).sum())
        released = float((year["cancelled_ha"] + year["reduced_ha"] + year["cleared_ha"]).sum())
        assert values[target.id] == pytest.approx(processed, rel=0.15)
        assert released > 1.5 * processed, "cancellation dominates release in the model today"


def test_over_the_whole_run_processed_is_exactly_the_national_agencies_reduced_plus_cleared(small_cfg, small_compiled):
    """Over a window holding every step, the national target quantities equal the national
    agencies' monthly flows exactly: processed_ha is reduced + cleared, released_ha adds
    cancellation; the peacekeepers' centre, which reported its own figures, is left out."""
    from sim.ensemble import replication_seeds, simulate
    from sim.seeds import Target

    whole = {"agency": "all", "unit": "ha", "window_start": small_cfg.start_date, "window_end": small_cfg.end_date,
             "source": "test", "value": 1.0}  # fmt: skip
    share = {**whole, "unit": "share", "value": 0.3}
    targets = [
        Target(id="p", metric="processed_ha", **whole),
        Target(id="r", metric="released_ha", **whole),
        Target(id="s", metric="cancelled_share", **share),
    ]
    ctx = Context.build(small_cfg, small_compiled, targets)
    assert "imac" in small_cfg.agencies and "imac" not in ctx.national_agency_keys
    values = target_values(ctx, simulate(small_compiled, small_cfg, replication_seeds(11, 1)[0]))
    run = sim.run(small_cfg, replications=1, seed=11)
    monthly = run.monthly
    peacekeepers = monthly["agency"] == "imac"
    flows = monthly.loc[~peacekeepers, ["cancelled_ha", "reduced_ha", "cleared_ha"]].sum()
    assert values["p"] == pytest.approx(flows["reduced_ha"] + flows["cleared_ha"], rel=1e-9)
    assert values["r"] - values["p"] == pytest.approx(flows["cancelled_ha"], rel=1e-9)
    # The comparators' prior compares with the share of that release survey cancelled.
    assert values["s"] == pytest.approx(flows["cancelled_ha"] / flows.sum(), rel=1e-9)
    assert flows["cancelled_ha"] > 0 and flows["reduced_ha"] > 0 and flows["cleared_ha"] > 0
    assert monthly.loc[peacekeepers, "cleared_ha"].sum() > 0, "the peacekeepers worked, so leaving them out is tested"
    # The yearly table the backtest's fan chart reads counts the same land.
    assert run.per_year["processed_ha"].sum() == pytest.approx(flows["reduced_ha"] + flows["cleared_ha"], rel=1e-9)
    assert run.per_year["national_items_uxo"].sum() < run.per_year["items_uxo"].sum()


def test_calibration_fits_only_rows_marked_fit():
    targets = load_targets()
    fit = fitted(targets)
    assert 0 < len(fit) < len(targets)
    assert {t.use for t in fit} == {"fit"}


def test_targets_table_says_how_each_row_is_used(small_run):
    table = small_run.targets
    assert set(table["use"]) == {"fit", "check"}
    checked = table[table["use"] == "check"]
    assert np.isfinite(checked["simulated_mean"]).all()
    assert pd.api.types.is_numeric_dtype(checked["reported"])


def test_casualties_by_who_was_hurt_add_up_to_the_total():
    """The record splits casualties into civilians and military: `victims_civilian` counts the
    model's civilians, `victims_military` its soldiers and operators' staff, and the two make the total."""
    from sim.assets import compile_scenario
    from sim.ensemble import replication_seeds, simulate
    from sim.recording import INCIDENT_COLUMNS, VICTIM_CIVILIAN, VICTIM_DEMINER, VICTIM_SOLDIER
    from sim.seeds import Target

    from .conftest import SMALL

    # The small world has few civilians and soldiers at the baseline's exposure.
    overrides = ["incidents.civilian_exposure_rate_per_item_month=0.002", "incidents.soldier_exposure_rate_per_item_month=0.002"]
    cfg = sim.load_scenario(SMALL, overrides, environ={})

    window = {"agency": "all", "unit": "people", "window_start": "2020-11-10", "window_end": "2030-12-31", "source": "test"}
    targets = [Target(id=m, metric=m, value=1, **window) for m in ("victims_total", "victims_civilian", "victims_military")]
    compiled = compile_scenario(cfg)
    ctx = Context.build(cfg, compiled, targets)
    res = simulate(compiled, cfg, replication_seeds(4, 1)[0])
    values = target_values(ctx, res)
    victim = res.incidents[:, INCIDENT_COLUMNS.index("victim")]
    # Counted again from the incidents themselves: those before the window's inclusive end.
    end = ctx.day(datetime.date.fromisoformat(window["window_end"]))
    in_window = res.incidents[:, INCIDENT_COLUMNS.index("day")] < end + 1.0
    counts = {code: int(((victim == code) & in_window).sum()) for code in (VICTIM_CIVILIAN, VICTIM_DEMINER, VICTIM_SOLDIER)}
    assert min(counts.values()) > 0 and not in_window.all()  # every kind hurt; some after the window
    assert values["victims_civilian"] == counts[VICTIM_CIVILIAN]
    assert values["victims_military"] == counts[VICTIM_DEMINER] + counts[VICTIM_SOLDIER]
    assert values["victims_total"] == sum(counts.values())
