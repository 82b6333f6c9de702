"""Minimal valid examples of every resource type the hub stores, with synthetic data only.

Every test makes its own data unique (an identifier system with a uuid in it), because a
remote FHIR server cannot be wiped between tests; tests assert only on their own data.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

Resource = dict[str, Any]

NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SNOMED = "http://snomed.info/sct"

RESOURCE_TYPES = (
    "Patient",
    "Encounter",
    "CarePlan",
    "Questionnaire",
    "QuestionnaireResponse",
    "Provenance",
    "Consent",
    "AuditEvent",
    "Subscription",
    "Organization",
    "Practitioner",
)
IDENTIFIED_TYPES = (
    "Patient",
    "Encounter",
    "CarePlan",
    "Questionnaire",
    "QuestionnaireResponse",
    "Consent",
    "Organization",
    "Practitioner",
)
"""The types with an `identifier` search parameter (conditional interactions use it)."""


def unique_system() -> str:
    """An identifier system no other test (or earlier run on a shared server) uses."""
    return f"https://hub.test/conformance/{uuid.uuid4().hex}"


def nhs_number() -> str:
    """A random NHS number from the test range (999...) with a valid modulus 11 check digit."""
    while True:
        digits = [9, 9, 9, *(random.randrange(10) for _ in range(6))]
        remainder = sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        check = 11 - remainder
        if check == 11:
            check = 0
        if check != 10:  # 10 means the number is not valid: draw another
            return "".join(map(str, digits)) + str(check)


def identifier(system: str, value: str) -> dict[str, str]:
    return {"system": system, "value": value}


def reference(resource: Resource) -> dict[str, str]:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def patient(system: str, value: str = "1", **elements: Any) -> Resource:
    resource: Resource = {
        "resourceType": "Patient",
        "identifier": [identifier(system, value)],
        "name": [{"family": "Testwell", "given": ["Robin"]}],
    }
    resource.update(elements)
    return resource


def encounter(system: str, value: str = "1", **elements: Any) -> Resource:
    resource: Resource = {
        "resourceType": "Encounter",
        "identifier": [identifier(system, value)],
        "status": "finished",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
    }
    resource.update(elements)
    return resource


def care_plan(system: str, value: str = "1", **elements: Any) -> Resource:
    resource: Resource = {
        "resourceType": "CarePlan",
        "identifier": [identifier(system, value)],
        "status": "active",
        "intent": "plan",
        "subject": {"display": "A synthetic patient"},
    }
    resource.update(elements)
    return resource


def questionnaire(system: str, value: str = "1", **elements: Any) -> Resource:
    resource: Resource = {
        "resourceType": "Questionnaire",
        "identifier": [identifier(system, value)],
        "url": f"https://hub.test/Questionnaire/{uuid.uuid4().hex}",
        "name": "WellbeingCheck",
        "status": "active",
        "item": [{"linkId": "1", "text": "How are you feeling today?", "type": "string"}],
    }
    resource.update(elements)
    return resource


def questionnaire_response(system: str, value: str = "1", **elements: Any) -> Resource:
    resource: Resource = {
        "resourceType": "QuestionnaireResponse",
        "identifier": identifier(system, value),  # 0..1 in R4
        "status": "completed",
        "item": [{"linkId": "1", "answer": [{"valueString": "Fine"}]}],
    }
    resource.update(elements)
    return resource


def provenance(**elements: Any) -> Resource:
    resource: Resource = {
        "resourceType": "Provenance",
        "target": [{"display": "A synthetic record"}],
        "recorded": "2024-03-10T09:00:00Z",
        "agent": [{"who": {"display": "The conformance suite"}}],
    }
    resource.update(elements)
    return resource


def consent(system: str, value: str = "1", **elements: Any) -> Resource:
    resource: Resource = {
        "resourceType": "Consent",
        "identifier": [identifier(system, value)],
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTIN"}]},
    }
    resource.update(elements)
    return resource


def audit_event(**elements: Any) -> Resource:
    resource: Resource = {
        "resourceType": "AuditEvent",
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
        },
        "action": "R",
        "recorded": "2024-03-10T09:00:00Z",
        "outcome": "0",
        "agent": [{"who": {"display": "The conformance suite"}, "requestor": True}],
        "source": {"observer": {"display": "The hub"}},
    }
    resource.update(elements)
    return resource


def subscription(**elements: Any) -> Resource:
    resource: Resource = {
        "resourceType": "Subscription",
        "status": "off",  # never delivers anything, on any server
        "reason": "Conformance test",
        "criteria": f"Patient?identifier={unique_system()}|1",
        "channel": {
            "type": "rest-hook",
            "endpoint": f"https://hub.test/notify/{uuid.uuid4().hex}",
            "payload": "application/fhir+json",
        },
    }
    resource.update(elements)
    return resource


def organization(system: str, value: str = "1", **elements: Any) -> Resource:
    resource: Resource = {
        "resourceType": "Organization",
        "identifier": [identifier(system, value)],
        "name": "Riverside Community Wellbeing Service",
    }
    resource.update(elements)
    return resource


def practitioner(system: str, value: str = "1", **elements: Any) -> Resource:
    resource: Resource = {
        "resourceType": "Practitioner",
        "identifier": [identifier(system, value)],
        "name": [{"family": "Carebright", "given": ["Sam"]}],
    }
    resource.update(elements)
    return resource


_MAKERS = {
    "Patient": patient,
    "Encounter": encounter,
    "CarePlan": care_plan,
    "Questionnaire": questionnaire,
    "QuestionnaireResponse": questionnaire_response,
    "Consent": consent,
    "Organization": organization,
    "Practitioner": practitioner,
}


def example(resource_type: str, system: str | None = None, value: str = "1") -> Resource:
    """A minimal valid resource of the type; identified by `system|value` where the type has
    an identifier."""
    system = system or unique_system()
    if resource_type in _MAKERS:
        return _MAKERS[resource_type](system, value)
    return {"Provenance": provenance, "AuditEvent": audit_event, "Subscription": subscription}[
        resource_type
    ]()


def changed(resource: Resource) -> Resource:
    """The same resource with one element changed (its language), for updates."""
    language = "cy" if resource.get("language") == "en-GB" else "en-GB"
    return {**resource, "language": language}


def content(resource: Resource) -> Resource:
    """What a client wrote: the resource without the server's id and version metadata."""
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in _SERVER_META}
    found = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    if meta:
        found["meta"] = meta
    return found


_SERVER_META = ("versionId", "lastUpdated", "source")
