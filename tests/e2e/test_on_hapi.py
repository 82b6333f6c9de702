"""The pipeline end to end on HAPI FHIR (issue 5): the hub with HUB_FHIR_URL naming a real HAPI.

One hub runs for the module as `hub serve` runs it (FHIR API, ingest API, MLLP listener, a
worker), its state in tmp, its shared record on a HAPI of the module's own (`OwnHapi`: the
example people have fixed identifiers, and the shared test HAPI holds earlier runs' records of
them). Every example feed is sent once, and the tests read the result through the hub's /fhir,
which the hub answers from HAPI: the same promises test_shared_record.py checks on the
embedded store. HAPI's `$validate` then judges every resource the pipeline wrote (issue 9).

Last, HAPI is stopped and started again in the middle of a large ingest (on another HAPI of its
own, so that nothing else depends on it being up): nothing is lost, nothing is doubled.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from hub._serving import Served
from hub.app import create_app
from hub.bench._synthetic import nhs_number
from hub.mapping import SOURCE_BASE
from hub.pipeline import Inbox
from hub.settings import REPOSITORY, HubSettings
from hub.state import open_database
from tests._server import free_port, running_hub
from tests.e2e._example_hub import ExampleHub, Resource, ack_code
from tests.e2e._on_hapi import OwnHapi, hapi_client, identifier_values, validation_errors
from tests.pipeline._workers import generated_adt

NHS = "https://fhir.nhs.uk/Id/nhs-number"
HUB_ID = "https://fhir.hub.example/Id"
MRN = f"{HUB_ID}/RV5/mrn"
VISIT = f"{HUB_ID}/RV5/visit-number"
VCSE_CLIENT = f"{HUB_ID}/LEW-MIND/client-ref"
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


@pytest.fixture(scope="module")
def own_hapi() -> Iterator[OwnHapi]:
    with OwnHapi() as hapi:
        yield hapi


@pytest.fixture(scope="module")
def hub(own_hapi: OwnHapi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleHub]:
    settings = HubSettings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("on-hapi"),
        fhir_url=own_hapi.url,
        database_url="",
        mllp_port=0,
        workers=1,
    )
    app = create_app(settings)
    with running_hub(settings, app=app) as url:
        running = ExampleHub(url, app)
        running.send_every_feed()
        yield running
        running.http.close()


@pytest.fixture(scope="module")
def judge(own_hapi: OwnHapi) -> Iterator[httpx.Client]:
    """HAPI itself, for its `$validate`."""
    with hapi_client(own_hapi.url) as client:
        yield client


def identifiers(patient: Resource) -> set[tuple[str, str]]:
    return {(i["system"], i["value"]) for i in patient.get("identifier", [])}


def sources(resources: list[Resource]) -> list[str]:
    """The source organisation of each resource (its meta.source), sorted."""
    return sorted(r["meta"]["source"].removeprefix(SOURCE_BASE).split("#")[0] for r in resources)


def about(hub: ExampleHub, resource_type: str, patient: Resource) -> list[Resource]:
    return hub.search(resource_type, subject=f"Patient/{patient['id']}")


# --- the shared record, read through the hub from HAPI ------------------------------------------


def test_every_example_was_applied_or_withheld(hub: ExampleHub) -> None:
    counts = hub.inbox.counts()
    assert {s for by_status in counts.values() for s in by_status} <= {"applied", "withheld"}
    assert counts["vcse/clients"]["withheld"] == 1  # Kwabena: consent_to_share = N


@pytest.mark.parametrize("person", PEOPLE)
def test_every_example_person_is_one_patient(hub: ExampleHub, person: str) -> None:
    hub.patient(NHS, person)  # asserts exactly one


def test_adaeze_is_one_patient_across_all_four_sources(hub: ExampleHub) -> None:
    patient = hub.patient(NHS, "9990000018")
    assert {(MRN, "RV5A000123"), (VCSE_CLIENT, "C-000417")} <= identifiers(patient)
    assert hub.patient(MRN, "RV5A000123")["id"] == patient["id"]
    assert sources(about(hub, "Encounter", patient)) == [
        "G85901",
        "G85901",
        "LEW-MIND",
        "LEW-MIND",
        "RJ2",
        "RV5",
        "RV5",
    ]
    assert sources(about(hub, "CarePlan", patient)) == ["G85901", "LEW-MIND", "RV5", "RV5"]


def test_marisols_vcse_record_without_nhs_number_links_by_demographics(hub: ExampleHub) -> None:
    patient = hub.patient(NHS, "9990000034")
    assert (VCSE_CLIENT, "C-000418") in identifiers(patient)
    assert hub.patient(VCSE_CLIENT, "C-000418")["id"] == patient["id"]
    assert len(hub.search("Patient", family="Ortega-Díaz")) == 1


def test_daniels_duplicate_is_merged_and_either_identifier_finds_the_survivor(
    hub: ExampleHub,
) -> None:
    survivor = hub.patient(NHS, "9990000077")
    assert hub.patient(MRN, "RV5A000777")["id"] == survivor["id"]
    assert hub.patient(MRN, "RV5A000456")["id"] == survivor["id"]
    replaced = [
        link["other"]["reference"] for link in survivor["link"] if link["type"] == "replaces"
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
        provenance = hub.get(f"Provenance/inbox-{item.id}")
        assert provenance["entity"][0]["what"]["identifier"]["value"] == str(item.id)
        assert provenance["target"]


# --- HAPI's validator on what the pipeline wrote (issue 9) ---------------------------------------


def test_the_pipeline_wrote_every_type_judged_below(hub: ExampleHub) -> None:
    held = {t for t in hub.resource_types() if hub.search(t)}
    assert held == set(WRITTEN_TYPES)


@pytest.mark.parametrize("resource_type", WRITTEN_TYPES)
def test_what_the_pipeline_wrote_passes_hapis_validate(
    hub: ExampleHub, judge: httpx.Client, resource_type: str
) -> None:
    written = hub.search(resource_type)
    assert written

    errors = {
        f"{resource_type}/{r['id']}": found
        for r in written
        if (found := validation_errors(judge, r))
    }

    assert errors == {}


# --- resends and late messages (last of the examples: they send more) ----------------------------


def test_resending_every_message_and_file_changes_nothing(hub: ExampleHub) -> None:
    before, counts = hub.versions(), hub.inbox.counts()
    answers = hub.send_every_feed()
    assert answers and all(item["duplicate"] for a in answers for item in a["items"])
    assert hub.inbox.counts() == counts
    assert hub.versions() == before


def test_an_older_a08_arriving_late_does_not_overwrite_newer_demographics(
    hub: ExampleHub,
) -> None:
    older = (
        b"MSH|^~\\&|SLAM-EPR|RV5|SEL-HUB|SEL-INT|20260405160000||ADT^A08^ADT_A01|RV5-0009107|P|2.4"
        b"|||AL|NE||UNICODE UTF-8\r"
        b"EVN|A08|20260405160000\r"
        b"PID|1||9990000042^^^NHS^NH~RV5A000567^^^RV5^MR||HADDAD^SAMIRA^^^MS||20010509|F|||"
        b"99 Old Road^^LONDON^^SE13 7JL^GBR^H||07700 900456^PRN^CP|||||||||S\r"
    )
    before = hub.patient(NHS, "9990000042")
    assert before["address"][0]["line"] == ["17 Manor Avenue"]

    assert [ack_code(a) for a in hub.mllp([older])] == ["AA"]
    hub.settle()

    patient = hub.patient(NHS, "9990000042")
    assert patient["address"] == before["address"]
    item = hub.inbox.list(mapping="slam-epr/adt", limit=1)[0]
    assert item.message_id == "RV5-0009107"
    assert item.status == "applied"  # recorded, with nothing newer overwritten


# --- HAPI restarted in the middle of a large ingest ----------------------------------------------

SEED = 5
MESSAGES = 2000
PERSONS = 400
"""`generated_adt`: 2000 A04/A08 messages about 400 people, 1600 visits (every fifth is an A08)."""
OUTAGE_SECONDS = 5.0
"""Between HAPI stopping and `scripts/hapi start` (which then takes 20-30 s)."""


def ingest_env(data_dir: Path, fhir_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_DATA_DIR=str(data_dir),
        HUB_FHIR_URL=fhir_url,
        HUB_DATABASE_URL="",
        HUB_LOG_LEVEL="warning",
        # Retried soon after HAPI is back (the defaults wait up to 300 s between tries).
        HUB_RETRY_BASE_SECONDS="0.5",
        HUB_RETRY_MAX_SECONDS="2",
    )
    return env


def hub_ingest(file: Path, *args: str) -> list[str]:
    """The command line of `hub ingest slam-epr/adt FILE ARGS`."""
    return [
        sys.executable,
        "-m",
        "hub",
        "ingest",
        "slam-epr/adt",
        str(file),
        "--no-progress",
        *args,
    ]


def wait_for(condition: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.5)


@contextmanager
def inbox_of(data_dir: Path) -> Iterator[Inbox]:
    """The inbox of the hub state in `data_dir` (SQLite, shared with the process writing it)."""
    db = open_database(f"sqlite:///{data_dir / 'hub.db'}")
    try:
        yield Inbox(db)
    finally:
        db.close()


def applied(data_dir: Path) -> int:
    with inbox_of(data_dir) as inbox:
        return inbox.counts().get("slam-epr/adt", {}).get("applied", 0)


@pytest.fixture
def restartable_hapi() -> Iterator[OwnHapi]:
    """Another HAPI of its own: the shared one and the examples' one keep serving."""
    with OwnHapi() as hapi:
        yield hapi


