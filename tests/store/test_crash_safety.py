"""Crash safety of the embedded store: a writer killed with SIGKILL in the middle of a
transaction leaves an intact database holding each transaction wholly or not at all.

A separate process (`_crash_writer.py`) writes transaction Bundles of 1,500 resources in a loop,
each resource tagged with the number of its transaction, and announces each transaction before
handing it to the store. The test kills it several times, each new writer resuming on the same
file: half of the kills come at a random moment during a transaction (spread over its length:
validating, indexing, writing), the other half the moment the transaction's commit starts to
reach the write-ahead log, the most delicate instant. Then it checks the database.
"""

from __future__ import annotations

import os
import random
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hub.store import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("_crash_writer.py")
TXN_SYSTEM = "https://hub.test/txn"
SIZE = 1500
"""Resources per transaction: half Patients, half Encounters referring to them."""
KILLS = 6
TIMEOUT = 30.0


class Writer:
    """A running `_crash_writer.py` and what it has said."""

    def __init__(self, path: Path, first: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WRITER), str(path), str(first), str(SIZE)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        """Every line it wrote."""
        self._unread: list[str] = []
        self._pending = b""

    def _take_lines(self) -> None:
        *complete, self._pending = self._pending.split(b"\n")
        lines = [line.decode() for line in complete]
        self.lines += lines
        self._unread += lines

    def expect(self, word: str) -> tuple[int, float]:
        """Wait for the next line `word n` (or `word`); return n and when it was read."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            self._take_lines()
            while self._unread:
                parts = self._unread.pop(0).split()
                if parts[0] == word:
                    return (int(parts[1]) if len(parts) > 1 else -1), time.monotonic()
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"the writer did not say {word!r}: {self.lines}"
            readable, _, _ = select.select([self.process.stdout], [], [], remaining)
            if readable:
                assert self.process.stdout is not None
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    self.process.wait()
                    assert self.process.stderr is not None
                    raise AssertionError(
                        f"the writer stopped by itself: {self.process.stderr.read().decode()}"
                    )
                self._pending += chunk

    def kill(self) -> None:
        self.process.kill()  # SIGKILL
        self.process.wait()
        assert self.process.returncode == -9
        assert self.process.stdout is not None and self.process.stderr is not None
        self._pending += self.process.stdout.read()
        self._take_lines()
        self.process.stdout.close()
        self.process.stderr.close()

    def said(self, word: str) -> set[int]:
        return {int(line.split()[1]) for line in self.lines if line.split()[0] == word}


def wal_state(path: Path) -> tuple[int, int]:
    stat = os.stat(f"{path}-wal")
    return stat.st_size, stat.st_mtime_ns


def kill_when_the_commit_reaches_the_wal(writer: Writer, path: Path) -> None:
    before = wal_state(path)
    deadline = time.monotonic() + TIMEOUT
    while wal_state(path) == before:
        assert time.monotonic() < deadline, "the transaction never reached the WAL"
    writer.kill()


def search_all(store: SQLiteStore, resource_type: str, n: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = store.search(
            resource_type,
            [("identifier", f"{TXN_SYSTEM}|{n}"), ("_count", "1000"), ("_offset", str(len(found)))],
        )
        found += page.matches
        if not page.has_next:
            return found


def test_a_writer_killed_mid_transaction_leaves_each_transaction_wholly_there_or_absent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fhir.sqlite"
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    print(f"random seed {seed}")  # shown if the test fails, to replay the same kills
    fractions = [(k + rng.random()) / (KILLS // 2) for k in range(KILLS // 2)]
    plans: list[float | None] = [*fractions, *[None] * (KILLS - len(fractions))]
    rng.shuffle(plans)

    announced: set[int] = set()
    committed: set[int] = set()
    killed_in_flight: list[int] = []
    next_transaction = 0
    for plan in plans:
        writer = Writer(path, next_transaction)
        try:
            writer.expect("ready")
            # Two whole transactions first: how long one takes once the process is warm.
            for _ in range(2):
                _, started = writer.expect("begin")
                _, finished = writer.expect("commit")
            duration = finished - started
            writer.expect("begin")
            if plan is None:
                kill_when_the_commit_reaches_the_wal(writer, path)
            else:
                time.sleep(plan * duration)
                writer.kill()
        finally:
            if writer.process.poll() is None:
                writer.kill()
        print(f"kill {plan=}: {writer.lines}")
        announced |= writer.said("begin")
        committed |= writer.said("commit")
        if max(writer.said("begin")) not in writer.said("commit"):
            killed_in_flight.append(max(writer.said("begin")))
        next_transaction = max(announced) + 1

    assert len(killed_in_flight) >= KILLS - 1, "the kills did not come mid-transaction"

    # The database is intact...
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    with SQLiteStore(path) as store:
        # ...and holds every transaction wholly or not at all, each committed one wholly.
        present = set()
        for n in sorted(announced):
            patients = search_all(store, "Patient", n)
            encounters = search_all(store, "Encounter", n)
            counts = (len(patients), len(encounters))
            assert counts in ((0, 0), (SIZE // 2, SIZE // 2)), f"transaction {n}: {counts}"
            if counts == (0, 0):
                continue
            present.add(n)
            for resource in patients + encounters:
                assert store.read(resource["resourceType"], resource["id"]) == resource
            patient_refs = {f"Patient/{p['id']}" for p in patients}
            assert {e["subject"]["reference"] for e in encounters} == patient_refs
        assert committed <= present
        tagged = store.search("Patient", [("identifier", f"{TXN_SYSTEM}|"), ("_summary", "count")])
        assert tagged.total == len(present) * SIZE // 2  # nothing outside the transactions

        # ...and still takes writes.
        sys.path.insert(0, str(WRITER.parent))
        try:
            from _crash_writer import transaction
        finally:
            sys.path.remove(str(WRITER.parent))
        after = max(announced) + 1
        response = store.transaction(transaction(after, 10))
        assert all(e["response"]["status"].startswith("201") for e in response["entry"])
        assert len(search_all(store, "Patient", after)) == 5
        created = store.create({"resourceType": "Patient", "gender": "unknown"})
        assert store.read("Patient", created.id)["gender"] == "unknown"
