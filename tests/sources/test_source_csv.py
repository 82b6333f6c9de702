"""csv: district nursing and VCSE exports -> one record per row, columns as paths."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest

from hub.sources import PathSyntaxError, SourceError, SourceRecord, source_format
from tests.sources._helpers import endless, errors, get, read_all, records

CSV = source_format("csv")
HEADER = b"org_id,client_ref,first_name,nhs_number\r\n"


def test_example_visits_are_read_with_their_lines_and_raw_bytes(example: Path) -> None:
    content = example("district-nursing/visits.csv").read_bytes()
    items = read_all("csv", content, "visits.csv", columns=frozenset({"nhs_number", "visit_id"}))

    assert not errors(items)
    assert [r.locator for r in items] == [f"visits.csv line {n}" for n in (2, 3, 4)]
    assert items[2].data["nhs_number"] == "999 000 0018"
    assert items[1].data["visit_end"] == ""
    assert items[0].raw == content.split(b"\r\n")[1]


def test_bom_blank_lines_and_trailing_spaces_are_ignored() -> None:
    content = (
        b"\xef\xbb\xbf\r\n"
        b" org_id , client_ref ,first_name,nhs_number \r\n"
        b"\r\n"
        b"LEW-MIND,C-000417,  Adaeze  ,9990000018   \r\n"
        b" , ,,\r\n"
        b"   \r\n"
        b"LEW-MIND,C-000418,Marisol,\r\n"
    )
    items = read_all("csv", content, "clients.csv", columns=frozenset({"org_id", "nhs_number"}))

    assert not errors(items)
    assert [r.line for r in items] == [4, 7]
    assert items[0].data == {
        "org_id": "LEW-MIND",
        "client_ref": "C-000417",
        "first_name": "Adaeze",
        "nhs_number": "9990000018",
    }
    assert get("csv", "nhs_number", items[1].data) == []


def test_formula_like_cells_are_kept_as_text() -> None:
    content = (
        HEADER + b'X,=HYPERLINK("http://x"),+44 7700 900123,-1\r\nX,@SUM(A1),=1+1,9.99E+09\r\n'
    )
    first, second = records(read_all("csv", content))
    assert first.data["client_ref"] == '=HYPERLINK("http://x")'
    assert first.data["first_name"] == "+44 7700 900123"
    assert first.data["nhs_number"] == "-1"
    assert second.data["client_ref"] == "@SUM(A1)"
    assert second.data["first_name"] == "=1+1"
    assert second.data["nhs_number"] == "9.99E+09"


def test_row_with_extra_cells_is_an_error_naming_the_line() -> None:
    content = HEADER + b"A,1,Ann,999\r\nA,2,Bob,Jones,999\r\nA,3\r\nA,4,Cat,999\r\n"
    items = read_all("csv", content, "clients.csv")

    assert [type(i) for i in items] == [SourceRecord, SourceError, SourceError, SourceRecord]
    assert str(items[1]) == "clients.csv line 3: row has 5 cells, the header has 4"
    assert str(items[2]) == "clients.csv line 4: row has 2 cells, the header has 4"
    assert items[3].data["client_ref"] == "4"


def test_trailing_empty_cells_beyond_the_header_are_tolerated() -> None:
    content = HEADER + b"A,1,Ann,999,\r\nA,2,Bob,999, ,\r\n"
    items = read_all("csv", content)
    assert not errors(items)
    assert [r.data["client_ref"] for r in records(items)] == ["1", "2"]


def test_header_with_a_trailing_comma_has_no_extra_column() -> None:
    content = b"a,b,\r\n1,2,\r\n3,4\r\n"
    items = read_all("csv", content)
    assert [r.data for r in records(items)] == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]


def test_quoted_cells_may_hold_commas_quotes_and_newlines() -> None:
    content = HEADER + b'A,1,"Ann, ""Annie""\r\nSmith",999\r\nA,2,Bob,999\r\n'
    first, second = records(read_all("csv", content))
    assert first.data["first_name"] == 'Ann, "Annie"\r\nSmith'
    assert first.line == 2
    assert first.raw == b'A,1,"Ann, ""Annie""\r\nSmith",999'
    assert second.line == 4


@pytest.mark.parametrize("ending", [b"\n", b"\r"], ids=["LF", "CR"])
def test_lf_and_lone_cr_line_endings_read_like_crlf(ending: bytes) -> None:
    crlf = HEADER + b'A,1,"Ann\r\nSmith",999\r\nA,2,Bob,888\r\n'
    other = crlf.replace(b"\r\n", ending)
    names = [(r.line, r.data["first_name"]) for r in records(read_all("csv", other))]
    assert names == [(2, "Ann" + ending.decode() + "Smith"), (4, "Bob")]
    assert [r.line for r in records(read_all("csv", crlf))] == [2, 4]


def test_the_callers_stream_is_left_open() -> None:
    stream = io.BytesIO(HEADER + b"A,1,Ann,999\r\n")
    assert len(list(CSV.read(stream, "x.csv"))) == 1
    assert not stream.closed


def test_missing_columns_are_one_error_and_reading_stops() -> None:
    content = HEADER + b"A,1,Ann,999\r\n"
    items = read_all(
        "csv", content, "clients.csv", columns=frozenset({"nhs_numbr", "dob", "org_id"})
    )

    assert len(items) == 1
    (error,) = items
    assert isinstance(error, SourceError)
    assert error.line is None
    assert str(error).startswith("clients.csv: missing column(s) dob, nhs_numbr")
    assert "org_id, client_ref, first_name, nhs_number" in error.reason


def test_duplicate_header_names_are_an_error() -> None:
    items = read_all("csv", b"a,b,a\r\n1,2,3\r\n", "x.csv")
    assert len(items) == 1
    assert str(items[0]) == "x.csv line 1: duplicate column(s) in the header: a"


def test_undecodable_bytes_stop_the_file_naming_the_line() -> None:
    content = HEADER + b"A,1,Ann,999\r\nA,2,Mar\xeda,999\r\nA,3,Cat,999\r\n"
    items = read_all("csv", content, "x.csv")
    assert [type(i) for i in items] == [SourceRecord, SourceError]
    assert items[1].line == 3 and "not UTF-8" in items[1].reason


def test_empty_file_is_reported() -> None:
    (error,) = read_all("csv", b"\r\n\r\n", "x.csv")
    assert isinstance(error, SourceError) and "no header row" in error.reason


def test_reading_is_streaming() -> None:
    stream, _ = endless(HEADER, b"A,1,Ann,999\r\n")
    first_three = list(itertools.islice(CSV.read(stream, "endless.csv"), 3))
    assert [r.line for r in first_three] == [2, 3, 4]


def test_a_column_path_names_its_column() -> None:
    path = CSV.compile_path("nhs_number")
    assert path.columns == frozenset({"nhs_number"})
    assert path.get({"nhs_number": "9990000018"}, None) == ["9990000018"]
    assert path.get({"nhs_number": ""}, None) == []
    assert CSV.compile_path(" consent date ").columns == frozenset({"consent date"})


def test_at_is_the_current_item() -> None:
    path = CSV.compile_path("@")
    assert path.columns == frozenset()
    assert path.get({}, " Keep tenancy ") == ["Keep tenancy"]
    assert path.get({}, "") == []
    assert path.get({}, None) == []


@pytest.mark.parametrize("path", ["", "a.b", "nhs_number[x=1]", "@.x", "£"])
def test_paths_that_are_not_column_names_are_syntax_errors(path: str) -> None:
    with pytest.raises(PathSyntaxError, match="column name"):
        CSV.compile_path(path)


def test_check_path_leaves_columns_to_the_header() -> None:
    assert CSV.check_path("anything") is None
