"""The `demining` command: parses, calls the API, renders. No model logic here."""

from __future__ import annotations

import json
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

from . import __version__
from .bands import BAND, Band, parse_band
from .config import ScenarioConfig
from .ensemble import default_workers, load_inventory, worker_pool
from .ensemble import run as run_ensemble
from .errors import UserError
from .provenance import now
from .results import RunFolder, check_run, config_hash, config_toml, metadata, new_run_id, recorded_inventory, resolve_run
from .scenario import load_scenario

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Simulate the demining campaign in Karabakh and East Zangazur."
)
config_app = typer.Typer(no_args_is_help=True, help="Inspect scenario configuration.")
app.add_typer(config_app, name="config")

out_console = Console()
err_console = Console(stderr=True)
_state: dict = {"debug": False, "command": None}

SetOption = Annotated[list[str] | None, typer.Option("--set", help="Override a key: key.path=value (repeatable).")]
BandOption = Annotated[
    str | None,
    typer.Option(
        "--band", help=f"Uncertainty band of tables and plots, LOW-HIGH percentages (default {BAND.label.removesuffix(' %')})."
    ),
]


def _band(text: str | None) -> Band:
    return BAND if text is None else parse_band(text)


def _overrides(set_: list[str] | None, years: float | None) -> list[str]:
    items = list(set_ or [])
    if years is not None:
        items.append(f"horizon_years={years}")
    return items


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
):
    _state["debug"] = debug
    if version:
        out_console.print(__version__)
        raise typer.Exit(0)


@app.command()
def run(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario TOML file (omit with --resume).")] = None,
    replications: Annotated[int, typer.Option("--replications", "-n", help="Number of replications.")] = 20,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of the run's SeedSequence.")] = 0,
    out: Annotated[Path, typer.Option("--out", "-o", help="Results root folder.")] = Path("results"),
    years: Annotated[float | None, typer.Option("--years", help="Horizon in years (overrides horizon_years).")] = None,
    set_: SetOption = None,
    inventory: Annotated[
        Path | None,
        typer.Option("--inventory", help="Parcel inventory CSV (id, district, area_ha, land_use, terrain, threat, mapped)."),
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-w", help="Worker processes (default: all cores).")] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            envvar="DEMINING_SCHEDULER",
            help="Dask scheduler address (tcp://host:port) to run replications on a cluster.",
        ),
    ] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Finish an interrupted run (its .partial-* folder).")] = None,
    check: Annotated[
        Path | None, typer.Option("--check", help="Re-run replication 0 of a finished run and confirm it matches.")
    ] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw the standard plots.")] = True,
    band: BandOption = None,
):
    """Run a scenario's replications and write a results folder."""
    if check is not None:
        problems = check_run(check)
        if problems:
            for problem in problems:
                err_console.print(f"[red]differs:[/] {problem}", highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        out_console.print(f"{check}: replication 0 re-run matches the stored tables; config hash matches.")
        return
    if resume is not None:
        if scenario is not None or set_ or years is not None or inventory is not None or band is not None:
            raise UserError(
                "--resume takes its scenario, seed and settings from the run folder; give no scenario, --set, --years, --inventory or --band"
            )
        folder = RunFolder.open_partial(resume)
        plan = folder.plan
        chosen_band = folder.band
        cfg = load_scenario(folder.path / "config.toml", environ={})
        if config_hash(cfg) != plan["config_sha256"]:
            raise UserError(
                "changed since the run started (its SHA-256 differs from plan.json's); restore it, or start a new run with it",
                source=str(folder.path / "config.toml"),
            )
        seed, replications = plan["seed"], plan["replications"]
        inventory = recorded_inventory(plan["inventory"], plan["inventory_sha256"], folder.path / "plan.json")
    else:
        if scenario is None:
            raise UserError("give a scenario file, or --resume RUN_DIR")
        if replications < 1:
            raise UserError(f"--replications must be at least 1, not {replications}")
        if seed < 0:
            raise UserError(f"--seed must be a non-negative integer, not {seed}")
        chosen_band = _band(band)
        cfg = load_scenario(scenario, _overrides(set_, years))
        folder = None
    parcels = load_inventory(inventory, cfg) if inventory else None
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise UserError(f"--workers must be at least 1, not {workers}")
    if folder is None:
        folder = RunFolder.create(
            out,
            cfg,
            seed=seed,
            replications=replications,
            run_id=new_run_id(),
            version=__version__,
            inventory=inventory,
            band=chosen_band,
        )  # locked until this command ends
    else:
        folder.lock()  # one process at a time writes a run: a second --resume stops here
    # From here on the folder holds the user's work: whatever stops the run keeps every finished
    # replication and says how to resume (see _stopped); only a folder with none may be removed.
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
                    )
            meta = metadata(
                result, folder.plan, finished=now(), workers=workers, executor=executor_name, command=_state["command"]
            )
            draw = None
            if plots:
                _file_backend()
                from .plots import save_run_plots as draw
            final = folder.finalize(result, meta, draw)
        except BaseException as exc:
            _stopped(folder, exc, replications, resuming=resume is not None)
            raise
        finally:
            folder.unlock()
    _print_summary(result, final, meta)


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


