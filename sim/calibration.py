"""Fitting the free parameters to the reported figures (`demining calibrate`).

Method: weighted least squares on log(simulated mean + 1) - log(reported + 1) over the targets
in `seeds/targets.csv` (windows of two weeks or less weigh half), minimised with
scipy.optimize.minimize (Nelder-Mead, bounded) on log- or logit-transformed parameters. Every
evaluation runs the same replication seeds, so differences between parameter vectors are not
sampling noise (common random numbers).

The fit starts from the scenario's current values (a refit goes on from the committed fit).
Block by block, because each agency's figures depend mostly on its own parameters and land
release does not depend on the incident parameters at all:
1. practice and items: the share of suspected land survey cancels (the rest is processed
   physically) and the item densities (UXO in battle areas; AP and AT in minefields), against
   every item count and the national hectares;
2. per agency with targets: survey and clearance productivity, the share of task steps on
   battle areas and, where it reports hectares for two periods, its pace at the start (ramp-up),
   against that agency's hectares, items, roads and houses and the national hectares;
   (1 and 2 are repeated `rounds` times, each block starting where the last left off)
3. incidents: civilian exposure rate, civilian killed share, exposure near the former line of
   contact, the awareness half-life and the floor awareness never removes, and, where military
   casualties are reported apart, soldiers' exposure rate, half-life and floor, against the
   victim counts and the share outside the former line of contact.
Every target weighs 1, but windows of two weeks or less weigh half (SHORT_WINDOW_WEIGHT) and the
national yearly hectares and items weigh 4 (NATIONAL_YEAR_WEIGHT).

Each block's search starts with up to SCALE_STEPS scale steps (`scale_step`): figures roughly
proportional to one parameter (the items of a type to its density, an agency's hectares to its
productivities, the casualties to the exposure rate) say by how much to multiply it, as the
weighted mean of their log residuals (the Gauss-Newton step for an elasticity of 1). A step is
kept only if it lowers the block's objective. Nelder-Mead then goes on from there: from the
priors, where the levels can be off by a factor of ten, its first simplex alone would spend a
small budget (a backtest's fit) without reaching them.
Agencies with no targets of their own take the values of a like agency (TIES).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from .bands import BAND, Band
from .config import ScenarioConfig
from .ensemble import RunResult, run, worker_pool
from .scenario import deep_merge
from .seeds import Target, fitted, load_targets

# Agencies without reported figures borrow the fitted values of a like agency (not a dated change
# of pace: that is the leader's own history; sim.uncertainty draws it likewise).
TIES = {"tsk": "mod"}
UNTIED_FIELDS = ("later_pace_share",)
INITIAL_STEP = 0.7  # first simplex step in transformed (log or logit) units
SCALE_STEPS = 2  # scale steps before each block's simplex search (see the module docstring)
SCALE_LIMIT = 20.0  # the most one scale step multiplies a parameter by
# Where fits from the priors start (`calibrate(start=...)`; a backtest fits from each and keeps the
# best by its own figures). The reported hectares are processed by technical survey or by
# clearance, and which does most of it trades with the cancellation share and the item densities:
# the figures to 2023 hold several basins, and a fit stays near the one it starts in. So the starts
# cross two choices. Paces: the priors (both at the rates the asset types give), from which a fit
# settles with survey doing most, or clearance ahead (each agency's survey pace at 0.3 and its
# clearance pace at 10 times the asset types' rates; the committed fit reads 2.9-11.7 and 6.9-45
# for ANAMA, the Defence Ministry, the Border Service and the local companies). Cancellation: its
# prior (0.4), or 0.7, the other side of it from 0.1, which an earlier backtest found worse (the
# committed fit reads 0.70: README, Backtest, says what that knowledge means for the backtest).
HIGH_CANCELLATION = {"survey_cancellation": 0.7}
CLEARANCE_AHEAD = {"survey_productivity": 0.3, "clearance_productivity": 10.0}
PRIOR_STARTS: tuple[dict[str, float], ...] = (
    {},
    CLEARANCE_AHEAD,
    HIGH_CANCELLATION,
    CLEARANCE_AHEAD | HIGH_CANCELLATION,
)
INCIDENTS = "incidents"
PRACTICE = "practice and items"
AREA_METRICS = ("processed_ha", "released_ha")


@dataclass(frozen=True)
class FreeParameter:
    """A config key the fit may move, its transform and bounds (natural units) and its prior."""

    path: str
    transform: str  # "log" or "logit"
    lower: float
    upper: float
    prior: float
    stage: str

    def to_x(self, value: float) -> float:
        value = min(max(value, self.lower), self.upper)
        return math.log(value) if self.transform == "log" else math.log(value / (1 - value))

    def from_x(self, x: float) -> float:
        value = math.exp(x) if self.transform == "log" else 1 / (1 + math.exp(-x))
        return min(max(value, self.lower), self.upper)

    @property
    def bounds_x(self) -> tuple[float, float]:
        return self.to_x(self.lower), self.to_x(self.upper)


def free_parameters(cfg: ScenarioConfig, targets: list[Target]) -> list[FreeParameter]:
    agencies = sorted({t.agency for t in targets if t.agency in cfg.agencies}, key=list(cfg.agencies).index)
    params = [
        # Land-release practice: how much suspected land survey cancels rather than processes; it
        # sets how much of the processing capacity goes to empty land, so how many items are found
        # per hectare processed. A fit from the priors (a backtest) starts it at 0.4, near the
        # comparators' share of release by cancellation (comparators_cancelled_share): from 0.1 it
        # settled on almost none with dense minefields, a worse fit to the same figures.
        FreeParameter("land_release.survey_cancellation", "logit", 0.005, 0.99, 0.4, PRACTICE),
        # Fresh 2020-war UXO: most items the agencies report are UXO found in battle areas.
        FreeParameter("parcels.item_density_per_ha.battle_area.uxo", "log", 2.0, 2000.0, 25.0, PRACTICE),
        FreeParameter("parcels.item_density_per_ha.minefield.ap", "log", 1.0, 1000.0, 30.0, PRACTICE),
        FreeParameter("parcels.item_density_per_ha.minefield.at", "log", 0.2, 200.0, 8.0, PRACTICE),
        # The line of contact's belts: the record's early mine counts come from work along it.
        FreeParameter("parcels.former_loc_mine_density_factor", "log", 0.2, 50.0, 3.0, PRACTICE),
        # The former peacekeeping zone, opened to the agencies in September 2023: UXO per processed
        # ha doubled the next year.
        FreeParameter("parcels.peacekeeping_zone_uxo_density_factor", "log", 0.2, 50.0, 2.0, PRACTICE),
        # Where the work goes: strictly wave by wave, new waves' high-threat land draws every team
        # at once (the record's mines show no such jumps); the 2023 hectares by district and the
        # mines by district identify it.
        FreeParameter("return_wave_share", "logit", 0.02, 0.99, 0.5, PRACTICE),
        # When the work goes where: items per processed ha fell from 2022 to 2023 and the
        # agencies' early counts are dense, as if high-threat land came first.
        FreeParameter("high_threat_first_share", "logit", 0.01, 0.99, 0.5, PRACTICE),
    ]
    if cfg.new_assets.ramp_up_years > 0:
        # New crews' starting pace: the national hectares grew more slowly than the staff, year on year.
        params.append(FreeParameter("new_assets.initial_productivity_share", "logit", 0.05, 0.99, 0.5, PRACTICE))
    for key in agencies:
        params += [
            FreeParameter(f"agencies.{key}.survey_productivity", "log", 0.02, 50.0, 1.0, f"agency {key}"),
            FreeParameter(f"agencies.{key}.clearance_productivity", "log", 0.02, 50.0, 1.0, f"agency {key}"),
            FreeParameter(f"agencies.{key}.battle_area_share_of_work", "logit", 0.01, 0.99, 0.5, f"agency {key}"),
        ]
        # The pace at the start is identifiable only from hectares reported for two periods.
        periods = {(t.window_start, t.window_end) for t in targets if t.agency == key and t.metric in AREA_METRICS}
        if cfg.agencies[key].ramp_up_years > 0 and len(periods) >= 2:
            params.append(FreeParameter(f"agencies.{key}.initial_productivity_share", "logit", 0.05, 0.99, 0.5, f"agency {key}"))
        # A later change of pace, likewise, only from hectares reported before and after its date.
        change = cfg.agencies[key].later_pace_from
        if change and any(end and end < change for _, end in periods) and any(start and start >= change for start, _ in periods):
            params.append(FreeParameter(f"agencies.{key}.later_pace_share", "log", 0.05, 5.0, 1.0, f"agency {key}"))
    if any(t.metric == "victims_military" and t.use == "fit" for t in targets):
        # Soldiers hurt away from clearance work: identified only by casualties reported by who was
        # hurt (military apart from civilians).
        params += [
            FreeParameter("incidents.soldier_exposure_rate_per_item_month", "log", 1e-9, 1e-2, 2e-5, INCIDENTS),
            FreeParameter("incidents.soldier_awareness_half_life_years", "log", 0.1, 30.0, 1.0, INCIDENTS),
            FreeParameter("incidents.soldier_awareness_floor", "logit", 0.005, 0.9, 0.1, INCIDENTS),
        ]
    params += [
        FreeParameter("incidents.civilian_exposure_rate_per_item_month", "log", 1e-8, 1e-2, 2e-5, INCIDENTS),
        FreeParameter("incidents.civilian_killed_share", "logit", 0.01, 0.8, 0.18, INCIDENTS),
        FreeParameter("incidents.former_loc_exposure_factor", "log", 0.01, 20.0, 0.3, INCIDENTS),
        FreeParameter("incidents.awareness_half_life_years", "log", 0.3, 30.0, 3.0, INCIDENTS),
        FreeParameter("incidents.awareness_floor", "logit", 0.005, 0.9, 0.1, INCIDENTS),
    ]
    return params


def start_values(cfg: ScenarioConfig, params: list[FreeParameter]) -> dict[str, float]:
    """Where the fit starts: the scenario's own value of each parameter (a refit goes on from the
    committed fit), or the parameter's prior where the scenario leaves it unset. Values outside a
    parameter's bounds are kept as they are (the optimiser starts from the nearest bound), so a
    refit of other blocks leaves them unchanged (return_wave_share = 1 stays 1, not its bound 0.99)."""
    data = cfg.model_dump()
    values = {}
    for p in params:
        node = data
        for part in p.path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        values[p.path] = p.prior if node is None else float(node)
    return values


def block_names(params: list[FreeParameter]) -> list[str]:
    """The names a user gives to fit only some blocks: `practice`, each fitted agency's key, `incidents`."""
    names = {PRACTICE: "practice", INCIDENTS: "incidents"}
    return list(dict.fromkeys(names.get(p.stage, p.stage.removeprefix("agency ")) for p in params))


