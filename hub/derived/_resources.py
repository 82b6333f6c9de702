"""Small readings of source resources shared by the team and the flags."""

from __future__ import annotations

from typing import Any

from hub.fhir import DateFormatError, date_range

from ._names import HUB_ID

Resource = dict[str, Any]


def identifier_scope(resource: Resource) -> tuple[str, str] | None:
    """(organisation, kind) of a resource's hub business identifier:
    `$hub_id/RV5/careplan|CP-1` -> ("RV5", "careplan"). None for any other identifier."""
    prefix = f"{HUB_ID}/"
    for identifier in _identifiers(resource):
        system = identifier["system"]
        parts = system.removeprefix(prefix).split("/")
        if system.startswith(prefix) and len(parts) == 2:
            return parts[0], parts[1]
    return None


def source_reference(resource: Resource) -> dict[str, Any]:
    """A reference naming `resource` by its business identifier: the same whether or not the
    store has given it an id yet, so recomputing from the same sources gives the same team."""
    resource_type = resource["resourceType"]
    identifiers = _identifiers(resource)
    if resource_type == "Patient" or not identifiers:
        return {"reference": f"{resource_type}/{resource['id']}"}
    first = identifiers[0]
    return {
        "type": resource_type,
        "identifier": {"system": first["system"], "value": first["value"]},
    }


def reference_key(reference: dict[str, Any] | None) -> str:
    """What makes two references name the same thing: the literal reference, else the
    identifier, else the display text."""
    if not reference:
        return ""
    if reference.get("reference"):
        return str(reference["reference"])
    identifier = reference.get("identifier") or {}
    if identifier.get("value"):
        return f"{identifier.get('system', '')}|{identifier['value']}"
    return f"display:{reference.get('display', '')}"


def moment(value: str | None) -> int | None:
    """The start of a FHIR date or dateTime in epoch ms, to compare values of any precision."""
    if not value:
        return None
    try:
        return date_range(value)[0]
    except DateFormatError:
        return None


def earliest(values: list[str | None]) -> str | None:
    dated = [v for v in values if moment(v) is not None]
    return min(dated, key=lambda v: moment(v) or 0) if dated else None


def latest(values: list[str | None]) -> str | None:
    dated = [v for v in values if moment(v) is not None]
    return max(dated, key=lambda v: moment(v) or 0) if dated else None


def after(value: str | None, bound: str | None) -> bool:
    """Whether `value` is on or after `bound` (always, when either is unknown)."""
    low, high = moment(value), moment(bound)
    return low is None or high is None or low >= high


def period(resource: Resource, element: str = "period") -> tuple[str | None, str | None]:
    found = resource.get(element) or {}
    return found.get("start"), found.get("end")


def codes(concepts: Any, system: str) -> set[str]:
    """The codes of `system` in one CodeableConcept or a list of them."""
    items = concepts if isinstance(concepts, list) else [concepts or {}]
    return {
        coding.get("code", "")
        for concept in items
        for coding in (concept or {}).get("coding", [])
        if coding.get("system") == system
    }


def _identifiers(resource: Resource) -> list[dict[str, Any]]:
    found = resource.get("identifier") or []
    items = found if isinstance(found, list) else [found]
    return [i for i in items if i.get("system") and i.get("value")]
