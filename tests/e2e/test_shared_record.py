"""From raw bytes to FHIR search results: every example person of the source contract.

One hub runs for the module, as `hub serve` runs it: the FHIR API, the ingest API, the MLLP
listener and a worker, on the embedded store. The ADT feed goes through the real MLLP
listener, every other example file through POST /ingest/{mapping}, in the demo's order.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.app import create_app
from hub.mapping import SOURCE_BASE
from hub.settings import REPOSITORY, HubSettings
from tests._server import running_hub
from tests.e2e._example_hub import ExampleHub, ack_code, example_messages

NHS = "https://fhir.nhs.uk/Id/nhs-number"
MRN = "https://fhir.hub.example/Id/RV5/mrn"
MAPPINGS = REPOSITORY / "mappings"


class Hub(ExampleHub):
    """The running hub and what the tests need to reach it."""

    def about(self, resource_type: str, patient: dict[str, Any]) -> list[dict[str, Any]]:
        field = "patient" if resource_type == "Consent" else "subject"
        return self.search(resource_type, **{field: f"Patient/{patient['id']}"})


def hub_settings(data_dir: Path, **overrides: Any) -> HubSettings:
    return HubSettings(
        _env_file=None, data_dir=data_dir, mllp_port=0, workers=1, database_url="", **overrides
    )


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    settings = hub_settings(tmp_path_factory.mktemp("shared-record"))
    app = create_app(settings)
    with running_hub(settings, app=app) as url:
        running = Hub(url, app)
        running.send_every_feed()
        yield running


def identifiers(patient: dict[str, Any]) -> set[tuple[str, str]]:
    return {(i["system"], i["value"]) for i in patient.get("identifier", [])}


def sources(resources: list[dict[str, Any]]) -> list[str]:
    return sorted(r["meta"]["source"].removeprefix(SOURCE_BASE).split("#")[0] for r in resources)


def test_nothing_failed_and_nothing_waits(hub: Hub) -> None:
    counts = hub.inbox.counts()
    statuses = {status for by_status in counts.values() for status in by_status}
    assert statuses <= {"applied", "withheld"}, counts
    assert counts["vcse/clients"]["withheld"] == 1  # Kwabena: consent_to_share = N


def test_adaeze_is_one_patient_across_all_four_sources(hub: Hub) -> None:
    patient = hub.patient(NHS, "9990000018")
    assert {
        (NHS, "9990000018"),
        (MRN, "RV5A000123"),
        ("https://fhir.hub.example/Id/LEW-MIND/client-ref", "C-000417"),
    } <= identifiers(patient)
    assert hub.patient(MRN, "RV5A000123")["id"] == patient["id"]
    encounters = hub.about("Encounter", patient)
    assert sources(encounters) == [
        "G85901",
        "G85901",
        "LEW-MIND",
        "LEW-MIND",
        "RJ2",
        "RV5",
        "RV5",
    ]
    assert sources(hub.about("CarePlan", patient)) == ["G85901", "LEW-MIND", "RV5", "RV5"]
    responses = hub.about("QuestionnaireResponse", patient)
    assert sorted(r["questionnaire"].rsplit("/", 1)[-1] for r in responses) == [
        "dialog",
        "phq-9",
        "swemwbs",
    ]
    assert [c["status"] for c in hub.about("Consent", patient)] == ["active"]


def test_thomas_guest_bed_stay_and_district_nursing(hub: Hub) -> None:
    patient = hub.patient(NHS, "9990000026")
    encounters = {e["identifier"][0]["value"]: e for e in hub.about("Encounter", patient)}
    stay = encounters["V0000503"]
    assert stay["status"] == "finished"  # the A03 after the A01
    assert stay["period"]["end"].startswith("2026-04-06T11:00")
    assert sources(hub.about("Encounter", patient)).count("RJ2") == 2  # 1 done + 1 planned
    assert "RJ2" in sources(hub.about("CarePlan", patient))


def test_marisols_vcse_record_without_nhs_number_links_by_demographics(hub: Hub) -> None:
    patient = hub.patient(NHS, "9990000034")
    vcse = ("https://fhir.hub.example/Id/LEW-MIND/client-ref", "C-000418")
    assert vcse in identifiers(patient)
    assert hub.patient(*vcse)["id"] == patient["id"]
    assert len(hub.search("Patient", family="Ortega-Díaz")) == 1


def test_samiras_newer_address_is_kept(hub: Hub) -> None:
    patient = hub.patient(NHS, "9990000042")
    assert patient["address"][0]["line"] == ["17 Manor Avenue"]


def test_daniels_duplicate_is_merged_and_either_identifier_finds_the_survivor(hub: Hub) -> None:
    survivor = hub.patient(NHS, "9990000077")
    assert hub.patient(MRN, "RV5A000777")["id"] == survivor["id"]
    assert hub.patient(MRN, "RV5A000456")["id"] == survivor["id"]
    replaced = [
        link["other"]["reference"]
        for link in survivor.get("link", [])
        if link["type"] == "replaces"
    ]
    assert len(replaced) == 1
    retired = hub.http.get(f"/fhir/{replaced[0]}").json()
    assert retired["active"] is False
    assert retired["link"][0]["other"]["reference"] == f"Patient/{survivor['id']}"


def test_kwabena_without_consent_reaches_nothing(hub: Hub) -> None:
    assert hub.search("Patient", identifier=f"{NHS}|9990000050") == []
    client = "https://fhir.hub.example/Id/CATFORD-HSG/client-ref|H-2201"
    assert hub.search("Patient", identifier=client) == []
    assert (
        hub.search("Consent", identifier="https://fhir.hub.example/Id/CATFORD-HSG/consent|H-2201")
        == []
    )


def test_every_applied_item_has_its_provenance(hub: Hub) -> None:
    applied = hub.inbox.list(status="applied", limit=1000)
    assert applied
    for item in applied:
        response = hub.http.get(f"/fhir/Provenance/inbox-{item.id}")
        assert response.status_code == 200, item
        provenance = response.json()
        assert provenance["policy"][0].startswith(
            f"https://fhir.hub.example/mappings/{item.mapping}|"
        )
        assert provenance["entity"][0]["what"]["identifier"]["value"] == str(item.id)
        assert provenance["target"]


def test_no_vcse_notes_reach_the_shared_record(hub: Hub) -> None:
    with (MAPPINGS / "vcse/examples/sessions.csv").open(encoding="utf-8-sig") as rows:
        notes = [row["notes"].strip() for row in csv.DictReader(rows) if row["notes"].strip()]
    assert notes
    everything = hub.http.get("/fhir/Encounter", params={"_count": "500"}).text
    assert not [note for note in notes if note in everything]


def test_a_resent_message_changes_nothing(hub: Hub) -> None:
    message = example_messages("slam-epr/examples/adt.hl7")[0]
    patient = hub.patient(NHS, "9990000018")
    before = hub.inbox.counts()
    assert [ack_code(a) for a in hub.mllp([message, message])] == ["AA", "AA"]
    hub.settle()
    assert hub.inbox.counts() == before
    assert hub.patient(NHS, "9990000018")["meta"]["versionId"] == patient["meta"]["versionId"]


def test_an_older_a08_arriving_late_does_not_overwrite_newer_demographics(hub: Hub) -> None:
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
