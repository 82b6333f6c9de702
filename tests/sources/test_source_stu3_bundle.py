"""stu3-bundle: a GP system's STU3 Bundle per file, its JSON paths and bundle-local references."""

from __future__ import annotations

from pathlib import Path

import orjson

from hub.sources import SourceError, SourceRecord, Stu3Bundle, source_format
from tests.sources._helpers import errors, get, read_all, records

STU3 = source_format("stu3-bundle")
NHS = "https://fhir.nhs.uk/Id/nhs-number"


def test_a_bundle_file_is_one_record(example: Path) -> None:
    content = example("gp/G85901-okafor.json").read_bytes()
    (record,) = read_all("stu3-bundle", content, "G85901-okafor.json")

    assert isinstance(record, SourceRecord)
    assert record.locator == "G85901-okafor.json line 1"
    assert record.raw == content
    assert isinstance(record.data, Stu3Bundle)


def test_json_paths_reach_into_bundle_entries(example: Path) -> None:
    (record,) = read_all("stu3-bundle", example("gp/G85901-okafor.json").read_bytes())
    bundle = record.data

    patient_nhs = f"entry.resource[resourceType=Patient].identifier[system={NHS}].value"
    assert get("stu3-bundle", patient_nhs, bundle) == ["9990000018"]
    encounters = get("stu3-bundle", "entry.resource[resourceType=Encounter]", bundle)
    assert len(encounters) == 2
    assert get("stu3-bundle", "@.subject.reference", bundle, encounters[0]) == ["Patient/pat-1"]


def test_bundle_local_references_resolve(example: Path) -> None:
    (record,) = read_all("stu3-bundle", example("gp/G85902-reilly.json").read_bytes())
    bundle = record.data

    assert bundle.resolve("Patient/pat-1")["birthDate"] == "1972-11-02"
    assert bundle.resolve("urn:uuid:patient-pat-1")["id"] == "pat-1"
    assert bundle.resolve("https://gp.example/fhir/Patient/pat-1")["id"] == "pat-1"
    assert bundle.resolve("Patient/pat-1/_history/3")["id"] == "pat-1"
    assert bundle.resolve("Organization/org-1")["name"] == "Brockley Road Surgery"
    assert bundle.resolve("Patient/elsewhere") is None
    assert bundle.resolve("") is None


def test_several_bundles_as_json_lines_are_one_record_per_line(example: Path) -> None:
    bundles = [
        orjson.loads(p.read_bytes())
        for p in (example("gp/G85901-okafor.json"), example("gp/G85902-reilly.json"))
    ]
    content = b"\n".join(orjson.dumps(b) for b in bundles) + b"\n\n{broken\n"
    items = read_all("stu3-bundle", content, "gp.jsonl")

    assert [r.line for r in records(items)] == [1, 2]
    assert [e.line for e in errors(items)] == [4]
    assert records(items)[1].data.resolve("Patient/pat-1")["id"] == "pat-1"


def test_a_resource_that_is_not_a_bundle_is_an_error() -> None:
    (error,) = read_all("stu3-bundle", b'{"resourceType": "Patient", "id": "x"}', "p.json")
    assert isinstance(error, SourceError)
    assert str(error) == "p.json line 1: expected a FHIR Bundle, found resourceType 'Patient'"


def test_a_file_that_is_not_json_is_an_error() -> None:
    (error,) = read_all("stu3-bundle", b'{\n  "resourceType": "Bundle",\n  oops\n}', "b.json")
    assert isinstance(error, SourceError)
    assert error.line == 3 and "not valid JSON" in error.reason


def test_an_empty_file_is_an_error() -> None:
    (error,) = read_all("stu3-bundle", b"  \n", "b.json")
    assert isinstance(error, SourceError) and error.line is None
