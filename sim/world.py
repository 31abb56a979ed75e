"""Districts and their hazardous-area records (parcels), with each parcel's hidden truth.

A parcel's *record* (district, area, land use, terrain, threat, mapped) is what a mine action
centre knows; its *truth* (how much of it really holds items, how many of each type, whether its
map is right) is what survey and clearance find out. The record comes from the scenario's
generation rule or from an inventory CSV; the truth is drawn per replication from named random
streams, so two scenarios share it replication by replication (common random numbers).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import HAZARD_TYPES, ITEM_TYPES, LAND_USES, MAP_STATES, TERRAINS, THREATS, ScenarioConfig
from .errors import UserError

INVENTORY_COLUMNS = ("id", "district", "area_ha", "land_use", "terrain", "threat", "mapped")
MAP_CORRECT, MAP_WRONG, MAP_NONE = (MAP_STATES.index(s) for s in ("correct", "wrong", "none"))
MINEFIELD, BATTLE_AREA = (HAZARD_TYPES.index(h) for h in ("minefield", "battle_area"))
MINE_ITEMS = [ITEM_TYPES.index(i) for i in ("ap", "at")]
UXO = ITEM_TYPES.index("uxo")


@dataclass(frozen=True)
class Inventory:
    """Parcel records as a mine action centre holds them (no hidden truth)."""

    ids: tuple[str, ...]
    district: np.ndarray  # int index into the scenario's district keys
    area_ha: np.ndarray
    land_use: np.ndarray  # index into LAND_USES
    terrain: np.ndarray  # index into TERRAINS
    threat: np.ndarray  # index into THREATS (0 high, 1 medium/low)
    mapped: np.ndarray | None  # bool, or None when the record does not say (drawn from coverage)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class MapDraw:
    """What decides each parcel's map state, kept so that a dated change of map accuracy or
    coverage can re-draw it with the same uniforms (sim.model applies it to unsurveyed parcels)."""

    u_mapped: np.ndarray  # compared with coverage
    u_correct: np.ndarray  # compared with accuracy
    handed_over: np.ndarray  # coverage of the handed-over maps, by parcel (its district's)
    recorded_mapped: np.ndarray | None  # the inventory's `mapped` column: then coverage plays no part


def draw_map_state(draw: MapDraw, hazard: np.ndarray, map_accuracy: float, new_maps_share: float) -> np.ndarray:
    """Each parcel's map: MAP_CORRECT, MAP_WRONG or MAP_NONE. The uniforms are fixed, so raising
    accuracy or coverage keeps every parcel that was mapped (or rightly mapped) so."""
    if draw.recorded_mapped is None:
        coverage = draw.handed_over + (1.0 - draw.handed_over) * new_maps_share
        # Maps record minefields; battle areas are not on them.
        mapped = (draw.u_mapped < coverage) & (hazard == MINEFIELD)
    else:
        mapped = draw.recorded_mapped
    return np.where(mapped, np.where(draw.u_correct < map_accuracy, MAP_CORRECT, MAP_WRONG), MAP_NONE)


@dataclass(frozen=True)
class Parcels:
    """Records plus the truth of one replication. Arrays of one row per parcel."""

    ids: tuple[str, ...]
    district: np.ndarray
    area_ha: np.ndarray
    land_use: np.ndarray
    terrain: np.ndarray
    threat: np.ndarray
    hazard: np.ndarray  # MINEFIELD or BATTLE_AREA
    map_state: np.ndarray  # MAP_CORRECT, MAP_WRONG or MAP_NONE
    contaminated_ha: np.ndarray
    items: np.ndarray  # (n, 3) anti-personnel, anti-tank, UXO
    near_former_loc: np.ndarray  # bool
    in_peacekeeping_zone: np.ndarray  # bool
    order: np.ndarray  # random tie-break among equal priorities
    map_draw: MapDraw
    follows_wave: np.ndarray | None = None  # bool: queued by its district's return wave (None: every parcel)
    goes_first: np.ndarray | None = None  # bool: high-threat land queued before all other (None: none is)

    def __len__(self) -> int:
        return len(self.ids)


def district_areas_ha(cfg: ScenarioConfig) -> dict[str, np.ndarray]:
    """Hazardous area per district by threat (high, medium/low), ha.

    A district whose hazardous area is published (hazardous_area_ha) takes it; the rest of the
    national figure is apportioned among the others by territory_km2 x contamination_weight (a
    documented, configurable rule). Each district splits by threat as the nation does."""
    pc = cfg.parcels
    keys = list(cfg.districts)
    national = pc.high_threat_area_ha + pc.medium_low_threat_area_ha
    given = np.array([d.hazardous_area_ha or 0.0 for d in cfg.districts.values()])
    weights = np.array(
        [0.0 if d.hazardous_area_ha is not None else d.territory_km2 * d.contamination_weight for d in cfg.districts.values()]
    )
    if national <= 0:
        return {k: np.zeros(2) for k in keys}
    rest = max(national - given.sum(), 0.0)
    # Written so that with no district given the shares are exactly weights / weights.sum().
    share = given / national + (weights / weights.sum() * (rest / national) if weights.sum() else 0.0)
    scale = pc.area_scale
    high = share * pc.high_threat_area_ha * scale
    low = share * pc.medium_low_threat_area_ha * scale
    return {k: np.array([high[i], low[i]]) for i, k in enumerate(keys)}


def parcel_cells(cfg: ScenarioConfig):
    """(district index, threat index, land use index, cell area ha, parcels) for
    every cell with hazardous area: how generate_inventory splits the area, and so how many
    parcels a scenario makes (estimated_parcels) before any is drawn."""
    pc = cfg.parcels
    areas = district_areas_ha(cfg)
    for d_idx, d_key in enumerate(cfg.districts):
        for t_idx in range(len(THREATS)):
            for u_idx, use in enumerate(LAND_USES):
                cell_ha = areas[d_key][t_idx] * pc.land_use_area_share[use]
                if cell_ha > 0:
                    yield d_idx, t_idx, u_idx, cell_ha, max(1, int(round(cell_ha / pc.mean_parcel_area_ha[use])))


def estimated_parcels(cfg: ScenarioConfig) -> int:
    """How many parcels generate_inventory makes for `cfg` (exactly: the counts are fixed by the config)."""
    return sum(cell[-1] for cell in parcel_cells(cfg))


def generate_inventory(cfg: ScenarioConfig, rng: np.random.Generator) -> Inventory:
    """Parcel records from the scenario's generation rule.

    The number of parcels in each (district, threat, land use) cell is fixed by the config
    (area / mean parcel area), so scenarios that change only assets or maps share it exactly;
    the parcel sizes are log-normal and rescaled to the cell's area."""
    pc = cfg.parcels
    terrains = [TERRAINS.index(district.terrain) for district in cfg.districts.values()]
    cols: dict[str, list] = {k: [] for k in ("district", "area", "land_use", "terrain", "threat")}
    for d_idx, t_idx, u_idx, cell_ha, n in parcel_cells(cfg):
        sizes = rng.lognormal(0.0, pc.parcel_area_sigma, size=n)
        sizes *= cell_ha / sizes.sum()
        cols["area"].append(sizes)
        for key, value in (("district", d_idx), ("land_use", u_idx), ("terrain", terrains[d_idx]), ("threat", t_idx)):
            cols[key].append(np.full(n, value, dtype=np.int64))
    if not cols["area"]:
        raise UserError("the scenario generates no hazardous area (all areas are zero)")
    district = np.concatenate(cols["district"])
    ids = tuple(f"{list(cfg.districts)[d]}-{i:05d}" for i, d in enumerate(district))
    return Inventory(
        ids=ids,
        district=district,
        area_ha=np.concatenate(cols["area"]),
        land_use=np.concatenate(cols["land_use"]),
        terrain=np.concatenate(cols["terrain"]),
        threat=np.concatenate(cols["threat"]),
        mapped=None,
    )


