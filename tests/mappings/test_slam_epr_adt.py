"""slam-epr/adt: the trust EPR's HL7 v2.4 ADT feed (sources README 1a) to Patient and Encounter
(the care model's Location, legal status and RelatedPerson: test_slam_epr_care_model.py).

Each test maps a few synthetic messages through the real mapping in mappings/ and checks specific
facts, independently of the worked examples; every produced resource is also checked as valid R4
and against profiles/.
"""

from __future__ import annotations

from typing import Any

import pytest

from hub.mapping import MappedRecord
from tests.mappings._hl7 import OKAFOR_IDS
from tests.mappings._hl7 import message as _message
from tests.mappings._mapped import map_bytes

HUB_ID = "https://fhir.hub.example/Id"
MRN_SYSTEM = f"{HUB_ID}/RV5/mrn"
VISIT_SYSTEM = f"{HUB_ID}/RV5/visit-number"
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ETHNIC_EXTENSION = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
VERIFICATION_EXTENSION = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
)
PATIENT_123 = {"reference": f"Patient?identifier={MRN_SYSTEM}|RV5A000123"}


def _map(*messages: list[str], file: str = "adt.hl7", ending: str = "\r") -> list[MappedRecord]:
    data = "".join(ending.join(segments) + ending for segments in messages).encode()
    return map_bytes("slam-epr/adt", data, file)


def _resources(message: list[str]) -> dict[str, dict[str, Any]]:
    """The one message's resources by type (at most one of each)."""
    (record,) = _map(message)
    assert record.ok, record.errors
    found = {made.type: made.resource for made in record.resources}
    assert len(found) == len(record.resources)
    return found


def _patient(**pid: str) -> dict[str, Any]:
    return _resources(_message("A28", pid={int(k[1:]): v for k, v in pid.items()}))["Patient"]


def _encounter(event: str = "A04", **pv1: str) -> dict[str, Any]:
    resources = _resources(_message(event, pv1={int(k[1:]): v for k, v in pv1.items()}))
    return resources["Encounter"]


def _errors(message: list[str]) -> list[str]:
    (record,) = _map(message)
    assert not record.ok and record.resources == [] and record.instructions == []
    return record.errors


# -- the patient -----------------------------------------------------------------------------


def test_patient_is_keyed_by_the_mrn_and_names_its_source():
    patient = _patient()
    assert patient["identifier"][0] == {
        "system": MRN_SYSTEM,
        "value": "RV5A000123",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
        },
    }
    assert patient["meta"] == {"source": "https://fhir.hub.example/source/RV5#slam-epr/adt"}


def test_every_pid3_identifier_is_kept_in_any_order():
    for ids in (OKAFOR_IDS, "RV5A000123^^^RV5^MR~9990000018^^^NHS^NH"):
        identifiers = _patient(f3=ids)["identifier"]
        assert [(i["system"], i["value"]) for i in identifiers] == [
            (MRN_SYSTEM, "RV5A000123"),
            (NHS_SYSTEM, "9990000018"),
        ]


def test_nhs_number_failing_modulus_11_is_kept_flagged_and_never_under_the_nhs_system():
    identifiers = _patient(f3="9990000019^^^NHS^NH~RV5A000123^^^RV5^MR")["identifier"]
    assert [(i["system"], i["value"]) for i in identifiers] == [
        (MRN_SYSTEM, "RV5A000123"),
        (f"{HUB_ID}/invalid-nhs-number", "9990000019"),
    ]


def test_missing_nhs_number_leaves_the_mrn_alone():
    identifiers = _patient(f3="RV5A000123^^^RV5^MR")["identifier"]
    assert [i["system"] for i in identifiers] == [MRN_SYSTEM]


def test_nhs_number_status_from_pid32_is_the_uk_core_verification_extension():
    (nhs,) = [i for i in _patient(f32="NSTS01")["identifier"] if i["system"] == NHS_SYSTEM]
    assert nhs["extension"] == [
        {
            "url": VERIFICATION_EXTENSION,
            "valueCodeableConcept": {
                "coding": [
                    {
                        "system": "https://fhir.hl7.org.uk/CodeSystem/"
                        "UKCore-NHSNumberVerificationStatusEngland",
                        "code": "01",
                        "display": "Number present and verified",
                    }
                ]
            },
        }
    ]


@pytest.mark.parametrize("pid32", ["", "AL"])
def test_nhs_number_without_an_nsts_code_has_no_verification_extension(pid32: str):
    (nhs,) = [i for i in _patient(f32=pid32)["identifier"] if i["system"] == NHS_SYSTEM]
    assert "extension" not in nhs


