"""Loading scenarios: extends, environment, --set, and clear errors for bad input."""

from __future__ import annotations

import json

import pytest

import sim
from sim.errors import UserError
from sim.scenario import load_scenario
from sim.seeds import load_inputs, load_targets

from .conftest import SCENARIOS, SMALL


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def extends_small(tmp_path, body: str, name: str = "s.toml"):
    return write(tmp_path, name, f'extends = "{SMALL}"\n{body}')


def test_every_scenario_is_valid_and_says_its_question():
    for path in SCENARIOS.glob("*.toml"):
        if path.name == "calibrated.toml":
            continue  # only extended, not a scenario on its own
        cfg = load_scenario(path, environ={})
        assert cfg.question, f"{path.name} does not say what question it answers"
        assert path.read_text().lstrip().startswith("#"), f"{path.name} needs a comment saying what it answers"


def test_extends_merges_nested_keys(tmp_path):
    path = extends_small(tmp_path, "[maps]\nmap_accuracy = 0.6\n")
    cfg = load_scenario(path, environ={})
    assert cfg.maps.map_accuracy == 0.6
    assert cfg.parcels.area_scale == 0.004  # kept from small.toml
    assert cfg.districts["aghdam"].map_coverage == 0.8  # kept from baseline.toml


def test_precedence_file_then_environment_then_set(tmp_path):
    path = extends_small(tmp_path, "[maps]\nmap_accuracy = 0.6\n")
    env = {"DEMINING_MAPS__MAP_ACCURACY": "0.7", "DEMINING_DISTRICTS__AGHDAM__MAP_COVERAGE": "0.3"}
    cfg = load_scenario(path, environ=env)
    assert cfg.maps.map_accuracy == 0.7
    assert cfg.districts["aghdam"].map_coverage == 0.3
    assert cfg.districts["aghdam"].territory_km2 == 1094  # the rest of the table survives
    cfg = load_scenario(path, ["maps.map_accuracy=0.9"], environ=env)
    assert cfg.maps.map_accuracy == 0.9


@pytest.mark.parametrize(
    "body, overrides, expected",
    [
        ("[maps]\nmap_acuracy = 0.5\n", [], "maps.map_acuracy: unknown key; did you mean 'map_accuracy'?"),
        ("[maps]\nmap_accuracy = 1.5\n", [], "maps.map_accuracy: Input should be less than or equal to 1"),
        (
            "[asset_types.machine]\nclearance_rate_m2_per_day = -5\n",
            [],
            "asset_types.machine.clearance_rate_m2_per_day: Input should be greater than or equal to 0.001",
        ),
        ("[agencies.mes]\ndistricts = ['atlantis']\n", [], "unknown district 'atlantis'"),
        ("[agencies.mes]\nend = 2019-01-01\n", [], "end 2019-01-01 is before start"),
        ("[agencies.mes]\ndistricts = []\n", [], "agencies.mes.districts: List should have at least 1 item"),
        ("", ["agencies.mes.deliveries=[{asset_type='machine', count=1, date=2060-01-01}]"], "outside the horizon"),
        ("", ["horizon_years=ten"], "horizon_years: Input should be a valid number"),
        ("[agencies.mes]\npolicy = 'random'\n", [], "unknown policy 'random'"),
        ("[agencies.mes]\nlater_pace_share = 0.5\n", [], "later_pace_share 0.5 is given without later_pace_from"),
        ("[districts.lachin]\nhazardous_area_ha = 5000000\n", [], "more than the national 1,166,702 ha"),
        (
            "",
            [f"districts.{k}.hazardous_area_ha=1000" for k in sim.load_scenario(SMALL, environ={}).districts],
            "sum to 13,000 ha, not the national 1,166,702 ha",
        ),
    ],
)
def test_bad_values_give_one_line_naming_key(tmp_path, body, overrides, expected):
    path = extends_small(tmp_path, body)
    with pytest.raises(UserError) as err:
        load_scenario(path, overrides, environ={})
    message = str(err.value)
    assert expected in message
    assert "\n" not in message


def test_error_names_the_file_that_set_the_key(tmp_path):
    path = extends_small(tmp_path, "[maps]\nmap_accuracy = 2\n")
    with pytest.raises(UserError, match=rf"^{path}: maps.map_accuracy"):
        load_scenario(path, environ={})
    with pytest.raises(UserError, match=r"^--set: maps.map_accuracy"):
        load_scenario(SMALL, ["maps.map_accuracy=3"], environ={})
    with pytest.raises(UserError, match=r"^environment variable DEMINING_MAPS__MAP_ACCURACY"):
        load_scenario(SMALL, environ={"DEMINING_MAPS__MAP_ACCURACY": "7"})


def test_unknown_environment_setting_is_an_error():
    with pytest.raises(UserError, match="DEMINING_MAP_ACCURACY: unknown setting"):
        load_scenario(SMALL, environ={"DEMINING_MAP_ACCURACY": "0.5"})


def test_toml_syntax_error_names_line(tmp_path):
    path = write(tmp_path, "bad.toml", 'name = "x"\n[maps\n')
    with pytest.raises(UserError, match=r"bad.toml: TOML syntax error: .*line 2"):
        load_scenario(path, environ={})


def test_extends_nowhere_and_cycles(tmp_path):
    path = write(tmp_path, "a.toml", 'extends = "missing.toml"\n')
    with pytest.raises(UserError, match="extends: 'missing.toml' points nowhere"):
        load_scenario(path, environ={})
    write(tmp_path, "b.toml", 'extends = "c.toml"\n')
    write(tmp_path, "c.toml", 'extends = "b.toml"\n')
    with pytest.raises(UserError, match="extends forms a cycle"):
        load_scenario(tmp_path / "b.toml", environ={})


