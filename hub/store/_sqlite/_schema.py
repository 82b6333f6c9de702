"""The embedded store's SQLite schema.

`resource` holds one row per logical resource (its current version number and state);
`resource_version` every version's JSON. The `idx_*` tables hold the search values of the current
version only, one row per value, keyed by a small integer per search parameter (`param`). They
are WITHOUT ROWID tables whose primary key is the search order, so a value is written to one
B-tree (plus the `rid` index that deletes use), not three; an absent part of a value (a token
without a system) is '' because primary key columns cannot be NULL there.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = "1"

SCHEMA = """
CREATE TABLE IF NOT EXISTS hub_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS param (pid INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);

CREATE TABLE IF NOT EXISTS resource (
    rid INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (type, id)
);
CREATE INDEX IF NOT EXISTS resource_type_updated ON resource (type, last_updated);

CREATE TABLE IF NOT EXISTS resource_version (
    rid INTEGER NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    last_updated INTEGER NOT NULL,
    method TEXT NOT NULL,
    body TEXT,
    PRIMARY KEY (rid, version)
);
CREATE INDEX IF NOT EXISTS resource_version_type_updated
    ON resource_version (type, last_updated);

CREATE TABLE IF NOT EXISTS idx_token (
    pid INTEGER NOT NULL, code TEXT NOT NULL, system TEXT NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (pid, code, system, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_token_rid ON idx_token (rid);

CREATE TABLE IF NOT EXISTS idx_string (
    pid INTEGER NOT NULL, value TEXT NOT NULL, exact TEXT NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (pid, value, exact, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_string_rid ON idx_string (rid);

CREATE TABLE IF NOT EXISTS idx_date (
    pid INTEGER NOT NULL, low INTEGER NOT NULL, high INTEGER NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (pid, low, high, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_date_rid ON idx_date (rid);

CREATE TABLE IF NOT EXISTS idx_ref (
    pid INTEGER NOT NULL, target_id TEXT NOT NULL, target_type TEXT NOT NULL, url TEXT NOT NULL,
    rid INTEGER NOT NULL,
    PRIMARY KEY (pid, target_id, target_type, url, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_ref_url ON idx_ref (pid, url) WHERE url != '';
CREATE INDEX IF NOT EXISTS idx_ref_rid ON idx_ref (rid);

CREATE TABLE IF NOT EXISTS idx_number (
    pid INTEGER NOT NULL, value REAL NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (pid, value, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_number_rid ON idx_number (rid);
"""

INDEX_TABLES = ("idx_token", "idx_string", "idx_date", "idx_ref", "idx_number")


def connect(path: str, *, synchronous: str) -> sqlite3.Connection:
    """A connection in autocommit mode: transactions are begun explicitly."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=60000")
    conn.execute("PRAGMA cache_size=-65536")  # 64 MiB per connection: bounded memory
    conn.execute("PRAGMA temp_store=MEMORY")
    # Read through a memory map (up to 1 GiB): SQLite empties a connection's page cache
    # whenever another connection has written, so with several writers every transaction
    # starts cold; mapped pages come from the OS page cache without a read() and a copy.
    # Measured: 3,065 -> 4,524 resources/s loading 600,000 with two writers. The price, as
    # SQLite documents: a disk I/O error while reading mapped pages is a SIGBUS, not an error.
    conn.execute("PRAGMA mmap_size=1073741824")
    # Checkpoints run on the store's own thread (_checkpoint.py), not inside whichever
    # commit fills the WAL.
    conn.execute("PRAGMA wal_autocheckpoint=0")

    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    found = conn.execute("SELECT value FROM hub_meta WHERE key = 'schema_version'").fetchone()
    if found is None:
        conn.execute("INSERT INTO hub_meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
    elif found[0] != SCHEMA_VERSION:
        conn.execute("ROLLBACK")
        raise RuntimeError(
            f"The store was made by schema version {found[0]}; this hub uses {SCHEMA_VERSION}"
        )
    conn.execute("COMMIT")
