"""The state database's own name, made once: ids the hub writes elsewhere from numbers of its
own state (an inbox item's) are qualified by it."""

from __future__ import annotations

import uuid

from ._database import Database

_MIGRATIONS = [
    "CREATE TABLE state_instance ("
    " singleton INTEGER PRIMARY KEY CHECK (singleton = 1),"
    " instance TEXT NOT NULL)"
]


def instance_id(db: Database) -> str:
    """This state database's name: 12 random hex digits, made the first time it is asked for
    and never changed. Two state databases number their inbox items alike (a hub moved from
    SQLite to PostgreSQL, a state database made afresh, two hubs on one FHIR server): what
    either writes under those numbers must not land on the other's."""
    db.migrate("state-instance", _MIGRATIONS)
    with db.transaction() as tx:
        tx.execute(
            "INSERT INTO state_instance (singleton, instance) VALUES (1, ?)"
            " ON CONFLICT (singleton) DO NOTHING",
            (uuid.uuid4().hex[:12],),
        )
        return tx.execute("SELECT instance FROM state_instance").fetchone()[0]
