"""Splitting inputs into inbox items: each item alone reads back as the record it was, and a
large input is split as it is read."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from hub.listeners import read_items
from hub.mapping import Mapping, MappingSet
from hub.pipeline import read_record as record_of
from hub.sources import Hl7Message, SourceError, SourceRecord
from tests.listeners._helpers import MAPPINGS

EXAMPLES = sorted(
    path
    for path in MAPPINGS.glob("*/examples/*")
    if path.is_file() and not path.name.endswith(".expected.json")
)
# An example without an expected file is read by a mapping of its format.
_BY_SUFFIX = {".hl7": "slam-epr/adt", ".jsonl": "slam-epr/careplans", ".csv": "vcse/clients"}


def mapping_for(mappings: MappingSet, example: Path) -> Mapping:
    expected = example.with_name(example.name + ".expected.json")
    if expected.is_file():
        return mappings.get(json.loads(expected.read_text(encoding="utf-8"))["mapping"])
    return mappings.get(_BY_SUFFIX[example.suffix])


def comparable(data: Any) -> Any:
    if isinstance(data, Hl7Message):
        return [segment.text for segment in data.segments]
    return data


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_each_item_of_an_example_reads_back_as_its_record(
    mappings: MappingSet, example: Path
) -> None:
    mapping = mapping_for(mappings, example)
    with example.open("rb") as stream:
        originals = list(mapping.format.read(stream, example.name, columns=mapping.columns))
    with example.open("rb") as stream:
        items = list(read_items(mapping, stream, example.name, "file"))

    assert len(items) == len(originals) > 0
    for original, item in zip(originals, items, strict=True):
        assert (item.mapping, item.channel, item.origin) == (mapping.name, "file", example.name)
        if isinstance(original, SourceError):
            assert item.error == str(original)
            assert item.line == (original.line or 1)
            continue
        assert item.error is None
        assert item.line == original.line
        back = record_of(mapping, item.raw, example.name, item.line)
        assert isinstance(back, SourceRecord), back
        assert (back.file, back.line, back.raw) == (example.name, original.line, original.raw)
        assert comparable(back.data) == comparable(original.data)
        if isinstance(original.data, Hl7Message):
            assert item.message_id == original.data.segments[0].fields()[10]
        else:
            assert item.message_id is None


def test_a_csv_row_is_stored_behind_its_header_line(mappings: MappingSet) -> None:
    mapping = mappings.get("vcse/clients")
    example = MAPPINGS / "vcse" / "examples" / "clients-awkward.csv"
    with example.open("rb") as stream:
        items = list(read_items(mapping, stream, "clients.csv", "http"))

    header = b"org_id,client_ref,first_name,last_name,date_of_birth"
    assert all(item.raw.startswith(header) for item in items if item.error is None)  # no BOM
    first = next(item for item in items if item.error is None)
    assert first.raw.count(b"\r\n") == 1  # the header line, then the row itself
    back = record_of(mapping, first.raw, "clients.csv", first.line)
    assert isinstance(back, SourceRecord) and back.line == first.line


def test_unreadable_records_become_items_with_the_error(mappings: MappingSet) -> None:
    mapping = mappings.get("slam-epr/careplans")
    content = b'{"plan_id": "P1"}\n{not json\n[1, 2]\n{"plan_id": "P2"}\n'
    items = list(read_items(mapping, io.BytesIO(content), "careplans.jsonl", "file"))

    assert [i.line for i in items] == [1, 2, 3, 4]
    assert [i.error for i in items[::3]] == [None, None]
    assert str(items[1].error).startswith("careplans.jsonl line 2: not valid JSON at column 2")
    assert items[2].error == "careplans.jsonl line 3: expected a JSON object, found an array"
    # The unreadable lines themselves are kept, for the dead letter to show and replay.
    assert [items[1].raw, items[2].raw] == [b"{not json", b"[1, 2]"]


def test_a_csv_without_the_columns_its_mapping_reads_is_one_failed_item(
    mappings: MappingSet,
) -> None:
    mapping = mappings.get("vcse/clients")
    (item,) = read_items(mapping, io.BytesIO(b"org_id,other\r\nX,1\r\n"), "c.csv", "file")
    assert item.line == 1
    assert item.error is not None and item.error.startswith("c.csv: missing column(s)")


def test_an_item_that_is_not_one_record_does_not_read_back(mappings: MappingSet) -> None:
    mapping = mappings.get("slam-epr/careplans")
    two = record_of(mapping, b'{"a": 1}\n{"b": 2}\n', "careplans.jsonl", 7)
    broken = record_of(mapping, b"{oops", "careplans.jsonl", 9)
    assert str(two) == "careplans.jsonl line 7: 2 records in one inbox item"
    assert isinstance(broken, SourceError) and broken.line == 9


class GeneratedCsv(io.RawIOBase):
    """A CSV of `size` bytes made up as it is read: the header, then one row over and over."""

    def __init__(self, header: bytes, row: bytes, size: int) -> None:
        self.current, self.at, self.row, self.left = header, 0, row, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.at == len(self.current):
            if self.left <= 0:
                return 0
            self.current, self.at = self.row, 0
            self.left -= len(self.row)
        count = min(len(buffer), len(self.current) - self.at)
        buffer[:count] = self.current[self.at : self.at + count]
        self.at += count
        return count


def test_a_200_mb_csv_is_split_in_far_less_memory_than_its_size(mappings: MappingSet) -> None:
    mapping = mappings.get("district-nursing/visits")
    header, row = (
        (MAPPINGS / "district-nursing/examples/visits.csv").read_bytes().split(b"\r\n")[:2]
    )
    # Long rows keep the test quick: the cost is per row, the memory per row too.
    row = row.replace(b"A. Brown RN", b"A. Brown RN " + b"x" * 20_000) + b"\r\n"
    size = 200 << 20
    stream = io.BufferedReader(GeneratedCsv(header + b"\r\n", row, size))

    tracemalloc.start()
    try:
        count = sum(
            1 for item in read_items(mapping, stream, "visits.csv", "file") if item.error is None
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert count == -(-size // len(row))
    assert peak < 8 << 20
