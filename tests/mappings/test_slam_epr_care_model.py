"""The care model in the trust EPR feeds (issue 9): points of care, Mental Health Act legal
status and the people around a person (slam-epr/adt), and episodes of care (slam-epr/episodes).

Each test maps synthetic records through the real mappings and checks specific facts; every
produced resource is also checked as valid R4 and against profiles/ (map_bytes).
"""

from __future__ import annotations

import json
from itertools import permutations
from typing import Any

import pytest

from hub.mapping import MappedRecord, MappedResource, merge_kept
from tests.mappings._hl7 import fields, message
from tests.mappings._mapped import map_bytes

HUB_ID = "https://fhir.hub.example/Id"
HUB_CODES = "https://fhir.hub.example/CodeSystem"
KIND = f"{HUB_CODES}/point-of-care-kind"
ROLE = f"{HUB_CODES}/contact-role"
PERIOD = "https://fhir.hub.example/StructureDefinition/legal-status-period"
UK_CORE = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-LegalStatus"
SECTION_2 = "02^Formally detained under Mental Health Act Section 2^MHA-LS"
INFORMAL = "01^Informal^MHA-LS"


def _map(*messages: list[str]) -> list[MappedRecord]:
    data = "".join("\r".join(segments) + "\r" for segments in messages).encode()
    return map_bytes("slam-epr/adt", data, "adt.hl7")


def _one(record: MappedRecord, resource_type: str) -> dict[str, Any]:
    assert record.ok, record.errors
    (found,) = [made.resource for made in record.resources if made.type == resource_type]
    return found


def _visit(point_of_care: str, patient_class: str = "I", event: str = "A01", **more: Any):
    pv1 = {2: patient_class, 3: f"{point_of_care}^^^RV5", **more.pop("pv1", {})}
    (record,) = _map(message(event, pv1=pv1, **more))
    return record


def _codes(concepts: list[dict[str, Any]], system: str) -> list[str]:
    return [c["code"] for concept in concepts for c in concept["coding"] if c["system"] == system]


# -- points of care --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point_of_care", "patient_class", "kind", "name", "role"),
    [
        ("GUEST-BED-2", "I", "guest-bed", "Heather Close guest bed 2", "CSC"),
        ("GUEST-BED-14", "I", "guest-bed", "Heather Close guest bed 14", "CSC"),
        ("LADYWELL-W1", "I", "ward", "Ladywell Unit ward 1", "PHU"),
        ("LADYWELL-W4", "I", "ward", "Ladywell Unit ward 4", "PHU"),
        ("HEATHER-CLOSE", "O", "centre", "Heather Close 24/7 Centre", "CSC"),
        ("CRISIS-HUB", "E", "crisis-assessment", "Heather Close crisis assessment hub", "CSC"),
        ("HOME", "O", "home", "The person's home", "PTRES"),
    ],
)
def test_every_visit_names_a_location_whose_kind_is_on_both(
    point_of_care: str, patient_class: str, kind: str, name: str, role: str
):
    record = _visit(point_of_care, patient_class)
    location, encounter = _one(record, "Location"), _one(record, "Encounter")
    assert location["identifier"] == [
        {"system": f"{HUB_ID}/RV5/point-of-care", "value": point_of_care}
    ]
    assert location["name"] == name
    assert _codes(location["type"], KIND) == [kind] == _codes(encounter["type"], KIND)
    v3 = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
    assert _codes(location["type"], v3) == [role]
    assert encounter["location"] == [
        {
            "location": {
                "reference": f"Location?identifier={HUB_ID}/RV5/point-of-care|{point_of_care}",
                "display": name,
            },
            "status": "active",
        }
    ]
    assert record.warnings == []


def test_a_guest_bed_and_a_ward_are_both_inpatient_stays_told_apart_by_their_kind():
    guest_bed, ward = (_one(_visit(p), "Encounter") for p in ("GUEST-BED-2", "LADYWELL-W1"))
    assert guest_bed["class"]["code"] == ward["class"]["code"] == "IMP"
    snomed = "http://snomed.info/sct"
    assert _codes(ward["type"], snomed) == ["185212007"]  # Seen in hospital ward
    assert _codes(guest_bed["type"], snomed) == []  # never claimed to be a ward


def test_the_home_is_a_kind_of_place_and_the_centre_one_place_run_by_the_trust():
    home, centre = (_one(_visit(p, "O"), "Location") for p in ("HOME", "HEATHER-CLOSE"))
    assert (home["mode"], centre["mode"]) == ("kind", "instance")
    assert "managingOrganization" not in home
    assert centre["managingOrganization"]["identifier"] == {
        "system": "https://fhir.nhs.uk/Id/ods-organization-code",
        "value": "RV5",
    }


