"""What differs between SQLite and PostgreSQL: connecting, beginning, placeholders, locks, and
the few DDL type words that have no common spelling.

Everything else the hub's state needs (ON CONFLICT upserts, RETURNING, partial indexes, row
values) is spelled the same in both, so SQL is written once.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import sqlite3
import struct
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Protocol

from hub._locks import WriteLock

from ._url import StateError, hide_password, sqlite_path

BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another process's write lock before giving up."""

CONNECT_TIMEOUT_SECONDS = 10


class Dialect(Protocol):
    name: str
    begin_sql: str
    begin_read_sql: str
    read_only_pragmas: tuple[str, str] | None
    type_words: dict[str, str]

    def connect(self) -> Any: ...

    def translate(self, sql: str) -> str: ...

    def lock(self, conn: Any, key: str) -> None: ...

    def hold(
        self, conn: Any, keys: Sequence[str], *, shared: bool
    ) -> AbstractContextManager[None]: ...

    def writer(self) -> AbstractContextManager[Any]:
        """Held around every write transaction: queues writers where the database itself
        would make them poll."""
        ...

    def close(self) -> None: ...

    def usable(self, conn: Any) -> bool: ...


class SQLiteDialect:
    """SQLite in WAL mode: readers never block the one writer, and several processes share
    the file. Python's sqlite3 runs in autocommit mode here (isolation_level=None) so that
    transactions are begun explicitly, as BEGIN IMMEDIATE."""

    name = "sqlite"
    # IMMEDIATE takes the write lock at BEGIN, not at the first write: a transaction that
    # reads and then writes can never fail half-way with SQLITE_BUSY, and it is what makes
    # `lock()` unnecessary (see below).
    begin_sql = "BEGIN IMMEDIATE"
    # A read needs no lock in WAL mode: it sees the last commit and never waits for a writer.
    # query_only makes a write in it fail, as PostgreSQL's READ ONLY does.
    begin_read_sql = "BEGIN DEFERRED"
    read_only_pragmas = ("PRAGMA query_only = ON", "PRAGMA query_only = OFF")
    type_words = {"{id}": "INTEGER PRIMARY KEY AUTOINCREMENT", "{blob}": "BLOB"}

    def __init__(self, url: str) -> None:
        self.path = Path(sqlite_path(url))
        self._url = url
        self._writer: WriteLock | None = None

    def writer(self) -> WriteLock:
        """The write lock of `hub._locks`: a listener storing a message waits for a worker's
        transaction in the kernel, not in SQLite's busy handler's sleeps."""
        if self._writer is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._writer = WriteLock(f"{self.path}-writer.lock")
            except OSError as exc:
                raise StateError(f"cannot open the SQLite database {self._url}: {exc}") from exc
        return self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,  # Database.close() closes it from another thread
            )
            # The busy timeout first: switching to WAL itself waits for other processes.
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the SQLite database {self._url}: {exc}") from exc
        return conn

    def translate(self, sql: str) -> str:
        return sql

    def lock(self, conn: Any, key: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds the database's single write lock until
        the transaction ends, which excludes every other writer in every process."""

    # Locks are bytes of one lock file beside the database, locked with open-file-description
    # locks (Linux: they exclude threads of one process too, and die with the process): one
    # system call each, so a group of records can lock each of its people. Without them, one
    # flock for all keys.
    lock_per_key = hasattr(fcntl, "F_OFD_SETLKW")

    @contextmanager
    def hold(self, conn: Any, keys: Sequence[str], *, shared: bool) -> Iterator[None]:
        """Advisory locks beside the database, released by the kernel if the process dies;
        holding them never holds the database's write lock."""
        folder = self.path.with_name(self.path.name + ".locks")
        folder.mkdir(exist_ok=True)
        with open(folder / "locks", "a+b") as handle:
            if not self.lock_per_key:
                fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
                yield
                return
            kind = fcntl.F_RDLCK if shared else fcntl.F_WRLCK
            taken: list[int] = []
            try:
                for offset in sorted({_lock_offset(key) for key in keys}):
                    fcntl.fcntl(handle, fcntl.F_OFD_SETLKW, _flock(kind, offset))
                    taken.append(offset)
                yield
            finally:
                for offset in reversed(taken):
                    fcntl.fcntl(handle, fcntl.F_OFD_SETLK, _flock(fcntl.F_UNLCK, offset))

    def usable(self, conn: Any) -> bool:
        return True


class PostgresDialect:
    """PostgreSQL through psycopg 3, in autocommit mode so that BEGIN and COMMIT are sent
    explicitly, the same way as for SQLite; READ COMMITTED, PostgreSQL's default."""

    name = "postgresql"
    begin_sql = "BEGIN ISOLATION LEVEL READ COMMITTED"
    begin_read_sql = "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY"
    read_only_pragmas = None
    type_words = {"{id}": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "{blob}": "BYTEA"}

    def __init__(self, url: str) -> None:
        self._url = url

    def writer(self) -> AbstractContextManager[None]:
        """Nothing: PostgreSQL queues writers on its own row locks."""
        return nullcontext()

    def close(self) -> None:
        """Nothing to close: connections are the Database's."""

    def connect(self) -> Any:
        import psycopg  # imported here: a SQLite-only hub never loads the driver

        try:
            return psycopg.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
        except psycopg.Error as exc:
            # libpq's message can quote the URL it was given, password included.
            message = str(exc).replace(self._url, hide_password(self._url)).strip()
            raise StateError(
                f"cannot connect to PostgreSQL at {hide_password(self._url)}: {message}"
            ) from exc

    def translate(self, sql: str) -> str:
        return _to_pyformat(sql)

    def lock(self, conn: Any, key: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(key),))

    @contextmanager
    def hold(self, conn: Any, keys: Sequence[str], *, shared: bool) -> Iterator[None]:
        """Session advisory locks on this thread's connection (autocommit): they outlive the
        transactions run meanwhile, and the server releases them if the connection dies. All
        keys in one statement, taken in the array's (sorted) order."""
        kind = "_shared" if shared else ""
        numbers = sorted({advisory_key(key) for key in keys})
        conn.execute(
            f"SELECT count(pg_advisory_lock{kind}(k)) FROM unnest(%s::bigint[]) AS k", (numbers,)
        )
        try:
            yield
        finally:
            if self.usable(conn):
                conn.execute(
                    f"SELECT count(pg_advisory_unlock{kind}(k)) FROM unnest(%s::bigint[]) AS k",
                    (numbers,),
                )

    def usable(self, conn: Any) -> bool:
        return not conn.closed and not conn.broken


