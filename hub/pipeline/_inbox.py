"""The durable inbox: every record a listener receives is stored here before it is
acknowledged, then claimed by workers lane by lane, and ends applied, withheld or failed.

A lane is one mapping (one source's record kind), or one of LANES_PER_MAPPING parts of it when
the mapping says what must stay in order (`order_by`, e.g. the patient: `lane_of`): its items
are handed out in the order they arrived, to one worker at a time, which holds the lane's lease
while it works; different lanes go to different workers. An item whose
retry is not due yet holds up the rest of its lane (a source's order must hold while a peer
is down); an item waiting for something else to arrive (parked) and finished items do not.

Lifecycle of an item:

    add ──▶ pending ──claim──▶ processing ──finish──▶ applied | withheld | failed
              ▲  ▲                 │ │                                    │
              │  └── retry_later ──┘ └── park ──▶ waiting ── wake / recheck ┐
              │                                                             │
              └──────────── replay (after a fix) ◀──── failed, withheld ◀───┘

An item unreadable on receipt (`NewItem.error`) is stored straight as failed: a dead letter.
Duplicates (the same HTTP retry, a re-sent HL7 message) are counted on the original and not
stored again.
"""

from __future__ import annotations

import builtins
import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import orjson

from hub.state import Database, Transaction


class ItemStatus(StrEnum):
    PENDING = "pending"
    """Waiting to be claimed, once `next_attempt_ms` has come."""
    PROCESSING = "processing"
    """Claimed by the worker holding its lane's lease."""
    APPLIED = "applied"
    WITHHELD = "withheld"
    """Read and understood, deliberately not written (e.g. no consent, out of scope)."""
    WAITING = "waiting"
    """Parked until something it needs arrives (`wait_key`), or `next_attempt_ms` anyway."""
    FAILED = "failed"
    """A dead letter: needs a person (a mapping fix, then `hub replay`)."""


FINISHED = (ItemStatus.APPLIED, ItemStatus.WITHHELD, ItemStatus.FAILED)


@dataclass(frozen=True)
class NewItem:
    """One record as a listener received it."""

    mapping: str
    """The mapping that reads it, e.g. "slam-epr/adt"."""
    channel: str
    """How it came: "mllp", "http" or "file"."""
    origin: str
    """Where it came from: "adt.hl7", "MLLP 127.0.0.1:50412", "POST /ingest/vcse/clients"."""
    line: int
    """Where the record starts in its origin (1-based)."""
    raw: bytes
    """Bytes the mapping's source format reads back as exactly this record."""
    message_id: str | None = None
    """HL7 MSH-10 (the sender's id for the message); None for other formats."""
    error: str | None = None
    """Set when it could not be read on receipt: stored as failed, never processed."""
    lane: str | None = None
    """The queue it is applied in order within (`lane_of`); None: the mapping's own."""
    mapped: bytes | None = None
    """The mapping's outcome as the listener worked it out (`MappedRecord.to_bytes`), so that
    the worker need not map the record again; dropped by `replay`, which maps afresh."""


@dataclass(frozen=True)
class Receipt:
    id: int
    duplicate: bool
    """True: it had arrived before; `id` and `status` are the original's."""
    status: ItemStatus


@dataclass(frozen=True)
class InboxItem:
    id: int
    mapping: str
    channel: str
    origin: str
    line: int
    raw: bytes
    message_id: str | None
    content_hash: str
    """sha256 of raw, hex."""
    received_ms: int
    status: ItemStatus
    attempts: int
    """Failed attempts so far: each retry_later, and a finish as failed."""
    last_error: str | None
    """Why it was last retried, parked or failed."""
    next_attempt_ms: int
    wait_key: str | None
    outcome: dict[str, Any] | None
    updated_ms: int
    duplicates: int
    """How many times the same item arrived again."""
    lane: str
    """The queue it is applied in order within: its mapping, or a part of it."""
    mapped: bytes | None = None
    """The listener's mapping outcome, when it kept one."""
    claims: int = 0
    """How many times a worker has claimed it: more than once, an earlier worker may have
    written it to the store before it could say so here."""


_MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE inbox_items (
            id {id},
            mapping TEXT NOT NULL,
            channel TEXT NOT NULL,
            origin TEXT NOT NULL,
            line INTEGER NOT NULL,
            raw {blob} NOT NULL,
            message_id TEXT,
            content_hash TEXT NOT NULL,
            dedupe_key TEXT NOT NULL,
            received_ms BIGINT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            next_attempt_ms BIGINT NOT NULL,
            wait_key TEXT,
            outcome TEXT,
            updated_ms BIGINT NOT NULL,
            duplicates INTEGER NOT NULL DEFAULT 0
        )""",
        # dedupe_key: "id:" + message id when the format has one, else "sha256:" + hash.
        "CREATE UNIQUE INDEX inbox_items_dedupe ON inbox_items (mapping, dedupe_key)",
        # Listing and counting by status (dead letters, `hub inbox`).
        "CREATE INDEX inbox_items_status ON inbox_items (status, mapping, id)",
        # A lane's unfinished items in order: small, however long the history grows.
        "CREATE INDEX inbox_items_active ON inbox_items (mapping, id) "
        "WHERE status IN ('pending', 'processing')",
        "CREATE INDEX inbox_items_waiting ON inbox_items (mapping, next_attempt_ms) "
        "WHERE status = 'waiting'",
        "CREATE INDEX inbox_items_wait_key ON inbox_items (wait_key) WHERE wait_key IS NOT NULL",
        # One row per lane: who holds it until when, and its turn (lanes are offered least
        # recently claimed first, so one busy source cannot starve the others).
        """CREATE TABLE inbox_lanes (
            mapping TEXT PRIMARY KEY,
            worker TEXT,
            lease_until_ms BIGINT NOT NULL DEFAULT 0,
            turn BIGINT NOT NULL DEFAULT 0
        )""",
    ],
    # Lanes finer than a mapping (a mapping's `order_by`): one source's records about
    # different people are applied side by side by several workers.
    [
        "ALTER TABLE inbox_items ADD COLUMN lane TEXT",
        "UPDATE inbox_items SET lane = mapping",
        "DROP INDEX inbox_items_active",
        "DROP INDEX inbox_items_waiting",
        "CREATE INDEX inbox_items_active ON inbox_items (lane, id) "
        "WHERE status IN ('pending', 'processing')",
        "CREATE INDEX inbox_items_waiting ON inbox_items (lane, next_attempt_ms) "
        "WHERE status = 'waiting'",
        "ALTER TABLE inbox_lanes RENAME COLUMN mapping TO lane",
    ],
    # The listener's mapping outcome, handed to the worker.
    ["ALTER TABLE inbox_items ADD COLUMN mapped {blob}"],
    ["ALTER TABLE inbox_items ADD COLUMN claims INTEGER NOT NULL DEFAULT 0"],
]

_COLUMNS = (
    "id, mapping, channel, origin, line, raw, message_id, content_hash, received_ms, status, "
    "attempts, last_error, next_attempt_ms, wait_key, outcome, updated_ms, duplicates, lane, "
    "mapped, claims"
)
# Written exactly as in the partial index's WHERE, so that SQLite's planner can use it.
_ACTIVE = "status IN ('pending', 'processing')"
LANES_PER_MAPPING = 16
"""Parts a mapping with `order_by` is split into: more than the workers a hub runs, so that all
of them can work on one busy source."""

_CHUNK = 500
"""Values per IN (...) list: well under either database's limit on parameters."""


def lane_of(mapping: str, order_key: str | None) -> str:
    """The lane of a record of `mapping` whose `order_by` value is `order_key`: records with
    the same value share one, so they are applied in the order they arrived."""
    if not order_key:
        return mapping
    digest = hashlib.blake2b(order_key.encode(), digest_size=4).digest()
    return f"{mapping}#{int.from_bytes(digest) % LANES_PER_MAPPING}"


