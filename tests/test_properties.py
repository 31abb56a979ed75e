"""Invariants under random small scenarios, and a config loader that never crashes (hypothesis).

Examples are derandomized (seeded by the test itself), so CI runs the same cases every time."""

from __future__ import annotations

import datetime as dt

import numpy as np
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from sim.assets import compile_scenario
from sim.config import LAND_USES, STAGES, TERRAINS, ScenarioConfig
from sim.errors import UserError
from sim.model import Campaign, make_streams
from sim.recording import LOG as L
from sim.scenario import load_scenario
from sim.world import draw_truth, generate_inventory

from .conftest import SMALL

BASE = sim.load_scenario(SMALL, environ={}).model_dump()
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

unit = st.floats(0.0, 1.0)
factor = st.floats(0.2, 5.0)


@st.composite
def small_scenarios(draw) -> ScenarioConfig:
    data = {k: v for k, v in BASE.items()}
    keys = draw(st.lists(st.sampled_from(list(BASE["districts"])), min_size=1, max_size=3, unique=True))
    data["districts"] = {}
    for key in keys:
        d = dict(BASE["districts"][key])
        d.update(
            terrain=draw(st.sampled_from(TERRAINS)),
            map_coverage=draw(unit),
            peacekeeping_zone_share=draw(unit),
            former_line_of_contact_share=draw(unit),
            priority=draw(st.integers(1, 3)),
            # A published area (set below as a share of the national area drawn) or none.
            hazardous_area_ha=draw(st.one_of(st.none(), st.floats(0.0, 0.3))),
        )
        data["districts"][key] = d
    parcels = dict(BASE["parcels"])
    parcels.update(
        high_threat_area_ha=draw(st.floats(0.0, 3000.0)),
        medium_low_threat_area_ha=draw(st.floats(10.0, 3000.0)),
        area_scale=1.0,
        mean_parcel_area_ha={u: draw(st.floats(5.0, 400.0)) for u in LAND_USES},
        contaminated_share_mean={"high": draw(st.floats(0.0, 0.6)), "medium_low": draw(st.floats(0.0, 0.1))},
        peacekeeping_zone_uxo_density_factor=draw(st.floats(0.2, 5.0)),
    )
    data["parcels"] = parcels
    national = parcels["high_threat_area_ha"] + parcels["medium_low_threat_area_ha"]
    first = next(iter(data["districts"].values()))
    if all(d["hazardous_area_ha"] is not None for d in data["districts"].values()):
        first["hazardous_area_ha"] = None  # someone must take the rest (all given must sum to the nation)
    for d in data["districts"].values():
        if d["hazardous_area_ha"] is not None:
            d["hazardous_area_ha"] *= national
    data["return_wave_share"] = draw(unit)
    data["maps"] = dict(BASE["maps"], map_accuracy=draw(unit), new_maps_share=draw(unit))
    data["quality_control"] = {"sample_share": draw(st.floats(0.0, 0.5)), "max_reworks": draw(st.integers(0, 3))}
    data["horizon_years"] = draw(st.floats(2.0, 6.0))
    assets = {}
    for key, a in BASE["asset_types"].items():
        a = dict(a)
        for rate in (
            "non_technical_survey_rate_ha_per_day",
            "technical_survey_rate_m2_per_day",
            "clearance_rate_m2_per_day",
            "follow_up_rate_m2_per_day",
            "quality_control_rate_m2_per_day",
            "remote_survey_rate_ha_per_day",
        ):
            if a.get(rate):
                a[rate] = a[rate] * draw(factor)
        a["detection_probability"] = {i: draw(unit) for i in ("ap", "at", "uxo")}
        a["task_days"] = draw(st.floats(1.0, 40.0))
        a["accident_probability_per_item"] = draw(st.floats(0.0, 0.01))
        assets[key] = a
    data["asset_types"] = assets
    start = data["start_date"]
    agencies = {}
    for k in range(draw(st.integers(1, 3))):
        deliveries = [
            {
                "asset_type": draw(st.sampled_from(list(assets))),
                "count": draw(st.integers(1, 3)),
                "date": start + dt.timedelta(days=draw(st.integers(0, 700))),
            }
            for _ in range(draw(st.integers(1, 4)))
        ]
        agencies[f"agency{k}"] = {
            "name": f"Agency {k}",
            "kind": draw(st.sampled_from(["national", "peacekeeping"])),
            "districts": draw(st.lists(st.sampled_from(keys), min_size=1, unique=True)),
            "survey_productivity": draw(factor),
            "clearance_productivity": draw(factor),
            "battle_area_share_of_work": draw(st.one_of(st.none(), unit)),
            "deliveries": deliveries,
        }
    data["agencies"] = agencies
    data["costs"] = dict(BASE["costs"], agencies={})  # its per-agency costs name the small world's agencies
    return ScenarioConfig.model_validate(data)


