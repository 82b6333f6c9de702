"""A conditional create must make a resource its own criteria find (else every replay makes
another). The embedded store decides token-only criteria from the index rows it writes and
searches for the rest: whichever way, the answer must be the search's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.fhir import FhirError, InvalidRequest
from hub.store import SQLiteStore

SYSTEM = "https://hub.test/criteria"

PATIENTS = {
    "with a system": {"identifier": [{"system": SYSTEM, "value": "A1"}], "gender": "female"},
    "without a system": {"identifier": [{"value": "A1"}], "gender": "female"},
    "two identifiers": {
        "identifier": [{"system": SYSTEM, "value": "A1"}, {"system": f"{SYSTEM}/2", "value": "B2"}],
        "gender": "female",
    },
}

CRITERIA = [
    f"identifier={SYSTEM}|A1",
    "identifier=A1",
    f"identifier={SYSTEM}|",
    "identifier=|A1",
    f"identifier={SYSTEM}|X,{SYSTEM}|A1",
    f"identifier={SYSTEM}|X,{SYSTEM}|Y",
    f"identifier={SYSTEM}|A1&identifier={SYSTEM}/2|B2",
    f"identifier={SYSTEM}|A1&gender=female",
    f"identifier={SYSTEM}|A1&gender=male",
    "gender=female",
    f"identifier={SYSTEM}|A1&family=Nobody",  # not a token: searched
    f"identifier:not={SYSTEM}|Z",  # a modifier: searched
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "fhir.sqlite")
    yield opened
    opened.close()


def found_by(store: SQLiteStore, criteria: str, resource_id: str) -> bool:
    params = [tuple(pair.split("=", 1)) for pair in criteria.split("&")]
    return resource_id in {r["id"] for r in store.search("Patient", params).matches}


@pytest.mark.parametrize("shape", sorted(PATIENTS))
@pytest.mark.parametrize("criteria", CRITERIA)
def test_a_conditional_create_stands_exactly_when_a_search_finds_it(
    store: SQLiteStore, shape: str, criteria: str
) -> None:
    patient: dict[str, Any] = {"resourceType": "Patient", **PATIENTS[shape]}
    try:
        created = store.create(patient, if_none_exist=criteria)
    except InvalidRequest:
        written = store.create(patient)  # plainly, to ask the search about it
        assert not found_by(store, criteria, written.id)
        return

    assert created.status == 201
    assert found_by(store, criteria, created.id)


@pytest.mark.parametrize("criteria", CRITERIA)
def test_in_a_transaction_too(store: SQLiteStore, criteria: str) -> None:
    """A transaction's conditional PUT, after another entry of the same type was written."""
    other = {"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": "other"}]}
    patient = {"resourceType": "Patient", **PATIENTS["two identifiers"]}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": other, "request": {"method": "POST", "url": "Patient"}},
            {"resource": patient, "request": {"method": "PUT", "url": f"Patient?{criteria}"}},
        ],
    }
    try:
        response = store.transaction(bundle)
    except FhirError as refused:
        assert refused.status == 400
        assert store.search("Patient", [("_total", "accurate")]).total == 0  # all or nothing
        written = store.create(patient)
        assert not found_by(store, criteria, written.id)
        return

    location = response["entry"][1]["response"]["location"]
    assert found_by(store, criteria, location.split("/")[1])
