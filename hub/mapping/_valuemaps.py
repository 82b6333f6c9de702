"""Value maps: local codes -> FHIR codings, kept as YAML files beside the mappings.

Each is also a FHIR ConceptMap (`to_concept_map`), so the translations a mapping applies can be
read, and checked, by anyone with a FHIR client.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CONCEPT_MAP_BASE = "https://fhir.hub.example/ConceptMap/"
SOURCE_CODES_BASE = "https://fhir.hub.example/source-codes/"
"""Names the codes a feed writes itself (a value map without `source:`) in its ConceptMap."""
MAPPED_VALUES_BASE = "https://fhir.hub.example/mapped-values/"
"""Names the plain values (no code system) a value map gives, in its ConceptMap."""


class TargetCoding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    system: str | None = None
    code: str
    display: str | None = None


class UnmappedValue(Exception):
    """A value that is not in a value map whose `unmapped` rule is `error`."""


class ValueMapFile(BaseModel):
    """What a value map file holds (see mappings/README.md)."""

    model_config = ConfigDict(extra="forbid")
    description: str
    source: str | None = None
    target: str | None = None
    match: Literal["exact", "ignore-case"] = "exact"
    unmapped: str | TargetCoding = "error"
    map: dict[str, str | TargetCoding | list[str | TargetCoding]] = Field(min_length=1)


class ValueMap:
    """A loaded value map: `lookup(value)` gives the target codings as JSON dicts."""

    def __init__(self, name: str, spec: ValueMapFile) -> None:
        self.name = name
        self.spec = spec
        fold = str.casefold if spec.match == "ignore-case" else str
        self._fold = fold
        self._table = {
            fold(key.strip()): tuple(self._codings(target)) for key, target in spec.map.items()
        }
        unmapped = spec.unmapped
        self._fallback: tuple[dict[str, str], ...] | None
        if unmapped == "error":
            self._fallback = None
        elif unmapped == "omit":
            self._fallback = ()
        else:
            self._fallback = tuple(self._codings(unmapped))

    def _codings(self, target: Any) -> list[dict[str, str]]:
        items = target if isinstance(target, list) else [target]
        result = []
        for item in items:
            coding = item if isinstance(item, TargetCoding) else TargetCoding(code=item)
            system = coding.system or self.spec.target
            result.append(
                {
                    k: v
                    for k, v in (
                        ("system", system),
                        ("code", coding.code),
                        ("display", coding.display),
                    )
                    if v is not None
                }
            )
        return result

    def lookup(self, value: str) -> tuple[dict[str, str], ...]:
        found = self._table.get(self._fold(value.strip()))
        if found is not None:
            return found
        if self._fallback is None:
            raise UnmappedValue(f"{value!r} is not in value map {self.name!r}")
        return self._fallback

    def to_concept_map(self) -> dict[str, Any]:
        """The map as an R4 ConceptMap, one group per target system."""
        groups: dict[str | None, list[dict[str, Any]]] = {}
        for key, codings in self._table_items():
            for coding in codings:
                target = {"code": coding["code"], "equivalence": "equivalent"}
                if "display" in coding:
                    target["display"] = coding["display"]
                groups.setdefault(coding.get("system"), []).append(
                    {"code": key, "target": [target]}
                )
        concept_map: dict[str, Any] = {
            "resourceType": "ConceptMap",
            "id": self.name.replace("/", "-"),
            "url": CONCEPT_MAP_BASE + self.name,
            "name": "".join(part.capitalize() for part in self.name.replace("/", "-").split("-")),
            "status": "active",
            "description": self.spec.description,
            "group": [],
        }
        for system, elements in groups.items():
            # Without a `source:` the codes are the feed's own (free text, local codes): a
            # group still names where they come from, as FHIR servers (HAPI) require.
            group: dict[str, Any] = {"source": self.spec.source or SOURCE_CODES_BASE + self.name}
            # Likewise a value of no code system (a plain value the mapping uses).
            group["target"] = system or MAPPED_VALUES_BASE + self.name
            group["element"] = elements
            concept_map["group"].append(group)
        return concept_map

    def _table_items(self) -> list[tuple[str, tuple[dict[str, str], ...]]]:
        # The ConceptMap shows the codes as the source writes them, not case-folded.
        return [(key.strip(), self._table[self._fold(key.strip())]) for key in self.spec.map]
