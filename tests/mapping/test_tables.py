"""Lookup tables: configuration rows a mapping looks values up in, patterns included."""

from __future__ import annotations

import io
import json

import pytest

from hub.mapping import MappingConfigError, MappingSet

PLACES = """
description: points of care
key: code
rows:
  - {code: HEATHER-CLOSE, name: Heather Close, kind: centre, organisation: RV5}
  - {code: 'GUEST-BED-{n}', name: 'Guest bed {n}', kind: guest-bed, organisation: RV5}
  - {code: 'GUEST-BED-9', name: The garden room, kind: guest-bed}
  - {code: 'WARD-{unit}-{n}', name: 'Ward {n} of unit {unit}', kind: ward}
  - {code: HOME, name: Home, kind: home}
"""

MAPPING = """
description: where visits were
format: jsonl
organisation: TEST
resources:
  - id: plan
    type: CarePlan
    key: {system: https://fhir.hub.example/Id/x, value: '1'}
    set:
      status: active
      intent: plan
      note:
        - $each: "=list(place | lookup('places', 'name'), place | lookup('places', 'kind'), place | lookup('places', 'organisation'))"
          text: =@
"""


def _looked_up(mappings: MappingSet, place: str) -> list[str]:
    line = json.dumps({"place": place}).encode() + b"\n"
    (record,) = mappings.get("x/visits").read(io.BytesIO(line), "in.jsonl")
    assert record.ok, record.errors
    return [note["text"] for note in record.resources[0].resource.get("note", [])]


@pytest.fixture
def places(write, mappings) -> MappingSet:
    write("x/tables/places.yaml", PLACES)
    write("x/visits.yaml", MAPPING)
    return mappings


def test_a_row_written_for_the_value_gives_its_columns(places):
    assert _looked_up(places, "HEATHER-CLOSE") == ["Heather Close", "centre", "RV5"]
    assert _looked_up(places, " HOME ") == ["Home", "home"]  # trimmed; no organisation


def test_a_pattern_row_covers_every_bed_filling_in_what_it_matched(places):
    assert _looked_up(places, "GUEST-BED-2") == ["Guest bed 2", "guest-bed", "RV5"]
    assert _looked_up(places, "GUEST-BED-12") == ["Guest bed 12", "guest-bed", "RV5"]
    assert _looked_up(places, "WARD-LADYWELL-3A") == ["Ward 3A of unit LADYWELL", "ward"]


def test_a_row_for_the_exact_value_wins_over_a_pattern(places):
    assert _looked_up(places, "GUEST-BED-9") == ["The garden room", "guest-bed"]


def test_a_value_no_row_fits_gives_nothing(places):
    assert _looked_up(places, "PECKHAM-HUB") == []
    assert _looked_up(places, "GUEST-BED-") == []
    assert _looked_up(places, "guest-bed-2") == []  # codes are matched as written


def test_an_unknown_table_or_column_fails_when_the_mapping_loads(write, mappings):
    write("x/tables/places.yaml", PLACES)
    write("x/visits.yaml", MAPPING.replace("'places', 'kind'", "'places', 'knid'"))
    with pytest.raises(MappingConfigError, match="table 'places' has no column 'knid'"):
        mappings.get("x/visits")
    write("x/visits.yaml", MAPPING.replace("'places', 'kind'", "'wards', 'kind'"))
    with pytest.raises(MappingConfigError, match="no table 'wards' in x/tables/ or tables/"):
        MappingSet(mappings.root).get("x/visits")


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ("{code: 'W{n}', name: 'Bed {b}'}", "uses {b}, which its key 'W{n}' does not match"),
        ("{code: 'W{n}-{n}'}", "names a placeholder twice"),
        ("{name: Nowhere}", "has no 'code' (the key column)"),
        ("{code: W1, beds: 12}", "12 must be quoted text"),
    ],
)
def test_check_names_the_table_and_what_is_wrong_with_a_row(write, mappings, row, says):
    write("x/tables/wards.yaml", f"description: wards\nkey: code\nrows:\n  - {row}\n")
    (problem,) = mappings.check()
    assert str(problem).startswith("mappings/x/tables/wards.yaml")
    assert says in str(problem)


def test_a_table_is_not_a_mapping_and_changing_it_changes_the_mapping_version(places, write):
    assert "x/tables/places" not in places.names()
    before = places.get("x/visits").version
    write("x/tables/places.yaml", PLACES.replace("Heather Close,", "Heather Close Centre,"))
    assert MappingSet(places.root).get("x/visits").version != before
