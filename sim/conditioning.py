"""Conditioning drawn worlds on the record: history matching by rejection.

A run that draws uncertain inputs (`sim.uncertainty`) keeps only the draws whose simulated past is
plausible against the reported figures the fit uses (`seeds/targets.csv`, rows marked `fit`:
national yearly hectares and items, casualties, the agencies' figures, the weekly and monthly
reports). For each figure f, with e_f = log(sim + 1) - log(reported + 1) (log(sim / reported) for
a share, as the fit's residuals), the standard history-matching implausibility is

    I_f = |e_f| / sqrt(sigma_obs_f^2 + sigma_disc_f^2)

- sigma_obs_f, the figure's own uncertainty: a reporting error of SIGMA_REPORT (10 %) on the log
  scale, and for a count n (anything but a share) its Poisson noise, 1/sqrt(n + 1) on that scale:
  5 deminers killed in a year could as well have been 3 or 8.
- sigma_disc_f, the model discrepancy: how far the model with its committed fit misses that figure
  by itself, measured when the run starts: the root mean square of e_f over REFERENCE_REPLICATIONS
  replications (seed REFERENCE_SEED) of the history scenario at its own values, nothing drawn. It
  holds the fit's bias and a single replication's noise, so the fitted model itself is plausible,
  and it follows whatever fit is in force (a refit changes it; nothing is hard-coded). A
  measurement an earlier run made of the same past is taken instead, when the caller keeps them
  (`make_conditioning`'s `references`: sim.verdicts.ReferenceCache, the CLI's): the same floats.

A draw is rejected when its second-largest I_f exceeds THRESHOLD (3, Pukelsheim's three-sigma
rule; RULE_RANK): with about 70 figures one may miss by chance in a world that is plausible.

The past is simulated first: a replication runs to PAST_MARGIN_DAYS after the last figure's window
(the margin the fit uses, so task steps overlapping a window have ended), is checked, and only an
accepted one goes on to the horizon, the same simulation continued. It is judged on the way
(`judge_past`): at each month's end, the figures that are final by then (no task step under way
began before the window's end, the window's civilian incidents recorded) are judged, and the draw
is rejected as soon as RULE_RANK of them exceed the threshold: more figures can only raise the
RULE_RANK-th largest implausibility, so judging them all at the end would reject it too. The
verdict is the one the end gives, so the same attempts are kept (tested); a rejected attempt
costs the past up to its rejection, about half the past for the baseline.

Rejected draws are replaced by the next attempts: attempt j draws from SeedSequence(seed,
spawn_key=(j,)), replication j's seed without conditioning, and a run keeps the first
`replications` accepted attempts in attempt order, whatever the number of workers; a replication
keeps its attempt number as its number. At most MAX_ATTEMPTS_FACTOR x replications attempts are
made; a run that hits the cap says so.

A verdict depends only on the past it judges, so one known from an earlier run with the same past
(`sim.verdicts`: the same history, inputs, figures, threshold, seed and code) is reused: a rejected
attempt is not simulated at all, an accepted one goes to the horizon without its past judged again.

Whose past: the history scenario, by default the run's scenario without its what-if additions
(`[[changes]]` and `extra_deliveries`), or another one given (`--condition-on`). A what-if made of
dated changes and extra deliveries is thus conditioned on the baseline's past, draw by draw: the
same attempts are accepted as in the baseline with the same seed, and a comparison stays paired. A
what-if that changes the past otherwise (IMAS cancellation from 2020, another work order) is
conditioned on its own past unless given the baseline as its history: then the record decides
which worlds are plausible, and the what-if asks what another practice would have done in them.

Reported figures are extensive (hectares, items, people) except shares; a scaled-down test world
(`parcels.area_scale`) is compared with the record scaled by its area scale.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from types import SimpleNamespace

import numpy as np

from .config import ScenarioConfig
from .recording import LOG
from .seeds import Target, fitted, load_targets

THRESHOLD = 3.0
SIGMA_REPORT = 0.1  # log-scale error of a published figure (about 10 %)
REFERENCE_REPLICATIONS = 8
REFERENCE_SEED = 0
PAST_MARGIN_DAYS = 366
# The refitted model's own past is matched closely, so few drawn worlds pass (the baseline's `all`:
# 13 of 200, 6 %): 25 per replication asked for lets 20 be kept.
MAX_ATTEMPTS_FACTOR = 25
# Which implausibility decides: 2, the second largest (Vernon et al. 2010, "I_2M"): with about 70
# figures, one may miss by chance in a plausible world (a week's mines in a small test world).
RULE_RANK = 2
TOP_FIGURES = 5  # the figures that rejected most, as recorded
# A past is judged on the way (`judge_past`): each figure as soon as it is final, and a draw is
# rejected as soon as RULE_RANK figures exceed the threshold, since the figures judged later can
# only add implausibilities: the RULE_RANK-th largest of more figures is no smaller, so judging
# them all at the end would reject it too. False: every figure is judged at the end only.
STAGED = True
# A figure's value on the way and at the end add the same terms and exact zeros (the steps logged
# after it was final), in another order, so they may differ in the last bits: with terms >= 0, each
# sum is within n x 1.1e-16 of exact (relative, n terms), so for a million steps the two differ by
# under 1e-8 in implausibility (sigma >= SIGMA_REPORT). A rejection on the way needs the threshold
# exceeded by this margin, so that the end would reject too.
ROUNDING_MARGIN = 1e-6


def is_share(target: Target) -> bool:
    """A share (a ratio of counts), compared as a log ratio and never scaled to the world's area."""
    return target.metric.endswith("_share")