def _scale_items(
    items: np.ndarray,
    rows: np.ndarray,
    cols: list[int],
    factor: float,
    density: np.ndarray,
    contaminated: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Scale the items of some parcels and item types by `factor`, in place: denser as extra items
    on top of the usual draw (a sum of Poisson draws is Poisson), sparser by keeping each item with
    probability `factor` (a thinned Poisson draw is Poisson). A factor of 1 draws nothing."""
    if factor == 1.0:
        return
    where = np.ix_(rows, cols)
    if factor > 1.0:
        items[where] += rng.poisson((factor - 1.0) * density[where] * contaminated[rows, None])
    else:
        items[where] = rng.binomial(items[where], factor)


def draw_truth(cfg: ScenarioConfig, inventory: Inventory, rngs: Mapping[str, np.random.Generator]) -> Parcels:
    """The hidden truth of every parcel for one replication, from its streams `truth`, `maps` and
    `placement`.

    Maps use their own stream and compare fixed uniforms with coverage and accuracy, so raising
    either keeps every parcel that was mapped (or rightly mapped) so: better maps only add. Where a
    parcel lies (on the former line of contact, in the peacekeeping zone), its place in its queue
    and whether it waits for its return wave come from a stream of their own, drawn a fixed number
    of times: the truth stream's Poisson draws take as many uniforms as the densities ask, so
    drawn after them these would move whenever a fit moved a density (weaker common random
    numbers between a fit's trials). The items themselves still shift with any density tried."""
    truth_rng, maps_rng, placement_rng = rngs["truth"], rngs["maps"], rngs["placement"]
    pc = cfg.parcels
    n = len(inventory)
    districts = list(cfg.districts.values())
    lu = inventory.land_use
    threat = inventory.threat

    mean = np.array([pc.contaminated_share_mean[t] for t in THREATS])[threat]
    kappa = pc.contaminated_share_concentration
    share = truth_rng.beta(np.maximum(mean * kappa, 1e-6), np.maximum((1 - mean) * kappa, 1e-6))
    contaminated = inventory.area_ha * share

    battle_share = np.array([pc.battle_area_share[u] for u in LAND_USES])[lu]
    hazard = np.where(truth_rng.random(n) < battle_share, BATTLE_AREA, MINEFIELD)
    density = np.array([[pc.item_density_per_ha[h][i] for i in ITEM_TYPES] for h in HAZARD_TYPES])[hazard]
    items = truth_rng.poisson(density * contaminated[:, None]).astype(np.int64)

    loc_share = np.array([d.former_line_of_contact_share for d in districts])[inventory.district]
    pk_share = np.array([d.peacekeeping_zone_share for d in districts])[inventory.district]
    near_loc = placement_rng.random(n) < loc_share
    in_zone = placement_rng.random(n) < pk_share
    order = placement_rng.permutation(n)
    u_wave = placement_rng.random(n)
    follows_wave = u_wave < cfg.return_wave_share if cfg.return_wave_share < 1.0 else None
    u_first = placement_rng.random(n)
    goes_first = None
    if cfg.high_threat_first_share > 0:
        goes_first = (threat == THREATS.index("high")) & (u_first < cfg.high_threat_first_share)
    # Drawn last, in this order, so a factor of 1 leaves every other draw as it was.
    belt = (hazard == MINEFIELD) & near_loc
    _scale_items(items, belt, MINE_ITEMS, pc.former_loc_mine_density_factor, density, contaminated, truth_rng)
    _scale_items(items, in_zone, [UXO], pc.peacekeeping_zone_uxo_density_factor, density, contaminated, truth_rng)

    map_draw = MapDraw(
        u_mapped=maps_rng.random(n),
        u_correct=maps_rng.random(n),
        handed_over=np.array([d.map_coverage for d in districts])[inventory.district],
        recorded_mapped=None if inventory.mapped is None else inventory.mapped.astype(bool),
    )
    map_state = draw_map_state(map_draw, hazard, cfg.maps.map_accuracy, cfg.maps.new_maps_share)

    return Parcels(
        ids=inventory.ids,
        district=inventory.district,
        area_ha=inventory.area_ha,
        land_use=lu,
        terrain=inventory.terrain,
        threat=threat,
        hazard=hazard,
        map_state=map_state,
        contaminated_ha=contaminated,
        items=items,
        near_former_loc=near_loc,
        in_peacekeeping_zone=in_zone,
        order=order,
        map_draw=map_draw,
        follows_wave=follows_wave,
        goes_first=goes_first,
    )


_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n", ""}


def read_inventory(path: Path, cfg: ScenarioConfig, max_parcels: int | None = None) -> Inventory:
    """Parcel records from a CSV export: one row per hazardous area, columns INVENTORY_COLUMNS.

    The file is read row by row (never whole into memory), and reading stops with an error past
    `max_parcels` rows. Every problem is reported with the file, the row and the column."""
    source = str(path)
    path = Path(path)
    try:
        if not path.is_file():  # a FIFO or a device would block or never end
            raise UserError(
                "not a regular file" if path.exists() else "cannot read inventory (No such file or directory)", source=source
            )
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise UserError(f"cannot read inventory ({exc.strerror or exc})", source=source) from None
    with handle:
        try:
            return _inventory_rows(csv.DictReader(handle), cfg, source, max_parcels)
        except UnicodeDecodeError:
            raise UserError("not UTF-8 text", source=source) from None
        except OSError as exc:
            raise UserError(f"cannot read inventory ({exc.strerror or exc})", source=source) from None


def _inventory_rows(reader: csv.DictReader, cfg: ScenarioConfig, source: str, max_parcels: int | None) -> Inventory:
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        raise UserError(f"row 1: not a CSV header ({exc})", source=source) from None
    missing = [c for c in INVENTORY_COLUMNS if c not in header]
    if missing:
        raise UserError(f"missing column(s) {', '.join(missing)}; required: {', '.join(INVENTORY_COLUMNS)}", source=source)
    district_keys = list(cfg.districts)
    rows = {k: [] for k in INVENTORY_COLUMNS}
    seen: set[str] = set()
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit() (128 KiB): no real record has one
            raise UserError(f"row {reader.line_num + 1}: not a CSV record ({exc})", source=source) from None
        line = reader.line_num  # the file's line where the record ends (a quoted field may span lines)
        if max_parcels is not None and len(rows["id"]) >= max_parcels:
            raise UserError(
                f"more than {max_parcels:,} parcels; split the inventory, or give --force to run it anyway", source=source
            )

        def bad(column: str, why: str):
            return UserError(f"row {line}, column {column}: {why}", source=source)

        pid = (row["id"] or "").strip()
        if not pid:
            raise bad("id", "empty id")
        if pid in seen:
            raise bad("id", f"duplicate id {pid!r}")
        seen.add(pid)
        district = (row["district"] or "").strip().lower()
        if district not in district_keys:
            raise bad("district", f"unknown district {row['district']!r}; known: {', '.join(district_keys)}")
        try:
            area = float(row["area_ha"])
        except (TypeError, ValueError):
            raise bad("area_ha", f"not a number: {row['area_ha']!r}") from None
        if not np.isfinite(area) or area <= 0:
            raise bad("area_ha", f"must be a positive number of hectares, not {row['area_ha']!r}")
        for column, allowed in (("land_use", LAND_USES), ("terrain", TERRAINS), ("threat", THREATS)):
            value = (row[column] or "").strip().lower()
            if value not in allowed:
                raise bad(column, f"{row[column]!r} is not one of {', '.join(allowed)}")
            rows[column].append(allowed.index(value))
        mapped = (row["mapped"] or "").strip().lower()
        if mapped not in _TRUE | _FALSE:
            raise bad("mapped", f"{row['mapped']!r} is not true or false")
        rows["id"].append(pid)
        rows["district"].append(district_keys.index(district))
        rows["area_ha"].append(area)
        rows["mapped"].append(mapped in _TRUE)
    if not rows["id"]:
        raise UserError("the inventory has no rows", source=source)
    return Inventory(
        ids=tuple(rows["id"]),
        district=np.array(rows["district"], dtype=np.int64),
        area_ha=np.array(rows["area_ha"], dtype=float),
        land_use=np.array(rows["land_use"], dtype=np.int64),
        terrain=np.array(rows["terrain"], dtype=np.int64),
        threat=np.array(rows["threat"], dtype=np.int64),
        mapped=np.array(rows["mapped"], dtype=bool),
    )
