"""Applying a transaction Bundle (FHIR R4 http §3.1.0.11.2) in two steps.

`prepare` runs before SQLite's write lock is taken: it gives every written entry an id
(tentative where a conditional lookup may still find an existing resource), rewrites `urn:uuid:`
references to those ids and computes each resource's index rows. That is most of the CPU work,
and doing it outside the lock lets several writer processes share the load.

`run` holds the write lock: it settles conditional creates and updates (fixing any reference
to a tentative id that turned out to be an existing resource), writes DELETEs, POSTs and PUTs in
that order, resolves conditional references (`Patient?identifier=...`) just before the entry
that holds them is written, so they find resources created earlier in the same Bundle, and runs
GETs last, so they see the Bundle's writes.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from hub.fhir import FhirError, InvalidRequest, PreconditionFailed, map_references, new_id
from hub.store._bundles import BundleEntry, entry_error, searchset, status_line, write_response
from hub.store._protocol import WriteOutcome

from ._indexer import Indexer
from ._session import Reader, Writer

_CONDITIONAL_REFERENCE = re.compile(r"(?P<type>[A-Z][A-Za-z]+)\?(?P<criteria>.+)")
_WRITE_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2}


class _Unresolved(Exception):
    """A conditional reference that matched nothing yet; the entry is retried at the end."""


def _fail(entry: BundleEntry, exc: FhirError) -> FhirError:
    exc.entry_index = entry.index  # type: ignore[attr-defined]
    return exc


def _named(exc: FhirError) -> FhirError:
    index = getattr(exc, "entry_index", None)
    return exc if index is None else entry_error(index, exc)


# --- before the lock ------------------------------------------------------------------------
def prepare(entries: list[BundleEntry], indexer: Indexer) -> None:
    """Tentative ids, local references rewritten, index rows computed."""
    local: dict[str, str] = {}
    for entry in entries:
        if entry.method in ("POST", "PUT"):
            entry.target_id = entry.id or _body_id(entry) or new_id()
            if entry.full_url:
                local[entry.full_url] = f"{entry.resource_type}/{entry.target_id}"
        elif entry.method == "DELETE":
            entry.target_id = entry.id

    def rewrite(value: str) -> str | None:
        if value in local:
            return local[value]
        if value.startswith(("urn:uuid:", "urn:oid:")):
            raise InvalidRequest(f"reference {value} names no entry's fullUrl in this Bundle")
        if _CONDITIONAL_REFERENCE.fullmatch(value):
            conditional.add(value)
        return None

    try:
        for entry in entries:
            if entry.resource is None:
                continue
            conditional: set[str] = set()
            entry.resource = map_references(entry.resource, rewrite)
            entry.has_conditional_references = bool(conditional)
            if not conditional:
                entry.index_rows = indexer.rows(entry.resource)
    except FhirError as exc:
        raise entry_error(entry.index, exc) from None


def _body_id(entry: BundleEntry) -> str | None:
    # A conditional PUT that creates may keep the id the client chose; a POST never does.
    if entry.method == "PUT" and entry.resource is not None:
        return entry.resource.get("id")
    return None


# --- under the lock -------------------------------------------------------------------------
def run_transaction(writer: Writer, entries: list[BundleEntry]) -> list[dict[str, Any]]:
    responses: dict[int, dict[str, Any]] = {}
    try:
        _settle_ids(writer, entries)
        writes = sorted(
            (e for e in entries if e.method != "GET"), key=lambda e: _WRITE_ORDER[e.method]
        )
        deferred = []
        for entry in writes:
            try:
                responses[entry.index] = _write(writer, entry, final=False)
            except _Unresolved:
                deferred.append(entry)
        for entry in deferred:
            responses[entry.index] = _write(writer, entry, final=True)
        for entry in entries:
            if entry.method == "GET":
                responses[entry.index] = run_get(writer, entry)
    except FhirError as exc:
        raise _named(exc) from None
    return [responses[e.index] for e in entries]


def _settle_ids(writer: Writer, entries: list[BundleEntry]) -> None:
    """Look up conditional creates, updates and deletes; refuse two writes of one resource."""
    moved: dict[str, str] = {}
    written: dict[str, int] = {}
    for entry in entries:
        if entry.method == "GET":
            continue
        try:
            tentative = entry.target_id
            _settle(writer, entry)
        except FhirError as exc:
            raise _fail(entry, exc) from None
        if entry.target_id is None:
            continue
        if tentative is not None and tentative != entry.target_id:
            moved[f"{entry.resource_type}/{tentative}"] = f"{entry.resource_type}/{entry.target_id}"
        key = f"{entry.resource_type}/{entry.target_id}"
        if key in written:
            raise _fail(
                entry, InvalidRequest(f"{key} is also written by Bundle.entry[{written[key]}]")
            )
        written[key] = entry.index
    if moved:
        _follow_moved_ids(entries, moved, writer.ctx.indexer)


def _settle(writer: Writer, entry: BundleEntry) -> None:
    if entry.id is not None:
        entry.matched = writer.row(entry.resource_type, entry.id) is not None
        return
    criteria = entry.if_none_exist if entry.method == "POST" else entry.criteria
    if not criteria:
        return  # a plain POST: its new id stands
    found = writer.matching_ids(entry.resource_type, criteria)
    if len(found) > 1:
        raise PreconditionFailed(f"{entry.resource_type}?{criteria} matched more than one")
    body_id = _body_id(entry)
    if found and body_id and body_id != found[0]:
        raise InvalidRequest(
            f"{entry.resource_type}?{criteria} matched {found[0]} but the resource has id {body_id}"
        )
    if found:
        entry.target_id, entry.matched = found[0], True
    elif entry.method == "DELETE":
        entry.target_id = None


def _follow_moved_ids(entries: list[BundleEntry], moved: dict[str, str], indexer: Indexer) -> None:
    """References to a tentative id whose entry matched an existing resource point to it."""
    for entry in entries:
        if entry.resource is None:
            continue
        resource = map_references(entry.resource, moved.get)
        if resource is not entry.resource:
            entry.resource = resource
            entry.index_rows = None if entry.has_conditional_references else indexer.rows(resource)


def _resolve_conditional_references(writer: Writer, entry: BundleEntry, final: bool) -> None:
    def resolve(value: str) -> str | None:
        match = _CONDITIONAL_REFERENCE.fullmatch(value)
        if not match:
            return None
        found = writer.matching_ids(match["type"], match["criteria"])
        if len(found) == 1:
            return f"{match['type']}/{found[0]}"
        if len(found) > 1:
            raise PreconditionFailed(f"reference {value} matches more than one")
        if final:
            raise PreconditionFailed(f"reference {value} matches nothing")
        raise _Unresolved

    if entry.resource is not None and entry.has_conditional_references:
        entry.resource = map_references(entry.resource, resolve)


def apply_entry(writer: Writer, entry: BundleEntry) -> WriteOutcome:
    """A single create, update or delete: the same steps as one entry of a transaction."""
    _settle_ids(writer, [entry])
    _resolve_conditional_references(writer, entry, final=True)
    return _checked(writer, entry, _apply(writer, entry))


def _write(writer: Writer, entry: BundleEntry, *, final: bool) -> dict[str, Any]:
    try:
        _resolve_conditional_references(writer, entry, final)
        return write_response(_checked(writer, entry, _apply(writer, entry)))
    except FhirError as exc:
        raise _fail(entry, exc) from None


def _checked(writer: Writer, entry: BundleEntry, outcome: WriteOutcome) -> WriteOutcome:
    """A conditional create or update that created must have made a resource its criteria find:
    one they cannot find is created again by every replay (HAPI refuses it too, HAPI-0929)."""
    criteria = entry.if_none_exist if entry.method == "POST" else entry.criteria
    if entry.method == "DELETE" or entry.matched or entry.id is not None or not criteria:
        return outcome
    if not writer.meets(entry.resource_type, outcome.id, criteria):
        raise InvalidRequest(
            f"the {entry.resource_type} created does not meet its own criteria "
            f"({entry.resource_type}?{criteria}), so they would never find it again"
        )
    return outcome


def _apply(writer: Writer, entry: BundleEntry) -> WriteOutcome:
    if entry.method == "DELETE":
        if entry.target_id is None:
            return WriteOutcome(204, entry.resource_type, entry.id or "", None, None)
        return writer.delete(entry.resource_type, entry.target_id)
    assert entry.resource is not None and entry.target_id is not None
    if entry.method == "POST":
        if entry.matched:
            return Writer.outcome(200, writer.read(entry.resource_type, entry.target_id))
        return writer.create(entry.resource, id=entry.target_id, index_rows=entry.index_rows)
    return writer.update(
        {**entry.resource, "id": entry.target_id},
        if_match=entry.if_match,
        index_rows=entry.index_rows,
    )


def run_get(reader: Reader, entry: BundleEntry) -> dict[str, Any]:
    """A read, vread or search entry."""
    parts = entry.url.partition("?")[0].strip("/").split("/")
    try:
        if entry.id is None:
            pairs = parse_qsl(entry.criteria or "", keep_blank_values=True)
            query = reader.ctx.parser.parse(entry.resource_type, pairs, strict=False)
            resource = searchset(reader.search(query))
        elif len(parts) == 4 and parts[2] == "_history":
            resource = reader.vread(entry.resource_type, entry.id, parts[3])
        else:
            resource = reader.read(entry.resource_type, entry.id)
    except FhirError as exc:
        raise _fail(entry, exc) from None
    return {"resource": resource, "response": {"status": status_line(200)}}
