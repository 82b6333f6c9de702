"""One face over the two ways into the hub's FHIR store, so each promise is tested through both.

`StoreApi` calls a `FhirStore` (the protocol); `HttpApi` sends FHIR REST requests to a running
hub. Both answer with the same small types and fail with the same `hub.fhir` errors, carrying
the HTTP status (an HTTP error's OperationOutcome becomes the error's issues).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from hub.fhir import (
    FhirError,
    InvalidRequest,
    Issue,
    PreconditionFailed,
    ResourceGone,
    ResourceNotFound,
)
from hub.store import FhirStore, SearchParameterRegistry

Resource = dict[str, Any]
Params = Sequence[tuple[str, str]]

FHIR_JSON = "application/fhir+json"
REGISTRY = SearchParameterRegistry.default()
"""The default search parameter table, read once for every store of the suite."""
MAX_PAGES = 200
"""No test pages further: more pages than this means the paging never ends."""


@dataclass
class Written:
    """The answer to a create or update: its status and the resource as stored."""

    status: int
    resource: Resource

    @property
    def id(self) -> str:
        return self.resource["id"]

    @property
    def version_id(self) -> str:
        return self.resource["meta"]["versionId"]

    @property
    def last_updated(self) -> str:
        return self.resource["meta"]["lastUpdated"]


@dataclass
class Found:
    """One page of a search."""

    matches: list[Resource]
    includes: list[Resource]
    total: int | None
    warnings: list[dict[str, Any]]
    has_next: bool

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.matches]


@dataclass
class Version:
    """One entry of a history."""

    method: str
    resource_type: str
    id: str
    version_id: str
    resource: Resource | None


class Api(Protocol):
    """What the conformance tests call."""

    layer: str

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> Written: ...
    def read(self, resource_type: str, id: str) -> Resource: ...
    def vread(self, resource_type: str, id: str, version_id: str) -> Resource: ...
    def update(self, resource: Resource, *, if_match: str | None = None) -> Written: ...
    def conditional_update(
        self, resource_type: str, criteria: str, resource: Resource
    ) -> Written: ...
    def delete(self, resource_type: str, id: str) -> None: ...
    def history(
        self, resource_type: str, id: str | None = None, *, since: str | None = None
    ) -> list[Version]: ...
    def search(self, resource_type: str, params: Params, *, strict: bool = False) -> Found: ...
    def search_pages(self, resource_type: str, params: Params) -> list[Found]: ...
    def everything(self, patient_id: str) -> list[Resource]: ...
    def transaction(self, bundle: Resource) -> Resource: ...
    def batch(self, bundle: Resource) -> Resource: ...


# --- the FhirStore protocol -------------------------------------------------------------------


class StoreApi:
    layer = "store"

    def __init__(self, store: FhirStore) -> None:
        self.store = store

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> Written:
        outcome = self.store.create(resource, if_none_exist=if_none_exist)
        assert outcome.resource is not None
        return Written(outcome.status, outcome.resource)

    def read(self, resource_type: str, id: str) -> Resource:
        return self.store.read(resource_type, id)

    def vread(self, resource_type: str, id: str, version_id: str) -> Resource:
        return self.store.vread(resource_type, id, version_id)

    def update(self, resource: Resource, *, if_match: str | None = None) -> Written:
        outcome = self.store.update(resource, if_match=if_match)
        assert outcome.resource is not None
        return Written(outcome.status, outcome.resource)

    def conditional_update(self, resource_type: str, criteria: str, resource: Resource) -> Written:
        outcome = self.store.conditional_update(resource_type, criteria, resource)
        assert outcome.resource is not None
        return Written(outcome.status, outcome.resource)

    def delete(self, resource_type: str, id: str) -> None:
        outcome = self.store.delete(resource_type, id)
        assert outcome.status in (200, 204)

    def history(
        self, resource_type: str, id: str | None = None, *, since: str | None = None
    ) -> list[Version]:
        versions: list[Version] = []
        offset = 0
        for _ in range(MAX_PAGES):
            page = self.store.history(resource_type, id, since=since, count=100, offset=offset)
            versions += [
                Version(e.method, e.resource_type, e.id, e.version_id, e.resource)
                for e in page.entries
            ]
            if not page.has_next:
                return versions
            offset += len(page.entries)
        raise AssertionError("the history never ends")

    def search(self, resource_type: str, params: Params, *, strict: bool = False) -> Found:
        page = self.store.search(resource_type, list(params), strict=strict)
        return Found(page.matches, page.includes, page.total, page.warnings, page.has_next)

    def search_pages(self, resource_type: str, params: Params) -> list[Found]:
        """Every page, following `_offset` (the protocol's paging)."""
        pages: list[Found] = []
        offset = 0
        for _ in range(MAX_PAGES):
            found = self.search(resource_type, [*params, ("_offset", str(offset))])
            pages.append(found)
            if not found.has_next:
                return pages
            offset += len(found.matches)
        raise AssertionError("the search never ends")

    def everything(self, patient_id: str) -> list[Resource]:
        found: list[Resource] = []
        offset = 0
        for _ in range(MAX_PAGES):
            page = self.store.everything(patient_id, offset=offset)
            found += page.matches + page.includes
            if not page.has_next:
                return found
            offset += len(page.matches)
        raise AssertionError("$everything never ends")

    def transaction(self, bundle: Resource) -> Resource:
        return self.store.transaction(bundle)

    def batch(self, bundle: Resource) -> Resource:
        return self.store.batch(bundle)


# --- the HTTP API -----------------------------------------------------------------------------

_ERRORS: dict[int, type[FhirError]] = {
    400: InvalidRequest,
    404: ResourceNotFound,
    410: ResourceGone,
    412: PreconditionFailed,
}


def _error(response: httpx.Response) -> FhirError:
    """The FhirError an error response stands for (its class from the status)."""
    assert response.headers["content-type"].startswith(FHIR_JSON), response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    issues = [
        Issue(i["severity"], i["code"], i.get("diagnostics", ""), tuple(i.get("expression", ())))
        for i in outcome["issue"]
    ]
    cls = _ERRORS.get(response.status_code, FhirError)
    error = cls.__new__(cls)
    FhirError.__init__(error, response.status_code, "", issues=issues)
    return error


def _links(bundle: Resource) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle.get("link", ())}


