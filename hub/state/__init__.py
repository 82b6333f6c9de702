"""The hub's own state (inbox, match queue, audit, outbox): one database, SQLite or
PostgreSQL, chosen by URL (HubSettings.state_url).

    db = open_database("sqlite:////srv/hub/hub.db")   # or postgresql://hub@db:5432/hub
    db.migrate("inbox", [MIGRATION_1, MIGRATION_2])
    with db.transaction() as tx:
        tx.lock("lane:slam-epr/adt")                     # across processes, until commit
        tx.execute("UPDATE t SET n = n + 1 WHERE k = ?", (key,))

SQL is written once with `?` placeholders; times are INTEGER (BIGINT) Unix milliseconds, UTC
(`now_ms()`).
"""

from ._database import Database, Transaction, now_ms, open_database
from ._instance import instance_id
from ._url import StateError, hide_password

__all__ = [
    "Database",
    "StateError",
    "Transaction",
    "hide_password",
    "instance_id",
    "now_ms",
    "open_database",
]
