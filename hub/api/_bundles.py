"""Bundles the API answers with: searchset (search, $everything) and history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from hub.fhir import format_instant, now_ms
from hub.store import HistoryEntry, HistoryPage, Resource, SearchPage

from ._http import etag

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
_ALWAYS_KEPT = ("resourceType", "id", "meta")
_SAFE = ":|,/$"  # kept readable in links; all are legal in a query


def _bundle(bundle_type: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": format_instant(now_ms())},
        "type": bundle_type,
    }


def _url(base: str, path: str, params: Sequence[tuple[str, str]]) -> str:
    query = urlencode(list(params), safe=_SAFE)
    return f"{base}/{path}?{query}" if query else f"{base}/{path}"


def paging_links(
    base: str,
    path: str,
    params: Sequence[tuple[str, str]],
    *,
    offset: int,
    count: int,
    has_next: bool,
) -> list[dict[str, str]]:
    """`self`, and `next`/`previous` when there are such pages, each with `_count`/`_offset`."""

    def link(relation: str, page_offset: int) -> dict[str, str]:
        paging = [("_count", str(count)), ("_offset", str(page_offset))]
        return {"relation": relation, "url": _url(base, path, [*params, *paging])}

    links = [link("self", offset)]
    if has_next and count > 0:
        links.append(link("next", offset + count))
    if offset > 0:
        links.append(link("previous", max(0, offset - count)))
    return links


def _elements(page: SearchPage) -> list[str] | None:
    for name, value in page.params:
        if name == "_elements":
            return [e.strip() for e in value.split(",") if e.strip()]
    return None


def subset(resource: Resource, elements: Sequence[str]) -> Resource:
    """`_elements`: the listed top-level elements (and resourceType, id, meta), tagged
    SUBSETTED."""
    keep = {
        e.split(".", 1)[1] if e.startswith(resource["resourceType"] + ".") else e for e in elements
    }
    keep.update(_ALWAYS_KEPT)
    result = {k: v for k, v in resource.items() if k in keep}
    meta = dict(result.get("meta") or {})
    tags = list(meta.get("tag") or [])
    if not any(
        t.get("system") == SUBSETTED["system"] and t.get("code") == "SUBSETTED" for t in tags
    ):
        tags.append(dict(SUBSETTED))
    meta["tag"] = tags
    result["meta"] = meta
    return result


def searchset(page: SearchPage, *, base: str, path: str) -> dict[str, Any]:
    """The searchset Bundle for one page. `path` is what links point to, relative to the base:
    `Patient` or `Patient/1/$everything`."""
    bundle = _bundle("searchset")
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = paging_links(
        base, path, page.params, offset=page.offset, count=page.count, has_next=page.has_next
    )
    if page.summary_count:
        return bundle
    elements = _elements(page)
    entries: list[dict[str, Any]] = []
    for resource in page.matches:
        shown = subset(resource, elements) if elements else resource
        entries.append(_search_entry(base, shown, "match"))
    entries.extend(_search_entry(base, r, "include") for r in page.includes)
    if page.warnings:
        entries.append(
            {
                "resource": {"resourceType": "OperationOutcome", "issue": list(page.warnings)},
                "search": {"mode": "outcome"},
            }
        )
    if entries:
        bundle["entry"] = entries
    return bundle


def _search_entry(base: str, resource: Resource, mode: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }


_HISTORY_STATUS = {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204 No Content"}


def history(
    page: HistoryPage, *, base: str, path: str, params: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """The history Bundle for one page; `params` (e.g. `_since`) are kept in the links."""
    bundle = _bundle("history")
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = paging_links(
        base, path, params, offset=page.offset, count=page.count, has_next=page.has_next
    )
    if page.entries:
        bundle["entry"] = [_history_entry(base, e) for e in page.entries]
    return bundle


def _history_entry(base: str, entry: HistoryEntry) -> dict[str, Any]:
    relative = f"{entry.resource_type}/{entry.id}"
    status = _HISTORY_STATUS[entry.method]
    if entry.method == "PUT" and entry.version_id == "1":
        status = _HISTORY_STATUS["POST"]  # an update that created the resource
    result: dict[str, Any] = {"fullUrl": f"{base}/{relative}"}
    if entry.resource is not None:
        result["resource"] = entry.resource
    result["request"] = {
        "method": entry.method,
        "url": entry.resource_type if entry.method == "POST" else relative,
    }
    result["response"] = {
        "status": status,
        "etag": etag(entry.version_id),
        "lastModified": entry.last_updated,
    }
    return result
