"""What-ifs from a date ([[changes]]) and quick additions (--add): a change leaves the run before
its date as it was and acts after it; bad changes and additions are one-line errors, exit 2."""

from __future__ import annotations

import datetime as dt
import heapq
import tomllib

import numpy as np
import pytest

import sim
from sim.assets import compile_scenario
from sim.config import LAND_USES, STAGES
from sim.ensemble import replication_seeds
from sim.model import Campaign, make_streams
from sim.recording import LOG_COLUMNS
from sim.world import MAP_WRONG, draw_map_state, draw_truth, generate_inventory

from .conftest import SMALL, demining

COL = {name: k for k, name in enumerate(LOG_COLUMNS)}
ANAMA = 0  # first agency of the small scenario
START = dt.date(2020, 11, 10)


def scenario(tmp_path, body: str, name: str = "changed"):
    """A scenario file that extends the small one with `body`."""
    path = tmp_path / f"{name}.toml"
    path.write_text(f'extends = "{SMALL}"\nname = "{name}"\n{body}\n')
    return path


def campaign(cfg, seed: int = 3) -> Campaign:
    """Replication 0 of `cfg`, ready to run (as sim.ensemble.simulate builds it)."""
    rngs = make_streams(replication_seeds(seed, 1)[0])
    parcels = draw_truth(cfg, generate_inventory(cfg, rngs["layout"]), rngs)
    return Campaign(compile_scenario(cfg), parcels, rngs)


def day(date: dt.date) -> float:
    return float((date - START).days)


def ended_before(log: np.ndarray, cutoff: float) -> np.ndarray:
    return log[log[:, COL["t1"]] < cutoff]


@pytest.fixture(scope="module")
def base_result(small_cfg):
    return campaign(small_cfg).run()


def test_a_change_of_survey_cancellation_keeps_the_past_and_changes_what_follows(tmp_path, small_cfg, base_result):
    date = dt.date(2022, 6, 1)
    cfg = sim.load_scenario(scenario(tmp_path, f"[[changes]]\ndate = {date}\nland_release.survey_cancellation = 0.2"), environ={})
    changed = campaign(cfg).run()
    before = ended_before(base_result.log, day(date))
    assert len(before) > 100
    np.testing.assert_array_equal(ended_before(changed.log, day(date)), before)  # same rows, same order
    after = changed.log[changed.log[:, COL["t0"]] >= day(date)]
    base_after = base_result.log[base_result.log[:, COL["t0"]] >= day(date)]
    # Survey that finished after the date cancelled less of what it surveyed.
    nts = STAGES.index("non_technical_survey")

    def cancelled_share(log):
        rows = log[log[:, COL["stage"]] == nts]
        return rows[:, COL["cancelled_ha"]].sum() / rows[:, COL["area_worked_ha"]].sum()

    assert cancelled_share(after) < 0.5 * cancelled_share(base_after)


def test_same_config_and_seed_give_the_same_numbers_with_changes(tmp_path):
    body = "[[changes]]\ndate = 2022-06-01\nagencies.anama.clearance_productivity = 2.0\nmaps.map_accuracy = 0.8"
    cfg = sim.load_scenario(scenario(tmp_path, body), environ={})
    first, second = campaign(cfg).run(), campaign(cfg).run()
    np.testing.assert_array_equal(first.log, second.log)
    np.testing.assert_array_equal(first.incidents, second.incidents)


