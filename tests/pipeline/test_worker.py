"""The Worker: how each item ends (applied, waiting, withheld, failed, or pending for a retry),
dead letters and their replay after a mapping fix, and transient failures of the store, which
are retried and hold up the rest of their lane, never dropped.

Real parts: the embedded store in tmp_path (behind `FlakyStore` where a failure is needed), the
hub state on SQLite and on PostgreSQL (`state_url`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hub.fhir import PreconditionFailed, ResourceNotFound, Unprocessable
from hub.pipeline import InboxItem, NewItem, Worker, WorkerPool, read_record
from hub.pipeline._worker import CONFLICT_RETRIES
from hub.settings import HubSettings
from hub.store import SQLiteStore
from tests.pipeline._workers import (
    HUB_ID,
    MAPPINGS,
    NHS,
    PROFILES,
    VISIT,
    FlakyStore,
    Pipeline,
    csv_rows,
    example,
    generated_adt,
    hl7_messages,
    hub_settings,
    open_parts,
    transient_errors,
)

ADT = hl7_messages(example("slam-epr/examples/adt.hl7"))
CAREPLANS = example("slam-epr/examples/careplans.jsonl")
CLIENTS = example("vcse/examples/clients.csv")
SESSIONS = example("vcse/examples/sessions.csv")
CAREPLAN = f"{HUB_ID}/RV5/careplan"
PLAN_TYPES = Path("slam-epr/maps/plan-type.yaml")
CRISIS_LINE = "  CRISIS: {code: CRISIS, display: Crisis and contingency plan}\n"


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[FlakyStore]:
    (tmp_path / "data").mkdir()
    store = SQLiteStore(tmp_path / "data" / "fhir.sqlite")
    try:
        yield FlakyStore(store)
    finally:
        store.close()


@pytest.fixture
def pipeline(tmp_path: Path, state_url: str, flaky: FlakyStore) -> Iterator[Pipeline]:
    parts = open_parts(hub_settings(tmp_path / "data", state_url), store=flaky)  # type: ignore[arg-type]
    running = Pipeline(parts)
    try:
        yield running
    finally:
        parts.close(store=False)


@pytest.fixture
def slow_retry_pipeline(tmp_path: Path, state_url: str, flaky: FlakyStore) -> Iterator[Pipeline]:
    """`pipeline` with retries a second away: what a test does meanwhile (claims of other
    lanes) happens before the retry is due, however busy the machine."""
    settings = hub_settings(
        tmp_path / "data", state_url, retry_base_seconds=1.0, retry_max_seconds=1.0
    )
    parts = open_parts(settings, store=flaky)  # type: ignore[arg-type]
    running = Pipeline(parts)
    try:
        yield running
    finally:
        parts.close(store=False)


@pytest.fixture
def own_mappings(tmp_path: Path) -> Path:
    """A copy of the repository's mappings and profiles, free to break and mend."""
    shutil.copytree(MAPPINGS, tmp_path / "mappings")
    shutil.copytree(PROFILES, tmp_path / "profiles")
    return tmp_path


def run_once(pipeline: Pipeline) -> list[tuple[int, str]]:
    handled: list[tuple[int, str]] = []

    def done(item: InboxItem, status: str) -> None:
        handled.append((item.id, status))

    pipeline.worker.run_once(done)
    return handled


def wait_until_due(pipeline: Pipeline, item_id: int, timeout: float = 5.0) -> None:
    due = pipeline.item(item_id).next_attempt_ms / 1000
    deadline = time.time() + timeout
    assert due < deadline, "the retry is set further away than any test should wait"
    time.sleep(max(0.0, due - time.time()) + 0.01)


# -- dead letters and replay -------------------------------------------------------------------


def break_plan_types(root: Path) -> None:
    """The EPR sends a plan type the hub's map does not know (yet): CRISIS taken out."""
    path = root / "mappings" / PLAN_TYPES
    text = path.read_text()
    assert CRISIS_LINE in text
    path.write_text(text.replace(CRISIS_LINE, ""))


