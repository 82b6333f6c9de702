"""FHIR errors carry their HTTP status and become an OperationOutcome at the edge."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: severity, IssueType code, human text, FHIRPath locations."""

    severity: str
    code: str
    diagnostics: str
    expression: tuple[str, ...] = ()

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


@dataclass
class FhirError(Exception):
    """A failed FHIR interaction: `status` is the HTTP status the REST API answers with."""

    status: int
    issues: list[Issue] = field(default_factory=list)

    def __init__(
        self,
        status: int,
        diagnostics: str,
        *,
        code: str = "processing",
        expression: Sequence[str] = (),
        issues: Sequence[Issue] = (),
    ) -> None:
        self.status = status
        self.issues = list(issues) or [Issue("error", code, diagnostics, tuple(expression))]
        super().__init__(diagnostics)

    def __str__(self) -> str:
        return "; ".join(i.diagnostics for i in self.issues)

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


class InvalidRequest(FhirError):
    """400: the request cannot be understood (bad parameter, malformed JSON, wrong type)."""

    def __init__(self, diagnostics: str, *, code: str = "invalid", **kw: Any) -> None:
        super().__init__(400, diagnostics, code=code, **kw)


class InvalidResource(FhirError):
    """400: the resource is not valid FHIR R4; each issue names the path of the problem."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        super().__init__(400, "", issues=issues)


class ResourceNotFound(FhirError):
    def __init__(self, diagnostics: str) -> None:
        super().__init__(404, diagnostics, code="not-found")


class ResourceGone(FhirError):
    def __init__(self, diagnostics: str) -> None:
        super().__init__(410, diagnostics, code="deleted")


class VersionConflict(FhirError):
    """409: the write conflicts with the resource's current state."""

    def __init__(self, diagnostics: str) -> None:
        super().__init__(409, diagnostics, code="conflict")


class PreconditionFailed(FhirError):
    """412: If-Match did not match, or a conditional interaction matched more than one."""

    def __init__(self, diagnostics: str) -> None:
        super().__init__(412, diagnostics, code="conflict")


class Unprocessable(FhirError):
    """422: valid FHIR that breaks a rule of this server (unsupported type, unresolved ref)."""

    def __init__(self, diagnostics: str, *, code: str = "business-rule", **kw: Any) -> None:
        super().__init__(422, diagnostics, code=code, **kw)


class UpstreamUnavailable(FhirError):
    """503: the FHIR server behind the hub did not answer after retries."""

    def __init__(self, diagnostics: str) -> None:
        super().__init__(503, diagnostics, code="transient")
