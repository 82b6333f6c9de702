"""The hub's state database: one transaction API over SQLite and PostgreSQL.

Every test runs on both dialects (the `state_url` / `state_db` fixtures), with real servers
and real files; several use other processes, as several hub processes share one database.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from hub.state import (
    Database,
    StateError,
    hide_password,
    instance_id,
    now_ms,
    open_database,
)
from tests._server import free_port
from tests.state import _procs

SPAWN = multiprocessing.get_context("spawn")
PROCESS_TIMEOUT = 60


def _table(db: Database, ddl: str = "CREATE TABLE t (id {id}, v TEXT)") -> None:
    db.migrate("test", [ddl])


def _values(db: Database) -> list[str]:
    with db.transaction() as tx:
        return [row[0] for row in tx.execute("SELECT v FROM t ORDER BY id").fetchall()]


def _join(processes: list[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        process.join(PROCESS_TIMEOUT)
        assert process.exitcode == 0, f"{process.name} ended with {process.exitcode}"


# -- transactions ------------------------------------------------------------------------------


def test_a_committed_transaction_is_seen_by_another_connection(state_url: str) -> None:
    with open_database(state_url) as writer, open_database(state_url) as reader:
        _table(writer)
        with writer.transaction() as tx:
            tx.execute("INSERT INTO t (v) VALUES (?)", ("one",))
        assert _values(reader) == ["one"]


def test_an_exception_rolls_back_every_statement_of_the_transaction(state_db: Database) -> None:
    _table(state_db)
    with pytest.raises(RuntimeError), state_db.transaction() as tx:
        tx.execute("INSERT INTO t (v) VALUES (?)", ("first",))
        tx.execute("INSERT INTO t (v) VALUES (?)", ("second",))
        raise RuntimeError("the caller changed its mind")
    assert _values(state_db) == []
    with state_db.transaction() as tx:  # and the connection is fine for the next one
        tx.execute("INSERT INTO t (v) VALUES (?)", ("after",))
    assert _values(state_db) == ["after"]


def test_a_failed_statement_rolls_back_and_the_connection_recovers(state_db: Database) -> None:
    _table(state_db, "CREATE TABLE t (id {id}, v TEXT NOT NULL UNIQUE)")
    with state_db.transaction() as tx:
        tx.execute("INSERT INTO t (v) VALUES ('a')")
    duplicate = (sqlite3.IntegrityError, psycopg.errors.UniqueViolation)
    with pytest.raises(duplicate), state_db.transaction() as tx:
        tx.execute("INSERT INTO t (v) VALUES ('b')")
        tx.execute("INSERT INTO t (v) VALUES ('a')")
    assert _values(state_db) == ["a"]


def test_a_nested_transaction_is_a_savepoint_rolled_back_alone(state_db: Database) -> None:
    _table(state_db)
    with state_db.transaction() as outer:
        outer.execute("INSERT INTO t (v) VALUES ('outer')")
        with pytest.raises(ValueError), state_db.transaction() as inner:
            inner.execute("INSERT INTO t (v) VALUES ('inner, undone')")
            raise ValueError
        with state_db.transaction() as inner:
            inner.execute("INSERT INTO t (v) VALUES ('inner, kept')")
    assert _values(state_db) == ["outer", "inner, kept"]


def test_a_read_only_transaction_reads_beside_a_writer_and_refuses_writes(
    state_url: str,
) -> None:
    with open_database(state_url) as writer, open_database(state_url) as reader:
        _table(writer)
        with writer.transaction() as tx:
            tx.execute("INSERT INTO t (v) VALUES ('uncommitted')")
            started = time.monotonic()
            with reader.transaction(readonly=True) as read:  # another connection, no waiting
                assert read.execute("SELECT count(*) FROM t").fetchone() == (0,)
            assert time.monotonic() - started < 1
        refused = (sqlite3.OperationalError, psycopg.errors.ReadOnlySqlTransaction)
        with pytest.raises(refused), reader.transaction(readonly=True) as read:
            read.execute("INSERT INTO t (v) VALUES ('sneaked in')")
        with reader.transaction() as tx:  # the connection writes again afterwards
            tx.execute("INSERT INTO t (v) VALUES ('written')")
        assert _values(writer) == ["uncommitted", "written"]


def test_a_transaction_cannot_be_used_after_its_block(state_db: Database) -> None:
    _table(state_db)
    with state_db.transaction() as tx:
        pass
    with pytest.raises(StateError, match="has ended"):
        tx.execute("SELECT 1")


def test_each_thread_reuses_one_connection_of_its_own(state_db: Database) -> None:
    # A temporary table lives in one connection (session): later transactions on this thread
    # see it, another thread does not.
    with state_db.transaction() as tx:
        tx.execute("CREATE TEMPORARY TABLE mine (n INTEGER)")
    with state_db.transaction() as tx:
        assert tx.execute("SELECT count(*) FROM mine").fetchone() == (0,)
    errors: list[Exception] = []

    def other_thread() -> None:
        try:
            with state_db.transaction() as tx:
                tx.execute("SELECT count(*) FROM mine")
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert len(errors) == 1
    assert "mine" in str(errors[0])


def test_rows_cursors_and_executemany(state_db: Database) -> None:
    _table(state_db)
    with state_db.transaction() as tx:
        cursor = tx.executemany("INSERT INTO t (v) VALUES (?)", [("a",), ("b",), ("c",)])
        assert cursor.rowcount == 3
        assert tx.execute("UPDATE t SET v = v || '!' WHERE v <> ?", ("b",)).rowcount == 2
        rows = tx.execute("SELECT id, v FROM t ORDER BY id").fetchall()
    assert [v for _, v in rows] == ["a!", "b", "c!"]
    assert all(isinstance(row, tuple) for row in rows)


def test_question_marks_and_percent_signs_in_literals_are_not_placeholders(
    state_db: Database,
) -> None:
    _table(state_db)
    with state_db.transaction() as tx:
        tx.execute("INSERT INTO t (v) VALUES ('100% sure?'), (?)", ("50%?",))
        literal = tx.execute("SELECT v FROM t WHERE v LIKE '100%' AND v <> ?", ("x",))
        assert literal.fetchall() == [("100% sure?",)]
        assert tx.execute("SELECT v FROM t WHERE v = ?", ("50%?",)).fetchone() == ("50%?",)
        assert tx.execute("SELECT '?' || ? || '%'", ("x",)).fetchone() == ("?x%",)


def test_blobs_and_millisecond_times_round_trip(state_db: Database) -> None:
    state_db.migrate("test", ["CREATE TABLE b (id {id}, raw {blob} NOT NULL, at BIGINT NOT NULL)"])
    raw = bytes(range(256)) * 4  # NUL bytes and everything else
    at = now_ms()
    assert at > 2**31  # does not fit a 32-bit INTEGER: BIGINT it must be
    with state_db.transaction() as tx:
        tx.execute("INSERT INTO b (raw, at) VALUES (?, ?)", (raw, at))
        assert tx.execute("SELECT raw, at FROM b").fetchone() == (raw, at)


def test_id_columns_count_up_and_return_the_new_id(state_db: Database) -> None:
    _table(state_db)
    with state_db.transaction() as tx:
        ids = [
            tx.execute("INSERT INTO t (v) VALUES (?) RETURNING id", (v,)).fetchone()[0]
            for v in "abc"
        ]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3


# -- locks across processes ------------------------------------------------------------------


def test_lock_serialises_read_modify_write_across_processes(state_db: Database) -> None:
    state_db.migrate("test", ["CREATE TABLE counter (n INTEGER NOT NULL)"])
    with state_db.transaction() as tx:
        tx.execute("INSERT INTO counter (n) VALUES (0)")
    processes, times = 3, 25
    barrier = SPAWN.Barrier(processes)
    workers = [
        SPAWN.Process(target=_procs.increment, args=(state_db_url(state_db), times, barrier))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    _join(workers)
    with state_db.transaction() as tx:
        assert tx.execute("SELECT n FROM counter").fetchone() == (processes * times,)


def test_lock_waits_for_the_other_process_to_commit(state_db: Database) -> None:
    state_db.migrate("test", ["CREATE TABLE events (what TEXT, at DOUBLE PRECISION)"])
    holding = SPAWN.Event()
    holder = SPAWN.Process(target=_procs.hold_lock, args=(state_db_url(state_db), 0.8, holding))
    holder.start()
    assert holding.wait(PROCESS_TIMEOUT)
    with state_db.transaction() as tx:
        tx.lock("shared")
        acquired = time.time()
        # The holder's commit is visible as soon as we have the lock: it committed first.
        released = tx.execute("SELECT at FROM events WHERE what = 'released'").fetchone()
    _join([holder])
    assert released is not None
    assert acquired >= released[0]


# -- migrations --------------------------------------------------------------------------------


def test_migrate_applies_each_migration_once(state_db: Database) -> None:
    first = [["CREATE TABLE log (what TEXT)", "INSERT INTO log (what) VALUES ('v1')"]]
    assert state_db.migrate("comp", first) == 1
    assert state_db.migrate("comp", first) == 1
    second = [*first, "INSERT INTO log (what) VALUES ('v2')"]
    assert state_db.migrate("comp", second) == 2
    assert state_db.migrate("comp", second) == 2
    with state_db.transaction() as tx:
        assert tx.execute("SELECT what FROM log ORDER BY what").fetchall() == [("v1",), ("v2",)]
        versions = tx.execute("SELECT component, version FROM schema_versions").fetchall()
    assert versions == [("comp", 2)]


def test_components_have_versions_of_their_own(state_db: Database) -> None:
    state_db.migrate("one", ["CREATE TABLE one_t (id {id})"])
    state_db.migrate("two", ["CREATE TABLE two_t (id {id})", "CREATE INDEX two_i ON two_t (id)"])
    with state_db.transaction() as tx:
        rows = tx.execute("SELECT component, version FROM schema_versions ORDER BY component")
        assert rows.fetchall() == [("one", 1), ("two", 2)]


def test_a_failing_migration_changes_nothing(state_db: Database) -> None:
    state_db.migrate("comp", ["CREATE TABLE a (id {id})"])
    broken = ["CREATE TABLE a (id {id})", ["CREATE TABLE b (id {id})", "NOT SQL AT ALL"]]
    with pytest.raises((sqlite3.OperationalError, psycopg.errors.SyntaxError)):
        state_db.migrate("comp", broken)
    with state_db.transaction() as tx:
        assert tx.execute("SELECT version FROM schema_versions").fetchone() == (1,)
    fixed = ["CREATE TABLE a (id {id})", ["CREATE TABLE b (id {id})"]]
    assert state_db.migrate("comp", fixed) == 2  # b was never half-created


def test_processes_migrating_at_once_apply_each_migration_once(state_db: Database) -> None:
    # Neither statement is idempotent: run twice, the CREATE fails and the INSERT doubles.
    migrations = ["CREATE TABLE raced (what TEXT)", "INSERT INTO raced (what) VALUES ('once')"]
    processes = 4
    barrier, results = SPAWN.Barrier(processes), SPAWN.Queue()
    workers = [
        SPAWN.Process(
            target=_procs.migrate, args=(state_db_url(state_db), migrations, barrier, results)
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=PROCESS_TIMEOUT) for _ in workers]
    _join(workers)
    assert outcomes == ["2"] * processes
    with state_db.transaction() as tx:
        assert tx.execute("SELECT what FROM raced").fetchall() == [("once",)]


def test_a_state_database_has_one_name_for_good(state_db: Database, tmp_path: Path) -> None:
    name = instance_id(state_db)
    assert len(name) == 12 and int(name, 16) >= 0
    with open_database(state_db_url(state_db)) as again:
        assert instance_id(again) == name
    with open_database(f"sqlite:///{tmp_path / 'other' / 'hub.db'}") as other:
        assert instance_id(other) != name


def test_processes_naming_a_new_state_database_at_once_agree(state_db: Database) -> None:
    processes = 4
    barrier, results = SPAWN.Barrier(processes), SPAWN.Queue()
    workers = [
        SPAWN.Process(target=_procs.name_instance, args=(state_db_url(state_db), barrier, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    names = {results.get(timeout=PROCESS_TIMEOUT) for _ in workers}
    _join(workers)
    assert names == {instance_id(state_db)}


# -- URLs, opening and closing ---------------------------------------------------------------


def test_an_unknown_scheme_is_refused_naming_the_url() -> None:
    with pytest.raises(StateError, match=r"unknown database URL 'mysql://hub@db/hub'"):
        open_database("mysql://hub@db/hub")


def test_a_server_that_is_not_there_fails_at_open_with_the_password_hidden() -> None:
    url = f"postgresql://hub:s3cret@127.0.0.1:{free_port()}/hub"
    with pytest.raises(StateError) as caught:
        open_database(url)
    message = str(caught.value)
    assert "s3cret" not in message
    assert f"postgresql://hub:***@127.0.0.1:{url.rsplit(':', 1)[1]}" in message
    assert "refused" in message


def test_bad_credentials_fail_at_open(postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    url = urlunsplit(parts._replace(netloc=f"no_such_role:pw@{parts.hostname}:{parts.port}"))
    with pytest.raises(StateError, match=r'no_such_role:\*\*\*@.*role "no_such_role"'):
        open_database(url)


def test_a_sqlite_file_that_cannot_be_created_fails_at_open(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    url = f"sqlite:///{blocker / 'hub.db'}"
    with pytest.raises(StateError, match=f"cannot open the SQLite database {url}"):
        open_database(url)


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://", "sqlite:///x.db?mode=ro"])
def test_sqlite_urls_that_name_no_file_are_refused(url: str) -> None:
    with pytest.raises(StateError, match="SQLite URL"):
        open_database(url)


def test_the_url_shown_hides_the_password() -> None:
    assert hide_password("postgresql://hub:pw@db:5432/hub") == "postgresql://hub:***@db:5432/hub"
    assert hide_password("postgresql://db/hub?password=pw&x=1") == (
        "postgresql://db/hub?password=***&x=1"
    )
    assert hide_password("sqlite:////srv/hub.db") == "sqlite:////srv/hub.db"


def test_a_sqlite_database_is_shared_safely_between_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 'folder' / 'hub.db'}"
    with open_database(url) as db:
        assert db.dialect == "sqlite"
        assert db.url == url
        with db.transaction() as tx:
            assert tx.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert tx.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
            assert tx.execute("PRAGMA busy_timeout").fetchone() == (30_000,)
    assert (tmp_path / "deep" / "folder" / "hub.db").exists()


def test_close_closes_the_connections_of_every_thread(state_url: str) -> None:
    db = open_database(state_url)
    opened: list[object] = []

    def use() -> None:
        with db.transaction() as tx:
            opened.append(tx._conn)

    threads = [threading.Thread(target=use) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.close()
    for conn in opened:
        with pytest.raises((sqlite3.ProgrammingError, psycopg.OperationalError)):
            conn.execute("SELECT 1")  # type: ignore[attr-defined]
    with pytest.raises(StateError, match="closed"), db.transaction():
        pass


def test_a_forked_process_opens_connections_of_its_own(state_db: Database) -> None:
    _table(state_db)
    with state_db.transaction() as tx:  # the parent has a connection before the fork
        tx.execute("INSERT INTO t (v) VALUES ('parent')")
    child = multiprocessing.get_context("fork").Process(target=_insert_child, args=(state_db,))
    child.start()
    _join([child])
    with state_db.transaction() as tx:  # the parent's connection is unharmed
        tx.execute("INSERT INTO t (v) VALUES ('parent again')")
    assert _values(state_db) == ["parent", "child", "parent again"]


def test_postgres_reconnects_after_losing_its_connection(postgres_url: str) -> None:
    with open_database(postgres_url) as db:
        with db.transaction() as tx:
            (pid,) = tx.execute("SELECT pg_backend_pid()").fetchone()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with db.transaction() as tx:  # e.g. after a server restart
            (new_pid,) = tx.execute("SELECT pg_backend_pid()").fetchone()
    assert new_pid != pid


def _insert_child(db: Database) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT INTO t (v) VALUES ('child')")


def state_db_url(db: Database) -> str:
    """The URL to open `db` again from another process (the test servers need no password,
    so the URL shown is the URL)."""
    return db.url
