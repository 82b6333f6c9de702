"""What the pipeline survives: a worker killed in the middle of a message, a FHIR server that
fails and comes back, and messages re-sent over MLLP.

Everything is real: worker processes killed with SIGKILL, an embedded store file checked for
integrity afterwards, a hub FHIR API on a real socket as the remote FHIR server (respx only
decides, request by request, whether it is reachable), the MLLP listener, and the hub state on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from hub.app import create_app
from hub.demo import FEEDS
from hub.listeners import send_messages
from hub.pipeline import InboxItem, provenance_id, run_pipeline_until_idle
from hub.settings import REPOSITORY, HubSettings
from hub.state import instance_id
from hub.store import SQLiteStore
from tests._server import running_hub, subprocess_env
from tests.pipeline._workers import (
    NHS,
    VISIT,
    Pipeline,
    business_key,
    business_keys,
    example,
    hl7_messages,
    hub_settings,
    item_number,
    open_parts,
    versions,
)

ADT = hl7_messages(example("slam-epr/examples/adt.hl7"))
PEOPLE = ("9990000018", "9990000026", "9990000034", "9990000042", "9990000077")
"""NHS numbers of the example people the shared record holds (Kwabena never consented)."""
VISITS = ("V0000501", "V0000502", "V0000503", "V0000504", "V0000505")
LEASE_SECONDS = 0.5


def queue_examples(settings: HubSettings) -> list[int]:
    """Every example feed into the inbox, as `hub ingest --queue-only` would; their ids."""
    pipeline = Pipeline(open_parts(settings))
    try:
        return [
            item_id
            for feed in FEEDS
            for item_id in pipeline.add(feed.mapping, example(feed.file), feed.file)
        ]
    finally:
        pipeline.close()


def store_catalogue(settings: HubSettings) -> dict[tuple[str, ...], int]:
    store = SQLiteStore(settings.data_dir / "fhir.sqlite")
    try:
        return business_keys(store)
    finally:
        store.close()


def provenance_targets(settings: HubSettings) -> dict[str, set[tuple[str, ...]]]:
    """Each Provenance's targets, named by the targets' business keys (not their ids)."""
    store = SQLiteStore(settings.data_dir / "fhir.sqlite")
    try:
        found = {}
        for resource_type, id in versions(store):
            if resource_type == "Provenance":
                provenance = store.read("Provenance", id)
                found[item_number(id)] = {
                    business_key(store.read(*t["reference"].split("/")), store)
                    for t in provenance["target"]
                }
        return found
    finally:
        store.close()


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def worker_env(settings: HubSettings) -> dict[str, str]:
    return subprocess_env(
        HUB_DATA_DIR=str(settings.data_dir),
        HUB_DATABASE_URL=settings.state_url,
        HUB_WORKER_LEASE_SECONDS=str(LEASE_SECONDS),
        HUB_LOG_LEVEL="warning",
    )


# -- a worker killed in the middle of a message ---------------------------------------------------


def applied_order(settings: HubSettings) -> list[int]:
    """The inbox items whose records changed the store, in the order they first did: by the
    `recorded` time of their Provenance's first version (Provenance/inbox-STATE-N)."""
    store = SQLiteStore(settings.data_dir / "fhir.sqlite")
    try:
        first: list[tuple[str, int]] = []
        for resource_type, id in versions(store):
            if resource_type == "Provenance":
                oldest = store.history("Provenance", id, count=100).entries[-1]
                assert oldest.version_id == "1"
                first.append((oldest.resource["recorded"], int(item_number(id))))  # type: ignore[index]
        return [item_id for _, item_id in sorted(first)]
    finally:
        store.close()


def run_in_order(settings: HubSettings, order: list[int]) -> None:
    """The examples queued and applied by a worker never interrupted, one item at a time in
    `order`: what an interrupted run that applied them in that order must end with."""
    queue_examples(settings)
    pipeline = Pipeline(open_parts(settings))
    try:
        for item_id in order:
            assert pipeline.worker.handle(pipeline.item(item_id)) == "applied", item_id
    finally:
        pipeline.close()


