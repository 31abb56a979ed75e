"""The adversarial suite: hostile values for every config field, hostile environment variables,
inventories and command lines. The contract, whatever the input: a config that runs to sane
tables (exit 0), or one line naming the problem (exit 2) with nothing written under results/ —
never a traceback, a hang or a lost folder.

The paths come from the schema itself (`config_leaf_paths`), so a new field is attacked the day
it is added. CI runs a fixed, derandomized sample (profile `ci`); `make fuzz` runs the `fuzz`
profile: many more random examples (ADVERSARIAL_PROFILE=fuzz).
"""

from __future__ import annotations

import os
import typing

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import sim
from sim.assets import compile_scenario
from sim.config import ScenarioConfig
from sim.ensemble import replication_seeds, simulate
from sim.errors import UserError
from sim.world import read_inventory

from .conftest import SMALL, demining

settings.register_profile("ci", max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=20000, derandomize=False, deadline=None, suppress_health_check=list(HealthCheck))
ADVERSARIAL = settings.get_profile(os.environ.get("ADVERSARIAL_PROFILE", "ci"))

# Shrinks every run that the hostile value leaves valid, so an example costs milliseconds.
SMALL_RUN = ["parcels.area_scale=0.001", "horizon_years=2"]

# TOML literals as `--set` takes them (bare words become strings): non-finite, huge, tiny,
# negative, wrong types, booleans, empty containers, odd strings and dates at the calendar's ends.
HOSTILE_LITERALS = (
    "nan", "inf", "-inf", "+inf", "1e308", "-1e308", "1.7976931348623157e308", "5e-324", "1e-300",
    "0", "-0.0", "-1", "1", "2", "1000000", "1e9", "9223372036854775807", "-9223372036854775808",
    "99999999999999999999999999", "true", "false", '""', '"x"', '"  "', '"\\u0000"', '"\\u001b[31m"',
    '"../../escaped"', '"/etc/passwd"', "[]", "[[]]", "[1e308]", '["x"]', "[true, false]", "{}",
    "{a = 1}", "0001-01-01", "9999-12-31", "2020-02-30", "1990-01-01", "2150-12-31", "bare word",
    "𝔲𝔫𝔦𝔠𝔬𝔡𝔢", "1_000", "0x10", "1979-05-27T07:32:00Z",
)  # fmt: skip


