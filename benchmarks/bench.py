"""Performance benchmarks: `make bench` (not part of `make test`).

Prints one JSON object and a readable table:
- one full baseline replication: wall seconds, SimPy events, events per second, peak memory;
- the SimPy floor: a bare SimPy loop processing the same number of events (timeouts and resource
  requests, no model logic) in the same process, and the ratio of the two event rates;
- scaling: one replication at 0.25x, 0.5x, 1x and 2x the parcels, and the fitted exponent of
  wall time against parcel count;
- ensemble: N baseline replications with 1 and with 2 workers, replications per second, speed-up;
- memory: peak resident memory of a 100- and a 1,000-replication `demining run` (results streamed
  to disk), each in its own process.

Every timing is measured here, on this machine; targets are printed beside the figures.
Options: --quick (fewer replications, for a smoke test), --only NAME[,NAME].
"""

from __future__ import annotations

import argparse
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
    "floor_ratio_min": 0.4,
    "scaling_exponent_max": 1.1,
    "speedup_2_workers_min": 1.7,
    "memory_ratio_1000_over_100_max": 1.5,
    "seconds_100_replications_max": 180.0,
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def one_replication(overrides: list[str] | None = None, seed: int = 1) -> dict:
    import sim
    from sim.ensemble import compile_scenario, replication_seeds, simulate

    cfg = sim.load_scenario(BASELINE, overrides or [], environ={})
    compiled = compile_scenario(cfg)
    start = time.perf_counter()
    res = simulate(compiled, cfg, replication_seeds(seed, 1)[0])
    wall = time.perf_counter() - start
    return {
        "wall_seconds": wall,
        "simpy_events": res.events_processed,
        "events_per_second": res.events_processed / wall,
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
    start = time.perf_counter()
    while True:
        try:
            env.step()
        except simpy.core.EmptySchedule:
            break
        processed += 1
    wall = time.perf_counter() - start
    return {"events": processed, "wall_seconds": wall, "events_per_second": processed / wall}


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
    return out


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
    parser.add_argument("--quick", action="store_true", help="fewer replications (smoke test, not the targets)")
    parser.add_argument("--only", default="", help="comma-separated: replication,floor,scaling,ensemble,memory")
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))

    def wanted(name: str) -> bool:
        return not only or name in only

    result: dict = {"machine": machine(), "targets": TARGETS}
    if wanted("replication") or wanted("floor"):
        result["replication"] = one_replication()
    if wanted("floor"):
        floor = simpy_floor(result["replication"]["simpy_events"])
        result["floor"] = floor | {"ratio": result["replication"]["events_per_second"] / floor["events_per_second"]}
    if wanted("scaling"):
        result["scaling"] = scaling()
    if wanted("ensemble"):
        result["ensemble"] = ensemble(10 if args.quick else 100)
    if wanted("memory"):
        result["memory"] = memory((10, 100) if args.quick else (100, 1000), area_scale=0.1)
    result["verdicts"] = verdicts(result)
    text = json.dumps(result, indent=2)
    print(text)
    print(table(result), file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")


def verdicts(r: dict) -> dict:
    v = {}
    if "floor" in r:
        v["floor_ratio"] = r["floor"]["ratio"] >= TARGETS["floor_ratio_min"]
    if "scaling" in r:
        v["scaling_exponent"] = r["scaling"]["exponent"] <= TARGETS["scaling_exponent_max"]
    if "ensemble" in r:
        v["speedup_2_workers"] = r["ensemble"]["speedup"] >= TARGETS["speedup_2_workers_min"]
        per_100 = r["ensemble"]["workers_2"]["wall_seconds"] * 100 / r["ensemble"]["replications"]
        v["seconds_100_replications"] = per_100 <= TARGETS["seconds_100_replications_max"]
    if "memory" in r:
        v["memory_ratio"] = r["memory"]["ratio"] <= TARGETS["memory_ratio_1000_over_100_max"]
    return v


def table(r: dict) -> str:
    lines = ["", f"{'figure':48s} {'value':>14s}  target"]

    def row(name, value, target="", ok=None):
        mark = "" if ok is None else ("  ok" if ok else "  MISSED")
        lines.append(f"{name:48s} {value:>14s}  {target}{mark}")

    v = r["verdicts"]
    if "replication" in r:
        rep = r["replication"]
        row("one baseline replication, wall s", f"{rep['wall_seconds']:.2f}")
        row("  SimPy events", f"{rep['simpy_events']:,}")
        row("  events per second", f"{rep['events_per_second']:,.0f}")
        row("  peak RSS, MB", f"{rep['peak_rss_mb']:.0f}")
    if "floor" in r:
        row("SimPy floor, events per second", f"{r['floor']['events_per_second']:,.0f}")
        row("model / floor event rate", f"{r['floor']['ratio']:.3f}", f">= {TARGETS['floor_ratio_min']}", v["floor_ratio"])
    if "scaling" in r:
        for run in r["scaling"]["runs"]:
            row(f"  {run['scale']}x parcels ({run['parcels']:,}), wall s", f"{run['wall_seconds']:.2f}")
        row(
            "scaling exponent (time ~ parcels^k)",
            f"{r['scaling']['exponent']:.3f}",
            f"<= {TARGETS['scaling_exponent_max']}",
            v["scaling_exponent"],
        )
    if "ensemble" in r:
        e = r["ensemble"]
        row(f"{e['replications']} replications, 1 worker, wall s", f"{e['workers_1']['wall_seconds']:.1f}")
        row(
            f"{e['replications']} replications, 2 workers, wall s",
            f"{e['workers_2']['wall_seconds']:.1f}",
            f"<= {TARGETS['seconds_100_replications_max']:.0f} per 100",
            v["seconds_100_replications"],
        )
        row(
            "speed-up of 2 workers over 1",
            f"{e['speedup']:.2f}",
            f">= {TARGETS['speedup_2_workers_min']}",
            v["speedup_2_workers"],
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
