"""ACKs: addressed back to the sender, in its separators and charset, read by hl7apy."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from hub.listeners._ack import UNSUPPORTED_VERSION, Problem, build_ack
from hub.sources import Hl7Message, SourceRecord, source_format
from tests.listeners._helpers import parse_ack

NOW = datetime(2026, 3, 15, 10, 30, 5, tzinfo=UTC)


def message(msh: str) -> Hl7Message:
    (record,) = source_format("hl7v2").read(io.BytesIO(msh.encode() + b"\rPID|1\r"), "m")
    assert isinstance(record, SourceRecord)
    return record.data


A01 = message(
    "MSH|^~\\&|SLAM-EPR|RV5^1.2.3^ISO|SEL-HUB|SEL-INT|20260315100000||ADT^A01^ADT_A01|"
    "RV5-42|T|2.4|||AL|NE||UNICODE UTF-8"
)


def test_aa_swaps_the_addresses_and_echoes_the_control_id() -> None:
    ack = build_ack(A01, "AA", now=NOW)
    parsed = parse_ack(ack)

    msh = parsed.msh
    assert msh.msh_3.value == "SEL-HUB"
    assert msh.msh_4.value == "SEL-INT"
    assert msh.msh_5.value == "SLAM-EPR"
    assert msh.msh_6.value == "RV5^1.2.3^ISO"  # the whole field, as the sender wrote it
    assert msh.msh_7.value == "20260315103005+0000"
    assert msh.msh_9.value == "ACK^A01^ACK"
    assert msh.msh_10.value not in ("", "RV5-42")
    assert len(msh.msh_10.value) <= 20
    assert msh.msh_11.value == "T"  # a test message's ACK is a test message too
    assert msh.msh_12.value == "2.4"
    assert msh.msh_18.value == "UNICODE UTF-8"
    assert parsed.msa.msa_1.value == "AA"
    assert parsed.msa.msa_2.value == "RV5-42"
    assert ack.endswith(b"MSA|AA|RV5-42\r")


def test_each_ack_has_a_fresh_control_id() -> None:
    ids = {parse_ack(build_ack(A01, "AA")).msh.msh_10.value for _ in range(20)}
    assert len(ids) == 20


def test_error_text_is_escaped_and_complete_in_err() -> None:
    text = "PID-5 | 'O^Brien' ~ \\ & Díaz\r\nnext line"
    ack = build_ack(A01, "AE", Problem(text), now=NOW)
    parsed = parse_ack(ack)

    escaped = "PID-5 \\F\\ 'O\\S\\Brien' \\R\\ \\E\\ \\T\\ Díaz next line"
    assert parsed.msa.msa_1.value == "AE"
    assert parsed.msa.msa_3.value == escaped
    assert parsed.err.err_1.value == f"^^^207&{escaped}&HL70357"
    assert "Díaz".encode() in ack  # in the charset MSH-18 names
    assert ack.count(b"\r") == 3  # MSH, MSA, ERR: no segment break smuggled in


def test_a_long_reason_is_cut_in_msa_3_but_whole_in_err() -> None:
    text = "x" * 200
    parsed = parse_ack(build_ack(A01, "AE", Problem(text)))
    assert parsed.msa.msa_3.value == "x" * 77 + "..."
    assert text in parsed.err.err_1.value


def test_v2_5_acks_use_the_err_fields_of_v2_5() -> None:
    v25 = message("MSH|^~\\&|EPR|RV5|HUB|INT|20260315||ADT^A04^ADT_A01|M-9|P|2.5.1")
    problem = Problem("version says no", UNSUPPORTED_VERSION, ("MSH", 12))
    parsed = parse_ack(build_ack(v25, "AR", problem))

    assert parsed.msh.msh_12.value == "2.5.1"
    assert parsed.err.err_2.value == "MSH^1^12"
    assert parsed.err.err_3.value == "203^Unsupported version id^HL70357"
    assert parsed.err.err_4.value == "E"
    assert parsed.err.err_8.value == "version says no"


def test_the_senders_encoding_characters_are_used() -> None:
    odd = message("MSH|#~\\&|EPR|RV5|HUB|INT|20260315||ADT#A08#ADT_A01|M-7|P|2.4")
    ack = build_ack(odd, "AE", Problem("a # b"))
    assert ack.startswith(b"MSH|#~\\&|HUB|INT|EPR|RV5|")
    assert b"|ACK#A08#ACK|" in ack
    assert b"MSA|AE|M-7|a \\S\\ b\r" in ack


def test_a_version_that_is_not_2_x_is_answered_in_2_4() -> None:
    v3 = message("MSH|^~\\&|EPR|RV5|HUB|INT|20260315||ADT^A01|M-3|P|3.0")
    parsed = parse_ack(build_ack(v3, "AR", Problem("no", UNSUPPORTED_VERSION, ("MSH", 12))))
    assert parsed.msh.msh_12.value == "2.4"
    assert parsed.err.err_1.value == "MSH^1^12^203&no&HL70357"


def test_without_a_readable_header_the_ack_uses_defaults() -> None:
    ack = build_ack(None, "AR", Problem("not HL7"))
    parsed = parse_ack(ack, validate=False)  # MSA-2 is required, and there is nothing to echo
    assert ack.startswith(b"MSH|^~\\&|||||")
    assert parsed.msh.msh_9.value == "ACK^^ACK"
    assert parsed.msa.msa_1.value == "AR"
    assert parsed.msa.msa_2.value == ""