def mend_plan_types(root: Path) -> None:
    shutil.copy(MAPPINGS / PLAN_TYPES, root / "mappings" / PLAN_TYPES)


def own_settings(root: Path, state_url: str) -> HubSettings:
    """A pipeline that reads the mappings and profiles copied under `root`."""
    return hub_settings(
        root / "data", state_url, mappings_dir=root / "mappings", profiles_dir=root / "profiles"
    )


def test_a_record_the_mapping_cannot_map_is_a_dead_letter_naming_record_and_field(
    own_mappings: Path, state_url: str
) -> None:
    break_plan_types(own_mappings)
    settings = own_settings(own_mappings, state_url)
    pipeline = Pipeline(open_parts(settings))
    try:
        pipeline.add("slam-epr/adt", ADT[0] + ADT[2], "adt.hl7")  # Adaeze and Thomas
        crisis, support, s117 = pipeline.add("slam-epr/careplans", CAREPLANS, "careplans.jsonl")
        handled = dict(pipeline.run())
        # A dead letter does not hold up its lane: the plans after it are applied.
        assert [handled[crisis], handled[support], handled[s117]] == [
            "failed",
            "applied",
            "applied",
        ]
        dead = pipeline.item(crisis)
        assert dead.status == "failed"
        assert dead.attempts == 1
        error = dead.last_error or ""
        for named in ("careplans.jsonl", "line 1", "CP-55120", "plan_type", "CRISIS"):
            assert named in error, f"{named!r} not in {error!r}"
        assert pipeline.by_identifier("CarePlan", CAREPLAN, "CP-55120") == []
        with pytest.raises(ResourceNotFound):
            pipeline.store.read("Provenance", pipeline.provenance_id(crisis))
        assert [d.id for d in pipeline.inbox.list(status="failed")] == [crisis]
    finally:
        pipeline.close()

    # The map is mended; a hub started afterwards replays the dead letter (`hub replay`).
    mend_plan_types(own_mappings)
    pipeline = Pipeline(open_parts(settings))
    try:
        assert pipeline.inbox.replay([crisis]) == 1
        assert pipeline.item(crisis).attempts == 0
        assert pipeline.run() == [(crisis, "applied")]
        plan = pipeline.one("CarePlan", CAREPLAN, "CP-55120")
        assert plan["category"][0]["coding"][0]["code"] == "CRISIS"
        patient = pipeline.one("Patient", NHS, "9990000018")
        assert plan["subject"] == {"reference": f"Patient/{patient['id']}"}
        assert pipeline.store.read("Provenance", pipeline.provenance_id(crisis))["target"]
        assert pipeline.inbox.list(status="failed") == []
    finally:
        pipeline.close()


def test_a_running_worker_applies_a_replayed_dead_letter_with_the_mended_mapping(
    own_mappings: Path, state_url: str
) -> None:
    """`hub replay` says a running `hub serve` / `hub work` processes what it requeues: after a
    mapping fix, with the mapping as it is now on disk, not as it was when the hub started."""
    break_plan_types(own_mappings)
    settings = own_settings(own_mappings, state_url)
    pipeline = Pipeline(open_parts(settings))
    try:
        pipeline.add("slam-epr/adt", ADT[0], "adt.hl7")
        [crisis] = pipeline.add("slam-epr/careplans", CAREPLANS.splitlines()[0], "cp.jsonl")
        assert dict(pipeline.run())[crisis] == "failed"
        mend_plan_types(own_mappings)
        assert pipeline.inbox.replay([crisis]) == 1
        assert pipeline.run() == [(crisis, "applied")], pipeline.item(crisis).last_error
        assert pipeline.one("CarePlan", CAREPLAN, "CP-55120")
    finally:
        pipeline.close()


def test_an_unreadable_record_is_a_dead_letter_on_arrival_naming_where_it_was(
    pipeline: Pipeline,
) -> None:
    good = CAREPLANS.splitlines(keepends=True)[0]
    first, broken = pipeline.add("slam-epr/careplans", good + b'{"plan_id": "CP-1",\n', "cp.jsonl")
    dead = pipeline.item(broken)
    assert dead.status == "failed"
    assert "cp.jsonl" in (dead.last_error or "")
    assert "line 2" in (dead.last_error or "")
    assert pipeline.item(first).status == "pending"


