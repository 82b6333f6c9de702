"""Helpers for the pipeline tests: the pipeline on real parts (an embedded store in tmp_path,
the hub state on SQLite or PostgreSQL), a store that fails on demand, and a worker process that
kills itself in the middle of a message.

Run as a program (`python -m tests.pipeline._workers kill POINT N`, from the repository root,
with HUB_DATA_DIR / HUB_DATABASE_URL / HUB_WORKER_LEASE_SECONDS set) it runs the pipeline over
the inbox it finds, as `hub ingest` does, and SIGKILLs itself in the store transaction that
writes inbox item N:

    store-uncommitted   every row of the transaction written, before its COMMIT
    store-committed     right after the store transaction committed (hub state not yet updated)
    before-finish       in the hub-state transaction that records the item (clocks, identity,
                        inbox item finished), before it commits

Nothing in hub/ is changed: the hooks wrap methods of this process only.
"""

from __future__ import annotations

import io
import os
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from hub.fhir import FhirError
from hub.identity import IdentityConfig, IdentityResolver
from hub.listeners import read_items
from hub.mapping import Checker, MappingSet
from hub.pipeline import Inbox, InboxItem, PipelineParts, Worker, provenance_id
from hub.settings import REPOSITORY, HubSettings
from hub.state import instance_id, open_database
from hub.store import FhirStore, SQLiteStore, open_store
from hub.validation import Profiles

MAPPINGS = REPOSITORY / "mappings"
PROFILES = REPOSITORY / "profiles"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
HUB_ID = "https://fhir.hub.example/Id"
MRN = f"{HUB_ID}/RV5/mrn"
VISIT = f"{HUB_ID}/RV5/visit-number"
KILL_POINTS = ("store-uncommitted", "store-committed", "before-finish")

_checkers: dict[Path, Checker | None] = {}
_mapping_sets: dict[Path, MappingSet] = {}


def hub_settings(data_dir: Path, state_url: str, **overrides: Any) -> HubSettings:
    """Settings for a pipeline in `data_dir` (embedded store) with its state at `state_url`;
    retries quick, so that tests can wait for them."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": state_url,
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 0.2,
        "mllp_port": 0,
    }
    values.update(overrides)
    return HubSettings(_env_file=None, **values)


def open_parts(settings: HubSettings, *, store: FhirStore | None = None) -> PipelineParts:
    """What `PipelineParts.open` opens (keep the two alike), the profiles loaded once per test
    session and the repository's mappings compiled once: the same parts, a fraction of the
    time. A test's own copy of the mappings is never shared."""
    db = open_database(settings.state_url)
    store = store if store is not None else open_store(settings)
    if settings.profiles_dir not in _checkers:
        _checkers[settings.profiles_dir] = Profiles.load(settings.profiles_dir).checker()
    if settings.mappings_dir == MAPPINGS:
        mappings = _mapping_sets.setdefault(MAPPINGS, MappingSet(MAPPINGS))
    else:
        mappings = MappingSet(settings.mappings_dir)  # a test's own copy: never cached
    return PipelineParts(
        store=store,
        db=db,
        inbox=Inbox(db),
        mappings=mappings,
        checker=_checkers[settings.profiles_dir],
        identity=IdentityResolver(
            store, db, IdentityConfig.load(settings.mappings_dir / "identity.yaml")
        ),
        settings=settings,
    )


def example(path: str) -> bytes:
    """An example file of the repository's mappings, e.g. "vcse/examples/clients.csv"."""
    return (MAPPINGS / path).read_bytes()


def generated_adt(seed: int, count: int, people: int) -> bytes:
    """`count` synthetic A04/A08 messages (hub bench's) about `people` invented people, as one
    HL7 file; A04 number n has visit number B{seed}V{n:08d}."""
    from hub.bench._mllp import END_BLOCK, START_BLOCK, adt_message

    return b"".join(
        adt_message(seed, n, people).removeprefix(START_BLOCK).removesuffix(END_BLOCK)
        for n in range(count)
    )


def csv_rows(data: bytes, *rows: int) -> bytes:
    """The header and data rows `rows` (1 = the first row after the header) of a CSV file."""
    all_lines = [line for line in data.splitlines(keepends=True) if line.strip()]
    return b"".join([all_lines[0], *(all_lines[r] for r in rows)])


def hl7_messages(data: bytes) -> list[bytes]:
    """The messages of an HL7 v2 file (each starts with MSH), segments ended by CR."""
    text = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    parts = text.split(b"MSH|")
    return [b"MSH|" + part for part in parts[1:]]


