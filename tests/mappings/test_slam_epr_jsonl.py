"""slam-epr JSON Lines mappings: care plans (sources README 1b) and DIALOG (1c).

Each test maps a few synthetic lines through the real mappings in mappings/ and checks specific
facts, independently of the worked examples; every produced resource is also checked as valid R4
and against profiles/.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.mapping import MappedRecord
from tests.mappings._mapped import map_bytes

MRN_SYSTEM = "https://fhir.hub.example/Id/RV5/mrn"
PATIENT_123 = {"reference": f"Patient?identifier={MRN_SYSTEM}|RV5A000123"}
PLAN_TYPE_SYSTEM = "https://fhir.hub.example/CodeSystem/epr-plan-type"
SNOMED = "http://snomed.info/sct"

PLAN: dict[str, Any] = {
    "plan_id": "CP-1",
    "mrn": "RV5A000123",
    "nhs_number": "9990000018",
    "plan_type": "CRISIS",
    "status": "active",
    "title": "Crisis and contingency plan",
    "created": "2026-03-01T09:00:00Z",
    "last_reviewed": "2026-04-01T12:00:00Z",
    "next_review_due": "2026-07-01",
    "care_coordinator": {"id": "C1", "name": "Kwame Mensah", "role": "CC", "team": "NCL 24/7"},
    "goals": [{"id": "G1", "description": "Know who to call", "status": "in-progress"}],
    "activities": [{"description": "Daily call", "status": "scheduled", "performer": "Centre"}],
    "updated_at": "2026-04-01T12:00:00Z",
}

SCORES = {
    "mental_health": 3,
    "physical_health": 5,
    "job_situation": 2,
    "accommodation": 3,
    "leisure_activities": 4,
    "friendships": 3,
    "relationship_with_partner_family": 5,
    "personal_safety": 4,
    "medication": 5,
    "practical_help": 4,
    "meetings_with_professionals": 6,
}
DIALOG: dict[str, Any] = {
    "assessment_id": "DLG-1",
    "mrn": "RV5A000123",
    "nhs_number": "9990000018",
    "completed_at": "2026-04-12T10:00:00+01:00",
    "clinician_id": "C1",
    "scores": SCORES,
}
ITEM_ORDER = list(SCORES)  # uk-fhir-facts.md 5.3 order


def _lines(*records: dict[str, Any] | str) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records).encode()


def _map(name: str, *records: dict[str, Any] | str, file: str = "in.jsonl") -> list[MappedRecord]:
    return map_bytes(name, _lines(*records), file)


def _one(name: str, record: dict[str, Any]) -> dict[str, Any]:
    (mapped,) = _map(name, record)
    assert mapped.ok, mapped.errors
    (made,) = mapped.resources
    return made.resource


def _plan(**changes: Any) -> dict[str, Any]:
    return _one("slam-epr/careplans", {**PLAN, **changes})


def _errors(name: str, record: dict[str, Any]) -> list[str]:
    (mapped,) = _map(name, record)
    assert not mapped.ok and mapped.resources == []
    return mapped.errors


# -- care plans ------------------------------------------------------------------------------


def test_plan_is_keyed_by_plan_id_and_points_at_the_patient_by_mrn():
    plan = _plan()
    assert plan["resourceType"] == "CarePlan"
    assert plan["identifier"] == [
        {"system": "https://fhir.hub.example/Id/RV5/careplan", "value": "CP-1"}
    ]
    assert plan["meta"]["source"] == "https://fhir.hub.example/source/RV5#slam-epr/careplans"
    assert plan["subject"] == PATIENT_123
    assert plan["intent"] == "plan"
    assert plan["title"] == "Crisis and contingency plan"


def test_record_is_named_by_plan_id_and_dated_by_updated_at():
    (mapped,) = _map("slam-epr/careplans", PLAN, file="careplans.jsonl")
    assert mapped.name == "careplans.jsonl line 1 (CP-1)"
    assert mapped.timestamp == "2026-04-01T12:00:00+00:00"


def test_created_gives_created_and_the_period_start():
    plan = _plan(created="2026-03-01T09:00:00+01:00")
    assert plan["created"] == "2026-03-01T09:00:00+01:00"
    assert plan["period"] == {"start": "2026-03-01T09:00:00+01:00"}


def test_crisis_plan_carries_the_local_code_and_the_snomed_crisis_plan():
    assert _plan(plan_type="CRISIS")["category"] == [
        {
            "coding": [
                {
                    "system": PLAN_TYPE_SYSTEM,
                    "code": "CRISIS",
                    "display": "Crisis and contingency plan",
                },
                {"system": SNOMED, "code": "736253002", "display": "Mental health crisis plan"},
            ]
        }
    ]


def test_support_plan_carries_the_snomed_personalised_care_and_support_plan():
    codings = _plan(plan_type="SUPPORT")["category"][0]["coding"]
    assert [(c["system"], c["code"]) for c in codings] == [
        (PLAN_TYPE_SYSTEM, "SUPPORT"),
        (SNOMED, "2181441000000107"),
    ]


@pytest.mark.parametrize(
    ("plan_type", "display"),
    [
        ("CPA", "Care Programme Approach plan"),
        ("S117", "Section 117 aftercare plan"),
        ("STATUTORY_CTP", "Statutory care and treatment plan"),
    ],
)
def test_plan_types_without_a_primary_sourced_snomed_concept_carry_only_the_local_code(
    plan_type, display
):
    assert _plan(plan_type=plan_type)["category"] == [
        {"coding": [{"system": PLAN_TYPE_SYSTEM, "code": plan_type, "display": display}]}
    ]


def test_plan_type_in_lower_case_is_read_as_the_local_code():
    assert _plan(plan_type=" s117 ")["category"][0]["coding"][0]["code"] == "S117"


def test_unknown_plan_type_fails_only_that_plan_naming_line_plan_and_field():
    other = {**PLAN, "plan_id": "CP-2", "plan_type": "RELAPSE_PREVENTION"}
    first, second, third = _map("slam-epr/careplans", PLAN, other, PLAN, file="careplans.jsonl")
    assert first.ok and third.ok
    assert second.name == "careplans.jsonl line 2 (CP-2)"
    assert second.resources == []
    (error,) = second.errors
    assert "plan_type" in error
    assert "'RELAPSE_PREVENTION' is not in value map 'slam-epr/plan-type'" in error


def test_plan_without_a_plan_type_fails():
    (error,) = _errors("slam-epr/careplans", {**PLAN, "plan_type": ""})
    assert "plan_type" in error and "required" in error


@pytest.mark.parametrize(
    ("source", "fhir"),
    [
        ("draft", "draft"),
        ("active", "active"),
        ("completed", "completed"),
        ("cancelled", "revoked"),
    ],
)
def test_plan_status_follows_r4_request_status_with_cancelled_as_revoked(source, fhir):
    assert _plan(status=source)["status"] == fhir


def test_unknown_plan_status_fails_naming_the_field():
    (error,) = _errors("slam-epr/careplans", {**PLAN, "status": "suspended"})
    assert error.startswith("CarePlan.status from status")
    assert "'suspended'" in error


def test_line_that_is_not_json_fails_alone_and_the_lines_around_it_map():
    second = {**PLAN, "plan_id": "CP-2"}
    first, broken, third = _map(
        "slam-epr/careplans", PLAN, '{"plan_id": "CP-9", "mrn": ', second, file="careplans.jsonl"
    )
    assert first.ok and third.ok
    assert third.resources[0].resource["identifier"][0]["value"] == "CP-2"
    assert broken.name == "careplans.jsonl line 2"
    assert broken.errors and "not valid JSON" in broken.errors[0]


def test_plan_with_empty_nhs_number_no_goals_no_activities_and_no_coordinator_still_maps():
    plan = _plan(nhs_number="", goals=[], activities=None, care_coordinator=None)
    assert plan["subject"] == PATIENT_123
    for absent in ("contained", "goal", "activity", "author"):
        assert absent not in plan


def test_plan_without_mrn_fails_naming_the_mrn():
    (error,) = _errors("slam-epr/careplans", {**PLAN, "mrn": ""})
    assert "mrn" in error and "required" in error


def test_care_coordinator_is_the_author_by_staff_id_with_their_name():
    assert _plan()["author"] == {
        "identifier": {"system": "https://fhir.hub.example/Id/RV5/staff", "value": "C1"},
        "display": "Kwame Mensah",
    }


def test_coordinator_role_and_team_do_not_leak_into_the_plan():
    text = json.dumps(_plan())
    assert "NCL 24/7" not in text and '"CC"' not in text


def test_review_dates_are_kept_as_hub_extensions():
    assert _plan()["extension"] == [
        {
            "url": "https://fhir.hub.example/StructureDefinition/careplan-last-reviewed",
            "valueDateTime": "2026-04-01T12:00:00+00:00",
        },
        {
            "url": "https://fhir.hub.example/StructureDefinition/careplan-next-review-due",
            "valueDate": "2026-07-01",
        },
    ]


def test_empty_review_dates_give_no_extension():
    assert "extension" not in _plan(last_reviewed="", next_review_due=None)


def test_goals_become_contained_goals_referenced_from_the_plan():
    goals = [
        {"id": "G1", "description": "Return to work", "status": "in-progress"},
        {"id": "G2", "description": "Sleep better", "status": "accepted"},
    ]
    plan = _plan(goals=goals)
    assert plan["goal"] == [{"reference": "#G1"}, {"reference": "#G2"}]
    first, second = plan["contained"]
    assert first == {
        "resourceType": "Goal",
        "id": "G1",
        "lifecycleStatus": "active",
        "achievementStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/goal-achievement",
                    "code": "in-progress",
                    "display": "In Progress",
                }
            ]
        },
        "description": {"text": "Return to work"},
        "subject": PATIENT_123,
    }
    assert second["lifecycleStatus"] == "accepted"
    assert "achievementStatus" not in second


@pytest.mark.parametrize(
    ("source", "lifecycle", "achievement"),
    [
        ("proposed", "proposed", None),
        ("on-hold", "on-hold", None),
        ("cancelled", "cancelled", None),
        ("improving", "active", "improving"),
        ("achieved", "completed", "achieved"),
        ("not-attainable", "completed", "not-attainable"),
        ("Completed", "completed", None),
    ],
)
def test_goal_status_gives_r4_lifecycle_and_only_a_sent_achievement(source, lifecycle, achievement):
    (goal,) = _plan(goals=[{"id": "G1", "description": "x", "status": source}])["contained"]
    assert goal["lifecycleStatus"] == lifecycle
    codes = [c["code"] for c in goal.get("achievementStatus", {}).get("coding", [])]
    assert codes == ([achievement] if achievement else [])


def test_unknown_goal_status_fails_the_plan_naming_the_goal_field():
    (error,) = _errors(
        "slam-epr/careplans", {**PLAN, "goals": [{"id": "G1", "description": "x", "status": "?"}]}
    )
    assert "lifecycleStatus" in error and "@.status" in error and "'?'" in error


def test_goal_without_an_id_fails_the_plan():
    errors = _errors(
        "slam-epr/careplans", {**PLAN, "goals": [{"description": "x", "status": "active"}]}
    )
    assert any("CarePlan.contained" in e and ".id" in e and "required" in e for e in errors)


def test_activity_gives_status_description_and_performer_by_name():
    assert _plan()["activity"] == [
        {
            "detail": {
                "status": "scheduled",
                "description": "Daily call",
                "performer": [{"display": "Centre"}],
            }
        }
    ]


def test_activity_sent_without_a_status_is_unknown():
    plan = _plan(activities=[{"description": "Carer's assessment", "performer": "Social care"}])
    assert plan["activity"][0]["detail"]["status"] == "unknown"


def test_unknown_activity_status_fails_the_plan_naming_the_field():
    (error,) = _errors(
        "slam-epr/careplans", {**PLAN, "activities": [{"description": "x", "status": "postponed"}]}
    )
    assert "activity" in error and "status" in error and "'postponed'" in error


def test_mapping_the_same_plans_twice_gives_identical_resources():
    records = (PLAN, {**PLAN, "plan_id": "CP-2", "plan_type": "S117"})
    once = [r.resources for r in _map("slam-epr/careplans", *records)]
    again = [r.resources for r in _map("slam-epr/careplans", *records)]
    assert once == again


# -- DIALOG ----------------------------------------------------------------------------------


def _dialog(**changes: Any) -> dict[str, Any]:
    return _one("slam-epr/dialog", {**DIALOG, **changes})


def _answers(response: dict[str, Any]) -> dict[str, Any]:
    return {item["linkId"]: item["answer"][0] for item in response["item"]}


def test_dialog_is_a_completed_response_to_the_hub_dialog_questionnaire():
    response = _dialog()
    assert response["resourceType"] == "QuestionnaireResponse"
    # R4 QuestionnaireResponse.identifier is a single Identifier (0..1), not a list
    assert response["identifier"] == {
        "system": "https://fhir.hub.example/Id/RV5/dialog-assessment",
        "value": "DLG-1",
    }
    assert response["questionnaire"] == "https://fhir.hub.example/Questionnaire/dialog"
    assert response["status"] == "completed"
    assert response["subject"] == PATIENT_123
    assert response["authored"] == "2026-04-12T10:00:00+01:00"
    assert response["author"] == {
        "identifier": {"system": "https://fhir.hub.example/Id/RV5/staff", "value": "C1"}
    }


def test_each_rating_is_an_integer_item_named_by_its_field_in_the_facts_order():
    shuffled = dict(reversed(list(SCORES.items())))
    response = _dialog(scores=shuffled)
    link_ids = [item["linkId"] for item in response["item"]]
    assert link_ids == [*ITEM_ORDER, "dialog-quality-of-life", "dialog-treatment-satisfaction"]
    answers = _answers(response)
    assert all(answers[name] == {"valueInteger": SCORES[name]} for name in ITEM_ORDER)


def test_the_two_means_are_decimals_rounded_to_two_places():
    answers = _answers(_dialog())
    # (3+5+2+3+4+3+5+4)/8 = 3.625, rounded half up; (5+4+6)/3 = 5
    assert answers["dialog-quality-of-life"] == {"valueDecimal": 3.63}
    assert answers["dialog-treatment-satisfaction"] == {"valueDecimal": 5.0}


def test_unanswered_items_are_left_out_and_the_means_use_only_answered_ones():
    scores = {"mental_health": 2, "physical_health": None, "friendships": 5, "medication": 7}
    answers = _answers(_dialog(scores=scores))
    assert list(answers) == [
        "mental_health",
        "friendships",
        "medication",
        "dialog-quality-of-life",
        "dialog-treatment-satisfaction",
    ]
    assert answers["dialog-quality-of-life"] == {"valueDecimal": 3.5}
    assert answers["dialog-treatment-satisfaction"] == {"valueDecimal": 7.0}


def test_a_mean_is_left_out_when_none_of_its_items_was_answered():
    answers = _answers(_dialog(scores={"mental_health": 4, "accommodation": 6}))
    assert "dialog-treatment-satisfaction" not in answers
    assert answers["dialog-quality-of-life"] == {"valueDecimal": 5.0}
    answers = _answers(_dialog(scores={"practical_help": 2}))
    assert "dialog-quality-of-life" not in answers


def test_a_rating_sent_as_text_is_read_as_the_number():
    assert _answers(_dialog(scores={"mental_health": "4"}))["mental_health"] == {"valueInteger": 4}


@pytest.mark.parametrize("rating", [0, 8, 9, -1, 3.5, "n/a"])
def test_a_rating_outside_1_to_7_fails_the_assessment_naming_the_item(rating):
    other = {**DIALOG, "assessment_id": "DLG-2", "scores": {**SCORES, "friendships": rating}}
    good, bad = _map("slam-epr/dialog", DIALOG, other, file="dialog.jsonl")
    assert good.ok
    assert bad.name == "dialog.jsonl line 2 (DLG-2)"
    # first the item, by field; text that is no number also spoils the mean, which says so too
    error = bad.errors[0]
    assert "scores.friendships" in error and "is not in value map 'slam-epr/dialog-score'" in error


def test_assessment_without_completion_time_or_mrn_fails_naming_the_field():
    (error,) = _errors("slam-epr/dialog", {**DIALOG, "completed_at": ""})
    assert "authored" in error and "completed_at" in error
    (error,) = _errors("slam-epr/dialog", {**DIALOG, "mrn": None})
    assert "mrn" in error and "required" in error


def test_mapping_the_same_assessment_twice_gives_identical_resources():
    once = [r.resources for r in _map("slam-epr/dialog", DIALOG)]
    again = [r.resources for r in _map("slam-epr/dialog", DIALOG)]
    assert once == again
