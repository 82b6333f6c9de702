"""The embedded FHIR store: SQLite in WAL mode, no service to run.

Every write is one SQLite transaction taken with `BEGIN IMMEDIATE`, so writers queue instead of
deadlocking, and a crash at any point leaves either the whole transaction or none of it. Readers
never block writers (WAL). Each thread has its own connection.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hub._locks import WriteLock
from hub.fhir import (
    FhirError,
    InvalidRequest,
    instant_ms,
    is_valid_id,
    validate_resource,
)
from hub.store._bundles import (
    BundleEntry,
    check_bundle,
    error_response,
    read_bundle,
    read_entry,
    response_bundle,
)
from hub.store._protocol import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    HistoryPage,
    Resource,
    SearchPage,
    SearchParams,
    WriteOutcome,
)
from hub.store._query import QueryParser
from hub.store._search_params import SearchParameterRegistry

from ._checkpoint import Checkpointer
from ._indexer import Indexer, param_ids
from ._schema import connect, create_schema
from ._session import Reader, StoreContext, Writer, next_instant
from ._transaction import apply_entry, prepare, run_get, run_transaction

log = logging.getLogger(__name__)


class SQLiteStore:
    """`FhirStore` on a SQLite file."""

    def __init__(
        self,
        path: Path | str,
        *,
        registry: SearchParameterRegistry | None = None,
        synchronous: str = "FULL",
    ) -> None:
        self.path = str(path)
        self._synchronous = synchronous
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = WriteLock(f"{self.path}-writer.lock")
        self._checkpointer = Checkpointer(
            self.path, synchronous=synchronous, write_lock=self._write_lock
        )
        registry = registry or SearchParameterRegistry.default()
        conn = self._connection()
        create_schema(conn)
        pids = param_ids(conn, registry)
        self._ctx = StoreContext(registry, QueryParser(registry), pids, Indexer(registry, pids))

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def search_parameters(self) -> SearchParameterRegistry:
        return self._ctx.registry

    # --- connections and transactions ---------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, synchronous=self._synchronous)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _reading(self) -> Iterator[Reader]:
        conn = self._connection()
        conn.execute("BEGIN")  # one snapshot for a search, its count and its includes
        try:
            yield Reader(conn, self._ctx)
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def _writing(self) -> Iterator[Writer]:
        conn = self._connection()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                writer = Writer(conn, self._ctx, next_instant(conn))
                yield writer
                writer.flush()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        self._checkpointer.committed()

    def close(self) -> None:
        self._checkpointer.close()
        with self._lock:
            for conn in self._connections:
                try:
                    conn.execute("PRAGMA optimize")
                except sqlite3.ProgrammingError:
                    continue  # closed already
                except sqlite3.OperationalError:
                    pass  # another process is writing: the statistics can wait for next time
                conn.close()
            self._connections.clear()
        self._local = threading.local()
        self._write_lock.close()

    # --- checks done before taking the write lock ---------------------------------------------
    def _check_type(self, resource_type: str) -> None:
        if not self._ctx.registry.supports(resource_type):
            raise FhirError(
                404, f"Resource type {resource_type!r} is not supported", code="not-supported"
            )

    def _checked(self, resource: Resource) -> str:
        resource_type = validate_resource(resource)
        self._check_type(resource_type)
        return resource_type

    @staticmethod
    def _check_id(id: str) -> None:
        if not is_valid_id(id):
            raise InvalidRequest(f"{id!r} is not a valid FHIR id")

    # --- FhirStore ----------------------------------------------------------------------------
    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> WriteOutcome:
        resource_type = self._checked(resource)
        if if_none_exist:
            self._ctx.parser.parse_criteria(resource_type, if_none_exist)  # fail before locking
        entry = BundleEntry.interaction(
            "POST", resource_type, resource=resource, if_none_exist=if_none_exist
        )
        return self._apply(entry)

    def _apply(self, entry: BundleEntry) -> WriteOutcome:
        prepare([entry], self._ctx.indexer)
        with self._writing() as writer:
            return apply_entry(writer, entry)

    def read(self, resource_type: str, id: str) -> Resource:
        self._check_type(resource_type)
        with self._reading() as reader:
            return reader.read(resource_type, id)

    def vread(self, resource_type: str, id: str, version_id: str) -> Resource:
        self._check_type(resource_type)
        with self._reading() as reader:
            return reader.vread(resource_type, id, version_id)

    def update(self, resource: Resource, *, if_match: str | None = None) -> WriteOutcome:
        resource_type = self._checked(resource)
        id = resource.get("id")
        if not id:
            raise InvalidRequest("An update needs the resource's id", expression=["id"])
        entry = BundleEntry.interaction(
            "PUT", resource_type, id=id, resource=resource, if_match=if_match
        )
        return self._apply(entry)

    def conditional_update(
        self, resource_type: str, criteria: str, resource: Resource
    ) -> WriteOutcome:
        if self._checked(resource) != resource_type:
            raise InvalidRequest(f"The resource is not a {resource_type}")
        self._ctx.parser.parse_criteria(resource_type, criteria)  # fail before locking
        entry = BundleEntry.interaction("PUT", resource_type, criteria=criteria, resource=resource)
        return self._apply(entry)

    def delete(self, resource_type: str, id: str) -> WriteOutcome:
        self._check_type(resource_type)
        self._check_id(id)
        return self._apply(BundleEntry.interaction("DELETE", resource_type, id=id))

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
        try:
            since_ms = instant_ms(since) if since else None
        except ValueError as exc:
            raise InvalidRequest(f"_since: {exc}") from None
        with self._reading() as reader:
            return reader.history(
                resource_type, id, since=since_ms, count=min(count, MAX_PAGE_SIZE), offset=offset
            )

    def search(
        self, resource_type: str, params: SearchParams, *, strict: bool = False
    ) -> SearchPage:
        self._check_type(resource_type)
        query = self._ctx.parser.parse(resource_type, params, strict=strict)
        with self._reading() as reader:
            return reader.search(query)

    def everything(
        self, patient_id: str, *, count: int = MAX_PAGE_SIZE, offset: int = 0
    ) -> SearchPage:
        with self._reading() as reader:
            return reader.everything(patient_id, count=min(count, MAX_PAGE_SIZE), offset=offset)

    def transaction(self, bundle: Resource) -> Resource:
        entries = read_bundle(bundle, self._ctx.registry, expected_type="transaction")
        prepare(entries, self._ctx.indexer)
        with self._writing() as writer:
            responses = run_transaction(writer, entries)
        return response_bundle("transaction", responses)

    def batch(self, bundle: Resource) -> Resource:
        check_bundle(bundle, expected_type="batch")
        responses = []
        for index, raw in enumerate(bundle.get("entry") or []):
            try:
                responses.append(self._batch_entry(index, raw))
            except FhirError as exc:
                responses.append(error_response(exc))
        return response_bundle("batch", responses)

    def _batch_entry(self, index: int, raw: Resource) -> dict[str, Any]:
        entry = read_entry(index, raw, self._ctx.registry)
        prepare([entry], self._ctx.indexer)
        if entry.method == "GET":
            with self._reading() as reader:
                return run_get(reader, entry)
        with self._writing() as writer:
            (response,) = run_transaction(writer, [entry])
        return response
