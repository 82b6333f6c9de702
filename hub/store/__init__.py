"""The FHIR store: one API (`FhirStore`) over the embedded SQLite store or a FHIR server."""

from ._factory import EMBEDDED_STORE_FILE, open_store
from ._protocol import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    FhirStore,
    HistoryEntry,
    HistoryPage,
    Resource,
    SearchPage,
    SearchParams,
    WriteOutcome,
)
from ._query import QueryParser, SearchQuery
from ._remote import RemoteStore
from ._search_params import SearchParameter, SearchParameterRegistry
from ._sqlite import SQLiteStore

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "EMBEDDED_STORE_FILE",
    "MAX_PAGE_SIZE",
    "FhirStore",
    "HistoryEntry",
    "HistoryPage",
    "QueryParser",
    "RemoteStore",
    "Resource",
    "SQLiteStore",
    "SearchPage",
    "SearchParameter",
    "SearchParameterRegistry",
    "SearchParams",
    "SearchQuery",
    "WriteOutcome",
    "open_store",
]
