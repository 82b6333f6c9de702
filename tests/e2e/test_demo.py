"""`hub demo`: the example feeds through the real MLLP listener and ingest API, and one
person's shared record printed across all four sources."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hub.demo import demo_command, run_demo
from hub.settings import HubSettings
from tests._server import free_port


def test_the_demo_shows_one_persons_record_across_all_sources(tmp_path: Path) -> None:
    settings = HubSettings(
        _env_file=None, data_dir=tmp_path, port=free_port(), mllp_port=free_port()
    )
    lines: list[str] = []
    run_demo(settings, lines.append, keep_running=False)
    text = "\n".join(lines)

    assert "slam-epr/examples/adt.hl7: 13 messages, ACKs 13 AA" in text
    assert "NHS number 9990000018" in text
    for source in (
        "G85901 gp/stu3-bundle",
        "LEW-MIND vcse/sessions",
        "RJ2 district-nursing/visits",
        "RV5 slam-epr/adt",
    ):
        assert source in text
    assert "encounters: 7" in text
    assert "care plans: 4" in text
    assert "phq9-total 11" in text
    assert "linked by demographics (client C-000418)" in text
    assert "RV5A000777 (merged by A40) now finds" in text
    assert "nothing shared, as it must be" in text
    assert "Inbox: 38 applied, 2 withheld" in text
    # It ends with `hub record` for Thomas Reilly, read over the FHIR API: a member since his
    # caseload ended, his guest-bed stay (not a hospital admission) and his carer.
    record = text[text.index("hub record 9990000026") :]
    assert "Member of the 24/7 centre" in record
    assert "Guest bed at the centre (step-up stay)" in record
    assert "Carer                Mairead Reilly" in record
    # A second run starts again from an empty record: the same figures, not doubled.
    again: list[str] = []
    run_demo(settings, again.append, keep_running=False)
    assert "encounters: 7" in "\n".join(again)


def test_the_demo_command_exits_when_asked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HUB_PORT", str(free_port()))
    monkeypatch.setenv("HUB_MLLP_PORT", str(free_port()))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(demo_command, ["--exit"])
    assert result.exit_code == 0, result.output
    assert "Where to look next:" in result.output
    assert "keeps running" not in result.output
