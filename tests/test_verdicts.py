"""Verdicts reused (sim.verdicts), on the small world: a what-if conditioned on the baseline's past
given the baseline's verdicts keeps the same attempts and gives the same tables bit for bit without
simulating a single past; the tally stays the same and says how many verdicts were reused; a key
that differs in anything that decides a verdict reuses nothing, and a file that does not check out
is ignored; `demining run` keeps verdicts under the results root and the next run of the same past
reuses them. The model discrepancy measured for a past is reused the same way (`ReferenceCache`):
the same figures to the last bit, so the same run, without the reference pasts simulated."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

import sim
from sim.uncertainty import Uncertainty, make_uncertainty
from sim.verdicts import FOLDER, ReferenceCache, VerdictCache, reference_key, verdict_key

from .conftest import SMALL, TEST_SCENARIOS, assert_resume_reuses_the_kept_verdicts, counting_pasts, demining

TABLES = ("per_replication", "targets", "completion", "per_year", "released", "monthly", "districts", "incidents", "utilisation")
# Stricter than the default (3), so that the small world rejects most draws, as the baseline does.
THRESHOLD = 2.5


def _stricter(draws: Uncertainty, threshold: float = THRESHOLD) -> Uncertainty:
    return dataclasses.replace(draws, condition=dataclasses.replace(draws.condition, threshold=threshold))


@pytest.fixture(scope="module")
def more_cfg():
    return sim.load_scenario(TEST_SCENARIOS / "small_more_machines.toml", environ={})


@pytest.fixture(scope="module")
def base_draws(small_cfg):
    return _stricter(make_uncertainty(small_cfg, "all", condition=True))


@pytest.fixture(scope="module")
def more_draws(more_cfg):
    return _stricter(make_uncertainty(more_cfg, "all", condition=True))


@pytest.fixture(scope="module")
def baseline(small_cfg, base_draws):
    return sim.run(small_cfg, replications=3, seed=7, uncertainty=base_draws, workers=1)


def _assert_same_run(fresh, reused) -> None:
    """The same kept attempts, tally, summary and tables; only what says what was reused may differ."""
    one, two = dict(fresh.summary["conditioning"]), dict(reused.summary["conditioning"])
    for record in (one, two):
        record.pop("verdicts_reused"), record.pop("reference_reused")
    assert one == two
    assert {k: v for k, v in fresh.summary.items() if k != "conditioning"} == {
        k: v for k, v in reused.summary.items() if k != "conditioning"
    }
    assert fresh.events_processed == reused.events_processed
    for table in TABLES:
        pd.testing.assert_frame_equal(getattr(fresh, table), getattr(reused, table))


def test_a_what_if_given_the_baselines_verdicts_is_the_same_run(small_cfg, more_cfg, more_draws, baseline, monkeypatch):
    # The what-if's past is the baseline's: one key, under another scenario name.
    assert more_draws.condition.history is not None
    assert verdict_key(small_cfg, baseline.uncertainty, 7) == verdict_key(more_cfg, more_draws, 7)
    record = baseline.summary["conditioning"]
    assert sorted(baseline.verdicts) == list(range(record["attempts"])) and record["verdicts_reused"] == 0
    assert record["attempts"] > 2 * record["accepted"]  # mostly rejections: what reuse skips
    fresh = sim.run(more_cfg, replications=3, seed=7, uncertainty=more_draws, workers=1)
    judged = counting_pasts(monkeypatch)
    reused = sim.run(more_cfg, replications=3, seed=7, uncertainty=more_draws, workers=1, verdicts=baseline.verdicts)
    assert judged == []  # no past simulated: rejected attempts skipped, accepted ones not judged again
    _assert_same_run(fresh, reused)
    tally = reused.summary["conditioning"]
    assert tally["accepted_attempts"] == record["accepted_attempts"]
    assert tally["verdicts_reused"] == tally["attempts"] == record["attempts"]
    assert f"{tally['attempts']} verdicts reused" in sim.conditioning.tally_text(tally)
    assert reused.verdicts == fresh.verdicts == baseline.verdicts
    # On two workers too (the reused rejections are decided in the parent, in attempt order).
    monkeypatch.undo()
    two = sim.run(more_cfg, replications=3, seed=7, uncertainty=more_draws, workers=2, verdicts=baseline.verdicts)
    _assert_same_run(fresh, two)


def test_the_baseline_given_its_own_verdicts_is_the_same_run(small_cfg, base_draws, baseline, monkeypatch):
    # Its own past: the accepted attempts still simulate it (stopped at its end, as judged), unjudged.
    judged = counting_pasts(monkeypatch)
    some = {j: v for j, v in baseline.verdicts.items() if j % 2 == 0}  # the others judged afresh
    again = sim.run(small_cfg, replications=3, seed=7, uncertainty=base_draws, workers=1, verdicts=some)
    assert len(judged) == len(baseline.verdicts) - len(some)
    assert again.summary["conditioning"]["verdicts_reused"] == len(some)
    _assert_same_run(baseline, again)


def test_a_changed_key_reuses_nothing(small_cfg, more_cfg, base_draws, more_draws):
    key = verdict_key(small_cfg, base_draws, 7)
    assert verdict_key(small_cfg, base_draws, 8) != key  # another seed: other draws
    assert verdict_key(small_cfg, _stricter(base_draws, 2.4), 7) != key  # another threshold
    rule = dataclasses.replace(base_draws.condition, past_day=base_draws.condition.past_day - 1)
    assert verdict_key(small_cfg, dataclasses.replace(base_draws, condition=rule), 7) != key  # another past's end
    fewer = dataclasses.replace(base_draws, inputs=base_draws.inputs[1:])
    assert verdict_key(small_cfg, fewer, 7) != key  # other uncertain inputs drawn
    wider = dataclasses.replace(base_draws.inputs[0], high=base_draws.inputs[0].high * 1.01)
    assert verdict_key(small_cfg, dataclasses.replace(base_draws, inputs=(wider, *base_draws.inputs[1:])), 7) != key
    figure = dataclasses.replace(base_draws.condition.figures[0], sigma_disc=0.5)
    other = dataclasses.replace(base_draws.condition, figures=(figure, *base_draws.condition.figures[1:]))
    assert verdict_key(small_cfg, dataclasses.replace(base_draws, condition=other), 7) != key  # another fit's figures
    changed = small_cfg.model_copy(update={"return_wave_share": 0.5})
    assert verdict_key(changed, base_draws, 7) != key  # another past
    assert verdict_key(small_cfg.model_copy(update={"name": "renamed"}), base_draws, 7) == key  # a label only
    assert verdict_key(small_cfg, None, 7) is None  # nothing drawn, nothing judged
    # The what-if judged on its own past (not the baseline's): another key.
    own = dataclasses.replace(more_draws, condition=dataclasses.replace(more_draws.condition, history=None))
    assert verdict_key(more_cfg, own, 7) != key


def test_the_cache_keeps_verdicts_exactly_and_trusts_no_other_file(tmp_path, small_cfg, base_draws, baseline):
    key, other = verdict_key(small_cfg, base_draws, 7), verdict_key(small_cfg, base_draws, 8)
    folder = tmp_path / FOLDER
    VerdictCache(folder).keep(key, baseline.verdicts, {"scenario": "small", "seed": 7})
    assert [p.name for p in folder.iterdir()] == [f"{key}.json"]  # no temporary file left
    assert VerdictCache(folder).known(key) == baseline.verdicts  # floats and all, through JSON
    assert VerdictCache(folder).known(other) == {}
    # Two runs of the same past finishing one after the other: the file holds both runs' verdicts.
    first, second = VerdictCache(folder / "two"), VerdictCache(folder / "two")
    first.keep(key, {j: v for j, v in baseline.verdicts.items() if j % 2})
    second.keep(key, {j: v for j, v in baseline.verdicts.items() if not j % 2})
    assert VerdictCache(folder / "two").known(key) == baseline.verdicts
    # A file under the wrong name, of another format, or with a damaged verdict is not trusted.
    record = json.loads((folder / f"{key}.json").read_text())
    (folder / f"{other}.json").write_text(json.dumps(record))
    assert VerdictCache(folder).known(other) == {}
    for damaged in (
        record | {"format": 0},
        record | {"verdicts": {"0": {"accepted": "yes"}}},
        record | {"verdicts": {"x": record["verdicts"]["0"]}},
    ):
        (folder / f"{key}.json").write_text(json.dumps(damaged))
        assert VerdictCache(folder).known(key) == {}
    (folder / f"{key}.json").write_text('{"format": 1, "key": ')
    assert VerdictCache(folder).known(key) == {}


def test_a_what_if_run_after_the_baseline_reuses_its_verdicts(tmp_path):
    out = tmp_path / "results"
    quick = ("-n", "2", "--seed", "7", "-w", "1", "--no-plots", "--out", out)
    base = demining("run", SMALL, *quick)
    assert base.returncode == 0, base.stderr
    assert len(list((out / FOLDER).glob("[0-9a-f]*.json"))) == 1  # the verdicts (and reference-*.json)
    what_if = demining("run", TEST_SCENARIOS / "small_more_machines.toml", *quick)
    assert what_if.returncode == 0, what_if.stderr
    assert "verdicts reused from an earlier run with the same past" in what_if.stdout
    assert "model discrepancy reused from an earlier run with the same past" in what_if.stdout
    assert len(list((out / FOLDER).glob("reference-*.json"))) == 1  # the baseline's, reused
    tallies = [_tally(out, "small"), _tally(out, "small_more_machines")]
    assert not tallies[0]["reference_reused"] and tallies[1]["reference_reused"]
    assert tallies[1]["verdicts_reused"] == tallies[1]["attempts"] == tallies[0]["attempts"]
    assert tallies[1]["accepted_attempts"] == tallies[0]["accepted_attempts"]
    # Another seed: other draws, nothing reused.
    other = demining("run", TEST_SCENARIOS / "small_more_machines.toml", *quick[:2], "--seed", "8", *quick[4:])
    assert other.returncode == 0, other.stderr
    assert _tally(out, "small_more_machines")["verdicts_reused"] == 0
    assert _tally(out, "small_more_machines")["reference_reused"]  # the reference does not depend on the seed


def _tally(out, scenario: str) -> dict:
    """The conditioning record of a scenario's latest run under `out`."""
    return json.loads((out / scenario / "latest" / "summary.json").read_text())["conditioning"]


