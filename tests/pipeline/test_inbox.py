"""The durable inbox: what it stores, what it hands out, in which order, to whom, and when.

Every test runs on SQLite and on PostgreSQL (`state_db`). Time is a clock the test moves
(`Clock`), except in the tests with several processes, which run in real time.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from collections import defaultdict

import psycopg
import pytest

from hub.pipeline import LANES_PER_MAPPING, Inbox, InboxItem, ItemStatus, NewItem, Receipt, lane_of
from hub.state import Database, open_database

SPAWN = multiprocessing.get_context("spawn")
PROCESS_TIMEOUT = 120
START = 1_800_000_000.0  # seconds: a fixed "now" for the tests that move the clock


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def inbox(state_db: Database, clock: Clock) -> Inbox:
    return Inbox(state_db, clock=clock)


def item(n: int, mapping: str = "slam-epr/adt", **fields: object) -> NewItem:
    """Record number `n` of a file feed (its bytes differ from every other n)."""
    values: dict[str, object] = {
        "mapping": mapping,
        "channel": "file",
        "origin": "adt.hl7",
        "line": n,
        "raw": f"record {n}".encode(),
    }
    values.update(fields)
    return NewItem(**values)  # type: ignore[arg-type]


def ids(items: list[InboxItem]) -> list[int]:
    return [i.id for i in items]


def add_lane(inbox: Inbox, mapping: str, count: int) -> list[int]:
    return [r.id for r in inbox.add([item(n, mapping) for n in range(1, count + 1)])]


# -- add ---------------------------------------------------------------------------------------


def test_add_stores_each_item_pending_and_due_at_once(inbox: Inbox) -> None:
    raw = b"MSH|^~\\&|EPR|SLAM|HUB|NHS|20250101120000||ADT^A01|MSG0001|P|2.4\r"
    [receipt] = inbox.add(
        [NewItem("slam-epr/adt", "mllp", "MLLP 127.0.0.1:50412", 1, raw, message_id="MSG0001")]
    )
    assert receipt == Receipt(receipt.id, duplicate=False, status=ItemStatus.PENDING)
    stored = inbox.get(receipt.id)
    assert stored == InboxItem(
        id=receipt.id,
        mapping="slam-epr/adt",
        channel="mllp",
        origin="MLLP 127.0.0.1:50412",
        line=1,
        raw=raw,
        message_id="MSG0001",
        content_hash=hashlib.sha256(raw).hexdigest(),
        received_ms=int(START * 1000),
        status=ItemStatus.PENDING,
        attempts=0,
        last_error=None,
        next_attempt_ms=int(START * 1000),
        wait_key=None,
        outcome=None,
        updated_ms=int(START * 1000),
        duplicates=0,
        lane="slam-epr/adt",  # no lane given: the mapping's own
    )
    assert inbox.get(receipt.id + 1000) is None


def test_receipts_come_in_the_order_of_the_items_with_rising_ids(inbox: Inbox) -> None:
    receipts = inbox.add([item(n) for n in range(1, 6)])
    assert [r.duplicate for r in receipts] == [False] * 5
    assert ids([inbox.get(r.id) for r in receipts]) == sorted(r.id for r in receipts)  # type: ignore[misc]
    assert [inbox.get(r.id).line for r in receipts] == [1, 2, 3, 4, 5]  # type: ignore[union-attr]


def test_an_hl7_message_sent_again_is_a_duplicate_of_the_original(inbox: Inbox) -> None:
    [original] = inbox.add([item(1, message_id="MSG0001")])
    # The sender re-sends after a lost ACK: same control id, bytes may differ (a new MSH-7).
    [again] = inbox.add([item(2, message_id="MSG0001")])
    assert again == Receipt(original.id, duplicate=True, status=ItemStatus.PENDING)
    assert inbox.get(original.id).duplicates == 1  # type: ignore[union-attr]
    assert inbox.get(original.id).raw == b"record 1"  # type: ignore[union-attr]
    assert inbox.counts() == {"slam-epr/adt": {"pending": 1}}


def test_the_same_bytes_without_a_message_id_are_a_duplicate(inbox: Inbox) -> None:
    [original] = inbox.add([item(1, channel="http")])
    [again] = inbox.add([item(1, channel="http", origin="POST /ingest/vcse/clients")])
    [other_mapping] = inbox.add([item(1, "vcse/clients")])
    [other_bytes] = inbox.add([item(2)])
    assert again.duplicate and again.id == original.id
    assert not other_mapping.duplicate  # dedupe is per mapping
    assert not other_bytes.duplicate
    assert inbox.get(original.id).duplicates == 1  # type: ignore[union-attr]


def test_duplicates_within_one_batch_count_on_the_first(inbox: Inbox) -> None:
    receipts = inbox.add([item(1), item(2), item(1), item(1, message_id=None)])
    first = receipts[0].id
    assert [(r.id == first, r.duplicate) for r in receipts] == [
        (True, False),
        (False, False),
        (True, True),
        (True, True),
    ]
    assert inbox.get(first).duplicates == 2  # type: ignore[union-attr]
    assert inbox.pending_count() == 2


def test_an_empty_message_id_is_no_id(inbox: Inbox) -> None:
    receipts = inbox.add([item(1, message_id=""), item(2, message_id="")])
    assert [r.duplicate for r in receipts] == [False, False]


def test_a_duplicates_receipt_tells_how_the_original_ended(inbox: Inbox) -> None:
    [original] = inbox.add([item(1, message_id="A1")])
    inbox.claim("w")
    inbox.finish(original.id, ItemStatus.APPLIED)
    [again] = inbox.add([item(1, message_id="A1")])
    assert again == Receipt(original.id, duplicate=True, status=ItemStatus.APPLIED)


def test_an_item_unreadable_on_receipt_is_stored_as_a_dead_letter(inbox: Inbox) -> None:
    [bad, good] = inbox.add([item(1, error="line 1: not HL7 (no MSH segment)"), item(2)])
    assert bad.status == ItemStatus.FAILED
    dead = inbox.get(bad.id)
    assert dead is not None
    assert (dead.status, dead.last_error) == ("failed", "line 1: not HL7 (no MSH segment)")
    assert ids(inbox.claim("w")) == [good.id]  # never processed


def test_add_is_one_transaction(inbox: Inbox) -> None:
    broken = NewItem("slam-epr/adt", "file", "adt.hl7", 2, None)  # type: ignore[arg-type]
    with pytest.raises((TypeError, sqlite3.IntegrityError, psycopg.errors.NotNullViolation)):
        inbox.add([item(1), broken])
    assert inbox.counts() == {}


# -- claim: lanes, order, leases ---------------------------------------------------------------


def test_claim_hands_out_one_lanes_items_in_order(inbox: Inbox) -> None:
    adt = add_lane(inbox, "slam-epr/adt", 5)
    batch = inbox.claim("w1", limit=3)
    assert ids(batch) == adt[:3]
    assert {i.status for i in batch} == {ItemStatus.PROCESSING}
    assert inbox.get(adt[0]).status == "processing"  # type: ignore[union-attr]
    assert inbox.get(adt[3]).status == "pending"  # type: ignore[union-attr]


def test_claim_returns_nothing_when_nothing_is_due(inbox: Inbox) -> None:
    assert inbox.claim("w1") == []
    [only] = add_lane(inbox, "a", 1)
    inbox.claim("w1")
    inbox.finish(only, "applied")
    assert inbox.claim("w1") == []


def test_a_lane_belongs_to_one_worker_while_its_lease_lasts(inbox: Inbox) -> None:
    adt = add_lane(inbox, "adt", 4)
    assert ids(inbox.claim("w1", limit=2, lease_seconds=60)) == adt[:2]
    assert inbox.claim("w2") == []  # adt is w1's, and no other lane has work
    vcse = add_lane(inbox, "vcse", 2)
    assert ids(inbox.claim("w2")) == vcse


def test_a_crashed_workers_items_are_delivered_again_when_its_lease_expires(
    inbox: Inbox, clock: Clock
) -> None:
    adt = add_lane(inbox, "adt", 4)
    inbox.claim("w1", limit=2, lease_seconds=30)
    inbox.finish(adt[0], "applied")
    # w1 dies holding adt[1]. Until its lease runs out the lane waits; then adt[1] comes
    # first again, in its place.
    clock.advance(29)
    assert inbox.claim("w2") == []
    clock.advance(2)
    again = inbox.claim("w2")
    assert ids(again) == adt[1:]
    # Claims are counted: the one w1 may have written before dying is on its second.
    assert [item.claims for item in again] == [2, 1, 1]
    assert [inbox.get(i).claims for i in adt[1:]] == [2, 1, 1]  # type: ignore[union-attr]


def test_claiming_again_hands_back_what_the_last_claim_left_unfinished(inbox: Inbox) -> None:
    adt = add_lane(inbox, "adt", 4)
    inbox.claim("w1", limit=3)
    inbox.finish(adt[0], "applied")
    assert ids(inbox.claim("w1", limit=10)) == adt[1:]


def test_a_retry_not_yet_due_holds_up_its_lane_only(inbox: Inbox, clock: Clock) -> None:
    adt = add_lane(inbox, "adt", 3)
    inbox.claim("w1")
    inbox.retry_later(adt[0], "store unavailable (503)", 30)
    retried = inbox.get(adt[0])
    assert retried is not None
    assert (retried.status, retried.attempts, retried.last_error) == (
        "pending",
        1,
        "store unavailable (503)",
    )
    assert retried.next_attempt_ms == int((START + 30) * 1000)
    assert inbox.claim("w1") == []  # adt[1] and adt[2] must not overtake adt[0]
    vcse = add_lane(inbox, "vcse", 1)
    assert ids(inbox.claim("w1")) == vcse  # another source is not held up
    clock.advance(30)
    assert ids(inbox.claim("w1")) == adt


def test_waiting_failed_and_finished_items_do_not_hold_up_their_lane(inbox: Inbox) -> None:
    adt = add_lane(inbox, "adt", 5)
    inbox.claim("w1", limit=3)
    inbox.park(adt[0], "Patient|https://fhir.nhs.uk/Id/nhs-number|9000000009", "no patient", 600)
    inbox.finish(adt[1], "failed", error="bad date")
    inbox.finish(adt[2], "withheld", outcome={"reason": "no consent"})
    assert ids(inbox.claim("w1")) == adt[3:]


def test_lanes_take_turns(inbox: Inbox) -> None:
    add_lane(inbox, "a", 4)
    add_lane(inbox, "b", 4)
    lanes = []
    for _ in range(4):
        batch = inbox.claim("w1", limit=2)
        lanes.append(batch[0].mapping)
        for claimed in batch:
            inbox.finish(claimed.id, "applied")
    assert lanes == ["a", "b", "a", "b"]


def test_renew_extends_a_workers_lease(inbox: Inbox, clock: Clock) -> None:
    add_lane(inbox, "adt", 2)
    inbox.claim("w1", limit=1, lease_seconds=10)
    clock.advance(8)
    assert inbox.renew("w1", lease_seconds=10) == 1
    clock.advance(8)
    assert inbox.claim("w2") == []  # still w1's
    assert inbox.renew("nobody") == 0


def test_release_frees_the_lanes_and_gives_back_the_items(inbox: Inbox) -> None:
    adt = add_lane(inbox, "adt", 3)
    inbox.claim("w1")
    inbox.finish(adt[0], "applied")
    inbox.release("w1")
    assert inbox.get(adt[1]).status == "pending"  # type: ignore[union-attr]
    assert ids(inbox.claim("w2")) == adt[1:]  # at once, no lease to wait for
    inbox.release("w1")  # w1 holds nothing now: w2's items stay w2's
    assert inbox.get(adt[1]).status == "processing"  # type: ignore[union-attr]


# -- finish, park, wake ------------------------------------------------------------------------


def test_finish_records_how_an_item_ended(inbox: Inbox, clock: Clock) -> None:
    applied, withheld, failed = add_lane(inbox, "adt", 3)
    inbox.claim("w1")
    clock.advance(1.5)
    inbox.finish(applied, ItemStatus.APPLIED, outcome={"Patient": ["p1"], "created": 2})
    inbox.finish(withheld, "withheld", outcome={"reason": "dissent recorded"})
    inbox.finish(failed, "failed", error="PID-3: no identifier")
    done = inbox.get(applied)
    assert done is not None
    assert (done.status, done.outcome, done.last_error) == (
        "applied",
        {"Patient": ["p1"], "created": 2},
        None,
    )
    assert done.updated_ms == int((START + 1.5) * 1000)
    assert inbox.get(withheld).outcome == {"reason": "dissent recorded"}  # type: ignore[union-attr]
    dead = inbox.get(failed)
    assert dead is not None
    assert (dead.status, dead.last_error, dead.attempts) == ("failed", "PID-3: no identifier", 1)


def test_finish_applied_ends_many_items_at_once_or_none(inbox: Inbox, clock: Clock) -> None:
    first, second, third = add_lane(inbox, "adt", 3)
    inbox.claim("w1")
    clock.advance(2)
    inbox.finish_applied([(second, {"n": 2}), (first, {"n": 1})])
    assert [(i.status, i.outcome) for i in map(inbox.get, (first, second))] == [  # type: ignore[union-attr]
        ("applied", {"n": 1}),
        ("applied", {"n": 2}),
    ]
    assert inbox.get(first).updated_ms == int((START + 2) * 1000)  # type: ignore[union-attr]

    with pytest.raises(KeyError, match=str(third + 1000)):
        inbox.finish_applied([(third, {"n": 3}), (third + 1000, {})])
    assert inbox.get(third).status == "processing"  # type: ignore[union-attr]


def test_finish_takes_only_final_statuses_and_known_items(inbox: Inbox) -> None:
    [only] = add_lane(inbox, "adt", 1)
    with pytest.raises(ValueError, match="applied, withheld or failed"):
        inbox.finish(only, ItemStatus.PENDING)
    with pytest.raises(ValueError):
        inbox.finish(only, "done")
    with pytest.raises(KeyError):
        inbox.finish(only + 1000, "applied")
    with pytest.raises(KeyError):
        inbox.retry_later(only + 1000, "x", 1)


def test_wake_makes_the_items_waiting_for_a_key_due_now(inbox: Inbox, clock: Clock) -> None:
    adt = add_lane(inbox, "adt", 3)
    inbox.claim("w1")
    key = "Patient|https://fhir.nhs.uk/Id/nhs-number|9000000009"
    inbox.park(adt[0], key, "waits for its patient", 600)
    inbox.park(adt[1], "Patient|https://sys|other", "waits for another patient", 600)
    inbox.finish(adt[2], "applied")
    parked = inbox.get(adt[0])
    assert parked is not None
    assert (parked.status, parked.wait_key, parked.last_error) == (
        "waiting",
        key,
        "waits for its patient",
    )
    assert inbox.claim("w1") == []
    assert inbox.wake([key, "Patient|https://sys|nobody"]) == 1
    assert inbox.wake([]) == 0
    assert ids(inbox.claim("w1")) == [adt[0]]
    assert inbox.get(adt[1]).status == "waiting"  # type: ignore[union-attr]


def test_a_parked_item_is_due_again_after_its_recheck_time(inbox: Inbox, clock: Clock) -> None:
    [parked] = add_lane(inbox, "adt", 1)
    inbox.claim("w1")
    inbox.park(parked, "Patient|https://sys|1", "waits", 120)
    clock.advance(119)
    assert inbox.claim("w1") == []
    clock.advance(1)
    assert ids(inbox.claim("w1")) == [parked]  # even though no wake ever came


# -- replay, listing, counting -----------------------------------------------------------------


def test_replay_requeues_dead_letters_due_now_with_attempts_reset(inbox: Inbox) -> None:
    adt = add_lane(inbox, "adt", 3)
    [vcse] = add_lane(inbox, "vcse", 1)
    inbox.claim("w1")
    inbox.claim("w2")
    inbox.finish(adt[0], "failed", error="bad")
    inbox.finish(adt[1], "withheld")
    inbox.finish(adt[2], "applied")
    inbox.finish(vcse, "failed", error="bad")
    assert inbox.replay(mapping="adt") == 1
    replayed = inbox.get(adt[0])
    assert replayed is not None
    assert (replayed.status, replayed.attempts) == ("pending", 0)
    assert inbox.get(vcse).status == "failed"  # type: ignore[union-attr]
    assert inbox.replay([vcse, adt[1], adt[2]]) == 1  # only vcse is failed
    assert inbox.replay([adt[1]], statuses=["withheld"]) == 1
    assert inbox.get(adt[2]).status == "applied"  # type: ignore[union-attr]
    inbox.release("w1")
    inbox.release("w2")
    assert ids(inbox.claim("w3")) == [adt[0], adt[1]]  # in their places, before adt[2]'s
    assert ids(inbox.claim("w3")) == [vcse]


def test_replay_of_everything_failed(inbox: Inbox) -> None:
    receipts = inbox.add([item(n, error="unreadable") for n in range(1, 4)])
    assert inbox.replay() == 3
    assert inbox.replay() == 0
    assert inbox.replay([]) == 0
    assert ids(inbox.claim("w1")) == [r.id for r in receipts]


def test_replay_refuses_unfinished_statuses(inbox: Inbox) -> None:
    with pytest.raises(ValueError):
        inbox.replay(statuses=["processing"])
    with pytest.raises(ValueError):
        inbox.replay(statuses=[])


def test_list_counts_and_pending_count(inbox: Inbox) -> None:
    adt = add_lane(inbox, "adt", 3)
    vcse = add_lane(inbox, "vcse", 2)
    inbox.claim("w1", limit=1)  # adt[0] processing
    inbox.finish(adt[0], "failed", error="bad")
    assert inbox.counts() == {"adt": {"failed": 1, "pending": 2}, "vcse": {"pending": 2}}
    assert inbox.pending_count() == 4
    assert ids(inbox.list()) == sorted(adt + vcse, reverse=True)
    assert ids(inbox.list(status="failed")) == [adt[0]]
    assert ids(inbox.list(status=ItemStatus.PENDING, mapping="adt")) == [adt[2], adt[1]]
    assert ids(inbox.list(limit=2, offset=1)) == [vcse[0], adt[2]]


# -- several workers at once -------------------------------------------------------------------

PROCESSED_DDL = "CREATE TABLE processed (seq {id}, item_id BIGINT NOT NULL, mapping TEXT NOT NULL)"


def test_workers_in_several_processes_apply_each_item_once_and_each_lane_in_order(
    state_db: Database,
) -> None:
    """Three processes of two worker threads each drain three lanes. Every seventh item fails
    transiently once (retried 50 ms later, holding up its lane meanwhile). Each item must be
    applied exactly once and, within each lane, in the order it arrived."""
    inbox = Inbox(state_db)
    state_db.migrate("test", [PROCESSED_DDL])
    lanes = {name: add_lane(inbox, name, 40) for name in ("adt", "vcse", "dn")}
    processes = [
        SPAWN.Process(target=_work_until_empty, args=(state_db.url, f"p{n}")) for n in range(3)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(PROCESS_TIMEOUT)
        assert process.exitcode == 0
    with state_db.transaction() as tx:
        rows = tx.execute("SELECT item_id, mapping FROM processed ORDER BY seq").fetchall()
    per_lane: dict[str, list[int]] = defaultdict(list)
    for item_id, mapping in rows:
        per_lane[mapping].append(item_id)
    assert dict(per_lane) == lanes  # each once, in order
    assert inbox.counts() == {name: {"applied": 40} for name in lanes}
    attempts = {i.id: i.attempts for i in inbox.list(limit=1000)}
    assert attempts == {i: 1 if i % 7 == 0 else 0 for ids in lanes.values() for i in ids}


def test_a_killed_workers_lane_goes_to_another_after_its_lease(state_db: Database) -> None:
    inbox = Inbox(state_db)
    adt = add_lane(inbox, "adt", 3)
    claimed = SPAWN.Event()
    doomed = SPAWN.Process(target=_claim_and_hang, args=(state_db.url, claimed))
    doomed.start()
    assert claimed.wait(PROCESS_TIMEOUT)
    assert inbox.claim("survivor") == []
    os.kill(doomed.pid, signal.SIGKILL)  # type: ignore[arg-type]
    doomed.join(PROCESS_TIMEOUT)
    deadline = time.monotonic() + 10
    while not (batch := inbox.claim("survivor")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ids(batch) == adt


def test_worker_threads_sharing_one_database_object(state_db: Database) -> None:
    inbox = Inbox(state_db)
    state_db.migrate("test", [PROCESSED_DDL])
    lanes = {name: add_lane(inbox, name, 30) for name in ("a", "b", "c", "d")}
    threads = [threading.Thread(target=_work, args=(inbox, state_db, f"t{n}")) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PROCESS_TIMEOUT)
    with state_db.transaction() as tx:
        rows = tx.execute("SELECT item_id, mapping FROM processed ORDER BY seq").fetchall()
    per_lane: dict[str, list[int]] = defaultdict(list)
    for item_id, mapping in rows:
        per_lane[mapping].append(item_id)
    assert dict(per_lane) == lanes


def _work_until_empty(url: str, name: str) -> None:
    """A process of two worker threads (run in another process)."""
    db = open_database(url)
    inbox = Inbox(db)
    threads = [threading.Thread(target=_work, args=(inbox, db, f"{name}-{n}")) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.close()


def _work(inbox: Inbox, db: Database, worker: str) -> None:
    """Claim and apply until the inbox has nothing left; every seventh item fails once."""
    while inbox.pending_count():
        batch = inbox.claim(worker, limit=5)
        if not batch:
            time.sleep(0.01)
            continue
        for claimed in batch:
            if claimed.id % 7 == 0 and claimed.attempts == 0:
                inbox.retry_later(claimed.id, "transient", 0.05)
                break  # the rest of the batch must wait behind it: claim again
            with db.transaction() as tx:
                tx.execute(
                    "INSERT INTO processed (item_id, mapping) VALUES (?, ?)",
                    (claimed.id, claimed.mapping),
                )
            inbox.finish(claimed.id, "applied")
    inbox.release(worker)


def _claim_and_hang(url: str, claimed: object) -> None:
    inbox = Inbox(open_database(url))
    assert inbox.claim("doomed", lease_seconds=3.0)
    claimed.set()  # type: ignore[attr-defined]
    time.sleep(600)


# -- lanes finer than a mapping ----------------------------------------------------------------


def test_lane_of_keeps_one_key_in_one_lane_and_spreads_the_keys() -> None:
    assert lane_of("slam-epr/adt", None) == lane_of("slam-epr/adt", "") == "slam-epr/adt"
    assert lane_of("slam-epr/adt", "RV5A000123") == lane_of("slam-epr/adt", "RV5A000123")
    lanes = {lane_of("slam-epr/adt", f"RV5A{n:06d}") for n in range(200)}
    assert len(lanes) == LANES_PER_MAPPING
    assert all(lane.startswith("slam-epr/adt#") for lane in lanes)


def test_two_workers_work_on_two_lanes_of_one_mapping_at_once(inbox: Inbox) -> None:
    one, two = "slam-epr/adt#1", "slam-epr/adt#2"
    receipts = inbox.add(
        [
            NewItem("slam-epr/adt", "file", "adt.hl7", n, f"message {n}".encode(), lane=lane)
            for n, lane in enumerate([one, two, one, two], start=1)
        ]
    )
    first = inbox.claim("worker-a")
    second = inbox.claim("worker-b")
    assert {item.lane for item in first} != {item.lane for item in second}
    assert sorted(item.id for item in first + second) == [r.id for r in receipts]
    for claimed in (first, second):
        assert len({item.lane for item in claimed}) == 1  # one lane per claim
        assert [item.id for item in claimed] == sorted(item.id for item in claimed)


def test_a_kept_mapping_outcome_is_stored_and_dropped_by_replay(inbox: Inbox) -> None:
    [receipt] = inbox.add(
        [NewItem("slam-epr/adt", "mllp", "MLLP peer", 1, b"message", mapped=b'{"version":"v1"}')]
    )
    assert inbox.get(receipt.id).mapped == b'{"version":"v1"}'  # type: ignore[union-attr]
    [claimed] = inbox.claim("worker")
    inbox.finish(claimed.id, "failed", error="mapping fixed since")
    assert inbox.replay([claimed.id]) == 1
    # Replayed after a fix: mapped afresh, never from what was kept on receipt.
    assert inbox.get(receipt.id).mapped is None  # type: ignore[union-attr]
