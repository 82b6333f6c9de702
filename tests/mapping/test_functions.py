"""Each function of the mapping language, through a one-element mapping over one JSON line."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from hub.mapping import MappingSet, hl7_datetime, nhs_number_is_valid, normalise_postcode


def _value(write, mappings: MappingSet, expression: str, record: dict[str, Any]) -> Any:
    """What `expression` gives for `record`, as the `text` of an Annotation (any text)."""
    write(
        "x/fn.yaml",
        f"""
        description: one expression
        format: jsonl
        organisation: TEST
        resources:
          - id: plan
            type: CarePlan
            key: {{system: https://fhir.hub.example/Id/x, value: '1'}}
            set:
              status: active
              intent: plan
              note:
                - $each: "{expression}"
                  text: =@
        """,
    )
    (outcome,) = (
        MappingSet(mappings.root)
        .get("x/fn")
        .read(io.BytesIO(json.dumps(record).encode() + b"\n"), "in.jsonl")
    )
    if outcome.errors:
        return ("error", outcome.errors[0].split(": ", 1)[1])
    return [note["text"] for note in outcome.resources[0].resource.get("note", [])]


@pytest.mark.parametrize(
    ("expression", "record", "expected"),
    [
        ("=v | trim", {"v": "  a b  "}, ["a b"]),
        ("=v | upper", {"v": "se4"}, ["SE4"]),
        ("=v | lower", {"v": "ABC"}, ["abc"]),
        ("=v | title", {"v": "ORTEGA-DÍAZ"}, ["Ortega-Díaz"]),
        ("=v | title", {"v": "o'brien"}, ["O'Brien"]),
        ("=v | title", {"v": "McDonald"}, ["McDonald"]),  # mixed case is kept as written
        (
            "=v | split(';')",
            {"v": "Keep tenancy; Join day programme;; "},
            ["Keep tenancy", "Join day programme"],
        ),
        ("=v | join(', ')", {"v": ["a", "b"]}, ["a, b"]),
        ("=v | replace('-', ' ')", {"v": "a-b"}, ["a b"]),
        ("=v | date('%d/%m/%Y')", {"v": "1/4/2026"}, ["2026-04-01"]),
        ("=v | date('%d/%m/%Y', '%Y-%m-%d')", {"v": "2026-04-01"}, ["2026-04-01"]),
        (
            "=v | date('%d/%m/%Y')",
            {"v": "31/02/2026"},
            ("error", "'31/02/2026' does not fit the format %d/%m/%Y"),
        ),
        (
            "=v | datetime('%d/%m/%Y %H:%M')",
            {"v": "10/04/2026 14:00"},
            ["2026-04-10T14:00:00+01:00"],
        ),
        (
            "=v | datetime('%d/%m/%Y %H:%M')",
            {"v": "10/01/2026 14:00"},
            ["2026-01-10T14:00:00+00:00"],
        ),
        ("=v | datetime", {"v": "2026-04-11T10:15:00+01:00"}, ["2026-04-11T10:15:00+01:00"]),
        (
            "=v | datetime",
            {"v": "2026-04-11"},
            ("error", "'2026-04-11' has no time of day (expected ISO 8601 date and time)"),
        ),
        ("=v | hl7_datetime", {"v": "20260412093000"}, ["2026-04-12T09:30:00+01:00"]),
        ("=v | nhs_number", {"v": "999 000 0018"}, ["9990000018"]),
        ("=v | nhs_number", {"v": "9990000019"}, []),
        ("=v | invalid_nhs_number", {"v": "9.99E+09"}, ["9.99E+09"]),
        ("=v | invalid_nhs_number", {"v": "9990000018"}, []),
        ("=v | postcode", {"v": "se64ru"}, ["SE6 4RU"]),
        ("=v | int | string", {"v": "007"}, ["7"]),
        ("=v | decimal | string", {"v": "2.50"}, ["2.5"]),
        ("=v | int", {"v": "9.99E+09"}, ("error", "'9.99E+09' is not a whole number")),
        ("=v | sum | string", {"v": [1, 2, "3"]}, ["6"]),
        ("=v | mean | round(2) | string", {"v": [3, 4, 4]}, ["3.67"]),
        ("=v | count | string", {"v": ["a", "b"]}, ["2"]),
        ("=v | first", {"v": ["a", "b"]}, ["a"]),
        ("=v | last", {"v": ["a", "b"]}, ["b"]),
        ("=v | default('none')", {}, ["none"]),
        ("=v | required('no value')", {}, ("error", "no value")),
        ("=v | eq('Y') | string", {"v": "Y"}, ["true"]),
        ("=v | ne('Y') | string", {}, ["true"]),
        ("=v | in('Telephone', 'Video') | string", {"v": "Video"}, ["true"]),
        ("=v | matches('[0-9]{3}') | string", {"v": "12a"}, ["false"]),
        ("=v | exists | string", {"v": " "}, ["false"]),
        ("=v | not | string", {}, ["true"]),
        ("=if(v | eq('H'), 'home', 'other')", {"v": "H"}, ["home"]),
        ("=if(v, 'yes')", {}, []),
        ("=coalesce(a, b, 'c')", {"b": "B"}, ["B"]),
        ("=concat(a, '/', b)", {"a": "A", "b": "B"}, ["A/B"]),
        ("=concat(a, '/', b)", {"a": "A"}, []),  # a missing part: no half-made identifier
        ("=list(a, b, a)", {"a": "A", "b": "B"}, ["A", "B", "A"]),
        ("=v | @.k", {"v": [{"k": "1"}, {"k": "2"}]}, ["1", "2"]),
        ("=v | get('k')", {"v": [{"k": "1"}, {"j": "2"}, "k"]}, ["1"]),
        ("='it''s'", {}, ["it's"]),
    ],
)
def test_function(write, mappings, expression, record, expected):
    assert _value(write, mappings, expression, record) == expected


def test_hash_is_a_short_stable_key_that_does_not_show_the_text(write, mappings):
    (key,) = _value(write, mappings, "=v | hash", {"v": "REILLY^MAIREAD"})
    assert len(key) == 16 and set(key) <= set("0123456789abcdef")
    assert "REILLY" not in key
    assert _value(write, mappings, "=v | hash", {"v": "REILLY^MAIREAD"}) == [key]
    assert _value(write, mappings, "=v | hash", {"v": "REILLY^MARY"}) != [key]
    assert _value(write, mappings, "=v | hash", {}) == []


def test_map_code_display_and_system(write, mappings):
    write(
        "x/maps/kinds.yaml",
        """
        description: kinds
        target: https://example.org/kinds
        match: ignore-case
        unmapped: omit
        map:
          Home: {code: HH, display: home health}
        """,
    )
    value = _value(
        write,
        mappings,
        "=list(v | map('kinds') | code, v | map('kinds') | display, v | map('kinds') | system)",
        {"v": "HOME"},
    )
    assert value == ["HH", "home health", "https://example.org/kinds"]
    assert _value(write, mappings, "=v | map('kinds') | code", {"v": "Clinic"}) == []


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("9990000018", True),
        ("9990000050", True),  # check digit 11 -> 0
        ("9434765919", True),
        ("9990000019", False),
        ("9990000000", False),  # check digit 10: never issued
        ("999000001", False),
        ("999000001\uff18", False),  # a non-ASCII (full-width) digit
    ],
)
def test_nhs_number_modulus_11(number, valid):
    assert nhs_number_is_valid(number) is valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SE4 2AB", "SE4 2AB"),
        ("se42ab", "SE4 2AB"),
        ("  SE13   7QD ", "SE13 7QD"),
        ("W1A0AX", "W1A 0AX"),
        ("unknown", "UNKNOWN"),
    ],
)
def test_postcode_normalised_or_kept(text, expected):
    assert normalise_postcode(text) == expected


@pytest.mark.parametrize(
    ("ts", "fhir"),
    [
        ("1985", "1985"),
        ("198503", "1985-03"),
        ("19850314", "1985-03-14"),
        ("202604120930", "2026-04-12T09:30:00+01:00"),
        ("20260112093015", "2026-01-12T09:30:15+00:00"),
        ("20260412093000+0000", "2026-04-12T09:30:00+00:00"),
        ("20260412093000.5", "2026-04-12T09:30:00.500+01:00"),
    ],
)
def test_hl7_datetime_keeps_precision_and_zone(ts, fhir):
    assert hl7_datetime(ts) == fhir