def test_name_is_title_cased_with_middle_name_as_second_given_and_prefix():
    assert _patient()["name"] == [
        {"family": "Okafor", "given": ["Adaeze", "Ngozi"], "prefix": ["Ms"]}
    ]
    assert _patient(f5="ORTEGA-DÍAZ^MARISOL^^^MS")["name"] == [
        {"family": "Ortega-Díaz", "given": ["Marisol"], "prefix": ["Ms"]}
    ]


def test_escape_sequences_are_decoded_in_names_and_addresses():
    patient = _patient(
        f5="FINCH\\T\\HALE^ROSA^^^MRS",
        f11="Flat 2\\F\\3^Rose \\T\\ Crown Yard^LONDON^^SE14 6AB^GBR^H"
        "~c\\S\\o Block A\\R\\B\\E\\C^^LONDON^^SE14 6AB^GBR^C",
    )
    assert patient["name"][0]["family"] == "Finch&Hale"
    assert [a["line"] for a in patient["address"]] == [
        ["Flat 2|3", "Rose & Crown Yard"],
        ["c^o Block A~B\\C"],
    ]
    assert [a["use"] for a in patient["address"]] == ["home", "temp"]


def test_address_has_lines_city_normalised_postcode_country_and_home_use():
    assert _patient(f11="Flat 3^12 Brockley Rise^LONDON^^se42ab^GBR^H")["address"] == [
        {
            "use": "home",
            "line": ["Flat 3", "12 Brockley Rise"],
            "city": "London",
            "postalCode": "SE4 2AB",
            "country": "GBR",
        }
    ]


@pytest.mark.parametrize(
    ("xtn", "contact"),
    [
        ("07700 900123^PRN^CP", {"system": "phone", "value": "07700 900123", "use": "mobile"}),
        ("020 7946 0412^PRN^PH", {"system": "phone", "value": "020 7946 0412", "use": "home"}),
        ("020 7946 0412", {"system": "phone", "value": "020 7946 0412", "use": "home"}),
        ("020 7946 0999^WPN^PH", {"system": "phone", "value": "020 7946 0999", "use": "work"}),
        (
            "^NET^Internet^ada@example.org",
            {"system": "email", "value": "ada@example.org", "use": "home"},
        ),
    ],
)
def test_telecom_system_and_use_come_from_xtn_equipment_and_use(xtn: str, contact: dict[str, str]):
    assert _patient(f13=xtn)["telecom"] == [contact]


def test_ethnic_category_letter_is_the_uk_core_extension():
    assert _patient(f22="N")["extension"] == [
        {
            "url": ETHNIC_EXTENSION,
            "valueCodeableConcept": {
                "coding": [
                    {
                        "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland",
                        "code": "N",
                        "display": "Black or Black British - African",
                    }
                ]
            },
        }
    ]
    assert "extension" not in _patient(f22="")


def test_unknown_ethnic_category_letter_fails_the_message_naming_pid22():
    (error,) = _errors(_message("A28", pid={22: "X"}))
    assert "PID-22" in error and "'X' is not in value map 'ethnic-category'" in error


@pytest.mark.parametrize(
    ("sex", "gender"),
    [
        ("M", "male"),
        ("F", "female"),
        ("O", "other"),
        ("U", "unknown"),
        ("A", "other"),
        ("N", "other"),
    ],
)
def test_gender_from_pid8_follows_the_v2_to_fhir_map(sex: str, gender: str):
    assert _patient(f8=sex)["gender"] == gender


def test_birth_date_keeps_only_the_date_when_a_time_of_birth_is_sent():
    assert _patient(f7="19850314")["birthDate"] == "1985-03-14"
    assert _patient(f7="198503140630")["birthDate"] == "1985-03-14"


def test_date_of_death_wins_over_the_death_indicator():
    dead = _patient(f29="20260311", f30="Y")
    assert dead["deceasedDateTime"] == "2026-03-11" and "deceasedBoolean" not in dead
    assert _patient(f30="Y")["deceasedBoolean"] is True
    alive = _patient()
    assert "deceasedBoolean" not in alive and "deceasedDateTime" not in alive


def test_gp_practice_and_gp_are_logical_references_by_national_code():
    assert _patient()["generalPractitioner"] == [
        {
            "type": "Organization",
            "identifier": {"system": ODS_SYSTEM, "value": "G85901"},
            "display": "Ladywell Medical Centre",
        },
        {
            "type": "Practitioner",
            "display": "Raj Patel",
            "identifier": {"system": "https://fhir.hl7.org.uk/Id/gmp-number", "value": "G8123456"},
        },
    ]


