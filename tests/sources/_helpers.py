"""Small helpers for reading bytes through a source format in tests."""

from __future__ import annotations

import io
from typing import Any

from hub.sources import SourceError, SourceRecord, source_format


def read_all(
    format_name: str, content: bytes, file: str = "input", columns: frozenset[str] = frozenset()
) -> list[SourceRecord | SourceError]:
    return list(source_format(format_name).read(io.BytesIO(content), file, columns=columns))


def records(items: list[SourceRecord | SourceError]) -> list[SourceRecord]:
    return [item for item in items if isinstance(item, SourceRecord)]


def errors(items: list[SourceRecord | SourceError]) -> list[SourceError]:
    return [item for item in items if isinstance(item, SourceError)]


def get(format_name: str, path: str, data: Any, current: Any = None) -> list[Any]:
    return source_format(format_name).compile_path(path).get(data, current)


class EndlessSource(io.RawIOBase):
    """Bytes that never end: a reader that wanted the whole input would never finish."""

    def __init__(self, head: bytes, unit: bytes) -> None:
        self.pending = head
        self.unit = unit
        self.largest_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        self.largest_read = max(self.largest_read, size)
        while len(self.pending) < size:
            self.pending += self.unit
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size


def endless(head: bytes, unit: bytes) -> tuple[io.BufferedReader, EndlessSource]:
    source = EndlessSource(head, unit)
    return io.BufferedReader(source), source
