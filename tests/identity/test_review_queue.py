"""The review queue: a person accepts (the two are merged at once) or rejects (remembered)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.identity import IdentityConflict, MatchQueue, ReviewError, matches_command
from hub.store import SQLiteStore
from tests.identity.conftest import CLIENT_REF, MARISOL, MRN, NHS, Hub, Person

VCSE_KEY = (CLIENT_REF, "C-000418")
MOVED: Person = (*MARISOL[:3], "SE6 4RX")  # as the VCSE has her: another postcode


def _queued_pair(hub: Hub) -> tuple[str, str]:
    """Marisol in the EPR; her VCSE record with a postcode that differs: one open entry."""
    epr = hub.record("slam-epr", (MRN, "RV5A000345"), MARISOL, (NHS, "9990000034"))
    vcse = hub.record("vcse", VCSE_KEY, MOVED)
    assert vcse.patient_id != epr.patient_id
    return epr.patient_id, vcse.patient_id


def test_accepting_merges_into_the_patient_with_an_nhs_number(
    hub: Hub, queue: MatchQueue, store: SQLiteStore
) -> None:
    epr, vcse = _queued_pair(hub)
    (entry,) = queue.list()
    merge = queue.accept(entry.id, by="reviewer-1")
    assert merge is not None and (merge.surviving_id, merge.retired_id) == (epr, vcse)
    assert [p["id"] for p in hub.patients(*VCSE_KEY)] == [epr]
    assert store.read("Patient", vcse)["active"] is False
    decided = queue.get(entry.id)
    assert (decided.status, decided.decided_by) == ("accepted", "reviewer-1")
    assert decided.decided_ms is not None and queue.list() == []
    # The VCSE's next record finds the survivor by its key.
    again = hub.record("vcse", VCSE_KEY, MOVED)
    assert (again.patient_id, again.matched_by) == (epr, "source-key")


def test_accepting_without_nhs_numbers_keeps_the_older_patient(hub: Hub, queue: MatchQueue) -> None:
    first = hub.record("slam-epr", (MRN, "RV5A000345"), MARISOL)
    second = hub.record("vcse", VCSE_KEY, (*MARISOL[:3], None))
    (entry,) = queue.list()
    merge = queue.accept(entry.id, by="reviewer-1")
    assert merge is not None
    assert (merge.surviving_id, merge.retired_id) == (first.patient_id, second.patient_id)


def test_a_rejected_pair_is_never_queued_again(hub: Hub, queue: MatchQueue) -> None:
    _queued_pair(hub)
    (entry,) = queue.list()
    assert queue.reject(entry.id, by="reviewer-2").status == "rejected"
    # The VCSE writes again: its Patient is compared again, and the pair is not asked again.
    hub.record("vcse", VCSE_KEY, MOVED, at=9_000)
    assert queue.list() == []
    assert [e.status for e in queue.list(None)] == ["rejected"]


def test_an_open_pair_is_queued_once_however_often_its_source_writes(
    hub: Hub, queue: MatchQueue
) -> None:
    _queued_pair(hub)
    hub.record("vcse", VCSE_KEY, MOVED)
    assert len(queue.list()) == 1


def test_a_decided_entry_cannot_be_decided_again(hub: Hub, queue: MatchQueue) -> None:
    _queued_pair(hub)
    (entry,) = queue.list()
    queue.reject(entry.id, by="reviewer-2")
    with pytest.raises(ReviewError, match="already rejected"):
        queue.accept(entry.id, by="reviewer-1")
    with pytest.raises(ReviewError, match="no review entry 999"):
        queue.get(999)


def test_accepting_follows_merges_made_since_the_pair_was_queued(
    hub: Hub, queue: MatchQueue
) -> None:
    _, vcse = _queued_pair(hub)
    (entry,) = queue.list()
    # The VCSE learnt her NHS number meanwhile: the pipeline merged the two already.
    traced = hub.record("vcse", VCSE_KEY, MOVED, (NHS, "9990000034"))
    assert [m.retired_id for m in traced.merges] == [vcse]
    assert queue.accept(entry.id, by="reviewer-1") is None
    assert queue.get(entry.id).status == "accepted"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, state_url: str) -> None:
    # The same store file (tmp_path/fhir.sqlite) and state database the fixtures use.
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HUB_DATABASE_URL", state_url)
    monkeypatch.setenv("HUB_FHIR_URL", "")


def test_the_command_lists_accepts_and_rejects(hub: Hub, queue: MatchQueue, cli_env: None) -> None:
    epr, vcse = _queued_pair(hub)
    runner = CliRunner()
    listed = runner.invoke(matches_command, ["list"])
    assert listed.exit_code == 0, listed.output
    assert f"Patient/{vcse} ~ Patient/{epr}" in listed.output
    assert "postcode=different" in listed.output
    assert "Marisol" not in listed.output and "1990" not in listed.output
    (entry,) = json.loads(runner.invoke(matches_command, ["list", "--json"]).output)
    assert entry["evidence"]["family"] == "same"

    accepted = runner.invoke(matches_command, ["accept", str(entry["id"]), "--by", "reviewer-1"])
    assert accepted.exit_code == 0, accepted.output
    assert f"Patient/{vcse} merged into Patient/{epr}" in accepted.output
    assert [p["id"] for p in hub.patients(*VCSE_KEY)] == [epr]

    again = runner.invoke(matches_command, ["reject", str(entry["id"])])
    assert again.exit_code == 1 and "already accepted" in again.output
    assert "no open entries" in runner.invoke(matches_command, ["list"]).output


def test_accepting_two_patients_with_different_nhs_numbers_is_refused(
    hub: Hub, queue: MatchQueue
) -> None:
    epr, vcse = _queued_pair(hub)
    (entry,) = queue.list()
    # The VCSE client gave another (valid) NHS number since: they are two people after all.
    hub.record("vcse", VCSE_KEY, MOVED, (NHS, "9990000042"))
    with pytest.raises(IdentityConflict):
        queue.accept(entry.id, by="reviewer-1")
    assert queue.get(entry.id).status == "open"
    assert hub.store.read("Patient", vcse)["active"] is True
    assert [p["id"] for p in hub.patients(NHS, "9990000034")] == [epr]
