"""`FhirStore` over a FHIR R4 server (HAPI FHIR JPA in production), through its REST API.

Every resource is validated before it is sent, so invalid input never reaches the server; the
server's refusals come back as `FhirError`s with its status and OperationOutcome. Transient
failures are retried with exponential backoff, but a request the server may already have
applied is repeated only when repeating it cannot apply it twice.

Where HAPI FHIR (the reference server) departs from FHIR R4, the hub answers as the
specification says: a date without a time is sent as the instant at its edge, `ap` on a date as
the two comparisons it means, `_id:missing` and `_lastUpdated:missing` are answered here, a
failed If-Match is a 412, and `$everything` never returns another patient's record.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

import httpx

from hub.fhir import (
    FhirError,
    InvalidRequest,
    Issue,
    PreconditionFailed,
    ResourceGone,
    ResourceNotFound,
    Unprocessable,
    UpstreamUnavailable,
    VersionConflict,
    date_range,
    format_instant,
    is_valid_id,
    validate_resource,
)

from ._bundles import (
    BundleEntry,
    check_bundle,
    error_response,
    read_bundle,
    read_entry,
    response_bundle,
)
from ._protocol import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    HistoryEntry,
    HistoryPage,
    Resource,
    SearchPage,
    SearchParams,
    WriteOutcome,
)
from ._query import DATE_PREFIXES, QueryParser, SearchQuery, split_values
from ._search_params import SearchParameterRegistry

logger = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
MAX_BACKOFF_SECONDS = 10.0
MAX_RETRY_AFTER_SECONDS = 60.0
"""A longer Retry-After is cut to this: the caller is usually waiting on the answer."""

_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_IDEMPOTENT_RETRY_STATUSES = frozenset({500})
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MAYBE_APPLIED = (
    httpx.ReadTimeout,
    httpx.ReadError,
    httpx.WriteTimeout,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
_PREFER = {"Prefer": "return=representation"}
_ERRORS: dict[int, Callable[[str], FhirError]] = {
    400: InvalidRequest,
    404: ResourceNotFound,
    409: VersionConflict,
    410: ResourceGone,
    412: PreconditionFailed,
    422: Unprocessable,
    503: UpstreamUnavailable,
}
_TYPE = r"[A-Z][A-Za-z]+"
_ID = r"[A-Za-z0-9\-.]{1,64}"
_RESOURCE_URL = re.compile(rf"({_TYPE})/({_ID})(?:/_history/({_ID}))?/?$")
"""The end of a Location header or Bundle entry URL: `.../Patient/1/_history/2`."""


@dataclass(frozen=True)
class _Failure:
    """A try worth repeating: why it failed, and how long the server asked us to wait."""

    reason: str
    retry_after: float | None = None


class RemoteStore:
    """The hub's store on a FHIR R4 server at `base_url`, over one pooled HTTP client."""

    def __init__(
        self,
        base_url: str,
        *,
        registry: SearchParameterRegistry | None = None,
        timeout: float = 30.0,
        retries: int = 4,
        max_connections: int = 20,
        backoff_seconds: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._registry = registry or SearchParameterRegistry.default()
        self._parser = QueryParser(self._registry)
        self._retries = retries
        self._backoff_seconds = backoff_seconds
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Accept": FHIR_JSON},
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )

    @property
    def search_parameters(self) -> SearchParameterRegistry:
        return self._registry

    # --- writes -------------------------------------------------------------------------------
    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> WriteOutcome:
        resource_type = self._check_resource(resource)
        headers: dict[str, str] = {}
        if if_none_exist:
            criteria = _query_string(if_none_exist)
            self._parser.parse_criteria(resource_type, criteria)
            headers["If-None-Exist"] = criteria
        response = self._call(
            "POST",
            resource_type,
            body=resource,
            headers=headers,
            idempotent=bool(if_none_exist),
        )
        return _write_outcome(response, resource_type, None)

    def update(self, resource: Resource, *, if_match: str | None = None) -> WriteOutcome:
        resource_type = self._check_resource(resource)
        id = resource.get("id")
        if id is None:
            raise InvalidRequest("An update needs the resource's id", expression=["id"])
        headers = {"If-Match": f'W/"{_version(if_match)}"'} if if_match else {}
        response = self._call(
            "PUT",
            _instance_path(resource_type, id),
            body=resource,
            headers=headers,
            if_match=bool(if_match),
        )
        return _write_outcome(response, resource_type, id)

    def conditional_update(
        self, resource_type: str, criteria: str, resource: Resource
    ) -> WriteOutcome:
        self._check_resource(resource, expected_type=resource_type)
        query_string = _query_string(criteria)
        self._parser.parse_criteria(resource_type, query_string)
        response = self._call(
            "PUT",
            resource_type,
            params=parse_qsl(query_string, keep_blank_values=True),
            body=resource,
        )
        return _write_outcome(response, resource_type, resource.get("id"))

    def delete(self, resource_type: str, id: str) -> WriteOutcome:
        self._check_type(resource_type)
        try:
            response = self._call("DELETE", _instance_path(resource_type, id))
        except (ResourceNotFound, ResourceGone):
            # Nothing to delete is a 204 in the protocol; it is also what a retried delete sees.
            return WriteOutcome(204, resource_type, id, None, None)
        return WriteOutcome(204, resource_type, id, _version(response.headers.get("ETag")), None)

    def transaction(self, bundle: Resource) -> Resource:
        return self._send_bundle(bundle, "transaction")

    def batch(self, bundle: Resource) -> Resource:
        """Entries the hub refuses (invalid resource, unsupported type) are answered here with
        their error, as the embedded store does; the others go to the server together."""
        check_bundle(bundle, expected_type="batch")
        raws = bundle.get("entry") or []
        answers: dict[int, dict[str, Any]] = {}
        sendable: list[tuple[int, BundleEntry, dict[str, Any]]] = []
        for index, raw in enumerate(raws):
            try:
                sendable.append((index, read_entry(index, raw, self._registry), raw))
            except FhirError as exc:
                answers[index] = error_response(exc)
        if sendable:
            sent = {**bundle, "entry": [raw for _, _, raw in sendable]}
            idempotent = all(_entry_is_idempotent(entry) for _, entry, _ in sendable)
            response = _json_body(self._call("POST", "", body=sent, idempotent=idempotent))
            returned = response.get("entry") or []
            if len(returned) != len(sendable):
                raise FhirError(
                    502,
                    f"The FHIR server answered a batch of {len(sendable)} entries with "
                    f"{len(returned)}",
                )
            for (index, entry, _), answer in zip(sendable, returned, strict=True):
                answers[index] = _precondition_answer(answer) if entry.if_match else answer
        return response_bundle("batch", [answers[i] for i in range(len(raws))])

    def _send_bundle(self, bundle: Resource, kind: str) -> Resource:
        entries = read_bundle(bundle, self._registry, expected_type=kind)
        idempotent = all(_entry_is_idempotent(e) for e in entries)
        if_match = any(e.if_match for e in entries)
        response = self._call("POST", "", body=bundle, idempotent=idempotent, if_match=if_match)
        return _json_body(response)

    # --- reads --------------------------------------------------------------------------------
    def read(self, resource_type: str, id: str) -> Resource:
        self._check_type(resource_type)
        return _json_body(self._call("GET", _instance_path(resource_type, id)))

    def vread(self, resource_type: str, id: str, version_id: str) -> Resource:
        self._check_type(resource_type)
        if not is_valid_id(version_id):
            raise InvalidRequest(f"Invalid version id {version_id!r}")
        path = f"{_instance_path(resource_type, id)}/_history/{version_id}"
        return _json_body(self._call("GET", path))

    def history(
        self,
        resource_type: str,
        id: str | None = None,
        *,
        since: str | None = None,
        count: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> HistoryPage:
        self._check_type(resource_type)
        path = _instance_path(resource_type, id) if id is not None else resource_type
        count = min(max(count, 0), MAX_PAGE_SIZE)
        params = _paging(count, offset)
        if since is not None:
            params.append(("_since", since))
        bundle = _json_body(self._call("GET", f"{path}/_history", params=params))
        entries = [_history_entry(e) for e in bundle.get("entry") or ()]
        total = bundle.get("total")
        has_next = _has_next(bundle, total, offset, len(entries))
        return HistoryPage(
            entries, total, offset, _page_size(count, len(entries), has_next), has_next
        )

    def search(
        self, resource_type: str, params: SearchParams, *, strict: bool = False
    ) -> SearchPage:
        self._check_type(resource_type)
        query = self._parser.parse(resource_type, params, strict=strict)
        if _asks_for_missing_id_or_last_updated(query):
            # Every resource has an id and a lastUpdated: nothing matches (HAPI answered
            # `_id:missing=true` with every resource).
            page = SearchPage(resource_type, [], total=0, offset=query.offset, count=query.count)
        else:
            server_params = _server_params(query, self._registry)
            bundle = _json_body(self._call("GET", resource_type, params=server_params))
            page = _search_page(bundle, resource_type, query.count, query.offset)
        page.params = query.params
        page.warnings = [w.to_fhir() for w in query.warnings] + page.warnings
        if query.summary == "count":
            page.summary_count, page.has_next = True, False
        return page

    def everything(
        self, patient_id: str, *, count: int = MAX_PAGE_SIZE, offset: int = 0
    ) -> SearchPage:
        """The server's `$everything` without other patients' records, paged here: HAPI also
        returns what a resource of this record refers to in another patient's record (an
        AuditEvent naming both patients brings the other's Encounter)."""
        self._check_type("Patient")
        count = min(max(count, 0), MAX_PAGE_SIZE)
        record = [r for r in self._everything_of(patient_id) if self._in_record(r, patient_id)]
        page = SearchPage("Patient", record[offset : offset + count], total=len(record))
        page.offset, page.count = offset, count
        page.has_next = offset + count < len(record)
        return page

    def _everything_of(self, patient_id: str) -> list[Resource]:
        """Every resource the server's `$everything` answers with, all pages."""
        path = f"{_instance_path('Patient', patient_id)}/$everything"
        found: list[Resource] = []
        while True:
            params = _paging(MAX_PAGE_SIZE, len(found))
            bundle = _json_body(self._call("GET", path, params=params))
            page = _search_page(bundle, "Patient", MAX_PAGE_SIZE, len(found))
            found += page.matches + page.includes
            if not page.has_next or not page.matches + page.includes:
                return list({(r["resourceType"], r.get("id")): r for r in found}.values())

    def _in_record(self, resource: Resource, patient_id: str) -> bool:
        """Whether `resource` belongs to the patient's record: the patient, anything in its
        compartment, or a resource of a type no patient's compartment holds (an
        Organization, a Practitioner)."""
        resource_type = resource.get("resourceType", "")
        if resource_type == "Patient" and resource.get("id") == patient_id:
            return True
        codes = self._registry.patient_compartment(resource_type)
        if not codes:
            return True
        for code in codes:
            param = self._registry.get(resource_type, code)
            values = param.values(resource) if param is not None else []
            if any(v.resource_type == "Patient" and v.id == patient_id for v in values):
                return True
        return False

    # --- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- checks -------------------------------------------------------------------------------
    def _check_type(self, resource_type: str) -> None:
        if not self._registry.supports(resource_type):
            raise FhirError(
                404, f"Resource type {resource_type} is not supported", code="not-supported"
            )

    def _check_resource(self, resource: Resource, *, expected_type: str | None = None) -> str:
        resource_type = validate_resource(resource, expected_type=expected_type)
        self._check_type(resource_type)
        return resource_type

    # --- HTTP ---------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        body: Resource | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool = True,
        if_match: bool = False,
    ) -> httpx.Response:
        """Send with retries; return a 2xx response or raise the server's error.

        `if_match`: the request holds a version precondition, so a 409 means it failed: 412
        (FHIR R4 http.html#concurrency), which HAPI answers as 409."""
        headers = dict(headers or {})
        if method != "GET":
            headers.update(_PREFER)
        if body is not None:
            headers["Content-Type"] = FHIR_JSON
        request = self._client.build_request(
            method, path, params=params, json=body, headers=headers
        )
        response = self._send(request, idempotent=idempotent)
        if not response.is_success:
            raise _server_error(response, if_match=if_match)
        return response

    def _send(self, request: httpx.Request, *, idempotent: bool) -> httpx.Response:
        attempts = self._retries + 1
        for attempt in range(attempts):
            result = self._try(request, idempotent=idempotent)
            if isinstance(result, httpx.Response):
                return result
            failure = result
            if attempt + 1 < attempts:
                delay = self._delay(attempt, failure.retry_after)
                logger.warning(
                    "FHIR server %s %s failed (attempt %d of %d): %s; retrying in %.1fs",
                    request.method,
                    request.url.path,
                    attempt + 1,
                    attempts,
                    failure.reason,
                    delay,
                )
                time.sleep(delay)
        raise UpstreamUnavailable(
            f"FHIR server did not answer {_where(request)} after {attempts} attempts: "
            f"{failure.reason}"
        )

    def _try(self, request: httpx.Request, *, idempotent: bool) -> httpx.Response | _Failure:
        """One attempt: the response to keep, or a failure worth another try."""
        try:
            response = self._client.send(request)
        except httpx.TransportError as exc:
            # The class name only: messages of some transport errors quote the URL.
            reason = type(exc).__name__
            if _nothing_sent(exc) or (idempotent and isinstance(exc, _MAYBE_APPLIED)):
                return _Failure(reason)
            raise UpstreamUnavailable(
                f"FHIR server failed on {_where(request)}: {reason}; not retried, since the "
                "server may have applied it"
            ) from None
        status = response.status_code
        if status in _RETRY_STATUSES or (idempotent and status in _IDEMPOTENT_RETRY_STATUSES):
            return _Failure(f"HTTP {status}", _retry_after(response))
        return response

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self._backoff_seconds * 2**attempt, MAX_BACKOFF_SECONDS)
        if retry_after is None:
            return backoff
        return min(max(backoff, retry_after), MAX_RETRY_AFTER_SECONDS)