def block_of(name: str, params: list[FreeParameter]) -> str:
    if name not in block_names(params):
        raise ValueError(
            f"no parameter block {name}; the blocks are {', '.join(block_names(params))} "
            "(agencies that take another's values, like tsk, are fitted with it)"
        )
    return {"practice": PRACTICE, "incidents": INCIDENTS}.get(name, f"agency {name}")


def block_targets(block: str, targets: list[Target]) -> list[Target]:
    """The targets a block of parameters is fitted to. Every land-release block also sees the
    national hectares, which every agency's pace and the practice move; the practice block also
    sees the districts' figures of every operator (hectares and items: where the work went)."""
    national_area = [t for t in targets if t.agency == "all" and t.metric in AREA_METRICS and not t.district]
    if block == INCIDENTS:
        return [t for t in targets if t.metric.startswith("victims")]
    if block == PRACTICE:
        district_area = [t for t in targets if t.district and t.agency == "all" and t.metric in AREA_METRICS]
        return [t for t in targets if t.metric.startswith("items")] + national_area + district_area
    agency = block.removeprefix("agency ")
    return [t for t in targets if t.agency == agency and not t.metric.startswith("victims")] + national_area


def _nested(path: str, value) -> dict:
    out: dict = {}
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def with_ties(values: dict[str, float], agency_keys) -> dict[str, float]:
    """`values` plus the tied agencies' copies of their leader's values (unless set explicitly)."""
    out = dict(values)
    for path, value in values.items():
        parts = path.split(".")
        if parts[0] != "agencies" or parts[2] in UNTIED_FIELDS:
            continue
        for follower, leader in TIES.items():
            tied = f"agencies.{follower}.{parts[2]}"
            if leader == parts[1] and follower in agency_keys and tied not in values:
                out[tied] = value
    return out


