"""`hl7v2`: the EPR's ADT feed (HL7 v2.4), read from files of messages back to back.

Parsing is lazy: a message is split into segments when read, a segment into fields only when a
path first asks for one of its fields, and each field's repetitions and components once per
message (cached on the segment). hl7apy is far too slow for this hot path; it is used only to
check paths against the v2.4 structures (`_hl7v2_paths.check_hl7_path`).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import BinaryIO

from ._records import SourceError, SourceRecord

_CHUNK = 1 << 16
_MLLP_FRAMING = b"\x0b\x1c"
# Batch envelope segments wrap messages in some files; they belong to no message.
_BATCH_SEGMENTS = (b"FHS", b"BHS", b"BTS", b"FTS")
_MAX_MESSAGE_BYTES = 32 << 20


class Hl7Message:
    """One parsed message: its segments in order, by id, and how to decode its text."""

    __slots__ = ("_by_id", "_unescape", "cs", "ec", "encoding", "fs", "rs", "segments", "ss")

    def __init__(self, text: str, encoding: str) -> None:
        """`text`: segments joined by CR, starting with a valid MSH (checked by the reader)."""
        self.encoding = encoding  # the charset the bytes were decoded with
        self.fs, self.cs, self.rs, self.ec, self.ss, self._unescape = _separators(
            text[3 : text.index(text[3], 4)], encoding
        )
        fs = self.fs
        segments = []
        by_id: dict[str, list[Hl7Segment]] = {}
        for line in text.split("\r"):
            if line[3:4] == fs:
                segment_id = line[:3]
            else:  # an odd segment (no fields, or an id that is not 3 characters) is still kept
                end = line.find(fs)
                segment_id = (line if end < 0 else line[:end]).strip()
            segment = Hl7Segment(segment_id, line, self)
            segments.append(segment)
            same = by_id.get(segment_id)
            if same is None:
                by_id[segment_id] = [segment]
            else:
                same.append(segment)
        self.segments = segments
        self._by_id = by_id

    def segments_named(self, segment_id: str) -> list[Hl7Segment]:
        return self._by_id.get(segment_id, [])

    def leaf(self, value: str) -> str | None:
        """A leaf value as text: escapes decoded, stripped; None when empty or HL7 null `""`."""
        if self.ec in value:
            value = self._unescape(value)
        value = value.strip()
        if not value or value == '""':
            return None
        return value

    def __repr__(self) -> str:
        ids = "|".join(segment.id for segment in self.segments)
        return f"Hl7Message({ids})"


class Hl7Segment:
    """One segment; `SEG-n` numbering, so for MSH field 1 is the field separator itself."""

    __slots__ = ("_fields", "_repetitions", "id", "message", "text")

    def __init__(self, segment_id: str, text: str, message: Hl7Message) -> None:
        self.id = segment_id
        self.text = text
        self.message = message
        self._fields: list[str] | None = None
        self._repetitions: dict[int, list[list[str]]] | None = None

    def fields(self) -> list[str]:
        """Raw field texts, index n = field n (index 0 is the segment id)."""
        if self._fields is None:
            fields = self.text.split(self.message.fs)
            if self.id == "MSH":
                fields.insert(1, self.message.fs)
            self._fields = fields
        return self._fields

    def repetitions(self, field: int) -> list[list[str]]:
        """Field `field`'s repetitions, each as its list of raw (still escaped) components."""
        cache = self._repetitions
        if cache is None:
            cache = self._repetitions = {}
        elif field in cache:
            return cache[field]
        fields = self.fields()
        raw = fields[field] if field < len(fields) else ""
        message = self.message
        found = [rep.split(message.cs) for rep in raw.split(message.rs)] if raw else []
        cache[field] = found
        return found

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return f"Hl7Segment({text!r})"


class Hl7Composite:
    """A field repetition (or a component) that has parts: text comes from naming a part.

    A path such as `PID-5` gives these, not strings, so that the mapping engine can say
    "PID-5 is a composite; name a component such as PID-5.1" instead of inventing text.
    """

    __slots__ = ("component", "field", "parts", "segment")

    def __init__(self, parts: list[str], segment: Hl7Segment, field: int, component: int) -> None:
        self.parts = parts  # raw components, or subcomponents when `component` is set
        self.segment = segment
        self.field = field
        self.component = component  # 0: a field repetition; n: component n of one

    @property
    def label(self) -> str:
        base = f"{self.segment.id}-{self.field}"
        return f"{base}.{self.component}" if self.component else base

    @property
    def raw(self) -> str:
        message = self.segment.message
        return (message.ss if self.component else message.cs).join(self.parts)

    def part(self, n: int) -> str | Hl7Composite | None:
        """Part n (1-based), decoded; a component that itself has subcomponents stays composite."""
        out: list[object] = []
        if self.component:
            if n <= len(self.parts):
                _append_leaf(self.segment.message, self.parts[n - 1], out)
        else:
            emit(self.parts, n, 0, self.segment, self.field, out)
        return out[0] if out else None  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"Hl7Composite({self.label}: {self.raw!r})"


