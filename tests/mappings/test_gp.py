"""gp/stu3-bundle: GP Connect-style STU3 bundles to R4 Patient, Encounter, CarePlan and
QuestionnaireResponse (sources README 2, uk-fhir-facts.md 7.4).

Each test maps a small bundle built here and asserts specific facts, independently of the worked
examples in mappings/gp/examples/.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from hub.fhir import validate_resource
from tests.mappings._mapped import MAPPINGS, PROFILES, ROOT, map_bytes

EXAMPLES = ROOT / "mappings" / "gp" / "examples"

NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
STU3_ACTCODE = "http://hl7.org/fhir/v3/ActCode"
R4_ACTCODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
HUB_ID = "https://fhir.hub.example/Id"
UKCORE_VERIFICATION = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
)
ENGLAND_VERIFICATION = (
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
)


def _qr(rid: str, questionnaire: str, authored: str, scores: list[int], **more: Any) -> dict:
    prefix = {"PHQ-9": "phq9", "GAD-7": "gad7"}.get(questionnaire, "x")
    return {
        "resourceType": "QuestionnaireResponse",
        "id": rid,
        "status": "completed",
        "questionnaire": {
            "reference": f"Questionnaire/{questionnaire.lower()}",
            "display": questionnaire,
        },
        "subject": {"reference": "Patient/p1"},
        "authored": authored,
        "item": [
            {"linkId": f"{prefix}-{i}", "answer": [{"valueInteger": s}]}
            for i, s in enumerate(scores, 1)
        ],
        **more,
    }


def _bundle(*resources: dict, nhs: str | None = "9990000018", **patient: Any) -> dict:
    """A practice Organization (G85901), its Patient and the resources given."""
    person: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"use": "official", "family": "Okafor", "given": ["Adaeze"]}],
        "gender": "female",
        "birthDate": "1985-03-14",
        "generalPractitioner": [{"reference": "Organization/o1"}],
        **patient,
    }
    if nhs is not None and "identifier" not in patient:
        person["identifier"] = [{"system": NHS, "value": nhs}]
    organisation = {
        "resourceType": "Organization",
        "id": "o1",
        "identifier": [{"system": ODS, "value": "G85901"}],
        "name": "Ladywell Medical Centre",
    }
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in (organisation, person, *resources)],
    }


def _encounter(rid: str = "e1", start: str = "2026-03-20T09:10:00+00:00", **more: Any) -> dict:
    return {
        "resourceType": "Encounter",
        "id": rid,
        "status": "finished",
        "class": {"system": STU3_ACTCODE, "code": "AMB"},
        "type": [{"text": "Medication review"}],
        "subject": {"reference": "Patient/p1"},
        "period": {"start": start},
        **more,
    }


def _careplan(rid: str = "c1", status: str = "active", **more: Any) -> dict:
    return {
        "resourceType": "CarePlan",
        "id": rid,
        "status": status,
        "intent": "plan",
        "title": "Mental health care plan (primary care)",
        "category": [{"text": "Mental health care plan"}],
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2026-03-20"},
        "activity": [{"detail": {"status": "scheduled", "description": "Annual health check"}}],
        **more,
    }


def _map_lines(*bundles: dict, file: str = "extract.json"):
    text = "".join(json.dumps(b) + "\n" for b in bundles)
    return map_bytes("gp/stu3-bundle", text.encode(), file)


def _map(bundle: dict) -> list[dict]:
    (record,) = _map_lines(bundle)
    assert record.ok, record.errors
    return [made.resource for made in record.resources]


def _one(resources: list[dict], resource_type: str) -> dict:
    (found,) = [r for r in resources if r["resourceType"] == resource_type]
    return found


def _answers(response: dict) -> dict[str, int]:
    return {i["linkId"]: i["answer"][0]["valueInteger"] for i in response["item"]}


# -- Patient ----------------------------------------------------------------------------------


def test_patient_is_keyed_by_nhs_number_with_the_practice_as_a_logical_gp_reference():
    patient = _one(_map(_bundle()), "Patient")
    assert patient["identifier"] == [{"system": NHS, "value": "9990000018"}]
    assert patient["generalPractitioner"] == [
        {
            "type": "Organization",
            "identifier": {"system": ODS, "value": "G85901"},
            "display": "Ladywell Medical Centre",
        }
    ]
    assert patient["name"] == [{"use": "official", "family": "Okafor", "given": ["Adaeze"]}]
    assert (patient["gender"], patient["birthDate"]) == ("female", "1985-03-14")


def test_meta_source_names_the_practice_by_its_ods_code():
    for resource in _map(_bundle(_encounter(), _careplan())):
        assert resource["meta"] == {
            "source": "https://fhir.hub.example/source/G85901#gp/stu3-bundle"
        }


def test_practice_is_found_through_managing_organization_when_the_gp_is_a_practitioner():
    bundle = _bundle(
        {"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Adebayo"}]},
        generalPractitioner=[{"reference": "Practitioner/dr"}],
        managingOrganization={"reference": "Organization/o1"},
    )
    bundle["entry"].reverse()  # consumers must not rely on entry order (facts 7.2)
    patient = _one(_map(bundle), "Patient")
    assert patient["generalPractitioner"][0]["identifier"] == {"system": ODS, "value": "G85901"}


@pytest.mark.parametrize(
    "stu3_system",
    [
        "https://fhir.hl7.org.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1",
        "https://fhir.nhs.uk/CareConnect-NHSNumberVerificationStatus-1",  # GPC examples' spelling
    ],
)
def test_nhs_number_verification_status_becomes_the_uk_core_r4_extension(stu3_system):
    stu3_extension = {
        "url": "https://fhir.nhs.uk/STU3/StructureDefinition/"
        "Extension-CareConnect-GPC-NHSNumberVerificationStatus-1",
        "valueCodeableConcept": {"coding": [{"system": stu3_system, "code": "02"}]},
    }
    identifier = {"system": NHS, "value": "9990000018", "extension": [stu3_extension]}
    patient = _one(_map(_bundle(identifier=[identifier])), "Patient")
    assert patient["identifier"] == [
        {
            "system": NHS,
            "value": "9990000018",
            "extension": [
                {
                    "url": UKCORE_VERIFICATION,
                    "valueCodeableConcept": {
                        "coding": [
                            {
                                "system": ENGLAND_VERIFICATION,
                                "code": "02",
                                "display": "Number present but not traced",
                            }
                        ]
                    },
                }
            ],
        }
    ]


def test_stu3_only_patient_content_is_not_carried_over():
    patient = _one(
        _map(
            _bundle(
                meta={"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/GPC-Patient-1"]},
                extension=[{"url": "https://fhir.nhs.uk/STU3/RegistrationDetails-1"}],
            )
        ),
        "Patient",
    )
    assert "extension" not in patient and "profile" not in patient["meta"]
    assert "id" not in patient


def test_postcode_written_in_lower_case_without_its_space_is_normalised():
    address = [{"use": "home", "line": ["7 Hither Green Lane"], "postalCode": "se134ru"}]
    patient = _one(_map(_bundle(address=address)), "Patient")
    assert patient["address"] == [
        {"use": "home", "line": ["7 Hither Green Lane"], "postalCode": "SE13 4RU"}
    ]


# -- records that cannot be mapped ------------------------------------------------------------


def test_bundle_with_an_invalid_nhs_number_fails_alone_naming_the_field():
    good, bad, also_good = _map_lines(
        _bundle(nhs="9990000107"), _bundle(nhs="9990000019"), _bundle(nhs="9990000115")
    )
    assert good.ok and also_good.ok
    assert not bad.ok and bad.resources == []
    assert bad.name == "extract.json line 2 (9990000019)"
    (error,) = bad.errors
    assert error.startswith("let nhs from entry.resource[resourceType=Patient].identifier")
    assert error.endswith(": no valid NHS number (missing, or fails the Modulus 11 check)")


def test_bundle_without_an_nhs_number_fails_naming_the_field_once():
    other = [{"system": "https://provider.example/gp-system/patient", "value": "P-1"}]
    (record,) = _map_lines(_bundle(_encounter(), identifier=other))
    assert not record.ok and record.resources == []
    (error,) = record.errors  # once, not once per resource it would have made
    assert "identifier[system=https://fhir.nhs.uk/Id/nhs-number].value" in error


def test_bundle_whose_practice_has_no_ods_code_fails_naming_the_field():
    bundle = _bundle(_encounter())
    bundle["entry"][0]["resource"]["identifier"] = []
    (record,) = _map_lines(bundle)
    assert not record.ok and record.resources == []
    (error,) = record.errors
    assert "identifier[system=https://fhir.nhs.uk/Id/ods-organization-code].value" in error
    assert error.endswith(": no ODS code for the practice (Organization.identifier)")


def test_unknown_questionnaire_fails_naming_the_value_map():
    (record,) = _map_lines(_bundle(_qr("q1", "AUDIT-C", "2026-04-14T11:20:00+01:00", [1])))
    assert not record.ok
    assert any("'AUDIT-C' is not in value map 'gp/questionnaire'" in e for e in record.errors)


# -- keys stable across extracts --------------------------------------------------------------


def test_a_reextract_with_new_local_ids_and_entries_in_another_order_updates_not_duplicates():
    first = _bundle(
        _encounter(),
        _careplan(context={"reference": "Encounter/e1"}),
        _qr(
            "q1",
            "PHQ-9",
            "2026-03-20T09:30:00+00:00",
            [1] * 9,
            context={"reference": "Encounter/e1"},
        ),
    )
    second = json.loads(
        json.dumps(first)
        .replace('"p1"', '"8f1c"')
        .replace("Patient/p1", "Patient/8f1c")
        .replace('"o1"', '"a77e"')
        .replace("Organization/o1", "Organization/a77e")
        .replace('"e1"', '"0d9b"')
        .replace("Encounter/e1", "Encounter/0d9b")
        .replace('"q1"', '"5c2a"')
    )
    second["entry"].reverse()
    once, again = _map(first), _map(second)
    key = json.dumps
    assert sorted(map(key, once)) == sorted(map(key, again))
    assert "8f1c" not in json.dumps(again) and "0d9b" not in json.dumps(again)


def test_mapping_the_same_bundle_twice_gives_identical_resources():
    bundle = _bundle(_encounter(), _careplan(), _qr("q1", "PHQ-9", "2026-03-20T09:30:00Z", [0] * 9))
    assert _map(bundle) == _map(copy.deepcopy(bundle))


def test_no_local_id_or_full_url_reaches_the_output():
    bundle = _bundle(_encounter(serviceProvider={"reference": "Organization/o1"}), _careplan())
    for entry in bundle["entry"]:
        entry["fullUrl"] = f"urn:uuid:local-{entry['resource']['id']}"
    text = json.dumps(_map(bundle))
    assert "urn:uuid" not in text and '"id"' not in text
    assert "Patient/p1" not in text and "Organization/o1" not in text


# -- Encounter --------------------------------------------------------------------------------


def test_encounter_is_keyed_by_nhs_number_and_start_and_keeps_the_gp_system_identifier():
    gp_identifier = {"system": "https://provider.example/gp-system/encounter", "value": "b6df"}
    encounter = _one(_map(_bundle(_encounter(identifier=[gp_identifier]))), "Encounter")
    assert encounter["identifier"] == [
        {
            "system": f"{HUB_ID}/G85901/encounter",
            "value": "9990000018/2026-03-20T09:10:00+00:00",
        },
        gp_identifier,
    ]
    assert encounter["subject"] == {"reference": f"Patient?identifier={NHS}|9990000018"}
    assert encounter["status"] == "finished"
    assert encounter["type"] == [{"text": "Medication review"}]


def test_stu3_actcode_class_is_written_with_the_r4_system():
    encounter = _one(
        _map(_bundle(_encounter(**{"class": {"system": STU3_ACTCODE, "code": "VR"}}))), "Encounter"
    )
    assert encounter["class"] == {"system": R4_ACTCODE, "code": "VR", "display": "virtual"}


def test_encounter_without_a_class_is_taken_as_ambulatory():
    stu3 = _encounter()
    del stu3["class"]
    encounter = _one(_map(_bundle(stu3)), "Encounter")
    assert encounter["class"]["code"] == "AMB"


def test_encounter_service_provider_defaults_to_the_practice_by_ods_code():
    encounter = _one(_map(_bundle(_encounter())), "Encounter")
    assert encounter["serviceProvider"]["identifier"] == {"system": ODS, "value": "G85901"}


def test_stu3_system_urls_in_encounter_type_codings_become_r4_urls():
    coding = {"system": "http://hl7.org/fhir/v3/ActCode", "code": "AMB"}
    snomed = {"system": "http://snomed.info/sct", "code": "185202000"}
    encounter = _one(_map(_bundle(_encounter(type=[{"coding": [coding, snomed]}]))), "Encounter")
    assert encounter["type"] == [{"coding": [{"system": R4_ACTCODE, "code": "AMB"}, snomed]}]


def test_stu3_only_encounter_content_is_not_carried_over():
    participant = [{"individual": {"reference": "Practitioner/dr"}}]
    encounter = _one(
        _map(_bundle(_encounter(participant=participant, length={"value": 12}))), "Encounter"
    )
    assert "participant" not in encounter and "length" not in encounter


# -- CarePlan ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stu3", "r4"),
    [("suspended", "on-hold"), ("cancelled", "revoked"), ("active", "active")],
)
def test_careplan_status_is_translated_to_r4(stu3, r4):
    careplan = _one(_map(_bundle(_careplan(status=stu3))), "CarePlan")
    assert careplan["status"] == r4


def test_careplan_is_keyed_by_nhs_number_and_start_with_intent_plan():
    careplan = _one(_map(_bundle(_careplan())), "CarePlan")
    assert careplan["identifier"] == [
        {"system": f"{HUB_ID}/G85901/careplan", "value": "9990000018/2026-03-20"}
    ]
    assert careplan["intent"] == "plan"
    assert careplan["category"] == [{"text": "Mental health care plan"}]
    assert careplan["activity"] == [
        {"detail": {"status": "scheduled", "description": "Annual health check"}}
    ]


def test_careplan_context_becomes_encounter_by_the_consultations_key():
    careplan = _one(
        _map(_bundle(_encounter(), _careplan(context={"reference": "Encounter/e1"}))), "CarePlan"
    )
    assert careplan["encounter"] == {
        "reference": f"Encounter?identifier={HUB_ID}/G85901/encounter"
        "|9990000018/2026-03-20T09:10:00%2B00:00"  # a URL: the offset's `+` encoded
    }
    assert "context" not in careplan


def test_unknown_careplan_status_fails_naming_the_value_map():
    (record,) = _map_lines(_bundle(_careplan(status="paused")))
    assert not record.ok
    assert any("'paused' is not in value map 'gp/careplan-status'" in e for e in record.errors)


# -- QuestionnaireResponse --------------------------------------------------------------------


def test_phq9_reference_becomes_the_hub_canonical_and_the_total_is_added():
    scores = [2, 2, 1, 2, 1, 1, 2, 0, 0]
    gp_identifier = {"system": "https://provider.example/gp-system/qr", "value": "77"}
    stu3 = _qr("q1", "PHQ-9", "2026-04-14T11:20:00+01:00", scores, identifier=gp_identifier)
    response = _one(_map(_bundle(stu3)), "QuestionnaireResponse")
    # R4 allows one identifier here: the key (the GP system's own cannot be kept beside it).
    assert response["identifier"] == {
        "system": f"{HUB_ID}/G85901/questionnaire-response",
        "value": "9990000018/phq-9/2026-04-14T11:20:00+01:00",
    }
    assert response["questionnaire"] == "https://fhir.hub.example/Questionnaire/phq-9"
    assert response["status"] == "completed"
    assert response["authored"] == "2026-04-14T11:20:00+01:00"
    answers = _answers(response)
    assert answers["phq9-total"] == 11 == sum(scores)
    assert [i["linkId"] for i in response["item"]][-1] == "phq9-total"


def test_gad7_gets_its_total_and_a_total_sent_by_the_gp_system_is_replaced():
    stu3 = _qr("q2", "GAD-7", "2026-05-06T09:12:00+01:00", [2, 1, 2, 1, 0, 1, 1])
    stu3["item"].append({"linkId": "gad7-total", "answer": [{"valueInteger": 9}]})
    response = _one(_map(_bundle(stu3)), "QuestionnaireResponse")
    assert response["questionnaire"] == "https://fhir.hub.example/Questionnaire/gad-7"
    totals = [i for i in response["item"] if i["linkId"] == "gad7-total"]
    assert totals == [
        {"linkId": "gad7-total", "text": "GAD-7 total score", "answer": [{"valueInteger": 8}]}
    ]


def test_phq9_with_an_unanswered_item_has_no_total():
    stu3 = _qr("q1", "PHQ-9", "2026-04-14T11:20:00+01:00", [3] * 9)
    del stu3["item"][8]["answer"]
    response = _one(_map(_bundle(stu3)), "QuestionnaireResponse")
    assert "phq9-total" not in [i["linkId"] for i in response["item"]]


def test_phq9_and_gad7_completed_in_the_same_minute_get_different_keys():
    when = "2026-05-06T09:12:00+01:00"
    resources = _map(_bundle(_qr("q1", "PHQ-9", when, [1] * 9), _qr("q2", "GAD-7", when, [1] * 7)))
    keys = [r["identifier"] for r in resources if r["resourceType"] == "QuestionnaireResponse"]
    system = f"{HUB_ID}/G85901/questionnaire-response"
    assert keys == [
        {"system": system, "value": f"9990000018/phq-9/{when}"},
        {"system": system, "value": f"9990000018/gad-7/{when}"},
    ]


def test_questionnaire_context_and_parent_become_encounter_and_part_of():
    parent = {
        "resourceType": "Observation",
        "id": "obs1",
        "identifier": [{"system": "https://provider.example/gp-system/observation", "value": "7"}],
    }
    stu3 = _qr(
        "q1",
        "PHQ-9",
        "2026-03-20T09:30:00+00:00",
        [0] * 9,
        context={"reference": "Encounter/e1"},
        parent=[{"reference": "Observation/obs1"}],
    )
    response = _one(_map(_bundle(_encounter(), parent, stu3)), "QuestionnaireResponse")
    assert response["encounter"] == {
        "reference": f"Encounter?identifier={HUB_ID}/G85901/encounter"
        "|9990000018/2026-03-20T09:10:00%2B00:00"  # a URL: the offset's `+` encoded
    }
    assert response["partOf"] == [
        {
            "type": "Observation",
            "identifier": {
                "system": "https://provider.example/gp-system/observation",
                "value": "7",
            },
        }
    ]
    assert "context" not in response and "parent" not in response


# -- every produced resource ------------------------------------------------------------------


def _example_resources() -> list[Any]:
    found = []
    for path in sorted(EXAMPLES.iterdir()):
        if path.name.endswith(".expected.json"):
            continue
        with path.open("rb") as stream:
            for record in MAPPINGS.get("gp/stu3-bundle").read(stream, path.name):
                for number, made in enumerate(record.resources, 1):
                    name = f"{record.locator} #{number} {made.type}"
                    found.append(pytest.param(made.resource, id=name))
    return found


@pytest.mark.parametrize("resource", _example_resources())
def test_every_resource_from_the_examples_is_valid_r4_and_meets_the_hub_profiles(resource):
    validate_resource(resource)
    errors = [i for i in PROFILES.check(resource) if i.severity == "error"]
    assert errors == []