def _counting_reference_pasts(monkeypatch) -> list:
    """Every reference past simulated from now on (sim.ensemble's `simulate_past`), recorded."""
    from sim import ensemble

    simulated, real = [], ensemble.simulate_past

    def simulate_past(*args):
        simulated.append(args[1])
        return real(*args)

    monkeypatch.setattr(ensemble, "simulate_past", simulate_past)
    return simulated


def test_a_reused_reference_gives_the_same_conditioning_and_run(tmp_path, small_cfg, more_cfg, more_draws, monkeypatch):
    folder = tmp_path / FOLDER
    simulated = _counting_reference_pasts(monkeypatch)
    base = make_uncertainty(small_cfg, "all", condition=True, references=ReferenceCache(folder))
    assert len(simulated) == 8 and not base.condition.reference["reused"]
    assert len(list(folder.glob("reference-*.json"))) == 1 and not list(folder.glob(".*"))  # no temporary file
    # The what-if's history is the baseline: its measurement is read back, no past simulated.
    simulated.clear()
    draws = _stricter(make_uncertainty(more_cfg, "all", condition=True, references=ReferenceCache(folder)))
    assert simulated == [] and draws.condition.reference["reused"]
    assert draws.condition.reference["measured"] == base.condition.reference["measured"]  # when it was measured
    assert draws.condition.figures == more_draws.condition.figures  # every sigma, bit for bit (through JSON)
    assert [f.sigma_disc for f in draws.condition.figures] == [f.sigma_disc for f in more_draws.condition.figures]
    assert draws == more_draws and verdict_key(more_cfg, draws, 7) == verdict_key(more_cfg, more_draws, 7)
    monkeypatch.undo()
    fresh = sim.run(more_cfg, replications=2, seed=7, uncertainty=more_draws, workers=1)
    reused = sim.run(more_cfg, replications=2, seed=7, uncertainty=draws, workers=1)
    _assert_same_run(fresh, reused)
    assert not fresh.summary["conditioning"]["reference_reused"] and reused.summary["conditioning"]["reference_reused"]
    assert "model discrepancy reused" in sim.conditioning.tally_text(reused.summary["conditioning"])