def _append_leaf(message: Hl7Message, value: str, out: list) -> None:
    if message.ec in value:  # decoding only when there is something to decode
        value = message._unescape(value)
    value = value.strip()
    if value and value != '""':
        out.append(value)


def _blank(parts: list[str], message: Hl7Message) -> bool:
    return not "".join(parts).replace(message.ss, "").strip()


def emit(comps: list[str], comp: int, sub: int, segment: Hl7Segment, field: int, out: list) -> None:
    """Append what `.comp.sub` (0 = not named) addresses in one repetition's components."""
    message = segment.message
    ss = message.ss
    if not comp:
        if len(comps) == 1 and ss not in comps[0]:
            _append_leaf(message, comps[0], out)
        elif not _blank(comps, message):
            out.append(Hl7Composite(comps, segment, field, 0))
        return
    if comp > len(comps):
        return
    value = comps[comp - 1]
    if ss not in value:
        if sub <= 1:
            _append_leaf(message, value, out)
        return
    subs = value.split(ss)
    if not sub:
        if not _blank(subs, message):
            out.append(Hl7Composite(subs, segment, field, comp))
    elif sub <= len(subs):
        _append_leaf(message, subs[sub - 1], out)


Filter = tuple[int, str]  # (component number, decoded text it must equal)


def filter_text(comps: list[str], component: int, message: Hl7Message) -> str | None:
    """What a repetition filter compares: the component's first subcomponent, decoded."""
    if component > len(comps):
        return None
    value = comps[component - 1]
    if message.ss in value:
        value = value.split(message.ss, 1)[0]
    return message.leaf(value)


def matches(comps: list[str], filters: tuple[Filter, ...], message: Hl7Message) -> bool:
    for component, wanted in filters:
        if component > len(comps):
            return False
        value = comps[component - 1]
        # Equal raw text with nothing to decode is equal decoded text: skip the decoding.
        if value == wanted and message.ec not in value and message.ss not in value:
            continue
        if filter_text(comps, component, message) != wanted:
            return False
    return True


def field_values(
    segment: Hl7Segment, field: int, filters: tuple[Filter, ...], comp: int, sub: int, out: list
) -> None:
    """Append what `SEG-field[filters].comp.sub` gives in one segment."""
    if field <= 2 and segment.id == "MSH":
        # MSH-1 and MSH-2 are the separators themselves: never split, never decoded.
        fields = segment.fields()
        if comp <= 1 and sub <= 1 and not filters and field < len(fields) and fields[field]:
            out.append(fields[field])
        return
    message = segment.message
    for comps in segment.repetitions(field):
        if filters and not matches(comps, filters, message):
            continue
        emit(comps, comp, sub, segment, field, out)


Separators = tuple[str, str, str, str, str, Callable[[str], str]]


@lru_cache(maxsize=64)
def _separators(written: str, charset: str) -> Separators:
    """From MSH-1 and MSH-2 as written (`|^~\\&`): fs, cs, rs, ec, ss, and the unescaper."""
    fs, cs, rs, ec, ss = written[:5]
    escaped = re.escape(ec)
    pattern = re.compile(f"{escaped}([^{escaped}]*){escaped}")
    known = {"F": fs, "S": cs, "T": ss, "R": rs, "E": ec, ".br": "\n"}

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        found = known.get(code)
        if found is not None:
            return found
        if code[:1] == "X" and len(code) > 1:
            try:
                return bytes.fromhex(code[1:]).decode(charset)
            except (ValueError, UnicodeDecodeError):
                pass
        return match.group(0)  # an escape we do not know stays as it was written

    return fs, cs, rs, ec, ss, lambda value: pattern.sub(replace, value)


# HL7 table 0211 names; anything else is tried as a Python codec name.
_HL7_CHARSETS = {
    "ASCII": "ascii",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    **{f"8859/{n}": f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)},
}


@lru_cache(maxsize=64)
def _codec(name: str) -> str | None:
    """The Python codec for an MSH-18 value, or None when unknown or not ASCII-compatible
    (UTF-16 cannot be split into segments byte by byte)."""
    name = name.strip()
    if not name:
        return None
    codec = _HL7_CHARSETS.get(name.upper(), name)
    try:
        codec = codecs.lookup(codec).name
        ascii_compatible = "MSH|^~\\&\r".encode(codec) == b"MSH|^~\\&\r"
    except (LookupError, UnicodeError):
        return None
    return codec if ascii_compatible else None


def _decode(raw: bytes, codec: str | None) -> tuple[str, str]:
    """Text and the codec used: MSH-18's if Python knows it, else UTF-8; a message is never
    lost to an encoding slip, it falls back to cp1252 (and latin-1, which decodes anything)."""
    for candidate in (codec, "utf-8", "cp1252"):
        if candidate:
            try:
                return raw.decode(candidate), candidate
            except UnicodeDecodeError:
                pass
    return raw.decode("latin-1"), "latin-1"


