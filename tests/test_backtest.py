"""Backtests: the split by window end, held-out figures never reaching the fit, the errors of a
cutoff that leaves nothing to fit or to score, and `demining backtest` end to end."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

import sim.backtest
import sim.calibration
from sim.backtest import YEARLY_QUANTITIES, backtest, split_targets
from sim.calibration import PRIOR_STARTS, Fit
from sim.errors import UserError
from sim.provenance import PROVENANCE_KEYS
from sim.seeds import Target

from .conftest import SCENARIOS, SMALL, demining

CUTOFF = dt.date(2023, 12, 31)


def target(id: str, metric: str, value: float, start: str, end: str, agency: str = "all", use: str = "fit") -> Target:
    return Target(
        id=id,
        agency=agency,
        metric=metric,
        value=value,
        unit="",
        window_start=dt.date.fromisoformat(start),
        window_end=dt.date.fromisoformat(end),
        source="test",
        use=use,
    )


# Figures on either side of CUTOFF: a year ending on the cutoff day (training), one ending the
# next day (held out), a check figure before the cutoff (neither fitted nor held out) and one
# after it (held out: every later figure is scored, whatever its use).
TARGETS = [
    target("anama_processed_to_2022", "processed_ha", 8372.9, "2020-11-10", "2022-04-14", agency="anama"),
    target("processed_2023", "processed_ha", 53081.8, "2023-01-01", "2023-12-31"),
    target("victims_2023", "victims_total", 58, "2023-01-01", "2023-12-31"),
    target("ap_2023_checked", "items_ap", 3495, "2023-01-01", "2023-12-31", use="check"),
    target("processed_from_new_year", "processed_ha", 62023.9, "2023-01-02", "2024-01-01"),
    target("processed_2024", "processed_ha", 62023.9, "2024-01-01", "2024-12-31"),
    target("victims_2024", "victims_total", 41, "2024-01-01", "2024-12-31"),
    target("processed_to_2024_checked", "processed_ha", 249000, "2020-11-10", "2024-12-31", use="check"),
]
TRAINING = {"anama_processed_to_2022", "processed_2023", "victims_2023"}
HELD_OUT = {"processed_from_new_year", "processed_2024", "victims_2024", "processed_to_2024_checked"}


def test_split_is_by_window_end(small_cfg):
    split = split_targets(small_cfg, CUTOFF, TARGETS)
    assert {t.id for t in split.training} == TRAINING  # ends on the cutoff day: training
    assert {t.id for t in split.held_out} == HELD_OUT  # ends the day after: held out
    # A day earlier, the year ending on 31 December is held out too.
    earlier = split_targets(small_cfg, CUTOFF - dt.timedelta(days=1), TARGETS)
    assert {"processed_2023", "victims_2023"} <= {t.id for t in earlier.held_out}


OBJECTIVES = [5.0, 3.0, 4.0, 6.0]  # each start's fit objective in the spied backtests: the second is lowest


def test_the_fit_from_each_start_goes_on_and_the_lowest_objective_is_kept(small_cfg, monkeypatch):
    """One fit from the priors per start of PRIOR_STARTS, each told its start; the backtest projects
    the one that fits the figures by the cutoff best, and records every start's objective."""
    calls = []

    def spy(cfg, replications, seed, *, start, start_from_priors, band, **_):
        calls.append((start, start_from_priors))
        objective = OBJECTIVES[len(calls) - 1]
        return Fit(
            values={"land_release.survey_cancellation": 0.1 * len(calls)},
            table=pd.DataFrame(),
            objective=objective,
            evaluations=1,
            band=band,
        )

    monkeypatch.setattr(sim.backtest, "calibrate", spy)
    result = backtest(small_cfg, CUTOFF, 1, 2, 4, targets=TARGETS)
    assert calls == [(start, True) for start in PRIOR_STARTS]
    assert result.start_objectives == OBJECTIVES[: len(PRIOR_STARTS)] and result.kept_start == 1
    assert result.values == {"land_release.survey_cancellation": 0.2}  # the second start's: its objective is lower
    assert result.config.land_release.survey_cancellation == pytest.approx(0.2)
    # Each start's projection is scored on the held-out figures; the kept one's is the backtest's.
    assert len(result.start_scores) == len(PRIOR_STARTS)
    assert {k: v for k, v in result.start_scores[1].items() if k != "relative_error"} == result.scores
    kept_errors = result.scored.set_index("target")["relative_error"]
    assert result.start_scores[1]["relative_error"] == {t: pytest.approx(kept_errors[t]) for t in HELD_OUT}
    # The other start projects other values (cancellation 0.1, not 0.2): other hectares.
    assert set(result.start_scores[0]["relative_error"]) == HELD_OUT
    assert (
        result.start_scores[0]["relative_error"]["processed_2024"] != result.start_scores[1]["relative_error"]["processed_2024"]
    )
    calls.clear()
    one = backtest(small_cfg, CUTOFF, 1, 2, 4, targets=TARGETS, starts=1)
    assert calls == [(PRIOR_STARTS[0], True)] and one.start_objectives == [5.0] and len(one.start_scores) == 1
    n = len(PRIOR_STARTS)
    with pytest.raises(UserError, match=f"starts must be from 1 to {n}, not {n + 1}"):
        backtest(small_cfg, CUTOFF, 1, 2, 4, targets=TARGETS, starts=n + 1)


