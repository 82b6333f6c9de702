"""Turn a resource into the rows of the search index tables, from the search parameter table."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
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


class Indexer:
    def __init__(self, registry: SearchParameterRegistry, pids: dict[str, int]) -> None:
        self._by_type: dict[str, list[_Indexed]] = {}
        for resource_type in registry.resource_types:
            self._by_type[resource_type] = [
                _Indexed(p, pids[p.key], pids.get(p.key + IDENTIFIER_SUFFIX))
                for p in registry.params_for(resource_type).values()
                if p.code not in RESOURCE_COLUMNS
            ]

    def rows(self, resource: dict[str, Any], rid: int) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """(table, row) for every search value of `resource`, duplicates removed."""
        seen: set[tuple[str, tuple[Any, ...]]] = set()
        for indexed in self._by_type[resource["resourceType"]]:
            for row in self._param_rows(indexed, resource, rid):
                if row not in seen:
                    seen.add(row)
                    yield row

    def _param_rows(
        self, indexed: _Indexed, resource: dict[str, Any], rid: int
    ) -> Iterator[tuple[str, tuple[Any, ...]]]:
        param, pid = indexed.param, indexed.pid
        if param.type == "reference":
            nodes = param.expression.evaluate(resource)
            for ref in param.values(resource):
                yield "idx_ref", (pid, ref.resource_type, ref.id, ref.url, rid)
            if indexed.identifier_pid is not None:
                for token in reference_identifiers(nodes):
                    yield "idx_token", (indexed.identifier_pid, token.code, token.system, rid)
            return
        for value in param.values(resource):
            if param.type in ("token", "uri"):
                system, code = value if param.type == "token" else (None, value)
                yield "idx_token", (pid, code, system, rid)
            elif param.type == "string":
                yield "idx_string", (pid, normalise_string(value), value, rid)
            elif param.type == "date":
                yield "idx_date", (pid, value[0], value[1], rid)
            elif param.type == "number":
                yield "idx_number", (pid, value, rid)


INSERT_SQL = {
    "idx_token": "INSERT INTO idx_token (pid, code, system, rid) VALUES (?, ?, ?, ?)",
    "idx_string": "INSERT INTO idx_string (pid, value, exact, rid) VALUES (?, ?, ?, ?)",
    "idx_date": "INSERT INTO idx_date (pid, low, high, rid) VALUES (?, ?, ?, ?)",
    "idx_ref": "INSERT INTO idx_ref (pid, target_type, target_id, url, rid) VALUES (?, ?, ?, ?, ?)",
    "idx_number": "INSERT INTO idx_number (pid, value, rid) VALUES (?, ?, ?)",
}
