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
from urllib.parse import unquote

import orjson

from hub.derived import affects
from hub.fhir import (
    DateFormatError,
    FhirError,
    ResourceGone,
    ResourceNotFound,
    format_instant,
    instant_ms,
    map_references,
    now_ms,
)
from hub.identity import IDENTITY_LOCK, IdentityResolver, PatientPlan, demographics
from hub.mapping import SOURCE_BASE, MappedRecord, MappedResource, Mapping, merge_kept
from hub.state import Database, instance_id
from hub.store import FhirStore

from ._clocks import ResourceClocks, resource_key
from ._derived import DerivedStep
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
        """The people the record touches and the consents it needs."""
        tokens = set(self.person_tokens)
        tokens.update(
            resource_key("Consent", i["consent"]["system"], i["consent"]["value"])
            for i in self.mapped.instructions
            if i["kind"] == "require-consent"
        )
        return tokens

    def writes(self) -> dict[str, bytes]:
        """The resources the record writes: key -> a digest of the content."""
        return {
            resource_key(m.type, m.system, m.value): hashlib.blake2b(
                orjson.dumps(m.resource, option=orjson.OPT_SORT_KEYS), digest_size=16
            ).digest()
            for m in self.mapped.resources
        }


def groups(ready: Iterable[Ready]) -> Iterator[list[Ready]]:
    """Consecutive records that can be written in either order, so together, up to
    GROUP_MAX: they touch no person and need no consent in common, and write no resource
    differently (many visits name one place: the same Location, written alike, is no
    conflict). A merge is always alone (it re-points resources no token names)."""
    group: list[Ready] = []
    seen: set[str] = set()
    written: dict[str, bytes] = {}
    for record in ready:
        tokens, writes = record.tokens(), record.writes()
        clash = tokens & seen or any(written.get(k, d) != d for k, d in writes.items())
        alone = bool(record.retired)
        if group and (alone or len(group) >= GROUP_MAX or clash or group[0].retired):
            yield group
            group, seen, written = [], set(), {}
        group.append(record)
        seen |= tokens
        written.update(writes)
    if group:
        yield group