def apply(cfg: ScenarioConfig, values: dict[str, float]) -> ScenarioConfig:
    """The config with the given parameter values, ties included."""
    data = cfg.model_dump()
    for path, value in with_ties(values, cfg.agencies).items():
        data = deep_merge(data, _nested(path, value))
    return ScenarioConfig.model_validate(data)


def calibration_horizon_years(cfg: ScenarioConfig, targets: list[Target]) -> float:
    """Long enough past the last window that task steps overlapping it have finished."""
    last = max(t.window_end for t in targets)
    return min(cfg.horizon_years, ((last - cfg.start_date).days + 366) / 365.25)


def residuals(table: pd.DataFrame) -> np.ndarray:
    """log(sim + 1) - log(reported + 1) for counts and areas; log(sim / reported) for shares,
    which log1p would squash."""
    sim = table["simulated_mean"].to_numpy(dtype=float)
    rep = table["reported"].to_numpy(dtype=float)
    sim = np.where(np.isfinite(sim), sim, 0.0)
    share = table["metric"].str.endswith("_share").to_numpy()
    return np.where(share, np.log(np.maximum(sim, 1e-3) / rep), np.log1p(sim) - np.log1p(rep))


SHORT_WINDOW_DAYS = 14
SHORT_WINDOW_WEIGHT = 0.5