def _month(date: str) -> str:
    return date[:7] if date[:1].isdigit() else "> horizon"


def _print_summary(result, folder: Path, meta: dict) -> None:
    s = result.summary
    lo, hi = result.band.low_name, result.band.high_name
    table = Table(title=f"{result.config.name}: {result.replications} replications, seed {result.seed}")
    table.add_column("district")
    table.add_column(f"all released: P50 ({lo.upper()}-{hi.upper()})")
    table.add_column("released ha", justify="right")
    table.add_column("civilian casualties", justify="right")

    def when(c: dict) -> str:
        return f"{_month(c['p50'])} ({_month(c[lo])} - {_month(c[hi])})"

    for key, d in s["districts"].items():
        table.add_row(key, when(d["completion"]), f"{d['released_ha']['mean']:,.0f}", f"{d['civilian_casualties']['mean']:,.1f}")
    tot = s["totals_at_horizon"]
    table.add_row(
        "[bold]all[/]",
        when(s["all_released"]),
        f"{tot['released_ha']['mean']:,.0f}",
        f"{tot['civilian_killed']['mean'] + tot['civilian_injured']['mean']:,.1f}",
    )
    table.caption = "means over replications; dates are when every parcel is handed over"
    out_console.print(table)
    items = tot["items_ap"]["mean"] + tot["items_at"]["mean"] + tot["items_uxo"]["mean"]
    out_console.print(
        f"By {s['horizon_end']}: {tot['released_ha']['mean']:,.0f} of {s['initial_hazardous_area_ha']:,.0f} ha released "
        f"({tot['cancelled_ha']['mean']:,.0f} cancelled, {tot['reduced_ha']['mean']:,.0f} reduced, {tot['cleared_ha']['mean']:,.0f} cleared); "
        f"{items:,.0f} items found, {tot['residual_items']['mean']:,.0f} left behind on released land."
    )
    out_console.print(f"Wall time {meta['wall_seconds']:.1f} s. Results: {folder}")


