"""Workers: take inbox items lane by lane, map them, apply them, and say how each ended.

A failure is either transient (the FHIR server is down or busy, a concurrent change: retried
with backoff, never dropped) or permanent (the record cannot be mapped or is invalid: a dead
letter, `hub deadletters`, re-run with `hub replay` once the cause is fixed).
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import queue
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from hub.fhir import FhirError
from hub.identity import IdentityConfig, IdentityResolver
from hub.mapping import Checker, MappedRecord, Mapping, MappingConfigError, MappingSet
from hub.settings import HubSettings
from hub.sources import SourceError, SourceRecord
from hub.state import Database, open_database
from hub.store import FhirStore, open_store
from hub.validation import Profiles

from ._apply import Applied, Ready, RecordApplier, groups
from ._inbox import Inbox, InboxItem
from ._outcomes import GroupRefused, Rejected, Waiting, Withheld, is_transient

log = logging.getLogger(__name__)

WAITING_RECHECK_SECONDS = 3600.0
"""A parked item is woken when what it waits for is written; this is the fallback."""

CONFLICT_RETRIES = 10
"""A write that keeps conflicting (someone else keeps changing the resource) fails after this
many tries, so it cannot hold its lane for ever; an unreachable server is retried for ever."""

MAPPINGS_RECHECK_SECONDS = 1.0
"""How often listeners look whether a mapping changed on disk (workers look before each batch)."""

CLAIM_BATCH = 100
"""Items claimed at once: enough to keep a worker busy, few enough to finish within the lease
even against a slow remote FHIR server."""


@dataclass(frozen=True)
class PipelineParts:
    """What workers share: the store, the hub's state database, the mappings and profiles."""

    store: FhirStore
    db: Database
    inbox: Inbox
    mappings: MappingSet
    checker: Checker | None
    identity: IdentityResolver
    settings: HubSettings

    @classmethod
    def open(cls, settings: HubSettings, *, store: FhirStore | None = None) -> PipelineParts:
        db = open_database(settings.state_url)
        store = store if store is not None else open_store(settings)
        return cls(
            store=store,
            db=db,
            inbox=Inbox(db),
            mappings=MappingSet(settings.mappings_dir, recheck_seconds=MAPPINGS_RECHECK_SECONDS),
            checker=Profiles.load(settings.profiles_dir).checker(),
            identity=IdentityResolver(
                store, db, IdentityConfig.load(settings.mappings_dir / "identity.yaml")
            ),
            settings=settings,
        )

    def close(self, *, store: bool = True) -> None:
        if store:
            self.store.close()
        self.db.close()