class Inbox:
    """The inbox in the hub's state database; safe to share between threads and processes."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        self._lanes: set[str] = set()
        """Lanes known to have their row already, to skip inserting it on every add."""
        db.migrate("inbox", _MIGRATIONS)

    def add(self, items: Sequence[NewItem]) -> builtins.list[Receipt]:
        """Store `items` in one transaction, durable when this returns: acknowledge after.

        A duplicate (same mapping and message id, or without a message id the same bytes),
        also within `items`, is not stored again: its receipt names the original.
        """
        now = self._now()
        with self._db.transaction() as tx:
            receipts = [self._add_one(tx, item, now) for item in items]
            self._count_duplicates(tx, [r.id for r in receipts if r.duplicate])
            lanes = {item.lane or item.mapping for item in items}
            for lane in sorted(lanes - self._lanes):
                tx.execute(
                    "INSERT INTO inbox_lanes (lane) VALUES (?) ON CONFLICT (lane) DO NOTHING",
                    (lane,),
                )
        self._lanes.update(lanes)
        return receipts

    def claim(
        self, worker: str, *, limit: int = 100, lease_seconds: float = 60.0
    ) -> builtins.list[InboxItem]:
        """Lease one lane with due work to `worker` and return up to `limit` of its items, in
        order, marked processing; [] when nothing is due.

        Due: pending items whose time has come and, re-delivered, processing items of a lane
        whose lease expired (a crashed worker's). A pending item not due yet stops its lane
        there. `worker` names one claiming loop (one thread). Claiming again hands back what
        the worker's previous claim left unfinished (pending again, in place), so a worker
        handles its batch in order and, after a retry_later, stops and claims again.
        """
        now = self._now()
        with self._db.transaction() as tx:
            self._release(tx, worker, now)
            for lane in self._free_lanes(tx, now):
                items = self._due_items(tx, lane, now, limit)
                if items:
                    return self._lease(tx, worker, lane, items, now, lease_seconds)
        return []

    def renew(self, worker: str, *, lease_seconds: float = 60.0) -> int:
        """Extend `worker`'s lease, for a batch that takes longer than expected; returns the
        number of lanes it holds."""
        now = self._now()
        with self._db.transaction() as tx:
            return tx.execute(
                "UPDATE inbox_lanes SET lease_until_ms = ? WHERE worker = ?",
                (now + _ms(lease_seconds), worker),
            ).rowcount

    def finish(
        self,
        item_id: int,
        status: ItemStatus | str,
        *,
        outcome: dict[str, Any] | None = None,
        error: str | None = None,
        wait_key: str | None = None,
    ) -> None:
        """End an item: applied, withheld or failed (a dead letter, `error` saying why).

        A withheld item with a `wait_key` is woken like a waiting one when that key is written
        (a VCSE row withheld for want of consent, applied once the consent is recorded)."""
        status = ItemStatus(status)
        if status not in FINISHED:
            raise ValueError(f"finish() takes applied, withheld or failed, not {status}")
        if wait_key is not None and status is not ItemStatus.WITHHELD:
            raise ValueError("only a withheld item can wait to be woken")
        failed = 1 if status is ItemStatus.FAILED else 0
        self._update(
            item_id,
            "status = ?, outcome = ?, last_error = ?, wait_key = ?, attempts = attempts + ?",
            (status.value, _json(outcome), error, wait_key, failed),
        )

    def finish_applied(self, outcomes: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """`finish(id, "applied", outcome=...)` for many items in one statement: how a worker
        ends a group of records, inside the transaction that records them."""
        if not outcomes:
            return
        now = self._now()
        with self._db.transaction() as tx:
            updated = tx.executemany(
                "UPDATE inbox_items SET status = 'applied', outcome = ?, last_error = NULL, "
                "wait_key = NULL, updated_ms = ? WHERE id = ?",
                # In id order, the one order every transaction here takes rows in.
                [(_json(outcome), now, item_id) for item_id, outcome in sorted(outcomes)],
            ).rowcount
            if updated != len(outcomes):  # all or none
                raise KeyError(f"no inbox item among {sorted(i for i, _ in outcomes)}")

    def retry_later(self, item_id: int, error: str, delay_seconds: float) -> None:
        """Back to pending after a transient failure, due in `delay_seconds`; until then the
        rest of its lane waits behind it."""
        self._update(
            item_id,
            "status = 'pending', attempts = attempts + 1, last_error = ?, wait_key = NULL, "
            "next_attempt_ms = ?",
            (error, self._now() + _ms(delay_seconds)),
        )

    def park(self, item_id: int, wait_key: str, reason: str, recheck_seconds: float) -> None:
        """Set an item aside until `wait_key` is woken (e.g. "Patient|https://sys|value"),
        or after `recheck_seconds` anyway, so that a missed wake never strands it. It does
        not hold up its lane."""
        self._update(
            item_id,
            "status = 'waiting', wait_key = ?, last_error = ?, next_attempt_ms = ?",
            (wait_key, reason, self._now() + _ms(recheck_seconds)),
        )

    def wake(self, wait_keys: Iterable[str]) -> int:
        """Make the items waiting for any of `wait_keys` (and those withheld until one of them
        is written) pending and due now; return how many."""
        keys = sorted(set(wait_keys))
        if not keys:
            return 0
        now = self._now()
        woken = 0
        with self._db.transaction() as tx:
            for chunk in _chunks(keys):
                for status in ("waiting", "withheld"):
                    ids = self._lock_ids(
                        tx,
                        f"status = '{status}' AND wait_key IN ({_marks(chunk)})",
                        chunk,
                    )
                    woken += self._make_due(tx, ids, status, now)
        return woken

    def release(self, worker: str) -> None:
        """Drop `worker`'s lane leases; its unfinished items become pending again, in place.
        Call it when a worker stops, so its lanes need not wait for the lease to expire."""
        with self._db.transaction() as tx:
            self._release(tx, worker, self._now())

    def replay(
        self,
        ids: Sequence[int] | None = None,
        *,
        statuses: Iterable[ItemStatus | str] = (ItemStatus.FAILED,),
        mapping: str | None = None,
    ) -> int:
        """Requeue finished items (by default the failed ones) as pending, due now, attempts
        0: a re-run after a mapping fix. `ids` and `mapping` narrow it; returns how many."""
        wanted = sorted({ItemStatus(s).value for s in statuses})
        if not wanted or any(s not in FINISHED for s in wanted):
            raise ValueError(f"replay() takes finished statuses {list(FINISHED)}, not {wanted}")
        where = f"status IN ({_marks(wanted)})"
        params: builtins.list[Any] = list(wanted)
        if mapping is not None:
            where += " AND mapping = ?"
            params.append(mapping)
        now = self._now()
        with self._db.transaction() as tx:
            if ids is None:
                return self._requeue(tx, where, params, now)
            return sum(
                self._requeue(tx, f"{where} AND id IN ({_marks(chunk)})", [*params, *chunk], now)
                for chunk in _chunks(sorted(set(ids)))
            )

    def get(self, item_id: int) -> InboxItem | None:
        with self._db.transaction(readonly=True) as tx:
            row = tx.execute(
                f"SELECT {_COLUMNS} FROM inbox_items WHERE id = ?", (item_id,)
            ).fetchone()
        return _item(row) if row else None

    def counts(self) -> dict[str, dict[str, int]]:
        """How many items each mapping has in each status."""
        counts: dict[str, dict[str, int]] = {}
        with self._db.transaction(readonly=True) as tx:
            rows = tx.execute(
                "SELECT mapping, status, count(*) FROM inbox_items GROUP BY mapping, status"
            ).fetchall()
        for mapping, status, count in rows:
            counts.setdefault(mapping, {})[status] = count
        return counts

    def next_due_ms(self) -> int | None:
        """When the earliest pending item is due (ms since the epoch); None when none is."""
        with self._db.transaction(readonly=True) as tx:
            found = tx.execute(
                "SELECT min(next_attempt_ms) FROM inbox_items WHERE status = 'pending'"
            ).fetchone()
        return found[0] if found else None

    def pending_count(self) -> int:
        """Items still to be processed: pending (due or not) and processing."""
        with self._db.transaction(readonly=True) as tx:
            return tx.execute(f"SELECT count(*) FROM inbox_items WHERE {_ACTIVE}").fetchone()[0]

    def list(
        self,
        status: ItemStatus | str | None = None,
        mapping: str | None = None,
        limit: int = 50,
        offset: int = 0,
        *,
        with_warnings: bool = False,
    ) -> builtins.list[InboxItem]:
        """Items, newest first, optionally of one status and one mapping; `with_warnings`:
        only those whose outcome reports warnings (mapped, with something worth a look)."""
        where: builtins.list[str] = ["1 = 1"]
        params: builtins.list[Any] = []
        if with_warnings:
            where.append("outcome LIKE ?")
            params.append('%"warnings":%')
        if status is not None:
            where.append("status = ?")
            params.append(ItemStatus(status).value)
        if mapping is not None:
            where.append("mapping = ?")
            params.append(mapping)
        with self._db.transaction(readonly=True) as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM inbox_items WHERE {' AND '.join(where)} "
                "ORDER BY id DESC LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return [_item(row) for row in rows]

    # -- the parts -----------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def _add_one(self, tx: Transaction, item: NewItem, now: int) -> Receipt:
        content_hash = hashlib.sha256(item.raw).hexdigest()
        # An empty MSH-10 is no id: keyed on it, every such message would be one duplicate.
        key = f"id:{item.message_id}" if item.message_id else f"sha256:{content_hash}"
        status = ItemStatus.FAILED if item.error is not None else ItemStatus.PENDING
        row = tx.execute(
            "INSERT INTO inbox_items (mapping, channel, origin, line, raw, message_id, "
            "content_hash, dedupe_key, received_ms, status, last_error, next_attempt_ms, "
            "updated_ms, lane, mapped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (mapping, dedupe_key) DO NOTHING RETURNING id",
            (
                item.mapping,
                item.channel,
                item.origin,
                item.line,
                item.raw,
                item.message_id,
                content_hash,
                key,
                now,
                status.value,
                item.error,
                now,
                now,
                item.lane or item.mapping,
                item.mapped,
            ),
        ).fetchone()
        if row is not None:
            return Receipt(row[0], duplicate=False, status=status)
        original = tx.execute(
            "SELECT id, status FROM inbox_items WHERE mapping = ? AND dedupe_key = ?",
            (item.mapping, key),
        ).fetchone()
        return Receipt(original[0], duplicate=True, status=ItemStatus(original[1]))

    def _count_duplicates(self, tx: Transaction, ids: builtins.list[int]) -> None:
        # Once per original and in id order, after all the inserts: rows are locked in the
        # same order as claim() locks them, so two transactions cannot wait on each other.
        counted: dict[int, int] = {}
        for item_id in ids:
            counted[item_id] = counted.get(item_id, 0) + 1
        tx.executemany(
            "UPDATE inbox_items SET duplicates = duplicates + ? WHERE id = ?",
            [(n, item_id) for item_id, n in sorted(counted.items())],
        )

    def _free_lanes(self, tx: Transaction, now: int) -> Iterable[str]:
        """Lanes no live worker holds, least recently claimed first; on PostgreSQL each one
        locked (skipping those another claim is looking at) before it is offered."""
        skip_locked = " FOR UPDATE SKIP LOCKED" if tx.dialect == "postgresql" else ""
        after: tuple[int, str] = (-1, "")
        while True:
            row = tx.execute(
                "SELECT turn, lane FROM inbox_lanes "
                "WHERE lease_until_ms <= ? AND (turn, lane) > (?, ?) "
                f"ORDER BY turn, lane LIMIT 1{skip_locked}",
                (now, *after),
            ).fetchone()
            if row is None:
                return
            after = (row[0], row[1])
            yield row[1]

    def _due_items(
        self, tx: Transaction, lane: str, now: int, limit: int
    ) -> builtins.list[InboxItem]:
        """The lane's first items that are due, in order, up to the first that is not."""
        rechecked = self._lock_ids(
            tx, "lane = ? AND status = 'waiting' AND next_attempt_ms <= ?", (lane, now)
        )
        self._make_due(tx, rechecked, "waiting", now)
        head = tx.execute(
            f"SELECT status, next_attempt_ms FROM inbox_items WHERE lane = ? AND {_ACTIVE} "
            "ORDER BY id LIMIT 1",
            (lane,),
        ).fetchone()
        if head is None or not _due(head[0], head[1], now):
            return []
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM inbox_items WHERE lane = ? AND {_ACTIVE} ORDER BY id LIMIT ?",
            (lane, limit),
        ).fetchall()
        items: builtins.list[InboxItem] = []
        for item in map(_item, rows):
            if not _due(item.status, item.next_attempt_ms, now):
                break
            items.append(item)
        return items

    def _lease(
        self,
        tx: Transaction,
        worker: str,
        lane: str,
        items: builtins.list[InboxItem],
        now: int,
        lease_seconds: float,
    ) -> builtins.list[InboxItem]:
        tx.execute(
            "UPDATE inbox_lanes SET worker = ?, lease_until_ms = ?, "
            "turn = (SELECT max(turn) + 1 FROM inbox_lanes) WHERE lane = ?",
            (worker, now + _ms(lease_seconds), lane),
        )
        tx.executemany(
            "UPDATE inbox_items SET status = 'processing', updated_ms = ?, claims = claims + 1 "
            "WHERE id = ?",
            [(now, item.id) for item in items],
        )
        return [
            replace(item, status=ItemStatus.PROCESSING, updated_ms=now, claims=item.claims + 1)
            for item in items
        ]

    def _release(self, tx: Transaction, worker: str, now: int) -> None:
        # The lanes first, taking their rows: a lane another worker has meanwhile taken over
        # (our lease expired) no longer names us, and its items are left alone.
        lanes = tx.execute(
            "UPDATE inbox_lanes SET worker = NULL, lease_until_ms = 0 WHERE worker = ? "
            "RETURNING lane",
            (worker,),
        ).fetchall()
        for (lane,) in lanes:
            ids = self._lock_ids(tx, f"lane = ? AND {_ACTIVE} AND status = 'processing'", (lane,))
            tx.executemany(
                "UPDATE inbox_items SET status = 'pending', updated_ms = ? WHERE id = ?",
                [(now, item_id) for item_id in ids],
            )

    def _lock_ids(self, tx: Transaction, where: str, params: Sequence[Any]) -> builtins.list[int]:
        """Ids of the items matching `where`, in id order; on PostgreSQL their rows locked in
        that order, the one order every transaction here locks items in (no deadlocks)."""
        for_update = " FOR UPDATE" if tx.dialect == "postgresql" else ""
        rows = tx.execute(
            f"SELECT id FROM inbox_items WHERE {where} ORDER BY id{for_update}", params
        ).fetchall()
        return [row[0] for row in rows]

    def _make_due(self, tx: Transaction, ids: builtins.list[int], status: str, now: int) -> int:
        """Items `ids`, if still in `status`, pending and due now."""
        cursor = tx.executemany(
            "UPDATE inbox_items SET status = 'pending', wait_key = NULL, next_attempt_ms = ?, "
            "updated_ms = ? WHERE id = ? AND status = ?",
            [(now, now, item_id, status) for item_id in ids],
        )
        return max(cursor.rowcount, 0) if ids else 0

    def _requeue(self, tx: Transaction, where: str, params: Sequence[Any], now: int) -> int:
        return tx.execute(
            "UPDATE inbox_items SET status = 'pending', attempts = 0, wait_key = NULL, "
            f"mapped = NULL, next_attempt_ms = ?, updated_ms = ? WHERE {where}",
            (now, now, *params),
        ).rowcount

    def _update(self, item_id: int, assignments: str, params: Sequence[Any]) -> None:
        with self._db.transaction() as tx:
            cursor = tx.execute(
                f"UPDATE inbox_items SET {assignments}, updated_ms = ? WHERE id = ?",
                (*params, self._now(), item_id),
            )
            if cursor.rowcount == 0:
                raise KeyError(f"no inbox item {item_id}")


def _due(status: str, next_attempt_ms: int, now: int) -> bool:
    # A processing item in a lane being claimed was left by a worker whose lease has gone.
    return status == ItemStatus.PROCESSING or next_attempt_ms <= now


def _item(row: Sequence[Any]) -> InboxItem:
    values = list(row)
    values[5] = bytes(values[5])  # PostgreSQL may give a memoryview
    values[9] = ItemStatus(values[9])
    values[14] = orjson.loads(values[14]) if values[14] is not None else None
    values[18] = bytes(values[18]) if values[18] is not None else None
    return InboxItem(*values)


def _json(value: dict[str, Any] | None) -> str | None:
    return orjson.dumps(value).decode() if value is not None else None


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
