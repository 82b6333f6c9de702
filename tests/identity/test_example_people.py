"""The example people of every source (sources README): one active Patient per person."""

from __future__ import annotations

import io
import logging

import pytest

from hub.fhir import instant_ms
from hub.identity import MatchQueue
from hub.mapping import MappedRecord, MappingSet
from tests.identity.conftest import CLIENT_REF, MRN, NHS, ROOT, Hub

MAPPINGS = MappingSet(ROOT / "mappings")
FEEDS = [
    ("slam-epr/adt", "slam-epr/examples/adt.hl7"),
    ("gp/stu3-bundle", "gp/examples/G85901-okafor.json"),
    ("gp/stu3-bundle", "gp/examples/G85902-reilly.json"),
    ("district-nursing/visits", "district-nursing/examples/visits.csv"),
    ("vcse/clients", "vcse/examples/clients.csv"),
]


def _records(name: str, file: str) -> list[MappedRecord]:
    data = (ROOT / "mappings" / file).read_bytes()
    return [r for r in MAPPINGS.get(name).read(io.BytesIO(data), file) if r.ok]


def _apply(hub: Hub, name: str, record: MappedRecord) -> None:
    retired = tuple(
        (i["retired"]["system"], i["retired"]["value"])
        for i in record.instructions
        if i["kind"] == "merge"
    )
    for made in record.resources:
        if made.type == "Patient":
            hub.apply(
                made.resource,
                (made.system, made.value),
                source=name,
                at=instant_ms(record.timestamp) if record.timestamp else None,
                retired=retired,
            )


def _active_patients(hub: Hub) -> list[dict]:
    found = hub.store.search("Patient", [("_count", "100")]).matches
    return [p for p in found if p.get("active") is not False]


def test_every_source_finds_one_patient_per_person(
    hub: Hub, queue: MatchQueue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.identity")
    for name, file in FEEDS:
        for record in _records(name, file):
            _apply(hub, name, record)
    families = sorted(p["name"][0]["family"] for p in _active_patients(hub))
    assert families == ["Brooks", "Haddad", "Okafor", "Ortega-Díaz", "Reilly"]
    okafor = hub.patients(NHS, "9990000018")[0]["id"]
    assert [p["id"] for p in hub.patients(CLIENT_REF, "C-000417")] == [okafor]
    assert [p["id"] for p in hub.patients(MRN, "RV5A000123")] == [okafor]
    # Marisol's VCSE record has no NHS number: linked by demographics.
    marisol = hub.patients(NHS, "9990000034")[0]["id"]
    assert [p["id"] for p in hub.patients(CLIENT_REF, "C-000418")] == [marisol]
    # Daniel's duplicate MRN was merged by the A40.
    assert [p["id"] for p in hub.patients(MRN, "RV5A000777")] == [
        hub.patients(MRN, "RV5A000456")[0]["id"]
    ]
    assert queue.list() == []
    logged = caplog.text
    assert "matched by demographics" in logged
    for personal in ["Okafor", "Marisol", "9990000018", "1985-03-14", "SE4 2AB", "RV5A000123"]:
        assert personal not in logged


def test_an_older_a08_never_overwrites_a_newer_address(hub: Hub) -> None:
    records = _records("slam-epr/adt", "slam-epr/examples/adt.hl7")
    a28, a08 = [r for r in records if r.resources[0].value == "RV5A000567"]
    _apply(hub, "slam-epr/adt", a08)
    _apply(hub, "slam-epr/adt", a28)  # the older message, resent late
    (stored,) = hub.patients(MRN, "RV5A000567")
    assert stored["address"][0]["postalCode"] == "SE4 1PE"


@pytest.mark.parametrize("value", ["A,1", "B|2", "C$3", "D\\4", "E\\,5"])
def test_a_source_key_with_search_characters_finds_its_patient_again(hub: Hub, value: str) -> None:
    """The NHS number and the source key are looked up in one search (values joined by
    commas): a key holding a comma, a bar, a dollar or a backslash is escaped, not split."""
    first = hub.record("vcse", (CLIENT_REF, value), ("Quinn", "Ada", "1990-01-02", "SE4 1AA"))
    again = hub.record("vcse", (CLIENT_REF, value), ("Quinn", "Ada", "1990-01-02", "SE4 1AA"))
    assert first.created and not again.created
    assert again.patient_id == first.patient_id
    assert again.matched_by == "source-key"
