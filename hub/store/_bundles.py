"""Reading the entries of transaction and batch Bundles, and shaping response Bundles.

Shared by both stores: the embedded store applies the entries itself, the remote store checks
them before sending the Bundle on.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from hub.fhir import FhirError, InvalidRequest, InvalidResource, Issue, validate_resource

from ._protocol import Resource, SearchPage, WriteOutcome
from ._search_params import SearchParameterRegistry

METHODS = ("GET", "POST", "PUT", "DELETE")


@dataclass
class BundleEntry:
    """One request of a transaction or batch, with the parts of its URL taken apart."""

    index: int
    method: str
    resource_type: str
    id: str | None
    criteria: str | None
    """The query string of a conditional or search URL (`identifier=sys|val`)."""
    url: str
    """The request URL relative to the base: `Patient/1/_history/2`, `Patient?identifier=...`."""
    resource: Resource | None
    full_url: str | None
    if_none_exist: str | None
    if_match: str | None
    # Settled while the transaction is applied:
    target_id: str | None = None
    """The id this entry writes or deletes."""
    matched: bool = False
    """A conditional create or update found this existing resource."""
    has_conditional_references: bool = False
    index_rows: dict[str, Any] | None = None
    """Search index rows, computed before the write lock when nothing can change them."""

    @classmethod
    def interaction(
        cls,
        method: str,
        resource_type: str,
        *,
        id: str | None = None,
        criteria: str | None = None,
        resource: Resource | None = None,
        if_none_exist: str | None = None,
        if_match: str | None = None,
    ) -> BundleEntry:
        """A single RESTful interaction, applied the same way as a transaction entry."""
        url = resource_type + (f"/{id}" if id else "") + (f"?{criteria}" if criteria else "")
        return cls(
            0, method, resource_type, id, criteria, url, resource, None, if_none_exist, if_match
        )


def status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def entry_error(entry_index: int, error: FhirError) -> FhirError:
    """The same error, its messages and paths pointing into the Bundle entry."""
    where = f"Bundle.entry[{entry_index}]"
    issues = [
        Issue(
            i.severity,
            i.code,
            f"{where}: {i.diagnostics}",
            tuple(where + _within_entry(e) for e in i.expression) or (where,),
        )
        for i in error.issues
    ]
    return FhirError(error.status, "", issues=issues)


_ENTRY_ELEMENTS = ("request", "response", "fullUrl", "resource", "search")


def _within_entry(path: str) -> str:
    """A path in the entry: `Patient.birthDate` and `birthDate` are in its resource,
    `request.url` is the entry's own."""
    head, dot, rest = path.partition(".")
    if head[:1].isupper():
        return f".resource.{rest}" if dot else ".resource"
    if head.partition("[")[0] in _ENTRY_ELEMENTS:
        return f".{path}"
    return f".resource.{path}"


