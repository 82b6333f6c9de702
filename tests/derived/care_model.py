"""Synthetic care-model resources shaped as the care-model contract says the mappings write
them (Patient references already literal, as the pipeline resolves them), and how the
pipeline writes them. Every person, number and organisation here is invented."""

from __future__ import annotations

import uuid
from typing import Any

from hub.store import FhirStore

HUB_ID = "https://fhir.hub.example/Id"
HUB_CODES = "https://fhir.hub.example/CodeSystem"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
LEGAL_STATUS_CLASSIFICATION = (
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-LegalStatusClassificationEngland"
)
KWAME = ("C1234567", "Kwame Mensah")
FOLA = ("C7000001", "Fola Adebayo")
NCL_TEAM = ("RV5-NCL247", "North Central Lewisham 24/7")

Resource = dict[str, Any]


def _source(organisation: str, mapping: str) -> dict[str, str]:
    return {"source": f"https://fhir.hub.example/source/{organisation}#{mapping}"}


def _staff(staff: tuple[str, str]) -> dict[str, Any]:
    return {"identifier": {"system": f"{HUB_ID}/RV5/staff", "value": staff[0]}, "display": staff[1]}


def patient(
    patient_id: str,
    nhs_number: str,
    family: str,
    given: str,
    *,
    practice: tuple[str, str] | None = ("G85902", "Brockley Road Surgery"),
    birth_date: str = "1972-11-02",
    gender: str = "male",
) -> Resource:
    resource: Resource = {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"system": NHS, "value": nhs_number}],
        "name": [{"family": family, "given": [given]}],
        "gender": gender,
        "birthDate": birth_date,
    }
    if practice:
        resource["generalPractitioner"] = [
            {
                "type": "Organization",
                "identifier": {"system": ODS, "value": practice[0]},
                "display": practice[1],
            }
        ]
    return resource


def episode(
    patient_id: str,
    episode_id: str,
    kind: str,
    status: str,
    start: str,
    end: str | None = None,
    *,
    care_manager: tuple[str, str] | None = KWAME,
    team: tuple[str, str] = NCL_TEAM,
) -> Resource:
    resource: Resource = {
        "resourceType": "EpisodeOfCare",
        "meta": _source("RV5", "slam-epr/episodes"),
        "identifier": [{"system": f"{HUB_ID}/RV5/episode", "value": episode_id}],
        "status": status,
        "type": [{"coding": [{"system": f"{HUB_CODES}/episode-type", "code": kind}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "managingOrganization": {
            "identifier": {"system": ODS, "value": "RV5"},
            "display": "South London and Maudsley",
        },
        "period": {"start": start, **({"end": end} if end else {})},
        "team": [
            {"identifier": {"system": f"{HUB_ID}/RV5/team", "value": team[0]}, "display": team[1]}
        ],
    }
    if care_manager:
        resource["careManager"] = _staff(care_manager)
    return resource


def trust_plan(
    patient_id: str,
    plan_id: str,
    plan_type: str,
    status: str,
    start: str,
    *,
    coordinator: tuple[str, str] = KWAME,
) -> Resource:
    return {
        "resourceType": "CarePlan",
        "meta": _source("RV5", "slam-epr/careplans"),
        "identifier": [{"system": f"{HUB_ID}/RV5/careplan", "value": plan_id}],
        "status": status,
        "intent": "plan",
        "category": [{"coding": [{"system": f"{HUB_CODES}/epr-plan-type", "code": plan_type}]}],
        "title": f"{plan_type.title()} plan",
        "subject": {"reference": f"Patient/{patient_id}"},
        "created": start,
        "period": {"start": start},
        "author": _staff(coordinator),
    }


def district_nursing_plan(
    patient_id: str, plan_id: str, status: str, start: str, lead_nurse: str = "A. Brown RN"
) -> Resource:
    return {
        "resourceType": "CarePlan",
        "meta": _source("RJ2", "district-nursing/careplans"),
        "identifier": [{"system": f"{HUB_ID}/RJ2/careplan", "value": plan_id}],
        "status": status,
        "intent": "plan",
        "category": [{"text": "Medication administration"}],
        "title": "Shared depot injection pathway",
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": start},
        "author": {"display": lead_nurse},
        "contributor": [{"type": "Organization", "identifier": {"system": ODS, "value": "RJ2"}}],
    }


def support_plan(
    patient_id: str, organisation: str, plan_id: str, status: str, start: str, worker: str
) -> Resource:
    return {
        "resourceType": "CarePlan",
        "meta": _source(organisation, "vcse/support-plans"),
        "identifier": [{"system": f"{HUB_ID}/{organisation}/support-plan", "value": plan_id}],
        "status": status,
        "intent": "plan",
        "title": "Wellbeing and work plan",
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": start},
        "author": {"display": worker},
    }


def consent(
    patient_id: str,
    organisation: str,
    client_ref: str,
    start: str,
    withdrawn: str | None = None,
) -> Resource:
    return {
        "resourceType": "Consent",
        "meta": _source(organisation, "vcse/clients"),
        "identifier": [{"system": f"{HUB_ID}/{organisation}/consent", "value": client_ref}],
        "status": "inactive" if withdrawn else "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "INFA"}
                ]
            }
        ],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": start,
        "organization": [
            {
                "type": "Organization",
                "identifier": {"system": f"{HUB_ID}/vcse-organisation", "value": organisation},
            }
        ],
        "policyRule": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}
            ]
        },
        "provision": {
            "type": "permit",
            "period": {"start": start, **({"end": withdrawn} if withdrawn else {})},
        },
    }


