"""Resolving the person a record is about, and planning what to write, without writing it.

The pipeline calls `resolve` holding `db.exclusive("identity")` (no transaction open),
right before it writes the record's store transaction: two workers can then never create two
Patients for one person. So `resolve` only reads the store; everything to write comes back as
a `PatientPlan` (store entries, and `record(tx)` for the hub state).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hub.fhir import NHS_NUMBER_SYSTEM, Unprocessable, json_copy, new_id
from hub.state import Database, Transaction
from hub.store import FhirStore

from ._config import IdentityConfig, source_name
from ._demographics import demographics, nhs_numbers, nhs_numbers_conflict
from ._matching import Candidate, MatchLevel, compare, decide
from ._merge import (
    BusinessKey,
    MergePlan,
    add_link,
    find_referrers,
    put_entry,
    repoint_entries,
    retire,
)
from ._reads import active_holders, active_with_identifier, is_active, search_all, version_of
from ._review import ReviewCandidate, enqueue
from ._state import changed, drop_clocks, ensure_schema, load_clocks, save_clocks
from ._survivorship import Clock, absorb, apply_record, clock_for, hub_copy, identifier_key

log = logging.getLogger(__name__)

Resource = dict[str, Any]
MatchedBy = Literal["nhs-number", "source-key", "demographics", "new"]


class IdentityConflict(Unprocessable):
    """The record contradicts what the hub knows (two valid NHS numbers for one person): the
    hub will not guess, so the record fails (a dead letter) until a person settles it."""


@dataclass
class PatientPlan:
    """Everything a record does to its Patient, as data to write in the caller's
    transactions: `entries` into the store transaction, then `record(tx)` into the hub state."""

    patient_id: str
    resource: Resource
    """The Patient to PUT at Patient/{patient_id}: every source's identifiers, each element
    from the source that wins it."""
    if_match: str | None
    """The version read (None for a new Patient): a concurrent change fails the write (412)."""
    created: bool
    matched_by: MatchedBy
    merges: list[MergePlan] = field(default_factory=list)
    """Patients folded into this one (already part of `entries` and `record`)."""
    reviews: list[ReviewCandidate] = field(default_factory=list)
    """Pairs for a person to decide; `record` queues those never queued before."""
    clocks: dict[str, Clock] = field(default_factory=dict)
    """The survivorship clocks that change."""
    unchanged: bool = False
    """The record changes nothing of an existing Patient (the usual case: a contact for
    someone already known): `entries` then has no PUT of it."""

    @property
    def entries(self) -> list[dict[str, Any]]:
        """Store transaction entries: retired Patients, this Patient, re-pointed resources.
        Put them before the record's other entries."""
        return self.entries_except(())

    def entries_except(self, written: Collection[BusinessKey]) -> list[dict[str, Any]]:
        """`entries` without re-pointing resources the caller writes itself in the same
        transaction, named by (type, identifier system, identifier value)."""
        retired = [put_entry(m.retired, m.retired_if_match) for m in self.merges if m.retired]
        moves = {m.retired_id: self.patient_id for m in self.merges if m.retired_id}
        referrers = [r for m in self.merges for r in m.referrers]
        patient = [] if self.unchanged else [put_entry(self.resource, self.if_match)]
        return [*retired, *patient, *repoint_entries(referrers, moves, written)]

    def record(self, tx: Transaction) -> None:
        """After the store transaction committed, in the caller's hub-state transaction."""
        save_clocks(tx, self.patient_id, self.clocks)
        for merge in self.merges:
            if merge.retired_id:
                drop_clocks(tx, merge.retired_id)
        for review in self.reviews:
            if enqueue(tx, review):
                # Ids and which fields agree only: never a name, number, date or postcode.
                log.info(
                    "Patient/%s may be Patient/%s: queued for review (%s; %s)",
                    review.patient_id,
                    review.candidate_id,
                    review.reason,
                    review.evidence,
                )


@dataclass
class _Draft:
    """The Patient being planned."""

    patient_id: str
    resource: Resource
    if_match: str | None
    created: bool
    clocks_before: dict[str, Clock]
    clocks: dict[str, Clock]
    merges: list[MergePlan] = field(default_factory=list)
    original: Resource | None = None
    """The Patient as stored, to tell whether the record changes it."""


@dataclass
class _Found:
    patient: Resource | None
    matched_by: MatchedBy
    absorb: list[Resource] = field(default_factory=list)
    reviews: list[Candidate] = field(default_factory=list)