def test_an_unknown_point_of_care_is_a_location_named_by_its_code_and_a_warning():
    record = _visit("PECKHAM-HUB", "O")
    location, encounter = _one(record, "Location"), _one(record, "Encounter")
    assert (location["name"], location.get("type")) == ("PECKHAM-HUB", None)
    assert "type" not in encounter
    assert encounter["location"][0]["location"]["display"] == "PECKHAM-HUB"
    (warning,) = record.warnings
    assert "PECKHAM-HUB" in warning and "points-of-care" in warning


def test_a_discharged_stay_has_finished_with_its_location():
    record = _visit("GUEST-BED-2", event="A03", pv1={45: "20260406110000"})
    assert _one(record, "Encounter")["location"][0]["status"] == "completed"


def test_a_message_without_a_visit_makes_no_location():
    for event, pv1 in (("A28", None), ("A08", {2: "N", 3: "", 19: ""})):
        (record,) = _map(message(event, pv1=pv1))
        assert [made.type for made in record.resources] == ["Patient"]


# -- Mental Health Act legal status ----------------------------------------------------------


def _zmh(status: str, since: str, until: str = "") -> str:
    return fields("ZMH", {1: "1", 2: status, 3: since, 4: until, 5: "C7000001^ADEBAYO^FOLA"})


WARD = {2: "I", 3: "LADYWELL-W1^^^RV5", 19: "V0000505^^^RV5^VN", 44: "20260409043000"}
ADMIT = message("A01", control="RV5-111", pv1=WARD, extra=(_zmh(SECTION_2, "20260409040000"),))
CHANGE = message(
    "A08",
    control="RV5-112",
    made="20260416100000",
    recorded="20260416100000",
    pv1=WARD,
    extra=(_zmh(INFORMAL, "20260416100000"),),
)
DISCHARGE = message(
    "A03",
    control="RV5-113",
    made="20260420110000",
    recorded="20260420110000",
    pv1={**WARD, 45: "20260420110000"},
    extra=(_zmh(INFORMAL, "20260416100000"),),
)


def _legal(encounter: dict[str, Any]) -> tuple[list[tuple[str, dict[str, str]]], dict[str, str]]:
    """(classification code, period) of each status, and the UK Core status by context."""
    periods, contexts = [], {}
    for extension in encounter.get("extension", []):
        parts = {part["url"]: part for part in extension["extension"]}
        if extension["url"] == PERIOD:
            code = parts["classification"]["valueCoding"]["code"]
            periods.append((code, parts["period"]["valuePeriod"]))
        elif extension["url"] == UK_CORE:
            context = parts["legalStatusContext"]["valueCodeableConcept"]["coding"][0]["code"]
            status = parts["legalStatusClassification"]["valueCodeableConcept"]["coding"][0]
            contexts[context] = status["code"]
    return periods, contexts


def _stay(*messages: list[str]) -> MappedResource:
    (record,) = _map(*messages)
    (made,) = [made for made in record.resources if made.type == "Encounter"]
    return made


def test_each_message_reports_the_legal_status_it_is_about():
    periods, contexts = _legal(_stay(ADMIT).resource)
    assert periods == [("02", {"start": "2026-04-09T04:00:00+01:00"})]
    assert contexts == {"admission": "02"}
    periods, contexts = _legal(_stay(CHANGE).resource)
    assert periods == [("01", {"start": "2026-04-16T10:00:00+01:00"})] and contexts == {}
    periods, contexts = _legal(_stay(DISCHARGE).resource)
    # The last status ends with the stay when ZMH-4 does not say otherwise.
    assert periods == [
        ("01", {"start": "2026-04-16T10:00:00+01:00", "end": "2026-04-20T11:00:00+01:00"})
    ]
    assert contexts == {"discharge": "01"}


def test_the_stay_keeps_section_2_at_admission_informal_from_the_16th_and_at_discharge():
    # Applied as the pipeline does, in whatever order the three messages arrive.
    sent = [ADMIT, CHANGE, DISCHARGE]
    outcomes = set()
    for order in permutations(sent):
        stored, newest = None, -1
        for segments in order:
            position = sent.index(segments)
            written = merge_kept(_stay(segments), stored, stale=position < newest)
            stored = written if written is not None else stored
            newest = max(newest, position)
        outcomes.add(json.dumps(stored, sort_keys=True))
    (final,) = outcomes
    periods, contexts = _legal(json.loads(final))
    assert periods == [
        ("02", {"start": "2026-04-09T04:00:00+01:00", "end": "2026-04-16T10:00:00+01:00"}),
        ("01", {"start": "2026-04-16T10:00:00+01:00", "end": "2026-04-20T11:00:00+01:00"}),
    ]
    assert contexts == {"admission": "02", "discharge": "01"}