def check_bundle(bundle: Any, *, expected_type: str) -> None:
    """A Bundle of the expected type with a list of entries, or InvalidRequest."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidRequest("Expected a Bundle resource", expression=["Bundle"])
    if bundle.get("type") != expected_type:
        raise InvalidRequest(
            f"Bundle.type is {bundle.get('type')!r}, expected {expected_type!r}",
            expression=["Bundle.type"],
        )
    if not isinstance(bundle.get("entry", []), list):
        raise InvalidRequest("Bundle.entry must be a list", expression=["Bundle.entry"])


def read_bundle(
    bundle: Any, registry: SearchParameterRegistry, *, expected_type: str
) -> list[BundleEntry]:
    """Check a Bundle's shape and every entry's request and resource; raise on the first error."""
    check_bundle(bundle, expected_type=expected_type)
    entries = [read_entry(i, raw, registry) for i, raw in enumerate(bundle.get("entry") or [])]
    full_urls: dict[str, int] = {}
    for entry in entries:
        if entry.full_url is None or entry.method not in ("POST", "PUT"):
            continue
        if entry.full_url in full_urls:
            raise entry_error(
                entry.index,
                InvalidRequest(
                    f"fullUrl {entry.full_url} is also that of "
                    f"Bundle.entry[{full_urls[entry.full_url]}]: it must be unique",
                    expression=["fullUrl"],
                ),
            )
        full_urls[entry.full_url] = entry.index
    return entries


def read_entry(index: int, raw: Any, registry: SearchParameterRegistry) -> BundleEntry:
    """One entry, checked; errors name the entry (`Bundle.entry[3]: ...`)."""
    try:
        return _read_entry(index, raw, registry)
    except FhirError as exc:
        raise entry_error(index, exc) from None


def _read_entry(index: int, raw: Any, registry: SearchParameterRegistry) -> BundleEntry:
    if not isinstance(raw, dict):
        raise InvalidRequest("A Bundle entry must be a JSON object")
    request = raw.get("request")
    if not isinstance(request, dict):
        raise InvalidRequest("entry.request is missing", expression=["request"])
    method, url = request.get("method"), request.get("url")
    if method not in METHODS:
        raise InvalidRequest(
            f"request.method {method!r} is not one of {METHODS}", expression=["request.method"]
        )
    if not isinstance(url, str) or not url:
        raise InvalidRequest("request.url is missing", expression=["request.url"])
    path, _, criteria = url.partition("?")
    parts = [p for p in (urlsplit(path).path if "://" in path else path).split("/") if p]
    if "://" in path:  # [base]/Type/...: the base is whatever comes before the type
        parts = parts[next((i for i, p in enumerate(parts) if registry.supports(p)), 0) :]
    if not parts or not registry.supports(parts[0]):
        raise FhirError(
            404, f"request.url {path!r}: resource type not supported", code="not-supported"
        )
    _check_url_shape(method, parts, url)
    resource_type, id = parts[0], parts[1] if len(parts) > 1 else None
    resource = raw.get("resource")
    if method in ("POST", "PUT"):
        if resource is None:
            raise InvalidRequest(f"A {method} entry needs a resource")
        validate_resource(resource, expected_type=resource_type)
        if method == "PUT" and id is not None and resource.get("id") not in (None, id):
            raise InvalidResource(
                [Issue("error", "invalid", f"resource.id {resource.get('id')!r} is not {id!r}")]
            )
    if method in ("PUT", "DELETE") and id is None and not criteria:
        raise InvalidRequest(f"{method} {url}: needs an id or search criteria")
    return BundleEntry(
        index=index,
        method=method,
        resource_type=resource_type,
        id=id,
        criteria=criteria or None,
        url="/".join(parts) + (f"?{criteria}" if criteria else ""),  # relative to the base
        resource=resource,
        full_url=raw.get("fullUrl"),
        if_none_exist=request.get("ifNoneExist"),
        if_match=request.get("ifMatch"),
    )


def _check_url_shape(method: str, parts: list[str], url: str) -> None:
    """The interactions a Bundle entry can be: POST Type, PUT/DELETE Type/id or Type?criteria,
    GET Type?criteria, Type/id or Type/id/_history/vid."""
    is_id = [not p.startswith(("_", "$")) for p in parts]
    instance = len(parts) <= 2 and all(is_id[1:])
    version = len(parts) == 4 and parts[2] == "_history" and is_id[1] and is_id[3]
    fits = {
        "POST": len(parts) == 1,
        "PUT": instance,
        "DELETE": instance,
        "GET": instance or version,
    }[method]
    if not fits:
        raise InvalidRequest(
            f"{method} {url} is not an interaction a Bundle entry can hold here",
            code="not-supported",
            expression=["request.url"],
        )


def write_response(outcome: WriteOutcome) -> dict[str, Any]:
    response: dict[str, Any] = {"status": status_line(outcome.status)}
    if outcome.version_id is not None:
        response["location"] = outcome.location
        response["etag"] = f'W/"{outcome.version_id}"'
    if outcome.last_updated is not None:
        response["lastModified"] = outcome.last_updated
    entry: dict[str, Any] = {"response": response}
    if outcome.resource is not None:
        entry["fullUrl"] = f"{outcome.resource_type}/{outcome.id}"
        entry["resource"] = outcome.resource
    return entry


def error_response(error: FhirError) -> dict[str, Any]:
    return {"response": {"status": status_line(error.status), "outcome": error.outcome()}}


def searchset(page: SearchPage) -> Resource:
    """A searchset Bundle without links (for GET entries of a transaction or batch)."""
    bundle: Resource = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    entries = [{"resource": r, "search": {"mode": "match"}} for r in page.matches]
    entries += [{"resource": r, "search": {"mode": "include"}} for r in page.includes]
    if entries:
        bundle["entry"] = entries
    return bundle


def response_bundle(kind: str, entries: list[dict[str, Any]]) -> Resource:
    return {"resourceType": "Bundle", "type": f"{kind}-response", "entry": entries}
