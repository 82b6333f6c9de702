"""`POST /ingest/{mapping}`: a source's records over HTTP, in the source's own format.

The body is the same bytes the source would drop as a file (HL7 v2 messages, CSV with its
header, JSON Lines, an STU3 Bundle). The answer, 202, comes once every record is in the inbox;
the workers map and apply them afterwards, so it lists inbox items, not FHIR resources.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from hub.fhir import FhirError
from hub.mapping import Mapping, MappingConfigError, MappingSet
from hub.pipeline import Inbox
from hub.settings import HubSettings

from ._split import IngestCounts, add_in_batches, read_items

log = logging.getLogger(__name__)

BATCH_SIZE = 500
"""Records stored per inbox transaction: a small body is one transaction, a large one is
several, each durable before the next (a body sent again after a failure only adds the rest)."""

ingest_router = APIRouter()


@ingest_router.post(
    "/ingest/{mapping:path}",
    status_code=202,
    summary="Store a source's records (in its own format) in the inbox for processing",
)
async def ingest(request: Request, mapping: str) -> JSONResponse:
    state = request.app.state
    found = await run_in_threadpool(_mapping, state.mappings, mapping)
    body = await _bounded_body(request, _body_limit(request))
    if not body.strip():
        raise FhirError(400, "The request body is empty: nothing to ingest", code="required")
    origin = f"POST {request.url.path}"
    answer = await run_in_threadpool(_store, state.inbox, found, body, origin)
    log.info(
        "%s: %d accepted, %d duplicate, %d failed",
        origin,
        answer["accepted"],
        answer["duplicates"],
        answer["failed"],
    )
    return JSONResponse(answer, status_code=202)


def _mapping(mappings: MappingSet, name: str) -> Mapping:
    try:
        return mappings.get(name)
    except MappingConfigError as exc:
        if name not in mappings.names():
            known = ", ".join(mappings.names())
            raise FhirError(
                404, f"No mapping {name!r} (known: {known})", code="not-found"
            ) from None
        raise FhirError(500, f"Mapping {name!r} cannot be loaded: {exc}") from None


def _body_limit(request: Request) -> int:
    settings: HubSettings | None = getattr(request.app.state, "settings", None)
    return (settings or HubSettings()).max_body_bytes


async def _bounded_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit`: from its declared
    length before reading, or while it streams in (chunked bodies declare none)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


def _too_large(limit: int) -> FhirError:
    return FhirError(413, f"The request body is larger than {limit} bytes", code="too-long")


def _store(inbox: Inbox, mapping: Mapping, body: bytes, origin: str) -> dict[str, Any]:
    counts = IngestCounts()
    shown: list[dict[str, Any]] = []
    items = read_items(mapping, io.BytesIO(body), origin, "http")
    for item, receipt in add_in_batches(inbox, items, BATCH_SIZE):
        counts.count(receipt)
        entry: dict[str, Any] = {
            "id": receipt.id,
            "line": item.line,
            "duplicate": receipt.duplicate,
            "status": receipt.status,
        }
        if item.error is not None:
            entry["error"] = item.error
        shown.append(entry)
    return {
        "accepted": counts.accepted,
        "duplicates": counts.duplicates,
        "failed": counts.failed,
        "items": shown,
    }
