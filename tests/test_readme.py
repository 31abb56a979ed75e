"""The README's examples run, and what it lists exists (SimPy-style docs checks)."""

from __future__ import annotations

import os
import re

from .conftest import ROOT

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
