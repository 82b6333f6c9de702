"""The derived step of a record's transaction (ARCHITECTURE step 4): the CareTeam and Flags of
each patient the record touches, recomputed by `hub.derived` from that patient's sources as the
transaction will leave them, and written in the same transaction, so that they never drift from
their sources. Only what changed is written: applying a record again writes nothing more.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from hub.derived import INPUTS, conditional_url, derive, overlay
from hub.store import FhirStore, Resource

# Inputs without a filter come with the Patient in one search (_revinclude); the others each
# need their own.
_REVINCLUDED = [i for i in INPUTS if not i.filters]
_FILTERED = [i for i in INPUTS if i.filters]


class DerivedStep:
    def __init__(self, store: FhirStore) -> None:
        self._store = store

    def entries(
        self,
        patients: dict[str, Resource | None],
        written: list[Resource],
        at: dict[str, str],
        *,
        created: Collection[str] = (),
    ) -> list[dict[str, Any]]:
        """Transaction entries for the derived resources of `patients` (id -> the Patient as
        the transaction writes it, None when it does not write it) that differ from the
        stored ones. `written`: the other resources of the transaction, with literal Patient
        references. `at`: per patient, the time of the latest record about them (a FHIR
        dateTime). `created`: patients the transaction creates, whom nothing stored can
        refer to yet (their searches are skipped)."""
        entries = []
        for patient_id, patient in patients.items():
            new = patient_id in created
            stored_patient, found = (None, []) if new else self._gather(patient_id)
            patient = patient or stored_patient
            if patient is None:
                continue  # never written: nobody to summarise
            for resource in derive(patient, overlay(patient_id, found, written), at[patient_id]):
                entries.append(
                    {
                        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                        "resource": resource,
                        "request": {"method": "PUT", "url": conditional_url(resource)},
                    }
                )
        return entries

    def _gather(self, patient_id: str) -> tuple[Resource | None, list[Resource]]:
        """The stored Patient and its stored inputs, in as few searches as the inputs allow."""
        page = self._store.search(
            "Patient",
            [
                ("_id", patient_id),
                *(("_revinclude", f"{i.resource_type}:{i.search_param}") for i in _REVINCLUDED),
                ("_total", "none"),
            ],
        )
        found = list(page.includes)
        for spec in _FILTERED:
            found.extend(self._store.search(spec.resource_type, spec.params(patient_id)).matches)
        return (page.matches[0] if page.matches else None), found
