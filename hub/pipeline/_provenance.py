"""The Provenance written with every applied record: who sent it, which mapping (and which
version of it) made the resources, and which inbox item they came from."""

from __future__ import annotations

from typing import Any

from hub.fhir import format_instant

HUB = "https://fhir.hub.example"
INBOX_SYSTEM = f"{HUB}/Id/hub/inbox"
ORGANISATION_SYSTEM = f"{HUB}/Id/source-organisation"
"""Sources are named by the code the mapping gives them (an ODS code such as RV5, or a VCSE
organisation's local code such as LEW-MIND, which has none): one system for both."""

_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
_DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"


def inbox_item_name(instance: str, inbox_id: int) -> str:
    """An inbox item's name beyond its state database: `instance` is the database's
    (`hub.state.instance_id`), as item numbers start again in every one."""
    return f"{instance}-{inbox_id}"


def provenance_id(instance: str, inbox_id: int) -> str:
    """One Provenance per inbox item, at a fixed id: re-applying the item after a crash
    rewrites it instead of adding a second one. Not all digits (HAPI refuses those)."""
    return f"inbox-{inbox_item_name(instance, inbox_id)}"


def mapping_policy(mapping: str, version: str) -> str:
    return f"{HUB}/mappings/{mapping}|{version}"


def provenance(
    *,
    instance: str,
    inbox_id: int,
    record: str,
    organisation: str | None,
    mapping: str,
    mapping_version: str,
    occurred: str | None,
    recorded_ms: int,
    targets: list[str],
) -> dict[str, Any]:
    agents: list[dict[str, Any]] = []
    if organisation:
        agents.append(
            _agent(
                "author",
                "Author",
                {
                    "type": "Organization",
                    "identifier": {"system": ORGANISATION_SYSTEM, "value": organisation},
                    "display": organisation,
                },
            )
        )
    agents.append(
        _agent(
            "assembler",
            "Assembler",
            {"display": f"hub mapping {mapping} version {mapping_version}"},
        )
    )
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": provenance_id(instance, inbox_id),
        "target": [{"reference": target} for target in targets],
        "recorded": format_instant(recorded_ms),
        "policy": [mapping_policy(mapping, mapping_version)],
        "activity": {
            "coding": [{"system": _DATA_OPERATION, "code": "UPDATE", "display": "revise"}]
        },
        "agent": agents,
        "entity": [
            {
                "role": "source",
                "what": {
                    "identifier": {
                        "system": INBOX_SYSTEM,
                        "value": inbox_item_name(instance, inbox_id),
                    },
                    "display": record,
                },
            }
        ],
    }
    if occurred:
        resource["occurredDateTime"] = occurred
    return resource


def _agent(code: str, display: str, who: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": {"coding": [{"system": _PARTICIPANT, "code": code, "display": display}]},
        "who": who,
    }
