"""What a replication records, and the names of its columns.

Rows are plain tuples appended in the hot loop (building named rows there costs time); their
columns are named once here, and every reader indexes them by these names.
"""

from __future__ import annotations

from itertools import chain

import numpy as np

LOG_COLUMNS = (
    "t0",
    "t1",
    "parcel",
    "agency",
    "district",
    "asset_type",
    "stage",
    "land_use",
    "area_worked_ha",
    "cancelled_ha",
    "reduced_ha",
    "cleared_ha",
    "found_ap",
    "found_at",
    "found_uxo",
    "residual_delta",
)
FOUND_COLUMNS = ("found_ap", "found_at", "found_uxo")  # in sim.config.ITEM_TYPES order
INCIDENT_COLUMNS = ("day", "district", "agency", "victim", "killed", "on_released_land", "outside_former_loc")
STOCK_COLUMNS = ("suspected_ha", "confirmed_ha", "released_ha", "residual_items")
LOG = {name: k for k, name in enumerate(LOG_COLUMNS)}
INCIDENT = {name: k for k, name in enumerate(INCIDENT_COLUMNS)}
STOCK = {name: k for k, name in enumerate(STOCK_COLUMNS)}

# Asset time that is not a task step (steps are in the log): (agency, asset_type, state, stage,
# start day, end day). Idle time with no work in reach is what is left of an asset's days.
ASSET_TIME_COLUMNS = ("agency", "asset_type", "state", "stage", "t_start", "t_end")
ASSET_TIME = {name: k for k, name in enumerate(ASSET_TIME_COLUMNS)}
# Codes in asset-time rows: busy (only for a step cut by the horizon), idle for the season (work
# waiting on land out of season, until new work or the next month), down for repairs, and
# overtime: days past its withdrawal or its agency's end spent finishing a step or a repair.
BUSY, IDLE_SEASON, DOWN, OVERTIME = 0, 1, 2, 3
NO_STAGE = -1

# Codes in incident rows.
NO_AGENCY = -1  # civilian and soldier incidents belong to no agency
VICTIM_CIVILIAN, VICTIM_DEMINER, VICTIM_SOLDIER = 0, 1, 2
VICTIMS = ("civilian", "deminer", "soldier")  # by the codes above


class Recorder:
    """The task-step log, the incident list, the month-end district stocks and land waiting per
    stage, and the asset time that is not a task step, of one replication."""

    def __init__(self, n_months: int, n_districts: int, n_stages: int):
        self.log: list[tuple] = []  # one row per finished task step, LOG_COLUMNS order
        self.incidents: list[tuple] = []
        self.stocks = np.zeros((n_months, n_districts, len(STOCK_COLUMNS)))
        self.waiting = np.zeros((n_months, n_districts, n_stages))  # land waiting per stage at month ends
        self.asset_time: list[tuple] = []  # ASSET_TIME_COLUMNS

    def deminer_accidents(
        self,
        rng: np.random.Generator,
        agency: int,
        district: int,
        near_former_loc: int,
        items_handled: tuple[int, ...],
        probability: tuple[float, ...],
        t0: float,
        t1: float,
        killed_share: float,
    ) -> None:
        """Accidents among the items a step handled (ap, at, uxo), each on a uniform day of the step."""
        if len(set(probability)) == 1:
            # One draw for all items: the same law as one per type, and the draws of runs that give
            # every type the same probability stay as they were.
            accidents = rng.binomial(sum(items_handled), probability[0])
        else:
            accidents = sum(rng.binomial(n, q) for n, q in zip(items_handled, probability) if n and q)
        for _ in range(accidents):
            day = t0 + rng.random() * (t1 - t0)
            self.incidents.append((day, district, agency, VICTIM_DEMINER, rng.random() < killed_share, 0, 1 - near_former_loc))

    def civilian(self, day: float, killed: bool, district: int, near_former_loc: int, on_released_land: int) -> None:
        self.incidents.append((day, district, NO_AGENCY, VICTIM_CIVILIAN, killed, on_released_land, 1 - near_former_loc))

    def soldier(self, day: float, killed: bool, district: int, near_former_loc: int) -> None:
        self.incidents.append((day, district, NO_AGENCY, VICTIM_SOLDIER, killed, 0, 1 - near_former_loc))

    def snapshot(self, month: int, stocks: tuple[list[float], ...], waiting: list[list[float]]) -> None:
        """District stocks (STOCK_COLUMNS order) and land waiting per stage at a month end."""
        for column, values in enumerate(stocks):
            self.stocks[month, :, column] = values
        for stage, values in enumerate(waiting):
            self.waiting[month, :, stage] = values

    def drop_rows(self) -> None:
        """Empty the row lists (once their arrays are made)."""
        self.log.clear()
        self.incidents.clear()
        self.asset_time.clear()

    def asset_time_array(self) -> np.ndarray:
        return _as_array(self.asset_time, len(ASSET_TIME_COLUMNS))

    def log_array(self, start: int = 0) -> np.ndarray:
        """The log's rows from row `start` on."""
        return _as_array(self.log[start:] if start else self.log, len(LOG_COLUMNS))

    def incident_array(self) -> np.ndarray:
        return _as_array(self.incidents, len(INCIDENT_COLUMNS))


def _as_array(rows: list[tuple], width: int) -> np.ndarray:
    """Rows as a float array (rows, width); fromiter over the flattened rows is several times
    faster than np.array on a list of tuples."""
    return np.fromiter(chain.from_iterable(rows), dtype=float, count=len(rows) * width).reshape(-1, width)
