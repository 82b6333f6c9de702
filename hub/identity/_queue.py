"""The review queue: pairs of Patients a person decides on (`hub matches`)."""

from __future__ import annotations

import logging
from typing import Any

from hub.fhir import FhirError, instant_ms
from hub.state import Database, Transaction
from hub.store import FhirStore

from ._config import IdentityConfig
from ._demographics import nhs_numbers
from ._merge import MergePlan
from ._reads import is_active
from ._resolver import IdentityResolver
from ._review import MatchEntry, Status, decide, select_entries, select_entry

log = logging.getLogger(__name__)

Resource = dict[str, Any]
IDENTITY_LOCK = "identity"
"""The lock the pipeline holds while it resolves and writes a record's Patients."""
_MAX_LINK_HOPS = 20


class ReviewError(ValueError):
    """The entry cannot be decided as asked (unknown, already decided, Patient gone)."""


class MatchQueue:
    def __init__(self, db: Database, store: FhirStore, config: IdentityConfig) -> None:
        self._db = db
        self._store = store
        self._resolver = IdentityResolver(store, db, config)  # it creates the tables

    def list(self, status: Status | None = "open") -> list[MatchEntry]:
        """Entries with that status (None: all), oldest first."""
        with self._db.transaction() as tx:
            return select_entries(tx, status)

    def get(self, entry_id: int) -> MatchEntry:
        with self._db.transaction() as tx:
            return _existing(tx, entry_id)

    def accept(self, entry_id: int, by: str) -> MergePlan | None:
        """The two are one person: merge them in the store now, the survivor being the one
        with a valid NHS number, else the older. None: they were already one Patient."""
        # No record of either person is applied meanwhile (the pipeline holds it too).
        with self._db.exclusive(IDENTITY_LOCK):
            with self._db.transaction() as tx:
                entry = _open(tx, entry_id)
            first, second = self._current(entry.patient_id), self._current(entry.candidate_id)
            merge = None
            if first["id"] != second["id"]:
                survivor, retired = self._survivor_first(first, second)
                merge = self._resolver.plan_merge(
                    retired["id"], survivor["id"], reason=f"review {entry_id} accepted by {by}"
                )
                self._store.transaction(
                    {"resourceType": "Bundle", "type": "transaction", "entry": merge.entries}
                )
            with self._db.transaction() as tx:
                if merge is not None:
                    merge.record(tx)
                decide(tx, entry_id, "accepted", by)
        log.info("review %s accepted by %s", entry_id, by)
        return merge

    def reject(self, entry_id: int, by: str) -> MatchEntry:
        """They are two people: the pair is never queued again."""
        with self._db.transaction() as tx:
            _open(tx, entry_id)
            decide(tx, entry_id, "rejected", by)
            entry = _existing(tx, entry_id)
        log.info("review %s rejected by %s", entry_id, by)
        return entry

    def _current(self, patient_id: str) -> Resource:
        """The Patient now standing for `patient_id`: merges since it was queued are followed
        along their `replaced-by` links."""
        for _ in range(_MAX_LINK_HOPS):
            try:
                patient = self._store.read("Patient", patient_id)
            except FhirError as exc:
                raise ReviewError(f"Patient/{patient_id} cannot be read: {exc}") from exc
            if is_active(patient):
                return patient
            patient_id = _replaced_by(patient)
        raise ReviewError(f"Patient/{patient_id}: too many merges to follow")

    def _survivor_first(self, a: Resource, b: Resource) -> tuple[Resource, Resource]:
        if bool(nhs_numbers(a)) != bool(nhs_numbers(b)):
            return (a, b) if nhs_numbers(a) else (b, a)
        return (a, b) if self._created_ms(a) <= self._created_ms(b) else (b, a)

    def _created_ms(self, patient: Resource) -> int:
        """When the first version was written (the current one's time if history is gone)."""
        try:
            first = self._store.vread("Patient", patient["id"], "1")
        except FhirError:
            first = patient
        return instant_ms((first.get("meta") or {}).get("lastUpdated", "9999-12-31"))


def _replaced_by(patient: Resource) -> str:
    for link in patient.get("link") or []:
        reference = (link.get("other") or {}).get("reference", "")
        if link.get("type") == "replaced-by" and reference.startswith("Patient/"):
            return reference.removeprefix("Patient/")
    raise ReviewError(f"Patient/{patient['id']} is inactive and replaced by no Patient")


def _existing(tx: Transaction, entry_id: int) -> MatchEntry:
    entry = select_entry(tx, entry_id)
    if entry is None:
        raise ReviewError(f"no review entry {entry_id}")
    return entry


def _open(tx: Transaction, entry_id: int) -> MatchEntry:
    entry = _existing(tx, entry_id)
    if entry.status != "open":
        raise ReviewError(f"review entry {entry_id} was already {entry.status}")
    return entry