def test_gp_code_that_is_not_a_gmp_number_is_not_claimed_to_be_one():
    message = _message("A28", pd1="PD1|||SMITH \\T\\ PARTNERS^^G85902|LOCUM1^OWUSU^GRACE")
    practice, gp = _resources(message)["Patient"]["generalPractitioner"]
    assert practice["display"] == "Smith & Partners"
    assert gp == {"type": "Practitioner", "display": "Grace Owusu"}


def test_a_bad_date_of_birth_fails_alone_naming_the_message_and_pid7():
    good = _message("A28", control="RV5-1")
    bad = _message("A28", control="RV5-2", pid={7: "19851332"})
    first, failed, last = _map(good, bad, _message("A31", control="RV5-3"))
    assert first.ok and last.ok
    assert failed.name == "adt.hl7 line 5 (RV5-2)"  # MSH, EVN, PID, PD1 before it
    (error,) = failed.errors
    assert error.startswith("Patient.birthDate from PID-7") and "'19851332'" in error
    assert "not a real date" in error
    assert failed.resources == []


def test_message_without_an_mrn_fails_naming_the_key():
    (error,) = _errors(_message("A28", pid={3: "9990000018^^^NHS^NH"}))
    assert error.startswith("Patient key: PID-3[type=MR].1 is empty")


# -- the record ------------------------------------------------------------------------------


def test_record_is_named_by_msh10_and_dated_by_evn2_else_msh7():
    (recorded,) = _map(_message(control="RV5-77", made="20260412100000", recorded="20260412093000"))
    assert recorded.name == "adt.hl7 line 1 (RV5-77)"
    assert recorded.timestamp == "2026-04-12T09:30:00+01:00"
    (made,) = _map(_message(made="20260112100000", recorded=None))
    assert made.timestamp == "2026-01-12T10:00:00+00:00"


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_lf_and_crlf_segment_endings_give_the_same_result_as_cr(ending: str):
    messages = [_message("A01", pv1={2: "I"}), _message("A03", pv1={2: "I", 45: "20260420110000"})]
    expected = [(r.name, [m.resource for m in r.resources]) for r in _map(*messages)]
    actual = [(r.name, [m.resource for m in r.resources]) for r in _map(*messages, ending=ending)]
    assert actual == expected


def test_unknown_segments_and_segments_after_pv1_are_ignored():
    plain = _resources(_message("A01", pv1={2: "I"}))
    noisy = _message(
        "A01",
        pv1={2: "I"},
        extra=(
            "PV2|||^Assessment",
            "ZU1|1|NOT-KNOWN",
            "OBX|1|ST|NOTE^Note^L||Not for the shared record",
        ),
    )
    noisy.insert(3, "ZXY|1|SOMETHING LOCAL")
    assert _resources(noisy) == plain


def test_mapping_the_same_message_again_gives_identical_resources():
    message = _message("A03", pv1={2: "I", 45: "20260420110000"})
    (first,) = _map(message)
    (again,) = _map(message)
    assert first.ok and [m.resource for m in first.resources] == [
        m.resource for m in again.resources
    ]
    assert [m.conditional_url for m in first.resources] == [
        f"Patient?identifier={MRN_SYSTEM}|RV5A000123",
        f"Location?identifier={HUB_ID}/RV5/point-of-care|HEATHER-CLOSE",
        f"Encounter?identifier={VISIT_SYSTEM}|V0000501",
    ]


# -- the encounter ---------------------------------------------------------------------------


def test_encounter_is_keyed_by_visit_number_for_the_patient_and_the_trust():
    encounter = _encounter()
    assert encounter["identifier"] == [
        {
            "system": VISIT_SYSTEM,
            "value": "V0000501",
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "VN"}
                ]
            },
        }
    ]
    assert encounter["subject"] == PATIENT_123
    assert encounter["serviceProvider"] == {
        "type": "Organization",
        "identifier": {"system": ODS_SYSTEM, "value": "RV5"},
        "display": "South London and Maudsley NHS Foundation Trust",
    }


def test_attending_clinician_is_a_participant_by_staff_id():
    assert _encounter()["participant"] == [
        {
            "type": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "ATND",
                            "display": "attender",
                        }
                    ]
                }
            ],
            "individual": {
                "type": "Practitioner",
                "display": "Dr Kwame Mensah",
                "identifier": {"system": f"{HUB_ID}/RV5/staff", "value": "C1234567"},
            },
        }
    ]


