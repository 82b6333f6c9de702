"""What mapping one source record gives: resources, instructions, or the reasons it could not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ._functions import conditional_reference


@dataclass(frozen=True, slots=True)
class MappedResource:
    """One resource a record produced. Its constant parts (a fixed Coding, a literal list) are
    built once and shared by every record that produces them: copy before changing anything."""

    type: str
    system: str
    value: str
    resource: dict[str, Any]

    @property
    def conditional_url(self) -> str:
        return conditional_reference(self.type, self.system, self.value)["reference"]


@dataclass(slots=True)
class MappedRecord:
    """One source record's outcome. `ok` when it has no errors and is not withheld."""

    locator: str
    raw: bytes
    record_id: str | None = None
    timestamp: str | None = None
    resources: list[MappedResource] = field(default_factory=list)
    instructions: list[dict[str, Any]] = field(default_factory=list)
    withheld: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and self.withheld is None

    @property
    def name(self) -> str:
        """'visits.csv line 2 (DN-77812)': how errors and reports name the record."""
        return f"{self.locator} ({self.record_id})" if self.record_id else self.locator

    def to_bytes(self, version: str) -> bytes:
        """The outcome as JSON, for a listener that mapped the record already to hand to the
        worker (which then need not map it again) with `version`, the mapping's."""
        return orjson.dumps(
            {
                "version": version,
                "record_id": self.record_id,
                "timestamp": self.timestamp,
                "resources": [[r.type, r.system, r.value, r.resource] for r in self.resources],
                "instructions": self.instructions,
                "withheld": self.withheld,
                "errors": self.errors,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes, version: str, locator: str, raw: bytes) -> MappedRecord | None:
        """The outcome `to_bytes` kept, if the mapping is still at `version`; else None (map
        the record again)."""
        kept = orjson.loads(data)
        if kept.get("version") != version:
            return None
        return cls(
            locator,
            raw,
            record_id=kept["record_id"],
            timestamp=kept["timestamp"],
            resources=[MappedResource(*made) for made in kept["resources"]],
            instructions=kept["instructions"],
            withheld=kept["withheld"],
            errors=kept["errors"],
        )

    def transaction(self) -> dict[str, Any]:
        """The record's resources as one FHIR transaction of conditional updates, so applying
        it again changes nothing."""
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": r.resource, "request": {"method": "PUT", "url": r.conditional_url}}
                for r in self.resources
            ],
        }

    def summary(self) -> dict[str, Any]:
        """The record as a worked example shows it (see mappings/README.md)."""
        shown: dict[str, Any] = {"record": self.name}
        if self.errors:
            shown["errors"] = self.errors
            return shown
        if self.withheld is not None:
            shown["withheld"] = self.withheld
            return shown
        shown["resources"] = [r.resource for r in self.resources]
        if self.instructions:
            shown["instructions"] = self.instructions
        return shown