NATIONAL_YEAR_WEIGHT = 4.0


def weights(table: pd.DataFrame) -> np.ndarray:
    """Weight of each target's squared residual: half for windows of two weeks or less, whose
    counts turn on a few task steps and vary between replications by a factor of 3 to 10; four
    times for the national yearly series (all operators, every district, a calendar year or more),
    the record a projection is judged by and the only one every operator's work adds up to."""
    days = (pd.to_datetime(table["window_end"]) - pd.to_datetime(table["window_start"])).dt.days.to_numpy()
    national_year = (
        (table["agency"] == "all").to_numpy()
        & table["district"].isna().to_numpy()  # every district (a target's district is None or a key)
        & (days >= 364)
        & ~table["metric"].str.startswith("victims").to_numpy()
        & ~table["metric"].str.endswith("_share").to_numpy()  # a share (the comparators' prior) weighs 1
    )
    return np.where(days <= SHORT_WINDOW_DAYS, SHORT_WINDOW_WEIGHT, np.where(national_year, NATIONAL_YEAR_WEIGHT, 1.0))


def weighted_objective(table: pd.DataFrame) -> float:
    """The sum of weighted squared residuals: what the fit minimises."""
    return float(np.sum(weights(table) * residuals(table) ** 2))


# The figures each parameter scales about in proportion: (groups of metrics, the first group with
# figures used; agency or None for any). Item densities: every count of that item type (a
# district's, an agency's, the nation's); an agency's two productivities: its own hectares;
# civilian exposure: the civilians' counts where the record has them, else the totals (which hold
# soldiers too); soldiers' exposure: the military casualties.
def _scaled_by(path: str) -> tuple[tuple[tuple[str, ...], ...], str | None] | None:
    parts = path.split(".")
    if parts[:2] == ["parcels", "item_density_per_ha"]:
        return ((f"items_{parts[-1]}",),), None
    if parts[0] == "agencies" and parts[-1] in ("survey_productivity", "clearance_productivity"):
        return (AREA_METRICS,), parts[1]
    if path == "incidents.civilian_exposure_rate_per_item_month":
        return (("victims_civilian",), ("victims_total",)), None
    if path == "incidents.soldier_exposure_rate_per_item_month":
        return (("victims_military",),), None
    return None