def test_a_legal_status_until_a_given_time_ends_then():
    periods, _ = _legal(
        _stay(
            message(
                "A04",
                pv1={2: "E", 3: "CRISIS-HUB^^^RV5"},
                extra=(_zmh("20^Section 136^MHA-LS", "20260412000000", "20260412093000"),),
            )
        ).resource
    )
    assert periods == [
        ("20", {"start": "2026-04-12T00:00:00+01:00", "end": "2026-04-12T09:30:00+01:00"})
    ]


def test_a_status_at_a_crisis_presentation_is_no_admission_status():
    made = _stay(
        message(
            "A04",
            pv1={2: "E", 3: "CRISIS-HUB^^^RV5"},
            extra=(_zmh("20^Section 136^MHA-LS", "20260412000000"),),
        )
    )
    assert _legal(made.resource)[1] == {}


def test_a_legal_status_without_since_when_has_no_period_and_says_so():
    (record,) = _map(message("A08", pv1=WARD, extra=(_zmh(SECTION_2, ""),)))
    assert _legal(_one(record, "Encounter")) == ([], {})
    assert record.warnings == ["ZMH-3 (since when) is empty, so the legal status has no period"]


def test_an_unknown_legal_status_fails_the_message_naming_zmh2():
    (record,) = _map(message("A01", pv1=WARD, extra=(_zmh("11^Section 11^MHA-LS", "20260409"),)))
    (error,) = record.errors
    assert "ZMH-2" in error and "'11' is not in value map 'mha-legal-status'" in error


def test_a_visit_without_zmh_has_no_legal_status():
    assert "extension" not in _one(_visit("LADYWELL-W1"), "Encounter")


# -- the people around a person --------------------------------------------------------------


def _nk1(number: int, name: str, relationship: str, phone: str, role: str) -> str:
    return fields("NK1", {1: str(number), 2: name, 3: relationship, 5: phone, 7: role})


SISTER = _nk1(1, "REILLY^MAIREAD", "SIS^Sister^HL70063", "020 7946 0999", "CAR^Carer^L")


def _people(*nk1: str, event: str = "A28", control: str = "RV5-1") -> MappedRecord:
    (record,) = _map(message(event, control=control, pd1=None, extra=nk1))
    assert record.ok, record.errors
    return record


def _related(record: MappedRecord) -> list[dict[str, Any]]:
    return [made.resource for made in record.resources if made.type == "RelatedPerson"]


def test_a_carer_is_a_related_person_with_relationship_role_and_phone():
    (sister,) = _related(_people(SISTER))
    assert sister["patient"] == {"reference": f"Patient?identifier={HUB_ID}/RV5/mrn|RV5A000123"}
    assert sister["active"] is True
    assert sister["name"] == [{"family": "Reilly", "given": ["Mairead"]}]
    assert sister["telecom"] == [{"system": "phone", "value": "020 7946 0999", "use": "home"}]
    kinship, role = sister["relationship"]
    assert kinship["coding"] == [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0063",
            "code": "SIS",
            "display": "Sister",
        },
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
            "code": "SIS",
            "display": "sister",
        },
    ]
    assert role["coding"] == [{"system": ROLE, "code": "carer", "display": "Carer"}]


def test_the_same_person_sent_again_is_the_same_related_person_whatever_their_nk1_number():
    first = _related(_people(SISTER))[0]["identifier"]
    again = _related(_people(SISTER.replace("NK1|1|", "NK1|3|"), event="A31", control="RV5-2"))
    assert again[0]["identifier"] == first
    assert first[0]["system"] == f"{HUB_ID}/RV5/related-person"
    assert first[0]["value"].startswith("RV5A000123-") and "REILLY" not in first[0]["value"]
    (other,) = _related(_people(SISTER.replace("MAIREAD", "SIOBHAN")))
    assert other["identifier"] != first


def test_one_person_in_two_nk1_is_one_related_person_with_both_roles():
    father = ("FINCH^JOHN", "FTH^Father^HL70063", "020 7946 0111")
    record = _people(
        _nk1(1, *father, "NOK^Next of kin^L"), _nk1(2, *father, "NP^Nominated person^L")
    )
    (person,) = _related(record)
    assert _codes(person["relationship"], ROLE) == ["next-of-kin", "nominated-person"]


