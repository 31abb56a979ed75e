"""Faults during a run: a killed worker, a full disk, a lost Dask scheduler, SIGTERM, damaged or
edited run folders. In every case the finished replications survive, the user gets one line
saying what happened and how to resume, and `--resume` completes the run to the same tables as an
uninterrupted one. Killed and terminated runs are real processes; the rest run in-process."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import time
from concurrent.futures import Future

import pandas as pd
import pytest
from distributed.comm import CommClosedError

import sim
import sim.cli
import sim.results
from sim.results import RunFolder

from .conftest import ROOT, SMALL, assert_same_tables, demining
from .test_reliability import BIGGER, _start, _wait_for_parts, finished_run

pytestmark = pytest.mark.faults

TINY = ["--set", "parcels.area_scale=0.02"]  # in-process runs: ~0.1 s a replication
# Unconditioned, so replications 0-5 are the run's part files whatever the fit: these tests name
# parts by number (a conditioned run numbers its kept attempts; tests/test_reliability.py resumes one).
TINY_RUN = ["-n", 6, "--seed", 3, "--no-plots", "-w", 1, "--no-condition", *TINY]


# ---------------------------------------------------------------------------------------- helpers
def _children(pid: int) -> list[int]:
    kids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            kids += [int(p) for p in f.read().split()]
    return kids


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent (a container's init may never reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pids, timeout=10.0) -> list[int]:
    deadline = time.time() + timeout
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def _partial(out):
    found = list((out / "small").glob(".partial-*"))
    assert len(found) == 1, found
    return found[0]


def _finished(partial) -> int:
    return len(list(partial.glob("parts/scalars-*.json")))


def _one_line(stderr: str) -> str:
    """The message after the progress bar: the last non-empty line, and no traceback anywhere."""
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.strip()][-1]


def _disk_full_at(monkeypatch, name_prefix: str):
    """Make the atomic writer fail as a full disk does when it reaches a file named `name_prefix...`."""
    real = sim.results.write_bytes_atomically

    def write(path, data):
        if path.name.startswith(name_prefix):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(sim.results, "write_bytes_atomically", write)


@pytest.fixture(scope="module")
def whole_tiny(tmp_path_factory):
    return finished_run(tmp_path_factory.mktemp("whole_tiny"), *TINY_RUN)


@pytest.fixture(scope="module")
def whole30(tmp_path_factory):
    """The run the process tests interrupt (test_reliability._start with 30 replications), uninterrupted."""
    return finished_run(tmp_path_factory.mktemp("whole30"), "-n", 30, "--seed", 4, "--no-plots", "-w", 2, *BIGGER)


@pytest.fixture
def stopped_tiny(tmp_path, monkeypatch):
    """A run stopped by a full disk after replications 0-2 finished: its partial folder."""
    _disk_full_at(monkeypatch, "monthly-000003")
    proc = demining("run", SMALL, *TINY_RUN, "--out", tmp_path)
    assert proc.returncode == 1, proc.stderr
    monkeypatch.undo()
    partial = _partial(tmp_path)
    assert _finished(partial) == 3
    return partial


# ---------------------------------------------------------------------------- real processes
def test_killed_worker_keeps_finished_replications_and_resume_completes(tmp_path, whole30):
    proc = _start(tmp_path, "-w", "2", replications=30)
    _wait_for_parts(tmp_path / "small", 3, proc)
    workers = _children(proc.pid)
    assert workers, "the run has pool workers"
    os.kill(workers[0], signal.SIGKILL)  # as the out-of-memory killer does
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    line = _one_line(stderr)
    assert "a worker process died" in line and "finish with: demining run --resume" in line, line
    partial = _partial(tmp_path)
    kept = _finished(partial)
    assert 3 <= kept < 30 and f"{kept} of 30 replications kept" in line
    resumed = demining("run", "--resume", partial, "-w", 2)
    assert resumed.returncode == 0, resumed.stderr
    assert not partial.exists()
    assert_same_tables((tmp_path / "small" / "latest").resolve(), whole30)


def test_sigterm_is_like_ctrl_c_exits_143_and_ends_the_workers(tmp_path, whole30):
    proc = _start(tmp_path, "-w", "2", replications=30)
    _wait_for_parts(tmp_path / "small", 2, proc)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    line = _one_line(stderr)
    assert line.startswith("terminated (SIGTERM)") and "demining run --resume" in line, line
    assert _wait_gone(workers) == []
    partial = _partial(tmp_path)
    assert _finished(partial) >= 2
    resumed = demining("run", "--resume", partial, "-w", 2)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_tables((tmp_path / "small" / "latest").resolve(), whole30)


def test_workers_end_when_the_main_process_is_killed(tmp_path):
    proc = _start(tmp_path, "-w", "2", replications=30)
    _wait_for_parts(tmp_path / "small", 1, proc)
    workers = _children(proc.pid)
    assert workers
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _wait_gone(workers) == [], "pool workers outlived the killed run"


# ---------------------------------------------------------------------------- disk full (fake writer)
def test_disk_full_while_writing_parts_keeps_them_and_resume_completes(stopped_tiny, whole_tiny):
    # stopped_tiny asserted exit 1 and three replications kept; the message:
    resumed = demining("run", "--resume", stopped_tiny, "-w", 1)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_tables((stopped_tiny.parent / "latest").resolve(), whole_tiny)


def test_disk_full_message_names_the_cause_and_the_resume_command(tmp_path, monkeypatch):
    _disk_full_at(monkeypatch, "districts-000002")
    proc = demining("run", SMALL, *TINY_RUN, "--out", tmp_path)
    line = _one_line(proc.stderr)
    partial = _partial(tmp_path)
    assert proc.returncode == 1
    assert line.startswith("error: No space left on device: ") and "districts-000002.parquet" in line, line
    assert line.endswith(f"2 of 6 replications kept; finish with: demining run --resume {partial}"), line


def test_disk_full_while_merging_keeps_every_replication(tmp_path, monkeypatch, whole_tiny):
    real = RunFolder._merge

    def merge(self, kind, replications):
        if kind == "districts":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, kind, replications)

    monkeypatch.setattr(RunFolder, "_merge", merge)
    proc = demining("run", SMALL, *TINY_RUN, "--out", tmp_path)
    assert proc.returncode == 1
    line = _one_line(proc.stderr)
    assert "No space left on device" in line and "6 of 6 replications kept" in line and "--resume" in line, line
    monkeypatch.undo()
    resumed = demining("run", "--resume", _partial(tmp_path), "-w", 1)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_tables((tmp_path / "small" / "latest").resolve(), whole_tiny)


def test_failure_before_any_replication_finished_leaves_nothing(tmp_path, monkeypatch):
    _disk_full_at(monkeypatch, "monthly-000000")
    out = tmp_path / "results"
    proc = demining("run", SMALL, *TINY_RUN, "--out", out)
    assert proc.returncode == 1
    assert "no replication had finished, so nothing was kept" in _one_line(proc.stderr)
    assert list(out.rglob("*")) == []


def test_failure_during_resume_keeps_the_folder(stopped_tiny, monkeypatch):
    _disk_full_at(monkeypatch, "monthly-00000")
    proc = demining("run", "--resume", stopped_tiny, "-w", 1)
    assert proc.returncode == 1
    assert "3 of 6 replications kept" in _one_line(proc.stderr)
    assert _finished(stopped_tiny) == 3


def test_atomic_writes_reach_the_disk_before_the_rename(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    sim.results._write_text_atomically(tmp_path / "a.json", "{}")
    assert synced == [str(tmp_path / f".a.json.{os.getpid()}.tmp"), str(tmp_path)]
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_an_interrupted_atomic_write_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch):
    (tmp_path / "a.json").write_text("old")

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sim.results.write_bytes_atomically(tmp_path / "a.json", b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert (tmp_path / "a.json").read_text() == "old"


# ---------------------------------------------------------------------------- Dask: lost scheduler
class _LosingCluster:
    """Stands in for a Dask client whose scheduler goes away: replications 5 and later fail with
    the error distributed raises for a closed connection. Futures finish as they are submitted."""

    def submit(self, fn, *args):
        future = Future()
        if args[3] >= 5:
            future.set_exception(CommClosedError("in <TCP (closed)>: Stream is closed"))
        else:
            future.set_result(fn(*args))
        return future


def test_lost_dask_scheduler_keeps_finished_replications(tmp_path, monkeypatch, whole_tiny):
    from contextlib import contextmanager

    @contextmanager
    def executor(scheduler, workers, replications):
        yield _LosingCluster(), "dask tcp://gone:8786"

    monkeypatch.setattr(sim.cli, "_executor", executor)
    proc = demining("run", SMALL, *TINY_RUN, "--out", tmp_path)
    assert proc.returncode == 1
    line = _one_line(proc.stderr)
    assert line.startswith("error: CommClosedError: in <TCP (closed)>: Stream is closed; ") and "--resume" in line, line
    partial = _partial(tmp_path)
    assert 4 <= _finished(partial) <= 5  # 0-3 always, 4 when it came before 5's failure
    monkeypatch.undo()
    resumed = demining("run", "--resume", partial, "-w", 1)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_tables((tmp_path / "small" / "latest").resolve(), whole_tiny)


# ---------------------------------------------------------------------------- damaged or edited folders
def test_damaged_parts_are_set_aside_and_run_again(stopped_tiny, whole_tiny):
    (stopped_tiny / "parts" / "monthly-000001.parquet").write_bytes(b"not parquet")
    (stopped_tiny / "parts" / "scalars-000002.json").write_text("{")
    (stopped_tiny / "parts" / "incidents-000000.parquet").unlink()
    proc = demining("run", "--resume", stopped_tiny, "-w", 1)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3, proc.stderr
    for name in ("incidents-000000.parquet", "monthly-000001.parquet", "scalars-000002.json"):
        assert any(name in line for line in warnings), (name, warnings)
    final = (stopped_tiny.parent / "latest").resolve()
    aside = final / "damaged"
    assert (aside / "monthly-000001.parquet").read_bytes() == b"not parquet"
    assert (aside / "scalars-000002.json").read_text() == "{"
    assert_same_tables(final, whole_tiny)


def test_parts_written_before_the_arrays_still_resume(stopped_tiny, whole_tiny):
    """Part files of a run interrupted before use by year and yearly figures were kept as arrays
    (nested dicts in the scalars) resume to the same tables and summary; a part in a format this
    version does not know is set aside and run again."""
    from sim.utilisation import YearlyUse

    for path in sorted((stopped_tiny / "parts").glob("scalars-*.json")):
        scalars = json.loads(path.read_text())
        use = YearlyUse.from_json(scalars["use_by_year"])
        scalars["use_by_year"] = {
            str(y): {
                "assets": {
                    t: dict(zip(use.columns, use.assets[i, k].tolist()))
                    for k, t in enumerate(use.asset_types)
                    if use.present[i, k]
                },
                "waiting_ha": dict(zip(use.stages, use.waiting_ha[i].tolist())),
            }
            for i, y in enumerate(use.years.tolist())
        }
        per_year = scalars["per_year"]
        scalars["per_year"] = {
            str(y): dict(zip(per_year["columns"], row)) for y, row in zip(per_year["years"], per_year["values"])
        }
        path.write_text(json.dumps(scalars))
    newer = stopped_tiny / "parts" / "scalars-000002.json"
    newer.write_text(json.dumps(json.loads(newer.read_text()) | {"per_year": {"format": "per_year/99"}}))
    proc = demining("run", "--resume", stopped_tiny, "-w", 1)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "scalars-000002.json: per_year: unknown format 'per_year/99'" in warnings[0], proc.stderr
    final = (stopped_tiny.parent / "latest").resolve()
    assert_same_tables(final, whole_tiny)
    assert json.loads((final / "summary.json").read_text()) == json.loads((whole_tiny / "summary.json").read_text())
    for name in ("per_year.parquet", "spend_per_year.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(final / name), pd.read_parquet(whole_tiny / name), check_exact=True)


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda p: p.write_text('{"seed": 3,'), "plan.json: damaged: not valid JSON"),
        (lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items() if k != "seed"})), "no 'seed'"),
        (lambda p: p.write_text(json.dumps(json.loads(p.read_text()) | {"replications": "6"})), "replications is '6'"),
    ],
    ids=["not json", "no seed", "replications a string"],
)
def test_damaged_plan_is_one_line_and_the_folder_is_kept(stopped_tiny, damage, expected):
    damage(stopped_tiny / "plan.json")
    proc = demining("run", "--resume", stopped_tiny, "-w", 1)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and expected in proc.stderr and str(stopped_tiny / "plan.json") in proc.stderr, (
        proc.stderr
    )
    assert _finished(stopped_tiny) == 3


def test_resume_refuses_an_edited_config(stopped_tiny):
    config = stopped_tiny / "config.toml"
    config.write_text(config.read_text().replace("horizon_years = 12", "horizon_years = 11"))
    proc = demining("run", "--resume", stopped_tiny, "-w", 1)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: {config}: changed since the run started (its SHA-256 differs from plan.json's); "
        "restore it, or start a new run with it"
    )
    assert not (stopped_tiny.parent / "latest").exists()


def test_two_resumes_of_one_folder_are_refused(stopped_tiny):
    fd = os.open(stopped_tiny / "lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)
        os.write(fd, b"4242")
        proc = demining("run", "--resume", stopped_tiny, "-w", 1)
    finally:
        os.close(fd)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {stopped_tiny}: already being run or resumed by pid 4242; wait for it to end"
    assert _finished(stopped_tiny) == 3
    again = demining("run", "--resume", stopped_tiny, "-w", 1)  # the lock went with its holder
    assert again.returncode == 0, again.stderr


def test_check_names_a_missing_table_or_a_damaged_metadata(whole_tiny, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(whole_tiny, copy)
    (copy / "monthly.parquet").unlink()
    proc = demining("run", "--check", copy)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {copy / 'monthly.parquet'}: missing: this results folder is incomplete"
    meta = json.loads((copy / "metadata.json").read_text())
    del meta["config_sha256"]
    (copy / "metadata.json").write_text(json.dumps(meta))
    proc = demining("run", "--check", copy)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {copy / 'metadata.json'}: damaged: no 'config_sha256'"


def test_compare_names_a_summary_without_a_key(whole_tiny, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(whole_tiny, copy)
    summary = json.loads((copy / "summary.json").read_text())
    del summary["horizon_end"]
    (copy / "summary.json").write_text(json.dumps(summary))
    proc = demining("compare", whole_tiny, copy, "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {copy / 'summary.json'}: damaged: no 'horizon_end'"


def _inventory(path):
    rows = ["id,district,area_ha,land_use,terrain,threat,mapped"]
    rows += [f"P{i},{['aghdam', 'fuzuli'][i % 2]},{5 + i},housing,plain,high,true" for i in range(8)]
    path.write_text("\n".join(rows) + "\n")


def test_check_from_another_folder_finds_the_inventory(tmp_path):
    _inventory(tmp_path / "inv.csv")
    proc = demining("run", SMALL, "--inventory", "inv.csv", "-n", 1, "-w", 1, "--no-plots", "--out", "r", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = (tmp_path / "r" / "small" / "latest").resolve()
    assert json.loads((run / "metadata.json").read_text())["inventory"] == str(tmp_path / "inv.csv")
    check = demining("run", "--check", run, cwd=ROOT)
    assert check.returncode == 0, check.stderr
    # A run from before paths were stored absolute: not found from here, which is not "changed".
    meta = json.loads((run / "metadata.json").read_text())
    (run / "metadata.json").write_text(json.dumps(meta | {"inventory": "inv.csv"}))
    check = demining("run", "--check", run, cwd=ROOT)
    assert check.returncode == 2
    assert "the run's inventory inv.csv was not found" in check.stderr and "differs" not in check.stderr
    assert demining("run", "--check", run, cwd=tmp_path).returncode == 0


def test_scalars_missing_keys_are_set_aside_and_a_stray_part_name_is_one_line(stopped_tiny, whole_tiny):
    # Valid JSON that is not a finished replication's scalars: set aside and run again.
    (stopped_tiny / "parts" / "scalars-000001.json").write_text('{"targets": {}}')
    folder = RunFolder.open_partial(stopped_tiny)
    folder.unlock()
    stray = stopped_tiny / "parts" / "scalars-x.json"
    stray.write_text("{}")
    with pytest.raises(sim.UserError, match="damaged part"):
        list(folder.finished_replications())  # the library path, without the CLI's check first
    stray.unlink()
    proc = demining("run", "--resume", stopped_tiny, "-w", 1)
    assert proc.returncode == 0, proc.stderr
    assert "scalars-000001.json: missing" in proc.stderr
    assert_same_tables((stopped_tiny.parent / "latest").resolve(), whole_tiny)


def test_a_run_that_cannot_start_leaves_nothing_and_no_lock(tmp_path, monkeypatch):
    cfg = sim.load_scenario(SMALL, ["parcels.area_scale=0.001"], environ={})

    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(sim.results, "_write_text_atomically", full)
    with pytest.raises(sim.UserError, match="cannot start the run"):
        RunFolder.create(tmp_path, cfg, seed=1, replications=2, run_id="r", version="test")
    assert not list((tmp_path / "small").iterdir())
    monkeypatch.undo()
    # The same run id again: no lock or folder left over stands in the way.
    folder = RunFolder.create(tmp_path, cfg, seed=1, replications=2, run_id="r", version="test")
    assert folder.path.name == ".partial-r"
    folder.unlock()


@pytest.mark.parametrize("revision", ["1999-01-01 old model", None], ids=["another revision", "before revisions"])
def test_a_run_started_by_another_model_revision_is_not_resumed(stopped_tiny, revision):
    plan_path = stopped_tiny / "plan.json"
    plan = json.loads(plan_path.read_text())
    plan.pop("model_revision")
    if revision:
        plan["model_revision"] = revision
    plan_path.write_text(json.dumps(plan))
    before = sorted(p.name for p in stopped_tiny.rglob("*"))
    proc = demining("run", "--resume", stopped_tiny, "-w", 1)
    assert proc.returncode == 2, proc.stderr
    assert "would not match new ones; start the run again" in _one_line(proc.stderr)
    assert sorted(p.name for p in stopped_tiny.rglob("*")) == before
