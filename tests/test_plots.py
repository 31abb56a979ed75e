"""Figures a planner reads at a glance: unfinished shown as unfinished, no code names, colour bars,
legends off the data, and a footer saying where the figure comes from."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from sim import plots  # noqa: E402
from sim.compare import Asked, compare_runs, from_result, national_outcomes  # noqa: E402
from sim.outputs import comparison_figures  # noqa: E402


def _texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))


def _legends_outside(fig) -> bool:
    """Every legend sits beside its axes (to the right), not over the data."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        if legend.get_window_extent(renderer).x0 < ax.get_window_extent(renderer).x1 - 1:
            return False
    return True


@pytest.fixture(scope="module")
def unfinished():
    """A completion table where one district finishes in 1 of 4 replications and another never."""
    rows = []
    for rep in range(4):
        rows.append((rep, "fuzuli", pd.Timestamp("2025-01-01") + pd.Timedelta(days=30 * rep)))
        rows.append((rep, "lachin", pd.Timestamp("2031-06-01") if rep == 0 else pd.NaT))
        rows.append((rep, "kalbajar", pd.NaT))
        rows.append((rep, "all", pd.NaT))
    return pd.DataFrame(rows, columns=["replication", "district", "completion_date"])


def test_unfinished_districts_are_not_drawn_at_the_horizon(unfinished):
    horizon = pd.Timestamp("2032-11-10")
    fig = plots.completion_dates(unfinished, horizon, footer="f", start=pd.Timestamp("2020-11-10"))
    ax = fig.axes[0]
    dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
    drawn = {pd.Timestamp(x) for line in dots for x in np.atleast_1d(line.get_xdata())}
    assert drawn and all(d < horizon for d in drawn)  # no median drawn at the horizon
    text = _texts(fig)
    assert "none finished" in text and "3 of 4 not finished" in text
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == "All districts" and "Kalbajar" in labels and "kalbajar" not in labels
    assert _legends_outside(fig)
    matplotlib.pyplot.close(fig)


def test_every_run_figure_has_a_footer_and_plain_labels(small_run, tmp_path):
    paths = plots.save_run_plots(tmp_path, small_run)
    assert len(paths) == 10  # spend per year too: the small world has costs
    footer = plots.run_footer(small_run.config.name, small_run.replications, small_run.seed, 0.004, small_run.band)
    assert "4 replications, seed 11" in footer and "scaled by 0.004" in footer
    for figure in (
        plots.released_over_time(small_run.released, footer=footer),
        plots.items_per_year(small_run.per_year, footer=footer),
        plots.targets_vs_reported(small_run.targets, footer=footer),
        plots.waiting_by_year(small_run.waiting_by_year, footer=footer),
    ):
        text = _texts(figure)
        assert footer.split(";")[0] in text.replace("\n", " ")
        assert "_" not in "".join(t.get_text() for ax in figure.axes for t in ax.get_yticklabels())  # no code names
        assert _legends_outside(figure)
        matplotlib.pyplot.close(figure)


def test_comparison_figures_answer_the_question(small_run, small_cfg):
    import sim

    more = sim.run(small_cfg.model_copy(update={"name": "more"}), replications=4, seed=11)  # same world: no difference
    comparison = compare_runs([from_result(small_run, "small"), from_result(more, "more")], asked=Asked(districts=("fuzuli",)))
    figures = comparison_figures(comparison)
    assert set(figures) >= {"Difference from the reference over time", "Difference by district", "Difference from the reference"}
    for title, fig in figures.items():
        text = _texts(fig).replace("\n", " ")
        assert "4 replications each, seed 11 (paired)" in text, title
        assert _legends_outside(fig), title
        for ax in fig.axes:  # a difference of nothing is shown around zero, not on an axis of 1e-12
            assert ax.xaxis.get_offset_text().get_text() == "", title
        matplotlib.pyplot.close(fig)
    # Identical runs: every difference is zero.
    outcomes = national_outcomes(comparison.asked)
    assert (comparison.table.iloc[1][[f"{o.key}_diff{'_months' if o.is_date else ''}_p50" for o in outcomes]] == 0).all()


def test_sweep_heatmap_has_colour_bars_and_says_not_finished():
    points = pd.DataFrame(
        {
            "maps.map_accuracy": [0.25, 0.25, 0.75, 0.75],
            "agencies.anama.clearance_productivity": [1, 2, 1, 2],
            "all_released_p50_years": [12.0, 8.0, 11.0, 7.0],
            "share_done_by_horizon": [0.0, 1.0, 1.0, 1.0],
            "civilian_casualties_at_horizon_mean": [30.0, 20.0, 25.0, 15.0],
        }
    )
    fig = plots.sweep_heatmaps(points, ["maps.map_accuracy", "agencies.anama.clearance_productivity"], "the footer")
    assert len(fig.axes) == 4  # two heatmaps, each with its colour bar
    text = _texts(fig)
    assert "not finished" in text and "12.0" not in text  # the unfinished point is not shown as the horizon
    assert "ANAMA: clearance productivity" in text and "the footer" in text
    matplotlib.pyplot.close(fig)