# --- requests -----------------------------------------------------------------------------------
def _instance_path(resource_type: str, id: str) -> str:
    # Checked because the id becomes part of the URL path.
    if not is_valid_id(id):
        raise InvalidRequest(f"Invalid resource id {id!r}")
    return f"{resource_type}/{id}"


def _query_string(criteria: str) -> str:
    """`Patient?identifier=a|b` or `identifier=a|b` -> `identifier=a|b`."""
    return criteria.split("?", 1)[1] if "?" in criteria else criteria


def _version(etag_or_version: str | None) -> str | None:
    """`W/"3"`, `"3"` or `3` -> `3`."""
    if not etag_or_version:
        return None
    return etag_or_version.strip().removeprefix("W/").strip('"') or None


def _paging(count: int, offset: int) -> list[tuple[str, str]]:
    return [("_count", str(count)), ("_offset", str(offset))]


def _server_params(query: SearchQuery, registry: SearchParameterRegistry) -> list[tuple[str, str]]:
    """The recognised parameters and paging; `_sort` keeps only the keys that were understood;
    date values in the form whose answer is the specification's (`_spelled_out_dates`)."""
    params: list[tuple[str, str]] = []
    for name, value in query.params:
        if name == "_sort" or name in _ALWAYS_PRESENT:
            continue  # `_sort` follows; `...:missing=false` constrains nothing
        param = registry.get(query.resource_type, name)
        if param is not None and param.type == "date":
            params += [(name, v) for v in _spelled_out_dates(value)]
        else:
            params.append((name, value))
    sort = ",".join(f"{'-' if key.descending else ''}{key.code}" for key in query.sort)
    if sort:
        params.append(("_sort", sort))
    return params + _paging(query.count, query.offset)


