"""The formats by name, as mappings name them (`format: csv`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ._csv import CsvFormat
from ._hl7v2_paths import Hl7v2Format
from ._jsonl import JsonlFormat
from ._records import SourceFormat
from ._stu3 import Stu3BundleFormat

FORMATS: Mapping[str, SourceFormat] = MappingProxyType(
    {fmt.name: fmt for fmt in (Hl7v2Format(), CsvFormat(), JsonlFormat(), Stu3BundleFormat())}
)


def source_format(name: str) -> SourceFormat:
    """The format called `name`; ValueError naming the known formats otherwise."""
    found = FORMATS.get(name)
    if found is None:
        raise ValueError(f"unknown source format {name!r}; known: {', '.join(FORMATS)}")
    return found
