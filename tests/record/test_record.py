"""`hub record NHS_NUMBER`: one person's shared record on one screen, read from a real
embedded store holding what the mappings and the derived step write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hub.derived import derive
from hub.record import RecordError, record_command, record_summary, time_record
from hub.store import FhirStore, SQLiteStore
from tests.derived.care_model import (
    consent,
    episode,
    patient,
    related_person,
    stay,
    support_plan,
    trust_plan,
    write,
)

ORTEGA, OKAFOR, OTHER = "p-ortega", "p-okafor", "p-haddad"
QUESTIONNAIRE = "https://fhir.hub.example/Questionnaire"


def with_derived(store: FhirStore, resources: list[dict[str, Any]], at: str) -> None:
    """Write sources and what the derived step makes of them and of the stored derived
    resources, as the pipeline does."""
    person = resources[0]
    stored = [
        found
        for kind in ("CareTeam", "Flag")
        for found in store.search(kind, [("patient", f"Patient/{person['id']}")]).matches
    ]
    write(store, [*resources, *derive(person, [*resources, *stored], at)])


def visit(
    patient_id: str, organisation: str, mapping: str, number: str, day: str, kind: str
) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "meta": {"source": f"https://fhir.hub.example/source/{organisation}#{mapping}"},
        "identifier": [
            {"system": f"https://fhir.hub.example/Id/{organisation}/visit", "value": number}
        ],
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "HH",
            "display": "home health",
        },
        "type": [{"text": kind}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": day, "end": day},
    }


def response(
    patient_id: str,
    organisation: str,
    number: str,
    measure: str,
    authored: str,
    scores: dict[str, float],
) -> dict[str, Any]:
    items = [
        {
            "linkId": link,
            "answer": [{"valueDecimal" if isinstance(v, float) else "valueInteger": v}],
        }
        for link, v in scores.items()
    ]
    return {
        "resourceType": "QuestionnaireResponse",
        "meta": {"source": f"https://fhir.hub.example/source/{organisation}#x"},
        "identifier": {
            "system": f"https://fhir.hub.example/Id/{organisation}/assessment",
            "value": number,
        },
        "questionnaire": f"{QUESTIONNAIRE}/{measure}",
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": authored,
        "item": items,
    }


def ortega(*, informal: bool = True) -> list[dict[str, Any]]:
    """As Marisol Ortega-Díaz on the 16th: on a ward, informal since that morning after a
    section 2; her mother her nominated person; a VCSE worker with her consent."""
    return [
        patient(
            ORTEGA,
            "9990000034",
            "Ortega-Díaz",
            "Marisol",
            practice=("G85901", "Ladywell Medical Centre"),
            birth_date="1990-07-21",
            gender="female",
        ),
        stay(
            ORTEGA,
            "V0000505",
            "in-progress",
            "2026-04-09T04:30:00+01:00",
            legal_statuses=[
                ("02", "2026-04-09T04:00:00+01:00", "2026-04-16T10:00:00+01:00"),
                ("01", "2026-04-16T10:00:00+01:00", None),
            ]
            if informal
            else [("02", "2026-04-09T04:00:00+01:00", None)],
        ),
        related_person(
            ORTEGA, "RV5A000345/diaz-lucia", "Díaz", "Lucía", "nominated-person", ("MTH", "Mother")
        ),
        trust_plan(ORTEGA, "CP-34001", "CRISIS", "active", "2026-04-09T12:00:00+01:00"),
        consent(ORTEGA, "LEW-MIND", "C-000418", "2026-04-10"),
        support_plan(ORTEGA, "LEW-MIND", "P-0040", "active", "2026-04-11", "P. Osei"),
        response(
            ORTEGA,
            "LEW-MIND",
            "W-0008",
            "swemwbs",
            "2026-04-11",
            {"swemwbs-total": 15, "swemwbs-metric": 16.36},
        ),
        response(
            ORTEGA,
            "LEW-MIND",
            "W-0010",
            "swemwbs",
            "2026-05-09",
            {"swemwbs-total": 19, "swemwbs-metric": 18.0},
        ),
        response(
            ORTEGA,
            "RV5",
            "DLG-1",
            "dialog",
            "2026-04-12T10:00:00+01:00",
            {"dialog-quality-of-life": 3.63, "dialog-treatment-satisfaction": 5.0},
        ),
    ]


@pytest.fixture
def hub_env(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """`hub record` run as a command opens the embedded store the test wrote."""
    monkeypatch.setenv("HUB_DATA_DIR", str(Path(store.path).parent))
    monkeypatch.setenv("HUB_FHIR_URL", "")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "fhir.sqlite") as store:
        with_derived(store, ortega(informal=False), "2026-04-12T10:05:00+01:00")
        with_derived(store, ortega(), "2026-04-16T10:05:00+01:00")
        yield store


def test_the_record_shows_flags_first_then_legal_status_team_plans_encounters_and_scores(
    store: SQLiteStore,
) -> None:
    summary = record_summary(store, "999 000 0034")

    assert summary["patient"]["name"] == "ORTEGA-DÍAZ, Marisol"
    assert summary["patient"]["gp_practices"] == [
        {"name": "Ladywell Medical Centre", "code": "G85901"}
    ]
    assert [f["code"] for f in summary["flags"]] == ["crisis-plan", "detained"]
    assert [f["status"] for f in summary["flags"]] == ["active", "inactive"]
    legal = summary["legal_status"]
    assert legal["current"]["code"] == "01"
    assert legal["detained"] is False
    assert [(s["code"], s["since"], s["until"]) for s in legal["statuses"]] == [
        ("02", "2026-04-09T04:00:00+01:00", "2026-04-16T10:00:00+01:00"),
        ("01", "2026-04-16T10:00:00+01:00", None),
    ]
    assert [(m["role"], m["name"]) for m in summary["team"]] == [
        ("Care coordinator", "Kwame Mensah"),
        ("GP practice", "Ladywell Medical Centre"),
        ("VCSE worker", "P. Osei"),
        ("Nominated person", "Lucía Díaz"),
    ]
    assert [p["id"] for p in summary["plans"]] == ["P-0040", "CP-34001"]
    assert list(summary["encounters"]) == ["RV5"]
    swemwbs = {s["item"]: s for s in summary["scores"] if s["measure"] == "SWEMWBS"}
    assert swemwbs["swemwbs-total"]["latest"]["value"] == 19
    assert swemwbs["swemwbs-total"]["first"]["value"] == 15
    assert swemwbs["swemwbs-total"]["change"] == 4
    assert swemwbs["swemwbs-metric"]["change"] == 1.64
    dialog = {s["item"]: s for s in summary["scores"] if s["measure"] == "DIALOG"}
    assert dialog["dialog-quality-of-life"]["change"] is None  # one assessment: nothing to compare


def test_the_screen_reads_top_down_flags_first(hub_env: None) -> None:

    result = CliRunner().invoke(record_command, ["9990000034"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:2] == [
        "ORTEGA-DÍAZ, Marisol   NHS 999 000 0034   born 21 Jul 1990   female",
        "GP: Ladywell Medical Centre (G85901)",
    ]
    headings = [lines[i + 1] for i, line in enumerate(lines[:-1]) if not line]
    assert headings == [
        "FLAGS",
        "LEGAL STATUS (Mental Health Act)",
        "EPISODES OF CARE",
        "TEAM AROUND THE PERSON",
        "CURRENT PLANS",
        "RECENT ENCOUNTERS",
        "OUTCOME SCORES (latest; change since the first)",
    ]
    text = result.output
    assert "  ! Crisis plan in place: see the trust's care plans (RV5)   since 9 Apr 2026" in text
    assert "Detained under" not in text  # ended: not a signal any more
    assert "  now: 01 since 16 Apr 2026 (not detained)" in text
    assert "  stay at LADYWELL-W1: since 9 Apr 2026 (in-progress)" in text
    assert "Nominated person     Lucía Díaz" in text
    assert "SWEMWBS  SWEMWBS raw total (7-35)" in text and "change +4" in text
    assert len(lines) < 60  # one screen


def test_json_gives_the_same_record_for_machines(store: SQLiteStore, hub_env: None) -> None:

    result = CliRunner().invoke(record_command, ["9990000034", "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == record_summary(store, "9990000034")


def test_an_invalid_or_unknown_nhs_number_says_so(store: SQLiteStore, hub_env: None) -> None:
    runner = CliRunner()

    invalid = runner.invoke(record_command, ["9990000035"])
    unknown = runner.invoke(record_command, ["9990000042"])

    assert invalid.exit_code == 1
    assert "'9990000035' is not a valid NHS number (10 digits, Modulus 11 check)" in invalid.output
    assert unknown.exit_code == 1
    assert "no record for NHS number 9990000042" in unknown.output
    with pytest.raises(RecordError):
        record_summary(store, "99900000")


def test_what_a_vcse_organisation_sent_is_not_shown_once_consent_is_withdrawn(
    store: SQLiteStore,
) -> None:
    withdrawn = consent(ORTEGA, "LEW-MIND", "C-000418", "2026-04-10", withdrawn="2026-05-12")
    sources = [r for r in ortega() if r["resourceType"] != "Consent"] + [withdrawn]
    with_derived(store, sources, "2026-05-12T09:00:00+01:00")

    summary = record_summary(store, "9990000034")

    assert [p["id"] for p in summary["plans"]] == ["CP-34001"]
    assert {s["measure"] for s in summary["scores"]} == {"DIALOG"}
    assert all(m["name"] != "P. Osei" for m in summary["team"])


def test_encounters_are_the_latest_few_of_each_source_newest_first(store: SQLiteStore) -> None:
    visits = [
        visit(
            ORTEGA,
            "RJ2",
            "district-nursing/visits",
            f"DN-{day}",
            f"2026-04-{day:02d}T10:00:00+01:00",
            "Medication administration",
        )
        for day in range(1, 9)
    ]
    write(store, visits)

    summary = record_summary(store, "9990000034")

    assert list(summary["encounters"]) == ["RV5", "RJ2"]
    assert [e["date"][:10] for e in summary["encounters"]["RJ2"]] == [
        "2026-04-08",
        "2026-04-07",
        "2026-04-06",
    ]


def test_time_record_measures_each_record(store: SQLiteStore) -> None:
    write(
        store,
        [
            patient(OTHER, "9990000042", "Haddad", "Samira"),
            episode(OTHER, "EP-5101", "membership", "active", "2025-11-01", care_manager=None),
        ],
    )

    timings = time_record(store, ["9990000034", "9990000042"] * 5)

    assert timings.count == 10
    assert 0 < timings.median_ms <= timings.p95_ms <= timings.max_ms
    with pytest.raises(RecordError):
        time_record(store, ["9990000018"])


def test_a_record_with_only_demographics_still_reads_as_a_record(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "fhir.sqlite") as store:
        write(store, [patient(OKAFOR, "9990000018", "Okafor", "Adaeze", practice=None)])
        summary = record_summary(store, "9990000018")

    assert summary["flags"] == [] and summary["team"] == [] and summary["legal_status"] is None
    assert summary["patient"]["gp_practices"] == []