_ALWAYS_PRESENT = ("_id:missing", "_lastUpdated:missing")


def _asks_for_missing_id_or_last_updated(query: SearchQuery) -> bool:
    return any(name in _ALWAYS_PRESENT and value == "true" for name, value in query.params)


def _spelled_out_dates(value: str) -> list[str]:
    """One date parameter's value as the value(s) to send, ANDed (FHIR R4 search.html#prefix).

    HAPI compares a month or a year given to `ge`/`le` by its far end (`ge2024-05` misses what
    happened in May), a day given to `_lastUpdated` `lt`/`eb` by its end, and refuses `ap`. A
    date without a time is therefore sent as the instant at its edge, which HAPI compares
    rightly: `lt2024-05` -> `lt2024-05-01T00:00:00.000Z` and `gt2024-05` ->
    `gt2024-05-31T23:59:59.999Z` (likewise `eb`, `sa`) mean what the original means, and so do
    `lt2024-06-01T00:00:00.000Z` with `gt2024-04-30T23:59:59.999Z` for `ap2024-05`. For
    `ge2024-05` -> `ge2024-05-01T00:00:00.000Z` (and `le` at the other end) HAPI answers as it
    does for a day: what overlaps May or later, which also takes a period that begins before May
    and ends within it, where the specification says "after May, or within it" (an OR of two
    comparisons, which HAPI refuses for dates).
    """
    texts = split_values(value)
    if len(texts) == 1 and texts[0].startswith("ap"):
        low, high = date_range(texts[0][2:])
        # Overlaps the range: starts before its end and ends after its start.
        return [f"lt{format_instant(high)}", f"gt{format_instant(low - 1)}"]
    return [",".join(_spelled_out_date(text) for text in texts)]