def test_casualties_plot_shows_soldiers_and_reads_runs_made_before_them(small_run):
    """A run of revision 11 shows soldiers in the casualties plot; a per-year table written
    before soldiers were modelled (no soldier columns) still plots, without them."""
    per_year = small_run.per_year
    labels = lambda fig: {t.get_text() for t in fig.axes[0].get_legend().get_texts()}  # noqa: E731
    assert {"soldiers killed", "soldiers injured", "civilians injured"} <= labels(plots.casualties_per_year(per_year))
    older = per_year.drop(columns=["soldier_killed", "soldier_injured"])
    assert not {"soldiers killed", "soldiers injured"} & labels(plots.casualties_per_year(older))


@pytest.mark.parametrize("width_in, size_pt", [(6.0, 8.0), (12.0, 8.0), (18.0, 12.0)])
def test_a_wide_figures_footer_is_set_larger_as_the_page_shrinks_it(width_in, size_pt):
    """A figure wider than FOOTER_FULL_SIZE_WIDTH_IN is shown shrunk to the page: its footer grows
    with its width, so that it reads as large as a narrow figure's, and it wraps to fewer characters."""
    fig = plots.plt.figure(figsize=(width_in, 3))
    text = "run: baseline, 20 replications, seed 7; " * 20
    plots.add_footer(fig, text)
    footer = fig.texts[-1]
    assert footer.get_fontsize() == pytest.approx(size_pt)
    longest = max(len(line) for line in footer.get_text().splitlines())
    assert longest <= max(60, width_in * 15 * 8 / size_pt)
    plots.plt.close(fig)


def _released_bands(finish: dict[str, str | None], total: float = 1000.0) -> pd.DataFrame:
    """Band tables for district "all": each scenario's low edge reaches `total` at its finish month
    (None: never), its high edge a year before."""
    months = pd.date_range("2020-11-01", "2055-11-01", freq="MS")
    frames = []
    for name, done in finish.items():
        end = pd.Timestamp(done) if done else months[-1] + pd.DateOffset(years=10)
        low = np.clip((months - months[0]).days / (end - months[0]).days, 0, 1) * total
        high = np.minimum(low * 1.2, total)
        frames.append(
            pd.DataFrame(
                {
                    "scenario": name,
                    "district": "all",
                    "month": months,
                    "low": low,
                    "median": (low + high) / 2,
                    "high": high,
                    "initial_ha": total,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_released_area_axis_ends_two_years_after_every_run_is_done_not_at_the_horizon():
    from matplotlib.dates import num2date

    def right_end(fig) -> pd.Timestamp:
        return pd.Timestamp(num2date(fig.axes[0].get_xlim()[1])).tz_localize(None).normalize()

    finished = _released_bands({"baseline": "2030-01-01", "better_maps": "2032-06-01"})
    fig = plots.compare_released(finished)
    assert right_end(fig) == pd.Timestamp("2034-06-01")  # the later finish, plus two years
    matplotlib.pyplot.close(fig)
    one = plots.released_over_time(finished[finished["scenario"] == "baseline"].drop(columns="scenario"))
    assert right_end(one) == pd.Timestamp("2032-01-01")
    matplotlib.pyplot.close(one)
    # A run whose band never reaches all the land keeps the whole run on the axis.
    unfinished = _released_bands({"baseline": "2030-01-01", "slow": None})
    fig = plots.compare_released(unfinished)
    assert right_end(fig) >= pd.Timestamp("2055-11-01")
    matplotlib.pyplot.close(fig)


def test_difference_in_area_ends_two_years_after_the_last_difference_but_casualties_run_on():
    from matplotlib.dates import num2date

    from sim.bands import BAND

    months = pd.date_range("2020-11-01", "2055-11-01", freq="MS")
    gap = np.where(months < pd.Timestamp("2031-01-01"), 1000.0, 1e-9)  # rounding noise once all is released
    released = pd.DataFrame({"scenario": "faster", "month": months, "low": gap / 2, "median": gap, "high": gap * 2})
    column = "civilian_casualties_avoided_since_start"
    years = pd.DataFrame(
        {"scenario": "faster", "year": range(2020, 2056), f"{column}_mean": 1.0,
         f"{column}_{BAND.low_name}": 0.0, f"{column}_{BAND.high_name}": 2.0}
    )  # fmt: skip
    fig = plots.compare_difference_over_time(released, years, "baseline")
    area, people = fig.axes[0], fig.axes[1]
    assert pd.Timestamp(num2date(area.get_xlim()[1])).tz_localize(None).normalize() == pd.Timestamp("2032-12-01")
    assert pd.Timestamp(num2date(people.get_xlim()[1])).year >= 2055
    matplotlib.pyplot.close(fig)