class Worker:
    """One worker: `run_once` claims a batch from one lane and handles it in order."""

    def __init__(self, parts: PipelineParts, name: str | None = None) -> None:
        self.parts = parts
        # Unique per Worker, not per thread: a pool builds its workers in one thread, and two
        # workers under one name would take each other's claimed items.
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._applier = RecordApplier(parts.store, parts.db, parts.identity)

    def run_once(self, on_done: Callable[[InboxItem, str], None] | None = None) -> int:
        """Claim a batch from one lane and handle it in order; how many items were claimed."""
        items = self.parts.inbox.claim(
            self.name, limit=CLAIM_BATCH, lease_seconds=self.parts.settings.worker_lease_seconds
        )
        # An item the listener did not map (a replay after a mapping fix, a file row) is
        # mapped now, with the mappings as they are on disk: looking costs a walk of the
        # folder, so items the listener mapped leave it to `MappingSet.get`'s own recheck.
        if any(item.mapped is None for item in items) and self.parts.mappings.refresh():
            log.info("mappings changed on disk: compiled again")
        ready: list[Ready] = []
        for item in items:
            outcome = self._ready(item)
            if isinstance(outcome, Ready):
                ready.append(outcome)
            elif on_done is not None:
                on_done(item, outcome)
        for group in groups(ready):
            statuses = self._apply(group)
            if on_done is not None:
                for record, status in zip(group, statuses, strict=False):
                    on_done(record.item, status)
            if "pending" in statuses:
                # Retried later: the rest of the batch must wait behind it (order per lane);
                # the next claim puts them back in place.
                break
        return len(items)

    def handle(self, item: InboxItem) -> str:
        """Handle one claimed item on its own; returns the status it ends in."""
        outcome = self._ready(item)
        return self._apply([outcome])[0] if isinstance(outcome, Ready) else outcome

    def _ready(self, item: InboxItem) -> Ready | str:
        """The item mapped, or the status it ended in when it cannot be applied at all."""
        try:
            mapped = self._map(item)
        except Rejected as exc:
            return self._fail(item, str(exc))
        if mapped.errors:
            return self._fail(item, f"{mapped.name}: " + "; ".join(mapped.errors))
        if mapped.withheld is not None:
            self.parts.inbox.finish(item.id, "withheld", outcome={"reason": mapped.withheld})
            return "withheld"
        return Ready(item, self._mapping(item.mapping), mapped)

    def _apply(self, group: list[Ready]) -> list[str]:
        """Statuses of the group's items, in order, up to the first one retried later."""
        try:
            results = self._applier.apply_group(group, self._done)
        except GroupRefused:
            return self._one_by_one(group)
        except Exception as exc:  # every failure must end somewhere named
            if len(group) > 1 and not is_transient(exc):
                return self._one_by_one(group)
            return [self._failed_on(group[0].item, exc)]
        return [
            self._settle(record.item, result) for record, result in zip(group, results, strict=True)
        ]

    def _one_by_one(self, group: list[Ready]) -> list[str]:
        statuses: list[str] = []
        for record in group:
            statuses.extend(self._apply([record]))
            if statuses[-1] == "pending":
                break
        return statuses

    def _settle(self, item: InboxItem, result: Applied | Exception) -> str:
        """The inbox status for how one record of a group ended (applied ones are already
        marked, in the transaction that recorded them)."""
        inbox = self.parts.inbox
        if isinstance(result, Applied):
            return "applied"
        if isinstance(result, Withheld):
            inbox.finish(
                item.id, "withheld", outcome={"reason": result.reason}, wait_key=result.wait_key
            )
            self._wake_if_arrived(result.wait_key)
            return "withheld"
        if isinstance(result, Waiting):
            inbox.park(item.id, result.key, result.reason, WAITING_RECHECK_SECONDS)
            self._wake_if_arrived(result.key)
            return "waiting"
        return self._fail(item, _reason(result))

    def _wake_if_arrived(self, key: str | None) -> None:
        """What the item waits for may have been written between the look that missed it and
        the item being set aside, its wake then finding nothing to wake: look once more, now
        that the item is set aside (a write after this look wakes it)."""
        if key is not None and self._applier.arrived(key):
            self.parts.inbox.wake([key])

    def _done(self, applied: list[tuple[Ready, Applied]]) -> None:
        self.parts.inbox.finish_applied([(r.item.id, a.outcome) for r, a in applied])
        self.parts.inbox.wake([key for _, a in applied for key in a.wake])

    def _failed_on(self, item: InboxItem, exc: Exception) -> str:
        if is_transient(exc) and not (_conflict(exc) and item.attempts + 1 >= CONFLICT_RETRIES):
            delay = self._backoff(item.attempts)
            log.warning("inbox item %s: %s; retrying in %.1f s", item.id, _reason(exc), delay)
            self.parts.inbox.retry_later(item.id, _reason(exc), delay)
            return "pending"
        if not isinstance(exc, FhirError):
            log.error("inbox item %s failed unexpectedly", item.id, exc_info=exc)
        return self._fail(item, _reason(exc))

    def _fail(self, item: InboxItem, error: str) -> str:
        log.warning("inbox item %s (%s) is a dead letter", item.id, item.mapping)
        self.parts.inbox.finish(item.id, "failed", error=error)
        return "failed"

    def _backoff(self, attempts: int) -> float:
        settings = self.parts.settings
        delay = min(settings.retry_max_seconds, settings.retry_base_seconds * 2**attempts)
        return delay * random.uniform(0.8, 1.2)  # spread retries of many workers apart

    def _mapping(self, name: str) -> Mapping:
        return self.parts.mappings.get(name)

    def _map(self, item: InboxItem) -> MappedRecord:
        try:
            mapping = self._mapping(item.mapping)
        except (KeyError, MappingConfigError) as exc:
            raise Rejected(f"mapping {item.mapping}: {exc}") from None
        if item.mapped is not None:
            # The listener mapped it on receipt (to answer AE at once), with this very mapping.
            kept = MappedRecord.from_bytes(
                item.mapped, mapping.version, f"{item.origin} line {item.line}", item.raw
            )
            if kept is not None:
                return kept
        record = read_record(mapping, item.raw, item.origin, item.line)
        if isinstance(record, SourceError):
            raise Rejected(str(record))
        return mapping.map_record(record, check=self.parts.checker)