def test_a_start_replaces_the_priors_it_names_for_every_agency(small_cfg):
    """`calibrate(start=...)` starts each agency's block from the start's paces, not the priors, and
    the CLI's bound on --starts is the number of starts."""
    from sim.cli import BACKTEST_STARTS
    from sim.seeds import load_targets

    assert len(PRIOR_STARTS) == BACKTEST_STARTS
    targets = [t for t in load_targets() if t.agency == "anama" and t.window_end <= CUTOFF]
    start = PRIOR_STARTS[1]
    fit = sim.calibration.calibrate(
        small_cfg, 1, 0, max_evaluations=1, rounds=1, targets=targets, start_from_priors=True, start=start
    )
    first = next(h for h in fit.history if h["block"] == "agency anama")
    assert first["values"]["agencies.anama.clearance_productivity"] == pytest.approx(start["clearance_productivity"])
    assert first["values"]["agencies.anama.survey_productivity"] == pytest.approx(start["survey_productivity"])
    # A start naming the cancellation share starts the practice block there, not at its prior (0.4).
    start = PRIOR_STARTS[-1]
    assert start["survey_cancellation"] != 0.4
    fit = sim.calibration.calibrate(
        small_cfg, 1, 0, max_evaluations=1, rounds=1, targets=targets, start_from_priors=True, start=start
    )
    first = next(h for h in fit.history if h["block"] == sim.calibration.PRACTICE)
    assert first["values"]["land_release.survey_cancellation"] == pytest.approx(start["survey_cancellation"])


@pytest.mark.parametrize(
    "until, message",
    [
        (dt.date(2019, 1, 1), "the cutoff 2019-01-01 is before the scenario's start (2020-11-10)"),
        (dt.date(2021, 1, 1), "no figure to fit ends by the cutoff 2021-01-01 (the first ends 2022-04-14)"),
        (dt.date(2025, 1, 1), "no reported figure ends after the cutoff 2025-01-01 (the last ends 2024-12-31)"),
    ],
)
def test_a_cutoff_that_leaves_nothing_to_fit_or_score_is_an_error(small_cfg, until, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        split_targets(small_cfg, until, TARGETS)


def test_a_horizon_short_of_a_held_out_figure_is_an_error(small_cfg):
    short = small_cfg.model_copy(update={"horizon_years": 3.5})
    with pytest.raises(UserError, match="before the held-out figure .* ends .*; raise horizon_years"):
        backtest(short, CUTOFF, 1, 1, targets=TARGETS)


@pytest.fixture(scope="module")
def spied(small_cfg):
    """A backtest whose fit is replaced by a spy: what the fit was given, and the backtest."""
    received = []

    def spy(cfg, replications, seed, *, targets, band, **_):
        received.append([t.id for t in targets])
        return Fit(values={}, table=pd.DataFrame(), objective=0.0, evaluations=0, band=band)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sim.backtest, "calibrate", spy)
        result = backtest(small_cfg, CUTOFF, 1, 2, 4, targets=TARGETS)
    return received, result


