"""What a record can report without failing (`warnings:`), resources made per item with a
test per item, and one resource per key however many times a record names it."""

from __future__ import annotations

import io
import json
from typing import Any

from hub.mapping import MappedRecord, MappingSet

CONTACTS = """
description: people around a client
format: jsonl
organisation: TEST
warnings:
  - when: =if(label, label | map('labels') | exists | not)
    message: =concat('label ', label, ' is not coded')
  - when: =contacts.name | exists | not
    message: no contacts
resources:
  - id: contact
    type: RelatedPerson
    each: =contacts
    when: =@.name
    key: {system: https://fhir.hub.example/Id/x/contact, value: =@.name}
    set:
      patient: {reference: Patient/p1}
      relationship:
        - coding: {system: https://fhir.hub.example/CodeSystem/contact-role, code: =@.role}
      telecom:
        - {system: phone, value: =@.phone}
"""
LABELS = """
description: labels
target: https://example.org/labels
unmapped: omit
map:
  Known: {code: K}
"""


def _map(mappings: MappingSet, record: dict[str, Any]) -> MappedRecord:
    line = json.dumps(record).encode() + b"\n"
    (mapped,) = mappings.get("x/contacts").read(io.BytesIO(line), "in.jsonl")
    return mapped


def _contacts(write, mappings) -> MappingSet:
    write("x/contacts.yaml", CONTACTS)
    write("x/maps/labels.yaml", LABELS)
    return mappings


def test_a_warning_is_reported_with_the_record_and_does_not_stop_it(write, mappings):
    mapped = _map(_contacts(write, mappings), {"label": "Unheard of", "contacts": []})
    assert mapped.ok and mapped.resources == []
    assert mapped.warnings == ["label Unheard of is not coded", "no contacts"]
    assert mapped.summary()["warnings"] == mapped.warnings
    kept = MappedRecord.from_bytes(mapped.to_bytes("v1"), "v1", mapped.locator, b"")
    assert kept is not None and kept.warnings == mapped.warnings


def test_no_warning_when_nothing_is_wrong(write, mappings):
    mapped = _map(
        _contacts(write, mappings),
        {"label": "Known", "contacts": [{"name": "Ann", "role": "carer"}]},
    )
    assert mapped.ok and mapped.warnings == []
    assert "warnings" not in mapped.summary()


def test_a_record_that_fails_reports_its_errors_not_its_warnings(write, mappings):
    mappings = _contacts(write, mappings)
    write("x/contacts.yaml", CONTACTS.replace("value: =@.name}", "value: =@.name | int}"))
    mapped = _map(MappingSet(mappings.root), {"label": "Odd", "contacts": [{"name": "Ann"}]})
    assert mapped.errors and mapped.warnings == []


def test_with_each_the_when_of_a_resource_tests_each_item(write, mappings):
    contacts = [{"name": "Ann", "role": "carer"}, {"role": "next-of-kin"}, {"name": "Bo"}]
    mapped = _map(_contacts(write, mappings), {"contacts": contacts})
    assert mapped.ok, mapped.errors
    assert [made.value for made in mapped.resources] == ["Ann", "Bo"]


def test_one_person_named_twice_is_one_resource_with_both_roles(write, mappings):
    contacts = [
        {"name": "Ann", "role": "next-of-kin", "phone": "0207"},
        {"name": "Bo", "role": "carer"},
        {"name": "Ann", "role": "nominated-person", "phone": "0207"},
    ]
    mapped = _map(_contacts(write, mappings), {"contacts": contacts})
    ann, bo = (made.resource for made in mapped.resources)
    assert [r["coding"][0]["code"] for r in ann["relationship"]] == [
        "next-of-kin",
        "nominated-person",
    ]
    assert ann["telecom"] == [{"system": "phone", "value": "0207"}]
    assert ann["identifier"] == [
        {"system": "https://fhir.hub.example/Id/x/contact", "value": "Ann"}
    ]
    assert bo["relationship"][0]["coding"][0]["code"] == "carer"