class IdentityResolver:
    def __init__(self, store: FhirStore, db: Database, config: IdentityConfig) -> None:
        self._store = store
        self._db = db
        self._config = config
        ensure_schema(db)

    # --- resolving a record -------------------------------------------------------------
    def resolve(
        self,
        incoming: Resource,
        key: tuple[str, str],
        *,
        source: str,
        source_time_ms: int | None,
        retired: Sequence[tuple[str, str]] = (),
    ) -> PatientPlan:
        """The plan for one mapped Patient. `key` is the record's own identifier (EPR MRN,
        VCSE client reference, or the NHS number for GP and district nursing); `source` the
        source or mapping name (`slam-epr`, `slam-epr/adt`); `source_time_ms` the record's own
        time (None: oldest). `retired`: identifiers a merge instruction (A40 MRG-1) says now
        belong to this person; their Patients are merged into it in the same plan."""
        clock = clock_for(source, source_time_ms)
        with self._db.transaction(readonly=True) as tx:
            found = self._find(incoming, key)
            draft = self._draft(found.patient, tx)
            for other in found.absorb:
                self._absorb(draft, other, tx, reason="the source key and NHS number agree")
            for identifier in retired:
                self._retire_identifier(draft, identifier, tx, reason="merge instruction")
            draft.resource, draft.clocks = apply_record(
                draft.resource, draft.clocks, _with_key(incoming, key), clock, self._config
            )
            candidates = found.reviews
            if found.matched_by == "source-key" and not nhs_numbers(draft.resource):
                candidates = self._lookalikes(draft.resource, key[0], draft.patient_id)
        plan = PatientPlan(
            patient_id=draft.patient_id,
            resource=draft.resource,
            if_match=draft.if_match,
            created=draft.created,
            matched_by=found.matched_by,
            merges=draft.merges,
            reviews=[_review(draft.patient_id, c, clock.source) for c in candidates],
            clocks=changed(draft.clocks_before, draft.clocks),
            unchanged=not draft.merges and draft.resource == draft.original,
        )
        _log_plan(plan)
        return plan

    def _find(self, incoming: Resource, key: tuple[str, str]) -> _Found:
        numbers = [(NHS_NUMBER_SYSTEM, number) for number in nhs_numbers(incoming)]
        holders = active_holders(self._store, [*numbers, key])
        by_nhs = next((holders[n] for n in numbers if holders[n] is not None), None)
        by_key = holders[key]
        if by_key is not None and nhs_numbers_conflict(incoming, by_key):
            raise IdentityConflict(
                f"the record's NHS number differs from that of Patient/{by_key['id']}, which "
                "holds its source key: settle by hand (which number is right?), then replay"
            )
        if by_nhs is not None:
            # Both found, and different: the source says the key's Patient and the NHS
            # number's are one person (a record registered before it was traced).
            others = [by_key] if by_key is not None and by_key["id"] != by_nhs["id"] else []
            return _Found(by_nhs, "nhs-number", absorb=others)
        if by_key is not None:
            return _Found(by_key, "source-key")
        decision = decide(self._candidates(incoming, key[0]))
        if decision.link is not None:
            return _Found(decision.link.patient, "demographics")
        return _Found(None, "new", reviews=decision.reviews)

    def _candidates(
        self, patient: Resource, key_system: str, exclude: str | None = None
    ) -> list[Candidate]:
        """Active Patients born the same day, compared in Python: the store's string search
        knows nothing of hyphens in names or spaces in postcodes."""
        birth_date = demographics(patient).birth_date
        if birth_date is None:
            return []
        return [
            compare(patient, other, key_system)
            for other in search_all(self._store, "Patient", [("birthdate", birth_date)])
            if is_active(other) and other["id"] != exclude
        ]

    def _lookalikes(self, patient: Resource, key_system: str, patient_id: str) -> list[Candidate]:
        """A Patient known only by a source key and demographics is compared again each time
        its source writes: a pair that looks like one person is queued (once: the queue
        remembers pairs), never merged without a person deciding."""
        candidates = self._candidates(patient, key_system, exclude=patient_id)
        return [c for c in candidates if c.level is not MatchLevel.NONE]

    # --- building the plan --------------------------------------------------------------
    def _draft(self, patient: Resource | None, tx: Transaction) -> _Draft:
        if patient is None:
            patient_id = new_id()
            resource = {"resourceType": "Patient", "id": patient_id, "active": True}
            return _Draft(patient_id, resource, None, True, {}, {})
        clocks = load_clocks(tx, patient["id"])
        original = hub_copy(patient)
        return _Draft(
            patient["id"],
            json_copy(original),
            version_of(patient),
            False,
            clocks,
            dict(clocks),
            original=original,
        )

    def _absorb(self, draft: _Draft, retired: Resource, tx: Transaction, *, reason: str) -> None:
        """Fold `retired` into the draft: its identifiers, what it knew better, its links."""
        if nhs_numbers_conflict(draft.resource, retired):
            raise IdentityConflict(
                f"Patient/{retired['id']} and Patient/{draft.patient_id} have different valid "
                "NHS numbers: they are not merged"
            )
        if not is_active(retired):
            raise IdentityConflict(f"Patient/{retired['id']} was already merged into another")
        before = dict(draft.clocks)
        draft.resource, draft.clocks = absorb(
            draft.resource, draft.clocks, retired, load_clocks(tx, retired["id"]), self._config
        )
        add_link(draft.resource, retired["id"], "replaces")
        draft.merges.append(
            MergePlan(
                retired_id=retired["id"],
                surviving_id=draft.patient_id,
                reason=reason,
                surviving=draft.resource,
                surviving_if_match=draft.if_match,
                retired=retire(retired, draft.patient_id),
                retired_if_match=version_of(retired),
                referrers=find_referrers(self._store, retired["id"]),
                clocks=changed(before, draft.clocks),
            )
        )

    def _retire_identifier(
        self, draft: _Draft, identifier: tuple[str, str], tx: Transaction, *, reason: str
    ) -> bool:
        """Merge the Patient holding `identifier` into the draft; when none does, or the
        draft holds it already, the draft only keeps it as `use: old`. False: nothing to do."""
        holder = active_with_identifier(self._store, *identifier)
        merged = {draft.patient_id, *(m.retired_id for m in draft.merges)}
        if holder is not None and holder["id"] not in merged:
            self._absorb(draft, holder, tx, reason=reason)
            return True
        if not _mark_old(draft.resource, identifier):
            return False
        draft.merges.append(
            MergePlan(None, draft.patient_id, reason, draft.resource, draft.if_match)
        )
        return True

    # --- merges asked for by a source or a person ----------------------------------------
    def merge_by_identifier(
        self, *, retired: tuple[str, str], surviving_id: str
    ) -> MergePlan | None:
        """A merge instruction on its own (no Patient of the survivor in the same record: else
        pass `retired=` to `resolve`). None: the survivor already holds it as `use: old`."""
        with self._db.transaction() as tx:
            draft = self._draft(self._store.read("Patient", surviving_id), tx)
            if not self._retire_identifier(draft, retired, tx, reason="merge instruction"):
                return None
        return _final(draft)

    def plan_merge(self, retired_id: str, surviving_id: str, *, reason: str) -> MergePlan:
        if retired_id == surviving_id:
            raise ValueError(f"Patient/{retired_id} cannot be merged into itself")
        with self._db.transaction() as tx:
            draft = self._draft(self._store.read("Patient", surviving_id), tx)
            self._absorb(draft, self._store.read("Patient", retired_id), tx, reason=reason)
        return _final(draft)


