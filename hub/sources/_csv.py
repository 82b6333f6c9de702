"""`csv`: district nursing and VCSE exports (UTF-8, header row, comma separated).

Spreadsheet habits are tolerated (byte-order mark, blank lines, trailing spaces, a trailing
comma); cells are text and are never evaluated, whatever they start with.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, BinaryIO

from ._records import SourceError, SourcePath, SourceRecord, syntax_error

_COLUMN = re.compile(r"[A-Za-z0-9_ -]+")
_LINE_ENDS = ("\r\n", "\n", "\r")


def _lines(text: io.TextIOWrapper, pending: list[str]) -> Iterator[str]:
    """Physical lines (ending in CRLF, LF or a lone CR, as spreadsheets on a Mac write) for
    csv.reader, one at a time; each also goes to `pending`, so a row knows its own text."""
    for line in text:
        pending.append(line)
        yield line


def _raw(pending: list[str], first_line: int) -> bytes | tuple[int, str]:
    """The row's bytes without its line ending, or (line, byte) where it is not UTF-8:
    undecodable bytes arrive as surrogates (`surrogateescape`) and fail to encode."""
    text = "".join(pending)
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        for offset, line in enumerate(pending):
            try:
                line.encode("utf-8")
            except UnicodeEncodeError as err:
                byte = ord(line[err.start]) - 0xDC00
                return first_line + offset, f"{byte:02x}"
        raise
    for end in _LINE_ENDS:
        if raw.endswith(end.encode()):
            return raw[: -len(end)]
    return raw


class _Header:
    """The header row: which cell holds which column, and its bytes (each record's context)."""

    def __init__(self, cells: list[str], raw: bytes) -> None:
        self.raw = raw
        names = [cell.strip() for cell in cells]
        while names and not names[-1]:  # a trailing comma is not a column
            names.pop()
        self.width = len(names)
        self.names = names
        # Unnamed columns in the middle cannot be named by any path: their cells are left out.
        self.named = [(i, name) for i, name in enumerate(names) if name]
        self.all_named = len(self.named) == self.width

    def duplicates(self) -> list[str]:
        counts = Counter(name for _, name in self.named)
        return sorted(name for name, count in counts.items() if count > 1)

    def row(self, cells: list[str]) -> dict[str, str] | str:
        """The row as column -> stripped text, or why it does not fit the header."""
        count = len(cells)
        if count != self.width:
            extra_empty = count > self.width and not any(c.strip() for c in cells[self.width :])
            if not extra_empty:
                return f"row has {count} cells, the header has {self.width}"
        if self.all_named:
            return dict(zip(self.names, map(str.strip, cells), strict=False))
        return {name: cells[i].strip() for i, name in self.named}


class CsvFormat:
    name = "csv"

    def read(
        self, stream: BinaryIO, file: str, *, columns: frozenset[str] = frozenset()
    ) -> Iterator[SourceRecord | SourceError]:
        # utf-8-sig drops a byte-order mark; surrogateescape defers decoding errors to the row
        # they are in (see `_raw`), so the error can name the line.
        text = io.TextIOWrapper(
            stream,  # type: ignore[arg-type]
            encoding="utf-8-sig",
            errors="surrogateescape",
            newline="",
        )
        try:
            yield from self._read(text, file, columns)
        finally:
            text.detach()  # the caller's stream stays open: it is theirs to close

    def _read(
        self, text: io.TextIOWrapper, file: str, columns: frozenset[str]
    ) -> Iterator[SourceRecord | SourceError]:
        pending: list[str] = []
        reader = csv.reader(_lines(text, pending))
        header: _Header | None = None
        while True:
            line = reader.line_num + 1
            pending.clear()
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                yield SourceError(file, line, f"cannot read the row: {err}")
                if header is None:
                    return
                continue
            if not any(cell.strip() for cell in cells):
                continue
            raw = _raw(pending, line)
            if isinstance(raw, tuple):
                reason = f"not UTF-8 (byte {raw[1]}): the file must be exported as UTF-8"
                yield SourceError(file, raw[0], reason)
                return
            if header is None:
                header = _Header(cells, raw)
                problem = _header_problem(header, columns)
                if problem:
                    yield SourceError(file, None if problem[0] else line, problem[1])
                    return
                continue
            data = header.row(cells)
            if isinstance(data, str):
                yield SourceError(file, line, data, raw)
            else:
                yield SourceRecord(file, line, data, raw, header.raw)
        if header is None:
            yield SourceError(file, None, "the file is empty: no header row")

    def compile_path(self, text: str) -> SourcePath:
        return compile_column_path(text)

    def check_path(self, text: str) -> str | None:
        return None  # columns are checked against the header when a file is read


def _header_problem(header: _Header, columns: frozenset[str]) -> tuple[bool, str] | None:
    """(file-level?, reason) when the header cannot serve; None when it can."""
    duplicates = header.duplicates()
    if duplicates:
        return False, f"duplicate column(s) in the header: {', '.join(duplicates)}"
    missing = columns - {name for _, name in header.named}
    if missing:
        present = ", ".join(name for _, name in header.named)
        return True, f"missing column(s) {', '.join(sorted(missing))} (the header has: {present})"
    return None


@lru_cache(maxsize=4096)
def compile_column_path(text: str) -> SourcePath:
    name = text.strip()
    if name == "@":
        return SourcePath(text, _current_item)
    if not name or not _COLUMN.fullmatch(name):
        raise syntax_error(
            text, "a csv path is a column name (letters, digits, '_', '-', spaces) or '@'"
        )
    return SourcePath(text, _column_getter(name), frozenset({name}))


def _column_getter(name: str) -> Callable[[Any, Any], list[Any]]:
    def get(data: Any, current: Any) -> list[Any]:
        value = data.get(name)
        return [value] if value else []  # cells are stripped when read

    return get


def _current_item(data: Any, current: Any) -> list[Any]:
    if isinstance(current, str):
        current = current.strip()
        return [current] if current else []
    return [] if current is None else [current]
