"""Plain words for code names: agencies and uncertain inputs, one mapping for every plot and table
that shows them (the tornado and Sobol plots, spend plots, the reported figures)."""

from __future__ import annotations

AGENCY_LABELS = {
    "all": "National",
    "anama": "ANAMA",
    "mod": "Defence ministry",
    "mes": "Emergencies ministry",
    "sbs": "Border Service",
    "imac": "Russian centre (IMAC)",
    "tsk": "Turkish engineers",
    "commercial": "Commercial",
}

# The uncertain inputs (sim.uncertainty.INPUTS and the fitted parameters), by name.
INPUT_LABELS = {
    "map_accuracy": "share of minefield maps that are accurate",
    "contaminated_share": "share of suspected land that really holds items",
    "manual_team_clearance_rate": "manual teams' clearance rate",
    "dog_team_clearance_rate": "dog teams' clearance rate",
    "machine_clearance_rate": "machines' clearance rate",
    "machine_technical_survey_rate": "machines' technical survey rate",
    "survey_team_nts_rate": "survey teams' non-technical survey rate",
    "aerial_survey_rate": "drone teams' aerial survey rate",
    "manual_ap_detection": "manual teams' detection of anti-personnel mines",
    "dog_ap_detection": "dogs' detection of anti-personnel mines",
    "machine_ap_detection": "machines' detonation of anti-personnel mines",
    "machine_mtbf": "machines' time between breakdowns",
    "machine_at_damage": "chance an anti-tank mine damages a machine",
    "machine_at_repair": "machines' repair time after anti-tank damage",
    "remote_survey_speedup": "faster survey where land was surveyed from the air",
    "released_land_exposure": "civilian exposure on released land",
    "baseline_activity": "civilian activity before returns",
    "survey_cancellation": "share of empty suspected land that survey cancels",
    "density.battle_area.uxo": "UXO per ha of battle area",
    "density.minefield.ap": "anti-personnel mines per ha of minefield",
    "density.minefield.at": "anti-tank mines per ha of minefield",
    "former_loc_mine_density_factor": "mines near the former line of contact (relative)",
    "peacekeeping_zone_uxo_density_factor": "UXO in the former peacekeeping zone (relative)",
    "return_wave_share": "share of land worked in return-wave order",
    "high_threat_first_share": "share of high-threat land worked first",
    "new_assets.initial_productivity_share": "new crews' starting pace (share of full)",
    "civilian_exposure_rate_per_item_month": "civilians' exposure rate per item",
    "civilian_killed_share": "share of civilian casualties killed",
    "former_loc_exposure_factor": "exposure near the former line of contact",
    "awareness_half_life_years": "half-life of risk awareness",
    "awareness_floor": "risk that awareness never removes",
    "soldier_exposure_rate_per_item_month": "soldiers' exposure rate per item",
    "soldier_awareness_half_life_years": "half-life of soldiers' risk awareness",
    "soldier_awareness_floor": "soldiers' risk that awareness never removes",
}
# A fitted parameter of one agency ("anama.survey_productivity"): the agency, then these words.
AGENCY_FIELD_LABELS = {
    "survey_productivity": "survey productivity",
    "clearance_productivity": "clearance productivity",
    "battle_area_share_of_work": "share of work on battle areas",
    "initial_productivity_share": "starting pace (share of full)",
    "later_pace_share": "later pace (share of earlier)",
}


def agency_label(key: str) -> str:
    return AGENCY_LABELS.get(key, key.upper())


def input_label(name: str) -> str:
    """An uncertain input in plain words: 'anama.survey_productivity' -> 'ANAMA survey productivity'."""
    if name in INPUT_LABELS:
        return INPUT_LABELS[name]
    agency, _, field = name.partition(".")
    if field in AGENCY_FIELD_LABELS:
        return f"{agency_label(agency)} {AGENCY_FIELD_LABELS[field]}"
    return name.replace(".", " ").replace("_", " ")