def test_roles_repeated_in_nk1_7_are_each_a_relationship():
    (friend,) = _related(
        _people(
            _nk1(
                1,
                "OKONKWO^GRACE",
                "FND^Friend^HL70063",
                "07700 900222^PRN^CP",
                "CAR^Carer^L~EC^Emergency contact^L",
            )
        )
    )
    assert _codes(friend["relationship"], ROLE) == ["carer", "emergency-contact"]


def test_an_nk1_without_a_name_is_no_person_and_an_unknown_role_is_left_out_with_a_warning():
    record = _people(
        _nk1(1, "", "", "020 7946 0333", "EC^Emergency contact^L"),
        _nk1(2, "FINCH^ALICE", "CGV^Care giver^HL70063", "", "XX^Unknown^L"),
    )
    (alice,) = _related(record)
    assert _codes(alice["relationship"], ROLE) == []
    assert _codes(alice["relationship"], "http://terminology.hl7.org/CodeSystem/v2-0063") == ["CGV"]
    assert record.warnings == [
        "an NK1-7 contact role is not in slam-epr/maps/contact-role.yaml, so that role is left out"
    ]


# -- episodes of care ------------------------------------------------------------------------

EPISODE = {
    "episode_id": "EP-6002",
    "mrn": "RV5A000234",
    "nhs_number": "9990000026",
    "episode_type": "MEMBERSHIP",
    "status": "active",
    "team": {"code": "RV5-NCL247", "name": "North Central Lewisham 24/7"},
    "start": "2026-04-06",
    "end": "",
    "care_coordinator": None,
    "referral_source": "Caseload discharge",
    "updated_at": "2026-04-06T11:30:00Z",
}


def _episodes(*episodes: dict[str, Any]) -> list[MappedRecord]:
    data = b"".join(json.dumps(e).encode() + b"\n" for e in episodes)
    return map_bytes("slam-epr/episodes", data, "episodes.jsonl")


def test_a_membership_episode_says_who_when_which_team_and_where_the_referral_came_from():
    (record,) = _episodes(EPISODE)
    episode = _one(record, "EpisodeOfCare")
    assert episode["identifier"] == [{"system": f"{HUB_ID}/RV5/episode", "value": "EP-6002"}]
    assert (episode["status"], episode["period"]) == ("active", {"start": "2026-04-06"})
    assert _codes(episode["type"], f"{HUB_CODES}/episode-type") == ["membership"]
    assert episode["patient"] == {"reference": f"Patient?identifier={HUB_ID}/RV5/mrn|RV5A000234"}
    assert episode["managingOrganization"]["identifier"]["value"] == "RV5"
    assert "careManager" not in episode  # a member has no care coordinator
    assert episode["team"] == [
        {
            "type": "CareTeam",
            "identifier": {"system": f"{HUB_ID}/RV5/team", "value": "RV5-NCL247"},
            "display": "North Central Lewisham 24/7",
        }
    ]
    assert episode["extension"] == [
        {
            "url": "https://fhir.hub.example/StructureDefinition/episode-referral-source",
            "valueCoding": {
                "system": f"{HUB_CODES}/referral-source",
                "code": "caseload-discharge",
                "display": "Caseload discharge",
            },
        }
    ]
    assert record.timestamp == "2026-04-06T11:30:00+00:00"


def test_a_finished_caseload_has_its_end_and_care_manager():
    caseload = {
        **EPISODE,
        "episode_id": "EP-6001",
        "episode_type": "CASELOAD",
        "status": "finished",
        "end": "2026-04-06",
        "care_coordinator": {"id": "C1234567", "name": "Kwame Mensah"},
    }
    episode = _one(_episodes(caseload)[0], "EpisodeOfCare")
    assert episode["period"] == {"start": "2026-04-06", "end": "2026-04-06"}
    assert episode["careManager"] == {
        "identifier": {"system": f"{HUB_ID}/RV5/staff", "value": "C1234567"},
        "type": "Practitioner",
        "display": "Kwame Mensah",
    }


def test_an_unknown_referral_source_keeps_the_episode_and_says_so():
    (record,) = _episodes({**EPISODE, "referral_source": "Community paediatrics"})
    assert "extension" not in _one(record, "EpisodeOfCare")
    (warning,) = record.warnings
    assert "Community paediatrics" in warning


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("episode_type", "RESPITE", "'RESPITE' is not in value map 'slam-epr/episode-type'"),
        ("status", "on hold", "'on hold' is not in value map 'slam-epr/episode-status'"),
        ("mrn", "", "is required but empty"),
    ],
)
def test_an_episode_the_mapping_cannot_read_fails_alone_naming_the_field(field, value, says):
    good, bad = _episodes(EPISODE, {**EPISODE, "episode_id": "EP-X", field: value})
    assert good.ok and not bad.ok
    (error,) = bad.errors
    assert field in error and says in error
