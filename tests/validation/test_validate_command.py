"""`hub validate FILE...`: one line per broken rule, a summary, and the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.validation import validate_command

from ._examples import HUB, good_resources, write_json


def _run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(validate_command, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def _key(resource: dict) -> str:
    identifier = resource["identifier"]
    first = identifier if isinstance(identifier, dict) else identifier[0]
    return f"{resource['resourceType']}?identifier={first['system']}|{first['value']}"


def _transaction(resources: list[dict]) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": r, "request": {"method": "PUT", "url": _key(r)}} for r in resources],
    }


def test_good_resource_passes_with_exit_code_0(tmp_path: Path) -> None:
    path = write_json(tmp_path / "patient.json", good_resources()[0])
    code, out, _ = _run(path)
    assert code == 0
    assert out == "1 resources checked, 0 with errors\n"


def test_good_transaction_of_every_kind_passes(tmp_path: Path) -> None:
    path = write_json(tmp_path / "bundle.json", _transaction(good_resources()))
    code, out, _ = _run(path)
    assert (code, out) == (0, "9 resources checked, 0 with errors\n")


def test_broken_entry_is_named_by_index_and_rule_with_exit_code_1(tmp_path: Path) -> None:
    resources = good_resources()
    careplan = resources[2]
    careplan["intent"] = "order"
    path = write_json(tmp_path / "bundle.json", _transaction(resources))
    code, out, _ = _run(path)
    assert code == 1
    lines = out.splitlines()
    assert lines == [
        f"{path} entry[2] CarePlan?identifier={HUB}/Id/RV5/careplan|CP-55120: "
        "hub-CarePlan: CarePlan.intent fixed: is 'order' but must be 'plan' (CarePlan.intent)",
        "9 resources checked, 1 with errors",
    ]


def test_transaction_entry_without_request_is_rejected(tmp_path: Path) -> None:
    bundle = _transaction(good_resources()[:2])
    del bundle["entry"][1]["request"]
    bundle["entry"][0]["request"]["url"] = "Encounter?identifier=x"
    code, out, _ = _run(write_json(tmp_path / "bundle.json", bundle))
    assert code == 1
    assert "entry[0] " in out and "url 'Encounter?identifier=x' is not for a Patient" in out
    assert "entry[1] " in out and "Bundle.entry.request: a transaction entry needs a request" in out


def test_json_lines_are_checked_line_by_line(tmp_path: Path) -> None:
    resources = good_resources()
    resources[4]["item"][0]["answer"][0]["valueInteger"] = 9
    path = tmp_path / "resources.jsonl"
    path.write_text(
        "\n".join(json.dumps(r) for r in resources[:3])
        + "\n\n"
        + "\n".join(json.dumps(r) for r in resources[3:])
        + "\n",
        encoding="utf-8",
    )
    code, out, _ = _run(path)
    assert code == 1
    assert f"{path} line 6 QuestionnaireResponse?identifier=" in out
    assert "phq-9: phq9-1 in 0..3: answer 9 to phq9-1 is outside 0..3" in out
    assert "phq-9: phq9-total is the sum of phq9-1..phq9-9" in out
    assert out.endswith("8 resources checked, 1 with errors\n")


def test_base_r4_errors_come_first_and_name_r4(tmp_path: Path) -> None:
    patient = good_resources()[0]
    patient["id"] = "okafor"
    patient["birthDate"] = "14/03/1985"
    del patient["identifier"]
    code, out, _ = _run(write_json(tmp_path / "patient.json", patient))
    assert code == 1
    first, second = out.splitlines()[:2]
    assert first.startswith(f"{tmp_path / 'patient.json'} resource Patient/okafor: R4: ")
    assert "birthDate" in first
    assert "hub-Patient: Patient.identifier min 1" in second


def test_warnings_are_shown_but_do_not_fail(tmp_path: Path) -> None:
    response = good_resources()[4]
    response["questionnaire"] = f"{HUB}/Questionnaire/reqol-10"
    code, out, _ = _run(write_json(tmp_path / "qr.json", response))
    assert code == 0
    assert "questionnaire is loaded (warning)" in out
    assert out.endswith("1 resources checked, 0 with errors\n")


def test_unreadable_input_exits_2(tmp_path: Path) -> None:
    good = write_json(tmp_path / "patient.json", good_resources()[0])
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    code, out, err = _run(good, broken, tmp_path / "missing.json")
    assert code == 2
    assert f"{broken}: unreadable: is not JSON" in err
    assert f"{tmp_path / 'missing.json'}: unreadable: cannot be read" in err
    assert out == "1 resources checked, 0 with errors\n"


def test_json_array_is_not_a_resource(tmp_path: Path) -> None:
    code, _, err = _run(write_json(tmp_path / "list.json", good_resources()))
    assert code == 2
    assert "a JSON list is not a FHIR resource" in err


def test_json_option_prints_an_operation_outcome_per_resource(tmp_path: Path) -> None:
    resources = good_resources()[:2]
    del resources[1]["status"]
    path = write_json(tmp_path / "bundle.json", _transaction(resources))
    code, out, err = _run("--json", path)
    assert code == 1
    outcomes = [json.loads(line) for line in out.splitlines()]
    assert [o["where"] for o in outcomes] == ["bundle", "entry[0]", "entry[1]"]
    assert all(o["outcome"]["resourceType"] == "OperationOutcome" for o in outcomes)
    assert outcomes[1]["outcome"]["issue"] == [
        {"severity": "information", "code": "informational", "diagnostics": "No issues"}
    ]
    rules = [i["details"]["text"] for i in outcomes[2]["outcome"]["issue"]]
    assert "hub-Encounter: Encounter.status min 1" in rules
    assert err == "3 resources checked, 1 with errors\n"


def test_profiles_option_and_unloadable_profiles(tmp_path: Path, profiles_copy: Path) -> None:
    path = write_json(tmp_path / "patient.json", good_resources()[0])
    assert _run("--profiles", profiles_copy, path)[0] == 0
    (profiles_copy / "ValueSet" / "encounter-class.json").write_text("[", encoding="utf-8")
    code, _, err = _run("--profiles", profiles_copy, path)
    assert code == 2
    assert "cannot load the profiles" in err and "encounter-class.json" in err


def test_profiles_folder_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_PROFILES_DIR", str(tmp_path / "nowhere"))
    code, _, err = _run(write_json(tmp_path / "patient.json", good_resources()[0]))
    assert code == 2
    assert "nowhere" in err
