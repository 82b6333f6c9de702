"""One mapped record into the shared record: consent, identity, order, one transaction.

Everything the record changes — its Patient (merged across sources by identity), its other
resources, merges it asks for, and its Provenance — is written in one store transaction, so
the shared record never holds half a message. The hub-state transaction around it holds the
identity lock: two workers can never create two Patients for one person.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from hub.fhir import DateFormatError, instant_ms, map_references, now_ms
from hub.identity import IDENTITY_LOCK, IdentityResolver, PatientPlan, demographics
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

    def apply(
        self,
        item: InboxItem,
        mapping: Mapping,
        mapped: MappedRecord,
        on_applied: Callable[[Applied], None],
    ) -> Applied:
        """Write the record; `on_applied` runs inside the hub-state transaction that records
        it (marking the inbox item done there costs no commit of its own)."""
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
        # Two workers must never create two Patients for one person: a record locks the
        # people it names (see `_identity_locks`) while it resolves and writes them, holding no
        # hub-state transaction meanwhile, so listeners go on storing.
        with self._identity_locks(mapped, retired):
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
            applied = Applied(
                outcome=_outcome(mapped, plans, fresh, sorted(stale)),
                wake=_wake_keys(plans, fresh),
            )
            with self._db.transaction() as tx:
                self._clocks.advance(tx, [k for k in keys if k not in stale], source_time, item.id)
                for plan in plans:
                    plan.record(tx)
                on_applied(applied)
        return applied

    @contextmanager
    def _identity_locks(
        self, mapped: MappedRecord, retired: list[tuple[str, str]]
    ) -> Iterator[None]:
        """Every identifier of a person the record carries or refers to, and the family name
        and birth date demographic matching looks for, each hashed to one of a fixed set of
        locks (records about other people mostly go on in parallel). Taken in one order, so
        two records never wait for each other; under `shared(IDENTITY_LOCK)`, so a review
        decision (`hub matches accept`), which takes it exclusively, sees nobody at work."""
        with ExitStack() as held:
            held.enter_context(self._db.shared(IDENTITY_LOCK))
            for bucket in sorted({_bucket(token) for token in _person_tokens(mapped, retired)}):
                held.enter_context(self._db.exclusive(f"{IDENTITY_LOCK}:{bucket}"))
            yield

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


IDENTITY_BUCKETS = 4096
"""How many person locks there are: enough that unrelated records rarely share one, few enough
that the lock files (SQLite) stay a small fixed set."""


def _bucket(token: str) -> int:
    return (
        int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest()) % IDENTITY_BUCKETS
    )


def _person_tokens(mapped: MappedRecord, retired: list[tuple[str, str]]) -> set[str]:
    tokens = {f"{system}|{value}" for system, value in retired}
    for made in mapped.resources:
        if made.type != "Patient":
            tokens.update(_patient_queries(made.resource))
            continue
        tokens.update(
            f"{i.get('system')}|{i.get('value')}" for i in made.resource.get("identifier", [])
        )
        person = demographics(made.resource)
        if person.family and person.birth_date:
            tokens.add(f"{person.family}|{person.birth_date}")
    return tokens


def _patient_queries(node: Any) -> Iterator[str]:
    """The identifiers in `Patient?identifier=...` references anywhere in `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value.startswith(_PATIENT_QUERY):
                yield value.removeprefix(_PATIENT_QUERY)
            elif isinstance(value, dict | list):
                yield from _patient_queries(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patient_queries(value)


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
