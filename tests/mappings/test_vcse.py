"""The VCSE mappings (mappings/vcse/): clients, sessions, support plans and SWEMWBS wellbeing.

Each test maps a small CSV written here through the real mappings folder and checks specific
facts, independently of the worked examples' expected files.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from hub.fhir import validate_resource
from hub.mapping import MappedRecord, MappingConfigError, MappingSet
from hub.validation import Profiles
from tests.mappings._mapped import map_bytes

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "mappings"
EXAMPLES = MAPPINGS / "vcse" / "examples"
HUB_ID = "https://fhir.hub.example/Id"

CLIENTS_HEADER = (
    "org_id,client_ref,first_name,last_name,date_of_birth,gender,postcode,nhs_number,phone,"
    "email,ethnicity,consent_to_share,consent_date,consent_withdrawn_date,referral_source,"
    "registered_date"
)
SESSIONS_HEADER = (
    "org_id,session_id,client_ref,session_date,start_time,duration_minutes,session_type,"
    "delivery_mode,worker,notes"
)
PLANS_HEADER = "org_id,plan_id,client_ref,title,status,start_date,review_date,goals,worker"
WELLBEING_HEADER = "org_id,assessment_id,client_ref,completed_date,q1,q2,q3,q4,q5,q6,q7"


@pytest.fixture(scope="module")
def mappings() -> MappingSet:
    return MappingSet(MAPPINGS)


@pytest.fixture(scope="module")
def profiles() -> Profiles:
    return Profiles.load(ROOT / "profiles")


def run(mappings: MappingSet, name: str, header: str, *rows: str) -> list[MappedRecord]:
    text = "\r\n".join([header, *rows]) + "\r\n"
    return map_bytes(name, text.encode("utf-8"), "in.csv")


def client_row(
    client_ref: str = "C-1",
    *,
    org: str = "LEW-MIND",
    first: str = "Ada",
    last: str = "Okafor",
    dob: str = "14/03/1985",
    gender: str = "Female",
    postcode: str = "SE4 2AB",
    nhs: str = "",
    phone: str = "",
    email: str = "",
    ethnicity: str = "",
    consent: str = "Y",
    consent_date: str = "02/03/2026",
    withdrawn: str = "",
) -> str:
    cells = [org, client_ref, first, last, dob, gender, postcode, nhs, phone, email, ethnicity]
    cells += [consent, consent_date, withdrawn, "Self", "02/03/2026"]
    return ",".join(cells)


def session_row(
    session_id: str = "S-1",
    *,
    org: str = "LEW-MIND",
    client_ref: str = "C-1",
    date: str = "10/04/2026",
    time: str = "14:00",
    duration: str = "60",
    session_type: str = "Peer support",
    mode: str = "Face to face",
    worker: str = "J. Williams",
    notes: str = "",
) -> str:
    cells = [org, session_id, client_ref, date, time, duration, session_type, mode, worker, notes]
    return ",".join(cells)


def answers_row(*answers: str, assessment: str = "W-1", date: str = "10/04/2026") -> str:
    return ",".join(["LEW-MIND", assessment, "C-1", date, *answers])


def only(record: MappedRecord, resource_type: str) -> dict:
    assert record.ok, record.errors or record.withheld
    found = [r.resource for r in record.resources if r.type == resource_type]
    assert len(found) == 1, [r.type for r in record.resources]
    return found[0]


def items(questionnaire_response: dict) -> dict[str, object]:
    return {
        item["linkId"]: next(iter(item["answer"][0].values()))
        for item in questionnaire_response["item"]
    }


# -- clients: Patient ------------------------------------------------------------------------


def test_consented_client_becomes_a_patient_keyed_by_the_organisations_client_ref(mappings):
    (record,) = run(mappings, "vcse/clients", CLIENTS_HEADER, client_row("C-000417"))
    patient = only(record, "Patient")
    assert patient["identifier"][0] == {
        "system": f"{HUB_ID}/LEW-MIND/client-ref",
        "value": "C-000417",
    }
    assert patient["meta"]["source"] == "https://fhir.hub.example/source/LEW-MIND#vcse/clients"
    assert patient["name"] == [{"family": "Okafor", "given": ["Ada"]}]
    assert patient["birthDate"] == "1985-03-14"
    assert record.name == "in.csv line 2 (LEW-MIND/C-000417)"


def test_client_without_nhs_number_is_still_a_patient(mappings):
    (record,) = run(mappings, "vcse/clients", CLIENTS_HEADER, client_row(nhs=""))
    patient = only(record, "Patient")
    assert [i["system"] for i in patient["identifier"]] == [f"{HUB_ID}/LEW-MIND/client-ref"]


def test_nhs_number_written_with_spaces_is_normalised(mappings):
    (record,) = run(mappings, "vcse/clients", CLIENTS_HEADER, client_row(nhs="999 000 0018"))
    assert {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"} in only(
        record, "Patient"
    )["identifier"]


@pytest.mark.parametrize("mangled", ["9.99E+09", "9990000019"])
def test_mangled_nhs_number_is_kept_flagged_and_never_under_the_nhs_number_system(
    mappings, mangled
):
    (record,) = run(mappings, "vcse/clients", CLIENTS_HEADER, client_row(nhs=mangled))
    identifiers = only(record, "Patient")["identifier"]
    assert {"system": f"{HUB_ID}/invalid-nhs-number", "value": mangled} in identifiers
    assert not [i for i in identifiers if i["system"] == "https://fhir.nhs.uk/Id/nhs-number"]


@pytest.mark.parametrize(
    ("written", "expected"),
    [("se64ru", "SE6 4RU"), ("  se6   4RU ", "SE6 4RU"), ("SE13 7QD", "SE13 7QD")],
)
def test_postcode_in_any_case_and_spacing_is_normalised(mappings, written, expected):
    (record,) = run(mappings, "vcse/clients", CLIENTS_HEADER, client_row(postcode=written))
    assert only(record, "Patient")["address"] == [{"postalCode": expected}]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Female", "female"),
        ("male", "male"),
        (" Non-binary ", "other"),
        ("PREFER NOT TO SAY", "unknown"),
    ],
)
def test_gender_text_follows_the_hub_decision_ignoring_case(mappings, written, expected):
    (record,) = run(mappings, "vcse/clients", CLIENTS_HEADER, client_row(gender=written))
    assert only(record, "Patient")["gender"] == expected


def test_blank_gender_is_left_out(mappings):
    (record,) = run(mappings, "vcse/clients", CLIENTS_HEADER, client_row(gender=""))
    assert "gender" not in only(record, "Patient")


def test_unknown_gender_text_fails_the_client_naming_the_field(mappings):
    (record,) = run(mappings, "vcse/clients", CLIENTS_HEADER, client_row(gender="Woman"))
    assert not record.ok and record.resources == []
    assert record.errors == [
        "Patient.gender from gender | map('gender') | code: 'Woman' is not in value map "
        "'vcse/gender'"
    ]


def test_known_ethnicity_label_is_coded_and_kept_as_written(mappings):
    (record,) = run(
        mappings,
        "vcse/clients",
        CLIENTS_HEADER,
        client_row(ethnicity="black or black british - african"),
    )
    (extension,) = only(record, "Patient")["extension"]
    assert extension == {
        "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
        "valueCodeableConcept": {
            "coding": [
                {
                    "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland",
                    "code": "N",
                    "display": "Black or Black British - African",
                }
            ],
            "text": "black or black british - african",
        },
    }


def test_unknown_ethnicity_label_is_kept_as_text_never_guessed_and_reported(mappings):
    (record,) = run(mappings, "vcse/clients", CLIENTS_HEADER, client_row(ethnicity="Black British"))
    (extension,) = only(record, "Patient")["extension"]
    assert extension["valueCodeableConcept"] == {"text": "Black British"}
    (warning,) = record.warnings
    assert "not an NHS ethnic category label" in warning and "kept as text" in warning


def test_a_known_label_or_a_withdrawn_client_reports_nothing_about_ethnicity(mappings):
    known = client_row("C-1", ethnicity="African")
    withdrawn = client_row("C-2", ethnicity="Black British", withdrawn="05/04/2026")
    records = run(mappings, "vcse/clients", CLIENTS_HEADER, known, withdrawn)
    assert [r.warnings for r in records] == [[], []]


def test_blank_ethnicity_gives_no_extension(mappings):
    (record,) = run(mappings, "vcse/clients", CLIENTS_HEADER, client_row(ethnicity=""))
    assert "extension" not in only(record, "Patient")


def test_names_in_one_case_are_title_cased_and_mixed_case_is_kept(mappings):
    rows = [
        client_row("C-1", first="ADA", last="OKAFOR"),
        client_row("C-2", first="kofi", last="boateng"),
        client_row("C-3", first="Marisol", last="Ortega-Díaz"),
        client_row("C-4", first="Ruth", last="McDonald"),
    ]
    names = [
        only(r, "Patient")["name"][0] for r in run(mappings, "vcse/clients", CLIENTS_HEADER, *rows)
    ]
    assert names == [
        {"family": "Okafor", "given": ["Ada"]},
        {"family": "Boateng", "given": ["Kofi"]},
        {"family": "Ortega-Díaz", "given": ["Marisol"]},
        {"family": "McDonald", "given": ["Ruth"]},
    ]


def test_cells_starting_with_formula_characters_are_kept_exactly_as_text(mappings):
    row = client_row(first="@Ama", last="=Mensah", phone="+44 7700 900456", email="-x@example.org")
    (record,) = run(mappings, "vcse/clients", CLIENTS_HEADER, row)
    patient = only(record, "Patient")
    assert patient["name"] == [{"family": "=Mensah", "given": ["@Ama"]}]
    assert patient["telecom"] == [
        {"system": "phone", "value": "+44 7700 900456"},
        {"system": "email", "value": "-x@example.org"},
    ]


def test_a_formula_in_a_cell_is_never_evaluated(mappings):
    (record,) = run(
        mappings,
        "vcse/clients",
        CLIENTS_HEADER,
        client_row(last='"=HYPERLINK(""http://evil.example"",""x"")"', phone="=1+1"),
    )
    patient = only(record, "Patient")
    assert patient["name"][0]["family"] == '=HYPERLINK("http://evil.example","x")'
    assert patient["telecom"] == [{"system": "phone", "value": "=1+1"}]


def test_bom_blank_lines_and_trailing_spaces_are_tolerated(mappings):
    text = (
        "\ufeff" + CLIENTS_HEADER + "\r\n"
        "\r\n" + client_row("C-1  ", first="Grace   ", dob=" 05/11/1979 ", consent="Y ") + "\r\n"
        ",,,,,,,,,,,,,,,\r\n"
        "\n" + client_row("C-2") + "\n"
    )
    records = list(mappings.get("vcse/clients").read(io.BytesIO(text.encode()), "in.csv"))
    assert [r.name for r in records] == [
        "in.csv line 3 (LEW-MIND/C-1)",
        "in.csv line 6 (LEW-MIND/C-2)",
    ]
    patient = only(records[0], "Patient")
    assert patient["identifier"][0]["value"] == "C-1"
    assert patient["name"] == [{"family": "Okafor", "given": ["Grace"]}]
    assert patient["birthDate"] == "1979-11-05"


def test_uk_dates_and_iso_dates_are_both_read(mappings):
    rows = [client_row("C-1", dob="1/5/1980"), client_row("C-2", dob="1980-05-01")]
    records = run(mappings, "vcse/clients", CLIENTS_HEADER, *rows)
    assert [only(r, "Patient")["birthDate"] for r in records] == ["1980-05-01", "1980-05-01"]


def test_impossible_date_fails_only_its_client_naming_line_field_and_reason(mappings):
    rows = [client_row("C-1", dob="31/02/1990"), client_row("C-2")]
    bad, good = run(mappings, "vcse/clients", CLIENTS_HEADER, *rows)
    assert good.ok
    assert not bad.ok and bad.resources == []
    assert bad.name == "in.csv line 2 (LEW-MIND/C-1)"
    assert bad.errors == [
        "Patient.birthDate from date_of_birth | date('%d/%m/%Y', '%Y-%m-%d'): '31/02/1990' does "
        "not fit the format %d/%m/%Y or %Y-%m-%d"
    ]


# -- clients: consent --------------------------------------------------------------------------


def test_consent_y_gives_an_active_permit_consent_for_the_patient(mappings):
    (record,) = run(mappings, "vcse/clients", CLIENTS_HEADER, client_row("C-000417"))
    consent = only(record, "Consent")
    assert consent["identifier"] == [{"system": f"{HUB_ID}/LEW-MIND/consent", "value": "C-000417"}]
    assert consent["status"] == "active"
    assert consent["scope"]["coding"][0]["code"] == "patient-privacy"
    assert consent["category"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "code": "INFA",
        "display": "information access",
    }
    assert consent["patient"] == {
        "reference": f"Patient?identifier={HUB_ID}/LEW-MIND/client-ref|C-000417"
    }
    assert consent["dateTime"] == "2026-03-02"
    assert consent["organization"] == [
        {
            "type": "Organization",
            "identifier": {"system": f"{HUB_ID}/vcse-organisation", "value": "LEW-MIND"},
        }
    ]
    assert consent["policyRule"]["coding"][0]["code"] == "OPTIN"
    assert consent["provision"]["type"] == "permit"
    assert consent["provision"]["period"] == {"start": "2026-03-02"}
    assert consent["provision"]["purpose"][0]["code"] == "TREAT"


@pytest.mark.parametrize("answer", ["N", "", "n", "Maybe"])
def test_client_who_has_not_agreed_to_share_is_withheld_entirely(mappings, answer):
    (record,) = run(mappings, "vcse/clients", CLIENTS_HEADER, client_row(consent=answer))
    assert record.withheld == "no consent to share with the neighbourhood team"
    assert record.resources == [] and record.errors == []


def test_lower_case_y_is_consent(mappings):
    (record,) = run(mappings, "vcse/clients", CLIENTS_HEADER, client_row(consent="y"))
    assert only(record, "Consent")["status"] == "active"


def test_kwabena_asante_of_the_example_export_is_withheld(mappings):
    with (EXAMPLES / "clients.csv").open("rb") as stream:
        records = list(mappings.get("vcse/clients").read(stream, "clients.csv"))
    kwabena = [r for r in records if r.record_id == "CATFORD-HSG/H-2201"]
    assert [r.withheld for r in kwabena] == ["no consent to share with the neighbourhood team"]
    assert "Asante" not in json.dumps([r.summary() for r in records])


@pytest.mark.parametrize("answer", ["Y", "N"])
def test_withdrawn_consent_gives_only_an_inactive_consent_ending_on_the_withdrawal(
    mappings, answer
):
    row = client_row("C-9", consent=answer, consent_date="01/02/2026", withdrawn="20/04/2026")
    (record,) = run(mappings, "vcse/clients", CLIENTS_HEADER, row)
    assert [r.type for r in record.resources] == ["Consent"]
    consent = only(record, "Consent")
    assert consent["status"] == "inactive"
    assert consent["provision"]["period"] == {"start": "2026-02-01", "end": "2026-04-20"}
    assert consent["patient"] == {
        "reference": f"Patient?identifier={HUB_ID}/LEW-MIND/client-ref|C-9"
    }
    # The same Consent as when the client agreed: the withdrawal updates it, never duplicates.
    (agreed,) = run(mappings, "vcse/clients", CLIENTS_HEADER, client_row("C-9"))
    assert [r.conditional_url for r in agreed.resources if r.type == "Consent"] == [
        r.conditional_url for r in record.resources
    ]


def test_a_withdrawal_is_newer_than_the_consent_it_ends(mappings):
    agreed_row = client_row("C-9", consent_date="01/02/2026")
    withdrawn_row = client_row("C-9", consent_date="01/02/2026", withdrawn="20/04/2026")
    agreed, withdrawn = run(mappings, "vcse/clients", CLIENTS_HEADER, agreed_row, withdrawn_row)
    # The pipeline never lets an older record overwrite a newer one: a delayed export from
    # before the withdrawal cannot turn the Consent back on.
    assert (agreed.timestamp, withdrawn.timestamp) == ("2026-02-01", "2026-04-20")


# -- sessions ----------------------------------------------------------------------------------


def test_session_becomes_a_finished_encounter_for_the_client(mappings):
    (record,) = run(mappings, "vcse/sessions", SESSIONS_HEADER, session_row("S-0091"))
    encounter = only(record, "Encounter")
    assert encounter["identifier"] == [{"system": f"{HUB_ID}/LEW-MIND/session", "value": "S-0091"}]
    assert encounter["status"] == "finished"
    assert encounter["subject"] == {
        "reference": f"Patient?identifier={HUB_ID}/LEW-MIND/client-ref|C-1"
    }
    assert encounter["participant"][0]["individual"] == {"display": "J. Williams"}
    assert encounter["serviceProvider"]["identifier"] == {
        "system": f"{HUB_ID}/vcse-organisation",
        "value": "LEW-MIND",
    }
    assert encounter["length"] == {
        "value": 60,
        "unit": "min",
        "system": "http://unitsofmeasure.org",
        "code": "min",
    }


def test_session_asks_the_pipeline_for_the_clients_consent(mappings):
    (record,) = run(mappings, "vcse/sessions", SESSIONS_HEADER, session_row(client_ref="C-7"))
    assert record.instructions == [
        {
            "kind": "require-consent",
            "consent": {"system": f"{HUB_ID}/LEW-MIND/consent", "value": "C-7"},
        }
    ]


@pytest.mark.parametrize(
    ("mode", "code"),
    [("Face to face", "AMB"), ("Telephone", "VR"), ("video", "VR"), ("GROUP", "AMB")],
)
def test_session_class_follows_the_delivery_mode(mappings, mode, code):
    (record,) = run(mappings, "vcse/sessions", SESSIONS_HEADER, session_row(mode=mode))
    encounter_class = only(record, "Encounter")["class"]
    assert encounter_class["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    assert encounter_class["code"] == code


def test_session_type_is_coded_ignoring_case_and_keeps_the_text_as_written(mappings):
    (record,) = run(
        mappings,
        "vcse/sessions",
        SESSIONS_HEADER,
        session_row(session_type="employment SUPPORT (ips)"),
    )
    assert only(record, "Encounter")["type"] == [
        {
            "coding": [
                {
                    "system": "https://fhir.hub.example/CodeSystem/vcse-session-type",
                    "code": "employment-support-ips",
                    "display": "Employment support (IPS)",
                }
            ],
            "text": "employment SUPPORT (ips)",
        }
    ]


@pytest.mark.parametrize(
    ("date", "time", "start"),
    [
        ("16/03/2026", "09:00", "2026-03-16T09:00:00+00:00"),
        ("10/04/2026", "14:00", "2026-04-10T14:00:00+01:00"),
        ("10/04/2026", "9:05", "2026-04-10T09:05:00+01:00"),
        ("10/04/2026", "", "2026-04-10"),
    ],
)
def test_session_start_is_london_local_time_or_the_date_alone(mappings, date, time, start):
    (record,) = run(mappings, "vcse/sessions", SESSIONS_HEADER, session_row(date=date, time=time))
    assert only(record, "Encounter")["period"] == {"start": start}


def test_unreadable_start_time_fails_the_session(mappings):
    (record,) = run(mappings, "vcse/sessions", SESSIONS_HEADER, session_row(time="2pm"))
    assert not record.ok
    assert "'10/04/2026 2pm' does not fit the format" in record.errors[0]


def test_mangled_duration_fails_only_its_session_naming_the_field(mappings):
    rows = [session_row("S-1", duration="45 mins"), session_row("S-2")]
    bad, good = run(mappings, "vcse/sessions", SESSIONS_HEADER, *rows)
    assert good.ok
    assert bad.name == "in.csv line 2 (LEW-MIND/S-1)"
    assert bad.errors == [
        "Encounter.length.value from duration_minutes | int: '45 mins' is not a whole number"
    ]
    assert bad.resources == [] and bad.instructions == []


def test_session_without_duration_has_no_length(mappings):
    (record,) = run(mappings, "vcse/sessions", SESSIONS_HEADER, session_row(duration=""))
    assert "length" not in only(record, "Encounter")


def test_session_notes_appear_nowhere_in_the_output(mappings):
    rows = [
        session_row("S-1", notes='"Disclosed SECRET-7731, worried about her brother"'),
        session_row("S-2", notes="SECRET-7732", duration="45 mins"),
        session_row("S-3", notes='"=HYPERLINK(""http://x.example"",""SECRET-7733"")"'),
    ]
    records = run(mappings, "vcse/sessions", SESSIONS_HEADER, *rows)
    shown = json.dumps([r.summary() for r in records] + [r.transaction() for r in records])
    assert "SECRET" not in shown and "brother" not in shown


def test_the_example_session_notes_appear_nowhere_in_the_output(mappings):
    for name in ("sessions.csv", "sessions-awkward.csv"):
        with (EXAMPLES / name).open("rb") as stream:
            records = list(mappings.get("vcse/sessions").read(stream, name))
        shown = json.dumps([r.summary() for r in records], ensure_ascii=False)
        for note in ("sleep and money", "Rent arrears", "PRIVATE-NOTE", "brother"):
            assert note not in shown


def test_every_vcse_mapping_declares_notes_private(mappings):
    for name in ("vcse/clients", "vcse/sessions", "vcse/support-plans", "vcse/wellbeing"):
        assert "notes" in mappings.get(name).spec.private


def test_a_mapping_that_reads_notes_is_refused(tmp_path):
    copy = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, copy)
    sessions = copy / "vcse" / "sessions.yaml"
    text = sessions.read_text(encoding="utf-8")
    sessions.write_text(text.replace("text: =session_type", "text: =notes"), encoding="utf-8")
    with pytest.raises(MappingConfigError, match="notes is private"):
        MappingSet(copy).get("vcse/sessions")


# -- support plans -------------------------------------------------------------------------------


def plan_row(
    status: str = "Active",
    goals: str = "Keep tenancy; Join day programme",
    *,
    org: str = "LEW-MIND",
    client: str = "C-1",
    review: str = "02/06/2026",
) -> str:
    cells = [org, "P-0032", client, "Wellbeing and work plan", status, "02/03/2026", review]
    return ",".join([*cells, goals, "J. Williams"])


def test_support_plan_becomes_a_care_plan_with_its_goals_contained(mappings):
    (record,) = run(mappings, "vcse/support-plans", PLANS_HEADER, plan_row())
    plan = only(record, "CarePlan")
    assert plan["identifier"] == [{"system": f"{HUB_ID}/LEW-MIND/support-plan", "value": "P-0032"}]
    assert (plan["status"], plan["intent"], plan["title"]) == (
        "active",
        "plan",
        "Wellbeing and work plan",
    )
    assert plan["period"] == {"start": "2026-03-02"}
    assert plan["author"] == {"display": "J. Williams"}
    assert plan["subject"] == {"reference": f"Patient?identifier={HUB_ID}/LEW-MIND/client-ref|C-1"}
    assert [
        (g["id"], g["description"]["text"], g["lifecycleStatus"]) for g in plan["contained"]
    ] == [
        ("g1", "Keep tenancy", "active"),
        ("g2", "Join day programme", "active"),
    ]
    assert plan["goal"] == [{"reference": "#g1"}, {"reference": "#g2"}]
    assert plan["contained"][0]["subject"] == plan["subject"]


def test_review_date_is_kept_in_the_hubs_next_review_extension(mappings):
    (record,) = run(mappings, "vcse/support-plans", PLANS_HEADER, plan_row())
    assert only(record, "CarePlan")["extension"] == [
        {
            "url": "https://fhir.hub.example/StructureDefinition/careplan-next-review-due",
            "valueDate": "2026-06-02",
        }
    ]


@pytest.mark.parametrize(
    ("status", "plan_status", "goal_status"),
    [
        ("Active", "active", "active"),
        ("closed", "completed", "completed"),
        ("DRAFT", "draft", "proposed"),
    ],
)
def test_plan_status_is_mapped_and_goals_follow_it(mappings, status, plan_status, goal_status):
    (record,) = run(mappings, "vcse/support-plans", PLANS_HEADER, plan_row(status))
    plan = only(record, "CarePlan")
    assert plan["status"] == plan_status
    assert {g["lifecycleStatus"] for g in plan["contained"]} == {goal_status}


def test_empty_goals_between_separators_are_dropped(mappings):
    row = plan_row(goals="Open bank account ;  ; Pay rent on time;")
    (record,) = run(mappings, "vcse/support-plans", PLANS_HEADER, row)
    plan = only(record, "CarePlan")
    assert [g["description"]["text"] for g in plan["contained"]] == [
        "Open bank account",
        "Pay rent on time",
    ]


def test_plan_without_goals_or_review_date_has_neither(mappings):
    (record,) = run(mappings, "vcse/support-plans", PLANS_HEADER, plan_row(goals="", review=""))
    plan = only(record, "CarePlan")
    assert not {"contained", "goal", "extension"} & plan.keys()


def test_unknown_plan_status_fails_once_naming_the_field(mappings):
    (record,) = run(mappings, "vcse/support-plans", PLANS_HEADER, plan_row("Paused"))
    assert record.errors == [
        "let status from status | required | map('support-plan-status') | code: 'Paused' is not "
        "in value map 'vcse/support-plan-status'"
    ]


# -- wellbeing (SWEMWBS) ---------------------------------------------------------------------


def test_swemwbs_gives_items_raw_total_and_metric_score(mappings):
    row = answers_row("3", "2", "3", "3", "2", "4", "3")
    (record,) = run(mappings, "vcse/wellbeing", WELLBEING_HEADER, row)
    response = only(record, "QuestionnaireResponse")
    assert response["identifier"] == {
        "system": f"{HUB_ID}/LEW-MIND/wellbeing-assessment",
        "value": "W-1",
    }
    assert response["questionnaire"] == "https://fhir.hub.example/Questionnaire/swemwbs"
    assert response["status"] == "completed"
    assert response["authored"] == "2026-04-10"
    assert response["subject"] == {
        "reference": f"Patient?identifier={HUB_ID}/LEW-MIND/client-ref|C-1"
    }
    assert items(response) == {
        "q1": 3,
        "q2": 2,
        "q3": 3,
        "q4": 3,
        "q5": 2,
        "q6": 4,
        "q7": 3,
        "swemwbs-total": 20,
        "swemwbs-metric": 18.59,
    }


@pytest.mark.parametrize(
    ("answers", "total", "metric"),
    [("1111111", 7, 7.0), ("4454444", 29, 26.02), ("3333333", 21, 19.25), ("5555555", 35, 35.0)],
)
def test_metric_score_follows_the_conversion_table(mappings, answers, total, metric):
    (record,) = run(mappings, "vcse/wellbeing", WELLBEING_HEADER, answers_row(*answers))
    scores = items(only(record, "QuestionnaireResponse"))
    assert (scores["swemwbs-total"], scores["swemwbs-metric"]) == (total, metric)
    assert scores["swemwbs-total"] == sum(scores[f"q{n}"] for n in range(1, 8))


def test_partly_answered_swemwbs_keeps_its_answers_but_has_no_total(mappings):
    row = answers_row("2", "3", "", "3", "3", "3", "3")
    (record,) = run(mappings, "vcse/wellbeing", WELLBEING_HEADER, row)
    assert items(only(record, "QuestionnaireResponse")) == {
        "q1": 2,
        "q2": 3,
        "q4": 3,
        "q5": 3,
        "q6": 3,
        "q7": 3,
    }


@pytest.mark.parametrize("answer", ["6", "0", "often", "3.5", "-1", "=A1"])
def test_answer_out_of_range_or_not_a_number_fails_naming_the_column(mappings, answer):
    rows = [
        answers_row("3", "3", answer, "3", "3", "3", "3"),
        answers_row("3", "3", "3", "3", "3", "3", "3"),
    ]
    bad, good = run(mappings, "vcse/wellbeing", WELLBEING_HEADER, *rows)
    assert good.ok
    assert not bad.ok and bad.resources == []
    assert bad.errors == [
        f"let q3 from q3 | map('swemwbs-answer') | code: {answer!r} is not in value map "
        "'vcse/swemwbs-answer'"
    ]


def test_assessment_without_completion_date_fails_naming_the_field(mappings):
    (record,) = run(mappings, "vcse/wellbeing", WELLBEING_HEADER, answers_row(*"3333333", date=""))
    assert record.errors == [
        "QuestionnaireResponse.authored from completed_date | required | "
        "date('%d/%m/%Y', '%Y-%m-%d'): is required but empty"
    ]


# -- every mapping -------------------------------------------------------------------------------


def test_a_new_organisation_needs_no_mapping_change(mappings):
    org = "NEW-ORG"
    outputs = {
        "vcse/clients": run(mappings, "vcse/clients", CLIENTS_HEADER, client_row("X-1", org=org)),
        "vcse/sessions": run(
            mappings,
            "vcse/sessions",
            SESSIONS_HEADER,
            session_row("S-1", org=org, client_ref="X-1"),
        ),
        "vcse/support-plans": run(
            mappings, "vcse/support-plans", PLANS_HEADER, plan_row(org=org, client="X-1")
        ),
        "vcse/wellbeing": run(
            mappings,
            "vcse/wellbeing",
            WELLBEING_HEADER,
            answers_row(*"3333333").replace("LEW-MIND", org).replace(",C-1,", ",X-1,"),
        ),
    }
    for name, records in outputs.items():
        (record,) = records
        assert record.ok, record.errors
        for made in record.resources:
            assert (
                made.resource["meta"]["source"] == f"https://fhir.hub.example/source/{org}#{name}"
            )
            assert made.system.startswith(f"{HUB_ID}/{org}/")
        assert "LEW-MIND" not in json.dumps(record.summary())
    subjects = {
        json.dumps(made.resource.get("subject") or made.resource.get("patient"))
        for records in outputs.values()
        for made in records[0].resources
        if made.type != "Patient"
    }
    assert subjects == {
        json.dumps({"reference": f"Patient?identifier={HUB_ID}/{org}/client-ref|X-1"})
    }


def example_inputs() -> list[tuple[str, Path]]:
    names = {
        "clients": "vcse/clients",
        "sessions": "vcse/sessions",
        "support_plans": "vcse/support-plans",
        "wellbeing": "vcse/wellbeing",
    }
    found = []
    for path in sorted(EXAMPLES.glob("*.csv")):
        found.append((names[path.stem.split("-")[0]], path))
    return found


@pytest.mark.parametrize(("name", "path"), example_inputs(), ids=lambda v: getattr(v, "name", v))
def test_mapping_an_export_again_gives_identical_resources(mappings, name, path):
    def resources() -> list:
        with path.open("rb") as stream:
            return [r.resources for r in mappings.get(name).read(stream, path.name)]

    assert resources() == resources()


@pytest.mark.parametrize(("name", "path"), example_inputs(), ids=lambda v: getattr(v, "name", v))
def test_every_produced_resource_is_valid_r4_and_meets_the_hub_profiles(
    mappings, profiles, name, path
):
    with path.open("rb") as stream:
        records = list(mappings.get(name).read(stream, path.name))
    produced = [made.resource for record in records for made in record.resources]
    assert produced
    for resource in produced:
        validate_resource(resource)
        assert [i for i in profiles.check(resource) if i.severity == "error"] == []
