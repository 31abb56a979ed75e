"""What we do not know: the uncertain inputs, their ranges, and drawing them per replication.

One table (`INPUTS` and the fitted parameters of `sim.calibration`) names every uncertain input,
the config paths it sets (the dotted paths `--set` uses), its range and distribution, and where
the range comes from:

- inputs (`kind` "input"): each row points at a row of `seeds/inputs.csv`, whose `low`, `high`
  and `range_note` say what the source gives ("source: ...") or what is assumed ("assumption:
  ..."). A cost input (or any other) is one more row here and one in `seeds/inputs.csv`; rows
  whose paths a scenario lacks are skipped.
- fitted parameters (`kind` "fitted"): every parameter `demining calibrate` fits, around the
  scenario's own value. The fit records one best point and the objective of each evaluation, not
  the parameters it tried, so it gives no spread of its own: the ranges are relative, an
  assumption set by how far the committed fit misses its figures (FITTED_SPREAD).

A range is documented for one value (`nominal`: the baseline's). A scenario whose value differs
(a what-if, the small test world) gets the same relative uncertainty: the draw moves its value
by as much as it moves the nominal on the log scale (positive quantities) or the logit scale
(shares), so a share of exactly 0 or 1, a decision such as IMAS cancellation (1), stays put.

Draws come from the replication's own seed (a stream per input, named, as `sim.model`'s), so
replication i draws the same values in every scenario of a comparison (common random numbers)
whatever the number of workers, and adding an input leaves the others' draws unchanged.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError

from .conditioning import Conditioning
from .config import ScenarioConfig
from .errors import UserError
from .model import stream_key

MODES = ("none", "inputs", "fitted", "all")
KINDS = {"none": (), "inputs": ("input", "cost"), "fitted": ("fitted",), "all": ("input", "cost", "fitted")}
DISTRIBUTIONS = ("uniform", "loguniform", "logituniform")  # uniform in natural units, or on the log / logit scale


@dataclass(frozen=True)
class InputRange:
    """A row of the table: an uncertain input of `seeds/inputs.csv` and the config paths it sets.
    `scale` converts the row's unit to the config's (ha to m2: 10,000)."""

    name: str
    paths: tuple[str, ...]
    input_id: str
    transform: str = "log"  # how a scenario's other value moves with the draw: "log" or "logit"
    distribution: str = "uniform"
    scale: float = 1.0
    kind: str = "input"


# fmt: off
INPUTS: tuple[InputRange, ...] = (
    InputRange("map_accuracy", ("maps.map_accuracy",), "map_accuracy", "logit"),
    InputRange("contaminated_share", ("parcels.contaminated_share_mean.high", "parcels.contaminated_share_mean.medium_low"),
               "contaminated_share_suspected"),
    InputRange("manual_team_clearance_rate", ("asset_types.manual_team.clearance_rate_m2_per_day",), "manual_team_rate"),
    InputRange("dog_team_clearance_rate", ("asset_types.dog_team.clearance_rate_m2_per_day",), "dog_pair_rate"),
    InputRange("machine_clearance_rate", ("asset_types.machine.clearance_rate_m2_per_day",), "machine_clearance_rate"),
    InputRange("machine_technical_survey_rate", ("asset_types.machine.technical_survey_rate_m2_per_day",), "aardvark_rate",
               scale=10_000.0),
    InputRange("survey_team_nts_rate", ("asset_types.survey_team.non_technical_survey_rate_ha_per_day",), "survey_team_nts_rate"),
    InputRange("aerial_survey_rate", ("asset_types.aerial_survey_team.remote_survey_rate_ha_per_day",), "aerial_rate_team"),
    InputRange("manual_ap_detection", ("asset_types.manual_team.detection_probability.ap",), "manual_ap_detection", "logit"),
    InputRange("dog_ap_detection", ("asset_types.dog_team.detection_probability.ap",), "dog_ap_detection", "logit"),
    InputRange("machine_ap_detection", ("asset_types.machine.detection_probability.ap",), "flail_ap_detonation", "logit"),
    InputRange("machine_mtbf", ("asset_types.machine.mtbf_hours",), "machine_mtbf"),
    InputRange("machine_at_damage", ("asset_types.machine.at_damage_probability",), "machine_at_damage", "logit"),
    InputRange("machine_at_repair", ("asset_types.machine.at_repair_days",), "machine_at_repair"),
    InputRange("remote_survey_speedup", ("maps.remote_survey_nts_speedup",), "remote_survey_speedup"),
    InputRange("released_land_exposure", ("incidents.released_land_exposure_factor",), "released_land_exposure"),
    InputRange("baseline_activity", ("incidents.baseline_activity",), "baseline_activity"),
)
# fmt: on


# The fitted parameters' ranges, by field: a factor either way on the log scale (positive
# quantities) or a shift either way on the logit scale (shares). Assumptions, from the committed
# fit's misses (README, Calibration): national hectares -13 % to +18 % a year (earlier fits up to
# +53 %), so productivities x/÷ 1.5; item counts by up to a factor 2, so densities (and the line
# of contact's factor) x/÷ 2; casualties -15 % to +30 %, so exposure x/÷ 1.5; the cancellation
# share is the least certain (fits on record gave 0.11-0.53), so +-2 on the logit scale.
@functools.cache
def config_limits(path: str) -> tuple[float, float]:
    """The smallest and largest value the scenario schema accepts at a dotted config path (an
    agency's or district's key stands for any key); (-inf, inf) where it sets none."""
    schema = ScenarioConfig.model_json_schema()

    def resolve(node: dict) -> dict:
        while "$ref" in node or "anyOf" in node:
            if "$ref" in node:
                node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
            else:
                node = next(n for n in node["anyOf"] if n.get("type") != "null")
        return node

    node = schema
    for part in path.split("."):
        node = resolve(node)
        properties = node.get("properties", {})
        node = properties[part] if part in properties else node.get("additionalProperties", {})
    node = resolve(node)
    # The project's number types carry their limits as `ge`/`le`; plain pydantic ones as JSON Schema's.
    lowest = next((node[k] for k in ("ge", "minimum", "gt", "exclusiveMinimum") if k in node), -math.inf)
    highest = next((node[k] for k in ("le", "maximum", "lt", "exclusiveMaximum") if k in node), math.inf)
    return float(lowest), float(highest)


FITTED_SPREAD: dict[str, float] = {
    "survey_cancellation": 2.0,
    "uxo": 2.0,
    "ap": 2.0,
    "at": 2.0,
    "former_loc_mine_density_factor": 2.0,
    "peacekeeping_zone_uxo_density_factor": 2.0,
    "return_wave_share": 1.0,
    "high_threat_first_share": 1.0,
    "survey_productivity": 1.5,
    "clearance_productivity": 1.5,
    "battle_area_share_of_work": 1.0,
    "initial_productivity_share": 1.0,
    "later_pace_share": 1.5,
    "civilian_exposure_rate_per_item_month": 1.5,
    "civilian_killed_share": 0.5,
    "soldier_exposure_rate_per_item_month": 1.5,
    "soldier_awareness_half_life_years": 1.5,
    "soldier_awareness_floor": 0.5,
    "former_loc_exposure_factor": 1.5,
    "awareness_half_life_years": 1.5,
    "awareness_floor": 0.5,
}
FITTED_NOTE = (
    "assumption: the fit records no spread of its own (one best point); relative range set by how far the "
    "committed fit misses its figures (sim.uncertainty.FITTED_SPREAD)"
)


@dataclass(frozen=True)
class UncertainInput:
    """An uncertain input bound to a scenario: the paths it has there, its range and distribution."""

    name: str
    kind: str
    paths: tuple[str, ...]
    transform: str
    distribution: str
    nominal: float
    low: float
    high: float
    source: str
    range_note: str

    def __post_init__(self):
        if self.distribution not in DISTRIBUTIONS or self.transform not in ("log", "logit"):
            raise ValueError(f"{self.name}: distribution {self.distribution!r} / transform {self.transform!r} unknown")

    def ppf(self, u: float) -> float:
        """The value at quantile `u` (0-1) of the input's distribution."""
        u = min(max(float(u), 0.0), 1.0)
        if self.low == self.high:
            return self.low
        if self.distribution == "uniform":
            return self.low + u * (self.high - self.low)
        forward, back = _TRANSFORMS["log" if self.distribution == "loguniform" else "logit"]
        a, b = forward(self.low), forward(self.high)
        return back(a + u * (b - a))

    def as_row(self) -> dict:
        return {
            "input": self.name,
            "kind": self.kind,
            "paths": ", ".join(self.paths),
            "transform": self.transform,
            "nominal": self.nominal,
            "low": self.low,
            "high": self.high,
            "distribution": self.distribution,
            "source": self.source,
            "range_note": self.range_note,
        }


