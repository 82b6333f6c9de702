"""One database for the hub's own state, SQLite or PostgreSQL, with one transaction API.

Each thread has its own connection, opened on its first transaction and reused after; a
process forked from one that had connections opens new ones (a connection must never be shared
across processes). A transaction inside another on the same thread becomes a savepoint, so a
helper that opens its own transaction can be called inside a larger one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, Literal

from ._dialects import Dialect, dialect_for
from ._url import StateError, hide_password, scheme_of

log = logging.getLogger(__name__)

Params = Sequence[Any]


def now_ms() -> int:
    """Now, as hub state stores every time: Unix milliseconds, UTC."""
    return time.time_ns() // 1_000_000


class Transaction:
    """The statements of one transaction, on the calling thread's connection.

    SQL uses `?` placeholders for both dialects. `execute` returns the driver's cursor, which
    has `fetchone()`, `fetchall()` and `rowcount`; rows are tuples.
    """

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._conn = conn
        self._dialect = dialect
        self._open = True

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql", for the rare statement that must differ."""
        return self._dialect.name

    def execute(self, sql: str, params: Params = ()) -> Any:
        self._check_open()
        return self._conn.execute(self._dialect.translate(sql), tuple(params))

    def executemany(self, sql: str, seq: Iterable[Params]) -> Any:
        self._check_open()
        cursor = self._conn.cursor()
        cursor.executemany(self._dialect.translate(sql), [tuple(p) for p in seq])
        return cursor

    def lock(self, key: str) -> None:
        """Hold an exclusive lock named `key`, across processes, until the transaction ends.

        PostgreSQL: pg_advisory_xact_lock on a 64-bit hash of `key`. SQLite: nothing more is
        needed, since BEGIN IMMEDIATE already holds the database's one write lock.
        """
        self._check_open()
        self._dialect.lock(self._conn, key)

    def _check_open(self) -> None:
        if not self._open:
            raise StateError("this transaction has ended; use it only inside its `with` block")

    def _end(self) -> None:
        self._open = False


class _ThreadState(threading.local):
    conn: Any = None
    depth: int = 0