def scale_step(params: list[FreeParameter], x: np.ndarray, table: pd.DataFrame) -> np.ndarray:
    """`x` with each scalable parameter (`_scaled_by`) moved by the weighted mean log residual of
    its figures in `table`, log(reported + 1) - log(simulated + 1): the multiplier that would
    match them if they were proportional to it. Parameters with no such figure stay."""
    out = x.copy()
    r = residuals(table)
    w = weights(table)
    for k, p in enumerate(params):
        scaled = _scaled_by(p.path)
        if scaled is None or p.transform != "log":
            continue
        groups, agency = scaled
        mine = np.ones(len(table), dtype=bool) if agency is None else (table["agency"] == agency).to_numpy()
        rows = next((r for r in (table["metric"].isin(g).to_numpy() & mine for g in groups) if r.any()), None)
        if rows is None:
            continue
        step = -float(np.sum(w[rows] * r[rows]) / np.sum(w[rows]))
        step = min(max(step, -math.log(SCALE_LIMIT)), math.log(SCALE_LIMIT))
        lo, hi = p.bounds_x
        out[k] = min(max(x[k] + step, lo), hi)
    return out


class _BudgetSpent(Exception):
    """The stage has used its evaluations."""


@dataclass
class Fit:
    values: dict[str, float]
    table: pd.DataFrame
    objective: float
    evaluations: int
    history: list[dict] = field(default_factory=list)
    band: Band = BAND  # of the table's simulated columns
    blocks: list[str] | None = None  # the blocks fitted (`block_names`); None: all of them


