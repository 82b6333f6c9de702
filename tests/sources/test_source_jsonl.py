"""jsonl: one JSON object per line, and the JSON path language shared with stu3-bundle."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from hub.sources import PathSyntaxError, SourceError, SourceRecord, source_format
from tests.sources._helpers import endless, errors, get, read_all, records

JSONL = source_format("jsonl")


def test_example_care_plans_are_one_record_per_line(example: Path) -> None:
    content = example("slam-epr/careplans.jsonl").read_bytes()
    items = read_all("jsonl", content, "careplans.jsonl")

    assert not errors(items)
    assert [r.line for r in items] == list(range(1, len(items) + 1))
    assert items[0].raw == content.splitlines()[0]
    assert get("jsonl", "care_coordinator.name", items[0].data) == ["Kwame Mensah"]


def test_bad_json_line_is_reported_and_reading_goes_on() -> None:
    content = b'{"a": 1}\n{"a": 2,,}\n[1, 2]\n"text"\n{"a": 3}\n'
    items = read_all("jsonl", content, "plans.jsonl")

    assert [type(i) for i in items] == [
        SourceRecord,
        SourceError,
        SourceError,
        SourceError,
        SourceRecord,
    ]
    assert items[1].line == 2
    assert str(items[1]).startswith("plans.jsonl line 2: not valid JSON at column 9:")
    assert str(items[2]) == "plans.jsonl line 3: expected a JSON object, found an array"
    assert str(items[3]) == "plans.jsonl line 4: expected a JSON object, found a string"
    assert items[4].data == {"a": 3}


def test_bom_crlf_and_blank_lines_are_tolerated() -> None:
    content = b'\xef\xbb\xbf{"a": 1}\r\n\r\n   \r\n{"a": 2}'
    items = read_all("jsonl", content)
    assert [(r.line, r.data, r.raw) for r in records(items)] == [
        (1, {"a": 1}, b'{"a": 1}'),
        (4, {"a": 2}, b'{"a": 2}'),
    ]


def test_reading_is_streaming() -> None:
    stream, _ = endless(b"", b'{"a": 1}\n')
    first_three = list(itertools.islice(JSONL.read(stream, "endless.jsonl"), 3))
    assert [r.line for r in first_three] == [1, 2, 3]


PLAN: dict[str, Any] = {
    "plan_id": " CP-55121 ",
    "nhs_number": "",
    "end": None,
    "care_coordinator": {"id": "C1234567", "name": "Kwame Mensah"},
    "goals": [
        {"id": "G1", "description": "Return to part-time work", "status": "in-progress"},
        {"id": "G2", "description": "Sleep better", "status": "accepted"},
        {"id": 3, "description": "  ", "status": "accepted"},
    ],
    "scores": {"mental_health": 3, "weight": 71.5, "smoker": False},
    "identifier": [
        {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"},
        {"system": "https://trust.example/mrn", "value": "RV5A000123"},
    ],
    "tags": [["a", "b"], "c"],
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("plan_id", ["CP-55121"]),
        ("care_coordinator.name", ["Kwame Mensah"]),
        ("goals.description", ["Return to part-time work", "Sleep better"]),
        ("goals[status=accepted].id", ["G2", 3]),
        ("goals[id=3].status", ["accepted"]),
        ("goals[id=G1][status=in-progress].description", ["Return to part-time work"]),
        ("identifier[system=https://fhir.nhs.uk/Id/nhs-number].value", ["9990000018"]),
        ("scores.mental_health", [3]),
        ("scores.weight", [71.5]),
        ("scores.smoker", [False]),
        ("scores[smoker=false].mental_health", [3]),
        ("nhs_number", []),
        ("end", []),
        ("missing", []),
        ("care_coordinator.missing.deeper", []),
        ("plan_id.not_an_object", []),
    ],
)
def test_json_paths_flatten_lists_and_drop_what_is_missing(path: str, expected: list) -> None:
    assert get("jsonl", path, PLAN) == expected


def test_objects_are_returned_as_dicts() -> None:
    assert get("jsonl", "care_coordinator", PLAN) == [PLAN["care_coordinator"]]
    assert len(get("jsonl", "goals", PLAN)) == 3


def test_relative_paths_start_at_the_current_item() -> None:
    goals = get("jsonl", "goals", PLAN)
    assert [get("jsonl", "@.description", PLAN, goal) for goal in goals] == [
        ["Return to part-time work"],
        ["Sleep better"],
        [],
    ]
    assert get("jsonl", "@", PLAN, goals[0]) == [goals[0]]
    assert get("jsonl", "@[status=accepted].id", PLAN, goals[1]) == ["G2"]
    assert get("jsonl", "@[status=accepted]", PLAN, goals[0]) == []
    assert get("jsonl", "@", PLAN, "  text ") == ["text"]
    assert get("jsonl", "@.id", PLAN, None) == []


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "empty path"),
        ("goals..description", "expected a key name at position 7"),
        ("goals[status=accepted", "never closed"),
        ("goals[status].id", "should read [key=value]"),
        ("goals[=x].id", "should read [key=value]"),
        ("goals.", "expected a key name at position 7, found the end"),
        ("goals description", "expected '.' or '['"),
        ("@x", "expected '.' after '@'"),
    ],
)
def test_path_syntax_errors_say_what_is_wrong(path: str, problem: str) -> None:
    with pytest.raises(PathSyntaxError) as caught:
        JSONL.compile_path(path)
    assert problem in str(caught.value)


def test_check_path_has_nothing_to_check() -> None:
    assert JSONL.check_path("anything.at.all") is None