@pytest.mark.parametrize(
    ("event", "end", "status", "period"),
    [
        ("A01", "", "in-progress", {"start": "2026-04-12T09:30:00+01:00"}),
        ("A04", "", "in-progress", {"start": "2026-04-12T09:30:00+01:00"}),
        ("A08", "", "in-progress", {"start": "2026-04-12T09:30:00+01:00"}),
        (
            "A08",
            "20260420110000",
            "finished",
            {"start": "2026-04-12T09:30:00+01:00", "end": "2026-04-20T11:00:00+01:00"},
        ),
        (
            "A03",
            "20260420110000",
            "finished",
            {"start": "2026-04-12T09:30:00+01:00", "end": "2026-04-20T11:00:00+01:00"},
        ),
        ("A11", "", "entered-in-error", {"start": "2026-04-12T09:30:00+01:00"}),
        # A13 cancels the discharge: the end it may still carry is dropped.
        ("A13", "20260420110000", "in-progress", {"start": "2026-04-12T09:30:00+01:00"}),
    ],
)
def test_status_and_period_follow_the_trigger_event_and_pv1_45(
    event: str, end: str, status: str, period: dict[str, str]
):
    encounter = _encounter(event, f45=end)
    assert (encounter["status"], encounter["period"]) == (status, period)


@pytest.mark.parametrize(
    ("patient_class", "point_of_care", "code", "display"),
    [
        ("I", "GUEST-BED-2^^^RV5", "IMP", "inpatient encounter"),
        ("E", "CRISIS-HUB^^^RV5", "EMER", "emergency"),
        ("O", "HEATHER-CLOSE^^^RV5", "AMB", "ambulatory"),
        ("O", "HOME^^^RV5", "HH", "home health"),
    ],
)
def test_class_from_pv1_2_with_a_community_contact_at_home_a_home_visit(
    patient_class: str, point_of_care: str, code: str, display: str
):
    encounter = _encounter(f2=patient_class, f3=point_of_care)
    assert encounter["class"] == {"system": ACT_CODE, "code": code, "display": display}


def test_patient_class_without_a_v3_code_fails_naming_pv1_2():
    (error,) = _errors(_message("A04", pv1={2: "R"}))
    assert error.startswith("Encounter.class from ") and "PV1-2" in error
    assert "'R' is not in value map 'slam-epr/patient-class'" in error


@pytest.mark.parametrize(
    ("event", "pv1"),
    [
        ("A08", {2: "N", 19: "^^^RV5^VN"}),  # an A08 without a visit
        ("A08", {2: "O", 19: ""}),  # no visit number
        ("A28", {2: "N"}),
        ("A31", {2: "O"}),  # person events never make an Encounter
    ],
)
def test_no_encounter_without_a_visit(event: str, pv1: dict[int, str]):
    assert set(_resources(_message(event, pv1=pv1))) == {"Patient"}


def test_a08_a28_a31_update_the_patient_only():
    for event in ("A08", "A28", "A31"):
        (record,) = _map(_message(event, pid={11: "17 Manor Avenue^^LONDON^^SE4 1PE^GBR^H"}))
        (patient,) = [m.resource for m in record.resources]
        assert patient["address"][0]["line"] == ["17 Manor Avenue"]


# -- merges ----------------------------------------------------------------------------------


def test_a40_hands_on_a_merge_and_still_makes_the_surviving_patient():
    (record,) = _map(
        _message(
            "A40",
            pid={3: "9990000077^^^NHS^NH~RV5A000456^^^RV5^MR", 5: "BROOKS^DANIEL^^^MR"},
            mrg="RV5A000777^^^RV5^MR",
        )
    )
    assert record.ok
    assert record.instructions == [
        {
            "kind": "merge",
            "retired": {"system": MRN_SYSTEM, "value": "RV5A000777"},
            "surviving": {"system": MRN_SYSTEM, "value": "RV5A000456"},
        }
    ]
    (patient,) = [m.resource for m in record.resources]
    assert patient["identifier"][0]["value"] == "RV5A000456"


def test_a40_without_a_retired_mrn_fails():
    (error,) = _errors(_message("A40", mrg="9990000077^^^NHS^NH"))
    assert "MRG-1[type=MR].1" in error and "required" in error


def test_other_events_hand_on_no_instruction():
    (record,) = _map(_message("A08", mrg="RV5A000777^^^RV5^MR"))
    assert record.ok and record.instructions == []
