"""HAPI FHIR's validator as the independent judge of what the mappings make (issue 9: every
resource the examples produce passes HAPI's `$validate`, base R4, with no errors).

Every worked example in mappings/**/examples/ is mapped with its mapping, as `hub mappings
preview` does (the profiles in profiles/ checked too), and every resource of every record the
hub would write is sent to HAPI's `/{type}/$validate` with no profile asked for. What the
pipeline writes from the examples (the derived CareTeam, Flag, ... and the Provenances too) is
judged the same way after the end-to-end run on HAPI: tests/e2e/test_on_hapi.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from hub.mapping import MappingSet, example_files
from hub.mapping._examples import EXPECTED_SUFFIX
from hub.settings import REPOSITORY
from hub.validation import Profiles
from tests.e2e._on_hapi import validation_errors

MAPPINGS = MappingSet(REPOSITORY / "mappings")
CHECK = Profiles.load(REPOSITORY / "profiles").checker(base=True)  # as `hub mappings test`


def example_inputs() -> list[pytest.param]:
    """Each example input file with the mapping its expected file names."""
    found = []
    for expected in example_files(MAPPINGS.root):
        name = expected.relative_to(MAPPINGS.root).as_posix().removesuffix(EXPECTED_SUFFIX)
        mapping = json.loads(expected.read_text(encoding="utf-8"))["mapping"]
        found.append(pytest.param(MAPPINGS.root / name, mapping, id=name))
    return found


@pytest.mark.parametrize(("example", "mapping"), example_inputs())
def test_every_resource_an_example_maps_to_passes_hapis_validate(
    hapi: httpx.Client, example: Path, mapping: str
) -> None:
    with example.open("rb") as stream:
        records = [r for r in MAPPINGS.get(mapping).read(stream, example.name, check=CHECK) if r.ok]
    made = [(record.name, resource.resource) for record in records for resource in record.resources]
    assert made, "the example makes nothing to validate"

    errors = {
        f"{name} {resource['resourceType']}": found
        for name, resource in made
        if (found := validation_errors(hapi, resource))
    }

    assert errors == {}


def test_hapi_reports_errors_the_hub_must_not_make(hapi: httpx.Client) -> None:
    # The judge is awake: an element R4 does not have, and a Patient link without its `other`.
    wrong = {
        "resourceType": "Patient",
        "nickname": "Ada",
        "link": [{"type": "replaces"}],
    }

    errors = validation_errors(hapi, wrong)

    assert any("nickname" in e for e in errors), errors
    assert any("Patient.link" in e and "other" in e for e in errors), errors
