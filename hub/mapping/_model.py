"""What a mapping file may say (see mappings/README.md), as pydantic models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FormatName = Literal["hl7v2", "csv", "jsonl", "stu3-bundle"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeySpec(_Strict):
    system: str
    value: str


class KeepRule(_Strict):
    """A list element whose items accumulate across records (see mappings/README.md, "Kept
    items"): an item with an `id` stays until a record sends one with the same id."""

    element: str
    # Items with this extension url form a timeline: one without an end ends when the next
    # begins (their period is `valuePeriod`, or that of their `period` sub-extension).
    timeline: str | None = None


class ResourceRule(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    type: str
    key: KeySpec
    when: str | None = None
    each: str | None = None
    use: str | None = None
    keep: list[KeepRule] = Field(default_factory=list)
    # Written only while no resource has this key (a conditional create): it stands in for a
    # resource another source owns, which replaces it whenever that source sends it.
    placeholder: bool = False
    set: dict[str, Any] = Field(default_factory=dict)


class Withhold(_Strict):
    when: str
    reason: str


class RecordWarning(_Strict):
    """Something about a record worth reporting that does not stop it (an unknown label kept
    as text): `message` is a constant or an expression."""

    when: str
    message: str


class Instruction(BaseModel):
    """Handed on to the pipeline (e.g. a merge); every field but `kind`/`when` is a template."""

    model_config = ConfigDict(extra="allow")
    kind: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    when: str | None = None


class MappingFile(_Strict):
    description: str
    format: FormatName
    organisation: str
    record_id: str | None = None
    timestamp: str | None = None
    order_by: str | None = None
    private: list[str] = Field(default_factory=list)
    withhold: Withhold | None = None
    warnings: list[RecordWarning] = Field(default_factory=list)
    let: dict[str, str] = Field(default_factory=dict)
    resources: list[ResourceRule] = Field(default_factory=list)
    instructions: list[Instruction] = Field(default_factory=list)

    @field_validator("let")
    @classmethod
    def _let_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not name.replace("_", "a").isalnum():
                raise ValueError(f"{name!r}: a let name is letters, digits and _")
        return value

    @model_validator(mode="after")
    def _something_to_do(self) -> MappingFile:
        if not self.resources and not self.instructions:
            raise ValueError("a mapping needs at least one resource or instruction")
        ids = [rule.id for rule in self.resources]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"resource id(s) used twice: {', '.join(twice)}")
        return self


class PartFile(_Strict):
    description: str
    template: dict[str, Any]
