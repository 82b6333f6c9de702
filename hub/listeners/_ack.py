"""HL7 v2 acknowledgements (original mode): what the sender reads to know a message is safe.

An ACK is addressed back to the sender (sending and receiving application and facility swapped),
written with the separators and character set the sender used, and echoes its MSH-10 in MSA-2.
Error text is escaped, so a `|` or `^` in a reason cannot break the ACK's structure.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from hub.sources import Hl7Message

AckCode = Literal["AA", "AE", "AR"]

DEFAULT_VERSION = "2.4"  # what the hub speaks when the sender's version cannot be used
_DEFAULT_SEPARATORS = "|^~\\&"
_MSA_TEXT_LIMIT = 80  # MSA-3 is ST(80); the whole text goes in ERR
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")  # CR would end the segment, 0x1C the frame


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a message is answered AE or AR: the text, an HL7 table 0357 error code, and where."""

    text: str
    code: tuple[int, str] = (207, "Application internal error")
    location: tuple[str, int] | None = None  # (segment id, field number), e.g. ("MSH", 10)


NOT_HL7 = (100, "Segment sequence error")
REQUIRED_FIELD_MISSING = (101, "Required field missing")
UNSUPPORTED_VERSION = (203, "Unsupported version id")


@dataclass(frozen=True, slots=True)
class _Separators:
    fs: str
    cs: str
    rs: str
    ec: str
    ss: str

    def escape(self, text: str) -> str:
        """`text` made safe for a text field: separators escaped, control characters spaced."""
        text = _CONTROL.sub(" ", text)
        ec = self.ec
        text = text.replace(ec, f"{ec}E{ec}")  # first, or the escapes below would be escaped
        for char, code in ((self.fs, "F"), (self.cs, "S"), (self.rs, "R"), (self.ss, "T")):
            text = text.replace(char, f"{ec}{code}{ec}")
        return text


def build_ack(
    inbound: Hl7Message | None,
    code: AckCode,
    problem: Problem | None = None,
    *,
    now: datetime | None = None,
) -> bytes:
    """The ACK (MSH, MSA, and ERR unless AA) for `inbound`, or for a message whose header
    could not be read at all (then with default separators and no MSA-2)."""
    fields = inbound.segments[0].fields() if inbound is not None else []
    written = fields[2] if len(fields) > 2 else _DEFAULT_SEPARATORS[1:]
    seps = _Separators(fields[1] if fields else "|", *written[:4])
    version = _echoed_version(_field(fields, 12), seps)
    segments = [
        _msh(fields, seps, written, version, now or datetime.now().astimezone()),
        _msa(code, _field(fields, 10), problem, seps),
    ]
    if problem is not None and code != "AA":
        segments.append(_err(problem, seps, version))
    encoding = inbound.encoding if inbound is not None else "ascii"
    return ("\r".join(segments) + "\r").encode(encoding, errors="replace")


def _field(fields: list[str], n: int) -> str:
    return fields[n] if n < len(fields) else ""


def _echoed_version(raw: str, seps: _Separators) -> str:
    """MSH-12 as the sender wrote it when it is a 2.x version; the hub's own otherwise (an ACK
    must itself be a v2 message the sender can read)."""
    return raw if raw.split(seps.cs, 1)[0].strip().startswith("2.") else DEFAULT_VERSION


def _msh(fields: list[str], seps: _Separators, written: str, version: str, now: datetime) -> str:
    trigger = _field(fields, 9).split(seps.rs, 1)[0].split(seps.cs)[1:2]
    message_type = seps.cs.join(["ACK", trigger[0] if trigger else "", "ACK"])
    msh = [
        "MSH",
        written,
        _field(fields, 5),  # the sender's receiving application and facility are now ours
        _field(fields, 6),
        _field(fields, 3),
        _field(fields, 4),
        now.strftime("%Y%m%d%H%M%S%z"),
        "",
        message_type,
        uuid.uuid4().hex[:20],  # MSH-10 is at most 20 characters in v2.4
        _field(fields, 11) or "P",
        version,
    ]
    charset = _field(fields, 18)
    if charset:  # the ACK is encoded as the message was, so it says so the same way
        msh += ["", "", "", "", "", charset]
    return seps.fs.join(msh)


def _msa(code: AckCode, control_id: str, problem: Problem | None, seps: _Separators) -> str:
    msa = ["MSA", code, control_id]
    if problem is not None:
        text = problem.text
        if len(text) > _MSA_TEXT_LIMIT:
            text = text[: _MSA_TEXT_LIMIT - 3] + "..."
        msa.append(seps.escape(text))
    return seps.fs.join(msa)


def _err(problem: Problem, seps: _Separators, version: str) -> str:
    """ERR as the version defines it: ERR-1 (ELD) up to v2.4; ERR-2/3/4/8 from v2.5 on."""
    number, name = problem.code
    segment, field = problem.location or ("", 0)
    location = [segment, "1", str(field)] if problem.location else ["", "", ""]
    if _at_least(version, (2, 5), seps):
        hl7_code = seps.cs.join([str(number), seps.escape(name), "HL70357"])
        where = seps.cs.join(location) if problem.location else ""
        return seps.fs.join(
            ["ERR", "", where, hl7_code, "E", "", "", "", seps.escape(problem.text)]
        )
    coded = seps.ss.join([str(number), seps.escape(problem.text), "HL70357"])
    return seps.fs.join(["ERR", seps.cs.join([*location, coded])])


def _at_least(version: str, wanted: tuple[int, int], seps: _Separators) -> bool:
    parts = version.split(seps.cs, 1)[0].strip().split(".")
    try:
        return (int(parts[0]), int(parts[1])) >= wanted
    except (IndexError, ValueError):
        return False