def test_a_changed_reference_key_reuses_nothing_and_a_damaged_file_is_ignored(tmp_path, small_cfg, base_draws):
    cond = base_draws.condition
    chosen, day = list(cond.targets), cond.past_day  # every figure the small world has is chosen
    key = reference_key(small_cfg, chosen, day)
    assert reference_key(small_cfg.model_copy(update={"name": "renamed", "question": "?"}), chosen, day) == key
    others = {
        "past_day": reference_key(small_cfg, chosen, day - 1),
        "config": reference_key(small_cfg.model_copy(update={"return_wave_share": 0.5}), chosen, day),
        "targets": reference_key(small_cfg, chosen[1:], day),
        "target value": reference_key(small_cfg, [chosen[0].model_copy(update={"value": 1.0}), *chosen[1:]], day),
    }
    assert key not in others.values() and len(set(others.values())) == len(others)
    folder = tmp_path / FOLDER
    measurement = {"sigma_disc": {f.target.id: f.sigma_disc for f in cond.figures}, "measured": "2026-11-26"}
    ReferenceCache(folder).keep(small_cfg, chosen, day, measurement)
    assert ReferenceCache(folder).measured(small_cfg, chosen, day) == measurement
    assert ReferenceCache(folder).measured(small_cfg, chosen, day - 1) is None
    assert ReferenceCache(folder).measured(small_cfg, chosen[1:], day) is None
    assert ReferenceCache(folder).measured(small_cfg.model_copy(update={"return_wave_share": 0.5}), chosen, day) is None
    path = folder / f"reference-{key}.json"
    record = json.loads(path.read_text())
    first = chosen[0].id
    for damaged in (
        record | {"format": 0},
        record | {"key": others["past_day"]},
        record | {"measurement": {"sigma_disc": measurement["sigma_disc"] | {first: "0.1"}, "measured": "x"}},
        record | {"measurement": {"sigma_disc": measurement["sigma_disc"] | {first: -0.1}, "measured": "x"}},
        record | {"measurement": {"sigma_disc": measurement["sigma_disc"] | {"no such figure": 0.1}, "measured": "x"}},
        record | {"measurement": {"sigma_disc": measurement["sigma_disc"]}},
    ):
        path.write_text(json.dumps(damaged))
        assert ReferenceCache(folder).measured(small_cfg, chosen, day) is None
    path.write_text('{"format": 1, "key": ')
    assert ReferenceCache(folder).measured(small_cfg, chosen, day) is None
    # A cache that cannot be written costs only the reuse, and says why.
    blocked = tmp_path / "file"
    blocked.write_text("")
    cache = ReferenceCache(blocked / FOLDER)
    cache.keep(small_cfg, chosen, day, measurement)
    assert cache.unkept and cache.measured(small_cfg, chosen, day) == measurement  # still in memory


