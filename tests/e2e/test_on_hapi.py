"""The pipeline against a FHIR server that goes away: HAPI FHIR stopped and started again in the
middle of a large ingest (on a HAPI of the test's own, so that nothing else depends on it being
up) loses nothing and doubles nothing, and `hub ingest` says when records still wait for it.

The shared record itself on HAPI (every example person, HAPI's `$validate` on what the pipeline
wrote) is test_shared_record.py's and test_care_model.py's, run on every backend.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hub._serving import Served
from hub.app import create_app
from hub.bench._synthetic import nhs_number
from hub.pipeline import Inbox
from hub.settings import REPOSITORY, HubSettings
from hub.state import open_database
from tests._server import free_port, subprocess_env
from tests.e2e._on_hapi import OwnHapi, hapi_client, identifier_values
from tests.pipeline._workers import generated_adt

NHS = "https://fhir.nhs.uk/Id/nhs-number"
VISIT = "https://fhir.hub.example/Id/RV5/visit-number"


# --- HAPI restarted in the middle of a large ingest ----------------------------------------------

SEED = 5
MESSAGES = 2000
PERSONS = 400
"""`generated_adt`: 2000 A04/A08 messages about 400 people, 1600 visits (every fifth is an A08)."""
OUTAGE_SECONDS = 5.0
"""Between HAPI stopping and `scripts/hapi start` (which then takes 20-30 s)."""


def ingest_env(data_dir: Path, fhir_url: str) -> dict[str, str]:
    return subprocess_env(
        HUB_DATA_DIR=str(data_dir),
        HUB_FHIR_URL=fhir_url,
        HUB_DATABASE_URL="",
        HUB_LOG_LEVEL="warning",
        # Retried soon after HAPI is back (the defaults wait up to 300 s between tries).
        HUB_RETRY_BASE_SECONDS="0.5",
        HUB_RETRY_MAX_SECONDS="2",
    )


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
