"""Database.exclusive(key) and Database.shared(key): locks across threads and processes that
hold no transaction (the identity lock of the pipeline), on SQLite and on PostgreSQL.

Processes are started with multiprocessing's spawn (fresh interpreters with connections of their
own, as separate hub processes are); the functions they run are at the bottom of this file.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from hub.state import Database, StateError, open_database

SPAWN = multiprocessing.get_context("spawn")
TIMEOUT = 60.0
BLOCKED = 0.25
"""How long a lock taker that should be blocked is watched, to see that it stays blocked."""


@pytest.fixture
def counter(state_db: Database) -> Database:
    state_db.migrate("test-exclusive", ["CREATE TABLE counter (n INTEGER NOT NULL)"])
    with state_db.transaction() as tx:
        tx.execute("INSERT INTO counter (n) VALUES (0)")
    return state_db


def count(db: Database) -> int:
    with db.transaction(readonly=True) as tx:
        return tx.execute("SELECT n FROM counter").fetchone()[0]


def increment_under_lock(db: Database, key: str, times: int) -> None:
    """Read in one transaction, pause, write back plus one in another: without the lock held
    around both, concurrent incrementers lose each other's updates (the identity pattern:
    read the store, decide, write, each step its own short transaction)."""
    for _ in range(times):
        with db.exclusive(key):
            value = count(db)
            time.sleep(0.003)
            with db.transaction() as tx:
                tx.execute("UPDATE counter SET n = ?", (value + 1,))


class Taker:
    """Takes a lock in a thread of its own, so that the test can watch whether it blocks."""

    def __init__(self, take: Callable[[], object], hold: float = 0.0) -> None:
        self.acquired = threading.Event()
        self.release = threading.Event()
        self.error: BaseException | None = None
        self._take = take
        self._hold = hold
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self._take():  # type: ignore[attr-defined]
                self.acquired.set()
                self.release.wait(TIMEOUT)
        except BaseException as exc:  # reported by the test
            self.error = exc
            self.acquired.set()

    def done(self) -> None:
        self.release.set()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()
        assert self.error is None, self.error


def join(processes: list[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        process.join(TIMEOUT)
        assert process.exitcode == 0, f"{process.name} ended with {process.exitcode}"


@contextmanager
def holder_process(
    url: str, key: str, *, shared: bool = False
) -> Iterator[multiprocessing.process.BaseProcess]:
    """A process that takes the lock, says so, and holds it until killed."""
    holding = SPAWN.Event()
    process = SPAWN.Process(target=hold_until_killed, args=(url, key, shared, holding))
    process.start()
    try:
        assert holding.wait(TIMEOUT), "the holder process never took the lock"
        yield process
    finally:
        if process.is_alive():
            os.kill(process.pid, signal.SIGKILL)  # type: ignore[arg-type]
        process.join(TIMEOUT)


# -- one holder at a time ------------------------------------------------------------------------


def test_exclusive_serialises_threads(counter: Database) -> None:
    threads = [
        threading.Thread(target=increment_under_lock, args=(counter, "counter", 15))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert count(counter) == 60


def test_exclusive_serialises_processes(counter: Database, state_url: str) -> None:
    barrier = SPAWN.Barrier(3)
    processes = [
        SPAWN.Process(target=increment_in_process, args=(state_url, "counter", 15, barrier))
        for _ in range(3)
    ]
    for process in processes:
        process.start()
    join(processes)
    assert count(counter) == 45


def test_a_second_taker_waits_until_the_first_lets_go(state_db: Database) -> None:
    first = Taker(lambda: state_db.exclusive("identity"))
    assert first.acquired.wait(TIMEOUT)
    second = Taker(lambda: state_db.exclusive("identity"))
    assert not second.acquired.wait(BLOCKED)
    first.done()
    assert second.acquired.wait(TIMEOUT)
    second.done()


def test_a_lock_held_by_another_process_is_waited_for(state_db: Database, state_url: str) -> None:
    with holder_process(state_url, "identity") as holder:
        taker = Taker(lambda: state_db.exclusive("identity"))
        assert not taker.acquired.wait(BLOCKED)
        holder.terminate()  # SIGTERM: the process ends, its lock with it
        holder.join(TIMEOUT)
        assert taker.acquired.wait(TIMEOUT)
        taker.done()


def test_different_keys_do_not_block_each_other(state_db: Database, state_url: str) -> None:
    one = Taker(lambda: state_db.exclusive("identity:1"))
    assert one.acquired.wait(TIMEOUT)
    with holder_process(state_url, "identity:2"):
        other = Taker(lambda: state_db.exclusive("identity:3"))
        assert other.acquired.wait(5), "identity:3 waited for other keys' holders"
        other.done()
    one.done()


def test_a_lock_is_released_when_its_holder_process_is_killed(
    state_db: Database, state_url: str
) -> None:
    with holder_process(state_url, "identity") as holder:
        taker = Taker(lambda: state_db.exclusive("identity"))
        assert not taker.acquired.wait(BLOCKED)
        os.kill(holder.pid, signal.SIGKILL)  # type: ignore[arg-type]
        holder.join(TIMEOUT)
        assert holder.exitcode == -signal.SIGKILL
        assert taker.acquired.wait(10), "the dead holder's lock was never released"
        taker.done()


def test_a_killed_holders_lock_can_be_taken_again_and_again(
    state_db: Database, state_url: str
) -> None:
    for _ in range(2):
        with holder_process(state_url, "identity") as holder:
            os.kill(holder.pid, signal.SIGKILL)  # type: ignore[arg-type]
    taker = Taker(lambda: state_db.exclusive("identity"))
    assert taker.acquired.wait(10)
    taker.done()


# -- no transaction held, none allowed around it -------------------------------------------------


def test_exclusive_holds_no_transaction_others_write_meanwhile(counter: Database) -> None:
    holder = Taker(lambda: counter.exclusive("identity"))
    assert holder.acquired.wait(TIMEOUT)
    # Another thread of this process, and the holder's own work, write while it is held.
    writer = threading.Thread(target=lambda: increment_plain(counter))
    writer.start()
    writer.join(5)
    assert not writer.is_alive(), "a writer waited for the holder of an exclusive lock"
    holder.done()
    assert count(counter) == 1


def test_exclusive_holds_no_transaction_in_other_processes_either(
    counter: Database, state_url: str
) -> None:
    with holder_process(state_url, "identity"):
        started = time.monotonic()
        increment_plain(counter)
        assert time.monotonic() - started < 5
    assert count(counter) == 1


def test_exclusive_refuses_to_be_taken_inside_a_transaction(counter: Database) -> None:
    with counter.transaction() as tx:
        with (
            pytest.raises(StateError, match="outside a transaction"),
            counter.exclusive("identity"),
        ):
            pass  # pragma: no cover - never entered
        with pytest.raises(StateError), counter.shared("identity"):
            pass  # pragma: no cover
        tx.execute("UPDATE counter SET n = 7")  # the transaction goes on, and commits
    assert count(counter) == 7
    with counter.transaction(readonly=True), pytest.raises(StateError), counter.exclusive("k"):
        pass  # pragma: no cover
    # Nothing was left held by the refusals.
    taker = Taker(lambda: counter.exclusive("identity"))
    assert taker.acquired.wait(5)
    taker.done()


def test_transactions_inside_an_exclusive_lock_commit_on_their_own(counter: Database) -> None:
    with counter.exclusive("identity"):
        with counter.transaction() as tx:
            tx.execute("UPDATE counter SET n = 3")
        # Committed already: another connection sees it while the lock is still held.
        seen: list[int] = []
        reader = threading.Thread(target=lambda: seen.append(count(counter)))
        reader.start()
        reader.join(5)
        assert seen == [3]


def test_a_failing_block_releases_the_lock(state_db: Database) -> None:
    with pytest.raises(RuntimeError), state_db.exclusive("identity"):
        raise RuntimeError("the work failed")
    taker = Taker(lambda: state_db.exclusive("identity"))
    assert taker.acquired.wait(5)
    taker.done()


# -- shared and exclusive ------------------------------------------------------------------------


def test_shared_holders_hold_together_and_keep_exclusive_out(state_db: Database) -> None:
    readers = [Taker(lambda: state_db.shared("identity")) for _ in range(3)]
    for reader in readers:
        assert reader.acquired.wait(5), "a shared holder waited for another shared one"
    writer = Taker(lambda: state_db.exclusive("identity"))
    assert not writer.acquired.wait(BLOCKED)
    for reader in readers[:-1]:
        reader.done()
    assert not writer.acquired.wait(BLOCKED)  # one shared holder is still there
    readers[-1].done()
    assert writer.acquired.wait(TIMEOUT)
    late = Taker(lambda: state_db.shared("identity"))
    assert not late.acquired.wait(BLOCKED)  # shared waits for the exclusive holder
    writer.done()
    assert late.acquired.wait(TIMEOUT)
    late.done()


def test_shared_and_exclusive_exclude_each_other_across_processes(
    state_db: Database, state_url: str
) -> None:
    with holder_process(state_url, "identity", shared=True) as holder:
        together = Taker(lambda: state_db.shared("identity"))
        assert together.acquired.wait(5)
        together.done()
        writer = Taker(lambda: state_db.exclusive("identity"))
        assert not writer.acquired.wait(BLOCKED)
        os.kill(holder.pid, signal.SIGKILL)  # type: ignore[arg-type]
        assert writer.acquired.wait(10)
        writer.done()


# -- run in other processes ------------------------------------------------------------------------


def increment_plain(db: Database) -> None:
    with db.transaction() as tx:
        tx.execute("UPDATE counter SET n = n + 1")


def increment_in_process(url: str, key: str, times: int, barrier: object) -> None:
    db = open_database(url)
    barrier.wait()  # type: ignore[attr-defined]
    increment_under_lock(db, key, times)
    db.close()


def hold_until_killed(url: str, key: str, shared: bool, holding: object) -> None:
    db = open_database(url)
    with db.shared(key) if shared else db.exclusive(key):
        holding.set()  # type: ignore[attr-defined]
        time.sleep(TIMEOUT)