def test_an_interrupted_run_keeps_its_verdicts_and_the_resume_reuses_them(tmp_path, monkeypatch):
    # Ctrl-C (a KeyboardInterrupt where the second kept replication is being written) on a run that
    # rejects most draws (THRESHOLD): the verdicts decided by then are kept, and the resume reuses
    # them: the rejections are not simulated again, and the tables are those of an unstopped run.
    # tests/test_reliability.py stops a run the same way with a real SIGINT, at no set point.
    import sim.cli
    import sim.results

    real_make, real_write = sim.cli.make_uncertainty, sim.results.write_bytes_atomically
    monkeypatch.setattr(sim.cli, "make_uncertainty", lambda *a, **k: _stricter(real_make(*a, **k)))
    quick = ("-n", "3", "--seed", "7", "-w", "1", "--no-plots")
    whole = demining("run", SMALL, *quick, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    written = []

    def write(path, data):
        if path.name.startswith("monthly-"):
            written.append(path.name)
            if len(written) == 2:
                raise KeyboardInterrupt
        real_write(path, data)

    monkeypatch.setattr(sim.results, "write_bytes_atomically", write)
    out = tmp_path / "stopped"
    stopped = demining("run", SMALL, *quick, "--out", out)
    assert stopped.returncode == 130, stopped.stderr
    assert "demining run --resume" in stopped.stderr and "Traceback" not in stopped.stderr
    monkeypatch.undo()
    kept, parts = assert_resume_reuses_the_kept_verdicts(out, (tmp_path / "whole" / "small" / "latest").resolve(), monkeypatch)
    assert len(parts) == 1 and sum(v["accepted"] for v in kept.values()) == 2  # stopped writing the second
    assert sum(not v["accepted"] for v in kept.values()) >= 1