def test_held_out_figures_are_never_given_to_the_fit(spied):
    received, result = spied
    assert len(received) == len(PRIOR_STARTS)  # one fit per start
    assert all(set(ids) == TRAINING for ids in received)
    scored = result.scored.set_index("target")
    assert set(scored.index[scored["held_out"]]) == HELD_OUT
    assert set(scored.index[scored["fitted"]]) == TRAINING
    assert not (scored["held_out"] & scored["fitted"]).any()
    inside = (scored["reported"] >= scored["simulated_p5"]) & (scored["reported"] <= scored["simulated_p95"])
    assert (scored["inside_band"] == inside).all()
    assert result.scores["held_out"] == len(HELD_OUT)


def test_yearly_series_cover_every_year_and_carry_the_yearly_figures(spied):
    _, result = spied
    yearly = result.yearly
    assert set(yearly["quantity"]) == set(YEARLY_QUANTITIES)
    assert sorted(set(yearly["year"])) == list(range(2020, 2025))
    assert len(yearly) == len(YEARLY_QUANTITIES) * 5
    assert (yearly["simulated_p5"] <= yearly["simulated_p50"]).all() and (
        yearly["simulated_p50"] <= yearly["simulated_p95"]
    ).all()
    reported = yearly.dropna(subset=["reported"]).set_index(["quantity", "year"])
    # Whole calendar years of national figures only: not the window from 2 January, not the cumulative one.
    assert set(reported["target"]) == {"processed_2023", "victims_2023", "ap_2023_checked", "processed_2024", "victims_2024"}
    assert reported.loc[("processed_ha", 2024), "held_out"] and not reported.loc[("processed_ha", 2024), "fitted"]
    assert reported.loc[("victims_total", 2023), "fitted"] and not reported.loc[("victims_total", 2023), "held_out"]
    assert not reported.loc[("items_ap", 2023), "fitted"] and not reported.loc[("items_ap", 2023), "held_out"]


def test_no_evaluation_of_a_real_fit_simulates_a_held_out_figure(small_cfg, monkeypatch):
    """A real (tiny) fit: every run it makes to evaluate its objective is recorded, and none of
    them is asked for a held-out figure; the scoring run afterwards is asked for all of them."""
    evaluated: list[set[str]] = []
    real_run = sim.calibration.run

    def recording_run(cfg, replications, seed, *, targets, **kwargs):
        evaluated.append({t.id for t in targets})
        return real_run(cfg, replications, seed, targets=targets, **kwargs)

    monkeypatch.setattr(sim.calibration, "run", recording_run)
    result = backtest(small_cfg, CUTOFF, 1, 1, 2, max_evaluations=2, rounds=1, starts=1, targets=TARGETS)
    assert result.fit.evaluations > 0 and len(evaluated) == result.fit.evaluations + 1  # the last: the fit's table
    assert set().union(*evaluated) == TRAINING
    assert set(result.fit_table["target"]) == TRAINING
    assert set(result.scored["target"]) == {t.id for t in TARGETS}


def test_a_fit_to_early_figures_leaves_out_deliveries_after_its_shortened_run(small_cfg):
    """The fit runs to a year past its last figure, before a delivery the scenario holds: the fit
    leaves the delivery out (a scenario refuses deliveries past its end), the projection keeps it."""
    data = small_cfg.model_dump()
    data["agencies"]["anama"]["deliveries"].append({"asset_type": "manual_team", "count": 2, "date": dt.date(2024, 5, 15)})
    cfg = type(small_cfg).model_validate(data)
    result = backtest(cfg, dt.date(2022, 4, 30), 1, 1, 2, max_evaluations=2, rounds=1, starts=1, targets=TARGETS)
    assert result.fit.evaluations > 0 and set(result.fit_table["target"]) == {"anama_processed_to_2022"}
    assert dt.date(2024, 5, 15) in [d.date for d in result.config.agencies["anama"].deliveries]
    shortened = cfg.shortened(1.0)
    assert shortened.end_date == dt.date(2021, 11, 10)
    assert [d.date for d in shortened.agencies["anama"].deliveries] == [
        d.date for d in cfg.agencies["anama"].deliveries if d.date <= dt.date(2021, 11, 10)
    ]
    assert cfg.shortened(99.0).horizon_years == cfg.horizon_years  # never longer