def test_missing_scenario_file(tmp_path):
    with pytest.raises(UserError, match="scenario file not found"):
        load_scenario(tmp_path / "nope.toml", environ={})


def test_resolved_config_round_trips_through_toml(small_cfg, tmp_path):
    from sim.results import config_toml

    path = write(tmp_path, "resolved.toml", config_toml(small_cfg))
    again = load_scenario(path, environ={})
    assert again.model_dump() == small_cfg.model_dump()


def test_schema_is_json_with_documented_fields():
    schema = sim.ScenarioConfig.model_json_schema()
    json.dumps(schema)
    maps = schema["$defs"]["MapsConfig"]["properties"]["map_accuracy"]
    assert "25 %" in maps["description"]


def test_seed_rows_name_their_sources_and_baseline_uses_them(small_cfg):
    targets = load_targets()
    inputs = {row.id: row for row in load_inputs()}
    assert len(targets) >= 25
    # Figures come from the seed articles, the record in shared/facts/record.md, or a named press
    # outlet (with its address or date) found since.
    assert all(t.source.startswith(("seeds/", "facts/", "press: ")) for t in targets), "every target names its source"
    assert any(t.source.startswith("seeds/") and t.use == "fit" for t in targets)
    base = load_scenario(SCENARIOS / "baseline.toml", environ={})
    assert base.parcels.high_threat_area_ha == inputs["hazardous_area_high"].value
    assert base.parcels.medium_low_threat_area_ha == inputs["hazardous_area_medium_low"].value
    assert base.maps.map_accuracy == inputs["map_accuracy"].value
    for key, district in base.districts.items():
        assert district.territory_km2 == inputs[f"territory_{key}"].value
    assert str(base.peacekeeping_zone.opens_to_national_agencies) == inputs["peacekeeping_access"].window_start.isoformat()


class _ReadOnlyEnviron(dict):
    """Stands in for os.environ: any change fails the test."""

    def _refuse(self, *args, **kwargs):
        raise AssertionError("load_scenario changed os.environ")

    __setitem__ = __delitem__ = clear = update = pop = popitem = setdefault = _refuse


def test_loading_never_changes_os_environ(monkeypatch):
    import os

    guard = _ReadOnlyEnviron({"DEMINING_MAPS__MAP_ACCURACY": "0.35", "HOME": "/nowhere"})
    with monkeypatch.context() as patch:  # undone before pytest itself writes to os.environ again
        patch.setattr(os, "environ", guard)
        assert load_scenario(SMALL).maps.map_accuracy == 0.35  # no mapping given: the process environment
        assert load_scenario(SMALL, environ={"DEMINING_MAPS__MAP_ACCURACY": "0.45"}).maps.map_accuracy == 0.45
        assert load_scenario(SMALL, environ={}).maps.map_accuracy == 0.25  # the scenario's own value
    assert guard == {"DEMINING_MAPS__MAP_ACCURACY": "0.35", "HOME": "/nowhere"}


def test_scenarios_load_concurrently_from_threads_each_with_its_environment():
    import os
    from concurrent.futures import ThreadPoolExecutor

    before = dict(os.environ)
    accuracies = [0.1 + 0.05 * k for k in range(8)]

    def load(accuracy):
        env = {"DEMINING_MAPS__MAP_ACCURACY": str(accuracy), "DEMINING_DISTRICTS__AGHDAM__MAP_COVERAGE": str(accuracy / 2)}
        cfg = load_scenario(SMALL, environ=env)
        return cfg.maps.map_accuracy, cfg.districts["aghdam"].map_coverage

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(load, accuracies * 3))
    assert got == [(a, a / 2) for a in accuracies * 3]
    assert dict(os.environ) == before


def _field_paths_without_description(model, prefix="", seen=None):
    """Every field reachable from `model` (through nested models, dicts, lists, unions), as
    `block.<key>.field` paths, that has no non-empty description."""
    import typing

    from pydantic import BaseModel

    seen = set() if seen is None else seen
    missing = []

    def models_in(tp):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return [(tp, "")]
        found = []
        origin = typing.get_origin(tp)
        for k, arg in enumerate(typing.get_args(tp)):
            step = ".<key>" if origin is dict and k == 1 else ".<n>" if origin in (list, tuple, set) else ""
            if origin is dict and k == 0:
                continue
            found += [(m, step + rest) for m, rest in models_in(arg)]
        return found

    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        if not (field.description or "").strip():
            missing.append(path)
        for sub, step in models_in(field.annotation):
            if (sub, path + step) not in seen:
                seen.add((sub, path + step))
                missing += _field_paths_without_description(sub, f"{path}{step}.", seen)
    return missing


def test_the_description_walker_finds_undocumented_fields():
    from pydantic import BaseModel, Field

    class Inner(BaseModel):
        rate: float = Field(1.0, description="per day")
        note: str = ""

    class Outer(BaseModel):
        named: dict[str, Inner] = Field(default_factory=dict, description="by key")
        maybe: Inner | None = None

    assert _field_paths_without_description(Outer) == ["named.<key>.note", "maybe", "maybe.note"]


def test_every_config_field_has_a_description():
    missing = _field_paths_without_description(sim.ScenarioConfig)
    assert not missing, f"{len(missing)} fields without a description: {', '.join(missing)}"