class Pipeline:
    """The pipeline of one test: its parts, one worker, and ways to look at the outcome."""

    def __init__(self, parts: PipelineParts, worker_name: str = "test-worker") -> None:
        self.parts = parts
        self.worker = Worker(parts, worker_name)
        self.handled: list[tuple[int, str]] = []
        """(inbox id, status) of every item handled, in the order they were handled."""

    @property
    def inbox(self) -> Inbox:
        return self.parts.inbox

    @property
    def store(self) -> FhirStore:
        return self.parts.store

    def provenance_id(self, item_id: int) -> str:
        """The id of the Provenance that inbox item `item_id` writes."""
        return provenance_id(instance_id(self.parts.db), item_id)

    def add(self, mapping: str, data: bytes, origin: str = "feed") -> list[int]:
        """Store the records of `data` (in `mapping`'s source format) as a file listener
        does; their inbox ids. Duplicates come back with the original's id."""
        found = self.parts.mappings.get(mapping)
        items = list(read_items(found, io.BytesIO(data), origin, "file"))
        return [receipt.id for receipt in self.inbox.add(items)]

    def run(self, *, max_rounds: int = 1000) -> list[tuple[int, str]]:
        """Claim and handle until nothing is due; what was handled in this run."""
        start = len(self.handled)

        def done(item: InboxItem, status: str) -> None:
            self.handled.append((item.id, status))

        for _ in range(max_rounds):
            if not self.worker.run_once(done):
                break
        else:
            raise AssertionError(f"the inbox never went idle: {self.inbox.counts()}")
        return self.handled[start:]

    def item(self, item_id: int) -> InboxItem:
        found = self.inbox.get(item_id)
        assert found is not None, f"no inbox item {item_id}"
        return found

    def status(self, *ids: int) -> list[str]:
        return [self.item(i).status.value for i in ids]

    def search(self, resource_type: str, **params: str) -> list[dict[str, Any]]:
        pairs = [(k.replace("__", "."), v) for k, v in params.items()]
        return self.store.search(resource_type, [*pairs, ("_count", "1000")]).matches

    def by_identifier(self, resource_type: str, system: str, value: str) -> list[dict[str, Any]]:
        return self.search(resource_type, identifier=f"{system}|{value}")

    def one(self, resource_type: str, system: str, value: str) -> dict[str, Any]:
        found = self.by_identifier(resource_type, system, value)
        assert len(found) == 1, f"{len(found)} {resource_type} with {system}|{value}"
        return found[0]

    def versions(self) -> dict[tuple[str, str], int]:
        return versions(self.store)

    def close(self) -> None:
        self.parts.close()


def versions(store: FhirStore) -> dict[tuple[str, str], int]:
    """Every resource in the store, (type, id), with its number of versions (its versionId:
    the pipeline never deletes)."""
    found: dict[tuple[str, str], int] = {}
    for resource_type in store.search_parameters.resource_types:
        offset = 0
        while True:
            page = store.search(resource_type, [("_count", "1000"), ("_offset", str(offset))])
            for resource in page.matches:
                found[(resource_type, resource["id"])] = int(resource["meta"]["versionId"])
            if not page.has_next:
                break
            offset += page.count
    return found


def item_number(provenance_id: str) -> str:
    """The inbox item number in a Provenance id (inbox-STATE-N)."""
    return provenance_id.rsplit("-", 1)[-1]


def business_key(resource: dict[str, Any], store: FhirStore | None = None) -> tuple[str, ...]:
    """What names a resource whatever run wrote it: its identifiers (all of them, sorted), its
    inbox item number for a Provenance (inbox-STATE-N: each run's state database has a name
    of its own), its content for a Patient a merge retired (which gave its
    identifiers to the survivor), and for a derived CareTeam or Flag (identified by its
    Patient's id, which each run draws anew) its code and its Patient's key, read in `store`."""
    resource_type = resource["resourceType"]
    if resource_type == "Provenance":
        return (resource_type, item_number(resource["id"]))
    if resource_type in ("CareTeam", "Flag") and store is not None:
        patient = store.read(*resource["subject"]["reference"].split("/"))
        code = resource.get("code", {}).get("coding", [{}])[0].get("code", "")
        return (resource_type, code, *business_key(patient))
    found = resource.get("identifier") or []
    found = [found] if isinstance(found, dict) else found  # 0..1 in some types
    identifiers = sorted(f"{i.get('system')}|{i.get('value')}" for i in found)
    if not identifiers:
        rest = {k: v for k, v in resource.items() if k not in ("id", "meta", "link")}
        identifiers = ["without identifier", orjson.dumps(rest).decode()]
    return (resource_type, *identifiers)