def _run(cfg: ScenarioConfig, seed: int):
    compiled = compile_scenario(cfg)
    rngs = make_streams(np.random.SeedSequence(seed))
    parcels = draw_truth(cfg, generate_inventory(cfg, rngs["layout"]), rngs)
    campaign = Campaign(compiled, parcels, rngs)
    return campaign, campaign.run()


@PROPERTY_SETTINGS
@given(cfg=small_scenarios(), seed=st.integers(0, 2**32 - 1))
def test_invariants_hold_for_random_small_scenarios(cfg, seed):
    campaign, res = _run(cfg, seed)
    stocks = res.stocks
    # Area conserved per district at every month end.
    np.testing.assert_allclose(
        stocks[:, :, :3].sum(axis=2), np.broadcast_to(res.initial_area_ha, stocks.shape[:2]), rtol=1e-9, atol=1e-6
    )
    np.testing.assert_allclose(stocks[-1, :, :3], campaign.parcel_stocks(), rtol=1e-9, atol=1e-6)
    # No negative stock or flow; released area never decreases.
    assert (stocks >= -1e-6).all()
    flows = res.log[
        :, [L[c] for c in ("area_worked_ha", "cancelled_ha", "reduced_ha", "cleared_ha", "found_ap", "found_at", "found_uxo")]
    ]
    assert (flows >= 0).all()
    assert (np.diff(stocks[:, :, 2], axis=0) >= -1e-9).all()
    # Items found never exceed items present, by district and type.
    found = np.zeros_like(res.initial_items)
    np.add.at(found, res.log[:, L["district"]].astype(int), res.log[:, [L["found_ap"], L["found_at"], L["found_uxo"]]])
    assert (found <= res.initial_items + 1e-9).all()
    # Incidents: whole people, on real days, in real districts.
    inc = res.incidents
    if len(inc):
        assert ((inc[:, 0] >= 0) & (inc[:, 0] <= res.stocks.shape[0] * 31 + 31)).all()
        assert set(np.unique(inc[:, 1]).astype(int)) <= set(range(len(cfg.districts)))
    # A parcel's steps happen in order: survey, then technical survey, then clearance, then QC.
    log = res.log
    for parcel in np.unique(log[:, L["parcel"]]):
        steps = log[log[:, L["parcel"]] == parcel]
        stage = steps[:, L["stage"]]

        def last_end(s):
            return steps[stage == s, L["t1"]].max() if (stage == s).any() else -np.inf

        def first_start(s):
            return steps[stage == s, L["t0"]].min() if (stage == s).any() else np.inf

        nts, ts, clearance, qc = (
            STAGES.index(k) for k in ("non_technical_survey", "technical_survey", "clearance", "quality_control")
        )
        assert last_end(nts) <= first_start(ts) + 1e-9
        assert max(last_end(nts), last_end(ts)) <= first_start(clearance) + 1e-9
        assert last_end(clearance) <= first_start(qc) + 1e-9


toml_scalars = st.one_of(
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.dates(dt.date(1990, 1, 1), dt.date(2100, 1, 1)),
)
toml_values = st.recursive(
    toml_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=10), children, max_size=3),
    max_leaves=8,
)
config_keys = st.sampled_from(
    [
        "maps",
        "parcels",
        "districts",
        "agencies",
        "asset_types",
        "incidents",
        "horizon_years",
        "quality_control",
        "name",
        "terrain",
        "priority_policies",
        "nonsense",
    ]
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(text=st.text(max_size=200))
def test_arbitrary_text_gives_a_clean_error_or_a_config(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "s.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_scenario(path, environ={})
    except UserError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(overrides=st.dictionaries(config_keys, toml_values, min_size=1, max_size=3))
def test_arbitrary_nested_values_give_a_clean_error_or_a_config(tmp_path_factory, overrides):
    path = tmp_path_factory.mktemp("fuzz") / "s.toml"
    path.write_text(f'extends = "{SMALL}"\n' + tomli_w.dumps(overrides), encoding="utf-8")
    try:
        cfg = load_scenario(path, environ={})
    except UserError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(cfg, ScenarioConfig)
