"""Reported figures (calibration targets) and model inputs, read from `seeds/*.csv`.

Each row is one figure with its window and the source it came from. Targets are what the
simulated baseline must reproduce; inputs are the priors the scenarios are built from.
"""

from __future__ import annotations

import csv
import datetime as dt
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import UserError

TARGET_METRICS = (
    "released_ha",
    "processed_ha",
    "items_total",
    "items_mines",
    "items_ap",
    "items_at",
    "items_uxo",
    "roads_km",
    "houses",
    "aerial_survey_ha",
    "victims_total",
    "victims_killed",
    "victims_civilian",
    "victims_military",
    "victims_outside_former_loc_share",
    "cancelled_share",
)


class SeedRow(BaseModel):
    """One reported figure: what was measured, by whom, over which window, and where it was said."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    agency: str
    metric: str
    value: float | None = Field(None, description="The figure; empty only for a date, given as the window.")
    unit: str
    window_start: dt.date | None = None
    window_end: dt.date | None = None
    district: str | None = None
    source: str
    note: str = ""

    @field_validator("window_start", "window_end", "district", "value", mode="before")
    @classmethod
    def _blank_is_none(cls, value):
        return None if value == "" else value

    @model_validator(mode="after")
    def _value_or_date(self):
        if self.value is None and self.unit != "date":
            raise ValueError("value is empty; only rows with unit 'date' may leave it empty")
        return self

    @field_validator("source")
    @classmethod
    def _source_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("every figure must name its source")
        return value


class Target(SeedRow):
    """A reported figure the model is compared with: a total over a dated window, for one agency
    or `all`. `metric` names the model quantity it is compared with (see TARGET_METRICS):
    `processed_ha` is what Azerbaijan's agencies report as "cleared" (land released by technical
    survey and clearance, battle-area clearance included; never survey cancellation);
    `released_ha` is IMAS land release by every method, cancellation included; `victims_military`
    counts soldiers and operators' staff hurt (the record's military casualties); `cancelled_share`
    is the share of the land released in the window that survey cancelled (none is published for
    Azerbaijan: its one row is the comparators' share, fitted as a prior)."""

    use: Literal["fit", "check"] = Field(
        "fit",
        description="fit: calibration fits it; check: compared and reported, not fitted (held out, or not yet fitted).",
    )

    @field_validator("use", mode="before")
    @classmethod
    def _blank_is_fit(cls, value):
        return "fit" if value in ("", None) else value

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in TARGET_METRICS:
            raise ValueError(f"unknown target metric {value!r}; allowed: {', '.join(TARGET_METRICS)}")
        return value

    @field_validator("window_end")
    @classmethod
    def _window_required(cls, value):
        if value is None:
            raise ValueError("a target needs a window")
        return value


PACKAGED_SEEDS = "_seeds"  # where the build puts a copy of `seeds/` inside the package (pyproject.toml)


def seeds_dir() -> Traversable:
    """The `seeds/` folder: in a source checkout the canonical top-level one, so that an edit counts
    at once even in an editable install; in an installed package the copy shipped inside it."""
    package = Path(__file__).resolve().parent
    checkout = package.parent / "seeds"
    if (package.parent / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    return resources.files("sim") / PACKAGED_SEEDS


def _read_rows(path: Traversable, model: type[SeedRow]) -> list:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read seeds file ({exc.strerror})", source=str(path)) from None
    rows = []
    ids = set()
    for line_no, raw in enumerate(csv.DictReader(text.splitlines()), start=2):
        try:
            row = model.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            raise UserError(f"row {line_no}, column {key}: {err['msg']}", source=str(path)) from None
        if row.id in ids:
            raise UserError(f"row {line_no}: duplicate id {row.id!r}", source=str(path))
        ids.add(row.id)
        rows.append(row)
    return rows


def load_targets(path: Traversable | None = None) -> list[Target]:
    """Every reported figure in `seeds/targets.csv`, fitted and checked."""
    return _read_rows(path or seeds_dir() / "targets.csv", Target)


def fitted(targets: list[Target]) -> list[Target]:
    """The figures calibration fits (use = fit); the others are only compared."""
    return [t for t in targets if t.use == "fit"]


class InputRow(SeedRow):
    """A model input or prior (`seeds/inputs.csv`), with the range of values it may take where
    one is known: `low` and `high` in the row's unit, and `range_note` saying where the range
    comes from ("source: ...") or what is assumed ("assumption: ..."). Rows written before the
    range columns existed (missing trailing cells) have no range."""

    low: float | None = None
    high: float | None = None
    range_note: str = ""

    @field_validator("low", "high", "range_note", mode="before")
    @classmethod
    def _missing_is_blank(cls, value, info):
        if value is None or value == "":
            return "" if info.field_name == "range_note" else None
        return value

    @model_validator(mode="after")
    def _range(self):
        if (self.low is None) != (self.high is None):
            raise ValueError("give both low and high, or neither")
        if self.low is None:
            return self
        if not self.low <= self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        if self.value is not None and not self.low <= self.value <= self.high:
            raise ValueError(f"value {self.value} is outside its range {self.low}-{self.high}")
        if not self.range_note.startswith(("source:", "assumption:")):
            raise ValueError("a range needs a range_note starting 'source:' or 'assumption:'")
        return self


def load_inputs(path: Traversable | None = None) -> list[InputRow]:
    """Model inputs and priors from `seeds/inputs.csv`."""
    return _read_rows(path or seeds_dir() / "inputs.csv", InputRow)


def load_cost_evidence(path: Traversable | None = None) -> list[SeedRow]:
    """The evidence behind the scenarios' unit costs and the published national spending figures,
    from `seeds/costs.csv` (sim.costs reads the figures with metric `national_spend`)."""
    return _read_rows(path or seeds_dir() / "costs.csv", SeedRow)
