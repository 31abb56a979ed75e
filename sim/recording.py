"""What a replication records, and the names of its columns.

Rows are plain tuples appended in the hot loop (building named rows there costs time); their
columns are named once here, and every reader indexes them by these names.
"""

from __future__ import annotations

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

# Codes in incident rows.
NO_AGENCY = -1  # civilian incidents belong to no agency
VICTIM_CIVILIAN, VICTIM_DEMINER = 0, 1


class Recorder:
    """The task-step log, the incident list and the month-end district stocks of one replication."""

    def __init__(self, n_months: int, n_districts: int):
        self.log: list[tuple] = []  # one row per finished task step, LOG_COLUMNS order
        self.incidents: list[tuple] = []
        self.stocks = np.zeros((n_months, n_districts, len(STOCK_COLUMNS)))

    def deminer_accidents(
        self,
        rng: np.random.Generator,
        agency: int,
        district: int,
        near_former_loc: int,
        items_handled: int,
        probability: float,
        t0: float,
        t1: float,
        killed_share: float,
    ) -> None:
        """Accidents among the items a step handled, each on a uniform day of the step."""
        for _ in range(rng.binomial(items_handled, probability)):
            day = t0 + rng.random() * (t1 - t0)
            self.incidents.append((day, district, agency, VICTIM_DEMINER, rng.random() < killed_share, 0, 1 - near_former_loc))

    def civilian(self, day: float, district: int, killed: bool, on_released_land: int, near_former_loc: int) -> None:
        self.incidents.append((day, district, NO_AGENCY, VICTIM_CIVILIAN, killed, on_released_land, 1 - near_former_loc))

    def snapshot(self, month: int, stocks: tuple[list[float], ...]) -> None:
        """District stocks at a month end (STOCK_COLUMNS order)."""
        for column, values in enumerate(stocks):
            self.stocks[month, :, column] = values

    def log_array(self) -> np.ndarray:
        return np.array(self.log, dtype=float).reshape(-1, len(LOG_COLUMNS))

    def incident_array(self) -> np.ndarray:
        return np.array(self.incidents, dtype=float).reshape(-1, len(INCIDENT_COLUMNS))