@pytest.mark.parametrize(
    ("point", "victim"),
    [
        # Inbox ids, by the order of FEEDS: ADT 1-13, VCSE clients 14-16, GP 17-18, district
        # nursing visits 19-21, ...
        ("store-uncommitted", 3),  # Thomas Reilly's guest-bed admission (A01)
        ("store-committed", 3),
        ("before-finish", 3),
        ("store-committed", 13),  # the A40 merge
        ("before-finish", 15),  # Marisol's VCSE client row: no NHS number, linked by demographics
    ],
)
def test_a_worker_killed_mid_message_loses_nothing_and_doubles_nothing(
    tmp_path: Path, point: str, victim: int
) -> None:
    settings = hub_settings(tmp_path / "data", "", worker_lease_seconds=LEASE_SECONDS)
    ids = queue_examples(settings)
    assert ids == list(range(1, len(ids) + 1))

    killed = subprocess.run(
        [sys.executable, "-m", "tests.pipeline._workers", "kill", point, str(victim)],
        cwd=REPOSITORY,
        env=worker_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    found = re.search(rf"killing at {point} of (.*)", killed.stdout)
    assert found, killed.stdout
    in_transaction = found[1].split()  # Provenance ids: our victim, records written with it
    assert str(victim) in map(item_number, in_transaction)

    # What the dead worker left: its items claimed, unfinished; in the store all of their
    # transaction or none of it.
    parts = open_parts(settings)
    try:
        victims = [
            int(item_number(p))
            for p in in_transaction
            if parts.inbox.get(int(item_number(p))).status == "processing"  # type: ignore[union-attr]
        ]
        assert victim in victims
        provenance_ids = {i for t, i in versions(parts.store) if t == "Provenance"}
        for dead in victims:
            assert (provenance_id(instance_id(parts.db), dead) in provenance_ids) is (
                point != "store-uncommitted"
            )
    finally:
        parts.close()

    time.sleep(LEASE_SECONDS + 0.1)  # the dead worker's lease runs out
    counts = run_pipeline_until_idle(settings)
    assert counts.get("failed", 0) == 0

    pipeline = Pipeline(open_parts(settings))
    try:
        statuses = {i: pipeline.item(i).status.value for i in ids}
        assert set(statuses.values()) <= {"applied", "withheld"}, pipeline.inbox.counts()
        assert statuses[victim] == "applied"
        assert list(statuses.values()).count("withheld") == 2  # Kwabena's client row, session
        for nhs_number in PEOPLE:
            assert len(pipeline.by_identifier("Patient", NHS, nhs_number)) == 1, nhs_number
        for visit in VISITS:
            assert len(pipeline.by_identifier("Encounter", VISIT, visit)) == 1, visit
    finally:
        pipeline.close()

    # Every resource written as often as by a worker never interrupted that applied the same
    # items in the same order (records of different lanes may take turns differently after
    # a crash), and one Provenance per applied item, targeting the same resources. The one
    # exception, when the store had committed: the dead items are applied again, which
    # changes no resource but rewrites their own Provenance (a new `recorded`: a second
    # version; see
    # test_apply.py::test_the_same_item_applied_twice_leaves_its_provenance_as_it_was).
    reference = hub_settings(tmp_path / "reference", "")
    run_in_order(reference, applied_order(settings))
    catalogue = store_catalogue(settings)
    expected = store_catalogue(reference)
    if point != "store-uncommitted":
        for dead in victims:
            rewritten = ("Provenance", str(dead))
            assert catalogue[rewritten] - expected[rewritten] in (0, 1)
            expected[rewritten] = catalogue[rewritten]
    assert catalogue == expected
    assert provenance_targets(settings) == provenance_targets(reference)
    assert integrity(settings.data_dir / "fhir.sqlite") == "ok"
    assert integrity(settings.data_dir / "hub.db") == "ok"


# -- a FHIR server that fails and comes back --------------------------------------------------------


class Door:
    """Whether the FHIR server can be reached, request by request: "503" (a proxy in front of
    it answers Service Unavailable), "refused" (nothing listens), "timeout" (it never
    answers), "write-timeout" (reads work, a write never answers), "lost" (the write reaches
    the server and is applied, but the answer never comes back), or "open"."""

    def __init__(self, base_url: str) -> None:
        self.state = "open"
        self.base_url = base_url
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response | httpx.Request:
        self.seen.append(f"{self.state} {request.method} {request.url.path}")
        write = request.method != "GET"
        if self.state == "503":
            return httpx.Response(503, text="Service Unavailable")
        if self.state == "refused":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if self.state == "timeout" or (self.state == "write-timeout" and write):
            raise httpx.ReadTimeout("timed out", request=request)
        if self.state == "lost" and write:
            self._deliver(request)
            raise httpx.ReadTimeout("timed out", request=request)
        return request  # through to the real server

    def _deliver(self, request: httpx.Request) -> None:
        """Send it for real, around respx (urllib is not httpx), and drop the answer."""
        forwarded = urllib.request.Request(
            str(request.url),
            data=request.content,
            method=request.method,
            headers={k: v for k, v in request.headers.items() if k.lower() != "content-length"},
        )
        with urllib.request.urlopen(forwarded, timeout=30) as answer:
            assert answer.status == 200


@pytest.fixture
def fhir_server(tmp_path: Path) -> Iterator[str]:
    """A real hub FHIR API (no pipeline) on its own embedded store: the remote FHIR server."""
    (tmp_path / "server").mkdir()
    store = SQLiteStore(tmp_path / "server" / "fhir.sqlite")
    settings = HubSettings(_env_file=None, data_dir=tmp_path / "server")
    try:
        with running_hub(settings, store=store, pipeline=False) as url:
            yield url
    finally:
        store.close()


@pytest.fixture
def remote(tmp_path: Path, state_url: str, fhir_server: str) -> Iterator[tuple[Pipeline, Door]]:
    """The pipeline writing to `fhir_server` through RemoteStore (no retries of its own, so
    every failure reaches the worker), behind a `Door`."""
    settings = hub_settings(
        tmp_path / "pipeline",
        state_url,
        fhir_url=f"{fhir_server}/fhir",
        fhir_retries=0,
        fhir_timeout_seconds=10,
    )
    door = Door(fhir_server)
    with respx.mock(assert_all_called=False) as mock:
        mock.route(url__startswith=fhir_server).mock(side_effect=door)
        pipeline = Pipeline(open_parts(settings))
        try:
            yield pipeline, door
        finally:
            pipeline.close()


def fhir_search(base: str, resource_type: str, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base}/fhir/{resource_type}", params=params, timeout=10)
    assert response.status_code == 200, response.text
    return [
        e["resource"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"
    ]


def fhir_read(base: str, reference: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/fhir/{reference}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def claim_and_handle(pipeline: Pipeline) -> list[tuple[int, str]]:
    handled: list[tuple[int, str]] = []

    def done(item: InboxItem, status: str) -> None:
        handled.append((item.id, status))

    pipeline.worker.run_once(done)
    return handled


def until_due(pipeline: Pipeline, item_id: int) -> None:
    due = pipeline.item(item_id).next_attempt_ms / 1000
    time.sleep(max(0.0, due - time.time()) + 0.01)


def test_a_fhir_server_that_fails_and_comes_back_loses_nothing_and_doubles_nothing(
    remote: tuple[Pipeline, Door], fhir_server: str
) -> None:
    pipeline, door = remote
    # Thomas's A01 and A03: one patient, so one lane, the A03 held up behind the A01.
    first, *rest = pipeline.add("slam-epr/adt", ADT[2] + ADT[3], "adt.hl7")
    outages = [
        ("503", "GET /fhir/Patient after 1 attempts: HTTP 503"),
        ("refused", "GET /fhir/Patient after 1 attempts: ConnectError"),
        ("timeout", "GET /fhir/Patient after 1 attempts: ReadTimeout"),
        ("write-timeout", "POST /fhir/ after 1 attempts: ReadTimeout"),
    ]
    for attempt, (state, reason) in enumerate(outages, start=1):
        door.state = state
        assert claim_and_handle(pipeline) == [(first, "pending")], state
        item = pipeline.item(first)
        assert item.status == "pending"
        assert item.attempts == attempt
        assert reason in (item.last_error or ""), (state, item.last_error)
        # Nothing behind it has moved, nothing has failed or been lost.
        for later in rest:
            assert pipeline.item(later).status in ("pending", "processing")
            assert pipeline.item(later).attempts == 0
        lane = pipeline.inbox.counts()["slam-epr/adt"]
        assert sum(lane.values()) == 2
        assert set(lane) <= {"pending", "processing"}
        until_due(pipeline, first)
    assert {line.split()[0] for line in door.seen} == {"503", "refused", "timeout", "write-timeout"}

    door.state = "open"
    rest += pipeline.add("slam-epr/adt", ADT[0] + ADT[1], "adt.hl7")  # Adaeze, meanwhile
    assert sorted(pipeline.run()) == [(i, "applied") for i in (first, *rest)]
    assert pipeline.item(first).attempts == len(outages)

    # On the real server: one Patient per person, one Encounter per visit, each written once.
    [adaeze] = fhir_search(fhir_server, "Patient", identifier=f"{NHS}|9990000018")
    [thomas] = fhir_search(fhir_server, "Patient", identifier=f"{NHS}|9990000026")
    assert adaeze["meta"]["versionId"] == thomas["meta"]["versionId"] == "1"
    for visit in ("V0000501", "V0000502"):
        [encounter] = fhir_search(fhir_server, "Encounter", identifier=f"{VISIT}|{visit}")
        assert encounter["subject"] == {"reference": f"Patient/{adaeze['id']}"}
    [stay] = fhir_search(fhir_server, "Encounter", identifier=f"{VISIT}|V0000503")
    assert stay["status"] == "finished"  # the A01, then the A03
    assert stay["meta"]["versionId"] == "2"
    for item_id in (first, *rest):
        provenance = fhir_read(fhir_server, f"Provenance/{pipeline.provenance_id(item_id)}")
        assert provenance["meta"]["versionId"] == "1"  # applied exactly once
    assert len(fhir_search(fhir_server, "Provenance")) == 4


def test_a_write_the_server_applied_but_never_answered_is_applied_once(
    remote: tuple[Pipeline, Door], fhir_server: str
) -> None:
    pipeline, door = remote
    first, second = pipeline.add("slam-epr/adt", ADT[2] + ADT[3], "adt.hl7")
    door.state = "lost"
    assert claim_and_handle(pipeline) == [(first, "pending")]
    assert "POST /fhir" in (pipeline.item(first).last_error or "")
    # The server did apply it.
    [thomas] = fhir_search(fhir_server, "Patient", identifier=f"{NHS}|9990000026")

    door.state = "open"
    until_due(pipeline, first)
    assert pipeline.run() == [(first, "applied"), (second, "applied")]
    [again] = fhir_search(fhir_server, "Patient", identifier=f"{NHS}|9990000026")
    assert again["id"] == thomas["id"]
    assert again["meta"]["versionId"] == "1"  # the retry found it, and changed nothing
    [stay] = fhir_search(fhir_server, "Encounter", identifier=f"{VISIT}|V0000503")
    assert stay["meta"]["versionId"] == "2"  # the A01 once, then the A03
    assert len(fhir_search(fhir_server, "Patient")) == 1
    assert len(fhir_search(fhir_server, "Provenance")) == 2


# -- resends over MLLP ----------------------------------------------------------------------------


def ack_fields(ack: bytes) -> tuple[str, str]:
    segments = ack.strip(b"\x0b\x1c\r").decode().replace("\n", "\r").split("\r")
    msa = next(s for s in segments if s.startswith("MSA")).split("|")
    return msa[1], msa[2]


def control_id(message: bytes) -> str:
    return message.split(b"\r", 1)[0].decode().split("|")[9]


@pytest.fixture
def mllp_hub(tmp_path: Path, state_url: str) -> Iterator[Any]:
    settings = hub_settings(tmp_path / "data", state_url, workers=1)
    app = create_app(settings)
    with running_hub(settings, app=app):
        yield app


def settle(app: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while app.state.inbox.pending_count():
        assert time.monotonic() < deadline, app.state.inbox.counts()
        time.sleep(0.02)


def test_a_message_resent_over_mllp_is_acknowledged_and_changes_nothing(mllp_hub: Any) -> None:
    port = mllp_hub.state.mllp.port
    acks = send_messages("127.0.0.1", port, ADT)
    assert [ack_fields(a) for a in acks] == [("AA", control_id(m)) for m in ADT]
    settle(mllp_hub)
    inbox = mllp_hub.state.inbox
    counts = inbox.counts()
    assert set(counts["slam-epr/adt"]) == {"applied"}
    before = versions(mllp_hub.state.store)

    # The sender never saw the ACKs of three messages: it sends them again, one of them rebuilt
    # with a new MSH-7 (the same MSH-10: the same message).
    rebuilt = ADT[4].replace(b"|20260409013000||ADT^A04", b"|20260409013500||ADT^A04", 1)
    assert rebuilt != ADT[4]
    resent = [ADT[0], ADT[2], rebuilt]
    acks = send_messages("127.0.0.1", port, resent)
    assert [ack_fields(a) for a in acks] == [("AA", control_id(m)) for m in resent]
    settle(mllp_hub)
    assert inbox.counts() == counts  # no new inbox row
    originals = {i.message_id: i for i in inbox.list(mapping="slam-epr/adt", limit=100)}
    assert {m: originals[m].duplicates for m in ("RV5-0000101", "RV5-0000103", "RV5-0000105")} == {
        "RV5-0000101": 1,
        "RV5-0000103": 1,
        "RV5-0000105": 1,
    }
    assert originals["RV5-0000105"].raw == ADT[4]  # the original kept
    assert versions(mllp_hub.state.store) == before  # no new version of anything
