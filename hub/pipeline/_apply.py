"""Mapped records into the shared record: consent, identity, order, one transaction.

Everything a record changes — its Patient (merged across sources by identity), its other
resources, merges it asks for, and its Provenance — is written in one store transaction, so
the shared record never holds half a message. Consecutive records of a lane that share no
person and no resource are written together, in one store transaction and one hub-state
transaction (`apply_group`): the per-transaction cost, large for an embedded store and larger
for a FHIR server over HTTP, is paid once for all of them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from hub.fhir import (
    DateFormatError,
    FhirError,
    ResourceGone,
    ResourceNotFound,
    instant_ms,
    map_references,
    now_ms,
)
from hub.identity import IDENTITY_LOCK, IdentityResolver, PatientPlan, demographics
from hub.mapping import SOURCE_BASE, MappedRecord, MappedResource, Mapping
from hub.state import Database
from hub.store import FhirStore

from ._clocks import ResourceClocks, resource_key
from ._inbox import InboxItem
from ._outcomes import GroupRefused, Rejected, Waiting, Withheld, is_transient
from ._provenance import mapping_policy, provenance, provenance_id

_PATIENT_QUERY = "Patient?identifier="

GROUP_MAX = 100
"""Records written in one store transaction at most."""


@dataclass
class Applied:
    """What applying a record did: stored as the inbox item's outcome."""

    outcome: dict[str, Any]
    wake: list[str] = field(default_factory=list)
    """Keys other parked items may be waiting for (a Patient's identifiers, an active
    Consent): they are tried again now."""


@dataclass
class Ready:
    """A mapped record, to be applied."""

    item: InboxItem
    mapping: Mapping
    mapped: MappedRecord

    @property
    def retired(self) -> list[tuple[str, str]]:
        """Identifiers a merge instruction (A40 MRG-1) retires into the record's Patient."""
        return [
            (i["retired"]["system"], i["retired"]["value"])
            for i in self.mapped.instructions
            if i["kind"] == "merge"
        ]

    @cached_property
    def person_tokens(self) -> frozenset[str]:
        """Every identifier of a person the record carries or refers to, and the family name
        and birth date demographic matching looks for."""
        tokens = {f"{system}|{value}" for system, value in self.retired}
        for made in self.mapped.resources:
            if made.type != "Patient":
                tokens.update(_patient_queries(made.resource))
                continue
            tokens.update(
                f"{i.get('system')}|{i.get('value')}" for i in made.resource.get("identifier", [])
            )
            person = demographics(made.resource)
            if person.family and person.birth_date:
                tokens.add(f"{person.family}|{person.birth_date}")
        return frozenset(tokens)

    def tokens(self) -> set[str]:
        """What the record touches: its people, its resources and the consents it needs. Two
        records that share none can be written in either order, so together."""
        tokens = set(self.person_tokens)
        tokens.update(resource_key(m.type, m.system, m.value) for m in self.mapped.resources)
        tokens.update(
            resource_key("Consent", i["consent"]["system"], i["consent"]["value"])
            for i in self.mapped.instructions
            if i["kind"] == "require-consent"
        )
        return tokens


def groups(ready: Iterable[Ready]) -> Iterator[list[Ready]]:
    """Consecutive records that share nothing, up to GROUP_MAX; a merge always alone (it
    re-points resources no token names)."""
    group: list[Ready] = []
    seen: set[str] = set()
    for record in ready:
        tokens = record.tokens()
        alone = bool(record.retired)
        if group and (alone or len(group) >= GROUP_MAX or tokens & seen or group[0].retired):
            yield group
            group, seen = [], set()
        group.append(record)
        seen |= tokens
    if group:
        yield group


@dataclass
class _Prepared:
    ready: Ready
    plans: list[PatientPlan]
    written_keys: list[str]
    source_time: int | None
    entries: list[dict[str, Any]]
    applied: Applied


