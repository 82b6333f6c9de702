"""The package's shared face: the formats by name, records and errors."""

from __future__ import annotations

import pickle

import pytest

from hub.sources import FORMATS, SourceError, SourceRecord, source_format


def test_the_four_formats_are_known_by_name() -> None:
    assert set(FORMATS) == {"hl7v2", "csv", "jsonl", "stu3-bundle"}
    assert all(source_format(name).name == name for name in FORMATS)


def test_an_unknown_format_is_a_value_error_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown source format 'xml'; known: hl7v2, csv"):
        source_format("xml")


def test_a_record_locates_itself_by_file_and_line() -> None:
    assert SourceRecord("adt.hl7", 12, None, b"").locator == "adt.hl7 line 12"


def test_errors_name_the_file_and_the_line_when_there_is_one() -> None:
    row = SourceError("visits.csv", 7, "row has 15 cells, the header has 14")
    whole = SourceError("visits.csv", None, "missing column(s) nhs_numbr")
    assert str(row) == "visits.csv line 7: row has 15 cells, the header has 14"
    assert str(whole) == "visits.csv: missing column(s) nhs_numbr"
    assert (row.file, row.line, row.reason) == (
        "visits.csv",
        7,
        "row has 15 cells, the header has 14",
    )


def test_errors_survive_pickling_for_worker_processes() -> None:
    error = pickle.loads(pickle.dumps(SourceError("a.csv", 3, "bad")))
    assert (error.file, error.line, error.reason, str(error)) == (
        "a.csv",
        3,
        "bad",
        "a.csv line 3: bad",
    )


def test_compiled_paths_are_shared_between_identical_texts() -> None:
    for name, path in [("hl7v2", "PID-5.1"), ("csv", "nhs_number"), ("jsonl", "a.b")]:
        fmt = source_format(name)
        assert fmt.compile_path(path) is fmt.compile_path(path)