def _spelled_out_date(text: str) -> str:
    prefix = text[:2] if text[:2] in DATE_PREFIXES else ""
    body = text[len(prefix) :]
    if prefix in ("", "eq", "ne", "ap") or "T" in body:
        return text  # what is compared as a whole, or a time HAPI compares rightly
    low, high = date_range(body)
    if prefix in ("ge", "lt", "eb"):
        return prefix + format_instant(low)  # from its start on, or before it
    return prefix + format_instant(high - 1)  # gt, le, sa: after its end, or up to it


def _entry_is_idempotent(entry: BundleEntry) -> bool:
    return entry.method in ("GET", "PUT", "DELETE") or bool(entry.if_none_exist)


def _where(request: httpx.Request) -> str:
    """Method and path, never the query string: it can hold NHS numbers."""
    return f"{request.method} {request.url.path}"


# --- retries ------------------------------------------------------------------------------------
def _nothing_sent(exc: httpx.TransportError) -> bool:
    """True when the server cannot have acted on the request, so any method may be repeated."""
    if isinstance(exc, _NOT_SENT):
        return True
    # httpcore's words for a connection closed before any byte of a response came back.
    return isinstance(exc, httpx.RemoteProtocolError) and "without sending a response" in str(exc)


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (an HTTP-date is ignored: backoff applies)."""
    if response.status_code not in _RETRY_AFTER_STATUSES:
        return None
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return max(seconds, 0.0)


# --- responses ----------------------------------------------------------------------------------
def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _json_body(response: httpx.Response) -> Resource:
    body = _json_or_none(response)
    if not isinstance(body, dict) or "resourceType" not in body:
        raise FhirError(
            502,
            f"FHIR server answered {_where(response.request)} without a FHIR JSON resource",
            code="exception",
        )
    return body


def _server_error(response: httpx.Response, *, if_match: bool = False) -> FhirError:
    answered = response.status_code
    status = 412 if if_match and answered == 409 else answered
    why = " (its If-Match version is not the current one)" if status != answered else ""
    error = _ERRORS.get(status, partial(FhirError, status))(
        f"FHIR server answered {_where(response.request)} with HTTP {answered}{why}"
    )
    issues = _outcome_issues(_json_or_none(response))
    if issues:
        error.issues = issues
    return error


def _precondition_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """A batch entry's answer when the entry had an If-Match: its 409 is a failed precondition."""
    response = answer.get("response") or {}
    if not str(response.get("status", "")).startswith("409"):
        return answer
    return {**answer, "response": {**response, "status": "412 Precondition Failed"}}