def read_record(mapping: Mapping, raw: bytes, origin: str, line: int) -> SourceRecord | SourceError:
    """An inbox item's bytes read back as the one record they were, named where it first came
    from (`visits.csv line 7`)."""
    read = list(mapping.format.read(io.BytesIO(raw), origin, columns=mapping.columns))
    records = [r for r in read if isinstance(r, SourceRecord)]
    if len(read) == len(records) == 1:
        return replace(records[0], line=line)
    problems = [r for r in read if isinstance(r, SourceError)]
    reason = problems[0].reason if problems else f"{len(records)} records in one inbox item"
    return SourceError(origin, line, reason)


def _conflict(exc: Exception) -> bool:
    return isinstance(exc, FhirError) and exc.status in (409, 412)


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def run_pipeline_until_idle(
    settings: HubSettings,
    *,
    progress: Callable[[int], None] | None = None,
    store: FhirStore | None = None,
    processes: int = 1,
    retry_for: float = 0.0,
) -> dict[str, int]:
    """Process everything due in the inbox, then return how the handled items ended
    (applied, withheld, waiting, failed; pending = to be retried later).

    With `processes` > 1 (and no `store` given), that many processes work at once, on
    different lanes: a file about many people is applied several times faster. `progress` is
    told of every item, whichever process handled it. `retry_for`: how long to wait, after
    the last item handled, for items to be retried (a FHIR server that is restarting) before
    giving up and leaving them in the inbox."""
    helpers = max(processes, 1) - 1 if store is None else 0
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited locks
    reports = context.Queue()
    started = [
        context.Process(target=_drain_in_process, args=(settings, reports, retry_for), daemon=True)
        for _ in range(helpers)
    ]
    for process in started:
        process.start()

    def tick(status: str) -> None:
        if progress is not None:
            progress(1)

    counts = _drain(settings, store, tick, retry_for)
    _collect(started, reports, counts, progress)
    return dict(counts)


def _drain(
    settings: HubSettings,
    store: FhirStore | None,
    on_status: Callable[[str], None],
    retry_for: float = 0.0,
) -> Counter[str]:
    """One worker, until nothing is due (nor will be within `retry_for` seconds of the last
    item it got somewhere with: a retry put off again does not count): how its items ended."""
    parts = PipelineParts.open(settings, store=store)
    counts: Counter[str] = Counter()
    last_handled = time.monotonic()

    def done(item: InboxItem, status: str) -> None:
        nonlocal last_handled
        if status != "pending":  # a retry put off is no progress
            last_handled = time.monotonic()
        counts[status] += 1
        on_status(status)

    try:
        worker = Worker(parts)
        while True:
            while worker.run_once(done):
                pass
            due = parts.inbox.next_due_ms()
            if due is None:
                break
            wait = max(due / 1000 - time.time(), 0.05)
            if time.monotonic() + wait > last_handled + retry_for:
                break
            time.sleep(min(wait, 1.0))
        parts.inbox.release(worker.name)
    finally:
        parts.close(store=store is None)
    return counts


def _drain_in_process(settings: HubSettings, reports: Any, retry_for: float) -> None:
    """A helper process of run_pipeline_until_idle: each item's status, then None."""
    try:
        _drain(settings, None, reports.put, retry_for)
    finally:
        reports.put(None)


def _collect(
    started: list[Any], reports: Any, counts: Counter[str], progress: Callable[[int], None] | None
) -> None:
    """The helpers' statuses, until each has said it is done (or died: its items go back to
    the inbox when its lease runs out)."""
    running = len(started)
    while running:
        try:
            status = reports.get(timeout=1.0)
        except queue.Empty:
            if not any(process.is_alive() for process in started):
                break
            continue
        if status is None:
            running -= 1
            continue
        counts[status] += 1
        if progress is not None:
            progress(1)
    for process in started:
        process.join(10)


class WorkerPool:
    """Worker threads inside `hub serve` / `hub mllp`: each claims from the inbox, and waits
    `poll_seconds` when nothing was due."""

    def __init__(self, parts: PipelineParts, count: int, *, poll_seconds: float = 0.5) -> None:
        self._parts = parts
        self._count = count
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._workers: list[Worker] = []

    def start(self) -> None:
        for index in range(self._count):
            worker = Worker(self._parts)
            thread = threading.Thread(
                target=self._loop, args=(worker,), name=f"hub-worker-{index}", daemon=True
            )
            self._workers.append(worker)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        for worker in self._workers:
            self._parts.inbox.release(worker.name)

    def _loop(self, worker: Worker) -> None:
        while not self._stop.is_set():
            try:
                handled = worker.run_once()
            except Exception:  # a worker thread must outlive a bad moment
                log.exception("worker %s: claiming from the inbox failed", worker.name)
                handled = 0
            if not handled:
                self._stop.wait(self._poll)