# -- transient failures: retried, in order, never lost -------------------------------------------


TRANSIENT = transient_errors()


@pytest.mark.parametrize(
    ("method", "error"),
    [("transaction", make) for _, make in TRANSIENT] + [("search", TRANSIENT[0][1])],
    ids=[f"transaction-{name}" for name, _ in TRANSIENT] + ["search-upstream-unavailable"],
)
def test_a_transient_failure_leaves_the_item_pending_and_holds_up_its_lane(
    slow_retry_pipeline: Pipeline,
    flaky: FlakyStore,
    method: str,
    error: Callable[[], BaseException],
) -> None:
    pipeline = slow_retry_pipeline
    # Adaeze's two contacts share a lane (her MRN, the ADT mapping's order_by).
    first, second = pipeline.add("slam-epr/adt", ADT[0] + ADT[1], "adt.hl7")
    assert pipeline.item(first).lane == pipeline.item(second).lane
    failure = error()
    flaky.fail_next(method, failure)
    started_ms = time.time() * 1000

    assert run_once(pipeline) == [(first, "pending")]  # the batch stops there
    retried = pipeline.item(first)
    assert retried.status == "pending"
    assert retried.attempts == 1
    assert retried.last_error == (str(failure) or type(failure).__name__)
    assert retried.next_attempt_ms > started_ms
    waiting = pipeline.item(second)
    assert waiting.status in ("pending", "processing")
    assert (waiting.attempts, waiting.outcome) == (0, None)
    assert pipeline.versions() == {}  # nothing of either written

    # Not due yet: nothing of its lane is handed out, not even the item behind it; another
    # person's lane (Thomas) goes on.
    [third] = pipeline.add("slam-epr/adt", ADT[2], "adt.hl7")
    assert pipeline.item(third).lane != pipeline.item(first).lane
    assert run_once(pipeline) == [(third, "applied")]
    assert run_once(pipeline) == []
    assert pipeline.status(first, second) == ["pending"] * 2

    wait_until_due(pipeline, first)
    assert pipeline.run() == [(first, "applied"), (second, "applied")]
    assert pipeline.item(first).attempts == 1
    assert len(pipeline.by_identifier("Patient", NHS, "9990000018")) == 1
    for visit in ("V0000501", "V0000502", "V0000503"):
        assert len(pipeline.by_identifier("Encounter", VISIT, visit)) == 1
    assert flaky.failures_left(method) == 0


def test_retries_back_off_and_the_item_is_applied_once_the_store_answers(
    pipeline: Pipeline, flaky: FlakyStore
) -> None:
    [item_id] = pipeline.add("slam-epr/adt", ADT[0], "adt.hl7")
    flaky.fail_next("transaction", TRANSIENT[0][1](), times=3)
    delays = []
    for attempt in (1, 2, 3):
        before = time.time() * 1000
        assert run_once(pipeline) == [(item_id, "pending")]
        item = pipeline.item(item_id)
        assert item.attempts == attempt
        delays.append(item.next_attempt_ms - before)
        wait_until_due(pipeline, item_id)
    # base 0.05 s doubling (jitter +-20%), capped at 0.2 s
    assert 35 <= delays[0] <= 90
    assert 75 <= delays[1] <= 150
    assert 155 <= delays[2] <= 270
    assert pipeline.run() == [(item_id, "applied")]
    assert pipeline.one("Encounter", VISIT, "V0000501")


