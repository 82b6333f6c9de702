"""district-nursing CSV mappings: visits and care plans (sources README 3, ODS RJ2).

Each test maps a few synthetic rows through the real mappings in mappings/ and checks specific
facts, independently of the worked examples; every produced resource is also checked as valid R4
and against profiles/.
"""

from __future__ import annotations

import pytest

from hub.mapping import MappedRecord
from tests.mappings._mapped import map_bytes

NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
VISIT_ID = "https://fhir.hub.example/Id/RJ2/visit"
DN_CAREPLAN_ID = "https://fhir.hub.example/Id/RJ2/careplan"
EPR_CAREPLAN_ID = "https://fhir.hub.example/Id/RV5/careplan"
VISIT_TYPE = "https://fhir.hub.example/CodeSystem/dn-visit-type"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
BASED_ON = "https://fhir.hub.example/StructureDefinition/encounter-based-on-care-plan"
REVIEW_DUE = "https://fhir.hub.example/StructureDefinition/careplan-next-review-due"

VISITS_HEADER = (
    "visit_id,nhs_number,surname,forename,dob,postcode,visit_start,visit_end,visit_type,"
    "location,team_ods,nurse,outcome,care_plan_id"
)
DONE = (
    "DN-1,9990000026,REILLY,THOMAS,1972-11-02,se13 7uw,2026-04-11T10:15:00+01:00,"
    "2026-04-11T10:45:00+01:00,Depot antipsychotic injection,Home,RJ2,A. Brown RN,Completed,DNCP-1"
)
PLANNED = (
    "DN-2,9990000026,REILLY,THOMAS,1972-11-02,SE13 7UW,2026-05-09T10:00:00+01:00,,"
    "Depot antipsychotic injection,Home,RJ2,A. Brown RN,Planned,DNCP-1"
)
CLINIC = (
    "DN-3,999 000 0018,OKAFOR,ADAEZE,1985-03-14,SE4 2AB,2026-04-13T16:00:00+01:00,"
    "2026-04-13T16:20:00+01:00,Physical health monitoring,Clinic,RJ2,L. Chen RN,Completed,"
)

PLANS_HEADER = (
    "care_plan_id,nhs_number,title,category,status,start_date,review_date,lead_nurse,team_ods,"
    "goals,epr_plan_id"
)
PLAN = (
    "DNCP-1,9990000026,Shared depot injection pathway,Medication administration,active,"
    "2026-02-01,2026-05-01,A. Brown RN,RJ2,Give depot every 4 weeks|Check for side effects,CP-1"
)


def _map(name: str, header: str, *rows: str, newline: str = "\r\n") -> list[MappedRecord]:
    data = newline.join([header, *rows]) + newline
    return map_bytes(name, data.encode(), f"{name.split('/')[-1]}.csv")


def _visits(*rows: str, newline: str = "\r\n") -> list[MappedRecord]:
    return _map("district-nursing/visits", VISITS_HEADER, *rows, newline=newline)


def _plans(*rows: str) -> list[MappedRecord]:
    return _map("district-nursing/careplans", PLANS_HEADER, *rows)


def _one(record: MappedRecord, resource_type: str) -> dict:
    assert record.ok, record.errors
    (found,) = [
        r.resource for r in record.resources if r.type == resource_type and not r.placeholder
    ]
    return found


def _visit(row: str, column: str, value: str) -> str:
    cells = row.split(",")
    cells[VISITS_HEADER.split(",").index(column)] = value
    return ",".join(cells)


def _plan(column: str, value: str, row: str = PLAN) -> str:
    cells = row.split(",")
    cells[PLANS_HEADER.split(",").index(column)] = value
    return ",".join(cells)


# -- visits.csv -------------------------------------------------------------------------------


def test_nhs_number_written_with_spaces_is_normalised():
    (record,) = _visits(CLINIC)
    patient = _one(record, "Patient")
    assert patient["identifier"] == [{"system": NHS, "value": "9990000018"}]
    encounter = _one(record, "Encounter")
    assert encounter["subject"] == {"reference": f"Patient?identifier={NHS}|9990000018"}


