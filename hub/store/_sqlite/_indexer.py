"""Turn a resource into the rows of the search index tables, from the search parameter table."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from hub.store._search_params import (
    SearchParameter,
    SearchParameterRegistry,
    normalise_string,
    reference_identifiers,
)

# Answered from the `resource` table itself, not from an index table.
RESOURCE_COLUMNS = {"_id", "_lastUpdated"}
IDENTIFIER_SUFFIX = ":identifier"


def param_ids(conn: sqlite3.Connection, registry: SearchParameterRegistry) -> dict[str, int]:
    """A stable small integer per `Type.code` (and `Type.code:identifier` for references)."""
    keys = []
    for resource_type in registry.resource_types:
        for param in registry.params_for(resource_type).values():
            keys.append(param.key)
            if param.type == "reference":
                keys.append(param.key + IDENTIFIER_SUFFIX)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT OR IGNORE INTO param (key) VALUES (?)", [(k,) for k in keys])
    conn.execute("COMMIT")
    return dict(conn.execute("SELECT key, pid FROM param").fetchall())


@dataclass(frozen=True)
class _Indexed:
    param: SearchParameter
    pid: int
    identifier_pid: int | None


@dataclass(frozen=True)
class _TypeIndex:
    """A type's parameters by the first element their expression reads (most resources have
    few of the elements their type's parameters read, so most are never evaluated), and the
    parameters that must always be evaluated (a choice element first)."""

    by_root: dict[str, list[_Indexed]]
    always: list[_Indexed]
    by_shape: dict[tuple[str, ...], list[_Indexed]] = field(default_factory=dict)
    """The candidates of each set of top-level elements seen: most resources of a type come
    in a few shapes, so the list is worked out once per shape."""

    def candidates(self, resource: dict[str, Any]) -> list[_Indexed]:
        shape = tuple(resource)
        found = self.by_shape.get(shape)
        if found is None:
            if len(self.by_shape) >= _SHAPES_KEPT:
                self.by_shape.clear()  # bounded: an unusual stream of shapes starts afresh
            found = self.by_shape[shape] = self._candidates(shape)
        return found

    def _candidates(self, keys: tuple[str, ...]) -> list[_Indexed]:
        found = list(self.always)
        seen: set[int] = set()  # by identity: a parameter with two roots is listed twice
        for key in keys:
            for indexed in self.by_root.get(key, ()):
                if id(indexed) not in seen:
                    seen.add(id(indexed))
                    found.append(indexed)
        return found


_SHAPES_KEPT = 512


def _type_index(indexed: list[_Indexed]) -> _TypeIndex:
    by_root: dict[str, list[_Indexed]] = {}
    always = []
    for item in indexed:
        roots = {branch.root for branch in item.param.expression.branches}
        if None in roots:
            always.append(item)
            continue
        for root in roots:
            by_root.setdefault(str(root), []).append(item)
    return _TypeIndex(by_root, always)


class Indexer:
    def __init__(self, registry: SearchParameterRegistry, pids: dict[str, int]) -> None:
        self._by_type: dict[str, _TypeIndex] = {}
        for resource_type in registry.resource_types:
            self._by_type[resource_type] = _type_index(
                [
                    _Indexed(p, pids[p.key], pids.get(p.key + IDENTIFIER_SUFFIX))
                    for p in registry.params_for(resource_type).values()
                    if p.code not in RESOURCE_COLUMNS
                ]
            )

    def rows(self, resource: dict[str, Any]) -> dict[str, set[tuple[Any, ...]]]:
        """Per index table, the rows (without the rid column, last, which the store adds) for
        every search value of `resource`, without duplicates. They depend neither on the
        resource's id nor its version, so they can be computed before the write lock."""
        tables: dict[str, set[tuple[Any, ...]]] = {}
        for indexed in self._by_type[resource["resourceType"]].candidates(resource):
            param = indexed.param
            nodes = param.expression.evaluate(resource)
            if not nodes:
                continue
            values = param.extract(nodes)
            pid = indexed.pid
            if param.type == "reference":
                refs = tables.setdefault("idx_ref", set())
                refs.update((pid, v.id or "", v.resource_type or "", v.url or "") for v in values)
                if indexed.identifier_pid is not None:
                    tokens = tables.setdefault("idx_token", set())
                    tokens.update(
                        (indexed.identifier_pid, t.code, t.system or "")
                        for t in reference_identifiers(nodes)
                    )
            elif param.type == "token":
                tokens = tables.setdefault("idx_token", set())
                tokens.update((pid, t.code, t.system or "") for t in values)
            elif param.type == "uri":
                tables.setdefault("idx_token", set()).update((pid, v, "") for v in values)
            elif param.type == "string":
                strings = tables.setdefault("idx_string", set())
                strings.update((pid, normalise_string(v), v) for v in values)
            elif param.type == "date":
                tables.setdefault("idx_date", set()).update((pid, lo, hi) for lo, hi in values)
            elif param.type == "number":
                tables.setdefault("idx_number", set()).update((pid, v) for v in values)
        return tables


INSERT_SQL = {
    "resource": "INSERT INTO resource (rid, type, id, version, last_updated, deleted) "
    "VALUES (?, ?, ?, ?, ?, 0)",
    "resource_version": "INSERT INTO resource_version "
    "(rid, version, type, last_updated, method, body) VALUES (?, ?, ?, ?, ?, ?)",
    "idx_token": "INSERT INTO idx_token (pid, code, system, rid) VALUES (?, ?, ?, ?)",
    "idx_string": "INSERT INTO idx_string (pid, value, exact, rid) VALUES (?, ?, ?, ?)",
    "idx_date": "INSERT INTO idx_date (pid, low, high, rid) VALUES (?, ?, ?, ?)",
    "idx_ref": "INSERT INTO idx_ref (pid, target_id, target_type, url, rid) VALUES (?, ?, ?, ?, ?)",
    "idx_number": "INSERT INTO idx_number (pid, value, rid) VALUES (?, ?, ?)",
}