def test_a_422_from_the_store_is_a_dead_letter_and_the_lane_goes_on(
    pipeline: Pipeline, flaky: FlakyStore
) -> None:
    first, second = pipeline.add("slam-epr/adt", ADT[0] + ADT[1], "adt.hl7")
    flaky.fail_next("transaction", Unprocessable("Encounter.period: start after end"))
    assert pipeline.run() == [(first, "failed"), (second, "applied")]
    dead = pipeline.item(first)
    assert dead.attempts == 1
    assert "Encounter.period: start after end" in (dead.last_error or "")
    assert pipeline.by_identifier("Encounter", VISIT, "V0000501") == []
    assert pipeline.one("Encounter", VISIT, "V0000502")

    assert pipeline.inbox.replay([first]) == 1  # the store's cause fixed: replayed, applied
    assert pipeline.run() == [(first, "applied")]
    assert pipeline.one("Encounter", VISIT, "V0000501")


def test_a_write_that_keeps_conflicting_fails_after_its_retries(
    tmp_path: Path, state_url: str, flaky: FlakyStore
) -> None:
    settings = hub_settings(
        tmp_path / "data", state_url, retry_base_seconds=0.001, retry_max_seconds=0.005
    )
    parts = open_parts(settings, store=flaky)  # type: ignore[arg-type]
    pipeline = Pipeline(parts)
    try:
        [item_id] = pipeline.add("slam-epr/adt", ADT[0], "adt.hl7")
        flaky.fail_next("transaction", PreconditionFailed("Patient/1: version moved"), 100)
        statuses = []
        while not statuses or statuses[-1] == "pending":
            statuses += [status for _, status in run_once(pipeline)]
            time.sleep(0.006)
        assert statuses == ["pending"] * (CONFLICT_RETRIES - 1) + ["failed"]
        dead = pipeline.item(item_id)
        assert dead.attempts == CONFLICT_RETRIES
        assert "version moved" in (dead.last_error or "")
    finally:
        parts.close(store=False)


def test_an_unexpected_error_is_a_dead_letter_not_a_stuck_lane(
    pipeline: Pipeline, flaky: FlakyStore
) -> None:
    first, second = pipeline.add("slam-epr/adt", ADT[0] + ADT[1], "adt.hl7")
    flaky.fail_next("transaction", RuntimeError("a bug"))
    assert pipeline.run() == [(first, "failed"), (second, "applied")]
    assert pipeline.item(first).last_error == "a bug"


# -- something arriving while a record is being set aside ------------------------------------------


def test_a_consent_recorded_while_its_session_is_being_withheld_still_releases_it(
    pipeline: Pipeline,
) -> None:
    """The session finds no consent; before it is set aside (withheld until the consent is
    written) another worker applies the client's row and wakes whoever waits for its consent:
    nobody yet. The session must not be withheld for ever beside an active consent."""
    [session] = pipeline.add("vcse/sessions", csv_rows(SESSIONS, 1), "sessions.csv")
    other = Worker(pipeline.parts, "other-worker")
    inbox = pipeline.inbox
    finish = inbox.finish
    interleaved = []

    def finish_while_the_client_is_applied(item_id: int, status: str, **kwargs: object) -> None:
        if item_id == session and status == "withheld" and not interleaved:
            [client] = pipeline.add("vcse/clients", csv_rows(CLIENTS, 1), "clients.csv")
            interleaved.append(client)
            assert other.run_once() == 1
            assert pipeline.status(client) == ["applied"]
        finish(item_id, status, **kwargs)  # type: ignore[arg-type]

    inbox.finish = finish_while_the_client_is_applied  # type: ignore[method-assign]
    assert run_once(pipeline) == [(session, "withheld")]
    assert interleaved
    assert pipeline.one("Consent", f"{HUB_ID}/LEW-MIND/consent", "C-000417")["status"] == "active"
    pipeline.run()
    assert pipeline.status(session) == ["applied"], pipeline.item(session)
    assert pipeline.one("Encounter", f"{HUB_ID}/LEW-MIND/session", "S-0091")