def _unwrap(tp):
    """The type inside Optional/Annotated."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _is_typed_dict(tp) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def config_leaf_paths(cfg: ScenarioConfig) -> list[str]:
    """Every settable key path of a scenario, named tables (districts, agencies, asset types)
    by the keys `cfg` has, plus each table itself (to be replaced by a hostile value whole)."""
    paths: set[tuple[str, ...]] = set()

    def walk(tp, value, path: tuple[str, ...]):
        tp = _unwrap(tp)
        if path:
            paths.add(path)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            for name, field in tp.model_fields.items():
                walk(field.annotation, getattr(value, name, None), (*path, name))
        elif _is_typed_dict(tp):
            for key, sub in typing.get_type_hints(tp, include_extras=True).items():
                walk(sub, (value or {}).get(key), (*path, key))
        elif typing.get_origin(tp) is dict and isinstance(value, dict):
            _, sub = typing.get_args(tp)
            for key, item in value.items():
                walk(sub, item, (*path, key))

    walk(ScenarioConfig, cfg, ())
    return sorted(".".join(p) for p in paths)


SMALL_CFG = sim.load_scenario(SMALL, environ={})
LEAF_PATHS = config_leaf_paths(SMALL_CFG)


def test_the_schema_walk_reaches_every_kind_of_field():
    # A positive control for the walk: fields of models, of TypedDict mappings, of named tables.
    for path in ("horizon_years", "parcels.mean_parcel_area_ha.housing", "parcels.item_density_per_ha.minefield.ap",
                 "terrain.mountain.winter_availability", "agencies.anama.deliveries", "asset_types.machine.task_days",
                 "districts.aghdam.map_coverage", "incidents.returns", "maps.nts_cancel_share.wrong"):  # fmt: skip
        assert path in LEAF_PATHS, path
    assert len(LEAF_PATHS) > 300


def _assert_one_line(exc: UserError) -> None:
    text = str(exc)
    assert text.strip(), "an error must say something"
    assert "\n" not in text, text
    assert "Traceback" not in text


def _assert_sane_replication(cfg: ScenarioConfig) -> None:
    res = simulate(compile_scenario(cfg), cfg, replication_seeds(1, 1)[0])
    stocks = res.stocks
    assert np.isfinite(stocks).all()
    assert (stocks >= -1e-6).all()
    np.testing.assert_allclose(
        stocks[:, :, :3].sum(axis=2), np.broadcast_to(res.initial_area_ha, stocks.shape[:2]), rtol=1e-9, atol=1e-6
    )
    assert np.isfinite(res.log).all()
    if len(res.incidents):
        assert np.isfinite(res.incidents).all()


def _load_or_user_error(overrides, environ=None):
    try:
        return sim.load_scenario(SMALL, overrides, environ=environ or {})
    except UserError as exc:
        _assert_one_line(exc)
        return None


@ADVERSARIAL
@given(path=st.sampled_from(LEAF_PATHS), literal=st.sampled_from(HOSTILE_LITERALS))
def test_hostile_value_in_any_field_gives_a_config_that_runs_or_one_line(path, literal):
    cfg = _load_or_user_error([*SMALL_RUN, f"{path}={literal}"])
    if cfg is not None:
        _assert_sane_replication(cfg)


@ADVERSARIAL
@given(
    pairs=st.lists(st.tuples(st.sampled_from(LEAF_PATHS), st.sampled_from(HOSTILE_LITERALS)), min_size=2, max_size=4),
)
def test_several_hostile_values_at_once(pairs):
    cfg = _load_or_user_error([*SMALL_RUN, *(f"{p}={v}" for p, v in pairs)])
    if cfg is not None:
        _assert_sane_replication(cfg)


@ADVERSARIAL
@given(path=st.sampled_from(LEAF_PATHS), raw=st.sampled_from(HOSTILE_LITERALS) | st.text(max_size=30))
def test_hostile_environment_variable_gives_a_config_or_one_line(path, raw):
    """DEMINING_* variables reach the same fields; values are JSON for tables, text otherwise."""
    name = "DEMINING_" + "__".join(part.upper() for part in path.split("."))
    cfg = _load_or_user_error(SMALL_RUN, environ={name: raw})
    if cfg is not None:
        _assert_sane_replication(cfg.model_copy(update={"horizon_years": 2.0}))


INVENTORY_HEADER = "id,district,area_ha,land_use,terrain,threat,mapped"
hostile_cells = st.sampled_from(
    [
        "",
        " ",
        "nan",
        "inf",
        "-1",
        "0",
        "1e308",
        "5e-324",
        "aghdam",
        "AGHDAM",
        "nowhere",
        "housing",
        "mountain",
        "high",
        "true",
        "maybe",
        '"',
        '""',
        "a,b",
        "\x00",
        "𝔲",
        "1" * 200,
    ]  # fmt: skip
) | st.text(max_size=12)


@ADVERSARIAL
@given(rows=st.lists(st.lists(hostile_cells, min_size=5, max_size=9), max_size=6), header=st.booleans())
def test_hostile_inventory_gives_parcels_or_one_line(tmp_path_factory, rows, header):
    path = tmp_path_factory.mktemp("inventory") / "inventory.csv"
    lines = ([INVENTORY_HEADER] if header else []) + [",".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        inventory = read_inventory(path, SMALL_CFG)
    except UserError as exc:
        _assert_one_line(exc)
        return
    assert len(inventory) > 0
    assert np.isfinite(inventory.area_ha).all() and (inventory.area_ha > 0).all()
    assert len(set(inventory.ids)) == len(inventory)


@pytest.mark.parametrize(
    "literal", ["nan", "inf", "1e308", "-1", "true", '""', "[]", "0", "2020-02-30", '"../../x"']
)  # fmt: skip
@pytest.mark.parametrize(
    "path", ["horizon_years", "parcels.area_scale", "agencies.anama.deliveries", "asset_types.machine.task_days", "name"]
)  # fmt: skip
def test_command_line_contract(tmp_path, path, literal):
    """Through the real entry point: exit 0 with a results folder, or exit 2 with one line on
    stderr and nothing under --out; never a traceback."""
    out = tmp_path / "results"
    try:
        outcome = demining(
            "run", SMALL, "-n", "1", "-w", "1", "--no-plots", "--out", out,
            *(a for s in SMALL_RUN for a in ("--set", s)), "--set", f"{path}={literal}",
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - the point: nothing may escape as a traceback
        pytest.fail(f"traceback for {path}={literal}: {type(exc).__name__}: {exc}")
    assert outcome.returncode in (0, 2), (outcome.returncode, outcome.stderr)
    assert "Traceback" not in outcome.stderr
    if outcome.returncode == 2:
        assert len(outcome.stderr.strip().splitlines()) == 1, outcome.stderr
        assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))
    else:
        summaries = [p for p in out.rglob("summary.json") if not any(q.is_symlink() for q in p.parents)]
        assert len(summaries) == 1, sorted(out.rglob("*"))
        assert all(out.resolve() in p.resolve().parents for p in out.rglob("*"))


def test_hostile_literals_include_what_the_issue_names():
    # NaN, infinities, huge, tiny, wrong types, booleans, empty lists, odd strings.
    for literal in ("nan", "inf", "-inf", "1e308", "5e-324", '"x"', "true", "[]", '"\\u0000"'):
        assert literal in HOSTILE_LITERALS
