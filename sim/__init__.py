"""demining-sim: a discrete-event simulator of the humanitarian demining campaign in
Azerbaijan's Karabakh and East Zangazur districts.

Public API for notebooks (the CLI is a thin layer over it):

    import sim
    cfg = sim.load_scenario("scenarios/baseline.toml", ["maps.map_accuracy=0.5"])
    result = sim.run(cfg, replications=20, seed=7)
    result.monthly, result.districts, result.incidents, result.targets, result.summary
"""

from importlib.metadata import PackageNotFoundError, version

from .config import ScenarioConfig
from .ensemble import RunResult, run
from .errors import UserError
from .scenario import load_scenario

try:
    __version__ = version("demining-sim")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = ["ScenarioConfig", "RunResult", "UserError", "load_scenario", "run", "__version__"]
