"""merge_kept: what the pipeline writes for a resource whose mapping keeps items across records
(a stay's Mental Health Act statuses, reported one per message)."""

from __future__ import annotations

import io
from itertools import permutations
from typing import Any

import pytest

from hub.mapping import Keep, MappedRecord, MappedResource, MappingConfigError, merge_kept

PERIOD = "https://fhir.hub.example/StructureDefinition/legal-status-period"
UK_CORE = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-LegalStatus"
KEEP = (Keep("extension", timeline=PERIOD),)
SYSTEM, VALUE = "https://fhir.hub.example/Id/RV5/visit-number", "V1"


def _status(code: str, start: str, end: str | None = None) -> dict[str, Any]:
    period = {"start": start, **({"end": end} if end else {})}
    return {
        "id": f"legal-status-{start}",
        "url": PERIOD,
        "extension": [
            {"url": "classification", "valueCoding": {"code": code}},
            {"url": "period", "valuePeriod": period},
        ],
    }


def _context(context: str, code: str) -> dict[str, Any]:
    return {"id": f"legal-status-{context}", "url": UK_CORE, "valueString": f"{context} {code}"}


def _encounter(status: str, *extensions: dict[str, Any], end: str | None = None) -> MappedResource:
    resource = {
        "resourceType": "Encounter",
        "identifier": [{"system": SYSTEM, "value": VALUE}],
        "status": status,
        "period": {"start": "2026-04-09T04:30:00+01:00", **({"end": end} if end else {})},
        "extension": list(extensions),
    }
    return MappedResource("Encounter", SYSTEM, VALUE, resource, KEEP)


ADMIT = _encounter(
    "in-progress", _status("02", "2026-04-09T04:00:00+01:00"), _context("admission", "02")
)
CHANGE = _encounter("in-progress", _status("01", "2026-04-16T10:00:00+01:00"))
DISCHARGE = _encounter(
    "finished",
    _status("01", "2026-04-16T10:00:00+01:00", "2026-04-20T11:00:00+01:00"),
    _context("discharge", "01"),
    end="2026-04-20T11:00:00+01:00",
)
STAY = [ADMIT, CHANGE, DISCHARGE]  # in the order the trust sent them


def _apply(records: list[MappedResource]) -> dict[str, Any] | None:
    """The stored resource after applying `records` in that order; a record older than the
    newest applied one (by its place in STAY) is stale, as the pipeline's clocks say."""
    stored, newest = None, -1
    for made in records:
        stale = STAY.index(made) < newest
        written = merge_kept(made, stored, stale=stale)
        if written is not None:
            stored = written
        newest = max(newest, STAY.index(made))
    return stored