def related_person(
    patient_id: str,
    key: str,
    family: str,
    given: str,
    role: str,
    relationship: tuple[str, str] = ("SIS", "Sister"),
    *,
    active: bool = True,
) -> Resource:
    return {
        "resourceType": "RelatedPerson",
        "meta": _source("RV5", "slam-epr/adt"),
        "identifier": [{"system": f"{HUB_ID}/RV5/related-person", "value": key}],
        "active": active,
        "patient": {"reference": f"Patient/{patient_id}"},
        "relationship": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0063",
                        "code": relationship[0],
                        "display": relationship[1],
                    }
                ]
            },
            {"coding": [{"system": f"{HUB_CODES}/contact-role", "code": role}]},
        ],
        "name": [{"family": family, "given": [given]}],
        "telecom": [{"system": "phone", "value": "020 7946 0999"}],
    }


def stay(
    patient_id: str,
    visit: str,
    status: str,
    start: str,
    end: str | None = None,
    *,
    legal_statuses: list[tuple[str, str, str | None]] = (),  # type: ignore[assignment]
    location: str = "LADYWELL-W1",
) -> Resource:
    """An EPR inpatient Encounter; `legal_statuses`: (England code, start, end) per status."""
    resource: Resource = {
        "resourceType": "Encounter",
        "meta": _source("RV5", "slam-epr/adt"),
        "identifier": [{"system": f"{HUB_ID}/RV5/visit-number", "value": visit}],
        "status": status,
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "IMP",
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": start, **({"end": end} if end else {})},
        "location": [
            {
                # The contract's conditional reference (Location?identifier=...) needs the
                # Location in the store; by identifier it names the same point of care.
                "location": {
                    "identifier": {"system": f"{HUB_ID}/RV5/point-of-care", "value": location},
                    "display": location,
                }
            }
        ],
    }
    extensions = [
        {
            "url": "https://fhir.hub.example/StructureDefinition/legal-status-period",
            "extension": [
                {
                    "url": "classification",
                    "valueCoding": {"system": LEGAL_STATUS_CLASSIFICATION, "code": code},
                },
                {
                    "url": "period",
                    "valuePeriod": {"start": since, **({"end": until} if until else {})},
                },
            ],
        }
        for code, since, until in legal_statuses
    ]
    if extensions:
        resource["extension"] = extensions
    return resource


def write(store: FhirStore, resources: list[Resource]) -> None:
    """Write resources in one transaction as the pipeline does: PUT by business identifier
    (a Patient, whose id identity chose, by id)."""
    entries = [
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": resource,
            "request": {"method": "PUT", "url": _url(resource)},
        }
        for resource in resources
    ]
    store.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def _url(resource: Resource) -> str:
    if resource["resourceType"] == "Patient":
        return f"Patient/{resource['id']}"
    found = resource["identifier"]
    identifier = found[0] if isinstance(found, list) else found
    return f"{resource['resourceType']}?identifier={identifier['system']}|{identifier['value']}"
