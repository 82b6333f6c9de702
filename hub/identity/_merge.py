"""Merges: two Patients found to be one person become one, in a single store transaction.

The retired Patient stays (its history is part of the record) but becomes `active: false`,
links to its survivor (`replaced-by`) and gives up its identifiers, so a search by any
identifier finds exactly one Patient: the survivor, which keeps them (`use: old` where they were
not already its own) and links back (`replaces`). Every resource that pointed at the retired
Patient is re-pointed at the survivor, except:
- AuditEvents and Provenances: the audit trail and the record of where data came from say
  what happened at the time, and are never rewritten;
- other Patients: their `link`s are the history of earlier merges;
- the retired Patient's derived CareTeam and Flags (hub.derived): they are ended with it, and
  the survivor's are worked out again from the sources re-pointed to it;
- versioned references (`Patient/1/_history/2`): they name a version, which stays true.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.fhir import LiteralReference, map_references, parse_reference
from hub.state import Transaction
from hub.store import FhirStore

from ._reads import search_all, version_of
from ._state import drop_clocks, save_clocks
from ._survivorship import Clock, hub_copy

Resource = dict[str, Any]
BusinessKey = tuple[str, str, str]
"""(resource type, identifier system, identifier value)."""

NOT_REPOINTED = frozenset({"Patient", "AuditEvent", "Provenance", "CareTeam", "Flag"})


@dataclass
class MergePlan:
    """One merge, as data. `entries` are the store transaction entries (PUTs with If-Match of
    the version read), `record(tx)` moves the survivorship clocks in the hub state database.

    Inside a `PatientPlan` (`plan.merges`) a merge is already folded into the plan's own
    entries and record: write the plan's, not the merge's."""

    retired_id: str | None
    """None: no Patient held the retired identifier; the survivor only gains it."""
    surviving_id: str
    reason: str
    surviving: Resource
    surviving_if_match: str | None
    retired: Resource | None = None
    retired_if_match: str | None = None
    referrers: list[Resource] = field(default_factory=list)
    """Resources pointing at the retired Patient, as stored (re-pointed in `entries`)."""
    clocks: dict[str, Clock] = field(default_factory=dict)
    """The survivor's clocks that change."""

    @property
    def entries(self) -> list[dict[str, Any]]:
        return self.entries_except(())

    def entries_except(self, written: Collection[BusinessKey]) -> list[dict[str, Any]]:
        """The entries, without re-pointing resources the caller writes itself in the same
        transaction (a store refuses two writes of one resource; the caller's write already
        points at the survivor)."""
        entries = [put_entry(self.retired, self.retired_if_match)] if self.retired else []
        entries.append(put_entry(self.surviving, self.surviving_if_match))
        entries.extend(repoint_entries(self.referrers, self.moves, written))
        return entries

    @property
    def moves(self) -> dict[str, str]:
        return {self.retired_id: self.surviving_id} if self.retired_id else {}

    def record(self, tx: Transaction) -> None:
        save_clocks(tx, self.surviving_id, self.clocks)
        if self.retired_id:
            drop_clocks(tx, self.retired_id)


def put_entry(resource: Resource, if_match: str | None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "method": "PUT",
        "url": f"{resource['resourceType']}/{resource['id']}",
    }
    if if_match:
        request["ifMatch"] = f'W/"{if_match}"'
    return {"resource": resource, "request": request}


def repoint_entries(
    referrers: Iterable[Resource], moves: Mapping[str, str], written: Collection[BusinessKey]
) -> list[dict[str, Any]]:
    entries, seen = [], set()
    for resource in referrers:
        ref = (resource["resourceType"], resource["id"])
        if ref in seen or _business_keys(resource) & set(written):
            continue
        seen.add(ref)
        entries.append(put_entry(repoint(hub_copy(resource), moves), version_of(resource)))
    return entries


def _business_keys(resource: Resource) -> set[BusinessKey]:
    identifiers = resource.get("identifier") or []
    if isinstance(identifiers, dict):  # a few types have one identifier, not a list
        identifiers = [identifiers]
    return {
        (resource["resourceType"], i["system"], i["value"])
        for i in identifiers
        if isinstance(i, dict) and "system" in i and "value" in i
    }


def repoint(resource: Resource, moves: Mapping[str, str]) -> Resource:
    """`resource` with unversioned references to a moved Patient pointing at its survivor."""

    def rewrite(value: str) -> str | None:
        ref = _patient_reference(value, moves)
        if ref is None:
            return None
        return f"{ref.base + '/' if ref.base else ''}Patient/{moves[ref.id]}"

    return map_references(resource, rewrite)


def refers_to(resource: Resource, patient_id: str) -> bool:
    found: list[str] = []

    def spot(value: str) -> None:
        if _patient_reference(value, (patient_id,)) is not None:
            found.append(value)

    map_references(resource, spot)
    return bool(found)


def _patient_reference(value: str, ids: Collection[str]) -> LiteralReference | None:
    ref = parse_reference(value)
    if ref is None or ref.resource_type != "Patient" or ref.version or ref.id not in ids:
        return None
    return ref


def find_referrers(store: FhirStore, patient_id: str) -> list[Resource]:
    """Every resource that may be re-pointed and refers to Patient/{patient_id}, by any
    reference search parameter that can point at a Patient (subject, patient, author,
    performer, beneficiary, target, ...): the store's own table says which."""
    registry = store.search_parameters
    target = f"Patient/{patient_id}"
    found: dict[tuple[str, str], Resource] = {}
    for resource_type in registry.resource_types:
        if resource_type in NOT_REPOINTED:
            continue
        for param in registry.params_for(resource_type).values():
            if param.type != "reference" or "Patient" not in param.target_types(registry):
                continue
            for resource in search_all(store, resource_type, [(param.code, target)]):
                if refers_to(resource, patient_id):
                    found[(resource_type, resource["id"])] = resource
    return list(found.values())


def retire(retired: Resource, surviving_id: str) -> Resource:
    resource = hub_copy(retired)
    resource["active"] = False
    resource.pop("identifier", None)
    add_link(resource, surviving_id, "replaced-by")
    return resource


def add_link(patient: Resource, other_id: str, link_type: str) -> None:
    link = {"other": {"reference": f"Patient/{other_id}"}, "type": link_type}
    links = patient.setdefault("link", [])
    if link not in links:
        links.append(link)
