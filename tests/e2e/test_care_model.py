"""The care model in the shared record (issue 9), end to end from the contract's examples.

One hub runs for the module, as `hub serve` runs it (FHIR API, ingest API, MLLP listener, a
worker); every example feed is sent once (`ExampleHub.send_every_feed`), and each test reads
the result as a FHIR client would, through /fhir. Where the shared record is kept is the
`backend` fixture's business alone, so that the same tests can run on every backend.

The expectations are worked out from the example files (mappings/*/examples, copied from the
source contract); the comments say which line of which file each comes from.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from click.testing import CliRunner

from hub.record import record_command, record_summary
from hub.store import RemoteStore
from tests.e2e._backends import BACKENDS, Backend, FedHub, backend_named, fed_hub
from tests.e2e._example_hub import MAPPINGS, ExampleHub, Resource, example_messages

NHS = "https://fhir.nhs.uk/Id/nhs-number"
HUB_ID = "https://fhir.hub.example/Id"
HUB_CODES = "https://fhir.hub.example/CodeSystem"
VISIT = f"{HUB_ID}/RV5/visit-number"
POINT_OF_CARE = f"{HUB_ID}/RV5/point-of-care"
POINT_OF_CARE_KIND = f"{HUB_CODES}/point-of-care-kind"
EPISODE_TYPE = f"{HUB_CODES}/episode-type"
REFERRAL_SOURCE = f"{HUB_CODES}/referral-source"
CONTACT_ROLE = f"{HUB_CODES}/contact-role"
CARE_TEAM_ROLE = f"{HUB_CODES}/care-team-role"
FLAG_CODE = f"{HUB_CODES}/flag"
CARE_TEAM_SOURCE = "https://fhir.hub.example/StructureDefinition/care-team-source"
LEGAL_STATUS_PERIOD = "https://fhir.hub.example/StructureDefinition/legal-status-period"
UK_CORE_LEGAL_STATUS = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-LegalStatus"
LEGAL_STATUS_ENGLAND = "https://fhir.hl7.org.uk/CodeSystem/UKCore-LegalStatusClassificationEngland"
V2_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/v2-0063"
V3_ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"

OKAFOR, REILLY, ORTEGA_DIAZ, HADDAD, BROOKS = (
    "9990000018",
    "9990000026",
    "9990000034",
    "9990000042",
    "9990000077",
)
CARE_MODEL_TYPES = {"CareTeam", "EpisodeOfCare", "Flag", "Location", "RelatedPerson"}
GUEST_BED_STAY, WARD_STAY = "V0000503", "V0000505"  # PV1-19 of Reilly's A01, Ortega-Díaz's A01


# --- the backend and the hub --------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    with backend_named(request.param) as backend:
        yield backend


@pytest.fixture(scope="module")
def running(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FedHub]:
    with fed_hub(backend, tmp_path_factory.mktemp(f"care-model-{backend.name}")) as fed:
        yield fed


@pytest.fixture(scope="module")
def hub(running: FedHub) -> ExampleHub:
    return running.hub


@pytest.fixture(scope="module")
def patients(hub: ExampleHub) -> dict[str, Resource]:
    """The example people by NHS number."""
    return {n: hub.patient(NHS, n) for n in (OKAFOR, REILLY, ORTEGA_DIAZ, HADDAD, BROOKS)}


# --- small readings -----------------------------------------------------------------------------


def moment(value: str | None) -> datetime | str | None:
    """A dateTime as an instant (so that 10:00+01:00 equals 09:00Z); a date as it is."""
    if value is None or "T" not in value:
        return value
    return datetime.fromisoformat(value)


def business_ids(resources: list[Resource]) -> set[str]:
    return {r["identifier"][0]["value"] for r in resources}


def codes(concepts: list[dict[str, Any]] | dict[str, Any], system: str) -> set[str]:
    items = concepts if isinstance(concepts, list) else [concepts]
    return {c["code"] for cc in items for c in cc.get("coding", []) if c.get("system") == system}


def nhs_number(patient: Resource) -> str:
    return next(i["value"] for i in patient["identifier"] if i["system"] == NHS)


def owner(hub: ExampleHub, resource: Resource, element: str = "subject") -> str:
    """The NHS number of the person a resource is about."""
    return nhs_number(hub.get(resource[element]["reference"]))


def encounter(hub: ExampleHub, visit: str) -> Resource:
    found = hub.search("Encounter", identifier=f"{VISIT}|{visit}")
    assert len(found) == 1, found
    return found[0]


def adt_segments(segment: str) -> list[list[str]]:
    """The fields of every `segment` of the example ADT feed, message by message."""
    found = []
    for message in example_messages("slam-epr/examples/adt.hl7"):
        for line in message.decode().replace("\n", "\r").split("\r"):
            if line.startswith(f"{segment}|"):
                found.append(line.split("|"))
    return found


# --- nothing failed -----------------------------------------------------------------------------


def test_every_example_was_applied_or_withheld(hub: ExampleHub) -> None:
    counts = hub.inbox.counts()
    assert {s for by_status in counts.values() for s in by_status} <= {"applied", "withheld"}
    assert counts["slam-epr/episodes"] == {"applied": 6}  # episodes.jsonl: 6 lines


# --- points of care: a guest-bed stay is not a hospital admission -------------------------------


@pytest.mark.parametrize("through", ["type", "location.type"])
@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("guest-bed", {(GUEST_BED_STAY, REILLY)}),  # adt.hl7: PV1-3 GUEST-BED-2, PV1-2 I
        ("ward", {(WARD_STAY, ORTEGA_DIAZ)}),  # adt.hl7: PV1-3 LADYWELL-W1, PV1-2 I
    ],
)
def test_one_search_tells_a_guest_bed_stay_from_a_hospital_admission(
    hub: ExampleHub, through: str, kind: str, expected: set[tuple[str, str]]
) -> None:
    found = hub.search("Encounter", **{"class": "IMP", through: f"{POINT_OF_CARE_KIND}|{kind}"})
    assert {(e["identifier"][0]["value"], owner(hub, e)) for e in found} == expected


def test_only_the_ward_stay_is_in_a_psychiatric_hospital_unit(hub: ExampleHub) -> None:
    found = hub.search("Encounter", **{"location.type": f"{V3_ROLE}|PHU"})
    assert business_ids(found) == {WARD_STAY}


def test_every_epr_encounter_names_the_location_of_its_point_of_care(hub: ExampleHub) -> None:
    # PV1-3.1 of each visit (PV1-19) in adt.hl7; Haddad's A08 has neither.
    expected = {
        pv1[19].split("^")[0]: pv1[3].split("^")[0]
        for pv1 in adt_segments("PV1")
        if pv1[19].split("^")[0]
    }
    assert expected[GUEST_BED_STAY] == "GUEST-BED-2"
    assert expected[WARD_STAY] == "LADYWELL-W1"
    named = {}
    for visit in expected:
        reference = encounter(hub, visit)["location"][0]["location"]
        assert reference["reference"].startswith("Location/"), reference
        location = hub.get(reference["reference"])
        assert reference["display"] == location["name"]
        named[visit] = next(
            i["value"] for i in location["identifier"] if i["system"] == POINT_OF_CARE
        )
    assert named == expected


# --- Mental Health Act legal status -------------------------------------------------------------


def test_the_ward_stay_keeps_section_2_at_admission_and_informal_at_discharge(
    hub: ExampleHub,
) -> None:
    stay = encounter(hub, WARD_STAY)
    contexts = {}
    for extension in stay["extension"]:
        if extension["url"] == UK_CORE_LEGAL_STATUS:
            parts = {p["url"]: p["valueCodeableConcept"] for p in extension["extension"]}
            context = parts["legalStatusContext"]["coding"][0]["code"]
            contexts[context] = codes(parts["legalStatusClassification"], LEGAL_STATUS_ENGLAND)
    # ZMH-2 of the A01 (02) and of the A03 (01).
    assert contexts == {"admission": {"02"}, "discharge": {"01"}}


def test_the_ward_stay_has_its_legal_status_timeline(hub: ExampleHub) -> None:
    stay = encounter(hub, WARD_STAY)
    timeline = []
    for extension in stay["extension"]:
        if extension["url"] == LEGAL_STATUS_PERIOD:
            parts = {p["url"]: p for p in extension["extension"]}
            period = parts["period"]["valuePeriod"]
            code = parts["classification"]["valueCoding"]
            assert code["system"] == LEGAL_STATUS_ENGLAND
            timeline.append((code["code"], moment(period["start"]), moment(period.get("end"))))
    # Section 2 from ZMH-3 of the A01 until the A08's informal began (its ZMH-3, the 16th);
    # informal until the stay ended (PV1-45 of the A03). London is on BST in April.
    assert sorted(timeline, key=lambda s: s[1]) == [
        ("02", moment("2026-04-09T04:00:00+01:00"), moment("2026-04-16T10:00:00+01:00")),
        ("01", moment("2026-04-16T10:00:00+01:00"), moment("2026-04-20T11:00:00+01:00")),
    ]
    assert moment(stay["period"]["end"]) == moment("2026-04-20T11:00:00+01:00")


@pytest.mark.parametrize(
    ("legal_status", "expected"),
    [
        ("02", {WARD_STAY}),
        (f"{LEGAL_STATUS_ENGLAND}|02", {WARD_STAY}),
        ("01", {WARD_STAY}),
        ("03", set()),
    ],
)
def test_legal_status_search_finds_the_stays_that_had_it(
    hub: ExampleHub, legal_status: str, expected: set[str]
) -> None:
    assert business_ids(hub.search("Encounter", **{"legal-status": legal_status})) == expected


# --- episodes: membership and re-entry ----------------------------------------------------------


@pytest.mark.parametrize(
    ("person", "memberships"),
    [
        (REILLY, {"EP-6002"}),  # episodes.jsonl: caseload EP-6001 finished into membership
        (HADDAD, {"EP-5101"}),  # episodes.jsonl: a member since 2025-11-01
        (OKAFOR, set()),  # on the caseload (EP-7001), not a member
        (ORTEGA_DIAZ, set()),  # home treatment (EP-3401)
        (BROOKS, set()),  # no episode
    ],
)
def test_is_this_person_a_member(hub: ExampleHub, person: str, memberships: set[str]) -> None:
    found = hub.search(
        "EpisodeOfCare",
        patient__identifier=f"{NHS}|{person}",
        type=f"{EPISODE_TYPE}|membership",
        status="active",
    )
    assert business_ids(found) == memberships


def test_reilly_stays_a_member_after_his_discharge(hub: ExampleHub) -> None:
    stay = encounter(hub, GUEST_BED_STAY)
    assert stay["status"] == "finished"  # the A03 came
    episodes = {
        e["identifier"][0]["value"]: e
        for e in hub.search("EpisodeOfCare", patient__identifier=f"{NHS}|{REILLY}")
    }
    assert {k: (e["status"], codes(e["type"], EPISODE_TYPE)) for k, e in episodes.items()} == {
        "EP-6001": ("finished", {"caseload"}),
        "EP-6002": ("active", {"membership"}),
    }
    membership = episodes["EP-6002"]
    assert "end" not in membership["period"]
    assert membership["period"]["start"] == stay["period"]["end"][:10]  # from the discharge day


@pytest.mark.parametrize(
    "referral_source", ["member-re-entry", f"{REFERRAL_SOURCE}|member-re-entry"]
)
def test_haddad_came_back_as_a_member_without_a_referral(
    hub: ExampleHub, referral_source: str
) -> None:
    found = hub.search("EpisodeOfCare", **{"referral-source": referral_source})
    assert business_ids(found) == {"EP-5102"}  # episodes.jsonl: "Member re-entry"
    (episode,) = found
    assert owner(hub, episode, "patient") == HADDAD
    assert (episode["status"], codes(episode["type"], EPISODE_TYPE)) == ("active", {"caseload"})
    (source,) = [e for e in episode["extension"] if e["url"].endswith("/episode-referral-source")]
    assert source["valueCoding"]["display"] == "Member re-entry"
    still_member = hub.search(
        "EpisodeOfCare",
        patient__identifier=f"{NHS}|{HADDAD}",
        type=f"{EPISODE_TYPE}|membership",
        status="active",
    )
    assert business_ids(still_member) == {"EP-5101"}


# --- the people around the person ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("person", "relationship", "role", "name", "phone"),
    [
        # adt.hl7, Reilly's A01 and A03: NK1|1|REILLY^MAIREAD|SIS^Sister^HL70063||020 7946 0999||CAR
        (REILLY, "SIS", "carer", ("Reilly", ["Mairead"]), "020 7946 0999"),
        # Ortega-Díaz's A01, A08 and A03: NK1|1|DÍAZ^LUCÍA|MTH^Mother^HL70063||07700 900789||NP
        (ORTEGA_DIAZ, "MTH", "nominated-person", ("Díaz", ["Lucía"]), "07700 900789"),
    ],
)
def test_the_person_named_in_nk1_is_one_related_person_with_their_role(
    hub: ExampleHub,
    patients: dict[str, Resource],
    person: str,
    relationship: str,
    role: str,
    name: tuple[str, list[str]],
    phone: str,
) -> None:
    subject = f"Patient/{patients[person]['id']}"
    (related,) = hub.search("RelatedPerson", patient=subject)
    assert codes(related["relationship"], V2_RELATIONSHIP) == {relationship}
    assert codes(related["relationship"], V3_ROLE) == {relationship}
    assert codes(related["relationship"], CONTACT_ROLE) == {role}
    assert [(n["family"], n["given"]) for n in related["name"]] == [name]
    assert [t["value"] for t in related["telecom"]] == [phone]
    by_role = hub.search("RelatedPerson", patient=subject, relationship=f"{CONTACT_ROLE}|{role}")
    assert [r["id"] for r in by_role] == [related["id"]]


def test_nobody_else_has_a_related_person(hub: ExampleHub) -> None:
    people = {pid[3] for pid in adt_segments("PID")}  # PID-3: the identifiers
    assert len(people) == 6
    found = hub.search("RelatedPerson")
    assert sorted(owner(hub, r, "patient") for r in found) == [REILLY, ORTEGA_DIAZ]


# --- the shared pathway -------------------------------------------------------------------------


def test_the_depot_pathway_is_based_on_the_section_117_plan(hub: ExampleHub) -> None:
    # district-nursing careplans.csv: DNCP-3310, epr_plan_id CP-60001 (careplans.jsonl, S117).
    (s117,) = hub.search("CarePlan", identifier=f"{HUB_ID}/RV5/careplan|CP-60001")
    assert codes(s117["category"], f"{HUB_CODES}/epr-plan-type") == {"S117"}
    (depot,) = hub.search("CarePlan", identifier=f"{HUB_ID}/RJ2/careplan|DNCP-3310")
    assert depot["basedOn"] == [{"reference": f"CarePlan/{s117['id']}"}]
    assert owner(hub, depot) == owner(hub, s117) == REILLY
    based_on = hub.search("CarePlan", **{"based-on": f"CarePlan/{s117['id']}"})
    assert business_ids(based_on) == {"DNCP-3310"}


# --- signals ------------------------------------------------------------------------------------

FLAGS = {
    # careplans.jsonl: CP-55120, CRISIS, active, created 2026-03-01T09:00:00Z.
    OKAFOR: {("crisis-plan", "active", moment("2026-03-01T09:00:00Z"), None)},
    # episodes.jsonl: EP-6002, MEMBERSHIP, active from 2026-04-06.
    REILLY: {("member", "active", "2026-04-06", None)},
    # adt.hl7: ZMH section 2 from 2026-04-09 04:00 (A01), informal from 2026-04-16 10:00 (A08).
    ORTEGA_DIAZ: {
        (
            "detained",
            "inactive",
            moment("2026-04-09T04:00:00+01:00"),
            moment("2026-04-16T10:00:00+01:00"),
        )
    },
    # episodes.jsonl: EP-5101, MEMBERSHIP, active from 2025-11-01.
    HADDAD: {("member", "active", "2025-11-01", None)},
    BROOKS: set(),
}


@pytest.mark.parametrize("person", sorted(FLAGS))
def test_flags_start_and_end_with_their_sources(
    hub: ExampleHub, patients: dict[str, Resource], person: str
) -> None:
    found = hub.search("Flag", patient=f"Patient/{patients[person]['id']}")
    assert {
        (
            *codes(f["code"], FLAG_CODE),
            f["status"],
            moment(f["period"]["start"]),
            moment(f["period"].get("end")),
        )
        for f in found
    } == FLAGS[person]


def test_the_detained_flag_was_raised_at_the_section_2_then_ended_not_deleted(
    hub: ExampleHub, patients: dict[str, Resource]
) -> None:
    (flag,) = hub.search("Flag", patient=f"Patient/{patients[ORTEGA_DIAZ]['id']}")
    history = [e["resource"] for e in hub.bundle(f"Flag/{flag['id']}/_history")]
    oldest, newest = history[-1], history[0]
    assert (oldest["status"], moment(oldest["period"]["start"])) == (
        "active",
        moment("2026-04-09T04:00:00+01:00"),
    )
    assert "end" not in oldest["period"]
    assert newest["status"] == "inactive"


def clinical_texts() -> set[str]:
    """What the examples say about care, which a flag must never repeat: plan titles, goals
    and activities, and the legal status displays."""
    texts: set[str] = set()
    for line in (MAPPINGS / "slam-epr/examples/careplans.jsonl").read_text().splitlines():
        plan = json.loads(line)
        texts.add(plan["title"])
        texts.update(g["description"] for g in plan["goals"])
        texts.update(a["description"] for a in plan["activities"])
    with (MAPPINGS / "district-nursing/examples/careplans.csv").open(encoding="utf-8") as rows:
        for row in csv.DictReader(rows):
            texts.update([row["title"], *row["goals"].split("|")])
    texts.update(zmh[2].split("^")[1] for zmh in adt_segments("ZMH"))
    return texts


def test_flag_texts_say_where_to_look_never_clinical_detail(hub: ExampleHub) -> None:
    flags = hub.search("Flag")
    assert len(flags) == sum(len(f) for f in FLAGS.values())
    clinical = clinical_texts()
    assert "Formally detained under Mental Health Act Section 2" in clinical
    for flag in flags:
        text = flag["code"]["text"]
        assert text.startswith(f"{flag['code']['coding'][0]['display']}: "), text
        assert re.fullmatch(r"[^:]+: .*see the .+ \(RV5\)", text), text
        assert not [c for c in clinical if c.lower() in text.lower()], text


# --- the team around the person -----------------------------------------------------------------

TEAMS = {
    OKAFOR: {
        # episodes.jsonl EP-7001 (caseload, care_coordinator C1234567); careplans.jsonl
        # CP-55120 and CP-55121 (active, care_coordinator C1234567).
        ("care-coordinator", "C1234567", "RV5", frozenset({"CP-55120", "CP-55121", "EP-7001"})),
        ("mental-health-team", "RV5-NCL247", None, frozenset({"EP-7001"})),  # its team
        ("gp-practice", "G85901", None, frozenset({"Patient"})),  # adt.hl7 PD1-3
        # support_plans.csv P-0032 (worker J. Williams), clients.csv C-000417 consent Y.
        ("vcse-worker", "J. Williams", "LEW-MIND", frozenset({"P-0032", "C-000417"})),
        # Not L. Chen RN: visits.csv DN-77901 has no care plan, and only a plan names a lead.
    },
    REILLY: {
        # careplans.jsonl CP-60001 (S117, active); his caseload EP-6001 has finished.
        ("care-coordinator", "C1234567", "RV5", frozenset({"CP-60001"})),
        ("mental-health-team", "RV5-NCL247", None, frozenset({"EP-6002"})),  # membership
        ("gp-practice", "G85902", None, frozenset({"Patient"})),  # adt.hl7 PD1-3
        # district-nursing careplans.csv DNCP-3310: lead_nurse A. Brown RN, team_ods RJ2.
        ("lead-nurse", "A. Brown RN", "RJ2", frozenset({"DNCP-3310"})),
        ("carer", "Mairead Reilly", None, frozenset({"RelatedPerson"})),  # adt.hl7 NK1 CAR
    },
    ORTEGA_DIAZ: {
        # episodes.jsonl EP-3401 (home treatment, care_coordinator C1234567).
        ("care-coordinator", "C1234567", "RV5", frozenset({"EP-3401"})),
        ("mental-health-team", "RV5-LEWHTT", None, frozenset({"EP-3401"})),
        ("gp-practice", "G85901", None, frozenset({"Patient"})),  # adt.hl7 PD1-3
        ("nominated-person", "Lucía Díaz", None, frozenset({"RelatedPerson"})),  # NK1 NP
        # No VCSE worker: LEW-MIND has her consent (clients.csv C-000418) but no support plan
        # of hers; her day programme session (P. Osei) is a contact, not a worker assigned.
    },
    HADDAD: {
        # episodes.jsonl EP-5102 (caseload after member re-entry, care_coordinator C1234567).
        ("care-coordinator", "C1234567", "RV5", frozenset({"EP-5102"})),
        # EP-5101 (membership) and EP-5102 (caseload), both with RV5-NCL247.
        ("mental-health-team", "RV5-NCL247", None, frozenset({"EP-5101", "EP-5102"})),
        ("gp-practice", "G85902", None, frozenset({"Patient"})),  # adt.hl7 PD1-3
    },
    # adt.hl7: A28s (PD1-3 G85901) and the A40 merge; no episode, plan or NK1.
    BROOKS: {("gp-practice", "G85901", None, frozenset({"Patient"}))},
}


def who(member: dict[str, Any]) -> str:
    """A member by the code its source gives (staff id, team code, ODS code), else by name
    (a nurse or VCSE worker named only in words, a related person)."""
    if member.get("type") == "RelatedPerson":
        return str(member["display"])
    return str((member.get("identifier") or {}).get("value") or member["display"])


def source_label(reference: dict[str, Any]) -> str:
    """A participant's source: its business identifier's value, or the type of a Patient or
    RelatedPerson (whose identifier is the hub's own)."""
    if reference.get("reference"):
        return str(reference["reference"]).split("/")[0]
    if reference.get("type") == "RelatedPerson":
        return "RelatedPerson"
    return str(reference["identifier"]["value"])


def participant(p: dict[str, Any]) -> tuple[str, str, str | None, frozenset[str]]:
    (role,) = codes(p["role"], CARE_TEAM_ROLE)
    organisation = (p.get("onBehalfOf") or {}).get("identifier", {}).get("value")
    sources = frozenset(
        source_label(e["valueReference"]) for e in p["extension"] if e["url"] == CARE_TEAM_SOURCE
    )
    return role, who(p["member"]), organisation, sources


@pytest.mark.parametrize("person", sorted(TEAMS))
def test_each_care_team_lists_exactly_the_right_people(
    hub: ExampleHub, patients: dict[str, Resource], person: str
) -> None:
    (team,) = hub.search("CareTeam", subject=f"Patient/{patients[person]['id']}")
    assert team["status"] == "active"
    assert {participant(p) for p in team["participant"]} == TEAMS[person]
    assert len(team["participant"]) == len(TEAMS[person])
    for p in team["participant"]:
        assert p["period"]["start"] and "end" not in p["period"], p


def test_the_merged_duplicates_team_has_ended(
    hub: ExampleHub, patients: dict[str, Resource]
) -> None:
    (retired,) = [
        link["other"]["reference"]
        for link in patients[BROOKS]["link"]
        if link["type"] == "replaces"
    ]
    (team,) = hub.search("CareTeam", subject=retired)
    assert team["participant"]
    assert all(p["period"].get("end") for p in team["participant"]), team


def asantes_marks() -> list[str]:
    """What would show Asante's VCSE record reached the shared record (clients.csv and
    sessions.csv of CATFORD-HSG, consent_to_share N): his housing worker first."""
    with (MAPPINGS / "vcse/examples/sessions.csv").open(encoding="utf-8-sig") as rows:
        workers = [r["worker"] for r in csv.DictReader(rows) if r["org_id"] == "CATFORD-HSG"]
    assert workers == ["R. Khan"]
    return [*workers, "Khan", "Asante", "Kwabena", "H-2201", "9990000050", "CATFORD-HSG"]


def test_asantes_housing_worker_appears_nowhere(hub: ExampleHub) -> None:
    marks = asantes_marks()
    types = hub.resource_types()
    assert {"CareTeam", "Encounter", "Flag", "Practitioner", "Provenance"} <= set(types)
    for resource_type in types:
        for path in (resource_type, f"{resource_type}/_history"):
            text = json.dumps(hub.bundle(path), ensure_ascii=False).lower()
            assert not [m for m in marks if m.lower() in text], path


# --- reading the record -------------------------------------------------------------------------


def test_everything_of_reilly_includes_the_care_model(
    hub: ExampleHub, patients: dict[str, Resource]
) -> None:
    entries = hub.bundle(f"Patient/{patients[REILLY]['id']}/$everything")
    by_type: dict[str, list[Resource]] = {}
    for entry in entries:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    assert set(by_type) >= CARE_MODEL_TYPES
    assert business_ids(by_type["EpisodeOfCare"]) == {"EP-6001", "EP-6002"}
    assert len(by_type["RelatedPerson"]) == 1
    assert len(by_type["CareTeam"]) == 1
    assert {c for f in by_type["Flag"] for c in codes(f["code"], FLAG_CODE)} == {"member"}
    assert "GUEST-BED-2" in business_ids(by_type["Location"])


@pytest.mark.parametrize(
    ("person", "stay", "point_of_care"),
    [(REILLY, GUEST_BED_STAY, "GUEST-BED-2"), (ORTEGA_DIAZ, WARD_STAY, "LADYWELL-W1")],
)
def test_an_encounter_search_includes_its_location(
    hub: ExampleHub, patients: dict[str, Resource], person: str, stay: str, point_of_care: str
) -> None:
    entries = hub.bundle(
        "Encounter",
        subject=f"Patient/{patients[person]['id']}",
        **{"class": "IMP", "_include": "Encounter:location"},
    )
    by_mode: dict[str, set[str]] = {}
    for entry in entries:
        resource = entry["resource"]
        label = f"{resource['resourceType']} {resource['identifier'][0]['value']}"
        by_mode.setdefault(entry["search"]["mode"], set()).add(label)
    assert by_mode == {"match": {f"Encounter {stay}"}, "include": {f"Location {point_of_care}"}}


def check_reillys_record(summary: dict[str, Any]) -> None:
    """What `hub record 9990000026` must show: the member flag, his carer, the guest-bed stay."""
    assert [(f["code"], f["status"]) for f in summary["flags"]] == [("member", "active")]
    carers = [(m["role"], m["name"]) for m in summary["team"] if m["role"] == "Carer"]
    assert carers == [("Carer", "Mairead Reilly")]
    (stay,) = summary["encounters"]["RV5"]
    assert (stay["location"], stay["type"], stay["status"]) == (
        "Heather Close guest bed 2",
        "Guest bed at the centre (step-up stay)",
        "finished",
    )


def test_hub_record_over_the_fhir_api_shows_the_member_flag_carer_and_guest_bed_stay(
    hub: ExampleHub, running: FedHub
) -> None:
    with RemoteStore(f"{hub.url}/fhir") as store:
        summary = record_summary(store, REILLY, running.settings.profiles_dir)
    check_reillys_record(summary)


def test_hub_record_command_shows_the_same_record(hub: ExampleHub, running: FedHub) -> None:
    env = running.backend.cli_env(running.settings.data_dir)
    runner = CliRunner()
    as_json = runner.invoke(record_command, [REILLY, "--json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    summary = json.loads(as_json.output)
    check_reillys_record(summary)
    with RemoteStore(f"{hub.url}/fhir") as store:
        assert summary == record_summary(store, REILLY, running.settings.profiles_dir)
    screen = runner.invoke(record_command, [REILLY], env=env)
    assert screen.exit_code == 0, screen.output
    for shown in ("Member of the 24/7 centre", "Mairead Reilly", "Heather Close guest bed 2"):
        assert shown in screen.output


# --- resending changes nothing (last: they send the examples again) -----------------------------


def test_resending_every_message_and_file_changes_nothing(hub: ExampleHub) -> None:
    before, counts = hub.versions(), hub.inbox.counts()
    assert {resource_type for resource_type, _ in before} >= CARE_MODEL_TYPES
    answers = hub.send_every_feed()
    assert answers and all(item["duplicate"] for a in answers for item in a["items"])
    assert hub.inbox.counts() == counts
    assert hub.versions() == before


def test_applying_every_item_again_changes_nothing(hub: ExampleHub) -> None:
    """Stronger than a resend, which the inbox stops at the door: every item goes through
    mapping, identity and the derived step again, which must find nothing to write."""
    before, counts = hub.versions(), hub.inbox.counts()
    replayed = hub.inbox.replay(statuses=("applied", "withheld"))
    assert replayed == sum(n for by_status in counts.values() for n in by_status.values())
    hub.settle()
    assert hub.inbox.counts() == counts
    assert hub.versions() == before
