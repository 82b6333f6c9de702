"""What every mapping test needs: the real mappings/ and profiles/, and mapping with the checks."""

from __future__ import annotations

import io
from pathlib import Path

from hub.mapping import MappedRecord, MappingSet
from hub.validation import Profiles

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = MappingSet(ROOT / "mappings")
PROFILES = Profiles.load(ROOT / "profiles")
CHECK = PROFILES.checker(base=True)  # base R4, then profiles/, as `hub mappings test` checks


def map_bytes(name: str, data: bytes, file: str) -> list[MappedRecord]:
    """Every record of `data` mapped by `name`; every resource produced must be valid R4 and
    pass profiles/ (a test that maps something checks that too)."""
    mapped = list(MAPPINGS.get(name).read(io.BytesIO(data), file))
    for record in mapped:
        for made in record.resources:
            assert CHECK(made.resource) == [], record.name
    return mapped