def test_hapi_restarted_during_a_large_ingest_loses_nothing_and_doubles_nothing(
    restartable_hapi: OwnHapi, tmp_path: Path
) -> None:
    feed = tmp_path / "adt.hl7"
    feed.write_bytes(generated_adt(SEED, MESSAGES, PERSONS))
    data_dir = tmp_path / "hub"
    data_dir.mkdir()
    started = time.monotonic()
    with (tmp_path / "stdout").open("w") as stdout, (tmp_path / "stderr").open("w") as stderr:
        ingest = subprocess.Popen(
            hub_ingest(feed, "--workers", "2"),
            cwd=REPOSITORY,
            env=ingest_env(data_dir, restartable_hapi.url),
            stdout=stdout,
            stderr=stderr,
        )
        try:
            wait_for((data_dir / "hub.db").exists, "hub state", 60)
            wait_for(lambda: applied(data_dir) >= MESSAGES // 3, "third applied", 600)

            restartable_hapi.stop()
            applied_when_stopped = applied(data_dir)
            time.sleep(OUTAGE_SECONDS)
            restarted_in = restartable_hapi.start()

            assert ingest.wait(timeout=900) == 0, (tmp_path / "stderr").read_text()[-3000:]
        finally:
            if ingest.poll() is None:
                ingest.kill()
                ingest.wait()
    print(
        f"\n{MESSAGES} ADT messages on HAPI in {time.monotonic() - started:.0f} s, HAPI "
        f"stopped after {applied_when_stopped} and started again in {restarted_in:.0f} s"
    )

    # Every message applied, none failed; the outage was met (some were retried).
    summary = (tmp_path / "stdout").read_text().splitlines()[-1]
    assert summary.endswith("; 0 failed"), summary
    assert applied_when_stopped < MESSAGES
    with inbox_of(data_dir) as inbox:
        assert inbox.counts() == {"slam-epr/adt": {"applied": MESSAGES}}
        assert any(item.attempts for item in inbox.list(status="applied", limit=MESSAGES))

    # On HAPI: exactly one Patient per person, one Encounter per visit, one Provenance per
    # message.
    with hapi_client(restartable_hapi.url) as hapi:
        patients = identifier_values(hapi, "Patient", NHS)
        assert sorted(patients) == sorted(nhs_number(SEED, i) for i in range(PERSONS))
        encounters = identifier_values(hapi, "Encounter", VISIT)
        visits = [f"B{SEED}V{n:08d}" for n in range(MESSAGES) if n % 5 != 4]
        assert sorted(encounters) == visits
        provenances = hapi.get("/Provenance", params={"_summary": "count"}).json()
        assert provenances["total"] == MESSAGES


# --- hub ingest while the FHIR server is away --------------------------------------------------


def test_hub_ingest_does_not_report_success_while_its_records_wait_for_the_fhir_server(
    tmp_path: Path,
) -> None:
    # A FHIR server that is away (being restarted, say) when a small file arrives: one
    # person, so one lane, whose first record goes back to wait for its retry.
    feed = tmp_path / "adt.hl7"
    feed.write_bytes(generated_adt(SEED + 1, 3, 1))
    away = f"http://127.0.0.1:{free_port()}/fhir"
    env = {**ingest_env(tmp_path, away), "HUB_FHIR_RETRIES": "0"}

    # Retries every 2 s at most (ingest_env) for 5 s: retries put off again are no progress,
    # so it gives up 5 s after the start rather than going on for ever.
    started = time.monotonic()
    result = subprocess.run(
        hub_ingest(feed, "--retry-for", "5"),
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    with inbox_of(tmp_path) as inbox:
        assert inbox.counts() == {"slam-epr/adt": {"pending": 3}}  # the server never answered
    # Success would say the records are in the shared record: it must not be claimed.
    assert result.returncode == 1, result.stdout
    assert "3 still to be written: the FHIR server did not take them" in result.stdout
    assert time.monotonic() - started < 30


def test_hub_ingest_waits_for_a_fhir_server_that_comes_back(tmp_path: Path) -> None:
    """The server is away when the file arrives and back a few seconds later: `hub ingest`
    goes on retrying (within --retry-for) and writes everything."""
    feed = tmp_path / "adt.hl7"
    feed.write_bytes(generated_adt(SEED + 2, 3, 1))
    port = free_port()
    env = {**ingest_env(tmp_path / "ingest", f"http://127.0.0.1:{port}/fhir")}
    env["HUB_FHIR_RETRIES"] = "0"
    ingest = subprocess.Popen(
        hub_ingest(feed, "--retry-for", "60"),
        cwd=REPOSITORY,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)  # it has tried, and is waiting to try again
    server = HubSettings(_env_file=None, data_dir=tmp_path / "server", database_url="")
    with Served(create_app(server, pipeline=False), server, port=port):
        output, _ = ingest.communicate(timeout=90)
    assert ingest.returncode == 0, output
    assert "3 applied" in output and "still to be written" not in output
