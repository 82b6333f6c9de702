"""`stu3-bundle`: a GP system's STU3 structured record, one JSON Bundle per file (or per line)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from ._jsonl import json_lines, json_problem, kind_of
from ._jsonpath import compile_json_path
from ._records import SourceError, SourcePath, SourceRecord

_BOM = b"\xef\xbb\xbf"


class Stu3Bundle(dict[str, Any]):
    """The Bundle's JSON, as a dict (so JSON paths walk it), plus bundle-local `resolve`."""

    __slots__ = ("_index",)

    def __init__(self, bundle: dict[str, Any]) -> None:
        super().__init__(bundle)
        self._index: dict[str, dict[str, Any]] | None = None

    def resolve(self, reference: str) -> dict[str, Any] | None:
        """The resource a bundle-local reference points at: `Patient/pat-1`, a `urn:uuid:`
        fullUrl, or an absolute URL ending in `/Patient/pat-1`; None when it is not here."""
        if not isinstance(reference, str) or not reference.strip():
            return None
        if self._index is None:
            self._index = self._build_index()
        reference = reference.strip()
        found = self._index.get(reference)
        if found is None and "/_history/" in reference:
            reference = reference.split("/_history/", 1)[0]
            found = self._index.get(reference)
        if found is None and reference.count("/") >= 2:
            found = self._index.get("/".join(reference.rsplit("/", 2)[-2:]))
        return found

    def _build_index(self) -> dict[str, dict[str, Any]]:
        index: dict[str, dict[str, Any]] = {}
        entries = self.get("entry")
        for entry in entries if isinstance(entries, list) else ():
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                continue
            full_url = entry.get("fullUrl")
            if isinstance(full_url, str) and full_url:
                index[full_url] = resource
            kind, rid = resource.get("resourceType"), resource.get("id")
            if isinstance(kind, str) and isinstance(rid, str):
                # Type/id may not overwrite a fullUrl that happens to read the same.
                index.setdefault(f"{kind}/{rid}", resource)
        return index


def _bundle_or_error(value: Any, file: str, line: int, raw: bytes) -> SourceRecord | SourceError:
    if not isinstance(value, dict):
        return SourceError(file, line, f"expected a FHIR Bundle, found {kind_of(value)}")
    kind = value.get("resourceType")
    if kind != "Bundle":
        return SourceError(file, line, f"expected a FHIR Bundle, found resourceType {kind!r}")
    if not isinstance(value.get("entry", []), list):
        return SourceError(file, line, "Bundle.entry is not a list")
    return SourceRecord(file, line, Stu3Bundle(value), raw)


class Stu3BundleFormat:
    name = "stu3-bundle"

    def read(
        self, stream: BinaryIO, file: str, *, columns: frozenset[str] = frozenset()
    ) -> Iterator[SourceRecord | SourceError]:
        # One file is one bundle, so reading it whole is the point; JSON Lines of bundles are
        # recognised only when the whole file is not one JSON document.
        content = stream.read()
        if content.startswith(_BOM):
            content = content[3:]
        if not content.strip():
            yield SourceError(file, None, "the file is empty")
            return
        try:
            value = orjson.loads(content)
        except orjson.JSONDecodeError as err:
            if not _first_line_is_a_document(content):
                yield SourceError(file, err.lineno, f"not valid JSON: {err.msg}")
                return
        else:
            yield _bundle_or_error(value, file, 1, content)
            return
        yield from self._read_lines(content, file)

    def _read_lines(self, content: bytes, file: str) -> Iterator[SourceRecord | SourceError]:
        for number, line in json_lines(content.splitlines(keepends=True)):
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as err:
                yield SourceError(file, number, json_problem(err))
                continue
            yield _bundle_or_error(value, file, number, line)

    def compile_path(self, text: str) -> SourcePath:
        return compile_json_path(text)

    def check_path(self, text: str) -> str | None:
        return None


def _first_line_is_a_document(content: bytes) -> bool:
    for line in content.splitlines():
        if line.strip():
            try:
                return isinstance(orjson.loads(line), dict)
            except orjson.JSONDecodeError:
                return False
    return False
