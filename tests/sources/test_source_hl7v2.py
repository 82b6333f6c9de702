"""hl7v2: files of ADT messages -> one record per message, and the HL7 path language."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from hub.sources import (
    Hl7Composite,
    Hl7Message,
    Hl7Segment,
    PathSyntaxError,
    SourceError,
    SourceRecord,
    message_header,
    source_format,
)
from tests.sources._helpers import endless, errors, get, read_all, records

HL7 = source_format("hl7v2")
MSH = (
    "MSH|^~\\&|SLAM-EPR|RV5|SEL-HUB|SEL-INT|20260412093000||ADT^A04^ADT_A01|{control_id}|P|2.4"
    "|||AL|NE||{charset}"
)
PID = (
    "PID|1||RV5A000123^^^RV5^MR~9990000018^^^NHS^NH||OKAFOR^ADAEZE^NGOZI^^MS||19850314|F|||"
    "Flat 3^12 Brockley Rise^LONDON^^SE4 2AB^GBR^H"
)


def message(*segments: str, control_id: str = "RV5-1", charset: str = "UNICODE UTF-8") -> str:
    return "\r".join([MSH.format(control_id=control_id, charset=charset), *segments]) + "\r"


def one(text: str | bytes) -> Hl7Message:
    content = text.encode() if isinstance(text, str) else text
    (record,) = read_all("hl7v2", content)
    assert isinstance(record, SourceRecord), record
    return record.data


def test_example_file_gives_one_record_per_message_at_its_msh_line(example: Path) -> None:
    items = read_all("hl7v2", example("slam-epr/adt.hl7").read_bytes(), "adt.hl7")

    assert not errors(items)
    assert len(items) == 13
    first, second = items[0], items[1]
    assert first.locator == "adt.hl7 line 1"
    assert second.locator == "adt.hl7 line 6"  # the first message has five segments
    assert first.raw.startswith(b"MSH|^~\\&|SLAM-EPR") and first.raw.count(b"\r") == 4
    assert get("hl7v2", "MSH-10", second.data) == ["RV5-0000102"]


def test_accented_names_are_decoded_as_utf8(example: Path) -> None:
    items = records(read_all("hl7v2", example("slam-epr/adt.hl7").read_bytes()))
    marisol = next(r for r in items if get("hl7v2", "PID-3[type=NH].1", r.data) == ["9990000034"])
    assert get("hl7v2", "PID-5.1", marisol.data) == ["ORTEGA-DÍAZ"]


def test_lf_and_crlf_segment_endings_read_the_same() -> None:
    cr = (message(PID, control_id="A") + message(PID, control_id="B")).encode()
    variants = [cr, cr.replace(b"\r", b"\n"), cr.replace(b"\r", b"\r\n")]

    results = [read_all("hl7v2", content) for content in variants]

    for items in results:
        assert [(r.line, r.raw) for r in records(items)] == [
            (r.line, r.raw) for r in records(results[0])
        ]
        assert [get("hl7v2", "PID-5.2", r.data) for r in records(items)] == [["ADAEZE"]] * 2
    assert [r.line for r in records(results[0])] == [1, 3]


def test_mllp_framing_characters_are_dropped() -> None:
    framed = b"".join(b"\x0b" + message(PID, control_id=c).encode() + b"\x1c\r" for c in "AB")
    items = read_all("hl7v2", framed)
    assert not errors(items)
    assert [get("hl7v2", "MSH-10", r.data) for r in records(items)] == [["A"], ["B"]]
    assert all(b"\x0b" not in r.raw and b"\x1c" not in r.raw for r in records(items))


def test_crlf_split_across_read_chunks_counts_as_one_line_ending() -> None:
    first = message(PID, control_id="A").replace("\r", "\r\n").encode()
    # Pad with Z-segments so that a CR is the last byte of the reader's first 64 KiB chunk.
    filler = b"ZXX|" + b"x" * 1000 + b"\r\n"
    padding = b""
    while len(first + padding) + len(filler) < 65536:
        padding += filler
    tail = 65535 - len(first + padding) - 4  # a last line whose CR is byte 65536 of the file
    padding += b"ZXX|" + b"y" * tail + b"\r\n"
    content = first + padding + message(PID, control_id="B").replace("\r", "\r\n").encode()
    assert content[65535:65537] == b"\r\n"

    second = records(read_all("hl7v2", content))[1]

    lines_before = (first + padding).count(b"\n")
    assert second.line == lines_before + 1


def test_escape_sequences_are_decoded_in_leaf_values() -> None:
    data = one(
        message(
            "PID|1||X1^^^RV5^MR||O\\S\\BRIEN^ANN\\T\\MARIE||||||A\\F\\B\\R\\C\\E\\D",
            "NTE|1||line one\\.br\\line two|caf\\XC3A9\\|keep \\Q\\ as is|lone \\ char",
        )
    )
    assert get("hl7v2", "PID-5.1", data) == ["O^BRIEN"]
    assert get("hl7v2", "PID-5.2", data) == ["ANN&MARIE"]
    assert get("hl7v2", "PID-11", data) == ["A|B~C\\D"]
    assert get("hl7v2", "NTE-3", data) == ["line one\nline two"]
    assert get("hl7v2", "NTE-4", data) == ["café"]
    assert get("hl7v2", "NTE-5", data) == ["keep \\Q\\ as is"]
    assert get("hl7v2", "NTE-6", data) == ["lone \\ char"]


def test_escaped_separators_do_not_split_fields() -> None:
    data = one(message("PID|1||X1^^^RV5^MR||SMITH\\S\\JONES^JO"))
    assert get("hl7v2", "PID-5.1", data) == ["SMITH^JONES"]
    assert get("hl7v2", "PID-5.2", data) == ["JO"]


def test_nhs_number_filter_on_pid3_repetitions() -> None:
    data = one(message(PID))

    assert get("hl7v2", "PID-3[type=NH].1", data) == ["9990000018"]
    assert get("hl7v2", "PID-3[5=NH].1", data) == ["9990000018"]
    assert get("hl7v2", "PID-3[authority=RV5].1", data) == ["RV5A000123"]
    assert get("hl7v2", "PID-3[4=RV5][type=MR].1", data) == ["RV5A000123"]
    assert get("hl7v2", "PID-3[type=XX].1", data) == []
    assert get("hl7v2", "PID-3.1", data) == ["RV5A000123", "9990000018"]


def test_filters_compare_decoded_values_and_the_first_subcomponent() -> None:
    data = one(message("PID|1||A1^^^R\\T\\V^MR~B2^^^RV5&2.16.840&ISO^MR"))
    assert get("hl7v2", "PID-3[authority=R&V].1", data) == ["A1"]
    assert get("hl7v2", "PID-3[authority=RV5].1", data) == ["B2"]


def test_missing_nhs_number_gives_an_empty_list() -> None:
    data = one(message("PID|1||RV5A000777^^^RV5^MR||BROOKS^DAN"))
    assert get("hl7v2", "PID-3[type=NH].1", data) == []


def test_iterating_nk1_resolves_nk1_paths_against_the_current_segment() -> None:
    data = one(
        message(
            PID,
            "NK1|1|REILLY^MAIREAD|SIS^Sister^HL70063||020 7946 0999||CAR^Carer^L",
            "NK1|2|DIAZ^LUCIA|MTH^Mother^HL70063||07700 900789||NP^Nominated person^L",
        )
    )
    people = get("hl7v2", "NK1", data)
    assert [type(p) for p in people] == [Hl7Segment, Hl7Segment]

    assert [get("hl7v2", "NK1-2.1", data, nk1) for nk1 in people] == [["REILLY"], ["DIAZ"]]
    assert [get("hl7v2", "NK1-7.1", data, nk1) for nk1 in people] == [["CAR"], ["NP"]]
    assert [get("hl7v2", "@-3.2", data, nk1) for nk1 in people] == [["Sister"], ["Mother"]]
    # Without a current NK1, the path gives every NK1's value.
    assert get("hl7v2", "NK1-2.1", data) == ["REILLY", "DIAZ"]
    # Other segments are not affected by the current NK1.
    assert get("hl7v2", "PID-5.1", data, people[1]) == ["OKAFOR"]


def test_composite_fields_are_objects_and_leaf_fields_are_text() -> None:
    data = one(message(PID))

    (name,) = get("hl7v2", "PID-5", data)
    assert isinstance(name, Hl7Composite)
    assert name.label == "PID-5"
    assert repr(name) == "Hl7Composite(PID-5: 'OKAFOR^ADAEZE^NGOZI^^MS')"
    assert get("hl7v2", "PID-7", data) == ["19850314"]
    assert get("hl7v2", "PID-8", data) == ["F"]
    assert get("hl7v2", "PID-8.1", data) == ["F"]  # a leaf is its own first component
    assert get("hl7v2", "PID-8.2", data) == []


def test_relative_paths_address_parts_of_the_current_item() -> None:
    data = one(message(PID))
    names = get("hl7v2", "PID-5", data)
    identifiers = get("hl7v2", "PID-3", data)

    assert get("hl7v2", "@.1", data, names[0]) == ["OKAFOR"]
    assert get("hl7v2", "@.5", data, names[0]) == ["MS"]
    assert get("hl7v2", "@", data, names[0]) == names
    assert [get("hl7v2", "@[type=NH].1", data, i) for i in identifiers] == [[], ["9990000018"]]
    assert get("hl7v2", "@", data, "  text ") == ["text"]
    assert get("hl7v2", "@.1", data, "text") == ["text"]
    assert get("hl7v2", "@.2", data, "text") == []
    assert get("hl7v2", "@.1", data, None) == []


def test_components_with_subcomponents_are_composites_until_a_subcomponent_is_named() -> None:
    data = one(message("PID|1||B2^^^RV5&2.16.840&ISO^MR"))
    (authority,) = get("hl7v2", "PID-3.4", data)
    assert isinstance(authority, Hl7Composite)
    assert authority.label == "PID-3.4"
    assert get("hl7v2", "PID-3.4.1", data) == ["RV5"]
    assert get("hl7v2", "PID-3.4.3", data) == ["ISO"]
    assert get("hl7v2", "@.2", data, authority) == ["2.16.840"]


def test_msh_fields_count_the_field_separator_as_msh1() -> None:
    data = one(message(PID, control_id="RV5-0000101"))
    assert get("hl7v2", "MSH-1", data) == ["|"]
    assert get("hl7v2", "MSH-2", data) == ["^~\\&"]
    assert get("hl7v2", "MSH-9", data)[0].raw == "ADT^A04^ADT_A01"
    assert get("hl7v2", "MSH-9.2", data) == ["A04"]
    assert get("hl7v2", "MSH-10", data) == ["RV5-0000101"]


def test_message_header_gives_what_an_ack_needs() -> None:
    header = message_header(one(message(PID, control_id="RV5-42")))
    assert header["control_id"] == "RV5-42"
    assert header["message_type"] == "ADT"
    assert header["trigger_event"] == "A04"
    assert header["version"] == "2.4"
    assert header["sending_facility"] == "RV5"
    assert header["message_time"] == "20260412093000"


def test_message_without_control_id_still_gives_a_record() -> None:
    header = message_header(one(message(PID, control_id="")))
    assert header["control_id"] is None


def test_absent_segments_fields_and_hl7_nulls_give_empty_lists() -> None:
    data = one(message('PID|1||X1^^^RV5^MR||""^ANN|   |'))
    assert get("hl7v2", "PV1", data) == []
    assert get("hl7v2", "PV1-2", data) == []
    assert get("hl7v2", "PID-99", data) == []
    assert get("hl7v2", "PID-5.1", data) == []  # "" is HL7's explicit null
    assert get("hl7v2", "PID-6", data) == []  # blank after strip
    assert get("hl7v2", "PID-5.9", data) == []


def test_unknown_and_z_segments_are_kept_and_addressable() -> None:
    data = one(
        message(
            PID,
            "ZMH|1|02^Formally detained under Mental Health Act Section 2^MHA-LS|20260409040000",
            "QQQ|something odd",
        )
    )
    assert get("hl7v2", "ZMH-2.1", data) == ["02"]
    assert get("hl7v2", "ZMH-3", data) == ["20260409040000"]
    assert get("hl7v2", "QQQ-1", data) == ["something odd"]
    assert [s.id for s in data.segments] == ["MSH", "PID", "ZMH", "QQQ"]


def test_values_are_stripped_of_surrounding_spaces() -> None:
    data = one(message("PID|1||  X1 ^^^RV5^MR|| OKAFOR ^ ADAEZE "))
    assert get("hl7v2", "PID-3.1", data) == ["X1"]
    assert get("hl7v2", "PID-5.2", data) == ["ADAEZE"]


def test_text_before_the_first_msh_is_reported_and_reading_goes_on() -> None:
    content = b"hello\rthis is not HL7\r" + message(PID).encode()
    items = read_all("hl7v2", content, "adt.hl7")

    assert [type(i) for i in items] == [SourceError, SourceRecord]
    assert str(items[0]) == (
        "adt.hl7 line 1: 2 lines before the first MSH segment: not an HL7 message"
    )
    assert items[1].line == 3


def test_batch_envelope_segments_are_not_errors() -> None:
    content = ("FHS|^~\\&\rBHS|^~\\&\r" + message(PID) + "BTS|1\rFTS|1\r").encode()
    items = read_all("hl7v2", content)
    assert not errors(items)
    assert [s.id for s in records(items)[0].data.segments] == ["MSH", "PID"]


@pytest.mark.parametrize(
    ("msh", "reason"),
    [
        ("MSH|^~\\&|SLAM-EPR|RV5|SEL-HUB|SEL-INT|20260412093000||ADT^A04|X1", "MSH has 10 fields"),
        ("MSH|^~|SLAM-EPR|RV5|SEL-HUB|SEL-INT|20260412|||X1|P|2.4", "MSH-2 encoding characters"),
        ("MSHA^~\\&A", "MSH-1 field separator"),
    ],
)
def test_malformed_msh_is_an_error_and_the_next_message_is_still_read(
    msh: str, reason: str
) -> None:
    content = (msh + "\r" + PID + "\r" + message(PID, control_id="NEXT")).encode()
    items = read_all("hl7v2", content, "adt.hl7")

    assert isinstance(items[0], SourceError) and items[0].line == 1
    assert reason in items[0].reason
    assert get("hl7v2", "MSH-10", items[1].data) == ["NEXT"]


def test_bytes_that_are_not_utf8_fall_back_to_cp1252() -> None:
    content = message("PID|1||X1^^^RV5^MR||ORTEGA-DÍAZ^MARISOL").encode("cp1252")
    data = one(content)
    assert data.encoding == "cp1252"
    assert get("hl7v2", "PID-5.1", data) == ["ORTEGA-DÍAZ"]


def test_charset_named_in_msh18_is_used() -> None:
    content = message("PID|1||X1^^^RV5^MR||ORTEGA-DÍAZ", charset="8859/1").encode("latin-1")
    data = one(content)
    assert data.encoding == "iso8859-1"
    assert get("hl7v2", "PID-5.1", data) == ["ORTEGA-DÍAZ"]


def test_an_encoding_slip_in_one_message_does_not_affect_the_next() -> None:
    bad = message("PID|1||X1^^^RV5^MR||D\xcdAZ", control_id="A").encode("cp1252")
    good = message("PID|1||X2^^^RV5^MR||DÍAZ", control_id="B").encode()
    first, second = records(read_all("hl7v2", bad + good))
    assert (first.data.encoding, second.data.encoding) == ("cp1252", "utf-8")
    assert get("hl7v2", "PID-5.1", second.data) == ["DÍAZ"]


def test_reading_is_streaming() -> None:
    stream, source = endless(b"", message(PID).encode())
    first_three = list(itertools.islice(HL7.read(stream, "endless.hl7"), 3))
    assert [r.line for r in first_three] == [1, 3, 5]
    assert source.largest_read <= 1 << 16


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("pid-5", "upper case"),
        ("PID.5", "expected '-' between the segment id and the field number (PID-5)"),
        ("PID-0", "field numbers start at 1"),
        ("PID-5.0", "start at 1"),
        ("PID-3.1[type=NH]", "a filter goes right after the field number"),
        ("PID-3[kind=NH].1", "unknown filter key 'kind'"),
        ("PID-3[type].1", "should read [key=value]"),
        ("PID-3[type=NH.1", "not closed"),
        ("PID-5.1.2.3", "too many levels"),
        ("PID-", "expected a field number"),
        ("P", "3-character segment id"),
        ("@x", "after '@'"),
        ("", "empty path"),
    ],
)
def test_path_syntax_errors_say_what_is_wrong_and_show_the_path(path: str, problem: str) -> None:
    with pytest.raises(PathSyntaxError) as caught:
        HL7.compile_path(path)
    assert problem in str(caught.value)
    assert repr(path) in str(caught.value)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("PID-5.1", None),
        ("PID-3[type=NH].1", None),
        ("PID-3.4.2", None),
        ("MSH-9.2", None),
        ("NK1", None),
        ("ZMH-9.9", None),  # Z-segments are the trust's own: nothing to check against
        ("@.1", None),
        ("XYZ-1", "XYZ is not an HL7 v2.4 segment"),
        ("PID-40", "PID has 38 fields in HL7 v2.4"),
        ("PID-5.12", "PID-5 is XPN with 11 component(s)"),
        ("PID-8.2", "PID-8 is IS with 1 component(s)"),
        ("PID-3.4.4", "PID-3.4 is HD with 3 subcomponent(s)"),
        ("PID-5[9=x]", None),
        ("PID-8[5=x]", "a filter reads component 5"),
        ("PID.5", "expected '-'"),
    ],
)
def test_check_path_names_what_hl7_v24_does_not_have(path: str, problem: str | None) -> None:
    found = HL7.check_path(path)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_reading_and_evaluating_paths_do_not_import_hl7apy(example: Path) -> None:
    script = (
        "import io, sys\n"
        "from hub.sources import source_format\n"
        "fmt = source_format('hl7v2')\n"
        f"content = open({str(example('slam-epr/adt.hl7'))!r}, 'rb').read()\n"
        "for record in fmt.read(io.BytesIO(content), 'adt.hl7'):\n"
        "    fmt.compile_path('PID-3[type=NH].1').get(record.data, None)\n"
        "assert 'hl7apy' not in sys.modules, 'hl7apy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parents[2])