def _statuses(resource: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    found = []
    for extension in resource["extension"]:
        if extension["url"] == PERIOD:
            parts = {part["url"]: part for part in extension["extension"]}
            period = parts["period"]["valuePeriod"]
            code = parts["classification"]["valueCoding"]["code"]
            found.append((code, period["start"], period.get("end")))
    return found


def test_a_change_during_the_stay_adds_a_status_and_ends_the_one_before():
    stored = _apply([ADMIT, CHANGE])
    assert _statuses(stored) == [
        ("02", "2026-04-09T04:00:00+01:00", "2026-04-16T10:00:00+01:00"),
        ("01", "2026-04-16T10:00:00+01:00", None),
    ]
    assert [e["id"] for e in stored["extension"] if e["url"] == UK_CORE] == [
        "legal-status-admission"
    ]


def test_the_discharge_keeps_the_admission_status_and_every_period():
    stored = _apply(STAY)
    assert stored["status"] == "finished"
    assert _statuses(stored) == [
        ("02", "2026-04-09T04:00:00+01:00", "2026-04-16T10:00:00+01:00"),
        ("01", "2026-04-16T10:00:00+01:00", "2026-04-20T11:00:00+01:00"),
    ]
    assert [e["valueString"] for e in stored["extension"] if e["url"] == UK_CORE] == [
        "admission 02",
        "discharge 01",
    ]


def test_the_outcome_does_not_depend_on_the_order_the_messages_arrive_in():
    outcomes = {repr(_apply(list(order))) for order in permutations(STAY)}
    assert outcomes == {repr(_apply(STAY))}


def test_a_stale_record_writes_only_what_the_stored_resource_lacks():
    stored = _apply([CHANGE])
    late_admit = merge_kept(
        ADMIT, {**stored, "meta": {"versionId": "3", "source": "s"}}, stale=True
    )
    assert late_admit is not None and late_admit["meta"] == {"source": "s"}
    assert late_admit["status"] == stored["status"]
    assert len(_statuses(late_admit)) == 2
    assert merge_kept(ADMIT, late_admit, stale=True) is None  # sent again: nothing new


def test_the_newest_record_gives_every_other_element_and_replaces_an_item_with_its_id():
    stored = _apply([ADMIT, CHANGE])
    corrected = _encounter("in-progress", _status("03", "2026-04-16T10:00:00+01:00"))
    merged = merge_kept(corrected, stored, stale=False)
    assert [code for code, *_ in _statuses(merged)] == ["02", "03"]
    assert merged["period"] == corrected.resource["period"]


def test_a_status_planned_to_end_after_the_next_began_ends_when_the_next_began():
    planned = _encounter(
        "in-progress", _status("02", "2026-06-01T02:00:00+01:00", "2026-06-29T02:00:00+01:00")
    )
    section_3 = _encounter("in-progress", _status("03", "2026-06-20T11:00:00+01:00"))
    merged = merge_kept(section_3, planned.resource, stale=False)
    assert _statuses(merged)[0] == (
        "02",
        "2026-06-01T02:00:00+01:00",
        "2026-06-20T11:00:00+01:00",
    )


def test_items_without_an_id_come_from_the_newest_record_only():
    note = {"url": "https://example.org/note", "valueString": "older"}
    older = _encounter("in-progress", note)
    newer = _encounter("in-progress", {**note, "valueString": "newer"})
    merged = merge_kept(newer, older.resource, stale=False)
    assert merged["extension"] == [{**note, "valueString": "newer"}]


def test_a_resource_that_keeps_nothing_is_written_as_mapped_unless_stale():
    plain = MappedResource("Encounter", SYSTEM, VALUE, {"resourceType": "Encounter"})
    assert (
        merge_kept(plain, {"resourceType": "Encounter", "id": "x"}, stale=False) is plain.resource
    )
    assert merge_kept(plain, None, stale=True) is None


STAYS = """
description: stays
format: jsonl
organisation: TEST
resources:
  - id: stay
    type: Encounter
    key: {system: https://fhir.hub.example/Id/x/stay, value: =id}
    keep:
      - element: extension
        timeline: https://fhir.hub.example/StructureDefinition/legal-status-period
    set:
      status: in-progress
      class: {system: http://terminology.hl7.org/CodeSystem/v3-ActCode, code: IMP}
"""


def test_a_mapping_says_what_its_resource_keeps_and_the_outcome_carries_it(write, mappings):
    write("x/stays.yaml", STAYS)
    (mapped,) = mappings.get("x/stays").read(io.BytesIO(b'{"id": "S1"}\n'), "in.jsonl")
    assert mapped.resources[0].keep == KEEP
    kept = MappedRecord.from_bytes(mapped.to_bytes("v1"), "v1", mapped.locator, b"")
    assert kept is not None and kept.resources[0].keep == KEEP


def test_only_a_list_element_can_be_kept(write, mappings):
    write("x/stays.yaml", STAYS.replace("element: extension", "element: status"))
    with pytest.raises(MappingConfigError, match="'status' is not a list element of Encounter"):
        mappings.get("x/stays")
