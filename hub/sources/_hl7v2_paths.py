"""The HL7 v2 path language: `PID-3[type=NH].1`, `PID-5.1`, `MSH-9.2`, `NK1`, `@.1`, `@-2.1`.

Paths are compiled once into closures over `_hl7v2`'s lazily split messages. `check_hl7_path`
asks hl7apy whether a path names something HL7 v2.4 has; hl7apy is imported only there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, BinaryIO

from ._hl7v2 import (
    Filter,
    Hl7Composite,
    Hl7Message,
    Hl7Segment,
    emit,
    field_values,
    filter_text,
    matches,
    read_messages,
)
from ._records import SourceError, SourcePath, SourceRecord, syntax_error

_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_LEVELS = r"(?P<filters>(?:\[[^\[\]]*\])*)(?:\.(?P<comp>\d+)(?:\.(?P<sub>\d+))?)?"
_FIELD_SPEC = re.compile(r"(?P<field>\d+)" + _LEVELS)
_ITEM_SPEC = re.compile(_LEVELS)
_FILTER = re.compile(r"\[([^\[\]]*)\]")
# Names for the CX components PID-3 and MRG-1 are filtered on.
NAMED_FILTERS = {"type": 5, "authority": 4}
_EXAMPLE = "e.g. PID-3[type=NH].1, PID-5.1, NK1, @.1 or @-2.1"

Getter = Callable[[Any, Any], list[Any]]


@dataclass(frozen=True, slots=True)
class ParsedPath:
    kind: str  # "segment" | "field" | "self" | "item" (@.C.S) | "segment-item" (@-F...)
    segment: str = ""
    field: int = 0
    filters: tuple[Filter, ...] = ()
    comp: int = 0
    sub: int = 0


def parse_hl7_path(text: str) -> ParsedPath:
    path = text.strip()
    if not path:
        raise syntax_error(text, "empty path")
    if path == "@":
        return ParsedPath("self")
    if path.startswith("@-"):
        return _field_spec(text, path[2:], "segment-item", "")
    if path.startswith("@"):
        match = _ITEM_SPEC.fullmatch(path[1:])
        if not match or not path[1:]:
            expected = "'.C[.S]', '[filter]' or '-F'"
            raise syntax_error(text, f"after '@' expected {expected} ({_EXAMPLE})")
        return ParsedPath("item", "", 0, _filters(text, match["filters"]), *_numbers(text, match))
    segment, rest = path[:3], path[3:]
    if not _SEGMENT_ID.fullmatch(segment):
        if _SEGMENT_ID.fullmatch(segment.upper()):
            raise syntax_error(text, f"segment ids are upper case ({segment.upper()})")
        raise syntax_error(text, f"a path starts with a 3-character segment id or '@' ({_EXAMPLE})")
    if not rest:
        return ParsedPath("segment", segment)
    if rest[0] != "-":
        hint = f" ({segment}-{rest[1:]})" if rest[0] == "." else ""
        raise syntax_error(text, f"expected '-' between the segment id and the field number{hint}")
    return _field_spec(text, rest[1:], "field", segment)


def _field_spec(text: str, spec: str, kind: str, segment: str) -> ParsedPath:
    match = _FIELD_SPEC.fullmatch(spec)
    if not match:
        raise syntax_error(text, _field_spec_problem(spec))
    field = int(match["field"])
    if field == 0:
        raise syntax_error(text, "field numbers start at 1")
    filters = _filters(text, match["filters"])
    return ParsedPath(kind, segment, field, filters, *_numbers(text, match))


def _field_spec_problem(spec: str) -> str:
    if not spec[:1].isdigit():
        return "expected a field number after '-'"
    if re.search(r"\.\d+\[", spec):
        return "a filter goes right after the field number, e.g. PID-3[type=NH].1"
    if spec.count("[") != spec.count("]"):
        return "a '[' filter is not closed with ']'"
    if spec.split("]")[-1].count(".") > 2:
        return "too many levels: at most field.component.subcomponent"
    return f"expected SEG-F[filter][.C[.S]] ({_EXAMPLE})"


def _numbers(text: str, match: re.Match[str]) -> tuple[int, int]:
    comp = int(match["comp"]) if match["comp"] else 0
    sub = int(match["sub"]) if match["sub"] else 0
    if (match["comp"] and comp == 0) or (match["sub"] and sub == 0):
        raise syntax_error(text, "component and subcomponent numbers start at 1")
    return comp, sub


def _filters(text: str, written: str) -> tuple[Filter, ...]:
    filters = []
    for body in _FILTER.findall(written):
        key, eq, wanted = body.partition("=")
        key, wanted = key.strip(), wanted.strip()
        if not eq or not wanted:
            raise syntax_error(text, f"filter [{body}] should read [key=value], e.g. [type=NH]")
        if key in NAMED_FILTERS:
            filters.append((NAMED_FILTERS[key], wanted))
        elif key.isdigit() and int(key) > 0:
            filters.append((int(key), wanted))
        else:
            raise syntax_error(
                text,
                f"unknown filter key {key!r}: use [type=X] (CX.5), [authority=X] (CX.4) "
                "or [N=X] (component N)",
            )
    return tuple(filters)


@lru_cache(maxsize=4096)
def compile_hl7_path(text: str) -> SourcePath:
    parsed = parse_hl7_path(text)
    return SourcePath(text, _GETTERS[parsed.kind](parsed))


def _context(current: Any, segment_id: str) -> Hl7Segment | None:
    """The segment an absolute path means while iterating: the current one, if it is of that
    id (iterating `NK1`, `NK1-2.1` is this NK1's name), or the one a current composite is in."""
    if type(current) is Hl7Segment:
        return current if current.id == segment_id else None
    if type(current) is Hl7Composite:
        segment = current.segment
        return segment if segment.id == segment_id else None
    return None


def _segment_getter(parsed: ParsedPath) -> Getter:
    segment_id = parsed.segment

    def get(data: Hl7Message, current: Any) -> list[Any]:
        if current is not None:
            segment = _context(current, segment_id)
            if segment is not None:
                return [segment]
        return list(data.segments_named(segment_id))

    return get


def _field_getter(parsed: ParsedPath) -> Getter:
    segment_id, field, filters = parsed.segment, parsed.field, parsed.filters
    comp, sub = parsed.comp, parsed.sub
    if filters or sub or (segment_id == "MSH" and field <= 2):
        return _general_field_getter(segment_id, field, filters, comp, sub)

    # The hot path (`PID-7`, `PID-5.1`: ~30 of these per message) inlines `field_values` and
    # `emit` for leaf values; anything unusual goes back to them.
    def get(data: Hl7Message, current: Any) -> list[Any]:
        out: list[Any] = []
        if _from_current(current, segment_id, field, filters, comp, sub, out):
            return out
        segments = data._by_id.get(segment_id)
        if segments is None:
            return out
        ss, ec = data.ss, data.ec
        for segment in segments:
            cache = segment._repetitions
            repetitions = cache.get(field) if cache is not None else None
            if repetitions is None:
                repetitions = segment.repetitions(field)
            for comps in repetitions:
                if comp:
                    if comp > len(comps):
                        continue
                    value = comps[comp - 1]
                elif len(comps) == 1:
                    value = comps[0]
                else:
                    emit(comps, comp, sub, segment, field, out)
                    continue
                if ss in value:
                    emit(comps, comp, sub, segment, field, out)
                    continue
                if ec in value:
                    value = data._unescape(value)
                value = value.strip()
                if value and value != '""':
                    out.append(value)
        return out

    return get


def _from_current(
    current: Any,
    segment_id: str,
    field: int,
    filters: tuple[Filter, ...],
    comp: int,
    sub: int,
    out: list[Any],
) -> bool:
    """While iterating segments of this id, a path means the current one: True when it did."""
    if current is None:
        return False
    segment = _context(current, segment_id)
    if segment is None:
        return False
    field_values(segment, field, filters, comp, sub, out)
    return True


def _general_field_getter(
    segment_id: str, field: int, filters: tuple[Filter, ...], comp: int, sub: int
) -> Getter:
    def get(data: Hl7Message, current: Any) -> list[Any]:
        out: list[Any] = []
        if _from_current(current, segment_id, field, filters, comp, sub, out):
            return out
        for segment in data.segments_named(segment_id):
            field_values(segment, field, filters, comp, sub, out)
        return out

    return get


def _self_getter(parsed: ParsedPath) -> Getter:
    def get(data: Any, current: Any) -> list[Any]:
        if isinstance(current, str):
            current = current.strip()
            return [current] if current else []
        return [] if current is None else [current]

    return get


def _segment_item_getter(parsed: ParsedPath) -> Getter:
    field, filters, comp, sub = parsed.field, parsed.filters, parsed.comp, parsed.sub

    def get(data: Any, current: Any) -> list[Any]:
        out: list[Any] = []
        if type(current) is Hl7Segment:
            field_values(current, field, filters, comp, sub, out)
        return out

    return get


def _item_getter(parsed: ParsedPath) -> Getter:
    filters, comp, sub = parsed.filters, parsed.comp, parsed.sub

    plain = comp > 0 and not sub and not filters

    def get(data: Any, current: Any) -> list[Any]:
        if type(current) is Hl7Composite:
            if plain and not current.component:
                # `@.1` on a field repetition, most relative paths: a plain leaf needs no more.
                parts = current.parts
                if comp > len(parts):
                    return []
                value = parts[comp - 1]
                message = current.segment.message
                if message.ss not in value and message.ec not in value:
                    value = value.strip()
                    return [value] if value and value != '""' else []
            return _in_composite(current, filters, comp, sub)
        if isinstance(current, str):
            # A leaf is its own first component (and first subcomponent), as in HL7.
            value = current.strip()
            if not value or comp > 1 or sub > 1:
                return []
            return [value] if all(n == 1 and w == value for n, w in filters) else []
        return []

    return get


def _in_composite(
    current: Hl7Composite, filters: tuple[Filter, ...], comp: int, sub: int
) -> list[Any]:
    message = current.segment.message
    if current.component:  # a component with subcomponents: `.N` names subcomponent N
        if sub or any(filter_text(current.parts, n, message) != w for n, w in filters):
            return []
        if not comp:
            return [current]
        part = current.part(comp)
        return [] if part is None else [part]
    if filters and not matches(current.parts, filters, message):
        return []
    if not comp:
        return [current]
    out: list[Any] = []
    emit(current.parts, comp, sub, current.segment, current.field, out)
    return out


_GETTERS: dict[str, Callable[[ParsedPath], Getter]] = {
    "segment": _segment_getter,
    "field": _field_getter,
    "self": _self_getter,
    "segment-item": _segment_item_getter,
    "item": _item_getter,
}


_HEADER_PATHS = {
    "control_id": "MSH-10",
    "message_type": "MSH-9.1",
    "trigger_event": "MSH-9.2",
    "message_structure": "MSH-9.3",
    "version": "MSH-12.1",
    "sending_application": "MSH-3.1",
    "sending_facility": "MSH-4.1",
    "receiving_application": "MSH-5.1",
    "receiving_facility": "MSH-6.1",
    "message_time": "MSH-7.1",
    "processing_id": "MSH-11.1",
}


def message_header(record_data: Hl7Message) -> dict[str, str | None]:
    """What an ACK and the pipeline need from MSH; None for what the message does not say."""
    header: dict[str, str | None] = {}
    for key, path in _HEADER_PATHS.items():
        values = compile_hl7_path(path).get(record_data, None)
        header[key] = values[0] if values and isinstance(values[0], str) else None
    return header


def check_hl7_path(text: str) -> str | None:
    """Why a path names something HL7 v2.4 does not have, or None (Z-segments and relative
    paths cannot be checked and pass)."""
    try:
        parsed = parse_hl7_path(text)
    except ValueError as err:
        return str(err)
    if parsed.kind not in ("segment", "field") or parsed.segment.startswith("Z"):
        return None
    from hl7apy import load_reference  # lazy: only `hub mappings check` pays for hl7apy
    from hl7apy.exceptions import ChildNotFound

    segment = parsed.segment
    try:
        fields = load_reference(segment, "Segment", "2.4")[1]
    except ChildNotFound:
        return f"{text}: {segment} is not an HL7 v2.4 segment (nor a Z-segment)"
    if not parsed.field:
        return None
    if parsed.field > len(fields):
        return f"{text}: {segment} has {len(fields)} fields in HL7 v2.4"
    return _check_components(text, f"{segment}-{parsed.field}", fields[parsed.field - 1][1], parsed)


def _check_components(text: str, name: str, field: Any, parsed: ParsedPath) -> str | None:
    kind, children, datatype = field[0], field[1], field[2]
    if datatype == "varies":
        return None
    count = len(children) if kind == "sequence" else 1
    for number, _ in parsed.filters:
        if number > count:
            return f"{text}: a filter reads component {number}; {name} ({datatype}) has {count}"
    if parsed.comp > count:
        return f"{text}: {name} is {datatype} with {count} component(s)"
    if not parsed.sub:
        return None
    # A child is (name, reference, cardinality, kind); a reference is (kind, children, type...).
    component = children[parsed.comp - 1][1] if kind == "sequence" else field
    subs = len(component[1]) if component[0] == "sequence" else 1
    if parsed.sub > subs:
        return f"{text}: {name}.{parsed.comp} is {component[2]} with {subs} subcomponent(s)"
    return None


class Hl7v2Format:
    name = "hl7v2"

    def read(
        self, stream: BinaryIO, file: str, *, columns: frozenset[str] = frozenset()
    ) -> Iterator[SourceRecord | SourceError]:
        return read_messages(stream, file)

    def compile_path(self, text: str) -> SourcePath:
        return compile_hl7_path(text)

    def check_path(self, text: str) -> str | None:
        return check_hl7_path(text)
