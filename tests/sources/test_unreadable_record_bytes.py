"""An unreadable record keeps its own bytes (`SourceError.raw`), so a dead letter loses nothing."""

from __future__ import annotations

import io

from hub.sources import SourceError, source_format


def errors(format_name: str, content: bytes, file: str) -> list[SourceError]:
    read = source_format(format_name).read(io.BytesIO(content), file)
    return [r for r in read if isinstance(r, SourceError)]


def test_a_csv_row_that_does_not_fit_its_header_keeps_its_bytes() -> None:
    (error,) = errors("csv", b"a,b\r\n1,2\r\n3,4,5\r\n", "x.csv")
    assert (error.line, error.raw) == (3, b"3,4,5")
    assert error.reason == "row has 3 cells, the header has 2"


def test_an_hl7_message_with_a_short_msh_keeps_its_bytes() -> None:
    (error,) = errors("hl7v2", b"MSH|^~\\&|A|B\rPID|1\r", "adt.hl7")
    assert error.raw == b"MSH|^~\\&|A|B\rPID|1"
    assert "MSH has" in error.reason


def test_a_json_line_that_is_not_an_object_keeps_its_bytes() -> None:
    (error,) = errors("jsonl", b'{"a": 1}\n"text"\n', "c.jsonl")
    assert (error.line, error.raw) == (2, b'"text"')


def test_an_error_about_a_whole_file_has_no_bytes_of_its_own() -> None:
    (error,) = errors("csv", b"", "empty.csv")
    assert error.raw == b""