class HttpApi:
    layer = "http"

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def _send(
        self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        headers = dict(headers or {})
        content = None
        if body is not None:
            content = json.dumps(body)
            headers["Content-Type"] = FHIR_JSON
        response = self.client.request(method, url, content=content, headers=headers)
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _written(self, response: httpx.Response) -> Written:
        resource = response.json()
        version = resource["meta"]["versionId"]
        assert response.headers["etag"] == f'W/"{version}"'
        return Written(response.status_code, resource)

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> Written:
        headers = {"If-None-Exist": if_none_exist} if if_none_exist else {}
        return self._written(self._send("POST", resource["resourceType"], resource, headers))

    def read(self, resource_type: str, id: str) -> Resource:
        response = self._send("GET", f"{resource_type}/{id}")
        resource = response.json()
        assert response.headers["etag"] == f'W/"{resource["meta"]["versionId"]}"'
        return resource

    def vread(self, resource_type: str, id: str, version_id: str) -> Resource:
        return self._send("GET", f"{resource_type}/{id}/_history/{version_id}").json()

    def update(self, resource: Resource, *, if_match: str | None = None) -> Written:
        headers = {"If-Match": if_match} if if_match else {}
        url = f"{resource['resourceType']}/{resource['id']}"
        return self._written(self._send("PUT", url, resource, headers))

    def conditional_update(self, resource_type: str, criteria: str, resource: Resource) -> Written:
        return self._written(self._send("PUT", f"{resource_type}?{criteria}", resource))

    def delete(self, resource_type: str, id: str) -> None:
        response = self._send("DELETE", f"{resource_type}/{id}")
        assert response.status_code in (200, 204)

    def _bundles(self, url: str, params: Params = ()) -> list[Resource]:
        """The Bundle at `url` and every page its `next` links lead to."""
        bundles = []
        response = self._send("GET", f"{url}?{urlencode(list(params))}" if params else url)
        for _ in range(MAX_PAGES):
            bundle = response.json()
            bundles.append(bundle)
            next_url = _links(bundle).get("next")
            if next_url is None:
                return bundles
            response = self._send("GET", next_url)
        raise AssertionError(f"paging through {url} never ends")

    def history(
        self, resource_type: str, id: str | None = None, *, since: str | None = None
    ) -> list[Version]:
        url = f"{resource_type}/{id}/_history" if id else f"{resource_type}/_history"
        params = [("_count", "100")] + ([("_since", since)] if since else [])
        versions = []
        for bundle in self._bundles(url, params):
            assert bundle["type"] == "history"
            for entry in bundle.get("entry", ()):
                resource = entry.get("resource")
                full_url = entry.get("fullUrl") or entry["request"]["url"]
                type_, entry_id = full_url.rstrip("/").split("/")[-2:]
                etag = entry["response"]["etag"]
                versions.append(
                    Version(
                        entry["request"]["method"],
                        type_,
                        resource["id"] if resource else entry_id,
                        etag.removeprefix("W/").strip('"'),
                        resource,
                    )
                )
        return versions

    @staticmethod
    def _found(bundle: Resource) -> Found:
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset", bundle
        entries = bundle.get("entry", ())
        warnings = [
            issue
            for e in entries
            if e.get("search", {}).get("mode") == "outcome"
            for issue in e["resource"]["issue"]
        ]
        return Found(
            matches=[e["resource"] for e in entries if e.get("search", {}).get("mode") == "match"],
            includes=[
                e["resource"] for e in entries if e.get("search", {}).get("mode") == "include"
            ],
            total=bundle.get("total"),
            warnings=warnings,
            has_next="next" in _links(bundle),
        )

    def search(self, resource_type: str, params: Params, *, strict: bool = False) -> Found:
        headers = {"Prefer": "handling=strict"} if strict else {}
        url = f"{resource_type}?{urlencode(list(params))}"
        return self._found(self._send("GET", url, headers=headers).json())

    def search_pages(self, resource_type: str, params: Params) -> list[Found]:
        """Every page, following the `next` links."""
        return [self._found(b) for b in self._bundles(resource_type, params)]

    def everything(self, patient_id: str) -> list[Resource]:
        found: list[Resource] = []
        for bundle in self._bundles(f"Patient/{patient_id}/$everything"):
            found += [e["resource"] for e in bundle.get("entry", ())]
        return found

    def transaction(self, bundle: Resource) -> Resource:
        response = self._send("POST", "", bundle)
        assert response.status_code == 200
        return response.json()

    def batch(self, bundle: Resource) -> Resource:
        response = self._send("POST", "", bundle)
        assert response.status_code == 200
        return response.json()
