"""`jsonl`: one JSON object per line (the EPR's care plans, DIALOG scores and episodes)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import orjson

from ._jsonpath import compile_json_path
from ._records import SourceError, SourcePath, SourceRecord

_BOM = b"\xef\xbb\xbf"


def json_problem(err: orjson.JSONDecodeError) -> str:
    # orjson's own text ends in "line 1 column 9 (char 8)": on one line, only the column helps.
    return f"not valid JSON at column {err.colno}: {err.msg}"


def kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def json_lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes without the line ending) of each non-blank line, BOM removed."""
    for number, line in enumerate(stream, 1):
        if number == 1 and line.startswith(_BOM):
            line = line[3:]
        line = line.rstrip(b"\r\n")
        if line.strip():
            yield number, line


class JsonlFormat:
    name = "jsonl"

    def read(
        self, stream: BinaryIO, file: str, *, columns: frozenset[str] = frozenset()
    ) -> Iterator[SourceRecord | SourceError]:
        for number, line in json_lines(stream):
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError as err:
                yield SourceError(file, number, json_problem(err), line)
                continue
            if isinstance(data, dict):
                yield SourceRecord(file, number, data, line)
            else:
                problem = f"expected a JSON object, found {kind_of(data)}"
                yield SourceError(file, number, problem, line)

    def compile_path(self, text: str) -> SourcePath:
        return compile_json_path(text)

    def check_path(self, text: str) -> str | None:
        return None
