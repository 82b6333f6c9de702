"""Applying a transaction Bundle inside one write transaction (FHIR R4 http §3.1.0.11.2).

Order: ids are settled first (conditional creates and updates are looked up, new ids assigned)
so that `urn:uuid:` references can be rewritten to them; then DELETEs, POSTs and PUTs are
written; conditional references (`Patient?identifier=...`) are resolved just before the entry
that holds them is written, so they can find resources created earlier in the same Bundle;
GETs run last and see the Bundle's writes.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qsl

from hub.fhir import FhirError, InvalidRequest, PreconditionFailed, iter_references
from hub.store._bundles import BundleEntry, entry_error, searchset, status_line, write_response
from hub.store._protocol import WriteOutcome

from ._session import Reader, Writer

_CONDITIONAL_REFERENCE = re.compile(r"(?P<type>[A-Z][A-Za-z]+)\?(?P<criteria>.+)")
_WRITE_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2}


class _Unresolved(Exception):
    """A conditional reference that matched nothing yet; the entry is retried at the end."""


def run_transaction(writer: Writer, entries: list[BundleEntry]) -> list[dict[str, Any]]:
    responses: dict[int, dict[str, Any]] = {}
    try:
        targets = _settle_ids(writer, entries)
        _rewrite_local_references(entries, targets)
        writes = sorted(
            (e for e in entries if e.method != "GET"), key=lambda e: _WRITE_ORDER[e.method]
        )
        deferred = []
        for entry in writes:
            try:
                responses[entry.index] = _write(writer, entry, targets, final=False)
            except _Unresolved:
                deferred.append(entry)
        for entry in deferred:
            responses[entry.index] = _write(writer, entry, targets, final=True)
        for entry in entries:
            if entry.method == "GET":
                responses[entry.index] = run_get(writer, entry)
    except FhirError as exc:
        index = getattr(exc, "entry_index", None)
        if index is None:
            raise
        raise entry_error(index, exc) from None
    return [responses[e.index] for e in entries]


def _fail(entry: BundleEntry, exc: FhirError) -> FhirError:
    exc.entry_index = entry.index  # type: ignore[attr-defined]
    return exc


def _settle_ids(writer: Writer, entries: list[BundleEntry]) -> dict[int, tuple[str, bool]]:
    """Per write entry: (the id it writes, whether it matched an existing resource)."""
    targets: dict[int, tuple[str, bool]] = {}
    written: dict[str, int] = {}
    for entry in entries:
        if entry.method == "GET":
            continue
        try:
            target = _settle(writer, entry)
        except FhirError as exc:
            raise _fail(entry, exc) from None
        if target is None:
            continue
        key = f"{entry.resource_type}/{target[0]}"
        if key in written:
            raise _fail(
                entry,
                InvalidRequest(f"{key} is also written by Bundle.entry[{written[key]}]"),
            )
        written[key] = entry.index
        targets[entry.index] = target
    return targets


def _settle(writer: Writer, entry: BundleEntry) -> tuple[str, bool] | None:
    if entry.method == "POST" and not entry.if_none_exist:
        return str(uuid.uuid4()), False
    if entry.id is not None:
        return entry.id, writer.row(entry.resource_type, entry.id) is not None
    criteria = entry.if_none_exist if entry.method == "POST" else entry.criteria
    assert criteria is not None
    found = writer.matching_ids(entry.resource_type, criteria)
    if len(found) > 1:
        raise PreconditionFailed(f"{entry.resource_type}?{criteria} matched more than one")
    if found:
        return found[0], True
    if entry.method == "DELETE":
        return None
    body_id = entry.resource.get("id") if entry.resource else None
    return body_id or str(uuid.uuid4()), False


def _rewrite_local_references(
    entries: list[BundleEntry], targets: dict[int, tuple[str, bool]]
) -> None:
    local = {
        e.full_url: f"{e.resource_type}/{targets[e.index][0]}"
        for e in entries
        if e.full_url and e.index in targets and e.method in ("POST", "PUT")
    }
    for entry in entries:
        for ref in iter_references(entry.resource or {}):
            value = ref["reference"]
            if value in local:
                ref["reference"] = local[value]
            elif value.startswith(("urn:uuid:", "urn:oid:")):
                raise _fail(
                    entry,
                    InvalidRequest(f"reference {value} names no entry's fullUrl in this Bundle"),
                )


def _resolve_conditional_references(writer: Writer, entry: BundleEntry, final: bool) -> None:
    for ref in iter_references(entry.resource or {}):
        match = _CONDITIONAL_REFERENCE.fullmatch(ref["reference"])
        if not match:
            continue
        found = writer.matching_ids(match["type"], match["criteria"])
        if len(found) == 1:
            ref["reference"] = f"{match['type']}/{found[0]}"
        elif len(found) > 1:
            raise PreconditionFailed(f"reference {ref['reference']} matches more than one")
        elif final:
            raise PreconditionFailed(f"reference {ref['reference']} matches nothing")
        else:
            raise _Unresolved


def _write(
    writer: Writer, entry: BundleEntry, targets: dict[int, tuple[str, bool]], *, final: bool
) -> dict[str, Any]:
    try:
        _resolve_conditional_references(writer, entry, final)
        return write_response(_apply(writer, entry, targets.get(entry.index)))
    except FhirError as exc:
        raise _fail(entry, exc) from None


def _apply(writer: Writer, entry: BundleEntry, target: tuple[str, bool] | None) -> WriteOutcome:
    if entry.method == "DELETE":
        if target is None:
            return WriteOutcome(204, entry.resource_type, entry.id or "", None, None)
        return writer.delete(entry.resource_type, target[0])
    assert entry.resource is not None and target is not None
    id, matched = target
    if entry.method == "POST":
        if matched:
            return Writer._outcome(200, writer.read(entry.resource_type, id))
        return writer.create(entry.resource, id=id)
    return writer.update({**entry.resource, "id": id}, if_match=entry.if_match)


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