@pytest.mark.parametrize(
    "until, message",
    [
        ("2019-01-01", "error: --until: the cutoff 2019-01-01 is before the scenario's start (2020-11-10)"),
        ("2030-01-01", "error: --until: no reported figure ends after the cutoff 2030-01-01"),
        ("notadate", "error: --until 'notadate': not a date; give YYYY-MM-DD"),
    ],
)
def test_bad_cutoff_exit_2_one_line_nothing_written(tmp_path, until, message):
    out = tmp_path / "results"
    proc = demining("backtest", SMALL, "--until", until, "--out", out)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(message), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()


def test_backtest_command_writes_its_folder_and_scores_held_out_figures(tmp_path):
    out = tmp_path / "results"
    tiny = ("--max-evaluations", 2, "--rounds", 1, "--fit-replications", 1, "--replications", 2, "-w", 1, "--seed", 3)
    proc = demining("backtest", SMALL, "--until", "2023-12-31", *tiny, "--out", out)
    assert proc.returncode == 0, proc.stderr
    parent = out / "backtest"
    assert not [p.name for p in parent.iterdir() if p.name.startswith(".")], "temporary folder left behind"
    folder = (parent / "latest").resolve()
    names = {"backtest.csv", "yearly.csv", "fitted_values.toml", "config.toml", "backtest_fan.png", "metadata.json"}
    assert {p.name for p in folder.iterdir()} == names
    assert (folder / "backtest_fan.png").stat().st_size > 10_000
    scored = pd.read_csv(folder / "backtest.csv")
    held = scored[scored["held_out"]]
    assert len(held) > 0 and not held["fitted"].any()
    assert (pd.to_datetime(held["window_end"]) > pd.Timestamp(CUTOFF)).all()
    assert (pd.to_datetime(scored.loc[scored["fitted"], "window_end"]) <= pd.Timestamp(CUTOFF)).all()
    assert {"national_processed_2024", "national_uxo_2025", "victims_in_2024"} <= set(held["target"])
    yearly = pd.read_csv(folder / "yearly.csv")
    assert {"processed_ha", "items_ap", "items_at", "items_uxo", "victims_total"} <= set(yearly["quantity"])
    meta = json.loads((folder / "metadata.json").read_text())
    assert set(PROVENANCE_KEYS) <= set(meta) and meta["kind"] == "backtest"
    assert meta["until"] == "2023-12-31" and meta["replications"] == 2 and meta["fit_replications"] == 1
    assert meta["command"].startswith("demining backtest ")
    assert set(meta["held_out"]) == set(held["target"])
    assert "fitted_to_figures_ending_by = 2023-12-31" in (folder / "fitted_values.toml").read_text()
    assert "Held-out figures" in proc.stdout and "national_processed_2024" in proc.stdout
    lines = proc.stdout.strip().splitlines()
    last = lines[-1]
    # Each start's objective and projection, the kept one marked, before the kept projection's summary.
    start_lines = [line for line in lines if line.startswith("Start ")]
    assert len(start_lines) == len(PRIOR_STARTS) and sum("(kept)" in line for line in start_lines) == 1
    assert all("held-out figures in band, median absolute error hectares" in line for line in start_lines)
    assert [s["held_out"] for s in meta["start_scores"]] == [len(held)] * len(PRIOR_STARTS)
    assert set(meta["start_scores"][0]["relative_error"]) <= set(held["target"])
    assert f"of {len(held)} held-out figures inside the 5-95 % band; median absolute error: hectares" in last


def test_parameters_the_cutoff_cannot_fit_go_back_to_their_priors():
    """With a cutoff before 2023 the Defence Ministry's 2023 figure is held out, so its later pace
    cannot be fitted: the backtest must not keep the committed value, which saw that figure."""
    from sim.backtest import unfittable_at_priors
    from sim.seeds import load_targets

    cfg = sim.load_scenario(SCENARIOS / "baseline.toml", environ={})
    assert cfg.agencies["mod"].later_pace_share != 1.0  # the committed fit
    targets = load_targets()
    early = unfittable_at_priors(cfg, split_targets(cfg, dt.date(2022, 12, 31), targets), targets)
    assert early.agencies["mod"].later_pace_share == 1.0
    late = unfittable_at_priors(cfg, split_targets(cfg, dt.date(2023, 12, 31), targets), targets)
    assert late.agencies["mod"].later_pace_share == cfg.agencies["mod"].later_pace_share