@app.command()
def calibrate(
    scenario: Annotated[Path, typer.Argument(help="Scenario to fit.")] = Path("scenarios/baseline.toml"),
    replications: Annotated[int, typer.Option("--replications", "-n", help="Replications per evaluation.")] = 6,
    seed: Annotated[int, typer.Option("--seed", "-s")] = 0,
    workers: Annotated[int | None, typer.Option("--workers", "-w", help="Worker processes (default: all cores).")] = None,
    max_evaluations: Annotated[int, typer.Option("--max-evaluations", help="Evaluations per parameter block at most.")] = 30,
    rounds: Annotated[int, typer.Option("--rounds", help="Passes over the land-release blocks.")] = 2,
    output: Annotated[Path, typer.Option("--output", help="Where to write the fitted values (extended by the baseline).")] = Path(
        "scenarios/calibrated.toml"
    ),
    out: Annotated[Path, typer.Option("--out", "-o", help="Results root for the fit's report.")] = Path("results"),
    set_: SetOption = None,
    band: BandOption = None,
):
    """Fit productivity, battle-area share and incident parameters to the reported figures."""
    from .calibration import calibrate as fit_parameters
    from .outputs import write_calibration

    if replications < 1:
        raise UserError(f"--replications must be at least 1, not {replications}")
    if max_evaluations < 1:
        raise UserError(f"--max-evaluations must be at least 1, not {max_evaluations}")
    if rounds < 1:
        raise UserError(f"--rounds must be at least 1, not {rounds}")
    chosen_band = _band(band)
    workers = default_workers() if workers is None else workers
    cfg = load_scenario(scenario, _overrides(set_, None))
    started = now()
    with Progress(TextColumn("[bold]calibrating[/] {task.description}"), TimeElapsedColumn(), console=err_console) as bar:
        task = bar.add_task("", total=None)

        def show(stage: str, n: int, objective: float) -> None:
            bar.update(task, description=f"{stage}: evaluation {n}, objective {objective:.4f}")

        fit = fit_parameters(
            cfg,
            replications,
            seed,
            workers=workers,
            max_evaluations=max_evaluations,
            rounds=rounds,
            on_evaluation=show,
            band=chosen_band,
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


@app.command()
def compare(
    runs: Annotated[
        list[str], typer.Argument(help="Results folders, or scenario names meaning their latest run. The first is the reference.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Results root (where runs are looked up and the comparison is written).")
    ] = Path("results"),
    band: BandOption = None,
):
    """Compare finished runs: a table, plots and a self-contained report.html."""
    from .compare import METRICS, compare_runs, load_run
    from .outputs import write_comparison

    if len(runs) < 2:
        raise UserError("compare needs at least two runs (the first is the reference)")
    chosen_band = _band(band)
    started = now()
    comparison = compare_runs([load_run(resolve_run(spec, out)) for spec in runs], chosen_band)
    _file_backend()
    folder = write_comparison(comparison, out, started=started, command=_state["command"])
    _print_comparison(comparison.table, METRICS, chosen_band)
    out_console.print(f"Comparison written to {folder} (report.html opens without a network).")


def _print_comparison(table, metrics, band: Band) -> None:
    paired = bool(table["paired"].all())
    lo, hi = band.low_name, band.high_name
    t = Table(
        title=f"Compared with {table.iloc[0]['scenario']} ({'paired by replication' if paired else 'unpaired'}; P50 and {band.label})"
    )
    t.add_column("scenario")
    t.add_column("all released")
    t.add_column("vs ref (days)", justify="right")
    for _, label, _ in metrics:
        t.add_column(label, justify="right")
    for row in table.to_dict("records"):
        cells = [
            row["scenario"],
            f"{row['all_released_p50']}",
            f"{row['all_released_diff_days_p50']:+,.0f} ({row[f'all_released_diff_days_{lo}']:+,.0f}..{row[f'all_released_diff_days_{hi}']:+,.0f})",
        ]
        for column, _, _ in metrics:
            cells.append(
                f"{row[column + '_p50']:,.0f}\n{row[column + '_diff_p50']:+,.0f} ({row[f'{column}_diff_{lo}']:+,.0f}..{row[f'{column}_diff_{hi}']:+,.0f})"
            )
        t.add_row(*cells)
    out_console.print(t)


@app.command()
def sweep(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file.")],
    grid: Annotated[list[str] | None, typer.Option("--grid", help="key.path=v1,v2,... (repeatable; the product is run).")] = None,
    replications: Annotated[int, typer.Option("--replications", "-n", help="Replications per grid point.")] = 10,
    seed: Annotated[int, typer.Option("--seed", "-s")] = 0,
    out: Annotated[Path, typer.Option("--out", "-o", help="Results root folder.")] = Path("results"),
    set_: SetOption = None,
    workers: Annotated[int | None, typer.Option("--workers", "-w", help="Worker processes (default: all cores).")] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", envvar="DEMINING_SCHEDULER", help="Dask scheduler address.")
    ] = None,
    band: BandOption = None,
):
    """Run the product of config values (e.g. machines x map accuracy) and draw heatmaps."""
    from .outputs import write_sweep
    from .sweep import parse_grid, point_configs, run_sweep

    if replications < 1:
        raise UserError(f"--replications must be at least 1, not {replications}")
    chosen_band = _band(band)
    parsed = parse_grid(grid or [])
    points = point_configs(scenario, parsed, list(set_ or []))
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


@config_app.command("show")
def config_show(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file.")],
    set_: SetOption = None,
    years: Annotated[float | None, typer.Option("--years")] = None,
):
    """Print the resolved configuration (files, environment and --set merged) as TOML."""
    cfg = load_scenario(scenario, _overrides(set_, years))
    sys.stdout.write(config_toml(cfg))


@config_app.command("schema")
def config_schema():
    """Print the JSON Schema of a scenario file, for editors."""
    sys.stdout.write(json.dumps(ScenarioConfig.model_json_schema(), indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors are one line on stderr with exit code 2 (usage errors too, from
    typer); Ctrl-C exits 130. `argv` (default: the process's arguments) lets tests run the command
    in-process; it always ends in SystemExit, as a process would."""
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    _state["command"] = shlex.join(["demining", *args])  # recorded in every metadata.json
    try:
        app(args=args, prog_name="demining")
    except UserError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
