"""HTTP details of the FHIR REST API: formats, headers, JSON bodies and responses."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hub.fhir import FhirError, InvalidRequest, http_date, instant_ms, json_bytes
from hub.settings import HubSettings

FHIR_JSON = "application/fhir+json"
FHIR_CONTENT_TYPE = f"{FHIR_JSON}; charset=utf-8"
FORM = "application/x-www-form-urlencoded"

_JSON_TYPES = frozenset({FHIR_JSON, "application/json", "application/json+fhir", "text/json"})
_JSON_FORMATS = _JSON_TYPES | {"json"}
_ANY = frozenset({"*/*", "application/*"})


class FhirResponse(Response):
    """A FHIR JSON response; indented when the request asked for `_pretty=true`."""

    media_type = FHIR_CONTENT_TYPE

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        *,
        pretty: bool = False,
    ) -> None:
        self._pretty = pretty
        super().__init__(content, status_code, headers)

    def render(self, content: Any) -> bytes:
        if content is None:
            return b""
        return json_bytes(content, pretty=self._pretty)


def is_pretty(request: Request) -> bool:
    return request.query_params.get("_pretty", "").lower() == "true"


def fhir_response(
    request: Request,
    content: Any = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> FhirResponse:
    return FhirResponse(content, status_code, headers, pretty=is_pretty(request))


def _mime(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _is_json(mime: str) -> bool:
    return mime in _JSON_TYPES or mime.endswith("+json")


def negotiate_format(request: Request) -> None:
    """406 unless `_format` or Accept allow JSON: this server speaks JSON only."""
    fmt = request.query_params.get("_format")
    if fmt is not None:
        # An unescaped `+` in a query string arrives as a space.
        mime = _mime(fmt).replace(" ", "+")
        if mime not in _JSON_FORMATS and not mime.endswith("+json"):
            raise FhirError(
                406,
                f"_format={mime} is not supported: this server answers in {FHIR_JSON} only",
                code="not-supported",
            )
        return
    accept = request.headers.get("accept")
    if accept and not _accepts_json(accept):
        raise FhirError(
            406,
            f"No acceptable format in Accept: this server answers in {FHIR_JSON} only",
            code="not-supported",
        )


def _accepts_json(accept: str) -> bool:
    for media_range in accept.split(","):
        mime, *params = (p.strip() for p in media_range.split(";"))
        mime = mime.lower()
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and (mime in _ANY or _is_json(mime)):
            return True
    return False


def require_content_type(request: Request, *, form: bool = False) -> None:
    """415 for a body in a format the server does not read (XML, say).

    A body without Content-Type is read as JSON (or as a form for `_search`).
    """
    content_type = request.headers.get("content-type")
    if not content_type:
        return
    mime = _mime(content_type)
    if form:
        if mime == FORM:
            return
        expected = FORM
    else:
        if _is_json(mime):
            return
        expected = f"{FHIR_JSON} or application/json"
    raise FhirError(
        415, f"Content-Type {mime} is not supported here: send {expected}", code="not-supported"
    )


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    """The JSON document in a request body; 400 with the error's position if malformed."""
    if not body.strip():
        raise InvalidRequest("The request body is empty: a FHIR JSON resource is expected")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"The request body is not UTF-8 (byte {exc.start})", code="structure"
        ) from None
    try:
        return json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"Malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            code="structure",
        ) from None
    except ValueError as exc:
        raise InvalidRequest(f"Malformed JSON: {exc}", code="structure") from None


def parse_resource(body: bytes, resource_type: str | None = None) -> dict[str, Any]:
    """The resource in a request body: a JSON object, of `resource_type` when given.

    Only what the URL decides is checked here; the store validates the resource itself.
    """
    document = parse_json(body)
    if not isinstance(document, dict):
        raise InvalidRequest(
            "The request body must be a JSON object (a FHIR resource)", code="structure"
        )
    if resource_type is not None and document.get("resourceType") != resource_type:
        raise InvalidRequest(
            f"resourceType is {document.get('resourceType')!r} but the URL is for {resource_type}",
            expression=["resourceType"],
        )
    return document


def preferences(request: Request) -> dict[str, str]:
    """The `Prefer` header (RFC 7240) as {name: value}: `return`, `handling`..."""
    found: dict[str, str] = {}
    for header in request.headers.getlist("prefer"):
        for part in header.replace(";", ",").split(","):
            name, _, value = part.strip().partition("=")
            if name:
                found.setdefault(name.strip().lower(), value.strip().strip('"').lower())
    return found


def etag(version_id: str) -> str:
    return f'W/"{version_id}"'


def version_headers(version_id: str | None, last_updated: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if version_id:
        headers["ETag"] = etag(version_id)
    if last_updated:
        headers["Last-Modified"] = http_date(instant_ms(last_updated))
    return headers


def resource_headers(resource: dict[str, Any]) -> dict[str, str]:
    meta = resource.get("meta") or {}
    return version_headers(meta.get("versionId"), meta.get("lastUpdated"))


def fhir_base(request: Request, settings: HubSettings) -> str:
    """The FHIR base URL clients use, without a trailing slash."""
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    return f"{request.base_url}fhir"


def int_param(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise InvalidRequest(f"{name} must be a whole number >= 0", expression=[name])
    return number if maximum is None else min(number, maximum)
