"""The care model's search parameters on the embedded store (issue 9): the resources the real
mappings make of the shared examples are written to a SQLiteStore the way the pipeline writes
them (one transaction per record, kept items merged with the stored Encounter), then searched.
CareTeam and Flag, which the hub derives rather than maps, are written as the contract shapes
them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.mapping import MappingSet, merge_kept
from hub.store import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = MappingSet(ROOT / "mappings")
EXAMPLES = ROOT / "mappings" / "slam-epr" / "examples"
HUB_ID = "https://fhir.hub.example/Id"
HUB_CODES = "https://fhir.hub.example/CodeSystem"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
KIND = f"{HUB_CODES}/point-of-care-kind"
LEGAL = "https://fhir.hl7.org.uk/CodeSystem/UKCore-LegalStatusClassificationEngland"


def _apply(store: SQLiteStore, mapping: str, file: Path) -> None:
    """Each record of `file` in one transaction, as the pipeline applies it."""
    with file.open("rb") as stream:
        records = list(MAPPINGS.get(mapping).read(stream, file.name))
    for record in records:
        assert record.ok, record.errors
        entries = []
        for made in record.resources:
            resource = made.resource
            if made.keep:
                query = [("identifier", f"{made.system}|{made.value}")]
                stored = store.search(made.type, query).matches
                resource = merge_kept(made, stored[0] if stored else None, stale=False)
            request = {"method": "PUT", "url": made.conditional_url}
            entries.append({"resource": resource, "request": request})
        store.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path_factory.mktemp("care-model") / "fhir.sqlite")
    try:
        _apply(opened, "slam-epr/adt", EXAMPLES / "adt.hl7")
        _apply(opened, "slam-epr/episodes", EXAMPLES / "episodes.jsonl")
        yield opened
    finally:
        opened.close()


def _keys(store: SQLiteStore, resource_type: str, *params: tuple[str, str]) -> set[str]:
    """The business identifier values (of the first identifier) of what the search finds."""
    matches = store.search(resource_type, list(params)).matches
    return {resource["identifier"][0]["value"] for resource in matches}


def _patient_id(store: SQLiteStore, nhs_number: str) -> str:
    (patient,) = store.search("Patient", [("identifier", f"{NHS}|{nhs_number}")]).matches
    return patient["id"]


# -- points of care --------------------------------------------------------------------------


def test_a_guest_bed_stay_and_a_ward_admission_are_told_apart_in_one_search(store):
    assert _keys(store, "Encounter", ("class", "IMP")) == {"V0000503", "V0000505"}
    assert _keys(store, "Encounter", ("class", "IMP"), ("type", f"{KIND}|ward")) == {"V0000505"}
    guest_bed = _keys(store, "Encounter", ("class", "IMP"), ("type", f"{KIND}|guest-bed"))
    assert guest_bed == {"V0000503"}


def test_the_same_distinction_holds_through_the_encounters_location(store):
    chained = _keys(store, "Encounter", ("class", "IMP"), ("location.type", f"{KIND}|guest-bed"))
    assert chained == {"V0000503"}
    hospital = "http://terminology.hl7.org/CodeSystem/v3-RoleCode|PHU"
    assert _keys(store, "Encounter", ("location.type", hospital)) == {"V0000505"}


def test_every_epr_encounter_names_a_location_of_the_point_of_care_table(store):
    encounters = store.search("Encounter", [("_count", "50")]).matches
    assert len(encounters) == 5
    for encounter in encounters:
        (place,) = encounter["location"]
        location_type, location_id = place["location"]["reference"].split("/")
        location = store.read(location_type, location_id)
        assert place["location"]["display"] == location["name"]
    points = _keys(
        store,
        "Location",
        ("organization:identifier", "https://fhir.nhs.uk/Id/ods-organization-code|RV5"),
    )
    assert points == {"HEATHER-CLOSE", "CRISIS-HUB", "GUEST-BED-2", "LADYWELL-W1"}
    assert _keys(store, "Location", ("type", f"{KIND}|home")) == {"HOME"}
    assert _keys(store, "Location", ("name", "Ladywell")) == {"LADYWELL-W1"}


# -- Mental Health Act legal status ----------------------------------------------------------


def test_legal_status_finds_the_stays_that_had_that_status_at_any_time(store):
    assert _keys(store, "Encounter", ("legal-status", "02")) == {"V0000505"}
    assert _keys(store, "Encounter", ("legal-status", f"{LEGAL}|01")) == {"V0000505"}
    assert _keys(store, "Encounter", ("legal-status", "03")) == set()
    ward_stays = _keys(store, "Encounter", ("legal-status", "02"), ("type", f"{KIND}|ward"))
    assert ward_stays == {"V0000505"}


def test_the_stay_keeps_admission_each_change_and_discharge_status(store):
    (stay,) = store.search(
        "Encounter", [("identifier", f"{HUB_ID}/RV5/visit-number|V0000505")]
    ).matches
    periods = [
        {part["url"]: part for part in extension["extension"]}
        for extension in stay["extension"]
        if extension["url"].endswith("/legal-status-period")
    ]
    assert [
        (p["classification"]["valueCoding"]["code"], p["period"]["valuePeriod"]) for p in periods
    ] == [
        ("02", {"start": "2026-04-09T04:00:00+01:00", "end": "2026-04-16T10:00:00+01:00"}),
        ("01", {"start": "2026-04-16T10:00:00+01:00", "end": "2026-04-20T11:00:00+01:00"}),
    ]
    uk_core = {
        extension["id"]: extension["extension"][1]["valueCodeableConcept"]["coding"][0]["code"]
        for extension in stay["extension"]
        if extension["url"].endswith("Extension-UKCore-LegalStatus")
    }
    assert uk_core == {"legal-status-admission": "02", "legal-status-discharge": "01"}


# -- episodes --------------------------------------------------------------------------------


def test_an_active_membership_answers_is_this_person_a_member(store):
    member = [("type", f"{HUB_CODES}/episode-type|membership"), ("status", "active")]
    reilly = ("patient.identifier", f"{NHS}|9990000026")
    assert _keys(store, "EpisodeOfCare", reilly, *member) == {"EP-6002"}
    okafor = ("patient.identifier", f"{NHS}|9990000018")
    assert _keys(store, "EpisodeOfCare", okafor, *member) == set()
    # Reilly's caseload ended; his membership did not.
    assert _keys(store, "EpisodeOfCare", reilly, ("status", "finished")) == {"EP-6001"}


def test_referral_source_finds_the_member_who_came_back_without_a_referral(store):
    source = f"{HUB_CODES}/referral-source|member-re-entry"
    assert _keys(store, "EpisodeOfCare", ("referral-source", source)) == {"EP-5102"}
    assert _keys(store, "EpisodeOfCare", ("referral-source", "caseload-discharge")) == {
        "EP-6002",
        "EP-5101",
    }


def test_episodes_are_found_by_date_care_manager_team_organisation_and_patient(store):
    staff = f"{HUB_ID}/RV5/staff|C1234567"
    assert _keys(store, "EpisodeOfCare", ("care-manager:identifier", staff)) == {
        "EP-7001",
        "EP-6001",
        "EP-5102",
        "EP-3401",
    }
    assert _keys(store, "EpisodeOfCare", ("date", "lt2026-01-01")) == {"EP-6001", "EP-5101"}
    trust = "https://fhir.nhs.uk/Id/ods-organization-code|RV5"
    assert len(_keys(store, "EpisodeOfCare", ("organization:identifier", trust))) == 6
    haddad = _patient_id(store, "9990000042")
    assert _keys(store, "EpisodeOfCare", ("patient", f"Patient/{haddad}")) == {"EP-5101", "EP-5102"}


# -- the people around a person --------------------------------------------------------------


def test_related_people_are_found_by_patient_and_role(store):
    carer = ("relationship", f"{HUB_CODES}/contact-role|carer")
    nominated = ("relationship", f"{HUB_CODES}/contact-role|nominated-person")
    reilly = ("patient.identifier", f"{NHS}|9990000026")
    ortega = ("patient.identifier", f"{NHS}|9990000034")
    (sister,) = store.search("RelatedPerson", [reilly, carer]).matches
    (mother,) = store.search("RelatedPerson", [ortega, nominated]).matches
    assert (sister["name"][0]["given"], mother["name"][0]["given"]) == (["Mairead"], ["Lucía"])
    assert store.search("RelatedPerson", [reilly, nominated]).matches == []
    # Sent in three messages each, still one RelatedPerson each.
    assert len(store.search("RelatedPerson", []).matches) == 2
    sister_code = "http://terminology.hl7.org/CodeSystem/v3-RoleCode|SIS"
    assert [
        r["id"] for r in store.search("RelatedPerson", [("relationship", sister_code)]).matches
    ] == [sister["id"]]
    assert [
        r["id"]
        for r in store.search(
            "RelatedPerson", [("phone", "020 7946 0999"), ("name", "reilly")]
        ).matches
    ] == [sister["id"]]


def test_a_patients_everything_includes_their_episodes_and_related_people(store):
    page = store.everything(_patient_id(store, "9990000026"))
    types = sorted(resource["resourceType"] for resource in page.matches)
    assert types.count("EpisodeOfCare") == 2 and types.count("RelatedPerson") == 1
    assert "Location" in types  # what the Encounters reference comes with them


# -- what the hub derives: CareTeam and Flag -------------------------------------------------


def _derived(patient_id: str, mairead_id: str) -> list[dict[str, Any]]:
    subject = {"reference": f"Patient/{patient_id}"}
    team = {
        "resourceType": "CareTeam",
        "identifier": [{"system": f"{HUB_ID}/care-team", "value": patient_id}],
        "status": "active",
        "subject": subject,
        "name": "Team around the person",
        "period": {"start": "2025-10-01"},
        "participant": [
            {
                "role": [{"coding": [{"system": f"{HUB_CODES}/care-team-role", "code": "carer"}]}],
                "member": {"reference": f"RelatedPerson/{mairead_id}", "display": "Mairead Reilly"},
            }
        ],
    }
    flag = {
        "resourceType": "Flag",
        "identifier": [{"system": f"{HUB_ID}/flag", "value": f"{patient_id}/member"}],
        "status": "active",
        "code": {
            "coding": [{"system": f"{HUB_CODES}/flag", "code": "member"}],
            "text": "Member of the 24/7 centre: see the trust's episodes of care (RV5)",
        },
        "subject": subject,
        "period": {"start": "2026-04-06"},
    }
    return [team, flag]


def test_care_team_and_flag_are_found_by_patient_participant_date_and_status(store):
    patient_id = _patient_id(store, "9990000026")
    (mairead,) = store.search("RelatedPerson", [("relationship", "carer")]).matches
    for resource in _derived(patient_id, mairead["id"]):
        store.create(resource)
    mine = ("patient", f"Patient/{patient_id}")
    assert _keys(store, "CareTeam", mine, ("status", "active")) == {patient_id}
    assert _keys(store, "CareTeam", ("participant", f"RelatedPerson/{mairead['id']}")) == {
        patient_id
    }
    assert _keys(store, "Flag", mine, ("date", "ge2026-04-06")) == {f"{patient_id}/member"}
    assert (
        _keys(store, "Flag", ("subject", f"Patient/{patient_id}"), ("date", "lt2026-04-06"))
        == set()
    )
    everything = store.everything(patient_id).matches
    assert {"CareTeam", "Flag"} <= {resource["resourceType"] for resource in everything}


# -- every other R4 parameter of the new types -----------------------------------------------

_PATIENT = {"reference": "Patient/p1"}
_SAMPLES: dict[str, dict[str, Any]] = {
    "Location": {
        "resourceType": "Location",
        "status": "active",
        "operationalStatus": {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0116",
            "code": "O",
        },
        "name": "Heather Close guest bed 2",
        "alias": ["Garden room"],
        "address": {"line": ["1 Heather Close"], "city": "London", "postalCode": "SE13 6AA"},
        "partOf": {"reference": "Location/centre"},
        "endpoint": [{"reference": "Endpoint/e1"}],
    },
    "RelatedPerson": {
        "resourceType": "RelatedPerson",
        "active": True,
        "patient": _PATIENT,
        "telecom": [
            {"system": "phone", "value": "020 7946 0999"},
            {"system": "email", "value": "mairead@example.org"},
        ],
        "gender": "female",
        "birthDate": "1970-05-01",
        "address": [{"city": "London", "postalCode": "SE13 7UW"}],
    },
    "EpisodeOfCare": {
        "resourceType": "EpisodeOfCare",
        "status": "active",
        "patient": _PATIENT,
        "diagnosis": [{"condition": {"reference": "Condition/c1"}}],
        "referralRequest": [{"reference": "ServiceRequest/r1"}],
    },
    "CareTeam": {
        "resourceType": "CareTeam",
        "status": "active",
        "category": [{"coding": [{"system": "http://loinc.org", "code": "LA27976-2"}]}],
        "subject": _PATIENT,
        "encounter": {"reference": "Encounter/e1"},
        "period": {"start": "2026-04-01"},
    },
    "Flag": {
        "resourceType": "Flag",
        "status": "active",
        "code": {"text": "Member of the 24/7 centre"},
        "subject": _PATIENT,
        "encounter": {"reference": "Encounter/e1"},
        "author": {"reference": "Organization/o1"},
    },
}


@pytest.mark.parametrize(
    ("resource_type", "param", "matching", "other"),
    [
        ("Location", "status", "active", "inactive"),
        ("Location", "operational-status", "O", "C"),
        ("Location", "name", "garden", "ward"),
        ("Location", "address", "1 heather", "ladywell"),
        ("Location", "address-city", "london", "leeds"),
        ("Location", "address-postalcode", "SE13", "SE4"),
        ("Location", "partof", "Location/centre", "Location/ward"),
        ("Location", "endpoint", "Endpoint/e1", "Endpoint/e2"),
        ("RelatedPerson", "active", "true", "false"),
        ("RelatedPerson", "telecom", "020 7946 0999", "020 7946 0000"),
        ("RelatedPerson", "email", "mairead@example.org", "020 7946 0999"),
        ("RelatedPerson", "phone", "020 7946 0999", "mairead@example.org"),
        ("RelatedPerson", "gender", "female", "male"),
        ("RelatedPerson", "birthdate", "1970-05-01", "1970-05-02"),
        ("RelatedPerson", "address", "london", "leeds"),
        ("RelatedPerson", "address-postalcode", "SE13 7UW", "SE4"),
        ("RelatedPerson", "patient", "Patient/p1", "Patient/p2"),
        ("EpisodeOfCare", "condition", "Condition/c1", "Condition/c2"),
        ("EpisodeOfCare", "incoming-referral", "ServiceRequest/r1", "ServiceRequest/r2"),
        ("CareTeam", "category", "LA27976-2", "LA28865-6"),
        ("CareTeam", "encounter", "Encounter/e1", "Encounter/e2"),
        ("CareTeam", "date", "ge2026-05-01", "lt2026-04-01"),
        ("CareTeam", "subject", "Patient/p1", "Patient/p2"),
        ("Flag", "encounter", "Encounter/e1", "Encounter/e2"),
        ("Flag", "author", "Organization/o1", "Organization/o2"),
        ("Flag", "patient", "Patient/p1", "Patient/p2"),
    ],
)
def test_each_r4_search_parameter_of_the_new_types_finds_its_resource(
    tmp_path, resource_type: str, param: str, matching: str, other: str
):
    with SQLiteStore(tmp_path / "fhir.sqlite") as fresh:
        made = fresh.create(_SAMPLES[resource_type]).resource
        found = fresh.search(resource_type, [(param, matching)], strict=True).matches
        assert [r["id"] for r in found] == [made["id"]]
        assert fresh.search(resource_type, [(param, other)], strict=True).matches == []