def _rate_ratios(c: Campaign, result, agency: int, stage: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t0, rate / rate at the agency's base productivity, whether the agency's productivity scales
    the asset) of the agency's steps of `stage` at full pace: the rate is the area over the working
    days the calendar gives between t0 and t1."""
    log = result.log
    rows = log[(log[:, COL["agency"]] == agency) & (log[:, COL["stage"]] == stage)]
    rows = rows[(rows[:, COL["t0"]] >= c.compiled.agencies[agency].ramp_end_day) & (rows[:, COL["t1"]] > rows[:, COL["t0"]])]
    base_productivity = c.compiled.agencies[agency].productivity
    ratios, scaled = [], []
    for row in rows:
        parcel, asset = int(row[COL["parcel"]]), int(row[COL["asset_type"]])
        calendar = c.compiled.calendars[asset, c.parcels.terrain[parcel]]
        days = np.arange(len(calendar))
        working_days = np.interp(row[COL["t1"]], days, calendar) - np.interp(row[COL["t0"]], days, calendar)
        expected = c._rate_table(base_productivity, c.compiled.asset_types[asset])[stage][c.rate_cell[parcel]]
        ratios.append(row[COL["area_worked_ha"]] / working_days / expected)
        scaled.append(c.compiled.asset_types[asset].scaled_by_agency_productivity)
    return rows[:, COL["t0"]], np.array(ratios), np.array(scaled)


def test_a_productivity_change_acts_on_steps_started_from_its_date(tmp_path, small_cfg):
    date = dt.date(2024, 1, 1)
    doubled = 2 * small_cfg.agencies["anama"].clearance_productivity
    body = f"[[changes]]\ndate = {date}\nagencies.anama.clearance_productivity = {doubled}"
    c = campaign(sim.load_scenario(scenario(tmp_path, body), environ={}))
    t0, ratios, scaled = _rate_ratios(c, c.run(), ANAMA, STAGES.index("clearance"))
    before, after = ratios[t0 < day(date)], ratios[t0 >= day(date)]
    assert len(before) > 10 and len(after) > 10
    np.testing.assert_allclose(before, 1.0, rtol=1e-6)  # steps under way at the date keep their rate
    # Teams double; machines, whose rates the agency's productivity does not scale, keep theirs.
    assert scaled[t0 >= day(date)].sum() > 10 and (~scaled[t0 >= day(date)]).sum() > 5
    np.testing.assert_allclose(after, np.where(scaled[t0 >= day(date)], 2.0, 1.0), rtol=1e-6)


def test_a_change_on_the_start_date_equals_the_setting_from_the_start(tmp_path):
    body = '[[changes]]\ndate = 2020-11-10\nagencies.anama.policy = "agriculture_first"\nagencies.mod.survey_productivity = 1.7'
    changed = campaign(sim.load_scenario(scenario(tmp_path, body), environ={})).run()
    plain = scenario(
        tmp_path, '[agencies.anama]\npolicy = "agriculture_first"\n[agencies.mod]\nsurvey_productivity = 1.7', "plain"
    )
    from_start = campaign(sim.load_scenario(plain, environ={})).run()
    np.testing.assert_array_equal(changed.log, from_start.log)
    np.testing.assert_array_equal(changed.incidents, from_start.incidents)


def test_a_policy_change_requeues_the_agencys_work_in_the_new_order(tmp_path):
    date = dt.date(2021, 6, 1)
    body = f'[[changes]]\ndate = {date}\nagencies.anama.policy = "agriculture_first"'
    c = campaign(sim.load_scenario(scenario(tmp_path, body), environ={}))
    # Drive the replication as run() does, without the change process, up to the date.
    for g, agency in enumerate(c.compiled.agencies):
        for delivery in agency.deliveries:
            for _ in range(delivery.count):
                c.env.process(c.asset_life(g, delivery.asset_type, delivery.day, delivery.withdrawn_day))
    c.env.process(c.open_zone())
    c.env.run(until=day(date))
    dispatch = c.land.dispatch
    order = ["agriculture", "roads", "housing", "infrastructure", "forest_pasture"]
    c.apply_change(c.compiled.changes[0])
    assert dispatch.policy_rank[ANAMA] == tuple(order.index(u) for u in LAND_USES)
    n, codes = dispatch.n, dispatch.codes[ANAMA]
    land_use = c.parcels.land_use
    first = c.world.goes_first if c.world.goes_first is not None else np.zeros(n, dtype=bool)
    queued = 0
    for per_class in dispatch.heaps[ANAMA]:
        for per_hazard in per_class:
            for per_terrain in per_hazard:
                for heap in per_terrain:
                    if not heap:
                        continue
                    queued += len(heap)
                    assert all(code == codes[code % n] for code in heap)  # every entry re-keyed
                    assert heap[0] == min(heap)  # and the queue a heap again
                    copy = list(heap)
                    popped = [heapq.heappop(copy) for _ in range(len(copy))]
                    # The high-threat land that goes before all else first, then the new land-use order.
                    ranks = [(not first[code % n], order.index(LAND_USES[land_use[code % n]])) for code in popped]
                    assert ranks == sorted(ranks)
    assert queued > 0


def test_after_a_policy_change_the_agency_turns_to_the_new_first_land_use(tmp_path):
    date = dt.date(2021, 6, 1)
    # No land goes before the land-use order (high_threat_first_share), so the order alone decides.
    by_order = "high_threat_first_share = 0"
    base_result = campaign(sim.load_scenario(scenario(tmp_path, by_order, "by_order"), environ={})).run()
    body = f'{by_order}\n[[changes]]\ndate = {date}\nagencies.anama.policy = "agriculture_first"'
    changed = campaign(sim.load_scenario(scenario(tmp_path, body), environ={})).run()
    agriculture = LAND_USES.index("agriculture")

    def first_steps_on_agriculture(log, k=60):  # past the steps that finish parcels started before the change
        rows = log[(log[:, COL["agency"]] == ANAMA) & (log[:, COL["t0"]] >= day(date))]
        rows = rows[np.argsort(rows[:, COL["t0"]], kind="stable")][:k]
        return int((rows[:, COL["land_use"]] == agriculture).sum())

    assert first_steps_on_agriculture(changed.log) > first_steps_on_agriculture(base_result.log) + 5


def test_better_maps_from_a_date_redraw_only_parcels_not_yet_surveyed(tmp_path, small_cfg):
    date = dt.date(2022, 1, 1)
    c = campaign(sim.load_scenario(scenario(tmp_path, f"[[changes]]\ndate = {date}\nmaps.map_accuracy = 1.0"), environ={}))
    result = c.run()
    nts = STAGES.index("non_technical_survey")
    rows = result.log[result.log[:, COL["stage"]] == nts]
    first_claim = {}
    for t0, parcel in rows[:, [COL["t0"], COL["parcel"]]]:
        first_claim[int(parcel)] = min(t0, first_claim.get(int(parcel), np.inf))
    world = c.world
    as_drawn = draw_map_state(world.map_draw, world.hazard, small_cfg.maps.map_accuracy, small_cfg.maps.new_maps_share)
    np.testing.assert_array_equal(world.map_state, as_drawn)  # the drawn truth itself is untouched
    earlier = [i for i, t0 in first_claim.items() if t0 < day(date)]
    later = [i for i, t0 in first_claim.items() if t0 > day(date)]
    state = np.array(c.parcels.map_state)
    assert np.array_equal(state[earlier], as_drawn[earlier])  # maps already used by survey stay as they were
    assert (as_drawn[later] == MAP_WRONG).any()  # the test can fail: some later parcels had wrong maps
    assert not (state[later] == MAP_WRONG).any()  # and now none has


def test_an_incident_change_keeps_the_months_before_it(tmp_path):
    # Exposure raised from the start so that the small world has incidents before the change.
    exposed = "[incidents]\ncivilian_exposure_rate_per_item_month = 0.002"
    base_result = campaign(sim.load_scenario(scenario(tmp_path, exposed, "exposed"), environ={})).run()
    date = dt.date(2022, 3, 15)
    body = f"{exposed}\n[[changes]]\ndate = {date}\nincidents.civilian_exposure_rate_per_item_month = 0.02"
    changed = campaign(sim.load_scenario(scenario(tmp_path, body), environ={})).run()
    month_start = day(date.replace(day=1))
    before = base_result.incidents[base_result.incidents[:, 0] < month_start]
    assert len(before) >= 1
    np.testing.assert_array_equal(changed.incidents[changed.incidents[:, 0] < month_start], before)
    assert len(changed.incidents) > 3 * len(base_result.incidents)


# ---------------------------------------------------------------------- errors, through the CLI
BAD_CHANGES = [
    ("date = 2024-01-01\nmaps.map_acuracy = 0.5", "changes.0.maps.map_acuracy: unknown key; did you mean 'map_accuracy'?"),
    ("date = 2024-01-01\nhorizon_years = 30", "changes.0.horizon_years: cannot change over time"),
    ("date = 2024-01-01\ndistricts.aghdam.map_coverage = 1.0", "changes.0.districts: cannot change over time"),
    ("date = 2024-01-01\nagencies.anama.deliveries = []", "changes.0.agencies.anama.deliveries: cannot change over time"),
    (
        "date = 2024-01-01\nincidents.soldier_awareness_floor = 0.5",
        "changes.0.incidents.soldier_awareness_floor: cannot change over time (soldiers' settings hold for the whole run",
    ),
    ("date = 2024-01-01\nmaps.map_accuracy = 1.5", "changes.0.maps.map_accuracy: Input should be less than or equal to 1"),
    ('date = 2024-01-01\nagencies.anama.policy = "dogs_first"', "changes.0.agencies.anama.policy: unknown policy 'dogs_first'"),
    ("date = 2024-01-01\nagencies.anamaa.policy = 'roads_first'", "changes.0.agencies.anamaa: unknown agency 'anamaa'"),
    ("date = 2019-01-01\nmaps.map_accuracy = 0.5", "changes.0.date: 2019-01-01 is outside the run"),
    ("date = 2040-01-01\nmaps.map_accuracy = 0.5", "changes.0.date: 2040-01-01 is outside the run"),
    ("date = 2024-01-01", "changes.0: sets nothing"),
]


@pytest.mark.parametrize(("change", "message"), BAD_CHANGES)
def test_a_bad_change_is_one_line_naming_the_file_the_change_and_the_key(tmp_path, change, message):
    path = scenario(tmp_path, f"[[changes]]\ndate = 2022-01-01\nmaps.map_accuracy = 0.4\n[[changes]]\n{change}")
    message = message.replace("changes.0", "changes.1")  # the second change is the bad one
    out = tmp_path / "out"
    proc = demining("run", path, "-n", 1, "-w", 1, "--no-plots", "--out", out)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert str(path) in proc.stderr and message in proc.stderr, proc.stderr
    assert not out.exists()


def test_config_show_prints_the_changes_in_date_order(tmp_path):
    body = (
        "[[changes]]\ndate = 2026-01-01\nnote = 'maps improve'\nmaps.map_accuracy = 0.5\n"
        "[[changes]]\ndate = 2023-01-01\nland_release.survey_cancellation = 0.5"
    )
    proc = demining("config", "show", scenario(tmp_path, body))
    assert proc.returncode == 0, proc.stderr
    shown = tomllib.loads(proc.stdout)["changes"]
    assert [c["date"] for c in shown] == [dt.date(2026, 1, 1), dt.date(2023, 1, 1)]
    assert shown[0] == {"date": dt.date(2026, 1, 1), "note": "maps improve", "maps": {"map_accuracy": 0.5}}


# ---------------------------------------------------------------------- --add
def test_added_machines_work_more_machine_steps(small_cfg, base_result):
    more = sim.load_scenario(SMALL, environ={}, additions=["anama:machine:6@2022-01-01"])
    added = more.agencies["anama"].extra_deliveries[-1]
    assert (added.asset_type, added.count, added.date, added.note) == ("machine", 6, dt.date(2022, 1, 1), "--add")
    machine = list(small_cfg.asset_types).index("machine")

    def machine_steps(result):
        log = result.log
        return int(((log[:, COL["asset_type"]] == machine) & (log[:, COL["agency"]] == ANAMA)).sum())

    # Seven machines instead of one from 2022 (the small world is mostly released by 2026).
    assert machine_steps(campaign(more).run()) > 1.5 * machine_steps(base_result)


def test_add_on_run_records_the_delivery_in_the_resolved_config(tmp_path):
    out = tmp_path / "out"
    proc = demining(
        "run",
        SMALL,
        "-n",
        1,
        "-w",
        1,
        "--no-plots",
        "--out",
        out,
        "--add",
        "anama:machine:3@2023-01-01",
        "--add",
        "mod:dog_team:2@2024-06-01",
    )
    assert proc.returncode == 0, proc.stderr
    written = tomllib.loads((out / "small" / "latest" / "config.toml").read_text())
    assert written["agencies"]["anama"]["extra_deliveries"][-1] == {
        "asset_type": "machine",
        "count": 3,
        "date": dt.date(2023, 1, 1),
        "note": "--add",
    }
    assert written["agencies"]["mod"]["extra_deliveries"][-1]["asset_type"] == "dog_team"


BAD_ADDITIONS = [
    ("anamaa:machine:30@2026-01-01", "unknown agency 'anamaa'; known: anama, mod"),
    ("anama:machin:30@2026-01-01", "unknown asset type 'machin'; known: manual_team"),
    ("anama:machine:0@2026-01-01", "count must be from 1 to 100,000, not 0"),
    ("anama:machine:lots@2026-01-01", "count 'lots' is not a whole number"),
    ("anama:machine:30@2026-02-30", "'2026-02-30' is not a date"),
    ("anama:machine:30@2040-01-01", "2040-01-01 is outside the campaign"),
    ("anama:machine:30", "expected AGENCY:ASSET_TYPE:COUNT@YYYY-MM-DD"),
]


@pytest.mark.parametrize(("addition", "message"), BAD_ADDITIONS)
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_a_bad_addition_is_one_line_naming_the_option(tmp_path, addition, message, command):
    out = tmp_path / "out"
    args = ("--grid", "maps.map_accuracy=0.3,0.5") if command == "sweep" else ()
    proc = demining(command, SMALL, *args, "-n", 1, "-w", 1, "--out", out, "--add", addition)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"--add {addition!r}: {message}" in proc.stderr, proc.stderr
    assert not out.exists()