@dataclass
class _Prepared:
    ready: Ready
    plans: list[PatientPlan]
    touched: dict[str, Any]
    """The patients whose derived resources the record may change: id -> the Patient it
    writes, or None."""
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
        self._derived = DerivedStep(store)
        self._instance = instance_id(db)

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
            [Ready(item, mapping, mapped)], lambda done: on_applied(done[0][1])
        )
        if isinstance(result, Exception):
            raise result
        return result

    def apply_group(
        self, group: list[Ready], on_applied: Callable[[list[tuple[Ready, Applied]]], None]
    ) -> list[Result]:
        """Write records that share nothing (see `groups`) in one store transaction; for each,
        its Applied or why it was not (Waiting, Withheld, Rejected, a permanent FhirError).

        `on_applied` is given the applied records inside the one hub-state transaction that
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
            entries = _without_repeats([e for _, ready in prepared for e in ready.entries])
            if entries:
                entries += self._derived_entries([ready for _, ready in prepared], entries)
                self._write(entries, len(prepared))
            with self._db.transaction() as tx:
                for index, ready in prepared:
                    self._clocks.advance(
                        tx, ready.written_keys, ready.source_time, ready.ready.item.id
                    )
                    for plan in ready.plans:
                        plan.record(tx)
                    results[index] = ready.applied
                if prepared:
                    on_applied([(ready.ready, ready.applied) for _, ready in prepared])
        return [r for r in results if r is not None]

    def _derived_entries(
        self, prepared: list[_Prepared], entries: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Once per patient the group touches (two records may name one person by different
        identifiers), dated by the latest record about them."""
        patients: dict[str, Any] = {}
        latest: dict[str, tuple[int, str]] = {}
        for ready in prepared:
            when = ready.source_time or now_ms()
            text = ready.ready.mapped.timestamp or format_instant(when)
            for patient_id, patient in ready.touched.items():
                patients[patient_id] = patient or patients.get(patient_id)
                latest[patient_id] = max(latest.get(patient_id, (when, text)), (when, text))
        at = {patient_id: text for patient_id, (_, text) in latest.items()}
        created = {plan.patient_id for ready in prepared for plan in ready.plans if plan.created}
        # Not placeholders: a conditional create leaves a resource that has the key as it is.
        written = [
            e["resource"]
            for e in entries
            if e["resource"]["resourceType"] not in ("Patient", "Provenance")
            and "ifNoneExist" not in e["request"]
        ]
        return self._derived.entries(patients, written, at, created=created)

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
        others = [m for m in mapped.resources if m.type != "Patient" and not m.placeholder]
        keys = {resource_key(m.type, m.system, m.value): m for m in others}
        with self._db.transaction(readonly=True) as tx:
            stale = self._clocks.stale(tx, dict.fromkeys(keys, source_time))
        writes = [
            (made, resource)
            for key, made in keys.items()
            if (resource := self._to_write(made, stale=key in stale)) is not None
        ]
        fresh = [made for made, _ in writes]
        known = _patient_references(plans)
        written = {(m.type, m.system, m.value) for m in fresh}
        entries = [entry for plan in plans for entry in plan.entries_except(written)]
        entries.extend(self._entry(made, known, resource) for made, resource in writes)
        # What the record is about, as its Provenance names it: what it writes, and the Patients
        # it confirms without changing them (a contact for someone known: no PUT of them).
        targets = [entry.get("fullUrl") or entry["request"]["url"] for entry in entries]
        targets += [f"Patient/{plan.patient_id}" for plan in plans if plan.unchanged]
        if targets and self._written_already(ready):
            entries = []  # the store has it all: only the hub state is to catch up
        elif targets:
            entries = self._with_placeholders(entries, mapped, known)
            entries.append(self._provenance_entry(ready.item, ready.mapping, mapped, targets))
        return _Prepared(
            ready=ready,
            plans=plans,
            touched=_touched(plans, known) if any(affects(e["resource"]) for e in entries) else {},
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
        store: a worker that died after the store committed and before the hub state did (or
        a store that committed and then failed to answer). Its Provenance says so; writing
        again would give it a second version. Never on an item's first claim."""
        if ready.item.claims == 1:
            return False
        try:
            existing = self._store.read("Provenance", provenance_id(self._instance, ready.item.id))
        except (ResourceNotFound, ResourceGone):
            return False
        policy = mapping_policy(ready.mapping.name, ready.mapping.version)
        return policy in existing.get("policy", [])

    @contextmanager
    def _identity_locks(self, tokens: set[str]) -> Iterator[None]:
        """Two workers must never create two Patients for one person: the people records name
        are locked while they are resolved and written, holding no hub-state transaction, so
        listeners go on storing. Each person token is a lock of its own, so records about
        other people go on in parallel (with a few thousand shared locks, two groups of a
        hundred records nearly always met on one), taken in one order, so that two groups
        never wait for each other; under `shared(IDENTITY_LOCK)`, so that a review decision
        (`hub matches accept`), which takes it exclusively, sees nobody at work."""
        keys = {f"{IDENTITY_LOCK}:{token}" for token in tokens}
        with self._db.shared(IDENTITY_LOCK), self._db.exclusive(*keys):
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
            # Withheld, not waiting: a client who never consented has no Consent at all, and
            # one who withdrew has an inactive one. Should consent be recorded (again) later,
            # the row is applied then.
            if not found:
                raise Withheld("no consent to share on record", wait_key=f"Consent|{token}")
            if found[0].get("status") != "active":
                raise Withheld(
                    "consent to share is not active (never given or withdrawn)",
                    wait_key=f"Consent|{token}",
                )

    def _to_write(self, made: MappedResource, *, stale: bool) -> dict[str, Any] | None:
        """The resource to write for `made`, None for nothing: a stale record writes nothing,
        unless its mapping keeps items that the stored resource lacks (`merge_kept`)."""
        if not made.keep:
            return None if stale else made.resource
        found = self._store.search(
            made.type, [("identifier", f"{made.system}|{made.value}"), ("_total", "none")]
        ).matches
        return merge_kept(made, found[0] if found else None, stale=stale)

    def _entry(
        self, made: MappedResource, known: dict[str, str], resource: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        resource = made.resource if resource is None else resource
        optional = made.type == "Consent" and resource.get("status") != "active"
        return {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": self._resolve_patients(resource, known, optional=optional),
            "request": made.request(),
        }

    def _with_placeholders(
        self, entries: list[dict[str, Any]], mapped: MappedRecord, known: dict[str, str]
    ) -> list[dict[str, Any]]:
        """The record's placeholders (conditional creates) before its entries, which refer to
        them by fullUrl: in a transaction that names the new resource, or the one that has the
        key already. Not among the Provenance's targets: the record does not write them when
        their owner's resource is there."""
        stand_ins = {
            made.conditional_url: self._entry(made, known)
            for made in mapped.resources
            if made.placeholder
        }
        if not stand_ins:
            return entries

        def to_stand_in(reference: str) -> str | None:
            stand_in = stand_ins.get(reference)
            return stand_in["fullUrl"] if stand_in else None

        return [*stand_ins.values()] + [
            {**entry, "resource": map_references(entry["resource"], to_stand_in)}
            for entry in entries
        ]

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
            token = _patient_token(reference)
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
            instance=self._instance,
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


def _without_repeats(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The group's entries without the writes that repeat an earlier one (same request, same
    resource: records that name one place), references to their fullUrl made to the one
    kept: a transaction must not write one resource twice."""
    first: dict[tuple[str, str, str], dict[str, Any]] = {}
    kept: list[dict[str, Any]] = []
    renamed: dict[str, str] = {}
    for entry in entries:
        request = entry["request"]
        key = (request["method"], request["url"], request.get("ifNoneExist", ""))
        found = first.setdefault(key, entry)
        if found is not entry and found["resource"] == entry["resource"]:
            renamed[entry["fullUrl"]] = found["fullUrl"]
            continue
        kept.append(entry)
    if not renamed:
        return entries
    return [{**e, "resource": map_references(e["resource"], renamed.get)} for e in kept]


def _patient_token(reference: str) -> str:
    """`system|value` of a `Patient?identifier=...` reference, as a search parameter value (the
    reference is a URL: percent-encoded)."""
    return unquote(reference.removeprefix(_PATIENT_QUERY))


def _patient_queries(resource: dict[str, Any]) -> list[str]:
    """The identifiers in `Patient?identifier=...` references anywhere in `resource`."""
    found: list[str] = []

    def note(reference: str) -> None:
        if reference.startswith(_PATIENT_QUERY):
            found.append(_patient_token(reference))

    map_references(resource, note)  # rewrites nothing: `note` gives no new value
    return found


def _patient_references(plans: list[PatientPlan]) -> dict[str, str]:
    return {
        f"{identifier['system']}|{identifier['value']}": f"Patient/{plan.patient_id}"
        for plan in plans
        for identifier in plan.resource.get("identifier", [])
        if identifier.get("system") and identifier.get("value")
    }


def _touched(plans: list[PatientPlan], known: dict[str, str]) -> dict[str, Any]:
    """The patients a record is about, by id: with the Patient it writes, else None."""
    touched: dict[str, Any] = {
        reference.removeprefix("Patient/"): None for reference in known.values() if reference
    }
    touched.update((plan.patient_id, plan.resource) for plan in plans)
    touched.update((m.retired_id, m.retired) for plan in plans for m in plan.merges if m.retired_id)
    return touched


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
    if mapped.warnings:
        outcome["warnings"] = mapped.warnings  # what did not stop it: `hub inbox` shows them
    return outcome
