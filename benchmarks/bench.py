"""Performance benchmarks: `make bench` (not part of `make test`).

Prints one JSON object and a readable table, the figures of issue #16 first:
- one full baseline replication (best of --repeat): wall and CPU seconds, SimPy events, events per
  CPU second, peak memory (CPU time, since a shared machine inflates wall time);
- the SimPy floor: a bare SimPy loop processing the same number of events (timeouts and resource
  requests, no model logic) in the same process, and the ratio of the two event rates (CPU);
- ensemble: N baseline replications with 1 and with 2 workers, replications per second, speed-up,
  and the wall time of 100 (measured when N is 100, else scaled from N and marked an estimate);
- calibration: `demining calibrate` at its committed settings (the CLI's defaults: replications,
  evaluations per block, rounds) on 2 workers. Measured only with --full; otherwise a short fit
  (fewer evaluations per block, one round) gives the wall time per evaluation, and the estimate
  is that x the committed evaluation budget (every block using all its evaluations: an upper
  bound, since Nelder-Mead may stop a block early);
- compare: `demining run` of baseline, more_machines and better_maps (CLI defaults, 2 workers)
  then `demining compare` of the three, at 100 replications with --full; otherwise at N and 2N
  replications, extrapolated linearly to 100 (an estimate: runs have a large fixed part, plots);
- scaling: one replication at 0.25x, 0.5x, 1x and 2x the parcels, and the fitted exponent of
  wall time against parcel count;
- memory: peak resident memory of a 100- and a 1,000-replication `demining run` (results streamed
  to disk), each in its own process.

Every timing is measured here, on this machine; targets are printed beside the figures and never
asserted. Options: --quick (everything scaled down: a smoke test of a few minutes, not the
targets), --full (calibration and comparison at full size, not estimated), --only NAME[,NAME].
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import simpy

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "baseline.toml"
TARGETS = {
    # Issue #16's table.
    "replication_seconds_max": 1.0,
    "floor_ratio_min": 0.5,
    "seconds_100_replications_max": 60.0,
    "calibration_minutes_max": 20.0,
    "compare_minutes_max": 3.0,
    # Earlier targets, still watched.
    "scaling_exponent_max": 1.1,
    "speedup_2_workers_min": 1.7,
    "memory_ratio_1000_over_100_max": 1.5,
}
COMPARED = ("baseline", "more_machines", "better_maps")
WORKERS = 2


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def one_replication(overrides: list[str] | None = None, seed: int = 1, repeat: int = 1) -> dict:
    """Replication 0 of `seed`, `repeat` times: the best wall and CPU times (the same events each time)."""
    import sim
    from sim.ensemble import compile_scenario, replication_seeds, simulate

    cfg = sim.load_scenario(BASELINE, overrides or [], environ={})
    compiled = compile_scenario(cfg)
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        res = simulate(compiled, cfg, replication_seeds(seed, 1)[0])
        cpus.append(time.process_time() - cpu_start)
        walls.append(time.perf_counter() - start)
    return {
        "repeat": repeat,
        "wall_seconds": min(walls),
        "cpu_seconds": min(cpus),
        "simpy_events": res.events_processed,
        "task_steps": int(len(res.log)),
        "events_per_second": res.events_processed / min(walls),
        "events_per_cpu_second": res.events_processed / min(cpus),
        "parcels": int(len(res.handover_day)),
        "peak_rss_mb": _peak_rss_mb(),
    }


def simpy_floor(events: int, processes: int = 300) -> dict:
    """A bare SimPy loop of about `events` events: processes that take a resource, hold it for a
    random time and release it. The fastest this many events can go through SimPy here."""
    env = simpy.Environment()
    crews = simpy.Resource(env, capacity=processes // 2)
    rng = np.random.default_rng(0)
    delays = rng.exponential(20.0, size=events).tolist()
    counter = {"n": 0}
    per_process = max(1, events // (3 * processes))

    def worker():
        for _ in range(per_process):
            with crews.request() as req:
                yield req
                counter["n"] += 1
                yield env.timeout(delays[counter["n"] % len(delays)])

    for _ in range(processes):
        env.process(worker())
    processed = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    while True:
        try:
            env.step()
        except simpy.core.EmptySchedule:
            break
        processed += 1
    cpu = time.process_time() - cpu_start
    wall = time.perf_counter() - start
    return {
        "events": processed,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "events_per_second": processed / wall,
        "events_per_cpu_second": processed / cpu,
    }


def scaling() -> dict:
    rows = []
    for scale in (0.25, 0.5, 1.0, 2.0):
        r = one_replication([f"parcels.area_scale={scale}"])
        rows.append(
            {"scale": scale, "parcels": r["parcels"], "wall_seconds": r["wall_seconds"], "simpy_events": r["simpy_events"]}
        )
    x = np.log([r["parcels"] for r in rows])
    y = np.log([r["wall_seconds"] for r in rows])
    exponent = float(np.polyfit(x, y, 1)[0])
    return {"runs": rows, "exponent": exponent}


def ensemble(replications: int) -> dict:
    import sim

    cfg = sim.load_scenario(BASELINE, environ={})
    out = {}
    for workers in (1, 2):
        start = time.perf_counter()
        sim.run(cfg, replications, seed=3, workers=workers)
        wall = time.perf_counter() - start
        out[f"workers_{workers}"] = {"wall_seconds": wall, "replications_per_second": replications / wall}
    out["replications"] = replications
    out["speedup"] = out["workers_1"]["wall_seconds"] / out["workers_2"]["wall_seconds"]
    out["seconds_100_replications_2_workers"] = out["workers_2"]["wall_seconds"] * 100 / replications
    out["seconds_100_replications_estimated"] = replications != 100
    return out


def calibration_settings() -> dict:
    """`demining calibrate`'s committed settings: the defaults of its command-line options."""
    from sim import cli

    params = inspect.signature(cli.calibrate).parameters
    return {name: params[name].default for name in ("replications", "seed", "max_evaluations", "rounds")}


