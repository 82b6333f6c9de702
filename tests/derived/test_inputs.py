"""Gathering the step's input through the store API, with the transaction's own resources laid
over what is stored, and writing what it returns: the way the pipeline runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.derived import INPUTS, affects, derive, overlay
from hub.store import FhirStore, SQLiteStore
from tests.derived.care_model import (
    consent,
    episode,
    patient,
    related_person,
    stay,
    support_plan,
    trust_plan,
    write,
)

ORTEGA, OTHER = "p-ortega", "p-other"
ADMITTED = "2026-04-09T04:30:00+01:00"


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with SQLiteStore(tmp_path / "fhir.sqlite") as store:
        yield store


def gather(store: FhirStore, patient_id: str) -> list[dict[str, Any]]:
    return [
        resource
        for source in INPUTS
        for resource in store.search(source.resource_type, source.params(patient_id)).matches
    ]


def detained_stay(
    *statuses: tuple[str, str, str | None], status: str = "in-progress", end: str | None = None
) -> dict[str, Any]:
    return stay(ORTEGA, "V0000505", status, ADMITTED, end, legal_statuses=list(statuses))


def sources_of_ortega() -> list[dict[str, Any]]:
    return [
        patient(
            ORTEGA,
            "9990000034",
            "Ortega-Díaz",
            "Marisol",
            practice=("G85901", "Ladywell Medical Centre"),
        ),
        episode(ORTEGA, "EP-3401", "home-treatment", "active", "2026-04-20"),
        related_person(
            ORTEGA, "RV5A000345/diaz-lucia", "Díaz", "Lucía", "nominated-person", ("MTH", "Mother")
        ),
        consent(ORTEGA, "LEW-MIND", "C-000418", "2026-04-10"),
        support_plan(ORTEGA, "LEW-MIND", "P-0040", "active", "2026-04-11", "P. Osei"),
        detained_stay(("02", "2026-04-09T04:00:00+01:00", None)),
    ]


def test_the_searches_find_the_patients_inputs_and_nobody_elses(store: FhirStore) -> None:
    write(store, sources_of_ortega())
    write(
        store,
        [
            patient(OTHER, "9990000042", "Haddad", "Samira"),
            trust_plan(OTHER, "CP-70000", "CRISIS", "active", "2026-03-01T09:00:00+00:00"),
            episode(OTHER, "EP-5101", "membership", "active", "2025-11-01", care_manager=None),
        ],
    )

    found = gather(store, ORTEGA)

    assert sorted(r["resourceType"] for r in found) == [
        "CarePlan",
        "Consent",
        "Encounter",
        "EpisodeOfCare",
        "RelatedPerson",
    ]
    assert all(
        (r.get("subject") or r.get("patient"))["reference"] == f"Patient/{ORTEGA}" for r in found
    )


def test_what_the_step_writes_is_found_again_and_then_nothing_changes(store: FhirStore) -> None:
    sources = sources_of_ortega()
    person = sources[0]
    write(store, sources)

    written = derive(person, gather(store, ORTEGA), ADMITTED)
    write(store, written)

    assert sorted(r["resourceType"] for r in written) == ["CareTeam", "Flag"]
    again = gather(store, ORTEGA)
    assert sorted(
        r["resourceType"] for r in again if r["resourceType"] in ("CareTeam", "Flag")
    ) == [
        "CareTeam",
        "Flag",
    ]
    assert derive(person, again, "2026-04-12T10:00:00+01:00") == []


def test_a_stay_that_ends_in_the_transaction_dates_the_end_of_the_detention(
    store: FhirStore,
) -> None:
    sources = sources_of_ortega()
    person = sources[0]
    write(store, sources)
    write(store, derive(person, gather(store, ORTEGA), ADMITTED))
    discharged = detained_stay(
        ("02", "2026-04-09T04:00:00+01:00", "2026-04-20T11:00:00+01:00"),
        status="finished",
        end="2026-04-20T11:00:00+01:00",
    )
    unrelated = trust_plan(OTHER, "CP-70000", "CRISIS", "active", "2026-03-01T09:00:00+00:00")

    # The search finds stays in progress only: the finished stay comes from the transaction.
    found = gather(store, ORTEGA)
    inputs = overlay(ORTEGA, found, [discharged, unrelated])
    (ended,) = derive(person, inputs, "2026-04-20T12:00:00+01:00")

    assert [r for r in inputs if r["resourceType"] == "Encounter"] == [discharged]
    assert unrelated not in inputs
    assert ended["resourceType"] == "Flag"
    assert ended["status"] == "inactive"
    assert ended["period"]["end"] == "2026-04-20T11:00:00+01:00"
    write(store, [discharged, ended])
    assert derive(person, gather(store, ORTEGA), "2026-04-21T12:00:00+01:00") == []


def test_overlay_puts_each_written_resource_in_place_of_the_stored_one_by_identifier() -> None:
    stored = {**episode(ORTEGA, "EP-3401", "home-treatment", "active", "2026-04-20"), "id": "e1"}
    kept = {
        **related_person(ORTEGA, "RV5A000345/diaz-lucia", "Díaz", "Lucía", "nominated-person"),
        "id": "r1",
    }
    finished = episode(ORTEGA, "EP-3401", "home-treatment", "finished", "2026-04-20", "2026-05-04")
    new_plan = trust_plan(ORTEGA, "CP-70001", "CRISIS", "active", "2026-05-04T10:00:00+01:00")
    someone_else = episode(OTHER, "EP-9", "caseload", "active", "2026-01-01")

    inputs = overlay(
        ORTEGA,
        [stored, kept],
        [finished, new_plan, someone_else, patient(ORTEGA, "9990000034", "Ortega-Díaz", "Marisol")],
    )

    assert inputs == [kept, finished, new_plan]


def test_only_what_the_step_reads_affects_it() -> None:
    """The pipeline skips the step (and its searches) for records that write nothing it reads:
    most contacts are an Encounter without legal status and a Patient left as it was."""
    detained = stay(ORTEGA, "V-1", "in-progress", ADMITTED, legal_statuses=[("02", ADMITTED, None)])
    plain = stay(ORTEGA, "V-2", "finished", ADMITTED, "2026-04-09T06:00:00+01:00")
    assert affects(detained) and not affects(plain)
    assert affects(patient(ORTEGA, "9990000034", "Ortega-Díaz", "Marisol"))
    assert affects(episode(ORTEGA, "E-1", "membership", "active", "2026-04-20"))
    assert affects(related_person(ORTEGA, "NK1-1", "Ortega", "Lucia", "nominated-person"))
    assert affects(consent(ORTEGA, "LEW-MIND", "C-000418", "2026-04-10"))
    assert not affects({"resourceType": "Location", "name": "Ladywell Unit ward 1"})
    assert not affects({"resourceType": "Provenance", "target": [{"reference": "Encounter/1"}]})
