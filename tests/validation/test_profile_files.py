"""The files in profiles/ are valid FHIR R4 and follow the team's conventions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.fhir import validate_resource
from hub.validation import Profiles, default_profiles_dir

from ._examples import HUB

FILES = sorted(default_profiles_dir().rglob("*.json"))
LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_profiles_folder_has_the_promised_resources() -> None:
    names = {f"{p.parent.name}/{p.stem}" for p in FILES}
    for type_ in ("Patient", "Encounter", "CarePlan", "QuestionnaireResponse", "Consent"):
        assert f"StructureDefinition/hub-{type_}" in names
    for questionnaire in ("phq-9", "gad-7", "dialog", "swemwbs"):
        assert f"Questionnaire/{questionnaire}" in names
    for code_system in ("epr-plan-type", "vcse-session-type", "dn-visit-type"):
        assert f"CodeSystem/{code_system}" in names


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_profile_file_is_valid_r4_named_for_its_canonical_url(path: Path) -> None:
    resource = _load(path)
    assert validate_resource(resource) == path.parent.name
    assert resource["id"] == path.stem
    assert resource["url"] == f"{HUB}/{path.parent.name}/{path.stem}"


def test_structure_definitions_constrain_the_base_r4_types() -> None:
    for path in (default_profiles_dir() / "StructureDefinition").glob("hub-*.json"):
        sd = _load(path)
        assert sd["derivation"] == "constraint"
        assert sd["baseDefinition"] == f"http://hl7.org/fhir/StructureDefinition/{sd['type']}"
        assert sd["fhirVersion"] == "4.0.1"
        assert all(e["id"].split(".")[0] == sd["type"] for e in sd["differential"]["element"])


def test_every_binding_names_a_value_set_that_is_here(profiles: Profiles) -> None:
    for path in (default_profiles_dir() / "StructureDefinition").glob("hub-*.json"):
        for element in _load(path)["differential"]["element"]:
            if "binding" in element:
                assert profiles.value_set(element["binding"]["valueSet"]) is not None


def _link_ids(questionnaire: dict) -> list[str]:
    return [i["linkId"] for i in questionnaire["item"] if i["type"] != "display"]


def test_phq9_and_gad7_carry_loinc_codes_and_the_agreed_link_ids(profiles: Profiles) -> None:
    phq9 = profiles.questionnaire(f"{HUB}/Questionnaire/phq-9")
    gad7 = profiles.questionnaire(f"{HUB}/Questionnaire/gad-7")
    assert phq9 is not None and gad7 is not None
    assert _link_ids(phq9) == [*(f"phq9-{i}" for i in range(1, 10)), "phq9-total"]
    assert _link_ids(gad7) == [*(f"gad7-{i}" for i in range(1, 8)), "gad7-total"]
    assert phq9["code"][0] == {
        "system": LOINC,
        "code": "44249-1",
        "display": "PHQ-9 quick depression assessment panel",
    }
    assert gad7["code"][0]["code"] == "69737-5"
    items = {i["linkId"]: i for i in phq9["item"]}
    assert items["phq9-1"]["code"][0]["code"] == "44250-9"
    assert items["phq9-9"]["code"][0]["code"] == "44260-8"
    assert [c["code"] for c in items["phq9-total"]["code"]] == ["44261-6", "720433000"]
    assert items["phq9-total"]["readOnly"] is True
    assert "Pfizer" in phq9["copyright"]


def test_dialog_items_are_the_epr_field_names_with_snomed_codes(profiles: Profiles) -> None:
    dialog = profiles.questionnaire(f"{HUB}/Questionnaire/dialog")
    assert dialog is not None
    assert _link_ids(dialog) == [
        "mental_health",
        "physical_health",
        "job_situation",
        "accommodation",
        "leisure_activities",
        "friendships",
        "relationship_with_partner_family",
        "personal_safety",
        "medication",
        "practical_help",
        "meetings_with_professionals",
        "dialog-quality-of-life",
        "dialog-treatment-satisfaction",
    ]
    items = {i["linkId"]: i for i in dialog["item"]}
    assert items["mental_health"]["code"][0] == {
        "system": SCT,
        "code": "1037651000000100",
        "display": "DIALOG patient rated outcome measure item 1 score",
    }
    assert items["friendships"]["code"][0]["code"] == "1037701000000108"
    assert items["dialog-quality-of-life"]["type"] == "decimal"


def test_swemwbs_carries_no_licensed_item_wording(profiles: Profiles) -> None:
    swemwbs = profiles.questionnaire(f"{HUB}/Questionnaire/swemwbs")
    assert swemwbs is not None
    assert _link_ids(swemwbs) == [
        *(f"q{i}" for i in range(1, 8)),
        "swemwbs-total",
        "swemwbs-metric",
    ]
    for item in swemwbs["item"][:7]:
        assert item["text"].startswith(f"Item {item['prefix']} (")
    assert "licence" in swemwbs["description"] and "Warwick" in swemwbs["copyright"]


def test_code_systems_use_the_agreed_codes(profiles: Profiles) -> None:
    def codes(name: str) -> list[str]:
        code_system = profiles.code_system(f"{HUB}/CodeSystem/{name}")
        assert code_system is not None
        return [c["code"] for c in code_system["concept"]]

    assert codes("epr-plan-type") == ["CPA", "CRISIS", "S117", "STATUTORY_CTP", "SUPPORT"]
    assert codes("vcse-session-type") == [
        "peer-support",
        "housing-advice",
        "debt-advice",
        "welfare-benefits-advice",
        "employment-support-ips",
        "day-programme",
    ]
    assert codes("dn-visit-type") == [
        "depot-antipsychotic-injection",
        "physical-health-monitoring",
        "wound-care",
        "medication-administration",
        "continence-assessment",
    ]


def test_encounter_class_value_set_is_the_agreed_list(profiles: Profiles) -> None:
    value_set = profiles.value_set(f"{HUB}/ValueSet/encounter-class")
    assert value_set is not None
    (include,) = value_set["compose"]["include"]
    assert include["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    assert [c["code"] for c in include["concept"]] == [
        "AMB", "EMER", "FLD", "HH", "IMP", "PRENC", "SS", "VR"
    ]  # fmt: skip
