"""Several `hub work` processes sharing one hub state (PostgreSQL, and SQLite) and one embedded
store, fed by `hub ingest --queue-only` while they run: every item applied exactly once, each
lane in its order, one Patient per person.

All of it as an operator runs it: the `hub` command in processes of its own, configured by
HUB_* environment variables, stopped with SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.bench._synthetic import patient_facts
from hub.pipeline import Inbox, provenance_id
from hub.state import instance_id, open_database
from hub.store import SQLiteStore
from tests._server import subprocess_env
from tests.pipeline._workers import MAPPINGS, NHS, VISIT, generated_adt, versions

SEED = 4
PEOPLE = 100
MESSAGES = 300
PROCESSES = 3
THREADS = 1
"""One worker thread per process: what is shared here is the hub state across processes.
(Several threads in one process: tests/pipeline/test_worker.py, the WorkerPool tests.)"""
FILES = [
    ("vcse/sessions", ["vcse/examples/sessions.csv"]),
    ("district-nursing/visits", ["district-nursing/examples/visits.csv"]),
    ("slam-epr/careplans", ["slam-epr/examples/careplans.jsonl"]),
    ("vcse/clients", ["vcse/examples/clients.csv"]),
]
"""Besides the ADT feed (generated and example messages): one `hub ingest` each, the VCSE
clients last, so that their sessions have been withheld (no consent yet) and must be woken."""
EXAMPLE_PEOPLE = ("9990000018", "9990000026", "9990000034", "9990000042", "9990000077")
IN_ORDER_MAPPINGS = ("slam-epr/adt", "district-nursing/visits", "vcse/clients")
"""Mappings whose records carry their own Patient, so never wait: each lane applied strictly in
order."""
TIMEOUT = 120


def hub_env(data_dir: Path, state_url: str) -> dict[str, str]:
    return subprocess_env(
        HUB_DATA_DIR=str(data_dir),
        HUB_DATABASE_URL=state_url,
        HUB_WORKERS=str(THREADS),
        HUB_LOG_LEVEL="warning",
        HUB_RETRY_BASE_SECONDS="0.05",
        HUB_RETRY_MAX_SECONDS="0.5",
    )


def generated_visits() -> list[str]:
    """The visit numbers of the generated A04s (every fifth message is an A08)."""
    return [f"B{SEED}V{n:08d}" for n in range(MESSAGES) if n % 5 != 4]


def ingest(
    mapping: str, paths: list[Path], env: dict[str, str], cwd: Path
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "ingest", mapping, *map(str, paths), "--queue-only"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def check_ingest(process: subprocess.Popen[str]) -> None:
    out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, out + err
    assert "left in the inbox for the workers" in out, out


@pytest.fixture
def workers(tmp_path: Path, state_url: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = hub_env(tmp_path / "data", state_url)
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "hub", "work"],
            cwd=tmp_path,  # no developer's .env
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(PROCESSES)
    ]
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
            process.wait(TIMEOUT)


@pytest.mark.slow
def test_worker_processes_apply_every_item_once_in_lane_order_one_patient_per_person(
    tmp_path: Path, state_url: str, workers: list[subprocess.Popen[bytes]]
) -> None:
    data_dir = tmp_path / "data"
    env = hub_env(data_dir, state_url)
    (tmp_path / "generated.hl7").write_bytes(generated_adt(SEED, MESSAGES, PEOPLE))
    visits = generated_visits()
    adt = [tmp_path / "generated.hl7", MAPPINGS / "slam-epr/examples/adt.hl7"]
    feeds = [("slam-epr/adt", adt)]
    feeds += [(mapping, [MAPPINGS / f for f in files]) for mapping, files in FILES]
    # Queued while the workers run, by several `hub ingest --queue-only` at once.
    first = [ingest(mapping, paths, env, tmp_path) for mapping, paths in feeds[:-1]]
    for started in first:
        check_ingest(started)
    check_ingest(ingest(*feeds[-1], env, tmp_path))

    db = open_database(state_url)
    inbox = Inbox(db)
    try:
        deadline = time.monotonic() + TIMEOUT
        while _unfinished(inbox):
            assert time.monotonic() < deadline, inbox.counts()
            for process in workers:
                assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
            time.sleep(0.1)
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            assert process.wait(TIMEOUT) == 0, process.stderr.read().decode()  # type: ignore[union-attr]
        items = inbox.list(limit=10_000)
        instance = instance_id(db)
    finally:
        db.close()

    statuses = defaultdict(list)
    for item in items:
        statuses[item.status.value].append(item)
    assert set(statuses) == {"applied", "withheld"}, {s: len(i) for s, i in statuses.items()}
    assert len(statuses["withheld"]) == 2  # Kwabena: his client row and his session
    assert len(items) == MESSAGES + 13 + 4 + 3 + 3 + 3

    store = SQLiteStore(data_dir / "fhir.sqlite")
    try:
        # Applied exactly once: each applied item has its Provenance, and no Provenance was
        # written twice (a second application rewrites `recorded`; a merge re-pointing a
        # Provenance to the surviving Patient keeps it).
        recorded: dict[int, str] = {}
        provenances = {id for t, id in versions(store) if t == "Provenance"}
        assert provenances == {provenance_id(instance, i.id) for i in statuses["applied"]}
        for id in provenances:
            history = store.history("Provenance", id, count=100).entries
            assert len({e.resource["recorded"] for e in history}) == 1, id  # type: ignore[index]
            recorded[int(id.rsplit("-", 1)[1])] = history[0].resource["recorded"]  # type: ignore[index]

        # Each lane's records applied in the order they arrived, whichever process took them.
        lanes: dict[str, list[int]] = {}
        for item in statuses["applied"]:
            if item.mapping in IN_ORDER_MAPPINGS:
                lanes.setdefault(item.lane, []).append(item.id)
        assert len(lanes) > len(IN_ORDER_MAPPINGS)  # sources split by patient, for parallel work
        for lane, ids in lanes.items():
            times = [recorded[i] for i in sorted(ids)]
            assert times == sorted(times), lane

        # One Patient per person, one Encounter per visit: nothing doubled.
        def matches(resource_type: str, system: str, value: str) -> int:
            return len(store.search(resource_type, [("identifier", f"{system}|{value}")]).matches)

        nhs_numbers = [patient_facts(SEED, n).nhs_number for n in range(PEOPLE)]
        for nhs_number in [*nhs_numbers, *EXAMPLE_PEOPLE]:
            assert matches("Patient", NHS, nhs_number) == 1, nhs_number
        for visit in visits:
            assert matches("Encounter", VISIT, visit) == 1, visit
        patients = [k for k in versions(store) if k[0] == "Patient"]
        assert len(patients) == PEOPLE + len(EXAMPLE_PEOPLE) + 1  # + Daniel's retired duplicate
        assert matches("Patient", NHS, "9990000050") == 0  # Kwabena, no consent
    finally:
        store.close()


def _unfinished(inbox: Inbox) -> int:
    """Items not yet finished: pending, processing or waiting."""
    counts = inbox.counts()
    return sum(
        n
        for c in counts.values()
        for s, n in c.items()
        if s not in ("applied", "withheld", "failed")
    )


def _nice_of(pid: int) -> int:
    """The nice value of a running process (field 19 of /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


@pytest.mark.parametrize(
    ("args", "extra", "lowered"),
    [([], {}, 10), (["--nice", "3"], {}, 3), ([], {"HUB_WORKER_NICE": "0"}, 0)],
)
def test_hub_work_yields_the_cpu_to_listeners(
    tmp_path: Path, state_url: str, args: list[str], extra: dict[str, str], lowered: int
) -> None:
    """A worker process lowers its own priority (HUB_WORKER_NICE, --nice): on a machine it
    shares with `hub mllp`, the listener's ACKs come first."""
    env = {**hub_env(tmp_path / "data", state_url), **extra}
    process = subprocess.Popen(
        [sys.executable, "-m", "hub", "work", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"CPU priority lowered by {lowered}" in line, line
        assert _nice_of(process.pid) == min(os.nice(0) + lowered, 19)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(TIMEOUT)
    assert process.returncode == 0