def test_a_patient_written_while_its_care_plan_is_being_parked_still_wakes_it(
    pipeline: Pipeline,
) -> None:
    """The same race for a record waiting for its Patient: the ADT is applied (and wakes the
    waiting) between the care plan finding no Patient and being parked. It must be applied
    now, not at its fallback recheck an hour later."""
    [plan] = pipeline.add("slam-epr/careplans", CAREPLANS.splitlines()[0], "careplans.jsonl")
    other = Worker(pipeline.parts, "other-worker")
    inbox = pipeline.inbox
    park = inbox.park
    interleaved = []

    def park_while_the_adt_is_applied(item_id: int, *args: object) -> None:
        if item_id == plan and not interleaved:
            [adt] = pipeline.add("slam-epr/adt", ADT[0], "adt.hl7")
            interleaved.append(adt)
            assert other.run_once() == 1
            assert pipeline.status(adt) == ["applied"]
        park(item_id, *args)  # type: ignore[arg-type]

    inbox.park = park_while_the_adt_is_applied  # type: ignore[method-assign]
    assert run_once(pipeline) == [(plan, "waiting")]
    assert interleaved
    pipeline.run()
    assert pipeline.status(plan) == ["applied"], pipeline.item(plan)
    assert pipeline.one("CarePlan", CAREPLAN, "CP-55120")


# -- a pool of worker threads ----------------------------------------------------------------------


def test_a_pool_of_worker_threads_applies_each_item_once_and_each_lane_in_order(
    tmp_path: Path, state_url: str
) -> None:
    """`hub serve` / `hub work --workers N`: N threads share one source's lanes (one per part
    of its patients), each lane applied in arrival order."""
    parts = open_parts(hub_settings(tmp_path / "data", state_url))
    pipeline = Pipeline(parts)
    try:
        ids = pipeline.add("slam-epr/adt", generated_adt(11, 120, 15), "generated.hl7")
        pool = WorkerPool(parts, 3, poll_seconds=0.02)
        pool.start()
        try:
            deadline = time.monotonic() + 60
            while pipeline.inbox.pending_count():
                assert time.monotonic() < deadline, pipeline.inbox.counts()
                time.sleep(0.02)
        finally:
            pool.stop()
        assert pipeline.status(*ids) == ["applied"] * len(ids)
        recorded_by_lane: dict[str, list[str]] = {}
        for item_id in ids:
            history = pipeline.store.history(
                "Provenance", pipeline.provenance_id(item_id), count=10
            ).entries
            # One application each: a second would have rewritten the Provenance.
            assert [e.version_id for e in history] == ["1"], item_id
            recorded = history[-1].resource["recorded"]  # type: ignore[index]
            recorded_by_lane.setdefault(pipeline.item(item_id).lane, []).append(recorded)
        assert len(recorded_by_lane) > 1  # the work was spread
        for recorded in recorded_by_lane.values():
            assert recorded == sorted(recorded)  # each lane's order, by arrival
        assert len(pipeline.search("Patient")) == 15
    finally:
        parts.close()


def test_a_worker_applies_the_outcome_the_listener_kept_and_maps_again_when_stale(
    pipeline: Pipeline,
) -> None:
    """The MLLP listener maps each message to answer AE and keeps the outcome for the worker.
    To show the worker used it and did not map again, each item's raw bytes here are not
    HL7 at all: with a kept outcome of the current mapping it is applied; with one of another
    version the worker maps the raw bytes again, and that fails, naming the record."""
    mapping = pipeline.parts.mappings.get("slam-epr/adt")
    record = read_record(mapping, ADT[0], "MLLP peer", 1)
    kept = mapping.map_record(record)  # type: ignore[arg-type]
    current, stale = pipeline.inbox.add(
        [
            NewItem(
                "slam-epr/adt",
                "mllp",
                "MLLP peer",
                1,
                b"not HL7 1",
                mapped=kept.to_bytes(mapping.version),
            ),
            NewItem(
                "slam-epr/adt", "mllp", "MLLP peer", 1, b"not HL7 2", mapped=kept.to_bytes("old")
            ),
        ]
    )
    assert dict(pipeline.run()) == {current.id: "applied", stale.id: "failed"}
    assert pipeline.one("Patient", NHS, "9990000018")
    assert "MLLP peer line 1" in (pipeline.item(stale.id).last_error or "")