def evaluation_budget(cfg, max_evaluations: int, rounds: int) -> int:
    """The most evaluations a fit may make: every block of its schedule (as `sim.calibration.calibrate`
    builds it) using all `max_evaluations`, plus the final run with the fitted values."""
    from sim.calibration import INCIDENTS, block_targets, free_parameters
    from sim.seeds import fitted, load_targets

    targets = fitted(load_targets())
    params = free_parameters(cfg, targets)
    blocks = list(dict.fromkeys(p.stage for p in params if p.stage != INCIDENTS))
    schedule = [b for _ in range(rounds) for b in blocks] + [INCIDENTS]
    fitted_blocks = [b for b in schedule if block_targets(b, targets) and any(p.stage == b for p in params)]
    return len(fitted_blocks) * max_evaluations + 1


def calibration(full: bool, probe_evaluations: int) -> dict:
    """Wall time of a fit at the committed settings on 2 workers: measured (`full`), or estimated
    from a short fit of `probe_evaluations` per block and one round."""
    import sim
    from sim.calibration import calibrate

    cfg = sim.load_scenario(BASELINE, environ={})
    settings = calibration_settings()
    budget = evaluation_budget(cfg, settings["max_evaluations"], settings["rounds"])
    out = {"settings": settings | {"workers": WORKERS}, "evaluation_budget": budget, "estimated": not full}
    if full:
        max_evaluations, rounds = settings["max_evaluations"], settings["rounds"]
    else:
        max_evaluations, rounds = probe_evaluations, 1
    start = time.perf_counter()
    fit = calibrate(
        cfg, settings["replications"], settings["seed"], workers=WORKERS, max_evaluations=max_evaluations, rounds=rounds
    )
    wall = time.perf_counter() - start
    evaluations = fit.evaluations + 1  # and the final run with the fitted values
    out |= {
        "measured": {"max_evaluations": max_evaluations, "rounds": rounds, "evaluations": evaluations, "wall_seconds": wall},
        "seconds_per_evaluation": wall / evaluations,
    }
    out["minutes"] = wall / 60 if full else wall / evaluations * budget / 60
    return out


def compare(replications: int) -> dict:
    """`demining run` of the COMPARED scenarios (CLI defaults but the seed, 2 workers), then
    `demining compare` of them. At 100 replications it is measured; below, it is run at
    `replications` and twice that, and the wall time extrapolated linearly to 100 (a run has a
    large fixed part, plots and report, that a proportional scaling would multiply too)."""
    out = {"scenarios": list(COMPARED), "workers": WORKERS, "estimated": replications != 100}
    sizes = (100,) if replications == 100 else (replications, 2 * replications)
    walls = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            runs = {}
            for name in COMPARED:
                start = time.perf_counter()
                _cli(
                    "run", str(ROOT / "scenarios" / f"{name}.toml"), "-n", str(n), "--seed", "1", "--out", tmp, "-w", str(WORKERS)
                )
                runs[name] = time.perf_counter() - start
            start = time.perf_counter()
            _cli("compare", *COMPARED, "--out", tmp)
            compared = time.perf_counter() - start
        out[f"replications_{n}"] = {"run_seconds": runs, "compare_seconds": compared}
        walls.append(sum(runs.values()) + compared)
    if len(sizes) == 1:
        out["minutes"] = walls[0] / 60
    else:
        per_replication = max(0.0, (walls[1] - walls[0]) / (sizes[1] - sizes[0]))
        out["seconds_per_replication_of_each"] = per_replication
        out["minutes"] = (walls[0] + per_replication * (100 - sizes[0])) / 60
    return out