@lru_cache(maxsize=64)
def _separator_problem(written: bytes) -> str | None:
    """Why MSH-1 and MSH-2 (`|^~\\&`, as bytes up to the next separator) are unusable."""
    separator, encoding_chars = written[:1], written[1:]
    if not separator or separator.isalnum() or separator.isspace():
        return f"MSH-1 field separator is missing or invalid: {written[:8]!r}"
    if (
        len(encoding_chars) not in (4, 5)
        or len(set(encoding_chars[:4])) != 4
        or any(chr(c).isalnum() or chr(c).isspace() for c in encoding_chars)
    ):
        shown = encoding_chars.decode("latin-1")
        return f"MSH-2 encoding characters {shown!r} are not valid (expected e.g. ^~\\&)"
    return None


def _msh_problem(msh: bytes) -> tuple[str | None, str | None]:
    """(why this MSH cannot be read or None, the codec MSH-18 names or None)."""
    separator = msh[3:4]
    end = msh.find(separator, 4) if separator else -1
    problem = _separator_problem(msh[3:end] if end > 0 else msh[3:])
    if problem:
        return problem, None
    count = msh.count(separator) + 1
    if count < 12:
        return f"MSH has {count} fields; at least 12 are needed (up to MSH-12)", None
    charset = None
    if count > 17:
        msh_18 = msh.split(separator, 18)[17]
        charset = _codec(msh_18.split(msh[4:5], 1)[0].decode("ascii", "replace"))
    return None, charset


def _message(lines: list[bytes], file: str, line: int) -> SourceRecord | SourceError:
    raw = b"\r".join(lines)
    problem, codec = _msh_problem(lines[0])
    if problem:
        return SourceError(file, line, problem, raw)
    text, used = _decode(raw, codec)
    return SourceRecord(file, line, Hl7Message(text, used), raw)


def physical_lines(stream: BinaryIO) -> Iterator[tuple[int, list[bytes]]]:
    """Batches of lines: (number of the batch's first line, lines), whether lines end in CR,
    LF or CRLF; MLLP framing bytes are dropped. Reads in chunks, so memory stays bounded."""
    carry = b""
    number = 1
    while True:
        chunk = stream.read(_CHUNK)
        data = carry + chunk
        if not chunk:
            if data:
                yield number, [data.translate(None, _MLLP_FRAMING).rstrip(b"\r\n")]
            return
        hold = b""
        if data.endswith(b"\r"):  # a CRLF may straddle two chunks: count it once
            data, hold = data[:-1], b"\r"
        data = data.translate(None, _MLLP_FRAMING).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = data.split(b"\n")
        carry = lines.pop() + hold
        if lines:
            yield number, lines
            number += len(lines)


class _Assembler:
    """Groups lines into messages (each starts at an MSH) and reports lines before the first."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: list[bytes] = []
        self.size = 0
        self.start = 0
        self.junk_start = 0
        self.junk_count = 0

    def add(self, number: int, line: bytes) -> Iterator[SourceRecord | SourceError]:
        if line[:3] == b"MSH":
            yield from self.flush()
            self.lines, self.size, self.start = [line], len(line), number
        elif line[:3] in _BATCH_SEGMENTS:
            return
        elif self.lines:
            if self.size <= _MAX_MESSAGE_BYTES:  # past the limit, only count until the next MSH
                self.lines.append(line)
            self.size += len(line)
        else:
            if not self.junk_count:
                self.junk_start = number
            self.junk_count += 1

    def flush(self) -> Iterator[SourceRecord | SourceError]:
        if self.junk_count:
            what = "1 line" if self.junk_count == 1 else f"{self.junk_count} lines"
            reason = f"{what} before the first MSH segment: not an HL7 message"
            yield SourceError(self.file, self.junk_start, reason)
            self.junk_count = 0
        if self.lines:
            if self.size > _MAX_MESSAGE_BYTES:
                reason = f"message larger than {_MAX_MESSAGE_BYTES >> 20} MiB"
                yield SourceError(self.file, self.start, reason)
            else:
                yield _message(self.lines, self.file, self.start)
            self.lines = []


def read_messages(stream: BinaryIO, file: str) -> Iterator[SourceRecord | SourceError]:
    assembler = _Assembler(file)
    for first, lines in physical_lines(stream):
        for number, line in enumerate(lines, first):
            if line[:1] in b" \t":
                line = line.lstrip()
            if not line:
                continue
            if line[:3] == b"MSH" or not assembler.lines or line[:3] in _BATCH_SEGMENTS:
                yield from assembler.add(number, line)
            elif assembler.size <= _MAX_MESSAGE_BYTES:  # the common case, inline
                assembler.lines.append(line)
                assembler.size += len(line)
            else:
                assembler.size += len(line)
    yield from assembler.flush()
