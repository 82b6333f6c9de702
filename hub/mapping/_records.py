"""What mapping one source record gives: resources, instructions, or the reasons it could not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ._functions import conditional_reference


@dataclass(frozen=True, slots=True)
class Keep:
    """A list element whose items accumulate across records (the mapping's `keep:`): what
    `merge_kept` needs to know to combine a record's resource with the stored one."""

    element: str
    timeline: str | None = None


@dataclass(frozen=True, slots=True)
class MappedResource:
    """One resource a record produced. Its constant parts (a fixed Coding, a literal list) are
    built once and shared by every record that produces them: copy before changing anything.
    `keep`: the elements to combine with the stored resource before writing (`merge_kept`)."""

    type: str
    system: str
    value: str
    resource: dict[str, Any]
    keep: tuple[Keep, ...] = ()
    placeholder: bool = False
    """Written only while no resource has this key (the mapping's `placeholder:`)."""

    @property
    def conditional_url(self) -> str:
        return conditional_reference(self.type, self.system, self.value)["reference"]

    def request(self) -> dict[str, str]:
        """The Bundle entry request that writes it: a conditional update, or for a placeholder
        a conditional create, which leaves a resource that already has the key as it is."""
        if self.placeholder:
            return {"method": "POST", "url": self.type, "ifNoneExist": self.identifier_query}
        return {"method": "PUT", "url": self.conditional_url}

    @property
    def identifier_query(self) -> str:
        return self.conditional_url.partition("?")[2]


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
    # Worth reporting, not stopping the record (the mapping's `warnings:`).
    warnings: list[str] = field(default_factory=list)

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
                "resources": [
                    [
                        r.type,
                        r.system,
                        r.value,
                        r.resource,
                        [[k.element, k.timeline] for k in r.keep],
                        r.placeholder,
                    ]
                    for r in self.resources
                ],
                "instructions": self.instructions,
                "withheld": self.withheld,
                "errors": self.errors,
                "warnings": self.warnings,
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
            resources=[_kept_resource(made) for made in kept["resources"]],
            instructions=kept["instructions"],
            withheld=kept["withheld"],
            errors=kept["errors"],
            warnings=kept.get("warnings", []),
        )

    def transaction(self) -> dict[str, Any]:
        """The record's resources as one FHIR transaction of conditional updates, so applying
        it again changes nothing."""
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": r.resource, "request": r.request()} for r in self.resources],
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
        if self.warnings:
            shown["warnings"] = self.warnings
        return shown


def _kept_resource(made: list[Any]) -> MappedResource:
    # Outcomes kept before `keep`, `warnings` and `placeholder` existed have none of them.
    keep = made[4] if len(made) > 4 else []
    placeholder = len(made) > 5 and bool(made[5])
    return MappedResource(*made[:4], tuple(Keep(*k) for k in keep), placeholder)