def _cli(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True, cwd=ROOT, env=_clean_env())
    if proc.returncode != 0:
        raise RuntimeError(f"demining {' '.join(args)} failed:\n{proc.stderr}")


def memory(replications: tuple[int, ...], area_scale: float) -> dict:
    """Peak RSS of whole `demining run` processes (and their workers), results streamed to disk."""
    out = {"area_scale": area_scale}
    for n in replications:
        with tempfile.TemporaryDirectory() as tmp:
            code = (
                "import resource, subprocess, sys;"
                f"p = subprocess.run([sys.executable, '-m', 'sim', 'run', {str(BASELINE)!r}, '-n', '{n}', '--seed', '1', "
                f"'--out', {tmp!r}, '--no-plots', '-w', '2', '--set', 'parcels.area_scale={area_scale}'], capture_output=True, text=True);"
                "assert p.returncode == 0, p.stderr;"
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
            )
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=_clean_env())
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr)
            out[f"replications_{n}"] = {
                "peak_rss_mb": int(proc.stdout.strip().splitlines()[-1]) / 1024.0,
                "wall_seconds": time.perf_counter() - start,
            }
    keys = [f"replications_{n}" for n in replications]
    out["ratio"] = out[keys[-1]]["peak_rss_mb"] / out[keys[0]]["peak_rss_mb"]
    return out


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("DEMINING_")}


