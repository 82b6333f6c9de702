"""One person's shared record, read through the store API in three indexed searches."""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.fhir import NHS_NUMBER_SYSTEM, nhs_number_is_valid
from hub.store import MAX_PAGE_SIZE, FhirStore, Resource

RECENT_ENCOUNTERS = 30
"""Encounters read, newest first: enough for the latest few of every source."""

_REVINCLUDED = (
    "Flag:patient",
    "CareTeam:patient",
    "EpisodeOfCare:patient",
    "CarePlan:patient",
    "RelatedPerson:patient",
    "Consent:patient",
    "QuestionnaireResponse:patient",
)
"""What comes with the Patient in the first search: everything of the record that is small
per person. Encounters (one per contact, many over years) are read apart, newest first."""


class RecordError(Exception):
    """Why there is no record to show: the message is for the person who asked."""


@dataclass
class SharedRecord:
    patient: Resource
    by_type: dict[str, list[Resource]] = field(default_factory=dict)
    """The Patient's resources of the revincluded types, by type."""
    recent_encounters: list[Resource] = field(default_factory=list)
    """Newest first."""
    stays_in_progress: list[Resource] = field(default_factory=list)

    def of(self, resource_type: str) -> list[Resource]:
        return self.by_type.get(resource_type, [])


def nhs_number(text: str) -> str:
    """The NHS number as 10 digits (spaces and hyphens as people write them are allowed);
    RecordError when it is not one (Modulus 11)."""
    digits = "".join(c for c in text if c not in " -")
    if not nhs_number_is_valid(digits):
        raise RecordError(f"{text!r} is not a valid NHS number (10 digits, Modulus 11 check)")
    return digits


def read_record(store: FhirStore, number: str) -> SharedRecord:
    """The shared record of the person with this NHS number: RecordError when the number is
    not valid or nobody has it."""
    digits = nhs_number(number)
    page = store.search(
        "Patient",
        [
            ("identifier", f"{NHS_NUMBER_SYSTEM}|{digits}"),
            ("_count", "2"),
            ("_total", "none"),
            *(("_revinclude", spec) for spec in _REVINCLUDED),
        ],
    )
    if not page.matches:
        raise RecordError(f"no record for NHS number {digits}")
    if len(page.matches) > 1:
        # Identity never lets two Patients share a valid NHS number; if it happened, showing
        # one of them would hide the other's care.
        raise RecordError(f"NHS number {digits} is on several Patients: see `hub matches list`")
    patient = page.matches[0]
    record = SharedRecord(patient)
    for resource in page.includes:
        record.by_type.setdefault(resource["resourceType"], []).append(resource)
    reference = f"Patient/{patient['id']}"
    record.recent_encounters = store.search(
        "Encounter",
        [
            ("patient", reference),
            ("_sort", "-date"),
            ("_count", str(RECENT_ENCOUNTERS)),
            ("_total", "none"),
        ],
    ).matches
    # A stay in progress carries the current legal status, however long ago it began.
    record.stays_in_progress = store.search(
        "Encounter",
        [
            ("patient", reference),
            ("status", "in-progress"),
            ("_count", str(MAX_PAGE_SIZE)),
            ("_total", "none"),
        ],
    ).matches
    return record
