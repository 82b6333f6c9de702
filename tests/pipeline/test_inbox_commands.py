"""`hub inbox`, `hub deadletters` and `hub replay`, run as a person would, on the database
named by HUB_DATABASE_URL (both dialects)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from hub.cli import main
from hub.pipeline import Inbox, NewItem
from hub.state import Database
from tests.pipeline._workers import Pipeline, example, hub_settings, open_parts

Run = Callable[..., Result]
RECEIVED = 1_767_268_800.0  # 2026-01-01 12:00:00 UTC


@pytest.fixture
def run(state_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Run:
    monkeypatch.setenv("HUB_DATABASE_URL", state_url)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def inbox(state_db: Database) -> Inbox:
    return Inbox(state_db, clock=lambda: RECEIVED)


def _dead(inbox: Inbox, mapping: str, line: int, error: str) -> int:
    raw = f"{mapping} {line}".encode()
    return inbox.add([NewItem(mapping, "file", "adt.hl7", line, raw, error=error)])[0].id


def test_hub_inbox_counts_items_per_mapping_and_status(run: Run, inbox: Inbox) -> None:
    assert run("inbox").output == "the inbox is empty\n"
    inbox.add([NewItem("slam-epr/adt", "mllp", "MLLP", 1, f"m{n}".encode()) for n in range(3)])
    _dead(inbox, "vcse/clients", 4, "no NHS number")
    result = run("inbox")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "mapping       pending  processing  waiting  applied  withheld  failed",
        "slam-epr/adt        3           0        0        0         0       0",
        "vcse/clients        0           0        0        0         0       1",
        "total               3           0        0        0         0       1",
    ]


def test_hub_deadletters_lists_failed_items_newest_first(run: Run, inbox: Inbox) -> None:
    first = _dead(inbox, "slam-epr/adt", 7, "PID-7: '2025-13-01' is not a date")
    second = _dead(inbox, "vcse/clients", 3, "no NHS number\nand no name")
    inbox.add([NewItem("slam-epr/adt", "file", "adt.hl7", 9, b"fine")])  # not dead
    result = run("deadletters")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "id  received (UTC)       mapping       origin:line  attempts  error",
        f"{second}   2026-01-01 12:00:00  vcse/clients  adt.hl7:3    0         "
        "no NHS number and no name",
        f"{first}   2026-01-01 12:00:00  slam-epr/adt  adt.hl7:7    0         "
        "PID-7: '2025-13-01' is not a date",
    ]


def test_hub_deadletters_narrows_limits_and_speaks_json(run: Run, inbox: Inbox) -> None:
    first = _dead(inbox, "slam-epr/adt", 1, "bad one")
    _dead(inbox, "slam-epr/adt", 2, "bad two")
    _dead(inbox, "vcse/clients", 3, "bad three")
    limited = run("deadletters", "--mapping", "slam-epr/adt", "--limit", "1")
    assert "bad two" in limited.output
    assert "bad one" not in limited.output
    assert "bad three" not in limited.output
    assert limited.output.splitlines()[-1] == "(newest 1 of 2; --limit shows more)"
    as_json = run("deadletters", "-m", "slam-epr/adt", "--json")
    letters = orjson.loads(as_json.output)
    assert [letter["error"] for letter in letters] == ["bad two", "bad one"]
    assert letters[1] == {
        "id": first,
        "received": "2026-01-01T12:00:00.000Z",
        "mapping": "slam-epr/adt",
        "channel": "file",
        "origin": "adt.hl7",
        "line": 1,
        "message_id": None,
        "attempts": 0,
        "error": "bad one",
        "duplicates": 0,
    }
    assert run("deadletters", "-m", "gp/stu3").output == "no dead letters for gp/stu3\n"


def test_hub_replay_requeues_the_ids_given(run: Run, inbox: Inbox) -> None:
    dead = _dead(inbox, "slam-epr/adt", 1, "bad")
    [alive] = inbox.add([NewItem("slam-epr/adt", "file", "adt.hl7", 2, b"fine")])
    result = run("replay", str(dead), str(alive.id))
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "requeued 1 failed item."
    assert (
        lines[1]
        == "1 of the ids given are not failed items: `hub deadletters` lists those that are."
    )
    assert "`hub serve`, `hub mllp` or `hub work`" in lines[2]
    assert inbox.get(dead).status == "pending"  # type: ignore[union-attr]


def test_hub_replay_all_of_a_mapping_and_withheld_ones(run: Run, inbox: Inbox) -> None:
    adt = [_dead(inbox, "slam-epr/adt", n, "bad") for n in (1, 2)]
    vcse = _dead(inbox, "vcse/clients", 3, "bad")
    [withheld] = inbox.add([NewItem("vcse/clients", "file", "c.csv", 4, b"w")])
    inbox.claim("w")
    inbox.finish(withheld.id, "withheld", outcome={"reason": "no consent"})
    result = run("replay", "--all", "--mapping", "slam-epr/adt")
    assert result.output.splitlines()[0] == "requeued 2 failed items."
    assert {inbox.get(i).status for i in adt} == {"pending"}  # type: ignore[union-attr]
    assert inbox.get(vcse).status == "failed"  # type: ignore[union-attr]
    result = run("replay", "--all", "--withheld")
    assert result.output.splitlines()[0] == "requeued 2 failed or withheld items."
    assert inbox.get(withheld.id).status == "pending"  # type: ignore[union-attr]
    assert run("replay", "--all").output == "requeued 0 failed items.\n"


@pytest.mark.parametrize("args", [[], ["1", "--all"]])
def test_hub_replay_needs_ids_or_all(run: Run, args: list[str]) -> None:
    result = CliRunner().invoke(main, ["replay", *args])
    assert result.exit_code == 2
    assert "give the ids to replay, or --all (not both)" in result.output


def test_the_commands_name_a_database_they_cannot_open(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HUB_DATABASE_URL", f"postgresql://hub:s3cret@127.0.0.1:{port}/hub")
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    for command in ("inbox", "deadletters", "replay --all"):
        result = CliRunner().invoke(main, command.split())
        assert result.exit_code == 1
        assert f"cannot connect to PostgreSQL at postgresql://hub:***@127.0.0.1:{port}/hub" in (
            result.output
        )
        assert "s3cret" not in result.output
    assert time.monotonic() - started < 30


def test_hub_warnings_lists_applied_records_whose_mapping_warned(
    run: Run, state_url: str, tmp_path: Path
) -> None:
    header, adaeze = example("vcse/examples/clients.csv").decode().splitlines()[:2]
    unknown = adaeze.replace("Black or Black British - African", "Afro-Caribbean")
    pipeline = Pipeline(open_parts(hub_settings(tmp_path / "data", state_url)))
    try:
        assert run("warnings").output == "no warnings\n"
        [warned] = pipeline.add(
            "vcse/clients", f"{header}\r\n{unknown}\r\n".encode(), "clients.csv"
        )
        pipeline.add("vcse/clients", f"{header}\r\n{adaeze}\r\n".encode(), "clients-2.csv")
        assert [status for _, status in pipeline.run()] == ["applied", "applied"]
    finally:
        pipeline.close()
    result = run("warnings")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["id", "mapping", "origin:line", "warnings"]
    assert len(lines) == 2 and lines[1].startswith(f"{warned}   vcse/clients  clients.csv:2")
    assert "ethnicity is not an NHS ethnic category label" in lines[1]
    assert "Afro-Caribbean" not in result.output  # the label is personal data
    [shown] = orjson.loads(run("warnings", "--json").output)
    assert shown["id"] == warned and shown["record"] == "clients.csv line 2 (LEW-MIND/C-000417)"
    assert run("warnings", "--mapping", "slam-epr/adt").output == "no warnings for slam-epr/adt\n"
