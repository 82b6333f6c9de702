"""Work done in other processes by the state tests (started with multiprocessing's spawn, so
each is a fresh interpreter with connections of its own, as separate hub processes are)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event

from hub.state import instance_id, open_database


def increment(url: str, times: int, barrier: Barrier) -> None:
    """Read, pause, write back plus one, `times` times, each under tx.lock("counter"): without
    the lock, processes doing this at once lose each other's updates."""
    db = open_database(url)
    barrier.wait()
    for _ in range(times):
        with db.transaction() as tx:
            tx.lock("counter")
            (value,) = tx.execute("SELECT n FROM counter").fetchone()
            time.sleep(0.002)
            tx.execute("UPDATE counter SET n = ?", (value + 1,))
    db.close()


def hold_lock(url: str, seconds: float, holding: Event) -> None:
    """Take tx.lock("shared"), say so, keep it `seconds`, then commit a row saying when."""
    db = open_database(url)
    with db.transaction() as tx:
        tx.lock("shared")
        holding.set()
        time.sleep(seconds)
        tx.execute("INSERT INTO events (what, at) VALUES ('released', ?)", (time.time(),))
    db.close()


def migrate(url: str, migrations: Sequence[str], barrier: Barrier, results: Queue[str]) -> None:
    """Migrate component "racing" the moment every process is ready; put the version reached
    (or the error) on `results`."""
    db = open_database(url)
    barrier.wait()
    try:
        results.put(str(db.migrate("racing", migrations)))
    except Exception as exc:
        results.put(repr(exc))
    finally:
        db.close()


def name_instance(url: str, barrier: Barrier, results: Queue[str]) -> None:
    db = open_database(url)
    try:
        barrier.wait(timeout=30)
        results.put(instance_id(db))
    finally:
        db.close()
