"""Profiles that cannot be used are refused when loaded, naming the file, so that no rule is
silently skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.validation import ProfileLoadError, Profiles, default_profiles_dir

from ._examples import HUB, read_json, write_json


def _edit_element(directory: Path, name: str, element_id: str, **changes: object) -> Path:
    path = directory / "StructureDefinition" / f"{name}.json"
    sd = read_json(path)
    for element in sd["differential"]["element"]:
        if element["id"] == element_id:
            element.update(changes)
    write_json(path, sd)
    return path


def test_unsupported_constraint_expression_is_refused_at_load(profiles_copy: Path) -> None:
    _edit_element(
        profiles_copy,
        "hub-Patient",
        "Patient.identifier:nhsNumber",
        constraint=[
            {
                "key": "hub-nhs-1",
                "severity": "error",
                "human": "An NHS number is 10 characters",
                "expression": "value.length() = 10",
            }
        ],
    )
    with pytest.raises(ProfileLoadError) as raised:
        Profiles.load(profiles_copy)
    assert raised.value.file.endswith("hub-Patient.json")
    assert "hub-nhs-1" in raised.value.message
    assert "length" in raised.value.message


def test_constraint_without_expression_is_refused(profiles_copy: Path) -> None:
    _edit_element(
        profiles_copy,
        "hub-Encounter",
        "Encounter.status",
        constraint=[{"key": "hub-x-1", "severity": "error", "human": "Said, not checkable"}],
    )
    with pytest.raises(ProfileLoadError, match="hub-x-1 has no expression"):
        Profiles.load(profiles_copy)


def test_malformed_profile_file_is_refused_naming_it(profiles_copy: Path) -> None:
    broken = profiles_copy / "ValueSet" / "encounter-status.json"
    broken.write_text('{"resourceType": "ValueSet", "url": ', encoding="utf-8")
    with pytest.raises(ProfileLoadError) as raised:
        Profiles.load(profiles_copy)
    assert raised.value.file == str(broken)
    assert "not valid JSON (line 1" in str(raised.value)


def test_unknown_resource_type_is_refused(profiles_copy: Path) -> None:
    path = write_json(profiles_copy / "Misc" / "thing.json", {"resourceType": "Profile"})
    with pytest.raises(ProfileLoadError, match="unknown resourceType 'Profile'") as raised:
        Profiles.load(profiles_copy)
    assert raised.value.file == str(path)


def test_profile_that_is_not_valid_r4_is_refused(profiles_copy: Path) -> None:
    path = profiles_copy / "CodeSystem" / "dn-visit-type.json"
    code_system = read_json(path)
    code_system["content"] = ["complete"]
    write_json(path, code_system)
    with pytest.raises(ProfileLoadError, match="not a valid R4 CodeSystem"):
        Profiles.load(profiles_copy)


def test_unsupported_calculated_expression_is_refused(profiles_copy: Path) -> None:
    path = profiles_copy / "Questionnaire" / "gad-7.json"
    questionnaire = read_json(path)
    total = questionnaire["item"][-1]
    total["extension"][0]["valueExpression"]["expression"] = (
        "%resource.item.answer.value.aggregate($this + $total, 0)"
    )
    write_json(path, questionnaire)
    with pytest.raises(ProfileLoadError, match="gad7-total: calculatedExpression") as raised:
        Profiles.load(profiles_copy)
    assert raised.value.file.endswith("gad-7.json")


def test_score_of_an_unknown_item_is_refused(profiles_copy: Path) -> None:
    path = profiles_copy / "Questionnaire" / "phq-9.json"
    text = path.read_text(encoding="utf-8").replace("'phq9-9'", "'phq9-10'")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileLoadError, match="unknown linkId phq9-10"):
        Profiles.load(profiles_copy)


def test_same_url_twice_is_refused(profiles_copy: Path) -> None:
    copy = read_json(profiles_copy / "ValueSet" / "encounter-class.json")
    copy["id"] = "encounter-class-2"
    write_json(profiles_copy / "ValueSet" / "encounter-class-2.json", copy)
    with pytest.raises(ProfileLoadError, match="also defined in"):
        Profiles.load(profiles_copy)


def test_value_set_filter_is_refused(profiles_copy: Path) -> None:
    path = profiles_copy / "ValueSet" / "encounter-type.json"
    value_set = read_json(path)
    value_set["compose"]["include"][0]["filter"] = [
        {"property": "concept", "op": "is-a", "value": "wound-care"}
    ]
    write_json(path, value_set)
    with pytest.raises(ProfileLoadError, match="filter is not supported"):
        Profiles.load(profiles_copy)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"maxLength": 10}, "maxLength is not supported"),
        (
            {"type": [{"code": "Reference", "targetProfile": [f"{HUB}/x"]}]},
            "type profiles are not supported",
        ),
        (
            {"slicing": {"discriminator": [{"type": "type", "path": "$this"}], "rules": "open"}},
            "discriminator type 'type' is not supported",
        ),
    ],
)
def test_element_rules_the_checker_does_not_implement_are_refused(
    profiles_copy: Path, change: dict, message: str
) -> None:
    _edit_element(profiles_copy, "hub-CarePlan", "CarePlan.subject", **change)
    with pytest.raises(ProfileLoadError, match=message):
        Profiles.load(profiles_copy)


def test_other_conformance_resources_are_loaded_and_left_alone(profiles_copy: Path) -> None:
    write_json(
        profiles_copy / "ConceptMap" / "plan-type.json",
        {
            "resourceType": "ConceptMap",
            "id": "plan-type",
            "url": f"{HUB}/ConceptMap/plan-type",
            "status": "draft",
        },
    )
    (profiles_copy / "README.md").write_text("not JSON, not read", encoding="utf-8")
    assert Profiles.load(profiles_copy).questionnaire(f"{HUB}/Questionnaire/phq-9") is not None


def test_default_profiles_dir_is_the_repository_folder_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HUB_PROFILES_DIR", raising=False)
    assert default_profiles_dir() == Path(__file__).resolve().parents[2] / "profiles"
    monkeypatch.setenv("HUB_PROFILES_DIR", str(tmp_path))
    assert default_profiles_dir() == tmp_path


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileLoadError, match="is not a directory"):
        Profiles.load(tmp_path / "nowhere")
