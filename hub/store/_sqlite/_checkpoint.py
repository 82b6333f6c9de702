"""WAL checkpoints on a thread of their own.

A checkpoint copies the WAL back into the database file and syncs it: milliseconds to hundreds
of milliseconds of I/O. Run inside a commit (SQLite's auto-checkpoint) it holds the write lock
for all writers; run by the writer after its commit it still stalls that writer. On this
thread, with its own connection, it overlaps with the writers' work (SQLite releases the GIL
while it waits on I/O).

Two steps: a PASSIVE checkpoint copies what it can without blocking anyone; then, holding the
write lock for the moment it takes to copy the few frames written meanwhile, a RESTART
checkpoint lets the next writer start the WAL again from its beginning. Without that second
step, writers that never pause keep a PASSIVE checkpoint from ever finishing and the WAL grows
without end (a gigabyte in twenty seconds of loading, seen here), each commit extending it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

from hub._locks import WriteLock

from ._schema import connect

log = logging.getLogger(__name__)

COMMITS_PER_CHECKPOINT = 16
_WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes the WAL file is cut back to after a restart
_READER_WAIT_MS = 200  # a RESTART waits this long for readers, then gives up until next time


class Checkpointer:
    def __init__(self, path: str, *, synchronous: str, write_lock: WriteLock) -> None:
        self._path, self._synchronous, self._write_lock = path, synchronous, write_lock
        self._wake = threading.Event()
        self._closing = False
        self._commits = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def committed(self) -> None:
        """Count a commit; every COMMITS_PER_CHECKPOINT commits, ask for a checkpoint."""
        with self._lock:
            self._commits += 1
            if self._commits < COMMITS_PER_CHECKPOINT:
                return
            self._commits = 0
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="hub-sqlite-checkpoint", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        conn = connect(self._path, synchronous=self._synchronous)
        conn.execute(f"PRAGMA busy_timeout={_READER_WAIT_MS}")
        conn.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._closing:
                    return
                try:
                    self._checkpoint(conn)
                except sqlite3.Error:
                    log.exception("WAL checkpoint failed; the next commit will ask again")
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        with self._write_lock:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        if busy:
            log.debug("WAL restart waited on a reader; trying again after more commits")

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
