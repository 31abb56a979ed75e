"""The uncertainty band: one convention for every table, summary and plot.

Outcomes over replications are reported as the median with a band between two quantiles. `BAND`
is the default everywhere (summary, targets, comparisons, sweeps, plots); a run, comparison or
sweep can use another (`--band 10-90` on the command line, `band=` in the API), and its column
names and labels follow it: `p5`/`p95` for the default, `p10`/`p90` for a 10-90 band.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UserError


@dataclass(frozen=True)
class Band:
    """Lower and upper quantile of the band, as fractions (0.05, 0.95)."""

    low: float
    high: float

    def __post_init__(self):
        if not 0 < self.low < 0.5 < self.high < 1:
            raise ValueError(f"a band needs 0 < low < 0.5 < high < 1, not {self.low}-{self.high}")

    @property
    def quantiles(self) -> tuple[float, float, float]:
        """(low, median, high), the order tables are built in."""
        return (self.low, 0.5, self.high)

    @property
    def low_name(self) -> str:
        return _name(self.low)

    @property
    def high_name(self) -> str:
        return _name(self.high)

    @property
    def label(self) -> str:
        """For plots and table headings: '5-95 %'."""
        return f"{_percent(self.low)}-{_percent(self.high)} %"

    def as_dict(self) -> dict:
        return {"low": self.low, "high": self.high}


def _percent(q: float) -> str:
    return f"{round(q * 100, 6):g}"


def _name(q: float) -> str:
    """Column-name suffix of a quantile: 0.05 -> 'p5', 0.025 -> 'p2.5'."""
    return "p" + _percent(q)


BAND = Band(0.05, 0.95)


def parse_band(text: str) -> Band:
    """'5-95' (percentages) as a Band; a one-line UserError otherwise."""
    try:
        low, high = (float(part) / 100 for part in text.replace("%", "").split("-"))
        return Band(low, high)
    except ValueError:
        raise UserError(f"--band {text!r}: expected two percentages LOW-HIGH around the median, e.g. 5-95 or 10-90") from None


def band_of(summary: dict) -> Band:
    """The band a run's summary was written with (runs from before bands were recorded used 5-95)."""
    recorded = summary.get("band")
    return Band(recorded["low"], recorded["high"]) if recorded else BAND
