"""The FHIR R4 REST API at `/fhir`: each route is one store call and its HTTP answer."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from hub.fhir import (
    DateFormatError,
    InvalidRequest,
    Issue,
    date_range,
    operation_outcome,
)
from hub.store import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, FhirStore, WriteOutcome

from . import _bundles
from ._deps import Body, ResourceType, Settings, Store
from ._http import (
    FhirResponse,
    fhir_base,
    fhir_response,
    int_param,
    negotiate_format,
    parse_resource,
    preferences,
    require_content_type,
    resource_headers,
    version_headers,
)
from .capability import capability_statement

_FORMAT_PARAMS = ("_format", "_pretty")

router = APIRouter(dependencies=[Depends(negotiate_format)], default_response_class=FhirResponse)


# --- helpers ------------------------------------------------------------------------------------


def _body_resource(request: Request, body: bytes, resource_type: str | None) -> dict[str, Any]:
    require_content_type(request)
    return parse_resource(body, resource_type)


def _write_response(
    request: Request, base: str, outcome: WriteOutcome, *, location: bool
) -> Response:
    """The answer to a create or update, shaped by `Prefer: return=...`."""
    headers = version_headers(outcome.version_id, outcome.last_updated)
    if location:
        headers["Location"] = f"{base}/{outcome.location}"
    wanted = preferences(request).get("return", "representation")
    if wanted == "minimal":
        return Response(status_code=outcome.status, headers=headers)
    if wanted == "operationoutcome":
        verb = "Created" if outcome.created else "Updated"
        if location and not outcome.created:
            verb = "Found existing"
        text = f"{verb} {outcome.resource_type}/{outcome.id} version {outcome.version_id}"
        content: Any = operation_outcome([Issue("information", "informational", text)])
    else:
        content = outcome.resource
    return fhir_response(request, content, outcome.status, headers)


def _search(
    request: Request, store: FhirStore, base: str, resource_type: str, params: list[tuple[str, str]]
) -> Response:
    strict = preferences(request).get("handling") == "strict"
    page = store.search(resource_type, params, strict=strict)
    return fhir_response(request, _bundles.searchset(page, base=base, path=resource_type))


def _history(
    request: Request, store: FhirStore, base: str, resource_type: str, id: str | None
) -> Response:
    since = request.query_params.get("_since")
    if since is not None:
        try:
            date_range(since)
        except DateFormatError as exc:
            raise InvalidRequest(f"_since: {exc}", expression=["_since"]) from None
    count = int_param(request, "_count", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    offset = int_param(request, "_offset", 0)
    page = store.history(resource_type, id, since=since, count=count, offset=offset)
    path = f"{resource_type}/{id}/_history" if id else f"{resource_type}/_history"
    params = [("_since", since)] if since is not None else []
    bundle = _bundles.history(page, base=base, path=path, params=params)
    return fhir_response(request, bundle)


# --- whole system -------------------------------------------------------------------------------


@router.get("/metadata")
def metadata(request: Request, store: Store, settings: Settings) -> Response:
    """The CapabilityStatement."""
    base = fhir_base(request, settings)
    return fhir_response(request, capability_statement(store.search_parameters, base_url=base))


@router.post("")
@router.post("/", include_in_schema=False)
def transaction_or_batch(request: Request, body: Body, store: Store) -> Response:
    """A `transaction` (all or nothing) or `batch` (each entry on its own) Bundle."""
    bundle = _body_resource(request, body, "Bundle")
    kind = bundle.get("type")
    if kind == "transaction":
        return fhir_response(request, store.transaction(bundle))
    if kind == "batch":
        return fhir_response(request, store.batch(bundle))
    raise InvalidRequest(
        f"Only transaction and batch Bundles can be posted to the base, not {kind!r}",
        expression=["Bundle.type"],
    )


# --- type level ---------------------------------------------------------------------------------


@router.get("/{resource_type}")
def search_type(
    resource_type: ResourceType, request: Request, store: Store, settings: Settings
) -> Response:
    """Search with the query string."""
    params = request.query_params.multi_items()
    return _search(request, store, fhir_base(request, settings), resource_type, params)


@router.post("/{resource_type}/_search")
def search_type_post(
    resource_type: ResourceType, request: Request, body: Body, store: Store, settings: Settings
) -> Response:
    """Search with the query string and a form-encoded body (query parameters first)."""
    params = request.query_params.multi_items()
    if body:
        require_content_type(request, form=True)
        try:
            form = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise InvalidRequest("The form body is not UTF-8", code="structure") from None
        params.extend(form)
    return _search(request, store, fhir_base(request, settings), resource_type, params)


@router.post("/{resource_type}")
def create(
    resource_type: ResourceType, request: Request, body: Body, store: Store, settings: Settings
) -> Response:
    """Create (conditionally with `If-None-Exist`)."""
    criteria = [k for k in request.query_params if k not in _FORMAT_PARAMS]
    if criteria:
        # Some clients send a conditional create's criteria in the URL; FHIR puts them in
        # If-None-Exist, and ignoring them here would create a duplicate without a word.
        raise InvalidRequest(
            f"A create takes no search parameters ({', '.join(criteria)}): for a conditional "
            "create, send them in the If-None-Exist header",
            expression=criteria,
        )
    resource = _body_resource(request, body, resource_type)
    outcome = store.create(resource, if_none_exist=request.headers.get("if-none-exist") or None)
    return _write_response(request, fhir_base(request, settings), outcome, location=True)


@router.put("/{resource_type}")
def conditional_update(
    resource_type: ResourceType, request: Request, body: Body, store: Store, settings: Settings
) -> Response:
    """`PUT Type?criteria`: update the one match, or create when there is none."""
    resource = _body_resource(request, body, resource_type)
    criteria = request.url.query
    if not criteria:
        raise InvalidRequest("A conditional update needs search criteria in the query string")
    outcome = store.conditional_update(resource_type, criteria, resource)
    return _write_response(request, fhir_base(request, settings), outcome, location=outcome.created)


@router.get("/{resource_type}/_history")
def history_type(
    resource_type: ResourceType, request: Request, store: Store, settings: Settings
) -> Response:
    """Every version of every resource of the type, newest first."""
    return _history(request, store, fhir_base(request, settings), resource_type, None)


# --- instance level -----------------------------------------------------------------------------


@router.get("/{resource_type}/{id}")
def read(resource_type: ResourceType, id: str, request: Request, store: Store) -> Response:
    """The current version."""
    resource = store.read(resource_type, id)
    return fhir_response(request, resource, headers=resource_headers(resource))


@router.put("/{resource_type}/{id}")
def update(
    resource_type: ResourceType,
    id: str,
    request: Request,
    body: Body,
    store: Store,
    settings: Settings,
) -> Response:
    """Update, or create with this id; `If-Match` for optimistic locking."""
    resource = _body_resource(request, body, resource_type)
    if "id" not in resource:
        raise InvalidRequest(
            "The resource has no id: an update must carry the id of its URL",
            expression=[f"{resource_type}.id"],
        )
    if resource["id"] != id:
        raise InvalidRequest(
            f"The resource id {resource['id']!r} does not match the URL id {id!r}",
            expression=[f"{resource_type}.id"],
        )
    outcome = store.update(resource, if_match=request.headers.get("if-match") or None)
    return _write_response(request, fhir_base(request, settings), outcome, location=outcome.created)


@router.delete("/{resource_type}/{id}")
def delete(resource_type: ResourceType, id: str, store: Store) -> Response:
    """Delete: 204, whether or not there was anything to delete."""
    outcome = store.delete(resource_type, id)
    return Response(status_code=204, headers=version_headers(outcome.version_id, None))


@router.get("/{resource_type}/{id}/_history")
def history_instance(
    resource_type: ResourceType, id: str, request: Request, store: Store, settings: Settings
) -> Response:
    """Every version of one resource, newest first."""
    return _history(request, store, fhir_base(request, settings), resource_type, id)


@router.get("/{resource_type}/{id}/_history/{version_id}")
def vread(
    resource_type: ResourceType, id: str, version_id: str, request: Request, store: Store
) -> Response:
    """One version."""
    resource = store.vread(resource_type, id, version_id)
    return fhir_response(request, resource, headers=resource_headers(resource))


@router.get("/Patient/{id}/$everything")
def patient_everything(id: str, request: Request, store: Store, settings: Settings) -> Response:
    """The patient, its compartment and what they reference, a page at a time."""
    count = int_param(request, "_count", MAX_PAGE_SIZE, MAX_PAGE_SIZE)
    offset = int_param(request, "_offset", 0)
    page = store.everything(id, count=count, offset=offset)
    base = fhir_base(request, settings)
    bundle = _bundles.searchset(page, base=base, path=f"Patient/{id}/$everything")
    return fhir_response(request, bundle)