def calibrate(
    cfg: ScenarioConfig,
    replications: int = 6,
    seed: int = 0,
    *,
    workers: int = 1,
    max_evaluations: int = 30,
    rounds: int = 2,
    targets: list[Target] | None = None,
    on_evaluation: Callable[[str, int, float], None] | None = None,
    band: Band = BAND,
    start_from_priors: bool = False,
    blocks: list[str] | None = None,
    start: dict[str, float] | None = None,
) -> Fit:
    """Fit the free parameters; returns the fitted values and the reported-vs-simulated table
    (simulated mean and `band`). The fit starts from the scenario's values, or from the
    parameters' priors with `start_from_priors` (a backtest must not start from a fit that saw
    the figures it holds out). `blocks` fits only those blocks (`practice`, `incidents` or an
    agency key; see `block_names`) and keeps the other parameters where they are. `start` (with
    `start_from_priors`) replaces the priors of the parameters it names by the last part of their
    path (`clearance_productivity`: every agency's), as in PRIOR_STARTS."""
    # Only figures marked `fit`: the others are compared in every run, never fitted.
    targets = fitted(load_targets() if targets is None else targets)
    cfg = cfg.shortened(calibration_horizon_years(cfg, targets))
    params = free_parameters(cfg, targets)
    if start_from_priors:
        values = {p.path: (start or {}).get(p.path.rsplit(".", 1)[-1], p.prior) for p in params}
    else:
        values = start_values(cfg, params)
    history: list[dict] = []
    evaluations = 0
    chosen = None if blocks is None else {block_of(name, params) for name in blocks}

    with worker_pool(min(workers, replications)) as pool:

        def simulate(vals: dict[str, float], subset: list[Target]) -> RunResult:
            return run(apply(cfg, vals), replications, seed, pool=pool, targets=subset, band=band)

        land_blocks = list(dict.fromkeys(p.stage for p in params if p.stage != INCIDENTS))
        # Land release: block-coordinate least squares, each agency's parameters against its own
        # figures (they barely move other agencies'), for `rounds` passes; then the incidents.
        schedule = [b for _ in range(rounds) for b in land_blocks] + [INCIDENTS]
        if chosen is not None:
            schedule = [b for b in schedule if b in chosen]
        for block in schedule:
            block_params = [p for p in params if p.stage == block]
            subset = block_targets(block, targets)
            if not subset or not block_params:
                continue
            best = {"objective": math.inf, "x": None}
            used = 0
            # Common random numbers make a point's objective a function of it: a point met again
            # (the scale steps' end is the simplex's start) is looked up, not simulated.
            seen: dict[tuple[float, ...], tuple[float, pd.DataFrame]] = {}

            def evaluate(x: np.ndarray) -> tuple[float, pd.DataFrame]:
                nonlocal evaluations, used
                key = tuple(float(v) for v in x)
                if key in seen:
                    return seen[key]
                if used >= max_evaluations:
                    raise _BudgetSpent
                trial = dict(values)
                trial.update({p.path: p.from_x(v) for p, v in zip(block_params, x)})
                table = simulate(trial, subset).targets
                objective = weighted_objective(table)
                seen[key] = (objective, table)
                evaluations += 1
                used += 1
                if objective < best["objective"]:
                    best.update(objective=objective, x=np.array(x, dtype=float))
                history.append(
                    {
                        "block": block,
                        "evaluation": evaluations,
                        "objective": objective,
                        "values": {p.path: p.from_x(v) for p, v in zip(block_params, x)},
                    }
                )
                if on_evaluation:
                    on_evaluation(block, evaluations, objective)
                return objective, table

            def fun(x: np.ndarray) -> float:
                return evaluate(x)[0]

            x0 = np.array([p.to_x(values[p.path]) for p in block_params])
            try:
                objective, table = evaluate(x0)
                for _ in range(SCALE_STEPS):
                    x1 = scale_step(block_params, x0, table)
                    if np.array_equal(x1, x0):
                        break
                    trial_objective, trial_table = evaluate(x1)
                    if trial_objective >= objective:
                        break
                    x0, objective, table = x1, trial_objective, trial_table
            except _BudgetSpent:
                pass  # the budget ends in the scale steps: the best point seen is kept below
            lo, hi = (np.array(b) for b in zip(*(p.bounds_x for p in block_params)))
            # Nelder-Mead rather than a gradient method: outputs move by whole task steps and short
            # weekly windows are noisy, so finite-difference Jacobians mislead a Gauss-Newton step
            # (an earlier least_squares fit left two agencies at their priors). The first simplex
            # spans a factor of about 2 on each parameter, inside the bounds.
            simplex = [x0]
            for k in range(len(x0)):
                vertex = x0.copy()
                vertex[k] = x0[k] + INITIAL_STEP if x0[k] + INITIAL_STEP <= hi[k] else x0[k] - INITIAL_STEP
                simplex.append(vertex)
            try:
                if used >= max_evaluations:
                    raise _BudgetSpent
                minimize(
                    fun,
                    x0,
                    method="Nelder-Mead",
                    bounds=list(zip(lo, hi)),
                    options={"maxfev": max_evaluations, "initial_simplex": np.array(simplex), "xatol": 0.02, "fatol": 1e-3},
                )
            except _BudgetSpent:
                pass  # keep the best point seen
            values.update({p.path: p.from_x(v) for p, v in zip(block_params, best["x"])})

        final = simulate(values, targets)
    return Fit(
        values=with_ties(values, cfg.agencies),
        table=final.targets,
        objective=weighted_objective(final.targets),
        evaluations=evaluations,
        history=history,
        band=band,
        blocks=blocks,
    )


def calibrated_toml(fit: Fit, *, seed: int, replications: int, scenario: str) -> dict:
    """The content of scenarios/calibrated.toml: fitted values (ties included) and the fit's metadata."""
    data: dict = {
        "calibration": {
            "scenario": scenario,
            "seed": seed,
            "replications": replications,
            "objective": round(fit.objective, 6),
            "evaluations": fit.evaluations,
            # A string, as every [calibration] value is (the scenario schema reads them back).
            "blocks": "all" if fit.blocks is None else ", ".join(fit.blocks),
            "method": "scale steps, then scipy.optimize.minimize (Nelder-Mead), by parameter block on weighted squared log(sim+1) - log(reported+1) (windows <= 14 days weigh 0.5, national yearly series 4), common random numbers",
            "date": dt.date.today().isoformat(),
        }
    }
    for path, value in fit.values.items():
        data = deep_merge(data, _nested(path, float(f"{value:.6g}")))
    return data