Result = Applied | Exception


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
        """Write one record; `on_applied` runs inside the hub-state transaction that records
        it. Raises why it could not (Waiting, Withheld, Rejected, a FhirError)."""
        (result,) = self.apply_group(
            [Ready(item, mapping, mapped)], lambda _, applied: on_applied(applied)
        )
        if isinstance(result, Exception):
            raise result
        return result

    def apply_group(
        self, group: list[Ready], on_applied: Callable[[Ready, Applied], None]
    ) -> list[Result]:
        """Write records that share nothing (see `groups`) in one store transaction; for each,
        its Applied or why it was not (Waiting, Withheld, Rejected, a permanent FhirError).

        `on_applied` runs for each applied record inside the one hub-state transaction that
        records them all (marking inbox items done there costs no commit of its own). A
        transient failure raises, for the whole group to be tried again; GroupRefused when the
        store refused the transaction of several records: apply them one by one to find out
        which."""
        results: list[Result | None] = [None] * len(group)
        tokens = set().union(*(record.person_tokens for record in group))
        with self._identity_locks(tokens):
            prepared: list[tuple[int, _Prepared]] = []
            for index, record in enumerate(group):
                try:
                    prepared.append((index, self._prepare(record)))
                except (Waiting, Withheld, Rejected) as exc:
                    results[index] = exc
                except FhirError as exc:
                    if is_transient(exc):
                        raise
                    results[index] = exc
            entries = [entry for _, ready in prepared for entry in ready.entries]
            if entries:
                self._write(entries, len(prepared))
            with self._db.transaction() as tx:
                for index, ready in prepared:
                    self._clocks.advance(
                        tx, ready.written_keys, ready.source_time, ready.ready.item.id
                    )
                    for plan in ready.plans:
                        plan.record(tx)
                    on_applied(ready.ready, ready.applied)
                    results[index] = ready.applied
        return [r for r in results if r is not None]

    def _write(self, entries: list[dict[str, Any]], records: int) -> None:
        try:
            self._store.transaction(
                {"resourceType": "Bundle", "type": "transaction", "entry": entries}
            )
        except FhirError as exc:
            if records > 1 and not is_transient(exc):
                raise GroupRefused(str(exc)) from exc
            raise

    def _prepare(self, ready: Ready) -> _Prepared:
        """Everything one record writes, read and worked out under its identity locks."""
        mapped = ready.mapped
        self._check_consent(mapped)
        source_time = _time_ms(mapped)
        source = ready.mapping.name.split("/")[0]
        retired = ready.retired
        patients = [made for made in mapped.resources if made.type == "Patient"]
        if retired and not patients:
            raise Rejected("a merge instruction needs the surviving Patient in the record")
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
        # What the record is about, as its Provenance names it: what it writes, and the Patients
        # it confirms without changing them (a contact for someone known: no PUT of them).
        targets = [entry.get("fullUrl") or entry["request"]["url"] for entry in entries]
        targets += [f"Patient/{plan.patient_id}" for plan in plans if plan.unchanged]
        if targets and self._written_already(ready):
            entries = []  # the store has it all: only the hub state is to catch up
        elif targets:
            entries.append(self._provenance_entry(ready.item, ready.mapping, mapped, targets))
        return _Prepared(
            ready=ready,
            plans=plans,
            written_keys=[k for k in keys if k not in stale],
            source_time=source_time,
            entries=entries,
            applied=Applied(
                outcome=_outcome(mapped, plans, fresh, sorted(stale)),
                wake=_wake_keys(plans, fresh),
            ),
        )

    def _written_already(self, ready: Ready) -> bool:
        """Whether this item, mapped by this version of its mapping, already reached the
        store: a worker that died after the store committed and before the hub state did. Its
        Provenance says so; writing again would give it a second version."""
        try:
            existing = self._store.read("Provenance", provenance_id(ready.item.id))
        except (ResourceNotFound, ResourceGone):
            return False
        policy = mapping_policy(ready.mapping.name, ready.mapping.version)
        return policy in existing.get("policy", [])

    @contextmanager
    def _identity_locks(self, tokens: set[str]) -> Iterator[None]:
        """Two workers must never create two Patients for one person: the people records name
        are locked while they are resolved and written, holding no hub-state transaction, so
        listeners go on storing. Each token hashes to one of a fixed set of locks (records
        about other people mostly go on in parallel), taken in one order, so that two groups
        never wait for each other; under `shared(IDENTITY_LOCK)`, so that a review decision
        (`hub matches accept`), which takes it exclusively, sees nobody at work."""
        count = self._db.lock_buckets
        buckets = {f"{IDENTITY_LOCK}:{_bucket(token) % count}" for token in tokens}
        with self._db.shared(IDENTITY_LOCK), self._db.exclusive(*buckets):
            yield

    def arrived(self, key: str) -> bool:
        """Whether what a wait key names is in the store now: `Patient|system|value` a Patient
        with that identifier, `Consent|system|value` an active Consent."""
        kind, _, token = key.partition("|")
        found = self._store.search(kind, [("identifier", token), ("_total", "none")]).matches
        return bool(found) and (kind != "Consent" or found[0].get("status") == "active")

    def _check_consent(self, mapped: MappedRecord) -> None:
        for instruction in mapped.instructions:
            if instruction["kind"] != "require-consent":
                continue
            consent = instruction["consent"]
            token = f"{consent['system']}|{consent['value']}"
            found = self._store.search(
                "Consent", [("identifier", token), ("_total", "none")]
            ).matches
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
        matches = self._store.search("Patient", [("identifier", token), ("_total", "none")]).matches
        if len(matches) > 1:
            raise Rejected(f"{len(matches)} Patients have the identifier the record refers to")
        return f"Patient/{matches[0]['id']}" if matches else ""

    def _provenance_entry(
        self,
        item: InboxItem,
        mapping: Mapping,
        mapped: MappedRecord,
        targets: list[str],
    ) -> dict[str, Any]:
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


def _bucket(token: str) -> int:
    """A person token as a number; the state database says into how many locks they fall."""
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest())


def _patient_queries(resource: dict[str, Any]) -> list[str]:
    """The identifiers in `Patient?identifier=...` references anywhere in `resource`."""
    found: list[str] = []

    def note(reference: str) -> None:
        if reference.startswith(_PATIENT_QUERY):
            found.append(reference.removeprefix(_PATIENT_QUERY))

    map_references(resource, note)  # rewrites nothing: `note` gives no new value
    return found


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
