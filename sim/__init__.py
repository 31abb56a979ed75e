"""demining-sim: a discrete-event simulator of the humanitarian demining campaign in
Azerbaijan's Karabakh and East Zangazur districts.

Public API for notebooks (the CLI is a thin layer over it):

    import sim
    cfg = sim.load_scenario("scenarios/baseline.toml", ["maps.map_accuracy=0.5"])
    result = sim.run(cfg, replications=20, seed=7)
    result.monthly, result.districts, result.incidents, result.targets, result.summary

The names below load on first use, so that `import sim.stages` can register an extra stage
before the scenario schema (sim.config) is built from the stage registry.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("demining-sim")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

_PUBLIC = {
    "ScenarioConfig": "config",
    "RunResult": "ensemble",
    "run": "ensemble",
    "UserError": "errors",
    "load_scenario": "scenario",
    "make_uncertainty": "uncertainty",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
