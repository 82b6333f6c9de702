"""`POST /ingest/{mapping}` served by uvicorn on 127.0.0.1 into a real SQLite inbox."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from hub.api import install_error_handling
from hub.listeners import ingest_router
from hub.mapping import MappingSet
from hub.pipeline import Inbox
from hub.settings import HubSettings
from tests._server import running_hub
from tests.listeners._helpers import MAPPINGS

LIMIT = 64 * 1024


@pytest.fixture
def hub(inbox: Inbox, mappings: MappingSet) -> Iterator[httpx.Client]:
    settings = HubSettings(max_body_bytes=LIMIT)
    app = FastAPI()
    app.state.inbox = inbox
    app.state.mappings = mappings
    app.state.settings = settings
    # The app-wide body limit is set far higher, so that the route's own limit is what answers.
    install_error_handling(app, max_body_bytes=LIMIT * 100)
    app.include_router(ingest_router)
    with running_hub(settings, app=app) as base, httpx.Client(base_url=base) as client:
        yield client


def example(path: str) -> bytes:
    source, name = path.split("/")
    return (MAPPINGS / source / "examples" / name).read_bytes()


def test_csv_rows_are_stored_one_by_one_and_answered_202(hub: httpx.Client, inbox: Inbox) -> None:
    body = example("vcse/clients.csv")
    response = hub.post("/ingest/vcse/clients", content=body)

    assert response.status_code == 202
    answer = response.json()
    rows = body.strip().count(b"\n")
    assert (answer["accepted"], answer["duplicates"], answer["failed"]) == (rows, 0, 0)
    assert [i["line"] for i in answer["items"]] == list(range(2, rows + 2))
    assert all(i["status"] == "pending" and not i["duplicate"] for i in answer["items"])
    stored = {item.id: item for item in inbox.list(limit=100)}
    assert sorted(stored) == sorted(i["id"] for i in answer["items"])
    header = body.split(b"\r\n", 1)[0]
    for item in stored.values():
        assert (item.channel, item.origin) == ("http", "POST /ingest/vcse/clients")
        assert item.raw.startswith(header + b"\r\n")


def test_the_same_body_again_is_all_duplicates_of_the_same_items(hub: httpx.Client) -> None:
    body = example("slam-epr/dialog.jsonl")
    first = hub.post("/ingest/slam-epr/dialog", content=body).json()
    again = hub.post("/ingest/slam-epr/dialog", content=body).json()

    assert again["accepted"] == 0
    assert again["duplicates"] == first["accepted"] > 0
    assert [i["id"] for i in again["items"]] == [i["id"] for i in first["items"]]
    assert all(i["duplicate"] for i in again["items"])


def test_unreadable_jsonl_lines_are_kept_as_failed_items(hub: httpx.Client, inbox: Inbox) -> None:
    body = b'{"plan_id": "P-1"}\n\n{"plan_id": \n{"plan_id": "P-2"}\n'
    answer = hub.post("/ingest/slam-epr/careplans", content=body).json()

    assert (answer["accepted"], answer["duplicates"], answer["failed"]) == (2, 0, 1)
    bad = answer["items"][1]
    assert (bad["line"], bad["status"]) == (3, "failed")
    assert bad["error"].startswith("POST /ingest/slam-epr/careplans line 3: not valid JSON")
    assert "error" not in answer["items"][0]
    dead = inbox.get(bad["id"])
    assert dead is not None and dead.last_error == bad["error"]


def test_an_stu3_bundle_is_one_item(hub: httpx.Client, inbox: Inbox) -> None:
    body = example("gp/G85901-okafor.json")
    answer = hub.post("/ingest/gp/stu3-bundle", content=body).json()

    assert answer["accepted"] == 1
    stored = inbox.get(answer["items"][0]["id"])
    assert stored is not None and stored.raw == body


def test_hl7_messages_are_items_known_by_their_control_ids(hub: httpx.Client, inbox: Inbox) -> None:
    answer = hub.post("/ingest/slam-epr/adt", content=example("slam-epr/adt.hl7")).json()

    assert answer["accepted"] == 13
    ids = sorted(str(item.message_id) for item in inbox.list(limit=100))
    assert ids[0] == "RV5-0000101" and len(set(ids)) == 13


def test_an_unknown_mapping_is_404_naming_it(hub: httpx.Client) -> None:
    response = hub.post("/ingest/vcse/nope", content=b"a,b\r\n1,2\r\n")

    assert response.status_code == 404
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-found"
    assert "'vcse/nope'" in outcome["issue"][0]["diagnostics"]


def test_an_empty_body_is_400(hub: httpx.Client) -> None:
    response = hub.post("/ingest/vcse/clients", content=b"  \r\n")
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_declared_length_over_the_limit_is_413_and_nothing_stored(
    hub: httpx.Client, inbox: Inbox
) -> None:
    body = b'{"plan_id": "P-1"}\n' * (LIMIT // 10)
    response = hub.post("/ingest/slam-epr/careplans", content=body)

    assert response.status_code == 413
    assert response.json()["issue"][0]["code"] == "too-long"
    assert inbox.list() == []


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(
    hub: httpx.Client, inbox: Inbox
) -> None:
    """No length is declared: the 413 comes while the body is still being sent, long before
    the sender would have finished (it never would: it sends until answered)."""
    host, port = urlsplit(str(hub.base_url)).netloc.split(":")
    chunk = b'{"plan_id": "P-1"}\n' * 50
    sent = 0
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /ingest/slam-epr/careplans HTTP/1.1\r\nHost: hub\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        while not select.select([sock], [], [], 0.001)[0]:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
            assert sent < 100 * LIMIT, "the body was never refused"
        status_line = sock.recv(65536).split(b"\r\n", 1)[0]

    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert LIMIT < sent < 20 * LIMIT
    assert inbox.list() == []