def _final(draft: _Draft) -> MergePlan:
    """The draft's one merge, with the survivor as it ends up."""
    merge = draft.merges[-1]
    merge.surviving = draft.resource
    merge.clocks = changed(draft.clocks_before, draft.clocks)
    return merge


def _with_key(incoming: Resource, key: tuple[str, str]) -> Resource:
    """The record's own key is always among the Patient's identifiers."""
    identifiers = incoming.get("identifier") or []
    if any(identifier_key(i) == key for i in identifiers):
        return incoming
    return {**incoming, "identifier": [*identifiers, {"system": key[0], "value": key[1]}]}


def _mark_old(patient: Resource, identifier: tuple[str, str]) -> bool:
    for existing in patient.setdefault("identifier", []):
        if identifier_key(existing) == identifier:
            if existing.get("use") == "old":
                return False
            existing["use"] = "old"
            return True
    patient["identifier"].append({"system": identifier[0], "value": identifier[1], "use": "old"})
    return True


def _review(patient_id: str, candidate: Candidate, source: str) -> ReviewCandidate:
    return ReviewCandidate(
        patient_id, candidate.id, candidate.evidence, candidate.reason, source_name(source)
    )


def _log_plan(plan: PatientPlan) -> None:
    log.info("Patient/%s: matched by %s", plan.patient_id, plan.matched_by)
    for merge in plan.merges:
        log.info("Patient/%s: merges %s (%s)", plan.patient_id, merge.retired_id, merge.reason)
