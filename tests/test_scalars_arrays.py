"""A replication's use by year and yearly figures are kept as arrays (sim.utilisation.YearlyUse,
sim.metrics.PerYear), not nested dicts of Python floats: the tables and summary built from them
are the ones the dict-walking code made (kept here as the reference), to the last bit; they pickle
small; part files round-trip them exactly; and part files written as dicts still read."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from sim.config import STAGES
from sim.costs import METHODS, Fleet, _method_of_stage, method_spend, spend_table
from sim.ensemble import replication_seeds
from sim.metrics import Context, PerYear, per_year_table, replication_summary
from sim.model import Campaign, make_streams
from sim.utilisation import (
    BUSY_COLUMNS,
    UTILISATION_COLUMNS,
    YearlyUse,
    _limit_of_year,
    binding_constraints,
    use_by_year_tables,
)
from sim.world import draw_truth, generate_inventory


# ------------------------------------------------------------------ the dict-walking reference (main before the arrays)
def old_yearly_use(utilisation: pd.DataFrame, waiting: np.ndarray, month_years: np.ndarray) -> dict:
    year = utilisation["month"].dt.year
    by_type = utilisation.groupby([year, "asset_type"], observed=True)[list(UTILISATION_COLUMNS)].sum()
    out: dict = {}
    for (y, asset_type), row in by_type.iterrows():
        out.setdefault(str(y), {"assets": {}, "waiting_ha": {}})["assets"][asset_type] = {k: float(v) for k, v in row.items()}
    for y in np.unique(month_years):
        last = np.flatnonzero(month_years == y)[-1]
        entry = out.setdefault(str(int(y)), {"assets": {}, "waiting_ha": {}})
        entry["waiting_ha"] = {stage: float(waiting[last, :, k].sum()) for k, stage in enumerate(STAGES)}
    return out


def old_sum_over_replications(per_replication: list[dict], years: list[str]) -> tuple[dict, dict]:
    assets: dict[str, dict] = {}
    waiting: dict[str, float] = {}
    for year in years:
        for rep in per_replication:
            entry = rep.get(year, {"assets": {}, "waiting_ha": {}})
            for key, values in entry["assets"].items():
                acc = assets.setdefault(key, dict.fromkeys(values, 0.0))
                for column, v in values.items():
                    acc[column] += v
            for stage, v in entry["waiting_ha"].items():
                waiting[stage] = waiting.get(stage, 0.0) + v / (len(per_replication) * len(years))
    return assets, waiting


def old_binding_constraints(per_replication: list[dict], asset_stages) -> list[dict]:
    years = sorted({y for rep in per_replication for y in rep}, key=int)
    periods: list[dict] = []
    for year in years:
        assets, waiting = old_sum_over_replications(per_replication, [year])
        if not assets:
            continue
        limit = _limit_of_year(assets, waiting, asset_stages)
        kind = (limit["stage"], limit["capacity_bound"])
        if periods and periods[-1]["kind"] == kind and int(year) == int(periods[-1]["years"][-1]) + 1:
            periods[-1]["years"].append(year)
        else:
            periods.append({"kind": kind, "years": [year]})
    out = []
    for p in periods:
        limit = _limit_of_year(*old_sum_over_replications(per_replication, p["years"]), asset_stages)
        first, last = int(p["years"][0]), int(p["years"][-1])
        span = f"{first}" if first == last else f"{first}-{last}"
        repairs = f"; {limit['repairs']}" if limit["repairs"] else ""
        out.append(
            {
                "from_year": first,
                "to_year": last,
                "stage": p["kind"][0],
                "capacity_bound": p["kind"][1],
                "busy_share_by_asset_type": {k: round(v, 3) for k, v in limit["busy"].items()},
                "text": f"{span}: {limit['text']}{repairs}",
            }
        )
    return out


def old_use_by_year_tables(per_replication: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = max(len(per_replication), 1)
    assets: dict[tuple, np.ndarray] = {}
    waiting: dict[tuple, float] = {}
    for rep in per_replication:
        for year, entry in rep.items():
            for asset_type, values in entry["assets"].items():
                row = np.array([values[c] for c in UTILISATION_COLUMNS])
                assets[(int(year), asset_type)] = assets.get((int(year), asset_type), 0.0) + row / n
            for stage, ha in entry["waiting_ha"].items():
                waiting[(int(year), stage)] = waiting.get((int(year), stage), 0.0) + ha / n
    use = pd.DataFrame([(y, a, *v) for (y, a), v in sorted(assets.items())], columns=["year", "asset_type", *UTILISATION_COLUMNS])
    land = pd.DataFrame([(y, s, v) for (y, s), v in sorted(waiting.items())], columns=["year", "stage", "waiting_ha"])
    return use, land


def old_method_spend(spend: pd.DataFrame, use_by_year: dict) -> dict[str, float]:
    method = _method_of_stage()
    out = dict.fromkeys([name for name, _, _ in METHODS] + ["idle"], 0.0)
    by_type = spend.groupby(["year", "asset_type"])["spend_usd"].sum()
    for (year, asset_type), usd in by_type.items():
        days = use_by_year.get(str(int(year)), {}).get("assets", {}).get(asset_type, {})
        busy = {stage: days.get(column, 0.0) for stage, column in zip(STAGES, BUSY_COLUMNS)}
        total = sum(busy.values())
        if total <= 0:
            out["idle"] += usd
            continue
        for stage, d in busy.items():
            out[method[stage]] += usd * d / total
    return out


# ------------------------------------------------------------------ helpers
def as_dicts(use: YearlyUse) -> dict:
    """A YearlyUse as the nested dicts part files held before the arrays (years in order)."""
    return {
        str(y): {
            "assets": {
                t: dict(zip(use.columns, use.assets[i, k].tolist())) for k, t in enumerate(use.asset_types) if use.present[i, k]
            },
            "waiting_ha": dict(zip(use.stages, use.waiting_ha[i].tolist())),
        }
        for i, y in enumerate(use.years.tolist())
    }


@pytest.fixture(scope="module")
def replications(small_cfg, small_compiled):
    """Three replications of the small world: (scalars, the dict-walking use by year) each."""
    ctx = Context.build(small_cfg, small_compiled, [])
    month_years = np.array([d.year for d in ctx.month_starts])
    out = {}
    for rep, seed_seq in enumerate(replication_seeds(11, 3)):
        rngs = make_streams(seed_seq)
        parcels = draw_truth(small_cfg, generate_inventory(small_cfg, rngs["layout"]), rngs)
        res = Campaign(small_compiled, parcels, rngs).run()
        output = replication_summary(ctx, res, rep)
        out[rep] = (output["scalars"], old_yearly_use(output["tables"]["utilisation"], res.waiting, month_years))
    return out


def _same_json(a, b) -> bool:
    """Equal to the last bit and in the same key order."""
    return json.dumps(a) == json.dumps(b)


# ------------------------------------------------------------------ tests
def test_the_arrays_hold_what_the_dicts_held(replications):
    for scalars, old in replications.values():
        use = scalars["use_by_year"]
        assert isinstance(use, YearlyUse) and use.years.dtype == np.int64
        # Keys in another order (years, then types by name): the content to the last bit.
        assert json.dumps(as_dicts(use), sort_keys=True) == json.dumps(old, sort_keys=True)
        assert isinstance(scalars["per_year"], PerYear)


def test_tables_and_summary_from_the_arrays_equal_the_dict_walking_ones(small_cfg, small_compiled, replications):
    uses = [s["use_by_year"] for s, _ in replications.values()]
    olds = [old for _, old in replications.values()]
    # Replications as a resumed run may hold them: one read from a part file written as dicts,
    # one laid out on other axes (an asset type it never had), so the general path adds them.
    u = uses[1]
    never = np.full((len(u.years), 1, len(u.columns)), np.nan)
    padded = YearlyUse(u.years, (*u.asset_types, "zz_never"), np.concatenate([u.assets, never], axis=1), u.waiting_ha)
    mixed = [YearlyUse.from_json(json.loads(json.dumps(olds[0]))), padded, *uses[2:]]
    for new in (uses, mixed):
        for got, expected in zip(use_by_year_tables(new), old_use_by_year_tables(olds)):
            pd.testing.assert_frame_equal(got, expected, check_exact=True)
    asset_stages = {t.key: tuple(STAGES[k] for k in t.stages) for t in small_compiled.asset_types}
    for subset in (olds, olds[:1]):
        n = len(subset)
        assert _same_json(binding_constraints(uses[:n], asset_stages), old_binding_constraints(subset, asset_stages))
        assert _same_json(binding_constraints(mixed[:n], asset_stages), old_binding_constraints(subset, asset_stages))
    # Spend by method, replication by replication.
    scalars = {rep: s for rep, (s, _) in replications.items()}
    spend = spend_table(Fleet.of(small_cfg), scalars)
    assert len(spend)
    for rep, (s, old) in replications.items():
        mine = spend[spend["replication"] == rep]
        assert _same_json(method_spend(mine, s["use_by_year"]), old_method_spend(mine, old))
    assert method_spend(spend[spend["replication"] == 0], None)["idle"] == pytest.approx(
        spend.loc[spend["replication"] == 0, "spend_usd"].sum()
    )
    # Yearly figures: the table the dicts made.
    old_rows = [
        {"replication": rep, "year": int(y), **dict(zip(s["per_year"].columns, row.tolist()))}
        for rep, s in sorted(scalars.items())
        for y, row in zip(s["per_year"].years, s["per_year"].values)
    ]
    pd.testing.assert_frame_equal(per_year_table(scalars), pd.DataFrame(old_rows), check_exact=True)


def test_the_arrays_pickle_small_and_share_their_labels(replications, small_cfg, small_compiled):
    from sim.ensemble import Accumulator

    scalars, old = replications[0]
    assert len(pickle.dumps(scalars["use_by_year"])) < len(pickle.dumps(old)) / 2
    acc = Accumulator(Context.build(small_cfg, small_compiled, []))
    for rep, (s, _) in replications.items():
        acc.add_reduced(rep, pickle.loads(pickle.dumps(s)), np.zeros(1))
    first, second = acc.scalars[0], acc.scalars[1]
    assert first["use_by_year"].asset_types is second["use_by_year"].asset_types
    assert first["per_year"].columns is second["per_year"].columns


def test_part_files_round_trip_exactly_and_dicts_still_read(replications):
    scalars, old = replications[0]
    use, per_year = scalars["use_by_year"], scalars["per_year"]
    again = YearlyUse.from_json(json.loads(json.dumps(use.to_json())))
    assert np.array_equal(again.assets, use.assets, equal_nan=True) and np.array_equal(again.waiting_ha, use.waiting_ha)
    assert again.years.tolist() == use.years.tolist() and again.asset_types == use.asset_types
    assert np.isnan(use.assets).any(), "the small world has a type without days in some year"
    table = PerYear.from_json(json.loads(json.dumps(per_year.to_json())))
    assert np.array_equal(table.values, per_year.values) and table.columns == per_year.columns
    # As part files held them before the arrays.
    from_dicts = YearlyUse.from_json(json.loads(json.dumps(old)))
    assert _same_json(as_dicts(from_dicts), old)
    old_per_year = {str(y): dict(zip(per_year.columns, row.tolist())) for y, row in zip(per_year.years, per_year.values)}
    table = PerYear.from_json(json.loads(json.dumps(old_per_year)))
    assert np.array_equal(table.values, per_year.values) and table.years.tolist() == per_year.years.tolist()
    # Anything else: a ValueError in one line (a damaged part, set aside by --resume).
    for bad in ({"format": "yearly_use/9"}, {"2021": {"assets": 3}}, [1, 2]):
        with pytest.raises(ValueError, match="use_by_year") as info:
            YearlyUse.from_json(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="per_year"):
        PerYear.from_json({"format": "per_year/1", "years": [2021], "columns": ["a"], "values": [[1.0, 2.0]]})