def machine() -> dict:
    import sim

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "package_version": sim.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="everything scaled down (smoke test, not the targets)")
    parser.add_argument("--full", action="store_true", help="calibration and comparison at full size, not estimated")
    parser.add_argument(
        "--repeat", type=int, help="replications timed for the single-replication figure (best of; default 3, 1 with --quick)"
    )
    parser.add_argument("--only", default="", help="comma-separated: " + ",".join(PARTS))
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    if args.quick and args.full:
        parser.error("--quick and --full contradict each other")
    only = set(filter(None, args.only.split(",")))
    if only - set(PARTS):
        parser.error(f"unknown part(s) {', '.join(sorted(only - set(PARTS)))}; choose from {', '.join(PARTS)}")
    repeat = args.repeat or (1 if args.quick else 3)

    def wanted(name: str) -> bool:
        return not only or name in only

    mode = "quick" if args.quick else "full" if args.full else "default"
    result: dict = {"machine": machine(), "mode": mode, "targets": TARGETS}
    if wanted("replication") or wanted("floor"):
        result["replication"] = one_replication(repeat=repeat)
    if wanted("floor"):
        floor = simpy_floor(result["replication"]["simpy_events"])
        result["floor"] = floor | {
            "ratio": result["replication"]["events_per_cpu_second"] / floor["events_per_cpu_second"],
            "ratio_wall": result["replication"]["events_per_second"] / floor["events_per_second"],
        }
    if wanted("ensemble"):
        result["ensemble"] = ensemble(10 if args.quick else 100)
    if wanted("calibration"):
        result["calibration"] = calibration(args.full, probe_evaluations=1 if args.quick else 3)
    if wanted("compare"):
        result["compare"] = compare(2 if args.quick else 100 if args.full else 10)
    if wanted("scaling"):
        result["scaling"] = scaling()
    if wanted("memory"):
        result["memory"] = memory((10, 100) if args.quick else (100, 1000), area_scale=0.1)
    result["verdicts"] = verdicts(result)
    text = json.dumps(result, indent=2)
    print(text)
    print(table(result), file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")


PARTS = ("replication", "floor", "ensemble", "calibration", "compare", "scaling", "memory")


def verdicts(r: dict) -> dict:
    v = {}
    if "replication" in r:
        v["replication_seconds"] = r["replication"]["cpu_seconds"] <= TARGETS["replication_seconds_max"]
    if "floor" in r:
        v["floor_ratio"] = r["floor"]["ratio"] >= TARGETS["floor_ratio_min"]
    if "ensemble" in r:
        v["speedup_2_workers"] = r["ensemble"]["speedup"] >= TARGETS["speedup_2_workers_min"]
        v["seconds_100_replications"] = (
            r["ensemble"]["seconds_100_replications_2_workers"] <= TARGETS["seconds_100_replications_max"]
        )
    if "calibration" in r:
        v["calibration_minutes"] = r["calibration"]["minutes"] <= TARGETS["calibration_minutes_max"]
    if "compare" in r:
        v["compare_minutes"] = r["compare"]["minutes"] <= TARGETS["compare_minutes_max"]
    if "scaling" in r:
        v["scaling_exponent"] = r["scaling"]["exponent"] <= TARGETS["scaling_exponent_max"]
    if "memory" in r:
        v["memory_ratio"] = r["memory"]["ratio"] <= TARGETS["memory_ratio_1000_over_100_max"]
    return v


def table(r: dict) -> str:
    lines = ["", f"{'figure':72s} {'value':>16s}  target"]

    def row(name, value, target="", ok=None):
        mark = "" if ok is None else ("  ok" if ok else "  MISSED")
        lines.append(f"{name:72s} {value:>16s}  {target}{mark}")

    v = r["verdicts"]
    estimate = "  (estimate)"
    if "replication" in r:
        rep = r["replication"]
        row(
            f"one baseline replication, CPU s (best of {rep['repeat']})",
            f"{rep['cpu_seconds']:.2f}",
            f"<= {TARGETS['replication_seconds_max']}",
            v["replication_seconds"],
        )
        row("  wall s", f"{rep['wall_seconds']:.2f}")
        row("  SimPy events / task steps", f"{rep['simpy_events']:,} / {rep['task_steps']:,}")
        row("  events per CPU second", f"{rep['events_per_cpu_second']:,.0f}")
        row("  peak RSS, MB", f"{rep['peak_rss_mb']:.0f}")
    if "floor" in r:
        row("SimPy floor, events per CPU second", f"{r['floor']['events_per_cpu_second']:,.0f}")
        row("model / floor event rate (CPU)", f"{r['floor']['ratio']:.3f}", f">= {TARGETS['floor_ratio_min']}", v["floor_ratio"])
    if "ensemble" in r:
        e = r["ensemble"]
        row(f"{e['replications']} replications, 1 worker, wall s", f"{e['workers_1']['wall_seconds']:.1f}")
        row(f"{e['replications']} replications, 2 workers, wall s", f"{e['workers_2']['wall_seconds']:.1f}")
        row(
            "100 replications, 2 workers, wall s" + (estimate if e["seconds_100_replications_estimated"] else ""),
            f"{e['seconds_100_replications_2_workers']:.1f}",
            f"<= {TARGETS['seconds_100_replications_max']:.0f}",
            v["seconds_100_replications"],
        )
        row(
            "speed-up of 2 workers over 1",
            f"{e['speedup']:.2f}",
            f">= {TARGETS['speedup_2_workers_min']}",
            v["speedup_2_workers"],
        )
    if "calibration" in r:
        c = r["calibration"]
        m = c["measured"]
        row(
            f"calibrate: {m['evaluations']} evaluations ({m['max_evaluations']}/block, {m['rounds']} round(s)), wall s",
            f"{m['wall_seconds']:.1f}",
        )
        row("  seconds per evaluation", f"{c['seconds_per_evaluation']:.2f}")
        s = c["settings"]
        row(
            f"calibrate at committed settings ({s['replications']} reps x {c['evaluation_budget']} evals), min"
            + (estimate if c["estimated"] else ""),
            f"{c['minutes']:.1f}",
            f"<= {TARGETS['calibration_minutes_max']:.0f}",
            v["calibration_minutes"],
        )
    if "compare" in r:
        c = r["compare"]
        for key in [k for k in c if k.startswith("replications_")]:
            n = key.split("_")[1]
            row(f"run 3 scenarios x {n} replications, wall s", f"{sum(c[key]['run_seconds'].values()):.1f}")
            row(f"  demining compare of the three ({n} replications), wall s", f"{c[key]['compare_seconds']:.1f}")
        row(
            "compare of 3 scenarios x 100 replications, min" + (estimate if c["estimated"] else ""),
            f"{c['minutes']:.1f}",
            f"<= {TARGETS['compare_minutes_max']:.0f}",
            v["compare_minutes"],
        )
    if "scaling" in r:
        for run in r["scaling"]["runs"]:
            row(f"  {run['scale']}x parcels ({run['parcels']:,}), wall s", f"{run['wall_seconds']:.2f}")
        row(
            "scaling exponent (time ~ parcels^k)",
            f"{r['scaling']['exponent']:.3f}",
            f"<= {TARGETS['scaling_exponent_max']}",
            v["scaling_exponent"],
        )
    if "memory" in r:
        m = r["memory"]
        for key in [k for k in m if k.startswith("replications_")]:
            row(f"peak RSS, {key.split('_')[1]} replications (area x{m['area_scale']}), MB", f"{m[key]['peak_rss_mb']:.0f}")
        row(
            "memory ratio, largest / smallest run",
            f"{m['ratio']:.2f}",
            f"<= {TARGETS['memory_ratio_1000_over_100_max']}",
            v["memory_ratio"],
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
