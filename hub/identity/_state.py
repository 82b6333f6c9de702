"""Identity's tables in the hub state database: survivorship clocks and the review queue."""

from __future__ import annotations

from collections.abc import Mapping

from hub.state import Database, Transaction

from ._survivorship import Clock

COMPONENT = "identity"

_MIGRATIONS: list[str | list[str]] = [
    [
        # Who wrote each element of each Patient, by the writing record's own clock.
        "CREATE TABLE identity_clocks ("
        " patient_id TEXT NOT NULL,"
        " element TEXT NOT NULL,"  # top-level element: name, address, deceased[x], identifier
        " source TEXT NOT NULL,"  # slam-epr, gp, district-nursing, vcse
        " source_time_ms BIGINT,"  # NULL: the record had no time (counts as oldest)
        " PRIMARY KEY (patient_id, element))",
        # Pairs of Patients a person must decide on. `pair` (both ids, sorted) is unique: a
        # pair is queued once, ever, so a rejection is remembered.
        "CREATE TABLE identity_matches ("
        " id {id},"
        " patient_id TEXT NOT NULL,"  # the Patient the record was given
        " candidate_id TEXT NOT NULL,"  # the existing Patient it resembles
        " pair TEXT NOT NULL UNIQUE,"
        " evidence TEXT NOT NULL,"  # JSON: field -> same | different | missing (no values)
        " reason TEXT NOT NULL,"
        " source TEXT NOT NULL,"
        " status TEXT NOT NULL,"  # open | accepted | rejected
        " created_ms BIGINT NOT NULL,"
        " decided_by TEXT,"
        " decided_ms BIGINT)",
        "CREATE INDEX identity_matches_status ON identity_matches (status, id)",
    ]
]


def ensure_schema(db: Database) -> None:
    db.migrate(COMPONENT, _MIGRATIONS)


def load_clocks(tx: Transaction, patient_id: str) -> dict[str, Clock]:
    rows = tx.execute(
        "SELECT element, source, source_time_ms FROM identity_clocks WHERE patient_id = ?",
        (patient_id,),
    ).fetchall()
    return {element: Clock(source, time_ms) for element, source, time_ms in rows}


def save_clocks(tx: Transaction, patient_id: str, clocks: Mapping[str, Clock]) -> None:
    if not clocks:
        return
    tx.executemany(
        "INSERT INTO identity_clocks (patient_id, element, source, source_time_ms)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (patient_id, element) DO UPDATE"
        " SET source = excluded.source, source_time_ms = excluded.source_time_ms",
        [(patient_id, e, c.source, c.source_time_ms) for e, c in clocks.items()],
    )


def drop_clocks(tx: Transaction, patient_id: str) -> None:
    tx.execute("DELETE FROM identity_clocks WHERE patient_id = ?", (patient_id,))


def changed(before: Mapping[str, Clock], after: Mapping[str, Clock]) -> dict[str, Clock]:
    return {e: c for e, c in after.items() if before.get(e) != c}
