"""The `demining` command: parses, calls the API, renders. No model logic here."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import signal
import sys
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

try:  # recent typer carries its own copy of click
    from typer._click.exceptions import NoArgsIsHelpError
    from typer._click.exceptions import UsageError as ClickUsageError
except ImportError:  # pragma: no cover - typer on top of click
    from click.exceptions import NoArgsIsHelpError
    from click.exceptions import UsageError as ClickUsageError

from . import __version__
from .bands import BAND, Band, parse_band
from .conditioning import tally_text
from .config import ScenarioConfig
from .ensemble import check_run_size, default_workers, load_inventory, worker_pool
from .ensemble import run as run_ensemble
from .errors import UserError
from .provenance import now
from .results import RunFolder, check_run, config_hash, config_toml, metadata, new_run_id, recorded_inventory, resolve_run
from .scenario import load_scenario
from .uncertainty import MODES, make_uncertainty
from .verdicts import FOLDER as VERDICTS_FOLDER
from .verdicts import ReferenceCache, VerdictCache, verdict_key

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Simulate the demining campaign in Karabakh and East Zangazur.",
    rich_markup_mode=None,  # usage errors are one plain line (see main), not a box
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(no_args_is_help=True, help="Inspect scenario configuration.", rich_markup_mode=None)
app.add_typer(config_app, name="config")

out_console = Console()
err_console = Console(stderr=True)
_state: dict = {"debug": False, "command": None}

# One definition of each option every command shares, and one check of their values
# (`_check_options`), so no command accepts what another refuses.
RUN_REPLICATIONS = 20  # `run`'s default; None on `run` means "not given" (see --resume)
MAX_REPLICATIONS = 100_000
ReplicationsOption = Annotated[
    int | None,
    typer.Option(
        "--replications",
        "-n",
        help=f"Replications (per grid point in a sweep, per evaluation in a calibration; run: {RUN_REPLICATIONS}).",
    ),
]
SeedOption = Annotated[int | None, typer.Option("--seed", "-s", help="Seed of the run's SeedSequence (integer >= 0; run: 0).")]
OutOption = Annotated[Path | None, typer.Option("--out", "-o", help="Results root folder (default results).")]
WorkersOption = Annotated[int | None, typer.Option("--workers", "-w", help="Worker processes (default: all cores).")]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        envvar="DEMINING_SCHEDULER",
        help="Dask scheduler address (tcp://host:port) to run replications on a cluster.",
    ),
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Run even when the estimated size (parcels, memory) is far beyond a usual run.")
]
SetOption = Annotated[list[str] | None, typer.Option("--set", help="Override a key: key.path=value (repeatable).")]
AddOption = Annotated[
    list[str] | None,
    typer.Option(
        "--add",
        help="An extra delivery AGENCY:ASSET_TYPE:COUNT@YYYY-MM-DD, e.g. anama:machine:30@2026-01-01 (repeatable).",
    ),
]
BandOption = Annotated[
    str | None,
    typer.Option(
        "--band", help=f"Uncertainty band of tables and plots, LOW-HIGH percentages (default {BAND.label.removesuffix(' %')})."
    ),
]
RESULTS = Path("results")
YearsOption = Annotated[float | None, typer.Option("--years", help="Horizon in years (overrides horizon_years).")]
# What a projection's bands hold by default (sim.uncertainty.MODES): replication noise and every
# uncertain input's range. `none` gives the runs made before uncertain inputs were drawn, bit for bit.
RUN_UNCERTAINTY = "all"
UncertaintyOption = Annotated[
    str | None,
    typer.Option(
        "--uncertainty",
        help=f"What the bands hold besides replication noise: none, inputs (seeds/inputs.csv ranges), fitted "
        f"(the fitted parameters' ranges) or all, drawn per replication (run: {RUN_UNCERTAINTY}).",
    ),
]

ConditionOption = Annotated[
    bool | None,
    typer.Option(
        "--condition/--no-condition",
        help="Keep only drawn worlds whose simulated past is plausible against the reported figures "
        "(history matching; the default whenever inputs are drawn).",
    ),
]
ConditionOnOption = Annotated[
    Path | None,
    typer.Option(
        "--condition-on",
        help="The scenario whose past the drawn worlds must reproduce (default: this one without its dated "
        "changes and extra deliveries); give the baseline for a what-if that changes the past.",
    ),
]


def _check_options(
    *, replications: int | None = None, seed: int | None = None, workers: int | None = None, out: Path | None = None
) -> None:
    """The checks every command makes of the shared options, before any work starts."""
    if replications is not None and replications < 1:
        raise UserError(f"--replications must be at least 1, not {replications}")
    if replications is not None and replications > MAX_REPLICATIONS:
        raise UserError(
            f"--replications {replications:,} is more than the {MAX_REPLICATIONS:,} one run may hold; "
            "split the work into several runs with different --seed"
        )
    if seed is not None and seed < 0:
        raise UserError(f"--seed must be a non-negative integer, not {seed}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, not {workers}")
    if out is not None:
        _check_writable_folder(out, "--out")


def _check_writable_folder(folder: Path, option: str) -> None:
    """A folder we will create or write into: it, or its nearest existing parent, must be a
    writable folder. Checked before hours of work, not after."""
    existing = Path(os.path.abspath(folder))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{option}: {existing} is not a folder", source=str(folder))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{option}: cannot write in {existing}", source=str(folder))


def _check_writable_file(path: Path, option: str) -> None:
    """A file we will (re)write at the end: its folder must exist and be writable now."""
    if path.is_dir():
        raise UserError(f"{option}: is a folder, not a file", source=str(path))
    parent = path.parent
    if not parent.is_dir():
        raise UserError(f"{option}: folder {parent} does not exist", source=str(path))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{option}: cannot write in {parent}", source=str(path))


def _refuse(mode: str, why: str, given: dict) -> None:
    """Options that `mode` would ignore are errors, naming each one given."""
    named = [option for option, value in given.items() if value not in (None, [], False)]
    if named:
        raise UserError(f"{mode} {why}; give no {', '.join(named)}")


def _band(text: str | None) -> Band:
    return BAND if text is None else parse_band(text)


def _overrides(set_: list[str] | None, years: float | None) -> list[str]:
    items = list(set_ or [])
    if years is not None:
        items.append(f"horizon_years={years}")
    return items


def _print_version(value: bool) -> None:
    if value:
        out_console.print(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback on errors.")] = False,
    version: Annotated[
        bool,
        # Eager, so that it answers before the check that a command was given.
        typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_print_version),
    ] = False,
):
    _state["debug"] = debug


@app.command()
def run(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario TOML file (omit with --resume).")] = None,
    replications: ReplicationsOption = None,
    seed: SeedOption = None,
    out: OutOption = None,
    years: YearsOption = None,
    set_: SetOption = None,
    add: AddOption = None,
    inventory: Annotated[
        Path | None,
        typer.Option("--inventory", help="Parcel inventory CSV (id, district, area_ha, land_use, terrain, threat, mapped)."),
    ] = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Finish an interrupted run (its .partial-* folder).")] = None,
    check: Annotated[
        Path | None, typer.Option("--check", help="Re-run replication 0 of a finished run and confirm it matches.")
    ] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw the standard plots.")] = True,
    band: BandOption = None,
    uncertainty: UncertaintyOption = None,
    condition: ConditionOption = None,
    condition_on: ConditionOnOption = None,
    force: ForceOption = False,
):
    """Run a scenario's replications and write a results folder."""
    _check_options(replications=replications, seed=seed, workers=workers)
    conditioning = {"--condition": True if condition else None, "--no-condition": True if condition is False else None}
    conditioning["--condition-on"] = condition_on
    if check is not None:
        given = {"scenario": scenario, "--resume": resume, "--set": set_, "--add": add, "--years": years}
        given |= {"--inventory": inventory, "--uncertainty": uncertainty} | conditioning
        given |= {"--replications": replications, "--seed": seed, "--out": out, "--workers": workers, "--band": band}
        _refuse("--check", "re-runs a finished run with its own config, seed and inventory", given | {"--force": force})
        problems = check_run(check)
        if problems:
            for problem in problems:
                err_console.print(f"[red]differs:[/] {problem}", highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        out_console.print(f"{check}: replication 0 re-run matches the stored tables; config hash matches.")
        return
    if resume is not None:
        given = {"scenario": scenario, "--set": set_, "--add": add, "--years": years, "--inventory": inventory}
        given |= {"--band": band, "--uncertainty": uncertainty} | conditioning
        _refuse("--resume", "takes its scenario, seed and settings from the run folder", given | {"--force": force})
        folder = RunFolder.open_partial(resume)
        plan = folder.plan
        # Given with --resume, these must agree with the run being finished: a silent mismatch
        # would publish a run other than the one asked for.
        for option, value, stored in (("--replications", replications, plan["replications"]), ("--seed", seed, plan["seed"])):
            if value is not None and value != stored:
                raise UserError(f"--resume: this run has {option} {stored}, not {value}; give no {option} or the same")
        root = folder.path.parent.parent
        if out is not None and os.path.abspath(out) != os.path.abspath(root):
            raise UserError(f"--resume: this run belongs to the results root {root}, not --out {out}; give no --out")
        chosen_band = folder.band
        cfg = load_scenario(folder.path / "config.toml", environ={})
        if config_hash(cfg) != plan["config_sha256"]:
            raise UserError(
                "changed since the run started (its SHA-256 differs from plan.json's); restore it, or start a new run with it",
                source=str(folder.path / "config.toml"),
            )
        seed, replications = plan["seed"], plan["replications"]
        inventory = recorded_inventory(plan["inventory"], plan["inventory_sha256"], folder.path / "plan.json")
        draws = folder.uncertainty
    else:
        if scenario is None:
            raise UserError("give a scenario file, or --resume RUN_DIR")
        replications = RUN_REPLICATIONS if replications is None else replications
        seed = 0 if seed is None else seed
        root = RESULTS if out is None else out
        _check_options(out=root)
        chosen_band = _band(band)
        cfg = load_scenario(scenario, _overrides(set_, years), additions=add or [])
        mode = RUN_UNCERTAINTY if uncertainty is None else uncertainty
        if mode not in MODES:
            raise UserError(f"--uncertainty {mode!r}: choose one of {', '.join(MODES)}")
        if mode == "none" and (condition or condition_on is not None):
            option = "--condition-on" if condition_on is not None else "--condition"
            raise UserError(f"{option}: --uncertainty none draws nothing to condition; give inputs, fitted or all")
        if condition is False and condition_on is not None:
            raise UserError("--condition-on: --no-condition keeps every draw; give one or the other")
        history = load_scenario(condition_on) if condition_on is not None else None
        folder = None
    sized = force or folder is not None  # a resumed run was sized when it started
    parcels = load_inventory(inventory, cfg, force=sized) if inventory else None
    check_run_size(cfg, parcels, force=sized)
    if folder is None:
        # Conditioned: first measures how far the model misses the record by itself (a few
        # replications of the past, sim.conditioning), unless an earlier run under the same results
        # root measured the same past (sim.verdicts: the baseline's, for a what-if of additions).
        references = ReferenceCache(Path(root) / VERDICTS_FOLDER)
        draws = make_uncertainty(
            cfg, mode, condition=condition is not False, history=history, inventory=parcels, references=references
        )
        if references.unkept:
            err_console.print(
                f"[yellow]warning:[/] the model discrepancy measured was not kept for later runs ({references.unkept})",
                highlight=False,
                soft_wrap=True,
            )
    workers = default_workers() if workers is None else workers
    # A conditioned run reuses the verdicts of attempts whose past an earlier run judged (the
    # baseline's, for a what-if of additions: sim.verdicts), and keeps its own for the next.
    verdicts = VerdictCache(Path(root) / VERDICTS_FOLDER)
    key = verdict_key(cfg, draws, seed, parcels)
    decided: dict[int, dict] = {}  # filled as attempts are decided: kept even if the run stops
    if folder is None:
        folder = RunFolder.create(
            root,
            cfg,
            seed=seed,
            replications=replications,
            run_id=new_run_id(),
            version=__version__,
            inventory=inventory,
            band=chosen_band,
            uncertainty=draws,
        )  # locked until this command ends
    else:
        folder.lock()  # one process at a time writes a run: a second --resume stops here
    # From here on the folder holds the user's work: whatever stops the run keeps every finished
    # replication and says how to resume (see _stopped); only a folder with none may be removed.
    verdicts_kept = False  # the verdicts decided are written once: after the run, or as it stops
    with _sigterm_as_interrupt():
        try:
            for report in folder.set_aside_damaged():
                err_console.print(f"[yellow]warning:[/] {report}", highlight=False, soft_wrap=True)
            with _executor(scheduler, workers, replications) as (pool, executor_name):
                with Progress(
                    TextColumn(f"[bold]{cfg.name}[/]"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    TimeRemainingColumn(),
                    console=err_console,
                    transient=False,
                ) as bar:
                    task = bar.add_task("replications", total=replications)
                    result = run_ensemble(
                        cfg,
                        replications,
                        seed,
                        workers=workers,
                        pool=pool,
                        inventory=parcels,
                        sink=folder,
                        progress=lambda k: bar.advance(task, k),
                        band=chosen_band,
                        uncertainty=draws,
                        verdicts=verdicts.known(key),
                        decided=decided,
                    )
            _keep_verdicts(verdicts, key, decided, cfg.name, seed)
            verdicts_kept = True
            meta = metadata(
                result, folder.plan, finished=now(), workers=workers, executor=executor_name, command=_state["command"]
            )
            draw = None
            if plots:
                _file_backend()
                from .plots import save_run_plots as draw
            final = folder.finalize(result, meta, draw)
        except BaseException as exc:
            try:  # the verdicts decided before it stopped: the resume, and later runs, reuse them
                if not verdicts_kept:
                    _keep_verdicts(verdicts, key, decided, cfg.name, seed)
            finally:  # even if a second Ctrl-C lands meanwhile (the cache file is written whole or not at all)
                _stopped(folder, exc, replications, resuming=resume is not None)
            raise
        finally:
            folder.unlock()
    _print_summary(result, final, meta)


def _keep_verdicts(verdicts: VerdictCache, key: str | None, decided: dict[int, dict], scenario: str, seed: int) -> None:
    """Keep a conditioned run's verdicts for later runs of the same past; a cache that cannot be
    written costs only the reuse, so it warns and the run goes on."""
    try:
        verdicts.keep(key, dict(decided), {"scenario": scenario, "seed": seed})
    except (OSError, ValueError) as exc:
        err_console.print(
            f"[yellow]warning:[/] the verdicts of this run's attempts were not kept for later runs ({_cause(exc)})",
            highlight=False,
            soft_wrap=True,
        )


class Terminated(BaseException):
    """SIGTERM (sent by `timeout`, batch systems, `kill`), raised in the main thread as Ctrl-C
    raises KeyboardInterrupt, so that it stops a run the same way."""


@contextmanager
def _sigterm_as_interrupt():
    def raise_once(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut short the cleanup
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, raise_once)
    except ValueError:  # not the main thread (the CLI called from a thread): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _cause(exc: BaseException) -> str:
    """One line saying what stopped a run."""
    if isinstance(exc, BrokenProcessPool):
        return "a worker process died (killed by the system, e.g. out of memory?)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f": {exc.filename}" if exc.filename else "")
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _stopped(folder: RunFolder, exc: BaseException, replications: int, *, resuming: bool) -> None:
    """A run stopped before it was published: keep its folder unless it holds nothing finished,
    print one line (what stopped it, what was kept, how to resume) and exit with the code of the
    cause: 130 Ctrl-C, 143 SIGTERM, 2 a user-side cause (a damaged part), 1 anything else. With
    --debug, errors are re-raised after the line, for their traceback."""
    if isinstance(exc, typer.Exit | SystemExit):
        return
    try:
        done = folder.count_finished()
    except OSError:
        done = None  # cannot tell: keep the folder
    kept = resuming or not folder.discard()
    if isinstance(exc, KeyboardInterrupt):
        code, cause = 130, "interrupted"
    elif isinstance(exc, Terminated):
        code, cause = 143, "terminated (SIGTERM)"
    elif isinstance(exc, UserError):
        code, cause = 2, str(exc)
    elif isinstance(exc, Exception):
        code, cause = 1, _cause(exc)
    else:
        return
    if not kept:
        if code == 2:
            return  # main() prints the error; nothing was written
        message = f"{cause}; no replication had finished, so nothing was kept"
    else:
        count = "" if done is None else f"{done} of {replications} replications kept; "
        message = f"{cause}; {count}finish with: demining run --resume {shlex.quote(str(folder.path))}"
    prefix = "" if code in (130, 143) else "[red]error:[/] "
    err_console.print(f"{prefix}{message}", highlight=False, soft_wrap=True)
    if _state["debug"] and code in (1, 2):
        return
    raise typer.Exit(code) from None


def _file_backend() -> None:
    """Plots drawn from the command line are files: use Agg unless the user chose a backend
    (MPLBACKEND or a matplotlibrc). Here rather than in sim.plots, so that importing the library
    never overrides a notebook's backend."""
    import matplotlib

    if matplotlib.rcParams._get_backend_or_none() is None:  # None: matplotlib would pick a GUI one itself
        matplotlib.use("Agg")


@contextmanager
def _executor(scheduler: str | None, workers: int, replications: int):
    """A Dask client for --scheduler, else a local process pool (None for one worker)."""
    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise UserError("--scheduler needs dask.distributed: pip install 'demining-sim[cluster]'") from None
        try:
            client = Client(scheduler, timeout=10)
        except (OSError, TimeoutError) as exc:
            raise UserError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
        with client:
            yield client, f"dask {scheduler}"
        return
    with worker_pool(min(workers, replications)) as pool:
        yield pool, f"local processes x{min(workers, replications)}"


def _hurt(totals: dict, who: str) -> float:
    """Mean killed and injured of one kind of victim over the run (a summary's totals_at_horizon)."""
    return totals[f"{who}_killed"]["mean"] + totals[f"{who}_injured"]["mean"]


def _month(date: str) -> str:
    return date[:7] if date[:1].isdigit() else "> horizon"


def _print_summary(result, folder: Path, meta: dict) -> None:
    s = result.summary
    lo, hi = result.band.low_name, result.band.high_name
    table = Table(title=f"{result.config.name}: {result.replications} replications, seed {result.seed}")
    table.add_column("district")
    table.add_column("90 % released: P50")
    table.add_column(f"all released: P50 ({lo.upper()}-{hi.upper()})")
    table.add_column("released ha", justify="right")
    table.add_column("civilian casualties", justify="right")

    def when(c: dict) -> str:
        return f"{_month(c['p50'])} ({_month(c[lo])} - {_month(c[hi])})"

    for key, d in s["districts"].items():
        table.add_row(
            key,
            _month(d["release_dates"]["90%"]["p50"]),
            when(d["completion"]),
            f"{d['released_ha']['mean']:,.0f}",
            f"{d['civilian_casualties']['mean']:,.1f}",
        )
    tot = s["totals_at_horizon"]
    table.add_row(
        "[bold]all[/]",
        _month(s["all_release_dates"]["90%"]["p50"]),
        when(s["all_released"]),
        f"{tot['released_ha']['mean']:,.0f}",
        f"{_hurt(tot, 'civilian'):,.1f}",
    )
    table.caption = (
        "means over replications; 90 %: the month 90 % of the area is released; all: every parcel handed over; "
        f"bands hold {s['band_holds']}"
    )
    out_console.print(table)
    if s.get("conditioning"):
        record = s["conditioning"]
        out_console.print(f"Conditioned on the record: {tally_text(record)}.", highlight=False, soft_wrap=True)
        if record["cap_reached"]:
            err_console.print(
                f"[yellow]warning:[/] only {record['accepted']} of {record['requested']} replications: the cap of "
                f"{record['max_attempts']} attempts was reached (few drawn worlds reproduce the record); the bands "
                "rest on fewer replications than asked",
                highlight=False,
                soft_wrap=True,
            )
    items = tot["items_ap"]["mean"] + tot["items_at"]["mean"] + tot["items_uxo"]["mean"]
    out_console.print(
        f"By {s['horizon_end']}: {tot['released_ha']['mean']:,.0f} of {s['initial_hazardous_area_ha']:,.0f} ha released "
        f"({tot['cancelled_ha']['mean']:,.0f} cancelled, {tot['reduced_ha']['mean']:,.0f} reduced, {tot['cleared_ha']['mean']:,.0f} cleared; "
        f"processed as the agencies count it: {tot['reduced_ha']['mean'] + tot['cleared_ha']['mean']:,.0f}); "
        f"{items:,.0f} items found, {tot['residual_items']['mean']:,.0f} left behind on released land; people hurt: "
        + ", ".join(f"{_hurt(tot, who):,.1f} {who}s" for who in ("civilian", "soldier", "deminer"))
        + "."
    )
    limits = s.get("what_limits_progress", [])
    if limits:
        out_console.print("What limits progress (utilisation.parquet, plots/utilisation_by_year.png):", highlight=False)
        for period in limits:
            out_console.print(f"  {period['text']}", highlight=False, soft_wrap=True)
    for row in s.get("land_no_agency_can_work", []):
        out_console.print(f"[bold]Cannot finish:[/] {row['text']}.", highlight=False, soft_wrap=True)
    if s.get("costs"):
        _print_costs(s["costs"], lo, hi)
    out_console.print(f"Wall time {meta['wall_seconds']:.1f} s. Results: {folder}")


def _usd_m(value: float) -> str:
    return f"{value / 1e6:,.1f} M"


def _print_costs(costs: dict, lo: str, hi: str) -> None:
    """Spend to 2025, 2030 and completion, unit costs per ha and item, and the published-totals check."""
    spend = costs["spend_usd"]
    horizon = costs.get("horizon_end", "9999")
    finished = costs.get("share_of_replications_finished", 1.0)
    labels = []
    for year in (2025, 2030):
        cut = f" (the run ends {horizon})" if horizon < f"{year}-12-31" else ""
        labels.append((f"by_{year}", f"to end {year}{cut}"))
    done = "to completion" if finished == 1.0 else f"to completion or the horizon ({finished:.0%} of replications finish)"
    labels.append(("to_completion", done))
    scope = "whole campaign" if finished == 1.0 else "spend and work to completion, or to the horizon where not finished"
    parts = []
    for key, label in labels:
        v = spend[key]
        parts.append(
            f"{label} {_usd_m(v['mean'])} ({lo.upper()}-{hi.upper()} {_usd_m(v[lo])}-{_usd_m(v[hi])}; "
            f"low-high unit costs {_usd_m(v['low_unit_costs_mean'])}-{_usd_m(v['high_unit_costs_mean'])})"
        )
    out_console.print(
        "Spend, USD (mean at central unit costs; spend_per_year.parquet, plots/spend_per_year.png): " + "; ".join(parts) + ".",
        highlight=False,
        soft_wrap=True,
    )
    per = {k: costs[k]["mean"] for k in ("usd_per_ha_released", "usd_per_ha_processed", "usd_per_item_found")}
    methods = costs.get("by_method", {})
    by_method = ", ".join(
        f"{name.replace('_', ' ')} USD {m['usd_per_ha']:,.0f} per ha {m['land'].removesuffix('_ha')}"
        for name, m in methods.items()
        if "usd_per_ha" in m and m["usd_per_ha"] == m["usd_per_ha"]
    )
    out_console.print(
        f"USD {per['usd_per_ha_released']:,.0f} per ha released, {per['usd_per_ha_processed']:,.0f} per ha processed, "
        f"{per['usd_per_item_found']:,.0f} per item found ({scope}); by method: {by_method}.",
        highlight=False,
        soft_wrap=True,
    )
    check = costs.get("published_check", [])
    if check:
        out_console.print(
            "Against Azerbaijan's published spending (agencies it pays; published_spend_check.csv):",
            highlight=False,
            soft_wrap=True,
        )
        for row in check:
            out_console.print(
                f"  {row['window']}: published {row['published']}"
                + ("" if row["published"].startswith("USD") else f" = USD {_usd_m(row['published_usd'])}")
                + "; modelled "
                f"USD {_usd_m(row['modelled_usd'])} (low-high unit costs {_usd_m(row['modelled_usd_low'])}-"
                f"{_usd_m(row['modelled_usd_high'])}), {row['ratio']:.2f} x published",
                highlight=False,
                soft_wrap=True,
            )


FIT_LOG_EVERY = 10  # evaluations between progress lines when stderr is not a terminal


def _fit_progress(bar: Progress, task, prefix: str):
    """A fit's progress: on the bar, and when stderr is not a terminal (a batch job's log, where the
    bar shows nothing) a line every FIT_LOG_EVERY evaluations, so an hour-long fit is never silent."""

    def show(stage: str, n: int, objective: float) -> None:
        text = f"{prefix}{stage}: evaluation {n}, objective {objective:.4f}"
        bar.update(task, description=text)
        if not err_console.is_terminal and n % FIT_LOG_EVERY == 0:
            err_console.print(f"{now():%H:%M:%S} {text}", highlight=False)

    return show


@app.command()
def calibrate(
    scenario: Annotated[Path, typer.Argument(help="Scenario to fit.")] = Path("scenarios/baseline.toml"),
    replications: ReplicationsOption = 6,
    seed: SeedOption = 0,
    workers: WorkersOption = None,
    max_evaluations: Annotated[int, typer.Option("--max-evaluations", help="Evaluations per parameter block at most.")] = 30,
    rounds: Annotated[int, typer.Option("--rounds", help="Passes over the land-release blocks.")] = 2,
    output: Annotated[Path, typer.Option("--output", help="Where to write the fitted values (extended by the baseline).")] = Path(
        "scenarios/calibrated.toml"
    ),
    out: OutOption = RESULTS,
    set_: SetOption = None,
    add: AddOption = None,
    band: BandOption = None,
    force: ForceOption = False,
    blocks: Annotated[
        str | None,
        typer.Option(
            "--blocks",
            help="Fit only these parameter blocks, comma-separated: practice, an agency key (anama, mod, ...), incidents; "
            "the others keep the scenario's values.",
        ),
    ] = None,
):
    """Fit land-release practice, item densities, agency productivity and incident parameters to the reported figures."""
    from .calibration import block_of, free_parameters
    from .calibration import calibrate as fit_parameters
    from .outputs import write_calibration
    from .seeds import fitted, load_targets

    _check_options(replications=replications, seed=seed, workers=workers, out=out)
    _check_fit_budget(max_evaluations, rounds)
    _check_writable_file(output, "--output")  # now, not after hours of fitting
    chosen_band = _band(band)
    workers = default_workers() if workers is None else workers
    cfg = load_scenario(scenario, _overrides(set_, None), additions=add or [])
    check_run_size(cfg, None, force=force)
    chosen_blocks = None
    if blocks is not None:
        chosen_blocks = [b.strip() for b in blocks.split(",") if b.strip()]
        params = free_parameters(cfg, fitted(load_targets()))
        for name in chosen_blocks or [blocks]:
            try:
                block_of(name, params)
            except ValueError as exc:
                raise UserError(f"--blocks: {exc}") from None
    started = now()
    with Progress(TextColumn("[bold]calibrating[/] {task.description}"), TimeElapsedColumn(), console=err_console) as bar:
        task = bar.add_task("", total=None)

        show = _fit_progress(bar, task, "")

        fit = fit_parameters(
            cfg,
            replications,
            seed,
            workers=workers,
            max_evaluations=max_evaluations,
            rounds=rounds,
            on_evaluation=show,
            band=chosen_band,
            blocks=chosen_blocks,
        )
    _file_backend()
    report = write_calibration(
        fit,
        cfg,
        out,
        seed=seed,
        replications=replications,
        scenario=str(scenario),
        output=output,
        started=started,
        command=_state["command"],
    )
    _print_targets(fit.table, fit.band)
    out_console.print(
        f"Objective {fit.objective:.4f} after {fit.evaluations} evaluations. Fitted values: {output}; report: {report}"
    )


def _check_fit_budget(max_evaluations: int, rounds: int) -> None:
    """The checks of a fit's budget (calibrate, backtest)."""
    if max_evaluations < 1:
        raise UserError(f"--max-evaluations must be at least 1, not {max_evaluations}")
    if rounds < 1:
        raise UserError(f"--rounds must be at least 1, not {rounds}")


def _print_targets(targets, band: Band) -> None:
    table = Table(title="Reported against simulated")
    for col in ("target", "reported", "simulated mean", band.label, "error"):
        table.add_column(col, justify="left" if col == "target" else "right")
    for row in targets.to_dict("records"):
        table.add_row(
            row["target"],
            f"{row['reported']:,.4g}",
            f"{row['simulated_mean']:,.4g}",
            f"{row[f'simulated_{band.low_name}']:,.4g} - {row[f'simulated_{band.high_name}']:,.4g}",
            f"{row['relative_error']:+.0%}",
        )
    out_console.print(table)


BACKTEST_REPLICATIONS = 20
FIT_REPLICATIONS = 6
BACKTEST_STARTS = 4  # len(sim.calibration.PRIOR_STARTS), not imported here: it loads scipy (tested)


def _date(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text!r}: not a date; give YYYY-MM-DD, e.g. 2023-12-31") from None


@app.command()
def backtest(
    scenario: Annotated[Path, typer.Argument(help="Scenario to fit and project.")],
    until: Annotated[
        str,
        typer.Option(
            "--until", help="Cutoff date, YYYY-MM-DD: fit to the figures whose window ends by it, score those ending after it."
        ),
    ],
    replications: Annotated[
        int,
        typer.Option(
            "--replications", "-n", help="Replications of the fitted scenario that score the figures and draw the fan chart."
        ),
    ] = BACKTEST_REPLICATIONS,
    fit_replications: Annotated[
        int, typer.Option("--fit-replications", help="Replications per evaluation of the fit.")
    ] = FIT_REPLICATIONS,
    seed: SeedOption = 0,
    workers: WorkersOption = None,
    max_evaluations: Annotated[int, typer.Option("--max-evaluations", help="Evaluations per parameter block at most.")] = 30,
    rounds: Annotated[int, typer.Option("--rounds", help="Passes over the land-release blocks.")] = 2,
    starts: Annotated[
        int,
        typer.Option(
            "--starts",
            help="How many starting points to fit from, in this order: the priors; clearance ahead of survey; "
            "cancellation 0.7; both. The best fit to the figures by the cutoff is kept; each start costs one fit.",
        ),
    ] = BACKTEST_STARTS,
    out: OutOption = RESULTS,
    set_: SetOption = None,
    add: AddOption = None,
    band: BandOption = None,
    force: ForceOption = False,
):
    """Fit only to the figures reported by --until, project past it and score every later figure:
    how far to trust a projection."""
    from .backtest import backtest as run_backtest
    from .backtest import check_horizon, split_targets
    from .outputs import write_backtest
    from .seeds import load_targets

    _check_options(replications=replications, seed=seed, workers=workers, out=out)
    if not 1 <= fit_replications <= MAX_REPLICATIONS:
        raise UserError(f"--fit-replications must be from 1 to {MAX_REPLICATIONS:,}, not {fit_replications:,}")
    _check_fit_budget(max_evaluations, rounds)
    if not 1 <= starts <= BACKTEST_STARTS:
        raise UserError(f"--starts must be from 1 to {BACKTEST_STARTS}, not {starts}")
    cutoff = _date(until, "--until")
    chosen_band = _band(band)
    workers = default_workers() if workers is None else workers
    cfg = load_scenario(scenario, _overrides(set_, None), additions=add or [])
    check_run_size(cfg, None, force=force)
    targets = load_targets()
    # Checked now, not after the fit: a cutoff that leaves nothing to fit or nothing to score.
    try:
        split = split_targets(cfg, cutoff, targets)
    except UserError as exc:
        raise UserError(f"--until: {exc}") from None
    check_horizon(cfg, split)
    started = now()
    with Progress(
        TextColumn("[bold]backtest[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    ) as bar:
        fitting = bar.add_task(f"fitting to {len(split.training)} figures ending by {cutoff}", total=None)
        scoring = bar.add_task(f"projecting, scoring {len(split.held_out)} held-out figures", total=replications)

        show = _fit_progress(bar, fitting, "fit ")

        result = run_backtest(
            cfg,
            cutoff,
            fit_replications,
            replications,
            seed,
            workers=workers,
            max_evaluations=max_evaluations,
            rounds=rounds,
            band=chosen_band,
            starts=starts,
            targets=targets,
            on_evaluation=show,
            progress=lambda k: bar.advance(scoring, k),
        )
    _file_backend()
    folder = write_backtest(result, out, started=started, command=_state["command"])
    _print_held_out(result.scored, cutoff, replications, chosen_band)
    out_console.print(f"Backtest written to {folder} (backtest.csv, yearly.csv, backtest_fan.png).", soft_wrap=True)
    if len(result.start_objectives) > 1:
        for k, (objective, scores) in enumerate(zip(result.start_objectives, result.start_scores, strict=True)):
            out_console.print(
                f"Start {k + 1}{' (kept)' if k == result.kept_start else ''}: objective {objective:.1f} on the figures by the cutoff; "
                f"its projection: {_held_out_summary(scores)} in band, median absolute error {_median_errors(scores)}.",
                highlight=False,
                soft_wrap=True,
            )
    out_console.print(
        f"{_held_out_summary(result.scores)} inside the {chosen_band.label} band; "
        f"median absolute error: {_median_errors(result.scores)}.",
        highlight=False,
        soft_wrap=True,
    )


def _held_out_summary(scores: dict) -> str:
    return f"{scores['inside_band']} of {scores['held_out']} held-out figures"


def _median_errors(scores: dict) -> str:
    """sim.backtest.held_out_scores' median absolute errors, as 'hectares 23%, items 61%, ...'."""
    return ", ".join(
        f"{group} {'n/a' if error is None else f'{error:.0%}'}" for group, error in scores["median_abs_relative_error"].items()
    )


def _figure(value: float) -> str:
    """A reported or simulated figure for the terminal: whole numbers from 100, else 3 digits."""
    if value != value:  # NaN: not simulated (an agency the scenario lacks)
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def _window(start: dt.date | None, end: dt.date) -> str:
    """A figure's window, short: `2024`, `Feb 2024`, `10-16 Mar 2025`, `10 Nov 2020 - 31 Dec 2024`."""
    start = start or end
    if (start.month, start.day, end.month, end.day) == (1, 1, 12, 31) and start.year == end.year:
        return str(end.year)
    if (start.year, start.month) == (end.year, end.month):
        if start.day == 1 and (end + dt.timedelta(days=1)).day == 1:
            return f"{end:%b %Y}"
        return f"{start.day}-{end.day} {end:%b %Y}"
    return f"{start.day} {start:%b %Y} - {end.day} {end:%b %Y}"


def _print_held_out(scored, until: dt.date, replications: int, band: Band) -> None:
    held = scored[scored["held_out"]]
    table = Table(title=f"Held-out figures (window ending after {until}) against the projection, {replications} replications")
    table.add_column("figure", no_wrap=True)
    table.add_column("window")
    for col in ("reported", "predicted mean", band.label, "error", "inside band"):
        table.add_column(col, justify="right")
    for row in held.to_dict("records"):
        error = row["relative_error"]
        table.add_row(
            row["target"],
            _window(row["window_start"], row["window_end"]),
            _figure(row["reported"]),
            _figure(row["simulated_mean"]),
            f"{_figure(row[f'simulated_{band.low_name}'])}-{_figure(row[f'simulated_{band.high_name}'])}",
            "n/a" if error != error else f"{error:+.0%}",
            "yes" if row["inside_band"] else "[red]no[/]",
        )
    out_console.print(table)


def _finish_by(text: str) -> dt.date:
    """`2035` (its last day) or a date."""
    if text.isdigit() and len(text) == 4:
        return dt.date(int(text), 12, 31)
    return _date(text, "--finish-by")


def _names(text: str | None, option: str, known, default: tuple[str, ...]) -> tuple[str, ...]:
    names = default if text is None else tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UserError(f"{option}: unknown {', '.join(map(repr, unknown)) or 'empty list'}; known: {', '.join(known)}")
    return names


def _per_type(text: str | None, option: str, known, default: dict[str, int]) -> dict[str, int]:
    """`machine=5,dog_team=10` over the defaults."""
    out = dict(default)
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in known:
            raise UserError(f"{option}: {part!r} is not ASSET_TYPE=COUNT with a known asset type ({', '.join(known)})")
        try:
            count = int(value)
        except ValueError:
            raise UserError(f"{option}: {part!r}: {value.strip()!r} is not a whole number") from None
        if count < 1:
            raise UserError(f"{option}: {part!r}: the count must be at least 1")
        out[key] = count
    return out


@app.command()
def plan(
    scenario: Annotated[Path, typer.Argument(help="Scenario to add deliveries to.")],
    finish_by: Annotated[
        str | None, typer.Option("--finish-by", help="Deadline, YYYY or YYYY-MM-DD: release all hazardous land by it.")
    ] = None,
    district: Annotated[str | None, typer.Option("--district", help="Only this district must meet the deadline.")] = None,
    confidence: Annotated[
        float | None,
        typer.Option("--confidence", help="Share of replications that must meet the deadline (0.5 median, default; 0.9)."),
    ] = None,
    budget: Annotated[float | None, typer.Option("--budget", help="Money to spend on additions, USD (e.g. 200e6).")] = None,
    maximize: Annotated[str | None, typer.Option("--maximize", help="With --budget: released_ha.")] = None,
    minimize: Annotated[str | None, typer.Option("--minimize", help="With --budget: civilian_casualties.")] = None,
    by_year: Annotated[
        int | None, typer.Option("--by-year", help="With --budget: the objective counts to the end of this year (2030).")
    ] = None,
    agencies: Annotated[str | None, typer.Option("--agencies", help="Agencies that may receive assets (default anama).")] = None,
    asset_types: Annotated[
        str | None, typer.Option("--asset-types", help="Asset types to buy (default manual_team,dog_team,machine,survey_team).")
    ] = None,
    dates: Annotated[
        str | None, typer.Option("--dates", help="Delivery dates to choose from, YYYY-MM-DD,... (default 2027-01-01).")
    ] = None,
    step: Annotated[str | None, typer.Option("--step", help="Assets per candidate, e.g. machine=5,dog_team=10.")] = None,
    limit: Annotated[str | None, typer.Option("--limit", help="At most this many per agency and date, e.g. machine=30.")] = None,
    replications: Annotated[int, typer.Option("--replications", "-n", help="Replications per candidate.")] = 10,
    check_replications: Annotated[
        int, typer.Option("--check-replications", help="Replications that check the plan found (and the reference).")
    ] = 50,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Greedy steps at most.")] = 30,
    cost_level: Annotated[str, typer.Option("--cost-level", help="Costs used: low, central or high.")] = "central",
    seed: SeedOption = 0,
    workers: WorkersOption = None,
    uncertainty: Annotated[
        str,
        typer.Option(
            "--uncertainty",
            help="What the replications vary besides their own noise: none (default: the fitted scenario as it is), "
            "inputs, fitted or all (drawn per replication, the same for every candidate).",
        ),
    ] = "none",
    out: OutOption = RESULTS,
    set_: SetOption = None,
    add: AddOption = None,
    force: ForceOption = False,
):
    """Find the least-cost extra deliveries that meet a deadline (--finish-by) or do most within a
    budget (--budget with --maximize or --minimize)."""
    from .outputs import write_plan
    from .plan import DEFAULT_ASSET_TYPES, DEFAULT_LIMIT, DEFAULT_STEP, Goal, SearchSpace, check_goal, priced, search

    _check_options(replications=replications, seed=seed, workers=workers, out=out)
    _check_options(replications=check_replications)
    if check_replications < replications:
        raise UserError(f"--check-replications ({check_replications}) must be at least --replications ({replications})")
    if max_steps < 1:
        raise UserError(f"--max-steps must be at least 1, not {max_steps}")
    if (finish_by is None) == (budget is None):
        raise UserError("give a goal: --finish-by DATE, or --budget USD with --maximize or --minimize (not both)")
    cfg = load_scenario(scenario, list(set_ or []), additions=add or [])
    check_run_size(cfg, None, force=force)
    if finish_by is not None:
        _refuse("--finish-by", "is a deadline", {"--maximize": maximize, "--minimize": minimize, "--by-year": by_year})
        goal = Goal(finish_by=_finish_by(finish_by), district=district, confidence=0.5 if confidence is None else confidence)
    else:
        _refuse("--budget", "spends money, it has no deadline", {"--district": district, "--confidence": confidence})
        if (maximize is None) == (minimize is None):
            raise UserError("--budget needs one objective: --maximize released_ha or --minimize civilian_casualties")
        objective = maximize or minimize
        wanted = {"released_ha": maximize, "civilian_casualties": minimize}
        if objective not in wanted or wanted[objective] is None:
            raise UserError(
                f"{'--maximize' if maximize else '--minimize'} {objective!r}: use --maximize released_ha or --minimize civilian_casualties"
            )
        goal = Goal(budget_usd=budget, objective=objective, by_year=2030 if by_year is None else by_year)
    check_goal(cfg, goal)
    if cfg.costs is None:
        raise UserError(f"{scenario}: the scenario has no [costs]; a plan needs what additions cost")
    if cost_level not in ("low", "central", "high"):
        raise UserError(f"--cost-level must be low, central or high, not {cost_level!r}")
    chosen_dates = (
        (dt.date(2027, 1, 1),) if dates is None else tuple(_date(d.strip(), "--dates") for d in dates.split(",") if d.strip())
    )
    for d in chosen_dates:
        if not cfg.start_date <= d < goal.end:
            raise UserError(f"--dates: {d} is not between the campaign start {cfg.start_date} and the goal's end {goal.end}")
    space = SearchSpace(
        agencies=_names(agencies, "--agencies", cfg.agencies, ("anama",)),
        asset_types=_names(asset_types, "--asset-types", cfg.asset_types, DEFAULT_ASSET_TYPES),
        dates=chosen_dates,
        step=_per_type(step, "--step", cfg.asset_types, DEFAULT_STEP),
        limit=_per_type(limit, "--limit", cfg.asset_types, DEFAULT_LIMIT),
    )
    unpriced = [k for k in space.asset_types if k not in space.step or k not in space.limit]
    if unpriced:
        raise UserError(f"--asset-types: give --step and --limit for {', '.join(unpriced)} (e.g. --step {unpriced[0]}=1)")
    cost_of = priced(cfg, cost_level)
    draws = make_uncertainty(cfg, uncertainty)
    workers = default_workers() if workers is None else workers
    started = now()
    with Progress(TextColumn("[bold]plan[/] {task.description}"), TimeElapsedColumn(), console=err_console) as bar:
        task = bar.add_task(goal.describe(), total=None)

        def show(k: int, text: str) -> None:
            bar.update(task, description=f"step {k}: {text}")

        with worker_pool(workers) if workers > 1 else _no_pool() as pool:
            result = search(
                cfg,
                goal,
                space,
                cost_of,
                replications=replications,
                check_replications=check_replications,
                seed=seed,
                max_steps=max_steps,
                pool=pool,
                uncertainty=draws,
                on_step=show,
            )
    _file_backend()
    folder = write_plan(
        result, cfg, scenario, cost_of, out, seed=seed, uncertainty=uncertainty, started=started, command=_state["command"]
    )
    _print_plan(result, cost_of, folder, seed, uncertainty, (now() - started).total_seconds())


@contextmanager
def _no_pool():
    yield None


def _print_plan(result, cost_of, folder: Path, seed: int, uncertainty: str, wall_seconds: float) -> None:
    from .plan import plan_summary, plan_table

    goal = result.goal
    table = Table(title=f"Plan for: {goal.describe()}")
    for col in ("agency", "asset type", "count", "delivered", "cost to the goal's end, USD"):
        table.add_column(col, justify="right" if col in ("count",) or col.startswith("cost") else "left")
    for row in plan_table(result, cost_of).to_dict("records"):
        table.add_row(row["agency"], row["asset_type"], str(row["count"]), str(row["date"]), f"{row['cost_usd']:,.0f}")
    out_console.print(table if result.plan else "No additions needed: the scenario as it is meets the goal.")
    summary = plan_summary(result)
    n = result.check_replications
    if goal.is_deadline:
        key = f"completion_at_{goal.confidence:.0%}"
        for name in ("reference", "plan"):
            date = summary[name][key]
            when = f"all released by {date}" if date else f"not all released by {goal.end}"
            out_console.print(
                f"{name}: {when} in {goal.confidence:.0%} of {n} replications; "
                f"{summary[name]['unreleased_ha_at_goal_end_mean']:,.0f} ha unreleased at {goal.end} (mean)",
                highlight=False,
                soft_wrap=True,
            )
    else:
        for name in ("reference", "plan"):
            out_console.print(f"{name}: {summary[name]['objective_mean']:,.1f} (mean of {n} replications)", highlight=False)
    verdict = "meets the goal" if result.met else "does not meet the goal (the best found is shown)"
    out_console.print(
        f"The plan {verdict}; it costs USD {result.final.cost_usd:,.0f}. {result.simulations:,} simulations in "
        f"{wall_seconds / 60:.1f} min.",
        highlight=False,
        soft_wrap=True,
    )
    for note in result.notes:
        out_console.print(f"Note: {note}", highlight=False, soft_wrap=True)
    out_console.print(
        f"Written to {folder} (plan.csv, plan.toml, frontier.png, candidates.csv). Check it: "
        f"demining run {folder / 'plan.toml'} --replications {n} --seed {seed} --uncertainty {uncertainty}",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def compare(
    runs: Annotated[
        list[str], typer.Argument(help="Results folders, or scenario names meaning their latest run. The first is the reference.")
    ],
    out: OutOption = RESULTS,
    band: BandOption = None,
    districts: Annotated[
        str | None,
        typer.Option("--districts", help="Districts to show, comma-separated (e.g. fuzuli,aghdam); the CSV files hold all."),
    ] = None,
    milestone: Annotated[
        list[str] | None,
        typer.Option("--milestone", help="Also the date this share of the hazardous area is released, e.g. 0.95 (repeatable)."),
    ] = None,
    by_year: Annotated[
        list[str] | None,
        typer.Option(
            "--by-year", help="Also released area, items and casualties by the end of this year, e.g. 2027 (repeatable)."
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Compare runs whose horizon or area scale (or inventory) differ, which is refused otherwise."
        ),
    ] = False,
):
    """Compare finished runs: a table for the whole campaign, per district and per year, plots and a
    self-contained report.html (runs are looked up and the comparison written under --out)."""
    from .compare import compare_runs, load_run
    from .outputs import write_comparison

    if len(runs) < 2:
        raise UserError("compare needs at least two runs (the first is the reference)")
    _check_options(out=out)
    chosen_band = _band(band)
    asked = _asked(districts, milestone, by_year)
    started = now()
    comparison = compare_runs([load_run(resolve_run(spec, out)) for spec in runs], chosen_band, asked, force=force)
    for warning in comparison.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    _file_backend()
    folder = write_comparison(comparison, out, started=started, command=_state["command"])
    _print_comparison(comparison)
    if comparison.costs is not None:
        _print_cost_comparison(comparison.costs, comparison.band)
    out_console.print(f"Comparison written to {folder} (report.html opens without a network).", soft_wrap=True)


def _asked(districts: str | None, milestones: list[str] | None, years: list[str] | None):
    """compare's --districts, --milestone and --by-year, checked for form (the runs check the rest)."""
    from .compare import Asked

    def items(values):
        return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]

    shares = []
    for text in items(milestones):
        try:
            share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise UserError(f"--milestone {text!r}: give a share of the hazardous area released, e.g. 0.95 or 95%") from None
        if not 0 < share <= 1:
            raise UserError(f"--milestone {text}: give a share of the hazardous area released, above 0 and at most 1 (e.g. 0.95)")
        shares.append(share)
    chosen_years = []
    for text in items(years):
        if not text.isdigit():
            raise UserError(f"--by-year {text!r}: give a calendar year, e.g. 2027")
        chosen_years.append(int(text))
    if districts is not None and not items([districts]):
        raise UserError("--districts: give district names, comma-separated, e.g. fuzuli,aghdam")
    focus = tuple(dict.fromkeys(d.lower() for d in items([districts]))) if districts is not None else None
    return Asked(shares=tuple(dict.fromkeys(shares)), years=tuple(dict.fromkeys(chosen_years)), districts=focus)


def _outcome_table(title: str, table, outcomes, band: Band, caption: str | None = None) -> Table:
    """Rows of outcomes, a column per scenario: P50 (band) and, below, the difference from the reference."""
    from rich import box

    from .compare import outcome_rows

    t = Table(title=title, caption=caption, show_lines=True, box=box.SIMPLE_HEAD)
    t.add_column("outcome", overflow="fold", min_width=14)
    for k, name in enumerate(table["scenario"]):
        # fold, never cut: a narrow terminal wraps a date band, it does not lose its end
        t.add_column(name if k else f"{name}\n(reference)", justify="right", overflow="fold")
    for label, cells in outcome_rows(table, outcomes, band, sep=".."):
        t.add_row(label, *[level if not diff else f"{level}\n{diff}" for level, diff in cells])
    return t


def _print_comparison(comparison) -> None:
    from .compare import CENSORED_NOTE, censored, district_summary_outcomes, national_outcomes

    table, band, asked = comparison.table, comparison.band, comparison.asked
    ref = comparison.runs[0]
    pairing = (
        f"paired by replication: seed {ref.seed}, {ref.replications} replications each"
        if bool(table["paired"].all())
        else "unpaired"
    )
    how = f"P50 ({band.label}); below: difference from {ref.name}, P50 ({band.label}) of the differences"
    out_console.print(
        _outcome_table(f"Whole campaign, compared with {ref.name} ({pairing})", table, national_outcomes(asked), band, how)
    )
    for district in comparison.shown_districts:
        rows = comparison.districts[comparison.districts["district"] == district]
        out_console.print(_outcome_table(f"{district.title()}", rows, district_summary_outcomes(asked), band))
    _print_years(comparison)
    if censored(comparison):
        out_console.print(CENSORED_NOTE, highlight=False, soft_wrap=True)


def _print_years(comparison) -> None:
    from .compare import spared_text

    years, band = comparison.years, comparison.band
    scenarios = list(dict.fromkeys(years["scenario"]))
    t = Table(title="Civilian casualties per year, and civilians spared (reference minus scenario: mean and band)")
    t.add_column("year")
    t.add_column(f"{scenarios[0]}\n(mean)", justify="right")
    for s in scenarios[1:]:
        t.add_column(f"{s}: spared\nin the year", justify="right")
        t.add_column("since the start", justify="right")
    for year, sub in years.groupby("year", sort=True):
        by = sub.set_index("scenario")
        cells = [f"{by.loc[scenarios[0], 'civilian_casualties_mean']:.1f}"]
        for s in scenarios[1:]:
            r = by.loc[s]
            p, c = "civilian_casualties_avoided", "civilian_casualties_avoided_since_start"
            cells += [
                spared_text(r, p, band, ".."),
                spared_text(r, c, band, ".."),
            ]
        t.add_row(str(year), *cells)
    out_console.print(t)


def _print_cost_comparison(costs, band: Band) -> None:
    """The cost table, compact: two lines a cell (value, then the difference from the reference)."""
    from .compare import COST_METRICS, _ratio_text

    paired = bool(costs["paired"].all())
    lo, hi = band.low_name, band.high_name
    t = Table(
        title=f"Costs, USD, central unit costs ({'paired by replication' if paired else 'unpaired'}; P50 and {band.label}); "
        "comparison_costs.csv has the rest"
    )
    t.add_column("scenario")
    for _, label, _ in COST_METRICS:
        t.add_column(f"{label}\nvs ref (million USD)", justify="right")
    t.add_column("USD per ha\nreleased", justify="right")
    t.add_column("extra USD per extra\nha by end 2030", justify="right")
    t.add_column("extra USD per civilian\ncasualty avoided", justify="right")
    for k, row in enumerate(costs.to_dict("records")):
        cells = [row["scenario"]]
        for column, _, _ in COST_METRICS:
            d = f"{column}_diff"
            cells.append(
                f"{row[column + '_p50'] / 1e6:,.1f} M\n{row[d + '_p50'] / 1e6:+,.1f} ({row[f'{d}_{lo}'] / 1e6:+,.1f}..{row[f'{d}_{hi}'] / 1e6:+,.1f})"
            )
        cells.append(f"{row['usd_per_ha_released_p50']:,.0f}")
        cells += ["reference"] * 2 if k == 0 else [
            _ratio_text(row, "usd_per_ha_gained_by_2030", band).replace(" (", "\n("),
            _ratio_text(row, "usd_per_casualty_avoided", band).replace(" (", "\n("),
        ]  # fmt: skip
        t.add_row(*cells)
    out_console.print(t)


@app.command()
def sweep(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file.")],
    grid: Annotated[list[str] | None, typer.Option("--grid", help="key.path=v1,v2,... (repeatable; the product is run).")] = None,
    replications: ReplicationsOption = 10,
    seed: SeedOption = 0,
    out: OutOption = RESULTS,
    set_: SetOption = None,
    add: AddOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    band: BandOption = None,
    force: ForceOption = False,
):
    """Run the product of config values (e.g. machines x map accuracy) and draw heatmaps."""
    from .outputs import write_sweep
    from .sweep import parse_grid, point_configs, run_sweep

    _check_options(replications=replications, seed=seed, workers=workers, out=out)
    chosen_band = _band(band)
    parsed = parse_grid(grid or [])
    points = point_configs(scenario, parsed, list(set_ or []), list(add or []))
    for point, cfg in points:
        try:
            check_run_size(cfg, None, force=force)
        except UserError as exc:
            raise UserError(f"grid point {point}: {exc}") from None
    workers = default_workers() if workers is None else workers
    name = points[0][1].name
    started = now()
    with (
        _executor(scheduler, workers, replications) as (pool, executor_name),
        Progress(
            TextColumn(f"[bold]{name} sweep[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
        ) as bar,
    ):
        task = bar.add_task("", total=replications * len(points))
        result = run_sweep(points, replications, seed, pool=pool, progress=lambda k: bar.advance(task, k), band=chosen_band)
    _file_backend()
    folder = write_sweep(result, out, started=started, command=_state["command"], executor=executor_name)
    t = Table(title=f"{name}: {len(points)} grid points x {replications} replications, seed {seed}")
    for key in parsed:
        t.add_column(key)
    t.add_column("all released P50")
    t.add_column("civilian casualties (mean)", justify="right")
    for row in result.table.to_dict("records"):
        t.add_row(*[str(row[k]) for k in parsed], row["all_released_p50"], f"{row['civilian_casualties_at_horizon_mean']:,.1f}")
    out_console.print(t)
    out_console.print(f"Sweep written to {folder}")


SENSITIVITY_ROWS = 15  # inputs shown in the terminal's tornado table (all are in tornado.csv)
SHORT_OUTPUTS = {
    "completion_all": "all released, years",
    "completion_90": "90 % released, years",
    "released_2030": "released by 2030, ha",
    "casualties_2030": "civilian casualties by 2030",
}


@app.command()
def sensitivity(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file.")],
    budget: Annotated[
        int | None,
        typer.Option(
            "--budget",
            help="Simulated replications in all, tornado and Sobol (default: about 15 minutes of the baseline on 2 cores).",
        ),
    ] = None,
    top: Annotated[
        int | None, typer.Option("--top", help="Inputs of the tornado's ranking that Sobol analyses (default 6).")
    ] = None,
    output: Annotated[
        list[str] | None,
        typer.Option(
            "--output",
            help="An output to analyse (repeatable): completion_all, completion_90, released_2030, casualties_2030 (default all).",
        ),
    ] = None,
    replications: Annotated[
        int | None,
        typer.Option("--replications", "-n", help="Replications per design point, the same at every point (default 2)."),
    ] = None,
    seed: SeedOption = 0,
    uncertainty: Annotated[
        str, typer.Option("--uncertainty", help="Which ranged inputs to vary: inputs, fitted or all.")
    ] = "all",
    years: YearsOption = None,
    out: OutOption = RESULTS,
    set_: SetOption = None,
    add: AddOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    force: ForceOption = False,
):
    """Which uncertain inputs matter: a tornado over every ranged input, then Sobol indices over the top ones."""
    from .outputs import write_sensitivity
    from .sensitivity import DEFAULT_BUDGET, DEFAULT_REPLICATIONS, OUTPUTS, check_outputs, plan
    from .sensitivity import sensitivity as analyse
    from .uncertainty import uncertain_inputs

    _check_options(replications=replications, seed=seed, workers=workers, out=out)
    outputs = check_outputs(output)
    budget = DEFAULT_BUDGET if budget is None else budget
    replications = DEFAULT_REPLICATIONS if replications is None else replications
    if uncertainty == "none":
        raise UserError("--uncertainty none: nothing to vary; give inputs, fitted or all")
    cfg = load_scenario(scenario, _overrides(set_, years), additions=add or [])
    check_run_size(cfg, None, force=force)
    inputs = uncertain_inputs(cfg, uncertainty)
    if not inputs:
        raise UserError(f"--uncertainty {uncertainty}: this scenario has no ranged input to vary")
    plan(len(inputs), replications, budget, top)  # a budget too small is an error now, not after the tornado
    workers = default_workers() if workers is None else workers
    started = now()
    with (
        _executor(scheduler, workers, budget) as (pool, executor_name),
        Progress(
            TextColumn(f"[bold]{cfg.name} sensitivity[/] {{task.description}}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
        ) as bar,
    ):
        task = bar.add_task("", total=None)

        def phase(name: str, runs: int) -> None:
            bar.reset(task, total=runs, description=name)

        result = analyse(
            cfg, mode=uncertainty, inputs=inputs, outputs=outputs, replications=replications, seed=seed, budget=budget,
            top=top, pool=pool, progress=lambda k: bar.advance(task, k), on_phase=phase,
        )  # fmt: skip
    _file_backend()
    folder = write_sensitivity(result, out, started=started, command=_state["command"], executor=executor_name)
    _print_sensitivity(result, OUTPUTS)
    out_console.print(
        f"{result.runs} simulations ({len(result.inputs)} inputs x 2 ends + base, then Sobol N = {result.sobol_n}), "
        f"{replications} replications per point, seed {seed}. Written to {folder}",
        soft_wrap=True,
    )


def _print_sensitivity(result, outputs_meta) -> None:
    def fmt(out: str, value: float) -> str:
        return f"{value:,.2f}" if out in ("completion_all", "completion_90") else f"{value:,.0f}"

    t = Table(title=f"{result.scenario}: each input alone at the low / high end of its range (base in the header)")
    t.add_column("#", justify="right")
    t.add_column("input")
    t.add_column("range")
    for out in result.outputs:
        t.add_column(f"{SHORT_OUTPUTS[out]}\nbase {fmt(out, result.base[out])}", justify="right")
    table = result.tornado
    for name in result.ranking[:SENSITIVITY_ROWS]:
        rows = table[table["input"] == name].set_index("output")
        first = rows.iloc[0]
        cells = [str(int(first["rank"])), f"{name} ({first['kind']})", f"{first['low']:.4g} to {first['high']:.4g}"]
        cells += [f"{fmt(o, rows.loc[o, 'at_low'])} / {fmt(o, rows.loc[o, 'at_high'])}" for o in result.outputs]
        t.add_row(*cells)
    out_console.print(t)
    s = Table(title="Sobol indices: first order S1 and total ST, with 95 % confidence intervals")
    s.add_column("input")
    for out in result.outputs:
        s.add_column(SHORT_OUTPUTS[out], justify="right")
    for name in dict.fromkeys(result.sobol["input"]):
        rows = result.sobol[result.sobol["input"] == name].set_index("output")
        s.add_row(
            name,
            *[
                f"S1 {rows.loc[o, 'S1']:.2f} ± {rows.loc[o, 'S1_conf']:.2f}\nST {rows.loc[o, 'ST']:.2f} ± {rows.loc[o, 'ST_conf']:.2f}"
                for o in result.outputs
            ],
        )
    out_console.print(s)


@config_app.command("show")
def config_show(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file.")],
    set_: SetOption = None,
    add: AddOption = None,
    years: Annotated[float | None, typer.Option("--years")] = None,
):
    """Print the resolved configuration (files, environment and --set merged) as TOML."""
    cfg = load_scenario(scenario, _overrides(set_, years), additions=add or [])
    sys.stdout.write(config_toml(cfg))


@config_app.command("schema")
def config_schema():
    """Print the JSON Schema of a scenario file, for editors."""
    sys.stdout.write(json.dumps(ScenarioConfig.model_json_schema(), indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors and usage errors are one line on stderr with exit code 2; Ctrl-C
    exits 130. `argv` (default: the process's arguments) lets tests run the command in-process;
    it always ends in SystemExit, as a process would."""
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    _state["command"] = shlex.join(["demining", *args])  # recorded in every metadata.json
    try:
        # Not standalone: click would print a usage error as a several-line block; we print one line.
        code = app(args=args, prog_name="demining", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        err_console.print(exc.format_message(), highlight=False, markup=False)
        sys.exit(2)
    except ClickUsageError as exc:
        err_console.print(f"error: {usage_error_line(exc)}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:  # EOF on a prompt; Ctrl-C becomes exit code 130 inside click
        sys.exit(1)
    except UserError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def usage_error_line(exc: ClickUsageError) -> str:
    """A usage error as `--option: 'value': what is wrong (see demining CMD --help)`, on one line."""
    command = exc.ctx.command_path if exc.ctx is not None else "demining"
    opts = [o for o in getattr(getattr(exc, "param", None), "opts", []) if o.startswith("-")]
    if isinstance(exc, typer.BadParameter) and opts and exc.message:
        cause = exc.__cause__
        # typer checks values with pydantic: its error holds the value given
        given = cause.errors()[0].get("input") if hasattr(cause, "errors") else None
        shown = f"{given!r}: " if isinstance(given, str) else ""
        text = f"{max(opts, key=len)}: {shown}{exc.message[:1].lower()}{exc.message[1:]}"
    else:
        text = exc.format_message()
    text = " ".join(text.split()).rstrip(".")
    return f"{text} (see {command} --help)"


if __name__ == "__main__":
    main()