def _lock_offset(key: str) -> int:
    """The byte of the lock file that stands for `key` (2**40 of them: no two keys share one
    in practice)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=5).digest())


def _flock(kind: int, offset: int) -> bytes:
    """A `struct flock` for one byte at `offset` (l_type, l_whence, l_start, l_len, l_pid)."""
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, offset, 1, 0)


def advisory_key(key: str) -> int:
    """A signed 64-bit number for `key`, as pg_advisory_xact_lock takes."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@functools.lru_cache(maxsize=1024)
def _to_pyformat(sql: str) -> str:
    """`?` placeholders to psycopg's `%s`, outside quoted strings and identifiers; every
    literal `%` doubled, because psycopg reads `%` as a placeholder everywhere in the text
    (which is why statements are always sent with a parameter tuple, even an empty one)."""
    out: list[str] = []
    quote = ""
    for char in sql:
        if char == "%":
            out.append("%%")
            continue
        if quote:
            if char == quote:
                quote = ""  # a doubled quote ('') closes and reopens: same result
        elif char in "'\"":
            quote = char
        elif char == "?":
            out.append("%s")
            continue
        out.append(char)
    return "".join(out)


def dialect_for(url: str, scheme: str) -> Dialect:
    if scheme == "sqlite":
        return SQLiteDialect(url)
    return PostgresDialect(url)