def _outcome_issues(body: Any) -> list[Issue]:
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return []
    return [_issue(i) for i in body.get("issue") or () if isinstance(i, dict)]


def _issue(issue: dict[str, Any]) -> Issue:
    details = issue.get("details") or {}
    return Issue(
        issue.get("severity", "error"),
        issue.get("code", "processing"),
        issue.get("diagnostics") or details.get("text") or "",
        tuple(issue.get("expression") or issue.get("location") or ()),
    )


def _write_outcome(response: httpx.Response, resource_type: str, id: str | None) -> WriteOutcome:
    body = _json_or_none(response)
    resource = (
        body if isinstance(body, dict) and body.get("resourceType") == resource_type else None
    )
    location = _RESOURCE_URL.search(response.headers.get("Location", ""))
    meta = (resource or {}).get("meta") or {}
    id = (resource or {}).get("id") or (location[2] if location else None) or id
    if id is None:
        raise FhirError(
            502,
            f"FHIR server answered {_where(response.request)} without the resource or a Location",
            code="exception",
        )
    version = (
        meta.get("versionId")
        or _version(response.headers.get("ETag"))
        or (location[3] if location else None)
    )
    return WriteOutcome(
        response.status_code, resource_type, id, version, meta.get("lastUpdated"), resource
    )


