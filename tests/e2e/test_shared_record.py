"""From raw bytes to FHIR search results: every example person of the source contract, on the
embedded store and on HAPI FHIR (issues 4 and 5).

One hub runs per backend, as `hub serve` runs it: the FHIR API, the ingest API, the MLLP
listener and a worker. The ADT feed goes through the real MLLP listener, every other example
file through POST /ingest/{mapping}, in the demo's order; the tests read the result through
the hub's /fhir, which the hub answers from whichever store keeps the shared record. On HAPI,
HAPI's own `$validate` then judges every resource the pipeline wrote (issue 9).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

import pytest

from hub.mapping import SOURCE_BASE
from hub.settings import REPOSITORY
from tests.e2e._backends import BACKENDS, Backend, backend_named, fed_hub
from tests.e2e._example_hub import ExampleHub, Resource, ack_code, example_messages
from tests.e2e._on_hapi import hapi_client, validation_errors

NHS = "https://fhir.nhs.uk/Id/nhs-number"
HUB_ID = "https://fhir.hub.example/Id"
MRN = f"{HUB_ID}/RV5/mrn"
VCSE_CLIENT = f"{HUB_ID}/LEW-MIND/client-ref"
MAPPINGS = REPOSITORY / "mappings"
PEOPLE = ("9990000018", "9990000026", "9990000034", "9990000042", "9990000077")
"""NHS numbers of the example people the shared record holds (Kwabena never consented)."""
WRITTEN_TYPES = (
    "CarePlan",
    "CareTeam",
    "Consent",
    "Encounter",
    "EpisodeOfCare",
    "Flag",
    "Location",
    "Patient",
    "Provenance",
    "QuestionnaireResponse",
    "RelatedPerson",
)
"""Every resource type the pipeline writes from the examples."""
DEFINITIONS = {
    "CodeSystem",
    "ConceptMap",
    "Questionnaire",
    "SearchParameter",
    "StructureDefinition",
    "ValueSet",
}
"""What `hub mappings publish` loads into a FHIR server before any data."""


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    with backend_named(request.param) as backend:
        yield backend


@pytest.fixture(scope="module")
def hub(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleHub]:
    with fed_hub(backend, tmp_path_factory.mktemp(f"shared-record-{backend.name}")) as fed:
        yield fed.hub


def identifiers(patient: Resource) -> set[tuple[str, str]]:
    return {(i["system"], i["value"]) for i in patient.get("identifier", [])}


def sources(resources: list[Resource]) -> list[str]:
    """The source organisation of each resource (its meta.source), sorted."""
    return sorted(r["meta"]["source"].removeprefix(SOURCE_BASE).split("#")[0] for r in resources)


def about(hub: ExampleHub, resource_type: str, patient: Resource) -> list[Resource]:
    field = "patient" if resource_type == "Consent" else "subject"
    return hub.search(resource_type, **{field: f"Patient/{patient['id']}"})


def test_nothing_failed_and_nothing_waits(hub: ExampleHub) -> None:
    counts = hub.inbox.counts()
    statuses = {status for by_status in counts.values() for status in by_status}
    assert statuses <= {"applied", "withheld"}, counts
    assert counts["vcse/clients"]["withheld"] == 1  # Kwabena: consent_to_share = N


@pytest.mark.parametrize("person", PEOPLE)
def test_every_example_person_is_one_patient(hub: ExampleHub, person: str) -> None:
    hub.patient(NHS, person)  # asserts exactly one


def test_adaeze_is_one_patient_across_all_four_sources(hub: ExampleHub) -> None:
    patient = hub.patient(NHS, "9990000018")
    assert {
        (NHS, "9990000018"),
        (MRN, "RV5A000123"),
        (VCSE_CLIENT, "C-000417"),
    } <= identifiers(patient)
    assert hub.patient(MRN, "RV5A000123")["id"] == patient["id"]
    encounters = about(hub, "Encounter", patient)
    assert sources(encounters) == [
        "G85901",
        "G85901",
        "LEW-MIND",
        "LEW-MIND",
        "RJ2",
        "RV5",
        "RV5",
    ]
    assert sources(about(hub, "CarePlan", patient)) == ["G85901", "LEW-MIND", "RV5", "RV5"]
    responses = about(hub, "QuestionnaireResponse", patient)
    assert sorted(r["questionnaire"].rsplit("/", 1)[-1] for r in responses) == [
        "dialog",
        "phq-9",
        "swemwbs",
    ]
    assert [c["status"] for c in about(hub, "Consent", patient)] == ["active"]


def test_thomas_guest_bed_stay_and_district_nursing(hub: ExampleHub) -> None:
    patient = hub.patient(NHS, "9990000026")
    encounters = {e["identifier"][0]["value"]: e for e in about(hub, "Encounter", patient)}
    stay = encounters["V0000503"]
    assert stay["status"] == "finished"  # the A03 after the A01
    assert stay["period"]["end"].startswith("2026-04-06T11:00")
    assert sources(about(hub, "Encounter", patient)).count("RJ2") == 2  # 1 done + 1 planned
    assert "RJ2" in sources(about(hub, "CarePlan", patient))


def test_marisols_vcse_record_without_nhs_number_links_by_demographics(hub: ExampleHub) -> None:
    patient = hub.patient(NHS, "9990000034")
    vcse = (VCSE_CLIENT, "C-000418")
    assert vcse in identifiers(patient)
    assert hub.patient(*vcse)["id"] == patient["id"]
    assert len(hub.search("Patient", family="Ortega-Díaz")) == 1


def test_samiras_newer_address_is_kept(hub: ExampleHub) -> None:
    patient = hub.patient(NHS, "9990000042")
    assert patient["address"][0]["line"] == ["17 Manor Avenue"]


def test_daniels_duplicate_is_merged_and_either_identifier_finds_the_survivor(
    hub: ExampleHub,
) -> None:
    survivor = hub.patient(NHS, "9990000077")
    assert hub.patient(MRN, "RV5A000777")["id"] == survivor["id"]
    assert hub.patient(MRN, "RV5A000456")["id"] == survivor["id"]
    replaced = [
        link["other"]["reference"]
        for link in survivor.get("link", [])
        if link["type"] == "replaces"
    ]
    assert len(replaced) == 1
    retired = hub.get(replaced[0])
    assert retired["active"] is False
    assert retired["link"][0]["other"]["reference"] == f"Patient/{survivor['id']}"


def test_kwabena_without_consent_reaches_nothing(hub: ExampleHub) -> None:
    assert hub.search("Patient", identifier=f"{NHS}|9990000050") == []
    client = f"{HUB_ID}/CATFORD-HSG/client-ref|H-2201"
    assert hub.search("Patient", identifier=client) == []
    assert hub.search("Consent", identifier=f"{HUB_ID}/CATFORD-HSG/consent|H-2201") == []


def test_every_applied_item_has_its_provenance(hub: ExampleHub) -> None:
    applied = hub.inbox.list(status="applied", limit=1000)
    assert applied
    for item in applied:
        provenance = hub.get(f"Provenance/{hub.provenance_id(item.id)}")
        assert provenance["policy"][0].startswith(
            f"https://fhir.hub.example/mappings/{item.mapping}|"
        )
        assert provenance["entity"][0]["what"]["identifier"]["value"].endswith(f"-{item.id}")
        assert provenance["target"]


def test_no_vcse_notes_reach_the_shared_record(hub: ExampleHub) -> None:
    with (MAPPINGS / "vcse/examples/sessions.csv").open(encoding="utf-8-sig") as rows:
        notes = [row["notes"].strip() for row in csv.DictReader(rows) if row["notes"].strip()]
    assert notes
    everything = hub.http.get("/fhir/Encounter", params={"_count": "500"}).text
    assert not [note for note in notes if note in everything]


def test_the_pipeline_wrote_every_type_judged_below(hub: ExampleHub) -> None:
    held = {t for t in hub.resource_types() if hub.search(t)}
    assert held - DEFINITIONS == set(WRITTEN_TYPES)


@pytest.mark.parametrize("backend", ["hapi"], indirect=True)
@pytest.mark.parametrize("resource_type", WRITTEN_TYPES)
def test_what_the_pipeline_wrote_passes_hapis_validate(
    hub: ExampleHub, backend: Backend, resource_type: str
) -> None:
    written = hub.search(resource_type)
    assert written
    with hapi_client(backend.fhir_url) as judge:
        errors = {
            f"{resource_type}/{r['id']}": found
            for r in written
            if (found := validation_errors(judge, r))
        }
    assert errors == {}


# --- resends and late messages (last: they send more) -------------------------------------------


def test_resending_every_message_and_file_changes_nothing(hub: ExampleHub) -> None:
    before, counts = hub.versions(), hub.inbox.counts()
    answers = hub.send_every_feed()
    assert answers and all(item["duplicate"] for a in answers for item in a["items"])
    assert hub.inbox.counts() == counts
    assert hub.versions() == before


def test_a_resent_message_changes_nothing(hub: ExampleHub) -> None:
    message = example_messages("slam-epr/examples/adt.hl7")[0]
    patient = hub.patient(NHS, "9990000018")
    before = hub.inbox.counts()
    assert [ack_code(a) for a in hub.mllp([message, message])] == ["AA", "AA"]
    hub.settle()
    assert hub.inbox.counts() == before
    assert hub.patient(NHS, "9990000018")["meta"]["versionId"] == patient["meta"]["versionId"]


def test_an_older_a08_arriving_late_does_not_overwrite_newer_demographics(hub: ExampleHub) -> None:
    older = (
        b"MSH|^~\\&|SLAM-EPR|RV5|SEL-HUB|SEL-INT|20260405160000||ADT^A08^ADT_A01|RV5-0009107|P|2.4"
        b"|||AL|NE||UNICODE UTF-8\r"
        b"EVN|A08|20260405160000\r"
        b"PID|1||9990000042^^^NHS^NH~RV5A000567^^^RV5^MR||HADDAD^SAMIRA^^^MS||20010509|F|||"
        b"99 Old Road^^LONDON^^SE13 7JL^GBR^H||07700 900456^PRN^CP|||||||||S\r"
    )
    assert [ack_code(a) for a in hub.mllp([older])] == ["AA"]
    hub.settle()
    patient = hub.patient(NHS, "9990000042")
    assert patient["address"][0]["line"] == ["17 Manor Avenue"]
    item = hub.inbox.list(mapping="slam-epr/adt", limit=1)[0]
    assert item.message_id == "RV5-0009107"
    assert item.status == "applied"  # recorded, with nothing newer overwritten
