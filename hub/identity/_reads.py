"""What identity reads from the store: it only ever reads; every write is returned as data."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from hub.store import MAX_PAGE_SIZE, FhirStore, SearchParams

log = logging.getLogger(__name__)

Resource = dict[str, Any]


def search_all(store: FhirStore, resource_type: str, params: SearchParams) -> Iterator[Resource]:
    """Every match, page by page (a birth date can match a few hundred people)."""
    offset = 0
    while True:
        page = store.search(
            resource_type,
            # No total: it would cost a count of every match, for nothing here.
            [*params, ("_count", str(MAX_PAGE_SIZE)), ("_offset", str(offset)), ("_total", "none")],
        )
        yield from page.matches
        if not page.has_next or not page.matches:
            return
        offset += len(page.matches)


def is_active(patient: Resource) -> bool:
    """Patients the hub retired by a merge are `active: false`; no `active` means active."""
    return patient.get("active") is not False


def active_with_identifier(store: FhirStore, system: str, value: str) -> Resource | None:
    """The active Patient holding `system|value` (see `active_holders`)."""
    return active_holders(store, [(system, value)])[(system, value)]


def active_holders(
    store: FhirStore, identifiers: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Resource | None]:
    """For each identifier, the active Patient holding it, found in one search. A merge takes
    the identifiers from the Patient it retires, so there is normally one; should there be
    more (written around the hub), the oldest id is taken (new ids are ordered by time) and a
    warning logged."""
    wanted = list(dict.fromkeys(identifiers))
    values = ",".join(f"{_escaped(system)}|{_escaped(value)}" for system, value in wanted)
    found = [p for p in search_all(store, "Patient", [("identifier", values)]) if is_active(p)]
    return {identifier: _oldest_holder(found, identifier) for identifier in wanted}


def _oldest_holder(patients: list[Resource], identifier: tuple[str, str]) -> Resource | None:
    wanted = {"system": identifier[0], "value": identifier[1]}
    holders = [
        p for p in patients if any(wanted.items() <= i.items() for i in p.get("identifier", ()))
    ]
    if len(holders) > 1:
        log.warning(
            "%d active Patients hold one identifier of system %s: using %s",
            len(holders),
            identifier[0],
            min(p["id"] for p in holders),
        )
    return min(holders, key=lambda p: p["id"]) if holders else None


def _escaped(text: str) -> str:
    """A search value's part with FHIR's special characters escaped."""
    for special in ("\\", ",", "|", "$"):
        text = text.replace(special, "\\" + special)
    return text


def version_of(resource: Resource) -> str | None:
    return (resource.get("meta") or {}).get("versionId")
