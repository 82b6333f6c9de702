"""Reads and writes over one SQLite connection, inside a transaction the caller holds.

`Reader` answers reads, searches and history; `Writer` adds create, update and delete. A single
interaction and a whole transaction Bundle both run as one `Writer` inside one SQLite
transaction, so a Bundle is all-or-nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from hub.fhir import (
    PreconditionFailed,
    ResourceGone,
    ResourceNotFound,
    format_instant,
    json_text,
    now_ms,
    parse_json_bytes,
)
from hub.store._protocol import HistoryEntry, HistoryPage, Resource, SearchPage, WriteOutcome
from hub.store._query import IncludeSpec, QueryParser, SearchQuery
from hub.store._search_params import SearchParameterRegistry

from ._indexer import INSERT_SQL, Indexer
from ._schema import INDEX_TABLES
from ._sql import SqlBuilder, token_rows_match

IndexRows = dict[str, Any]
_MAX_INCLUDE_ITERATIONS = 4
_FLUSH_ORDER = ("resource", "resource_version", *INDEX_TABLES)


@dataclass(frozen=True)
class StoreContext:
    """What every session needs, built once when the store opens."""

    registry: SearchParameterRegistry
    parser: QueryParser
    pids: dict[str, int]
    indexer: Indexer


@dataclass(frozen=True)
class _Row:
    rid: int
    version: int
    last_updated: int
    deleted: bool


def _version_number(if_match: str) -> int | None:
    text = if_match.strip()
    text = text[2:] if text.startswith("W/") else text
    text = text.strip('"')
    return int(text) if text.isdigit() else None


def _without_version_meta(resource: Resource) -> Resource:
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in _SERVER_META}
    content = {k: v for k, v in resource.items() if k not in ("meta", "id")}
    if meta:
        content["meta"] = meta
    return content


_SERVER_META = ("versionId", "lastUpdated")


class Reader:
    def __init__(self, conn: sqlite3.Connection, ctx: StoreContext) -> None:
        self.conn = conn
        self.ctx = ctx
        self.sql = SqlBuilder(ctx.pids)

    def _execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, args)

    # --- single resources ---------------------------------------------------------------------
    def row(self, resource_type: str, id: str) -> _Row | None:
        found = self._execute(
            "SELECT rid, version, last_updated, deleted FROM resource WHERE type = ? AND id = ?",
            (resource_type, id),
        ).fetchone()
        return _Row(found[0], found[1], found[2], bool(found[3])) if found else None

    def body(self, rid: int, version: int) -> Resource | None:
        found = self._execute(
            "SELECT body FROM resource_version WHERE rid = ? AND version = ?", (rid, version)
        ).fetchone()
        return parse_json_bytes(found[0]) if found and found[0] is not None else None

    def read(self, resource_type: str, id: str) -> Resource:
        row = self.row(resource_type, id)
        if row is None:
            raise ResourceNotFound(f"{resource_type}/{id} is not known")
        if row.deleted:
            raise ResourceGone(f"{resource_type}/{id} was deleted (version {row.version})")
        body = self.body(row.rid, row.version)
        assert body is not None
        return body

    def vread(self, resource_type: str, id: str, version_id: str) -> Resource:
        row = self.row(resource_type, id)
        version = int(version_id) if version_id.isdigit() else None
        if row is None or version is None or not 1 <= version <= row.version:
            raise ResourceNotFound(f"{resource_type}/{id}/_history/{version_id} is not known")
        body = self.body(row.rid, version)
        if body is None:
            raise ResourceGone(f"{resource_type}/{id}/_history/{version_id} records a delete")
        return body

    def load(self, rids: Sequence[int]) -> list[Resource]:
        """Current bodies of `rids`, in the order given."""
        if not rids:
            return []
        marks = ", ".join("?" * len(rids))
        rows = self._execute(
            "SELECT r.rid, v.body FROM resource r JOIN resource_version v "
            f"ON v.rid = r.rid AND v.version = r.version WHERE r.rid IN ({marks})",
            list(rids),
        ).fetchall()
        bodies = dict(rows)
        return [parse_json_bytes(bodies[rid]) for rid in rids if bodies.get(rid) is not None]

    # --- search -------------------------------------------------------------------------------
    def search_rids(self, query: SearchQuery, *, limit: int, offset: int = 0) -> list[int]:
        where, args = self.sql.where(query)
        order, order_args = self.sql.order_by(query.sort)
        rows = self._execute(
            f"SELECT r.rid FROM resource r WHERE {where} {order} LIMIT ? OFFSET ?",
            [*args, *order_args, limit, offset],
        ).fetchall()
        return [r[0] for r in rows]

    def count(self, query: SearchQuery) -> int:
        where, args = self.sql.where(query)
        return self._execute(f"SELECT COUNT(*) FROM resource r WHERE {where}", args).fetchone()[0]

    def search(self, query: SearchQuery) -> SearchPage:
        page = SearchPage(
            resource_type=query.resource_type,
            matches=[],
            offset=query.offset,
            count=query.count,
            params=query.params,
            warnings=[w.to_fhir() for w in query.warnings],
            summary_count=query.summary == "count",
        )
        if query.total != "none" or page.summary_count:
            page.total = self.count(query)
        if page.summary_count or query.count == 0:
            return page
        rids = self.search_rids(query, limit=query.count + 1, offset=query.offset)
        page.has_next = len(rids) > query.count
        rids = rids[: query.count]
        page.matches = self.load(rids)
        page.includes = self.included(query, page.matches)
        return page

    # --- _include and _revinclude -------------------------------------------------------------
    def included(self, query: SearchQuery, matches: list[Resource]) -> list[Resource]:
        if not (query.includes or query.revincludes) or not matches:
            return []
        seen = {(r["resourceType"], r["id"]) for r in matches}
        found: list[Resource] = []
        frontier = matches
        for iteration in range(_MAX_INCLUDE_ITERATIONS):
            specs = [s for s in query.includes if iteration == 0 or s.iterate]
            rev_specs = [s for s in query.revincludes if iteration == 0 or s.iterate]
            rids = self._include_rids(specs, frontier) + self._revinclude_rids(rev_specs, frontier)
            new = [
                r for r in self.load(sorted(set(rids))) if (r["resourceType"], r["id"]) not in seen
            ]
            if not new:
                break
            seen.update((r["resourceType"], r["id"]) for r in new)
            found.extend(new)
            frontier = new
        return found

    def _include_rids(self, specs: Iterable[IncludeSpec], frontier: list[Resource]) -> list[int]:
        rids: list[int] = []
        for spec in specs:
            sources = [r for r in frontier if r["resourceType"] == spec.source_type]
            targets = [
                ref
                for resource in sources
                for ref in spec.param.values(resource)
                if spec.target_type is None or ref.resource_type in (spec.target_type, None)
            ]
            rids.extend(self._literal_rids((t.resource_type, t.id) for t in targets if t.id))
            urls = [t.url for t in targets if t.id is None and t.url]
            rids.extend(self._canonical_rids(spec, urls))
        return rids

    def _literal_rids(self, refs: Iterable[tuple[str | None, str | None]]) -> list[int]:
        rids = []
        for resource_type, id in set(refs):
            row = self.row(resource_type or "", id or "")
            if row is not None and not row.deleted:
                rids.append(row.rid)
        return rids

    def _canonical_rids(self, spec: IncludeSpec, urls: list[str]) -> list[int]:
        rids: list[int] = []
        for target_type in spec.param.target_types(self.ctx.registry):
            pid = self.ctx.pids.get(f"{target_type}.url")
            for url in urls if pid is not None else ():
                rows = self._execute(
                    "SELECT rid FROM idx_token WHERE pid = ? AND code = ?", (pid, url)
                ).fetchall()
                rids.extend(r[0] for r in rows)
        return rids

    def _revinclude_rids(self, specs: Iterable[IncludeSpec], frontier: list[Resource]) -> list[int]:
        rids: list[int] = []
        for spec in specs:
            pid = self.ctx.pids[spec.param.key]
            for resource in frontier:
                rows = self._execute(
                    "SELECT rid FROM idx_ref WHERE pid = ? AND target_id = ? AND target_type = ?",
                    (pid, resource["id"], resource["resourceType"]),
                ).fetchall()
                rids.extend(r[0] for r in rows)
        return rids

    # --- $everything --------------------------------------------------------------------------
    def everything(self, patient_id: str, *, count: int, offset: int) -> SearchPage:
        self.read("Patient", patient_id)  # 404 or 410 when there is no such patient
        row = self.row("Patient", patient_id)
        assert row is not None
        members: list[int] = [row.rid]
        for resource_type in self.ctx.registry.resource_types:
            for code in self.ctx.registry.patient_compartment(resource_type):
                members.extend(self._referring_rids(f"{resource_type}.{code}", patient_id))
        compartment = list(dict.fromkeys(members))
        # Only what the record refers to outside any patient's compartment (an Organization,
        # a Practitioner): an AuditEvent or Provenance naming this patient may also name
        # another patient's resources, which are never part of this record.
        personal = [
            t for t in self.ctx.registry.resource_types if self.ctx.registry.patient_compartment(t)
        ]
        referenced = self._referenced_rids(compartment, exclude_types=personal)
        everything = compartment + [r for r in referenced if r not in set(compartment)]
        page_rids = everything[offset : offset + count]
        page = SearchPage("Patient", [], total=len(everything), offset=offset, count=count)
        page.matches = self.load(page_rids)
        page.has_next = offset + count < len(everything)
        return page

    def _referring_rids(self, key: str, patient_id: str) -> list[int]:
        rows = self._execute(
            "SELECT i.rid FROM idx_ref i WHERE i.pid = ? AND i.target_id = ? "
            "AND i.target_type = 'Patient' ORDER BY i.rid",
            (self.ctx.pids[key], patient_id),
        ).fetchall()
        return [r[0] for r in rows]

    def _referenced_rids(self, rids: list[int], *, exclude_types: list[str]) -> list[int]:
        found: list[int] = []
        for start in range(0, len(rids), 500):
            chunk = rids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            excluded = ", ".join("?" * len(exclude_types))
            rows = self._execute(
                "SELECT DISTINCT t.rid FROM idx_ref i JOIN resource t "
                "ON t.type = i.target_type AND t.id = i.target_id "
                f"WHERE i.rid IN ({marks}) AND t.deleted = 0 AND t.type NOT IN ({excluded}) "
                "ORDER BY t.rid",
                [*chunk, *exclude_types],
            ).fetchall()
            found.extend(r[0] for r in rows)
        return list(dict.fromkeys(found))

    # --- history ------------------------------------------------------------------------------
    def history(
        self, resource_type: str, id: str | None, *, since: int | None, count: int, offset: int
    ) -> HistoryPage:
        clauses, args = ["v.type = ?"], [resource_type]
        if id is not None:
            row = self.row(resource_type, id)
            if row is None:
                raise ResourceNotFound(f"{resource_type}/{id} is not known")
            clauses, args = ["v.rid = ?"], [row.rid]
        if since is not None:
            clauses.append("v.last_updated >= ?")
            args.append(since)
        where = " AND ".join(clauses)
        total = self._execute(
            f"SELECT COUNT(*) FROM resource_version v WHERE {where}", args
        ).fetchone()[0]
        rows = self._execute(
            "SELECT r.id, v.version, v.last_updated, v.method, v.body FROM resource_version v "
            f"JOIN resource r ON r.rid = v.rid WHERE {where} "
            "ORDER BY v.last_updated DESC, v.rid DESC, v.version DESC LIMIT ? OFFSET ?",
            [*args, count, offset],
        ).fetchall()
        entries = [
            HistoryEntry(
                method=method,
                resource_type=resource_type,
                id=rid,
                version_id=str(version),
                last_updated=format_instant(updated),
                resource=parse_json_bytes(body) if body is not None else None,
            )
            for rid, version, updated, method, body in rows
        ]
        return HistoryPage(entries, total, offset, count, offset + len(entries) < total)


def next_instant(conn: sqlite3.Connection) -> int:
    """The time of a write transaction, in epoch ms: now, or just after the last one if the
    clock stalled or stepped back. Versions are then dated in the order they were written,
    so a client polling with `_since` or `_lastUpdated=gt` misses none. Called under the
    write lock."""
    found = conn.execute("SELECT value FROM hub_meta WHERE key = 'last_updated'").fetchone()
    moment = max(now_ms(), int(found[0]) + 1 if found else 0)
    conn.execute(
        "INSERT OR REPLACE INTO hub_meta (key, value) VALUES ('last_updated', ?)", (str(moment),)
    )
    return moment


class Writer(Reader):
    """Writes inside the caller's write transaction; all share one `lastUpdated`."""

    def __init__(self, conn: sqlite3.Connection, ctx: StoreContext, now_ms: int) -> None:
        super().__init__(conn, ctx)
        self.now_ms = now_ms
        self.now = format_instant(now_ms)
        self._pending: dict[str, list[tuple[Any, ...]]] = {}
        """Rows not yet inserted: one executemany per table per transaction is much cheaper
        than statements per resource. Flushed before any read and before commit, so reads
        inside the transaction see its writes."""
        self._next_rid: int | None = None
        self._matched: dict[tuple[str, str], list[str]] = {}
        """Conditional lookups made in this transaction whose result depends only on resources
        of their own type: a group of records names one Location or Organization many times.
        A type's are forgotten when a resource of that type is written."""
        self._index_rows: dict[tuple[str, str], IndexRows] = {}
        """The index rows of each resource this transaction wrote, by (type, id)."""

    def _execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        self.flush()
        return self.conn.execute(sql, args)

    def flush(self) -> None:
        for table in _FLUSH_ORDER:
            rows = self._pending.pop(table, None)
            if rows:
                self.conn.executemany(INSERT_SQL[table], rows)

    def _new_rid(self) -> int:
        # Safe: this transaction holds SQLite's write lock (BEGIN IMMEDIATE).
        if self._next_rid is None:
            found = self.conn.execute("SELECT COALESCE(MAX(rid), 0) FROM resource").fetchone()
            self._next_rid = found[0] + 1
        rid = self._next_rid
        self._next_rid += 1
        return rid

    def matching_ids(self, resource_type: str, criteria: str) -> list[str]:
        """Ids matching a conditional interaction's criteria (at most two: enough to decide)."""
        key = (resource_type, criteria)
        found = self._matched.get(key)
        if found is None:
            found = self._search_ids(resource_type, criteria)
            if _own_type_only(criteria):
                self._matched[key] = found
        return list(found)

    def meets(self, resource_type: str, id: str, criteria: str) -> bool:
        """Whether `resource_type/id`, written in this transaction, is found by `criteria`:
        from the index rows written for it when the criteria are only token equalities (a
        conditional create's identifier), else by searching."""
        rows = self._index_rows.get((resource_type, id))
        if rows is not None:
            query = self.ctx.parser.parse_criteria(resource_type, criteria)
            found = token_rows_match(query, rows.get("idx_token", ()), self.ctx.pids)
            if found is not None:
                return found
        return id in self.matching_ids(resource_type, criteria)

    def _search_ids(self, resource_type: str, criteria: str) -> list[str]:
        query = self.ctx.parser.parse_criteria(resource_type, criteria)
        query.sort = []
        rids = self.search_rids(query, limit=2)
        marks = ", ".join("?" * len(rids))
        rows = self.conn.execute(f"SELECT id FROM resource WHERE rid IN ({marks})", rids)
        return [r[0] for r in rows.fetchall()]

    def create(
        self, resource: Resource, *, id: str, index_rows: IndexRows | None = None
    ) -> WriteOutcome:
        return self._put(resource, id, None, "POST", 201, index_rows)

    def update(
        self,
        resource: Resource,
        *,
        if_match: str | None = None,
        index_rows: IndexRows | None = None,
    ) -> WriteOutcome:
        resource_type, id = resource["resourceType"], resource["id"]
        row = self.row(resource_type, id)
        if if_match is not None:
            wanted = _version_number(if_match)
            if row is None or row.deleted or wanted != row.version:
                current = "none" if row is None or row.deleted else str(row.version)
                raise PreconditionFailed(
                    f"{resource_type}/{id}: If-Match {if_match} but current version is {current}"
                )
        if row is None:
            return self._put(resource, id, None, "PUT", 201, index_rows)
        if not row.deleted:
            current = self.body(row.rid, row.version)
            if current is not None and _without_version_meta(current) == _without_version_meta(
                resource
            ):
                return self.outcome(200, current)  # unchanged: no new version
        status = 201 if row.deleted else 200
        return self._put(resource, id, row, "PUT", status, index_rows)

    def delete(self, resource_type: str, id: str) -> WriteOutcome:
        row = self.row(resource_type, id)
        if row is None or row.deleted:
            return WriteOutcome(204, resource_type, id, None, None)
        self._forget_matches(resource_type)
        version = row.version + 1
        self._execute(
            "UPDATE resource SET version = ?, last_updated = ?, deleted = 1 WHERE rid = ?",
            (version, self.now_ms, row.rid),
        )
        self._pending.setdefault("resource_version", []).append(
            (row.rid, version, resource_type, self.now_ms, "DELETE", None)
        )
        self._drop_index(row.rid)
        return WriteOutcome(204, resource_type, id, str(version), self.now)

    def _put(
        self,
        resource: Resource,
        id: str,
        row: _Row | None,
        method: str,
        status: int,
        index_rows: IndexRows | None,
    ) -> WriteOutcome:
        resource_type = resource["resourceType"]
        self._forget_matches(resource_type)
        version = 1 if row is None else row.version + 1
        meta = {**(resource.get("meta") or {}), "versionId": str(version), "lastUpdated": self.now}
        stored = {"resourceType": resource_type, "id": id, "meta": meta}
        stored.update((k, v) for k, v in resource.items() if k not in stored)
        if row is None:
            rid = self._new_rid()
            self._pending.setdefault("resource", []).append(
                (rid, resource_type, id, version, self.now_ms)
            )
        else:
            rid = row.rid
            self._execute(
                "UPDATE resource SET version = ?, last_updated = ?, deleted = 0 WHERE rid = ?",
                (version, self.now_ms, rid),
            )
            self._drop_index(rid)
        self._pending.setdefault("resource_version", []).append(
            (rid, version, resource_type, self.now_ms, method, json_text(stored))
        )
        if index_rows is None:
            index_rows = self.ctx.indexer.rows(resource)
        self._index_rows[(resource_type, id)] = index_rows
        for table, rows in index_rows.items():
            self._pending.setdefault(table, []).extend((*row, rid) for row in rows)
        return self.outcome(status, stored)

    def _forget_matches(self, resource_type: str) -> None:
        if self._matched:
            self._matched = {k: v for k, v in self._matched.items() if k[0] != resource_type}

    def _drop_index(self, rid: int) -> None:
        for table in INDEX_TABLES:
            self._execute(f"DELETE FROM {table} WHERE rid = ?", (rid,))

    @staticmethod
    def outcome(status: int, resource: Resource) -> WriteOutcome:
        meta = resource.get("meta", {})
        return WriteOutcome(
            status,
            resource["resourceType"],
            resource["id"],
            meta.get("versionId"),
            meta.get("lastUpdated"),
            resource,
        )


def _own_type_only(criteria: str) -> bool:
    """Whether criteria read only resources of the type searched: no chain (`subject.name`)
    and no reverse chain (`_has:`), which read other types."""
    names = [unquote(pair.partition("=")[0]) for pair in criteria.split("&")]
    return not any("." in name or name.startswith("_has") for name in names)