def test_patient_names_in_capitals_are_title_cased_and_postcode_normalised():
    (record,) = _visits(_visit(_visit(DONE, "surname", "ORTEGA-DÍAZ"), "forename", "MARISOL"))
    patient = _one(record, "Patient")
    assert patient["name"] == [{"family": "Ortega-Díaz", "given": ["Marisol"]}]
    assert patient["birthDate"] == "1972-11-02"
    assert patient["address"] == [{"postalCode": "SE13 7UW"}]
    assert (
        patient["meta"]["source"] == "https://fhir.hub.example/source/RJ2#district-nursing/visits"
    )
    assert "gender" not in patient  # the export has no sex or gender column


def test_completed_home_visit_is_a_finished_home_health_encounter():
    (record,) = _visits(DONE)
    encounter = _one(record, "Encounter")
    assert encounter["identifier"] == [{"system": VISIT_ID, "value": "DN-1"}]
    assert encounter["status"] == "finished"
    assert encounter["class"] == {"system": ACT_CODE, "code": "HH", "display": "home health"}
    assert encounter["period"] == {
        "start": "2026-04-11T10:15:00+01:00",
        "end": "2026-04-11T10:45:00+01:00",
    }
    assert encounter["serviceProvider"] == {
        "type": "Organization",
        "identifier": {"system": ODS, "value": "RJ2"},
    }
    (nurse,) = encounter["participant"]
    assert nurse["individual"] == {"display": "A. Brown RN"}
    assert nurse["type"][0]["coding"][0]["code"] == "PPRF"
    assert record.record_id == "DN-1"
    assert record.timestamp == "2026-04-11T10:15:00+01:00"


def test_visit_type_is_a_hub_code_with_the_exports_label():
    (record,) = _visits(DONE)
    first_type = _one(record, "Encounter")["type"][0]
    assert first_type == {
        "coding": [
            {
                "system": VISIT_TYPE,
                "code": "depot-antipsychotic-injection",
                "display": "Depot antipsychotic injection",
            }
        ]
    }


def test_visit_without_end_is_planned():
    (record,) = _visits(PLANNED)
    encounter = _one(record, "Encounter")
    assert encounter["status"] == "planned"
    assert encounter["period"] == {"start": "2026-05-09T10:00:00+01:00"}


def test_snomed_site_of_encounter_only_for_a_visit_that_took_place():
    (done,) = _visits(DONE)
    assert _one(done, "Encounter")["type"][1]["coding"] == [
        {"system": "http://snomed.info/sct", "code": "270420001", "display": "Seen in own home"}
    ]
    planned, not_seen = _visits(PLANNED, _visit(DONE, "outcome", "Not seen"))
    for record in (planned, not_seen):
        codes = [t["coding"][0]["system"] for t in _one(record, "Encounter")["type"]]
        assert codes == [VISIT_TYPE]


@pytest.mark.parametrize("outcome", ["Not seen", "Cancelled", "not SEEN"])
def test_visits_not_seen_or_cancelled_are_cancelled(outcome: str):
    (record,) = _visits(_visit(DONE, "outcome", outcome))
    assert _one(record, "Encounter")["status"] == "cancelled"


