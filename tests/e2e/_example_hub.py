"""A running hub fed with every example of the source contract, reached as a FHIR client would.

The ADT feed goes through the real MLLP listener, every other example file through
POST /ingest/{mapping}, in the demo's order (`hub.demo.FEEDS`).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from hub.demo import FEEDS
from hub.listeners import send_messages
from hub.mapping import MappingSet
from hub.pipeline import provenance_id
from hub.settings import REPOSITORY
from hub.sources import SourceRecord
from hub.state import instance_id, open_database

MAPPINGS = REPOSITORY / "mappings"

Resource = dict[str, Any]


class ExampleHub:
    """The running hub (`app` as `create_app` made it, served at `url`)."""

    def __init__(self, url: str, app: Any) -> None:
        self.url = url
        self.app = app
        self.http = httpx.Client(base_url=url, timeout=30)

    @property
    def inbox(self) -> Any:
        return self.app.state.inbox

    def provenance_id(self, item_id: int) -> str:
        """The id of the Provenance that inbox item `item_id` writes."""
        with open_database(self.app.state.settings.state_url) as db:
            return provenance_id(instance_id(db), item_id)

    def mllp(self, messages: list[bytes]) -> list[bytes]:
        return send_messages("127.0.0.1", self.app.state.mllp.port, messages)

    def ingest(self, mapping: str, body: bytes) -> dict[str, Any]:
        response = self.http.post(f"/ingest/{mapping}", content=body)
        assert response.status_code == 202, response.text
        return response.json()

    def send_every_feed(self) -> list[dict[str, Any]]:
        """Every example, each feed applied before the next is sent; the ingest answers."""
        answers = []
        for feed in FEEDS:
            if feed.via == "mllp":
                acks = self.mllp(example_messages(feed.file))
                assert [ack_code(a) for a in acks] == ["AA"] * len(acks)
            else:
                answers.append(self.ingest(feed.mapping, (MAPPINGS / feed.file).read_bytes()))
            self.settle()
        return answers

    def settle(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.inbox.pending_count():
            assert time.monotonic() < deadline, f"inbox still busy: {self.inbox.counts()}"
            time.sleep(0.05)

    def get(self, path: str, **params: str) -> Resource:
        response = self.http.get(f"/fhir/{path}", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def bundle(self, path: str, **params: str) -> list[dict[str, Any]]:
        """Every entry of a searchset, following `next` links."""
        entries: list[dict[str, Any]] = []
        page = self.get(path, _count="1000", **params)
        while True:
            entries.extend(page.get("entry", []))
            following = [link["url"] for link in page.get("link", []) if link["relation"] == "next"]
            if not following:
                return entries
            response = self.http.get(following[0])
            assert response.status_code == 200, response.text
            page = response.json()

    def search(self, resource_type: str, **params: str) -> list[Resource]:
        """The matches (not the includes); `a__b=` is the chained parameter `a.b=`."""
        params = {k.replace("__", "."): v for k, v in params.items()}
        return [
            e["resource"]
            for e in self.bundle(resource_type, **params)
            if e["search"]["mode"] == "match"
        ]

    def patient(self, system: str, value: str) -> Resource:
        found = self.search("Patient", identifier=f"{system}|{value}")
        assert len(found) == 1, f"{len(found)} Patients with {value}"
        return found[0]

    def resource_types(self) -> list[str]:
        """Every resource type the CapabilityStatement says the hub serves."""
        statement = self.get("metadata")
        return sorted(r["type"] for rest in statement["rest"] for r in rest["resource"])

    def versions(self) -> dict[tuple[str, str], str]:
        """Every resource the hub serves, (type, id), with its versionId."""
        return {
            (resource["resourceType"], resource["id"]): resource["meta"]["versionId"]
            for resource_type in self.resource_types()
            for resource in self.search(resource_type)
        }


def example_messages(file: str) -> list[bytes]:
    """The messages of an example ADT file, one MLLP frame's content each."""
    mapping = MappingSet(MAPPINGS).get("slam-epr/adt")
    with (MAPPINGS / file).open("rb") as stream:
        return [r.raw for r in mapping.format.read(stream, file) if isinstance(r, SourceRecord)]


def ack_code(ack: bytes) -> str:
    msa = next(s for s in ack.decode().replace("\n", "\r").split("\r") if s.startswith("MSA"))
    return msa.split("|")[1]
