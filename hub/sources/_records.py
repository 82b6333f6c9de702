"""What every source format shares: records, errors, compiled paths and the format protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One record read from an input: what paths are evaluated against, and where it came from."""

    file: str  # display name of the input, e.g. "adt.hl7"
    line: int  # 1-based line in the file where the record starts
    data: Any  # format-specific parsed record
    raw: bytes  # the record's own bytes as received (HL7: segments joined by CR)
    # Bytes a record needs to be read again on its own (a CSV row needs its header line):
    # whoever stores one record keeps `context` and `raw` together.
    context: bytes = b""

    @property
    def locator(self) -> str:
        return f"{self.file} line {self.line}"


class SourceError(Exception):
    """A record (or a whole file) that cannot be read at all."""

    def __init__(self, file: str, line: int | None, reason: str, raw: bytes = b"") -> None:
        # Passing every attribute to Exception keeps the error picklable (worker processes).
        super().__init__(file, line, reason, raw)
        self.file = file
        self.line = line
        self.reason = reason
        self.raw = raw
        """The unreadable record's own bytes, where the format can tell them (an HL7 message,
        a JSON line, a CSV row): kept with the dead letter, so nothing received is lost."""

    @property
    def locator(self) -> str:
        return self.file if self.line is None else f"{self.file} line {self.line}"

    def __str__(self) -> str:
        return f"{self.locator}: {self.reason}"


class PathSyntaxError(ValueError):
    """A source path that cannot be compiled; the message names the problem and the path."""


@dataclass(frozen=True, slots=True)
class SourcePath:
    """A compiled source path: `get(record_data, current_item)` gives a list (empty = missing)."""

    text: str
    get: Callable[[Any, Any], list[Any]]
    columns: frozenset[str] = frozenset()  # csv: the column this path reads


class SourceFormat(Protocol):
    """How one kind of input is read, and the language its paths are written in."""

    name: str

    def read(
        self, stream: BinaryIO, file: str, *, columns: frozenset[str] = frozenset()
    ) -> Iterator[SourceRecord | SourceError]: ...

    def compile_path(self, text: str) -> SourcePath: ...

    def check_path(self, text: str) -> str | None: ...


def syntax_error(path: str, problem: str) -> PathSyntaxError:
    return PathSyntaxError(f"source path {path!r}: {problem}")
