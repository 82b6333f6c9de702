"""csv: each row carries its header line (`context`), so one row can be stored and read alone."""

from __future__ import annotations

import pytest

from tests.sources._helpers import errors, read_all, records


def test_every_row_carries_the_header_line_without_bom_or_line_ending() -> None:
    content = b"\xef\xbb\xbfvisit_id, nhs_number \r\nV-1,9990000018\r\nV-2,\r\n"
    first, second = records(read_all("csv", content, "visits.csv"))

    assert first.context == second.context == b"visit_id, nhs_number "
    assert first.raw == b"V-1,9990000018"


@pytest.mark.parametrize("ending", [b"\r\n", b"\n", b"\r"])
def test_context_and_a_row_read_back_as_that_row(ending: bytes) -> None:
    content = ending.join(
        [b"id,note", b"", b'1,"two' + ending + b'lines, and ""quotes"""', b"2,plain", b""]
    )
    originals = records(read_all("csv", content, "notes.csv"))

    for original in originals:
        alone = read_all("csv", original.context + b"\r\n" + original.raw, "notes.csv")
        assert not errors(alone)
        assert [r.data for r in alone] == [original.data]
    assert originals[0].data["note"] == 'two\nlines, and "quotes"'.replace("\n", ending.decode())


def test_other_formats_need_no_context() -> None:
    (record,) = records(read_all("jsonl", b'{"id": 1}\n'))
    assert record.context == b""
