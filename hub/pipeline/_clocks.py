"""When each mapped resource was last written, by the source's own clock.

Messages can arrive out of order (a resend after a newer message, a delayed export): a record
older than what was already applied for a resource must not overwrite it. The time compared is
the record's own (the mapping's `timestamp:`), never the time it arrived. Patients are not kept
here: identity compares their demographics element by element (survivorship).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hub.state import Database, Transaction

_SCHEMA = [
    "CREATE TABLE resource_clocks ("
    " resource_key TEXT PRIMARY KEY,"  # Type|system|value: the resource's business identifier
    " source_time_ms BIGINT,"  # NULL: the record said no time (counts as oldest)
    " inbox_id BIGINT NOT NULL)"  # the item that last wrote it
]


def resource_key(resource_type: str, system: str, value: str) -> str:
    return f"{resource_type}|{system}|{value}"


class ResourceClocks:
    def __init__(self, db: Database) -> None:
        db.migrate("pipeline-clocks", _SCHEMA)

    @staticmethod
    def stale(tx: Transaction, incoming: Mapping[str, int | None]) -> set[str]:
        """The keys whose stored time is newer than the incoming record's (an equal time
        applies: one event can legitimately be sent twice with new content)."""
        if not incoming:
            return set()
        marks = ",".join("?" * len(incoming))
        rows = tx.execute(
            f"SELECT resource_key, source_time_ms FROM resource_clocks"
            f" WHERE resource_key IN ({marks})",
            tuple(incoming),
        ).fetchall()
        return {
            key
            for key, stored in rows
            if stored is not None and (incoming[key] is None or incoming[key] < stored)
        }

    @staticmethod
    def advance(
        tx: Transaction, keys: Iterable[str], source_time_ms: int | None, inbox_id: int
    ) -> None:
        tx.executemany(
            "INSERT INTO resource_clocks (resource_key, source_time_ms, inbox_id) VALUES (?, ?, ?)"
            " ON CONFLICT (resource_key) DO UPDATE"
            " SET source_time_ms = excluded.source_time_ms, inbox_id = excluded.inbox_id"
            # Never back: records of one group may write one resource (alike) in any order.
            " WHERE resource_clocks.source_time_ms IS NULL"
            " OR excluded.source_time_ms >= resource_clocks.source_time_ms",
            [(key, source_time_ms, inbox_id) for key in keys],
        )
