"""What a profile check reports, and the error for profiles that cannot be loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Severity = Literal["error", "warning"]

# Where a value is: the resource type, or (parent, element name, list index or None). Checks
# pass these cheap tuples down and turn one into text only when they report an issue.
Where = str | tuple[Any, str, int | None]


def render(where: Where) -> str:
    """`CarePlan.activity[0].detail.status` from a Where."""
    parts: list[str] = []
    while isinstance(where, tuple):
        where, name, index = where
        parts.append(f".{name}" if index is None else f".{name}[{index}]")
    return str(where) + "".join(reversed(parts))


@dataclass(frozen=True, slots=True)
class ProfileIssue:
    """One broken rule. `rule` names it so a mapping writer can find it in profiles/
    (`hub-Patient: Patient.identifier min 1`, `hub-Patient: hub-nhs-1`,
    `phq-9: phq9-total is the sum of phq9-1..phq9-9`); `path` says where, FHIRPath-style."""

    rule: str
    path: str
    message: str
    severity: Severity = "error"

    def to_fhir(self) -> dict[str, Any]:
        """This issue as an OperationOutcome.issue."""
        return {
            "severity": self.severity,
            "code": "processing" if self.severity == "error" else "informational",
            "details": {"text": self.rule},
            "diagnostics": f"{self.rule}: {self.message}",
            "expression": [self.path],
        }


class ProfileLoadError(Exception):
    """A file under profiles/ cannot be used: bad JSON, not FHIR R4, or a rule the checker
    does not support (refused rather than silently skipped)."""

    def __init__(self, file: Path | str, message: str) -> None:
        self.file = str(file)
        self.message = message
        super().__init__(f"{file}: {message}")
