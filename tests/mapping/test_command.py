"""`hub mappings ...` as an integrator runs it (click's runner, a mappings folder per test)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hub.cli import main
from hub.fhir import validate_resource

GOOD = """
description: test sessions
format: csv
organisation: =org_id
record_id: =session_id
private: [notes]
resources:
  - id: session
    type: Encounter
    key:
      system: =concat($hub_id, '/', org_id, '/session')
      value: =session_id
    set:
      status: finished
      class: {system: http://terminology.hl7.org/CodeSystem/v3-ActCode, code: AMB}
      period: {start: "=concat(session_date, ' ', start_time) | datetime('%d/%m/%Y %H:%M')"}
      length: {value: =duration_minutes, unit: min}
"""
ROWS = (
    "org_id,session_id,session_date,start_time,duration_minutes,notes\n"
    "LEW-MIND,S-1,10/04/2026,14:00,60,secret words\n"
    "LEW-MIND,S-2,10/04/2026,14:00,sixty,\n"
)


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_preview_prints_each_records_fhir_and_errors_without_the_private_column(
    tmp_path, write, mappings
):
    write("vcse/sessions.yaml", GOOD)
    data = tmp_path / "sessions.csv"
    data.write_text(ROWS)
    result = _invoke(
        "mappings",
        "preview",
        "vcse/sessions",
        str(data),
        "--dir",
        str(mappings.root),
        "--no-profiles",
    )
    assert result.exit_code == 0
    shown = json.loads(result.output)
    first, second = shown["records"]
    encounter = first["resources"][0]
    assert encounter["period"] == {"start": "2026-04-10T14:00:00+01:00"}  # BST in April
    assert encounter["length"] == {"value": 60, "unit": "min"}
    validate_resource(encounter)
    assert second == {
        "record": "sessions.csv line 3 (S-2)",
        "errors": ["Encounter.length.value from duration_minutes: 'sixty' is not a number"],
    }
    assert "secret" not in result.output


def test_preview_transaction_shows_conditional_updates(tmp_path, write, mappings):
    write("vcse/sessions.yaml", GOOD)
    data = tmp_path / "sessions.csv"
    data.write_text(ROWS)
    result = _invoke(
        "mappings", "preview", "vcse/sessions", str(data), "--dir", str(mappings.root),
        "--no-profiles", "--transaction",
    )  # fmt: skip
    bundle = json.loads(result.output.splitlines()[0])
    assert bundle["type"] == "transaction"
    assert bundle["entry"][0]["request"] == {
        "method": "PUT",
        "url": "Encounter?identifier=https://fhir.hub.example/Id/LEW-MIND/session|S-1",
    }


def test_check_names_file_line_and_key_and_fails(write, mappings):
    write("vcse/sessions.yaml", GOOD.replace("status: finished", "statuss: finished"))
    result = _invoke("mappings", "check", "--dir", str(mappings.root))
    assert result.exit_code == 1
    assert "vcse/sessions.yaml line 13 (resources[0].set.statuss)" in result.output
    assert (
        "Encounter has no element 'statuss' (did you mean status or statusHistory?)"
        in result.output
    )


def test_check_passes_a_good_folder(write, mappings):
    write("vcse/sessions.yaml", GOOD)
    result = _invoke("mappings", "check", "--dir", str(mappings.root))
    assert result.exit_code == 0, result.output
    assert "1 mappings" in result.output


def test_test_shows_a_readable_diff_and_accept_updates(tmp_path, write, mappings):
    write("vcse/sessions.yaml", GOOD)
    write("vcse/examples/sessions.csv", ROWS)
    expected = write(
        "vcse/examples/sessions.csv.expected.json",
        json.dumps({"mapping": "vcse/sessions", "records": []}),
    )
    (tmp_path / "profiles").mkdir()
    args = (
        "mappings",
        "test",
        "--dir",
        str(mappings.root),
        "--profiles",
        str(tmp_path / "profiles"),
    )
    failed = _invoke(*args)
    assert failed.exit_code == 1
    assert "FAIL mappings/vcse/examples/sessions.csv.expected.json (vcse/sessions)" in failed.output
    assert '+      "record": "sessions.csv line 2 (S-1)",' in failed.output
    assert _invoke(*args, "--accept").exit_code == 0
    assert json.loads(expected.read_text())["records"][0]["record"] == "sessions.csv line 2 (S-1)"
    passed = _invoke(*args)
    assert passed.exit_code == 0 and "1 of 1 examples pass" in passed.output


def test_conceptmaps_prints_every_value_map_as_a_valid_concept_map(write, mappings):
    write(
        "vcse/maps/delivery.yaml",
        """
        description: delivery mode to encounter class
        target: http://terminology.hl7.org/CodeSystem/v3-ActCode
        map:
          Face to face: AMB
          Telephone: {code: VR, display: virtual}
        """,
    )
    result = _invoke("mappings", "conceptmaps", "--dir", str(mappings.root))
    bundle = json.loads(result.output)
    validate_resource(bundle)
    (entry,) = bundle["entry"]
    assert entry["resource"]["url"] == "https://fhir.hub.example/ConceptMap/vcse/delivery"


def test_publish_writes_concept_maps_and_profiles_to_the_store_once(
    tmp_path, write, mappings, monkeypatch
):
    from hub.settings import HubSettings
    from hub.store import open_store

    write("vcse/maps/delivery.yaml", "description: d\nmap:\n  Telephone: VR\n")
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "cs.json").write_text(
        json.dumps(
            {
                "resourceType": "CodeSystem",
                "url": "https://fhir.hub.example/CodeSystem/x",
                "status": "active",
                "content": "complete",
                "concept": [{"code": "a"}],
            }
        )
    )
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "data"))
    args = ("mappings", "publish", "--dir", str(mappings.root), "--profiles", str(profiles))
    assert "2 new" in _invoke(*args).output
    assert "0 new, 2 updated or unchanged" in _invoke(*args).output
    store = open_store(HubSettings())
    try:
        url = "https://fhir.hub.example/ConceptMap/vcse/delivery"
        page = store.search("ConceptMap", [("url", url)])
        assert [r["url"] for r in page.matches] == [url]
        assert len(store.search("CodeSystem", []).matches) == 1
    finally:
        store.close()


def test_publish_writes_the_real_profiles_with_their_search_parameters(tmp_path, monkeypatch):
    from hub.settings import HubSettings
    from hub.store import open_store

    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "data"))
    assert "new" in _invoke("mappings", "publish").output
    store = open_store(HubSettings())
    try:
        page = store.search("SearchParameter", [("code", "legal-status"), ("base", "Encounter")])
        assert [r["expression"].split("'")[1] for r in page.matches] == [
            "https://fhir.hub.example/StructureDefinition/legal-status-period"
        ]
    finally:
        store.close()


def test_list_shows_each_mapping_with_its_format_and_a_broken_one_as_broken(write, mappings):
    write("vcse/sessions.yaml", GOOD)
    write("vcse/clients.yaml", GOOD.replace("format: csv", "format: xls"))
    lines = _invoke("mappings", "list", "--dir", str(mappings.root)).output.splitlines()
    assert lines[1].split()[:3] == ["vcse/sessions", "csv", "test"]
    assert lines[0].startswith("vcse/clients") and "(broken:" in lines[0]
