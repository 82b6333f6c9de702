"""The one store API: every read and write of the shared record goes through `FhirStore`.

Its methods are FHIR's RESTful interactions. Resources travel as plain JSON dicts (FHIR R4 JSON);
failures are `hub.fhir.FhirError`s carrying the HTTP status the REST API answers with. Access
policy, audit and subscription matching attach by wrapping a `FhirStore`, so every route and
every command passes through them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from ._search_params import SearchParameterRegistry

Resource = dict[str, Any]
SearchParams = Sequence[tuple[str, str]]
"""Search parameters as (name, value) pairs, as they appear in a query string:
`("patient.identifier", "https://fhir.nhs.uk/Id/nhs-number|9990000018")`, `("date", "ge2026")`,
`("_include", "CarePlan:patient")`. A name repeated means AND; commas in a value mean OR."""


@dataclass(frozen=True)
class WriteOutcome:
    """What a create, update or delete did.

    `status` is the HTTP status of the interaction: 201 created, 200 updated (or, for a
    conditional create that matched, the existing resource returned unchanged), 204 deleted or
    nothing to delete. `resource` is the stored version (None after delete).
    """

    status: int
    resource_type: str
    id: str
    version_id: str | None
    last_updated: str | None
    resource: Resource | None = None

    @property
    def created(self) -> bool:
        return self.status == 201

    @property
    def location(self) -> str:
        """Relative versioned URL: `Patient/1/_history/2`."""
        return f"{self.resource_type}/{self.id}/_history/{self.version_id}"


@dataclass
class SearchPage:
    """One page of a search: the matches (search.mode=match) and what _include/_revinclude
    brought in (search.mode=include). `params` are the normalised parameters the search ran
    with, without paging, so the API can build `self` and `next` links."""

    resource_type: str | None
    matches: list[Resource]
    includes: list[Resource] = field(default_factory=list)
    total: int | None = None
    offset: int = 0
    count: int = 0
    has_next: bool = False
    params: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    """OperationOutcome.issue dicts, e.g. for parameters ignored under lenient handling."""
    summary_count: bool = False
    """True for `_summary=count`: only `total` is meaningful."""


@dataclass(frozen=True)
class HistoryEntry:
    method: Literal["POST", "PUT", "DELETE"]
    resource_type: str
    id: str
    version_id: str
    last_updated: str
    resource: Resource | None
    """The resource at that version; None for a delete."""


@dataclass
class HistoryPage:
    entries: list[HistoryEntry]
    total: int | None
    offset: int
    count: int
    has_next: bool


DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000


@runtime_checkable
class FhirStore(Protocol):
    """FHIR R4 persistence: the embedded SQLite store or a remote FHIR server."""

    @property
    def search_parameters(self) -> SearchParameterRegistry:
        """The resource types and search parameters this store supports."""
        ...

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> WriteOutcome:
        """Create with a server-assigned id. `if_none_exist` is a search query string
        (`identifier=sys|val`): one match returns it unchanged (200), several fail (412)."""
        ...

    def read(self, resource_type: str, id: str) -> Resource:
        """Current version. ResourceNotFound (404) if never existed, ResourceGone (410) if
        deleted."""
        ...

    def vread(self, resource_type: str, id: str, version_id: str) -> Resource:
        """A given version. Reading a version that records a delete raises ResourceGone."""
        ...

    def update(self, resource: Resource, *, if_match: str | None = None) -> WriteOutcome:
        """Update (or create, 201, with this client-assigned id) `resource["id"]`.
        `if_match` is a version id (`3`) or ETag (`W/"3"`): other than current -> 412."""
        ...

    def conditional_update(
        self, resource_type: str, criteria: str, resource: Resource
    ) -> WriteOutcome:
        """`PUT Type?criteria`: no match creates, one match updates it, several fail (412)."""
        ...

    def delete(self, resource_type: str, id: str) -> WriteOutcome: ...

    def history(
        self,
        resource_type: str,
        id: str | None = None,
        *,
        since: str | None = None,
        count: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> HistoryPage:
        """Instance history (`id` given) or type history, newest first."""
        ...

    def search(
        self, resource_type: str, params: SearchParams, *, strict: bool = False
    ) -> SearchPage:
        """Search. Unknown parameters become warnings, or InvalidRequest (400) when `strict`
        (`Prefer: handling=strict`). Paging: `_count` and `_offset`."""
        ...

    def everything(
        self, patient_id: str, *, count: int = MAX_PAGE_SIZE, offset: int = 0
    ) -> SearchPage:
        """`Patient/{id}/$everything`: the patient, its compartment and what they reference."""
        ...

    def transaction(self, bundle: Resource) -> Resource:
        """Apply a `transaction` Bundle all-or-nothing; return the transaction-response."""
        ...

    def batch(self, bundle: Resource) -> Resource:
        """Apply each entry of a `batch` Bundle on its own; return the batch-response."""
        ...

    def close(self) -> None: ...
