"""A mapping outcome kept by a listener (`MappedRecord.to_bytes`) and read back by a worker."""

from __future__ import annotations

import io

from hub.mapping import MappedRecord, MappingSet
from hub.settings import REPOSITORY
from hub.sources import SourceRecord


def adt_outcomes() -> tuple[MappingSet, list[MappedRecord]]:
    mappings = MappingSet(REPOSITORY / "mappings")
    mapping = mappings.get("slam-epr/adt")
    data = (REPOSITORY / "mappings/slam-epr/examples/adt.hl7").read_bytes()
    records = [
        r for r in mapping.format.read(io.BytesIO(data), "adt.hl7") if isinstance(r, SourceRecord)
    ]
    return mappings, [mapping.map_record(r) for r in records]


def test_a_kept_outcome_reads_back_as_it_was() -> None:
    mappings, outcomes = adt_outcomes()
    version = mappings.get("slam-epr/adt").version
    for outcome in outcomes:
        back = MappedRecord.from_bytes(
            outcome.to_bytes(version), version, outcome.locator, outcome.raw
        )
        assert back is not None
        assert back.summary() == outcome.summary()  # resources, instructions (the A40's merge)
        assert (back.timestamp, back.record_id, back.name) == (
            outcome.timestamp,
            outcome.record_id,
            outcome.name,
        )
        assert back.transaction() == outcome.transaction()


def test_an_outcome_kept_by_another_version_of_the_mapping_is_not_used() -> None:
    mappings, outcomes = adt_outcomes()
    kept = outcomes[0].to_bytes("an-older-version")
    version = mappings.get("slam-epr/adt").version
    assert MappedRecord.from_bytes(kept, version, "adt.hl7 line 1", b"") is None