class Database:
    """The hub's state database. Open it with `open_database(url)`."""

    def __init__(self, url: str, dialect: Dialect) -> None:
        self._dialect = dialect
        self.url = hide_password(url)
        """The URL, password hidden: safe to log and show."""
        self._local = _ThreadState()
        self._connections: list[Any] = []
        self._inherited: list[Any] = []
        """Connections a forked process got from its parent: kept open, never used."""
        self._guard = threading.Lock()
        self._pid = os.getpid()
        self._closed = False

    @property
    def dialect(self) -> Literal["sqlite", "postgresql"]:
        return self._dialect.name  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"Database({self.url!r})"

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Transaction]:
        """`with db.transaction() as tx:` commits on normal exit and rolls back on an exception.

        SQLite begins IMMEDIATE (the write lock is taken at once, waiting up to 30 s for
        another process); PostgreSQL begins READ COMMITTED. Nested on one thread: a savepoint
        of the outer transaction. `readonly=True`: SQLite begins DEFERRED and takes no write
        lock, so readers never queue behind writers; both dialects refuse writes in it.
        """
        state = self._thread_state()
        if state.depth:
            with self._savepoint(state) as tx:
                yield tx
            return
        with nullcontext() if readonly else self._dialect.writer():
            conn = self._begin(state, readonly)
            tx = Transaction(conn, self._dialect)
            state.depth = 1
            try:
                yield tx
            except BaseException:
                self._rollback(state)
                raise
            else:
                self._commit(state)
            finally:
                state.depth = 0
                tx._end()
                if readonly:
                    self._end_read_only(state)

    @contextmanager
    def exclusive(self, *keys: str) -> Iterator[None]:
        """`with db.exclusive("identity"):` one holder at a time, across threads and processes,
        without holding a transaction: the work inside runs its own short transactions (and
        slow work elsewhere, such as a remote FHIR write) while other writers go on. Several
        keys are taken together, always in the same order, so two holders never deadlock.

        Not inside a transaction of this thread (its write lock would be held all along)."""
        with self._hold(sorted(set(keys)), shared=False):
            yield

    @contextmanager
    def shared(self, key: str) -> Iterator[None]:
        """`with db.shared("identity"):` held by any number at once, but never while someone
        holds `exclusive(key)`: many workers each lock their own people, and a merge that must
        see nobody at work takes the exclusive side."""
        with self._hold([key], shared=True):
            yield

    @contextmanager
    def _hold(self, keys: list[str], *, shared: bool) -> Iterator[None]:
        state = self._thread_state()
        if state.depth:
            raise StateError("a lock is taken outside a transaction, not inside one")
        with self._dialect.hold(self._connection(state), keys, shared=shared):
            yield

    def migrate(self, component: str, migrations: Sequence[str | Sequence[str]]) -> int:
        """Bring `component`'s tables up to date; return the schema version now in force.

        Migration N (1-based) is applied once, in order, all pending ones in one transaction
        that holds a lock, so processes starting together do not race. A migration is a
        statement or a list of statements, one statement per string. DDL is written once for
        both dialects; these words are replaced:

            {id}    INTEGER PRIMARY KEY AUTOINCREMENT        / BIGINT GENERATED ALWAYS AS
                                                               IDENTITY PRIMARY KEY
            {blob}  BLOB                                     / BYTEA

        Other types need no word: write BIGINT for times (Unix ms; SQLite stores it as its
        64-bit INTEGER), TEXT, INTEGER, DOUBLE PRECISION.
        """
        from ._migrate import apply_migrations

        with self.transaction() as tx:
            return apply_migrations(tx, self._dialect.type_words, component, migrations)

    def close(self) -> None:
        """Close every connection this Database opened, in any thread."""
        with self._guard:
            connections, self._connections = self._connections, []
            self._closed = True
        for conn in connections:
            try:
                conn.close()
            except Exception:  # closing is best effort: the connection may already be gone
                log.debug("closing a state connection failed", exc_info=True)
        self._dialect.close()
        self._local = _ThreadState()

    def _thread_state(self) -> _ThreadState:
        if self._closed:
            raise StateError(f"the state database {self.url} has been closed")
        if os.getpid() != self._pid:
            # A forked child: the parent's connections (and their sockets) are not ours to
            # use, nor to close: closing, even by garbage collection, would end the parent's
            # session (libpq says goodbye to the server). Keep them, unused; open our own.
            with self._guard:
                self._inherited += self._connections
                self._pid, self._connections = os.getpid(), []
            self._local = _ThreadState()
        return self._local

    def _connection(self, state: _ThreadState) -> Any:
        if state.conn is not None and not self._dialect.usable(state.conn):
            self._discard(state)
        if state.conn is None:
            state.conn = self._dialect.connect()
            with self._guard:
                self._connections.append(state.conn)
        return state.conn

    def _begin(self, state: _ThreadState, readonly: bool) -> Any:
        begin = self._dialect.begin_read_sql if readonly else self._dialect.begin_sql
        conn = self._connection(state)
        if readonly and self._dialect.read_only_pragmas:
            conn.execute(self._dialect.read_only_pragmas[0])
        try:
            conn.execute(begin)
        except Exception:
            if self._dialect.usable(conn):
                raise
            # The server went away since this connection's last use (a restart): nothing has
            # been done yet, so reconnecting and beginning again is safe.
            self._discard(state)
            conn = self._connection(state)
            conn.execute(begin)
        return conn

    def _end_read_only(self, state: _ThreadState) -> None:
        if self._dialect.read_only_pragmas and state.conn is not None:
            state.conn.execute(self._dialect.read_only_pragmas[1])

    def _commit(self, state: _ThreadState) -> None:
        try:
            state.conn.execute("COMMIT")
        except BaseException:
            self._rollback(state)
            raise

    def _rollback(self, state: _ThreadState) -> None:
        try:
            state.conn.execute("ROLLBACK")
        except Exception:
            # The connection is in no state to be reused (lost, or closed under us).
            log.warning("rollback failed on %s; reconnecting next time", self.url, exc_info=True)
            self._discard(state)

    def _discard(self, state: _ThreadState) -> None:
        conn, state.conn = state.conn, None
        with self._guard:
            if conn in self._connections:
                self._connections.remove(conn)
        try:
            conn.close()
        except Exception:
            log.debug("closing a broken state connection failed", exc_info=True)

    @contextmanager
    def _savepoint(self, state: _ThreadState) -> Iterator[Transaction]:
        name = f"hub_sp{state.depth}"
        conn = state.conn
        conn.execute(f"SAVEPOINT {name}")
        tx = Transaction(conn, self._dialect)
        state.depth += 1
        try:
            yield tx
        except BaseException:
            conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
            conn.execute(f"RELEASE SAVEPOINT {name}")
            raise
        else:
            conn.execute(f"RELEASE SAVEPOINT {name}")
        finally:
            state.depth -= 1
            tx._end()


def open_database(url: str) -> Database:
    """Open the state database `url` names, connecting once now so that a wrong URL, a missing
    server or bad credentials fail here, with a message naming the URL (password hidden).

    sqlite:////absolute/path/hub.db (the folder is created) or
    postgresql://user:password@host:5432/database (libpq's URL: `?options=-csearch_path%3Dx`
    selects a schema).
    """
    database = Database(url, dialect_for(url, scheme_of(url)))
    with database.transaction():
        pass
    return database
