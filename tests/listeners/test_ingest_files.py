"""Files into the inbox: `ingest_files`, and `hub ingest` from store to summary."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.listeners import IngestCounts, ingest_command, ingest_files
from hub.mapping import MappingSet
from hub.pipeline import Inbox
from hub.state import open_database
from tests.listeners._helpers import MAPPINGS

VISITS = MAPPINGS / "district-nursing" / "examples" / "visits.csv"
VISITS_AWKWARD = MAPPINGS / "district-nursing" / "examples" / "visits-awkward.csv"
CLIENTS = MAPPINGS / "vcse" / "examples" / "clients.csv"


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """visits.csv with one more row that has a cell too many: unreadable."""
    path = tmp_path / "visits-broken.csv"
    path.write_bytes(VISITS.read_bytes() + b"DN-1,1,2,3,4,5,6,7,8,9,10,11,12,13,14\r\n")
    return path


def test_every_file_is_stored_in_batches_and_counted(
    inbox: Inbox, mappings: MappingSet, broken: Path
) -> None:
    read: list[int] = []
    summary = ingest_files(
        inbox,
        mappings.get("district-nursing/visits"),
        [VISITS_AWKWARD, broken],
        batch_size=2,
        progress=read.append,
    )

    assert summary.files == {
        str(VISITS_AWKWARD): IngestCounts(accepted=7),
        str(broken): IngestCounts(accepted=3, failed=1),
    }
    assert (summary.accepted, summary.duplicates, summary.failed) == (10, 0, 1)
    assert sum(read) == VISITS_AWKWARD.stat().st_size + broken.stat().st_size
    items = inbox.list(limit=100)
    assert len(items) == 11
    assert {(i.origin, i.channel) for i in items} == {
        ("visits-awkward.csv", "file"),
        ("visits-broken.csv", "file"),
    }
    (dead,) = (i for i in items if i.status == "failed")
    assert dead.line == 5
    assert dead.last_error == "visits-broken.csv line 5: row has 15 cells, the header has 14"


def test_a_file_ingested_again_is_all_duplicates(inbox: Inbox, mappings: MappingSet) -> None:
    mapping = mappings.get("slam-epr/adt")
    adt = MAPPINGS / "slam-epr" / "examples" / "adt.hl7"
    ingest_files(inbox, mapping, [adt])
    again = ingest_files(inbox, mapping, [adt])
    assert (again.accepted, again.duplicates, again.failed) == (0, 13, 0)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no .env of the checkout's
    return CliRunner()


def stored(tmp_path: Path) -> dict[str, dict[str, int]]:
    database = open_database(f"sqlite:///{tmp_path / 'data' / 'hub.db'}")
    try:
        return Inbox(database).counts()
    finally:
        database.close()


def test_queue_only_stores_and_summarises(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(ingest_command, ["vcse/clients", str(CLIENTS), "--queue-only"])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{CLIENTS}: 3 accepted, 0 duplicate, 0 failed",
        "3 accepted, 0 duplicate, left in the inbox for the workers; 0 failed",
    ]
    assert stored(tmp_path) == {"vcse/clients": {"pending": 3}}


def test_an_unreadable_record_fails_the_command_and_says_where_to_look(
    runner: CliRunner, tmp_path: Path, broken: Path
) -> None:
    result = runner.invoke(ingest_command, ["district-nursing/visits", str(broken), "--queue-only"])

    assert result.exit_code == 1
    assert f"{broken}: 3 accepted, 0 duplicate, 1 failed" in result.stdout
    assert result.stdout.endswith("; 1 failed (see `hub deadletters`)\n")
    assert stored(tmp_path) == {"district-nursing/visits": {"pending": 3, "failed": 1}}
    again = runner.invoke(ingest_command, ["district-nursing/visits", str(broken), "--queue-only"])
    assert again.exit_code == 1  # sent again, the broken row is still a dead letter
    assert f"{broken}: 0 accepted, 3 duplicate, 1 failed" in again.stdout


def test_ingest_then_processes_what_it_stored(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(ingest_command, ["vcse/clients", str(CLIENTS)])

    assert result.exit_code == 0, result.output
    # Kwabena Asante has not consented to sharing: his record is withheld.
    last = result.stdout.splitlines()[-1]
    assert last == "3 accepted, 0 duplicate; 2 applied, 1 withheld, 0 waiting; 0 failed"
    assert stored(tmp_path) == {"vcse/clients": {"applied": 2, "withheld": 1}}


def test_progress_without_a_terminal_is_plain_lines_on_stderr(runner: CliRunner) -> None:
    result = runner.invoke(
        ingest_command, ["vcse/clients", str(CLIENTS), "--queue-only", "--progress"]
    )
    assert result.exit_code == 0
    assert result.stderr.splitlines()[-1] == "reading: 100%"
    assert "\r" not in result.stderr
    quiet = runner.invoke(ingest_command, ["vcse/clients", str(CLIENTS), "--queue-only"])
    assert quiet.stderr == ""  # not a terminal: no progress unless asked


def test_an_unknown_mapping_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(ingest_command, ["vcse/nope", str(CLIENTS)])
    assert result.exit_code == 2
    assert "no such mapping" in result.stderr


def test_several_worker_processes_apply_a_file_once_each_record(
    runner: CliRunner, tmp_path: Path
) -> None:
    """--workers 3: helper processes take other people's lanes; every record is applied once
    and counted once in the summary, whichever process applied it."""
    from hub.bench._mllp import adt_message

    adt = tmp_path / "many.hl7"
    adt.write_bytes(b"".join(adt_message(7, n, 40)[1:-2] for n in range(240)))
    result = runner.invoke(ingest_command, ["slam-epr/adt", str(adt), "--workers", "3"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "240 accepted, 0 duplicate; 240 applied, 0 withheld, 0 waiting; 0 failed"
    )
    assert stored(tmp_path) == {"slam-epr/adt": {"applied": 240}}
    database = open_database(f"sqlite:///{tmp_path / 'data' / 'hub.db'}")
    try:
        items = Inbox(database).list(limit=1000)
    finally:
        database.close()
    assert len({item.lane for item in items}) > 1  # the people were spread over lanes