def _logit(p: float) -> float:
    return math.log(p / (1 - p)) if 0 < p < 1 else math.copysign(math.inf, p - 0.5)


def _expit(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _log(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


_TRANSFORMS = {"log": (_log, math.exp), "logit": (_logit, _expit)}


def _get(data: dict, path: str):
    node = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, int | float) and not isinstance(node, bool) else None


def _set(data: dict, path: str, value: float) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def _fitted_inputs(cfg: ScenarioConfig, data: dict) -> list[UncertainInput]:
    from .calibration import TIES, UNTIED_FIELDS, free_parameters
    from .seeds import fitted, load_targets

    out = []
    for p in free_parameters(cfg, fitted(load_targets())):
        field = p.path.rsplit(".", 1)[-1]
        parts = p.path.split(".")
        paths = [p.path]
        if parts[0] == "agencies" and parts[2] not in UNTIED_FIELDS:
            paths += [f"agencies.{f}.{parts[2]}" for f, leader in TIES.items() if leader == parts[1]]
        paths = tuple(path for path in paths if _get(data, path) is not None)
        if not paths:
            continue
        nominal = float(_get(data, paths[0]))
        forward, back = _TRANSFORMS[p.transform]
        spread = FITTED_SPREAD[field]
        width = math.log(spread) if p.transform == "log" else spread
        # Not clipped to the fit's bounds: a scenario may set a value outside them (IMAS
        # cancellation, 1), and a share of 0 or 1 has no spread on the logit scale.
        low, high = (back(forward(nominal) + s * width) if math.isfinite(forward(nominal)) else nominal for s in (-1, 1))
        # Within what the config accepts (a productivity of 80 x 1.5 would not validate).
        lowest, highest = config_limits(p.path)
        low, high = max(low, lowest), min(high, highest)
        name = p.path.removeprefix("agencies.").removeprefix("incidents.").removeprefix("land_release.")
        name = name.replace("parcels.item_density_per_ha.", "density.").removeprefix("parcels.")
        distribution = "loguniform" if p.transform == "log" else "logituniform"
        out.append(
            UncertainInput(
                name,
                "fitted",
                paths,
                p.transform,
                distribution,
                nominal,
                low,
                high,
                "scenarios/calibrated.toml (fit)",
                FITTED_NOTE,
            )  # fmt: skip
        )
    return out


def uncertain_inputs(cfg: ScenarioConfig, mode: str = "all") -> list[UncertainInput]:
    """The uncertain inputs of `mode` ("inputs", "fitted", "all"; "none": none) that `cfg` has,
    with their ranges bound to it."""
    if mode not in MODES:
        raise UserError(f"--uncertainty {mode!r}: choose one of {', '.join(MODES)}")
    from .seeds import load_inputs

    kinds = KINDS[mode]
    data = cfg.model_dump()
    rows = {row.id: row for row in load_inputs()}
    out = []
    for entry in INPUTS:
        if entry.kind not in kinds:
            continue
        row = rows.get(entry.input_id)
        if row is None or row.low is None:
            raise UserError(f"uncertain input {entry.name}: seeds/inputs.csv has no range for {entry.input_id!r}")
        paths = tuple(path for path in entry.paths if _get(data, path) is not None)
        if not paths:
            continue
        nominal, low, high = (float(v) * entry.scale for v in (row.value, row.low, row.high))
        out.append(
            UncertainInput(
                entry.name,
                entry.kind,
                paths,
                entry.transform,
                entry.distribution,
                nominal,
                low,
                high,
                f"seeds/inputs.csv {entry.input_id} ({row.source})",
                row.range_note,
            )  # fmt: skip
        )
    if "fitted" in kinds:
        out += _fitted_inputs(cfg, data)
    return out


def apply_values(cfg: ScenarioConfig, inputs: list[UncertainInput] | tuple, values: dict[str, float]) -> ScenarioConfig:
    """`cfg` with each input in `values` set to its value: at a path whose scenario value is the
    input's nominal, the value itself; elsewhere moved by as much on the input's scale."""
    data = cfg.model_dump()
    for item in inputs:
        if item.name not in values:
            continue
        value = float(values[item.name])
        forward, back = _TRANSFORMS[item.transform]
        shift = forward(value) - forward(item.nominal)
        for path in item.paths:
            current = float(_get(data, path))
            if current == item.nominal:
                new = value
            else:
                moved = forward(current) + shift
                new = back(moved) if math.isfinite(moved) else current
            if item.transform == "logit":
                new = min(max(new, 0.0), 1.0)
            _set(data, path, new)
    return ScenarioConfig.model_validate(data)


@dataclass(frozen=True)
class Uncertainty:
    """What a run draws per replication: its mode and inputs (bound to the run's scenario), and
    the record the drawn worlds must reproduce (`condition`, sim.conditioning; None: every draw is
    kept). `history_inputs` are the same inputs bound to the history scenario whose past is checked
    when it is not the run's own (`condition.history`): the same quantiles, its own values."""

    mode: str
    inputs: tuple[UncertainInput, ...]
    condition: Conditioning | None = None
    history_inputs: tuple[UncertainInput, ...] = ()

    def quantiles(self, seed_seq: np.random.SeedSequence, inputs=None) -> dict[str, float]:
        """Each input's uniform draw for one replication, from a stream of its own."""
        base = (*seed_seq.spawn_key, stream_key("uncertainty"))
        return {
            item.name: float(
                np.random.default_rng(np.random.SeedSequence(seed_seq.entropy, spawn_key=(*base, stream_key(item.name)))).random()
            )
            for item in (self.inputs if inputs is None else inputs)
        }

    def draw(self, seed_seq: np.random.SeedSequence, inputs=None) -> dict[str, float]:
        """The values replication `seed_seq` runs with."""
        inputs = self.inputs if inputs is None else inputs
        u = self.quantiles(seed_seq, inputs)
        return {item.name: item.ppf(u[item.name]) for item in inputs}

    def config(self, cfg: ScenarioConfig, seed_seq: np.random.SeedSequence) -> tuple[ScenarioConfig, dict[str, float]]:
        values = self.draw(seed_seq)
        return apply_values(cfg, self.inputs, values), values

    def history_config(self, seed_seq: np.random.SeedSequence) -> ScenarioConfig | None:
        """The history scenario with this replication's draws (None: the history is the run's own)."""
        if self.condition is None or self.condition.history is None:
            return None
        history = ScenarioConfig.model_validate_json(self.condition.history)
        return apply_values(history, self.history_inputs, self.draw(seed_seq, self.history_inputs))

    def describe(self) -> str:
        text = describe(self.mode, self.inputs)
        if not self.inputs:
            return text
        return f"{text}, {'not conditioned on the record' if self.condition is None else self.condition.describe()}"

    def as_dict(self) -> dict:
        out = {"mode": self.mode, "holds": self.describe(), "inputs": [item.as_row() for item in self.inputs]}
        if self.condition is not None:
            out["condition"] = self.condition.as_dict()
            out["history_inputs"] = [item.as_row() for item in self.history_inputs]
        return out

    @classmethod
    def from_dict(cls, data: dict | None) -> Uncertainty | None:
        """What `as_dict` recorded (a run's plan.json or metadata.json): a resumed or re-checked
        run draws exactly as it did, whatever `seeds/inputs.csv` says now; None for no draws."""
        if not data or data.get("mode", "none") == "none":
            return None
        return cls(
            data["mode"],
            _inputs_from_rows(data["inputs"]),
            Conditioning.from_dict(data.get("condition")),
            _inputs_from_rows(data.get("history_inputs", [])),
        )


def _inputs_from_rows(rows: list[dict]) -> tuple[UncertainInput, ...]:
    return tuple(
        UncertainInput(
            row["input"],
            row["kind"],
            tuple(row["paths"].split(", ")),
            row["transform"],
            row["distribution"],
            row["nominal"],
            row["low"],
            row["high"],
            row["source"],
            row["range_note"],
        )  # fmt: skip
        for row in rows
    )


NOISE = "replication noise (parcel layout, hidden contamination, maps, breakdowns, incidents)"


def describe(mode: str, inputs=()) -> str:
    """What a band holds, in words: every table, plot and summary says it."""
    if mode == "none" or not inputs:
        return f"{NOISE} only; every input at its scenario value"
    counts = {kind: sum(1 for i in inputs if i.kind == kind) for kind in ("input", "cost", "fitted")}
    parts = [f"{counts['input']} input ranges (seeds/inputs.csv)"] if counts["input"] else []
    parts += [f"{counts['cost']} cost ranges"] if counts["cost"] else []
    parts += [f"{counts['fitted']} fitted parameters' assumed ranges"] if counts["fitted"] else []
    return f"{NOISE} and {' and '.join(parts)}, drawn per replication"


def check_ranges(cfg: ScenarioConfig, inputs) -> None:
    """Every input at either end of its range gives a valid scenario (a draw in between does too:
    each input moves its own paths monotonically), else a one-line error naming input and path."""
    for end in ("low", "high"):
        try:
            apply_values(cfg, inputs, {item.name: getattr(item, end) for item in inputs})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            named = [item.name for item in inputs if where in item.paths] or ["an uncertain input"]
            raise UserError(
                f"--uncertainty: {named[0]} at the {end} end of its range makes {where} invalid "
                f"({err['msg']}); give --uncertainty none or change the scenario's value"
            ) from None


def make_uncertainty(
    cfg: ScenarioConfig,
    mode: str,
    *,
    condition: bool = False,
    history: ScenarioConfig | None = None,
    inventory=None,
    targets=None,
    references=None,
) -> Uncertainty | None:
    """The draws a run of `cfg` makes under `mode`; None for "none" (nothing drawn: the run is
    bit-identical to one made before uncertain inputs existed). With `condition`, only draws whose
    past is plausible against the record are kept (sim.conditioning): the past of `history`
    (default: `cfg` without its dated changes and extra deliveries), whose model discrepancy is
    measured here by simulating its past a few times (a few seconds for the baseline), or taken
    from `references` (sim.verdicts.ReferenceCache) when an earlier run measured the same past."""
    from .conditioning import history_config, make_conditioning
    from .ensemble import simulate_past

    inputs = uncertain_inputs(cfg, mode)
    if mode == "none":
        return None
    check_ranges(cfg, inputs)
    if not condition:
        return Uncertainty(mode, tuple(inputs))
    name = None
    if history is None:
        history, name = history_config(cfg), f"{cfg.name} without its what-if additions"
    own = history.model_dump_json() == cfg.model_dump_json()
    history_inputs = () if own else tuple(uncertain_inputs(history, mode))
    if not own:
        check_ranges(history, history_inputs)

    def simulate(config, seed_seq, chosen, day):
        return simulate_past(config, seed_seq, chosen, day, inventory)

    cond = make_conditioning(
        history, own=own, simulate_past=simulate, targets=targets, name=name, references=references, inventory=inventory
    )
    return Uncertainty(mode, tuple(inputs), cond, history_inputs if cond is not None else ())