def business_keys(store: FhirStore) -> dict[tuple[str, ...], int]:
    """`versions(store)`, each resource named by its `business_key`."""
    keyed: dict[tuple[str, ...], int] = {}
    for (resource_type, id), count in versions(store).items():
        key = business_key(store.read(resource_type, id), store)
        assert key not in keyed, f"two resources are {key}"
        keyed[key] = count
    return keyed


class FlakyStore:
    """A real store behind a door that fails on demand: `fail_next(method, error, times)` makes
    the next `times` calls of `method` ("transaction", "search") raise `error` instead."""

    def __init__(self, store: FhirStore) -> None:
        self.store = store
        self._failures: dict[str, list[BaseException]] = {}
        self.calls: dict[str, int] = {}

    def fail_next(self, method: str, error: BaseException, times: int = 1) -> None:
        self._failures.setdefault(method, []).extend([error] * times)

    def failures_left(self, method: str) -> int:
        return len(self._failures.get(method, []))

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.store, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            pending = self._failures.get(name)
            if pending:
                raise pending.pop(0)
            return attribute(*args, **kwargs)

        return call

    @property
    def search_parameters(self) -> Any:
        return self.store.search_parameters


def transient_errors() -> list[tuple[str, Callable[[], BaseException]]]:
    """Failures a worker must retry, never drop: (name, how to make one)."""
    import httpx

    from hub.fhir import UpstreamUnavailable

    request = httpx.Request("POST", "http://fhir.invalid/fhir")
    return [
        ("upstream-unavailable", lambda: UpstreamUnavailable("FHIR server answered HTTP 503")),
        ("http-503", lambda: FhirError(503, "Service Unavailable")),
        ("read-timeout", lambda: httpx.ReadTimeout("timed out", request=request)),
        ("timeout", lambda: TimeoutError("timed out")),
        ("connect-error", lambda: httpx.ConnectError("connection refused", request=request)),
    ]


# -- the worker that kills itself -------------------------------------------------------------


def _kill() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def install_kill(point: str, item_id: int) -> None:
    """Arrange for this process to SIGKILL itself at `point` of the store transaction that
    writes inbox item `item_id` (the first one holding its Provenance, Provenance/inbox-STATE-N;
    other records written in the same transaction die with it)."""
    from hub.store._sqlite import _session

    if point not in KILL_POINTS:
        raise SystemExit(f"unknown kill point {point!r}: one of {', '.join(KILL_POINTS)}")
    wanted = str(item_id)
    state = {"armed": False, "done": False}
    transaction = SQLiteStore.transaction
    flush = _session.Writer.flush
    finish = Inbox.finish_applied

    def watched_transaction(self: SQLiteStore, bundle: dict[str, Any]) -> dict[str, Any]:
        provenances = [
            e["resource"]["id"]
            for e in bundle.get("entry", [])
            if e["resource"]["resourceType"] == "Provenance"
        ]
        if wanted in map(item_number, provenances) and not state["done"]:
            state["armed"] = state["done"] = True
            print(f"killing at {point} of {' '.join(provenances)}", flush=True)
        response = transaction(self, bundle)
        if state["armed"] and point == "store-committed":
            _kill()
        return response

    def flush_then_die(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = flush(self, *args, **kwargs)
        if state["armed"] and point == "store-uncommitted":
            _kill()  # every row written, inside BEGIN IMMEDIATE, before COMMIT
        return result

    def die_before_finish(self: Inbox, *args: Any, **kwargs: Any) -> Any:
        if state["armed"] and point == "before-finish":
            _kill()  # inside the hub-state transaction that records the item, before COMMIT
        return finish(self, *args, **kwargs)

    SQLiteStore.transaction = watched_transaction  # type: ignore[method-assign]
    _session.Writer.flush = flush_then_die  # type: ignore[method-assign]
    Inbox.finish_applied = die_before_finish  # type: ignore[method-assign]


def main(argv: Iterable[str]) -> int:
    args = list(argv)
    if len(args) != 3 or args[0] != "kill":
        print("usage: python -m tests.pipeline._workers kill POINT INBOX_ID", file=sys.stderr)
        return 2
    from hub.pipeline import run_pipeline_until_idle

    install_kill(args[1], int(args[2]))
    counts = run_pipeline_until_idle(HubSettings(_env_file=None))
    print(f"not killed: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
