"""Identity on the real embedded store and a real hub state database (SQLite and PostgreSQL).

`hub` stands in for the pipeline: it resolves a Patient the way the pipeline does (inside a
hub-state transaction holding the identity lock), writes the plan's entries with the record's
other resources in one store transaction, then records the plan.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.identity import IDENTITY_LOCK, IdentityConfig, IdentityResolver, MatchQueue, PatientPlan
from hub.state import Database
from hub.store import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
Person = tuple[str, str, str | None, str | None]
"""family, given name, birth date, postcode."""
ADAEZE: Person = ("Okafor", "Adaeze", "1985-03-14", "SE4 2AB")
THOMAS: Person = ("Reilly", "Thomas", "1972-11-02", "SE13 7UW")
MARISOL: Person = ("Ortega-Díaz", "Marisol", "1990-07-21", "SE6 4RU")
DANIEL: Person = ("Brooks", "Daniel", "1979-09-18", "SE13 6TJ")
DAN: Person = ("Brooks", "Dan", "1979-09-18", "SE13 6TJ")
NHS = "https://fhir.nhs.uk/Id/nhs-number"
INVALID_NHS = "https://fhir.hub.example/Id/invalid-nhs-number"
MRN = "https://fhir.hub.example/Id/RV5/mrn"
CLIENT_REF = "https://fhir.hub.example/Id/LEW-MIND/client-ref"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "fhir.sqlite")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def config() -> IdentityConfig:
    return IdentityConfig.load(ROOT / "mappings" / "identity.yaml")


@pytest.fixture
def resolver(store: SQLiteStore, state_db: Database, config: IdentityConfig) -> IdentityResolver:
    return IdentityResolver(store, state_db, config)


@pytest.fixture
def queue(store: SQLiteStore, state_db: Database, config: IdentityConfig) -> MatchQueue:
    return MatchQueue(state_db, store, config)


class Hub:
    def __init__(self, store: SQLiteStore, db: Database, resolver: IdentityResolver) -> None:
        self.store, self.db, self.resolver = store, db, resolver

    def apply(
        self,
        patient: dict[str, Any],
        key: tuple[str, str],
        *,
        source: str,
        at: int | None = None,
        retired: tuple[tuple[str, str], ...] = (),
        others: tuple[dict[str, Any], ...] = (),
    ) -> PatientPlan:
        with self.db.exclusive(IDENTITY_LOCK):
            plan = self.resolver.resolve(
                patient, key, source=source, source_time_ms=at, retired=retired
            )
            written = {business_key(r) for r in others}
            entries = plan.entries_except(written) + [put(r, plan.patient_id) for r in others]
            self.store.transaction(
                {"resourceType": "Bundle", "type": "transaction", "entry": entries}
            )
            with self.db.transaction() as tx:
                plan.record(tx)
        return plan

    def record(
        self,
        source: str,
        key: tuple[str, str],
        person: Person,
        *also: tuple[str, str],
        at: int | None = None,
        retired: tuple[tuple[str, str], ...] = (),
        others: tuple[dict[str, Any], ...] = (),
        **elements: Any,
    ) -> PatientPlan:
        """A record about `person`, identified by `key` (and `also`), through `apply`."""
        resource = patient(*person, key, *also, **elements)
        return self.apply(resource, key, source=source, at=at, retired=retired, others=others)

    def patients(self, system: str, value: str) -> list[dict[str, Any]]:
        return self.store.search("Patient", [("identifier", f"{system}|{value}")]).matches


def business_key(resource: dict[str, Any]) -> tuple[str, str, str]:
    identifier = resource["identifier"][0]
    return resource["resourceType"], identifier["system"], identifier["value"]


def put(resource: dict[str, Any], patient_id: str) -> dict[str, Any]:
    """A record's own resource, written by business identifier, about the resolved Patient."""
    _, system, value = business_key(resource)
    body = {**resource, "subject": {"reference": f"Patient/{patient_id}"}}
    url = f"{resource['resourceType']}?identifier={system}|{value}"
    return {"resource": body, "request": {"method": "PUT", "url": url}}


@pytest.fixture
def hub(store: SQLiteStore, state_db: Database, resolver: IdentityResolver) -> Hub:
    return Hub(store, state_db, resolver)


def patient(
    family: str = "Okafor",
    given: str = "Adaeze",
    birth_date: str | None = "1985-03-14",
    postcode: str | None = "SE4 2AB",
    *identifiers: tuple[str, str],
    **elements: Any,
) -> dict[str, Any]:
    """A mapped Patient, shaped as the mappings produce them."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": s, "value": v} for s, v in identifiers],
        "name": [{"family": family, "given": [given]}],
        **elements,
    }
    if birth_date:
        resource["birthDate"] = birth_date
    if postcode:
        resource["address"] = [{"postalCode": postcode}]
    return resource