def _next_link(bundle: Resource) -> bool:
    return any(link.get("relation") == "next" for link in bundle.get("link") or ())


def _has_next(bundle: Resource, total: int | None, offset: int, returned: int) -> bool:
    return _next_link(bundle) or (total is not None and offset + returned < total)


def _page_size(requested: int, returned: int, has_next: bool) -> int:
    """The page size to step the offset by. A server may cap pages below what was asked; then
    stepping by the size asked for would skip the entries in between."""
    return returned if has_next and 0 < returned < requested else requested


def _search_page(bundle: Resource, resource_type: str, count: int, offset: int) -> SearchPage:
    page = SearchPage(resource_type, [], total=bundle.get("total"), offset=offset)
    for entry in bundle.get("entry") or ():
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        mode = (entry.get("search") or {}).get("mode", "match")
        if mode == "outcome":
            page.warnings.extend(resource.get("issue") or ())
        elif mode == "include":
            page.includes.append(resource)
        else:
            page.matches.append(resource)
    page.has_next = _has_next(bundle, page.total, offset, len(page.matches))
    page.count = _page_size(count, len(page.matches), page.has_next)
    return page


def _history_entry(entry: dict[str, Any]) -> HistoryEntry:
    resource = entry.get("resource") if isinstance(entry.get("resource"), dict) else None
    request = entry.get("request") or {}
    response = entry.get("response") or {}
    meta = (resource or {}).get("meta") or {}
    url = _RESOURCE_URL.search(request.get("url") or entry.get("fullUrl") or "")
    resource_type = (resource or {}).get("resourceType") or (url[1] if url else None)
    id = (resource or {}).get("id") or (url[2] if url else None)
    version = meta.get("versionId") or _version(response.get("etag")) or (url[3] if url else None)
    if not (resource_type and id and version):
        raise FhirError(
            502, "FHIR server sent a history entry without its version", code="exception"
        )
    method = request.get("method")
    if method not in ("POST", "PUT", "DELETE"):
        method = "DELETE" if resource is None else "POST" if version == "1" else "PUT"
    return HistoryEntry(
        method=method,
        resource_type=resource_type,
        id=id,
        version_id=version,
        last_updated=meta.get("lastUpdated") or response.get("lastModified") or "",
        resource=resource,
    )
