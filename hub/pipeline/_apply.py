"""One mapped record into the shared record: consent, identity, order, one transaction.

Everything the record changes — its Patient (merged across sources by identity), its other
resources, merges it asks for, and its Provenance — is written in one store transaction, so
the shared record never holds half a message. The hub-state transaction around it holds the
identity lock: two workers can never create two Patients for one person.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from hub.fhir import DateFormatError, instant_ms, map_references, now_ms
from hub.identity import IDENTITY_LOCK, IdentityResolver, PatientPlan
from hub.mapping import SOURCE_BASE, MappedRecord, MappedResource, Mapping
from hub.state import Database
from hub.store import FhirStore

from ._clocks import ResourceClocks, resource_key
from ._inbox import InboxItem
from ._outcomes import Rejected, Waiting, Withheld
from ._provenance import provenance

_PATIENT_QUERY = "Patient?identifier="


@dataclass
class Applied:
    """What applying a record did: stored as the inbox item's outcome."""

    outcome: dict[str, Any]
    wake: list[str] = field(default_factory=list)
    """Keys other parked items may be waiting for (a Patient's identifiers, an active
    Consent): they are tried again now."""


class RecordApplier:
    def __init__(self, store: FhirStore, db: Database, identity: IdentityResolver) -> None:
        self._store = store
        self._db = db
        self._identity = identity
        self._clocks = ResourceClocks(db)

    def apply(self, item: InboxItem, mapping: Mapping, mapped: MappedRecord) -> Applied:
        self._check_consent(mapped)
        source_time = _time_ms(mapped)
        source = mapping.name.split("/")[0]
        retired = [
            (i["retired"]["system"], i["retired"]["value"])
            for i in mapped.instructions
            if i["kind"] == "merge"
        ]
        patients = [made for made in mapped.resources if made.type == "Patient"]
        if retired and not patients:
            raise Rejected("a merge instruction needs the surviving Patient in the record")
        # One record at a time resolves identities and writes (two workers must never create
        # two Patients for one person), holding no hub-state transaction meanwhile: listeners
        # go on storing while the store is written.
        with self._db.exclusive(IDENTITY_LOCK):
            plans = [
                self._identity.resolve(
                    made.resource,
                    (made.system, made.value),
                    source=source,
                    source_time_ms=source_time,
                    retired=retired if index == 0 else (),
                )
                for index, made in enumerate(patients)
            ]
            others = [made for made in mapped.resources if made.type != "Patient"]
            keys = {resource_key(m.type, m.system, m.value): m for m in others}
            with self._db.transaction(readonly=True) as tx:
                stale = self._clocks.stale(tx, dict.fromkeys(keys, source_time))
            fresh = [m for key, m in keys.items() if key not in stale]
            known = _patient_references(plans)
            written = {(m.type, m.system, m.value) for m in fresh}
            entries = [entry for plan in plans for entry in plan.entries_except(written)]
            entries.extend(self._entry(made, known) for made in fresh)
            if entries:
                entries.append(self._provenance_entry(item, mapping, mapped, entries))
                self._store.transaction(
                    {"resourceType": "Bundle", "type": "transaction", "entry": entries}
                )
            with self._db.transaction() as tx:
                self._clocks.advance(tx, [k for k in keys if k not in stale], source_time, item.id)
                for plan in plans:
                    plan.record(tx)
        return Applied(
            outcome=_outcome(mapped, plans, fresh, sorted(stale)),
            wake=_wake_keys(plans, fresh),
        )

    def _check_consent(self, mapped: MappedRecord) -> None:
        for instruction in mapped.instructions:
            if instruction["kind"] != "require-consent":
                continue
            consent = instruction["consent"]
            token = f"{consent['system']}|{consent['value']}"
            found = self._store.search("Consent", [("identifier", token)]).matches
            if not found:
                # Withheld, not waiting: a client who never consented has no Consent at all.
                # Should their consent be recorded later, the row is applied then.
                raise Withheld("no consent to share on record", wait_key=f"Consent|{token}")
            if found[0].get("status") != "active":
                raise Withheld("consent to share is not active (never given or withdrawn)")

    def _entry(self, made: MappedResource, known: dict[str, str]) -> dict[str, Any]:
        optional = made.type == "Consent" and made.resource.get("status") != "active"
        resource = self._resolve_patients(made.resource, known, optional=optional)
        return {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": resource,
            "request": {"method": "PUT", "url": made.conditional_url},
        }

    def _resolve_patients(
        self, resource: dict[str, Any], known: dict[str, str], *, optional: bool
    ) -> dict[str, Any]:
        """`Patient?identifier=...` references made literal: the Patient identity chose, or the
        one the store holds. None yet: the record waits for it — except an inactive Consent,
        which stands without one (a withdrawal for a client whose data was never shared)."""
        missing: list[str] = []

        def literal(reference: str) -> str | None:
            if not reference.startswith(_PATIENT_QUERY):
                return None
            token = reference.removeprefix(_PATIENT_QUERY)
            if token not in known:
                known[token] = self._find_patient(token)
            if not known[token]:
                missing.append(token)
            return known[token] or None

        resolved = map_references(resource, literal)
        if missing and optional and resource.get("resourceType") == "Consent":
            return {k: v for k, v in resolved.items() if k != "patient"}
        if missing:
            raise Waiting(
                f"Patient|{missing[0]}", "the Patient it is about is not in the record yet"
            )
        return resolved

    def _find_patient(self, token: str) -> str:
        matches = self._store.search("Patient", [("identifier", token)]).matches
        if len(matches) > 1:
            raise Rejected(f"{len(matches)} Patients have the identifier the record refers to")
        return f"Patient/{matches[0]['id']}" if matches else ""

    def _provenance_entry(
        self,
        item: InboxItem,
        mapping: Mapping,
        mapped: MappedRecord,
        entries: list[dict[str, Any]],
    ) -> dict[str, Any]:
        targets = [entry.get("fullUrl") or entry["request"]["url"] for entry in entries]
        resource = provenance(
            inbox_id=item.id,
            record=mapped.name,
            organisation=_organisation(mapped),
            mapping=mapping.name,
            mapping_version=mapping.version,
            occurred=mapped.timestamp,
            recorded_ms=now_ms(),
            targets=targets,
        )
        return {
            "resource": resource,
            "request": {"method": "PUT", "url": f"Provenance/{resource['id']}"},
        }


