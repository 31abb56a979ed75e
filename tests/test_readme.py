"""The README's examples run, and what it lists exists (SimPy-style docs checks)."""

from __future__ import annotations

import os
import re
import shlex

import pytest

from .conftest import ROOT, demining

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_python_examples_run(monkeypatch):
    monkeypatch.chdir(ROOT)
    for key in [k for k in os.environ if k.startswith("DEMINING_")]:
        monkeypatch.delenv(key)
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_listed_scenarios_exist_and_every_scenario_is_listed():
    listed = set(re.findall(r"`(\w+)\.toml`", README))
    on_disk = {p.stem for p in (ROOT / "scenarios").glob("*.toml")}
    assert on_disk <= listed, f"not in the README: {on_disk - listed}"


def test_quickstart_shows_the_two_commands():
    quick = README.split("## Quickstart", 1)[1].split("##", 1)[0]
    assert "make demo" in quick and "make test" in quick


def _bad_input_rows():
    section = README.split("## When things go wrong", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (.+?) \| `(.+?)` \| `(.+?)` \|$", section, flags=re.M)
    assert len(rows) >= 25
    return rows


@pytest.mark.parametrize("what, command, message", _bad_input_rows(), ids=lambda v: str(v)[:40])
def test_when_things_go_wrong_table(tmp_path, what, command, message):
    """Each row of the README's table: exit 2, one line naming the problem, nothing written. Run
    in-process through the CLI's entry point (tests/test_cli.py runs a bad input in a real process)."""
    env = {}
    words = shlex.split(command)
    while "=" in words[0] and words[0].split("=")[0].isupper():
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    assert words[0] == "demining"
    before = sorted((ROOT / "results").rglob("*"))
    proc = demining(*words[1:], env_extra=env, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr.replace("\n", " ") or message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted((ROOT / "results").rglob("*")) == before