def test_clinic_visit_is_ambulatory_and_seen_in_a_community_clinic():
    (record,) = _visits(CLINIC)
    encounter = _one(record, "Encounter")
    assert encounter["class"] == {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"}
    assert {"system": "http://snomed.info/sct", "code": "384181000000102"}.items() <= encounter[
        "type"
    ][1]["coding"][0].items()


def test_visit_type_with_case_slips_and_spaces_still_maps():
    (record,) = _visits(_visit(CLINIC, "visit_type", " physical HEALTH monitoring "))
    coding = _one(record, "Encounter")["type"][0]["coding"][0]
    assert coding["code"] == "physical-health-monitoring"
    assert coding["display"] == "Physical health monitoring"


def test_unknown_visit_type_fails_only_that_visit_naming_the_field():
    first, bad, last = _visits(DONE, _visit(PLANNED, "visit_type", "Foot care"), CLINIC)
    assert first.ok and last.ok
    assert not bad.ok and bad.resources == []
    assert bad.name == "visits.csv line 3 (DN-2)"
    (error,) = bad.errors
    assert "visit_type" in error and "'Foot care'" in error


@pytest.mark.parametrize(
    ("nhs_number", "reason"),
    [
        ("9990000019", "is not a valid NHS number (Modulus 11)"),
        ("9.99E+09", "is not a valid NHS number (Modulus 11)"),
        ("", "is required but empty"),
    ],
)
def test_row_without_a_valid_nhs_number_fails_alone_naming_line_visit_and_field(
    nhs_number: str, reason: str
):
    first, bad, last = _visits(DONE, _visit(PLANNED, "nhs_number", nhs_number), CLINIC)
    assert first.ok and last.ok
    assert not bad.ok and bad.resources == []
    assert bad.name == "visits.csv line 3 (DN-2)"
    (error,) = bad.errors
    assert error.startswith("let nhs from nhs_number") and error.endswith(f": {reason}")


def test_visit_links_to_its_care_plan_by_identifier():
    (record,) = _visits(DONE)
    assert _one(record, "Encounter")["extension"] == [
        {
            "url": BASED_ON,
            "valueReference": {
                "type": "CarePlan",
                "identifier": {"system": DN_CAREPLAN_ID, "value": "DNCP-1"},
            },
        }
    ]
    (without_plan,) = _visits(CLINIC)
    assert "extension" not in _one(without_plan, "Encounter")


def test_visit_without_a_nurse_has_no_empty_participant():
    (record,) = _visits(_visit(PLANNED, "nurse", ""))
    assert "participant" not in _one(record, "Encounter")


def test_unknown_outcome_or_location_fails_naming_the_field():
    outcome, location = _visits(_visit(DONE, "outcome", "Done"), _visit(DONE, "location", "Car"))
    assert len(outcome.errors) == 1 and "outcome" in outcome.errors[0]
    assert len(location.errors) == 1 and "location" in location.errors[0]


def test_visit_start_that_is_not_iso_8601_fails_once():
    (record,) = _visits(_visit(DONE, "visit_start", "11/04/2026 10:15"))
    assert len(record.errors) == 1
    assert "visit_start" in record.errors[0] and "ISO 8601" in record.errors[0]


def test_crlf_and_lf_files_give_the_same_resources():
    crlf = _visits(DONE, PLANNED, CLINIC, newline="\r\n")
    lf = _visits(DONE, PLANNED, CLINIC, newline="\n")
    assert [r.summary() for r in crlf] == [r.summary() for r in lf]
    assert all(r.ok for r in lf)


def test_running_the_same_visit_again_gives_identical_resources():
    once, again = _visits(DONE), _visits(DONE)
    assert once[0].transaction() == again[0].transaction()
    keys = [(r.type, r.system, r.value) for r in once[0].resources]
    assert keys == [("Patient", NHS, "9990000026"), ("Encounter", VISIT_ID, "DN-1")]


# -- careplans.csv ----------------------------------------------------------------------------


def test_care_plan_is_found_by_its_id_and_points_at_the_patient_by_nhs_number():
    (record,) = _plans(_plan("nhs_number", "999 000 0026"))
    (made,) = [r for r in record.resources if not r.placeholder]
    plan = made.resource
    assert plan["identifier"] == [{"system": DN_CAREPLAN_ID, "value": "DNCP-1"}]
    assert plan["subject"] == {"reference": f"Patient?identifier={NHS}|9990000026"}
    assert plan["intent"] == "plan"
    assert plan["title"] == "Shared depot injection pathway"
    assert plan["category"] == [{"text": "Medication administration"}]
    assert plan["period"] == {"start": "2026-02-01"}
    assert plan["author"] == {"display": "A. Brown RN"}
    assert plan["contributor"] == [
        {"type": "Organization", "identifier": {"system": ODS, "value": "RJ2"}}
    ]
    assert record.name == "careplans.csv line 2 (DNCP-1)"


@pytest.mark.parametrize(
    ("status", "plan_status", "goal_status"),
    [
        ("active", "active", "active"),
        ("completed", "completed", "completed"),
        ("cancelled", "revoked", "cancelled"),
        ("Cancelled", "revoked", "cancelled"),
    ],
)
def test_care_plan_status_follows_r4_and_its_goals_follow_the_plan(
    status: str, plan_status: str, goal_status: str
):
    (record,) = _plans(_plan("status", status))
    plan = _one(record, "CarePlan")
    assert plan["status"] == plan_status
    assert {goal["lifecycleStatus"] for goal in plan["contained"]} == {goal_status}


def test_unknown_care_plan_status_fails_once_naming_the_field():
    (record,) = _plans(_plan("status", "on hold"))
    (error,) = record.errors
    assert "status" in error and "'on hold'" in error


def test_goals_split_on_bars_with_spaces_become_numbered_contained_goals():
    (record,) = _plans(
        _plan("goals", '"  Keep wound dry |Dress twice a week||  Check skin, heels  "')
    )
    plan = _one(record, "CarePlan")
    assert [(g["resourceType"], g["id"], g["description"]["text"]) for g in plan["contained"]] == [
        ("Goal", "g1", "Keep wound dry"),
        ("Goal", "g2", "Dress twice a week"),
        ("Goal", "g3", "Check skin, heels"),
    ]
    assert plan["goal"] == [{"reference": "#g1"}, {"reference": "#g2"}, {"reference": "#g3"}]
    assert all(g["subject"] == plan["subject"] for g in plan["contained"])


def test_care_plan_with_one_goal_and_no_epr_plan_has_no_based_on():
    (record,) = _plans(_plan("epr_plan_id", "", _plan("goals", "Ulcer healed")))
    plan = _one(record, "CarePlan")
    assert "basedOn" not in plan
    assert [g["description"]["text"] for g in plan["contained"]] == ["Ulcer healed"]
    assert plan["goal"] == [{"reference": "#g1"}]


def test_care_plan_without_goals_has_no_contained_or_goal():
    (record,) = _plans(_plan("goals", ""))
    plan = _one(record, "CarePlan")
    assert "contained" not in plan and "goal" not in plan


def test_care_plan_is_based_on_the_trusts_care_plan_by_its_business_identifier():
    (record,) = _plans(PLAN)
    assert _one(record, "CarePlan")["basedOn"] == [
        {"reference": f"CarePlan?identifier={EPR_CAREPLAN_ID}|CP-1"}
    ]
    # Until the trust sends that plan, a placeholder with its key stands in for it.
    (stand_in,) = [r for r in record.resources if r.placeholder]
    assert (stand_in.type, stand_in.system, stand_in.value) == ("CarePlan", EPR_CAREPLAN_ID, "CP-1")
    assert stand_in.resource["status"] == "unknown"
    (no_trust_plan,) = _plans(_plan("epr_plan_id", ""))
    assert "basedOn" not in _one(no_trust_plan, "CarePlan")
    assert not any(r.placeholder for r in no_trust_plan.resources)


def test_review_date_is_kept_as_the_next_review_due_extension():
    (record,) = _plans(PLAN)
    assert _one(record, "CarePlan")["extension"] == [{"url": REVIEW_DUE, "valueDate": "2026-05-01"}]
    (no_review,) = _plans(_plan("review_date", ""))
    assert "extension" not in _one(no_review, "CarePlan")


def test_care_plan_with_invalid_nhs_number_fails_alone_naming_the_field():
    bad_row = _plan("care_plan_id", "DNCP-2", _plan("nhs_number", "9990000019"))
    first, bad, last = _plans(PLAN, bad_row, PLAN)
    assert first.ok and last.ok
    assert not bad.ok and bad.resources == []
    assert bad.name == "careplans.csv line 3 (DNCP-2)"
    (error,) = bad.errors
    assert "nhs_number" in error and error.endswith("is not a valid NHS number (Modulus 11)")


def test_running_the_same_care_plan_again_gives_identical_resources():
    assert _plans(PLAN)[0].transaction() == _plans(PLAN)[0].transaction()
