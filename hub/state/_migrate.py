"""Versioned schema creation: each component's migrations, applied once each, in order."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ._database import Transaction, now_ms

log = logging.getLogger(__name__)

_LOCK_KEY = "hub.state.schema_versions"

_SCHEMA_VERSIONS = """
CREATE TABLE IF NOT EXISTS schema_versions (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    updated_ms BIGINT NOT NULL
)
"""


def apply_migrations(
    tx: Transaction,
    type_words: dict[str, str],
    component: str,
    migrations: Sequence[str | Sequence[str]],
) -> int:
    """Apply `component`'s migrations past its recorded version, inside `tx`; return the
    version now in force."""
    # The lock comes before even the CREATE TABLE IF NOT EXISTS: two PostgreSQL sessions
    # creating the same table at once can both pass the IF NOT EXISTS and one then fails.
    tx.lock(_LOCK_KEY)
    tx.execute(_SCHEMA_VERSIONS)
    row = tx.execute(
        "SELECT version FROM schema_versions WHERE component = ?", (component,)
    ).fetchone()
    current = row[0] if row else 0
    if current > len(migrations):
        # Newer code has migrated this database; older code reading it is usually fine
        # (migrations add), so say so rather than refuse to start.
        log.warning(
            "state schema of %r is at version %d, newer than this hub knows (%d)",
            component,
            current,
            len(migrations),
        )
        return current
    for number in range(current + 1, len(migrations) + 1):
        for statement in _statements(migrations[number - 1]):
            tx.execute(_substitute(statement, type_words))
        log.info("state schema of %r migrated to version %d", component, number)
    if len(migrations) > current:
        tx.execute(
            "INSERT INTO schema_versions (component, version, updated_ms) VALUES (?, ?, ?) "
            "ON CONFLICT (component) DO UPDATE "
            "SET version = excluded.version, updated_ms = excluded.updated_ms",
            (component, len(migrations), now_ms()),
        )
    return max(current, len(migrations))


def _statements(migration: str | Sequence[str]) -> Sequence[str]:
    return [migration] if isinstance(migration, str) else migration


def _substitute(statement: str, type_words: dict[str, str]) -> str:
    for word, spelling in type_words.items():
        statement = statement.replace(word, spelling)
    return statement