def _patient_references(plans: list[PatientPlan]) -> dict[str, str]:
    return {
        f"{identifier['system']}|{identifier['value']}": f"Patient/{plan.patient_id}"
        for plan in plans
        for identifier in plan.resource.get("identifier", [])
        if identifier.get("system") and identifier.get("value")
    }


def _time_ms(mapped: MappedRecord) -> int | None:
    if not mapped.timestamp:
        return None
    try:
        return instant_ms(mapped.timestamp)
    except DateFormatError:
        raise Rejected(f"{mapped.name}: timestamp {mapped.timestamp!r} is not a date") from None


def _organisation(mapped: MappedRecord) -> str | None:
    for made in mapped.resources:
        source = made.resource.get("meta", {}).get("source", "")
        if source.startswith(SOURCE_BASE):
            return source.removeprefix(SOURCE_BASE).partition("#")[0] or None
    return None


def _wake_keys(plans: list[PatientPlan], fresh: list[MappedResource]) -> list[str]:
    keys = [f"Patient|{token}" for token in _patient_references(plans)]
    keys.extend(
        f"Consent|{m.system}|{m.value}"
        for m in fresh
        if m.type == "Consent" and m.resource.get("status") == "active"
    )
    return keys


def _outcome(
    mapped: MappedRecord,
    plans: list[PatientPlan],
    fresh: list[MappedResource],
    stale: list[str],
) -> dict[str, Any]:
    outcome: dict[str, Any] = {
        "record": mapped.name,
        "written": [f"{m.type}|{m.system}|{m.value}" for m in fresh],
    }
    if plans:
        outcome["patients"] = [
            {"id": plan.patient_id, "matched_by": plan.matched_by} for plan in plans
        ]
    if stale:
        outcome["superseded"] = stale  # older than what was applied: recorded, not written
    merged = [m.retired_id for plan in plans for m in plan.merges if m.retired_id]
    if merged:
        outcome["merged"] = merged
    return outcome