@dataclass(frozen=True)
class Figure:
    """One reported figure the past is checked against, with its two uncertainties."""

    target: Target
    reported: float  # scaled to the world's area (area_scale) unless a share
    sigma_obs: float
    sigma_disc: float

    @classmethod
    def of(cls, target: Target, scale: float, sigma_disc: float = 0.0) -> Figure:
        """`target` as a figure of a world of `scale` x the national area (a share is not scaled)."""
        share = is_share(target)
        reported = target.value if share else target.value * scale
        return cls(target, reported, sigma_obs(reported, share), sigma_disc)

    @property
    def share(self) -> bool:
        return is_share(self.target)

    def error(self, simulated: float) -> float:
        if not math.isfinite(simulated):
            return math.nan
        if self.share:
            return math.log(max(simulated, 1e-3) / self.reported)
        return math.log1p(max(simulated, 0.0)) - math.log1p(self.reported)

    def implausibility(self, simulated: float) -> float:
        e = self.error(simulated)
        return abs(e) / math.sqrt(self.sigma_obs**2 + self.sigma_disc**2) if math.isfinite(e) else 0.0

    def as_dict(self) -> dict:
        return {
            "target": self.target.model_dump(mode="json"),
            "reported": self.reported,
            "sigma_obs": self.sigma_obs,
            "sigma_disc": self.sigma_disc,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Figure:
        return cls(Target.model_validate(data["target"]), data["reported"], data["sigma_obs"], data["sigma_disc"])


def sigma_obs(reported: float, share: bool) -> float:
    return SIGMA_REPORT if share else math.sqrt(SIGMA_REPORT**2 + 1.0 / (reported + 1.0))


@dataclass(frozen=True)
class Conditioning:
    """What a run's draws must reproduce: the figures, whose past (`history`: a config as JSON, or
    None for the run's own), up to which day the past is simulated, the threshold and the cap."""

    figures: tuple[Figure, ...]
    past_day: float
    history: str | None = None
    history_name: str = ""
    threshold: float = THRESHOLD
    max_attempts_factor: int = MAX_ATTEMPTS_FACTOR
    reference: dict = field(default_factory=dict, compare=False)

    @property
    def targets(self) -> tuple[Target, ...]:
        return tuple(f.target for f in self.figures)

    def max_attempts(self, replications: int) -> int:
        return self.max_attempts_factor * replications

    def judge(self, values: dict[str, float]) -> dict:
        """The implausibility of each figure and the verdict for one simulated past."""
        scores = {f.target.id: f.implausibility(values.get(f.target.id, math.nan)) for f in self.figures}
        ranked = sorted(scores.values(), reverse=True) + [0.0, 0.0]
        decisive = ranked[RULE_RANK - 1]
        return {
            "accepted": decisive <= self.threshold,
            "max_implausibility": ranked[0],
            "implausibility": decisive,
            "worst": max(scores, key=scores.get) if scores else None,
            "over": sorted(k for k, v in scores.items() if v > self.threshold),
        }

    def years(self) -> str:
        first = min(f.target.window_start or f.target.window_end for f in self.figures).year
        last = max(f.target.window_end for f in self.figures).year
        return f"{first}-{last}"

    def describe(self) -> str:
        whose = f", checked on the past of {self.history_name}" if self.history is not None else ""
        return (
            f"conditioned on the {self.years()} record ({len(self.figures)} reported figures, all but "
            f"{RULE_RANK - 1} within implausibility {self.threshold:g}){whose}"
        )

    def as_dict(self) -> dict:
        return {
            "method": "history matching by rejection: I = |log(sim+1) - log(reported+1)| / sqrt(sigma_obs^2 + sigma_disc^2), "
            "reject if the second-largest I exceeds the threshold (sim.conditioning)",
            "threshold": self.threshold,
            "rule_rank": RULE_RANK,
            "sigma_report": SIGMA_REPORT,
            "past_day": self.past_day,
            "max_attempts_factor": self.max_attempts_factor,
            "history": self.history,
            "history_name": self.history_name,
            "reference": self.reference,
            "figures": [f.as_dict() for f in self.figures],
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> Conditioning | None:
        if not data:
            return None
        return cls(
            tuple(Figure.from_dict(f) for f in data["figures"]),
            data["past_day"],
            data.get("history"),
            data.get("history_name", ""),
            data["threshold"],
            data["max_attempts_factor"],
            data.get("reference", {}),
        )


def history_config(cfg: ScenarioConfig) -> ScenarioConfig:
    """The run's scenario without its what-if additions: no dated changes, no extra deliveries."""
    data = cfg.model_dump()
    data["changes"] = []
    for agency in data["agencies"].values():
        agency["extra_deliveries"] = []
    return ScenarioConfig.model_validate(data)


def condition_targets(targets: list[Target] | None = None) -> list[Target]:
    """The figures a draw is checked against: every reported figure the fit uses, except shares
    (the share of victims outside the former line of contact: a ratio of a few incidents, 0, 1
    or undefined in a replication of a small world)."""
    chosen = fitted(load_targets() if targets is None else targets)
    return [t for t in chosen if t.window_end is not None and not is_share(t)]


def past_day(cfg: ScenarioConfig, targets: list[Target]) -> float:
    last = max(t.window_end for t in targets)
    return float((last - cfg.start_date).days + PAST_MARGIN_DAYS)


def make_conditioning(
    history: ScenarioConfig,
    *,
    own: bool,
    simulate_past,
    name: str | None = None,
    targets: list[Target] | None = None,
    threshold: float = THRESHOLD,
    max_attempts_factor: int = MAX_ATTEMPTS_FACTOR,
    references=None,
    inventory=None,
) -> Conditioning | None:
    """The conditioning of a run whose past is `history`'s (`own`: the run's scenario itself).
    `simulate_past(cfg, seed_seq, targets, day)` gives one replication's simulated figures up to
    `day`: the model discrepancy is measured with it (REFERENCE_REPLICATIONS of `history`). None
    when the run ends before any figure's window does: there is no past to check.

    `references`: measurements kept from earlier runs (sim.verdicts.ReferenceCache, the CLI's; None:
    always measure): `references.measured(history, targets, day, inventory)` gives the one of this
    past ({"sigma_disc": {figure: float}, "measured": date}) or None, and a new measurement is handed
    to `references.keep(history, targets, day, measurement, inventory)`. `inventory`: the parcel
    inventory `simulate_past` runs on, part of the measurement's key. A reused measurement gives
    the same figures to the last bit; `reference["reused"]` says whether it was."""
    horizon = round(history.horizon_years * 365.25)  # as sim.assets compiles it
    # Only figures whose window the run covers (a run of a few years checks the years it has).
    chosen = [t for t in condition_targets(targets) if (t.window_end - history.start_date).days + 1 <= horizon]
    if not chosen:
        return None
    day = min(past_day(history, chosen), float(horizon))
    scale = history.parcels.area_scale
    measurement = None if references is None else references.measured(history, chosen, day, inventory)
    reused = measurement is not None
    if measurement is None:
        measurement = measure_discrepancy(history, chosen, day, simulate_past)
        if references is not None:
            references.keep(history, chosen, day, measurement, inventory)
    disc = measurement["sigma_disc"]
    figures = []
    for target in chosen:
        if target.id not in disc:  # a figure of an agency or district the world lacks
            continue
        figures.append(Figure.of(target, scale, disc[target.id]))
    reference = {
        "replications": REFERENCE_REPLICATIONS,
        "seed": REFERENCE_SEED,
        "measured": measurement["measured"],
        "reused": reused,
    }
    return Conditioning(
        tuple(figures),
        day,
        None if own else history.model_dump_json(),
        name or history.name,
        threshold,
        max_attempts_factor,
        reference,
    )


def measure_discrepancy(history: ScenarioConfig, chosen: list[Target], day: float, simulate_past) -> dict:
    """The model discrepancy of each figure `chosen`: the root mean square of its error over
    REFERENCE_REPLICATIONS replications (seed REFERENCE_SEED) of `history`'s past up to `day`, at
    its own values. A figure the world lacks (no finite error) is left out. With the date measured."""
    scale = history.parcels.area_scale
    seeds = np.random.SeedSequence(REFERENCE_SEED).spawn(REFERENCE_REPLICATIONS)
    runs = [simulate_past(history, s, tuple(chosen), day) for s in seeds]
    disc = {}
    for target in chosen:
        probe = Figure.of(target, scale)
        errors = [probe.error(r[target.id]) for r in runs]
        errors = [e for e in errors if math.isfinite(e)]
        if errors:
            disc[target.id] = math.sqrt(sum(e * e for e in errors) / len(errors))
    return {"sigma_disc": disc, "measured": dt.datetime.now(dt.UTC).date().isoformat()}


def past_values(ctx, log: np.ndarray, incidents: np.ndarray) -> dict[str, float]:
    """The figures of `ctx.targets` from a past's log and incidents."""
    from .metrics import target_values

    return target_values(ctx, SimpleNamespace(log=log, incidents=incidents))


def judge_past(campaign, cond: Conditioning, ctx) -> dict:
    """Simulate a started campaign (`sim.model.Campaign`) to `cond.past_day` and judge its past:
    `cond.judge` of every figure, or a rejection on the way (STAGED) as soon as RULE_RANK figures
    already final exceed the threshold. `ctx`: the campaign's table context (`sim.metrics.Context`)
    for the figures' targets. A rejection on the way is `cond.judge` of the figures judged by then
    (`judged`, on `decided_day`): its `over` names only those."""
    log = LogSoFar(campaign.recorder)
    if STAGED:
        end = min(cond.past_day, campaign.compiled.horizon_days)
        window_start = {f.target.id: ctx.day(f.target.window_start) if f.target.window_start else 0.0 for f in cond.figures}
        window_end = {f.target.id: ctx.day(f.target.window_end) + 1.0 for f in cond.figures}  # exclusive
        waiting = sorted(cond.figures, key=lambda f: window_end[f.target.id])
        judged: dict[str, float] = {}
        over = 0
        for day in campaign.edges.tolist()[1:]:  # a look at each month's end (edges[0]: the start)
            if not waiting or day >= end:
                break
            if day < window_end[waiting[0].target.id]:
                continue  # no figure can be final yet
            campaign.advance(day, counted=False)
            final_before = campaign.final_before()
            final = [f for f in waiting if window_end[f.target.id] <= final_before]
            if not final:
                continue
            waiting = waiting[len(final) :]
            # Steps that ended before the earliest of these windows add exact zeros: left out.
            rows = log.update()
            ending = np.flatnonzero(rows[:, LOG["t1"]] >= min(window_start[f.target.id] for f in final))
            first = ending[0] if len(ending) else len(rows)
            subset = replace(ctx, targets=tuple(f.target for f in final))
            values = past_values(subset, rows[first:], campaign.recorder.incident_array())
            judged |= values
            over += sum(f.implausibility(values[f.target.id]) > cond.threshold + ROUNDING_MARGIN for f in final)
            if over >= RULE_RANK:
                return cond.judge(judged) | {"judged": len(judged), "decided_day": day}
    campaign.advance(cond.past_day)
    return cond.judge(past_values(ctx, log.update(), campaign.recorder.incident_array()))


class LogSoFar:
    """The task-step log of a past being simulated, as an array: each look converts only the rows
    logged since the last one (converting the whole log at every look would cost more than the
    figures). The same numbers as `Recorder.log_array`."""

    def __init__(self, recorder):
        self.recorder = recorder
        self.rows = 0
        self.array = np.empty((0, len(LOG)))

    def update(self) -> np.ndarray:
        new = self.recorder.log_array(self.rows)
        filled = self.rows + len(new)
        if filled > len(self.array):  # grown by doubling, so that every row is copied about twice
            grown = np.empty((max(filled, 2 * len(self.array)), len(LOG)))
            grown[: self.rows] = self.array[: self.rows]
            self.array = grown
        self.array[self.rows : filled] = new
        self.rows = filled
        return self.array[:filled]


@dataclass
class Tally:
    """How the attempts of a run went: counted in attempt order up to the last one a run used.
    `rejected_by` counts, for each figure, the rejected attempts in which it exceeded the threshold
    among the figures judged by the time of the rejection (judged on the way, a draw rejected by
    the 2022 figures is not judged on the 2025 ones): the figures that rejected it first. A verdict
    reused from an earlier run (`reused`) counts as if judged here, as it would have been the same;
    `verdicts_reused` says how many were."""

    attempts: int = 0
    accepted: list[int] = field(default_factory=list)
    rejected_by: dict[str, int] = field(default_factory=dict)
    largest: list[float] = field(default_factory=list)
    reused: int = 0
    reference_reused: bool = False  # the model discrepancy taken from an earlier run with the same past

    def add(self, attempt: int, verdict: dict | None, *, reused: bool = False) -> None:
        self.attempts += 1
        self.reused += reused
        if verdict is None or verdict["accepted"]:
            self.accepted.append(attempt)
        else:
            for figure in verdict["over"]:
                self.rejected_by[figure] = self.rejected_by.get(figure, 0) + 1
        if verdict is not None:
            self.largest.append(verdict["max_implausibility"])

    def record(self, requested: int, cap: int) -> dict:
        rate = len(self.accepted) / self.attempts if self.attempts else math.nan
        rejected = self.attempts - len(self.accepted)
        top = sorted(self.rejected_by.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_FIGURES]
        return {
            "requested": requested,
            "attempts": self.attempts,
            "accepted": len(self.accepted),
            "acceptance_rate": rate,
            "max_attempts": cap,
            "cap_reached": len(self.accepted) < requested,
            "accepted_attempts": list(self.accepted),
            "rejected_by": [{"figure": k, "rejections": v, "share_of_rejected": v / rejected} for k, v in top],
            "verdicts_reused": self.reused,
            "reference_reused": self.reference_reused,
        }


def tally_text(record: dict) -> str:
    """One line for a run's terminal summary and warnings."""
    text = (
        f"{record['accepted']} of {record['attempts']} drawn worlds plausible against the record "
        f"({record['acceptance_rate']:.0%})"
    )
    if record["rejected_by"]:
        most = ", ".join(f"{r['figure']} ({r['rejections']})" for r in record["rejected_by"][:3])
        text += f"; rejected most by {most}"
    if record.get("verdicts_reused"):
        text += f"; {record['verdicts_reused']} verdicts reused from an earlier run with the same past (sim.verdicts)"
    if record.get("reference_reused"):
        text += "; the model discrepancy reused from an earlier run with the same past (sim.verdicts)"
    if record["cap_reached"]:
        text += (
            f"; the cap of {record['max_attempts']} attempts was reached with {record['accepted']} of "
            f"{record['requested']} replications accepted"
        )
    return text
