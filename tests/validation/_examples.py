"""Resources as the hub's mappings produce them, written by hand from the people and numbers
in the source examples (/work/shared/sources/examples), and small helpers for the tests.
Fixtures and `good_resources()` hand out fresh copies, so a test can break one rule and fix it
again."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hub.validation import Profiles

HUB = "https://fhir.hub.example"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
OKAFOR_REF = {"reference": f"Patient?identifier={NHS}|9990000018"}
REILLY_REF = {"reference": f"Patient?identifier={NHS}|9990000026"}


# Adaeze Okafor: EPR A04 (RV5-0000101), PID-3 NHS number and MRN.
PATIENT = {
    "resourceType": "Patient",
    "meta": {"source": f"{HUB}/source/RV5#slam-epr/adt"},
    "identifier": [
        {"system": f"{HUB}/Id/RV5/mrn", "value": "RV5A000123"},
        {"system": NHS, "value": "9990000018"},
    ],
    "name": [{"family": "Okafor", "given": ["Adaeze", "Ngozi"], "prefix": ["Ms"]}],
    "gender": "female",
    "birthDate": "1985-03-14",
    "address": [
        {"line": ["Flat 3", "12 Brockley Rise"], "city": "London", "postalCode": "SE4 2AB"}
    ],
}

# Thomas Reilly's completed depot visit (district nursing DN-77812, RJ2).
ENCOUNTER = {
    "resourceType": "Encounter",
    "meta": {"source": f"{HUB}/source/RJ2#district-nursing/visits"},
    "identifier": [{"system": f"{HUB}/Id/RJ2/visit", "value": "DN-77812"}],
    "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
    "type": [
        {
            "coding": [
                {
                    "system": f"{HUB}/CodeSystem/dn-visit-type",
                    "code": "depot-antipsychotic-injection",
                    "display": "Depot antipsychotic injection",
                }
            ]
        }
    ],
    "subject": REILLY_REF,
    "period": {"start": "2026-04-11T10:15:00+01:00", "end": "2026-04-11T10:45:00+01:00"},
}

# Adaeze Okafor's crisis plan (EPR careplans.jsonl, CP-55120).
CAREPLAN = {
    "resourceType": "CarePlan",
    "meta": {"source": f"{HUB}/source/RV5#slam-epr/careplans"},
    "identifier": [{"system": f"{HUB}/Id/RV5/careplan", "value": "CP-55120"}],
    "status": "active",
    "intent": "plan",
    "category": [
        {
            "coding": [
                {"system": f"{HUB}/CodeSystem/epr-plan-type", "code": "CRISIS"},
                {"system": "http://snomed.info/sct", "code": "736253002"},
            ]
        }
    ],
    "title": "Crisis and contingency plan",
    "subject": OKAFOR_REF,
    "created": "2026-03-01T09:00:00Z",
    "activity": [
        {"detail": {"status": "scheduled", "description": "Daily check-in call while in crisis"}}
    ],
}

# Adaeze Okafor's consent to share (LEW-MIND clients.csv, C-000417).
CONSENT = {
    "resourceType": "Consent",
    "meta": {"source": f"{HUB}/source/LEW-MIND#vcse/clients"},
    "identifier": [{"system": f"{HUB}/Id/LEW-MIND/consent", "value": "C-000417"}],
    "status": "active",
    "scope": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                "code": "patient-privacy",
            }
        ]
    },
    "category": [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "INFA"}]}
    ],
    "patient": OKAFOR_REF,
    "dateTime": "2026-03-02",
    "policyRule": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
    },
    "provision": {"type": "permit"},
}


def _response(questionnaire: str, source: str, ident: tuple[str, str], subject: dict, items: dict):
    answers = []
    for link_id, value in items.items():
        key = "valueDecimal" if isinstance(value, float) else "valueInteger"
        answers.append({"linkId": link_id, "answer": [{key: value}]})
    return {
        "resourceType": "QuestionnaireResponse",
        "meta": {"source": source},
        "identifier": {"system": ident[0], "value": ident[1]},
        "questionnaire": f"{HUB}/Questionnaire/{questionnaire}",
        "status": "completed",
        "subject": subject,
        "authored": "2026-04-14T11:20:00+01:00",
        "item": answers,
    }


# Adaeze Okafor's PHQ-9 from her GP (G85901): 2+2+1+2+1+1+2+0+0 = 11.
PHQ9 = _response(
    "phq-9",
    f"{HUB}/source/G85901#gp/bundle",
    (f"{HUB}/Id/G85901/questionnaire-response", "qr-okafor-2026-04-14"),
    OKAFOR_REF,
    {
        **dict(zip([f"phq9-{i}" for i in range(1, 10)], [2, 2, 1, 2, 1, 1, 2, 0, 0], strict=True)),
        "phq9-total": 11,
    },
)
# A GAD-7 for Thomas Reilly (G85902): 1+2+1+1+0+1+0 = 6.
GAD7 = _response(
    "gad-7",
    f"{HUB}/source/G85902#gp/bundle",
    (f"{HUB}/Id/G85902/questionnaire-response", "qr-reilly-gad7"),
    REILLY_REF,
    {
        **dict(zip([f"gad7-{i}" for i in range(1, 8)], [1, 2, 1, 1, 0, 1, 0], strict=True)),
        "gad7-total": 6,
    },
)
# Adaeze Okafor's DIALOG (dialog.jsonl DLG-9001): items 1-8 mean 29/8, items 9-11 mean 5.
DIALOG = _response(
    "dialog",
    f"{HUB}/source/RV5#slam-epr/dialog",
    (f"{HUB}/Id/RV5/dialog", "DLG-9001"),
    OKAFOR_REF,
    {
        "mental_health": 3,
        "physical_health": 5,
        "job_situation": 2,
        "accommodation": 3,
        "leisure_activities": 4,
        "friendships": 3,
        "relationship_with_partner_family": 5,
        "personal_safety": 4,
        "medication": 5,
        "practical_help": 4,
        "meetings_with_professionals": 6,
        "dialog-quality-of-life": 3.625,
        "dialog-treatment-satisfaction": 5.0,
    },
)
# Adaeze Okafor's SWEMWBS at Lewisham Mind (wellbeing.csv W-0007): raw 20, metric 18.59.
SWEMWBS = _response(
    "swemwbs",
    f"{HUB}/source/LEW-MIND#vcse/wellbeing",
    (f"{HUB}/Id/LEW-MIND/wellbeing", "W-0007"),
    OKAFOR_REF,
    {
        **dict(zip([f"q{i}" for i in range(1, 8)], [3, 2, 3, 3, 2, 4, 3], strict=True)),
        "swemwbs-total": 20,
        "swemwbs-metric": 18.59,
    },
)


def fresh(resource: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(resource)


def good_resources() -> list[dict[str, Any]]:
    return [fresh(r) for r in (PATIENT, ENCOUNTER, CAREPLAN, CONSENT, PHQ9, GAD7, DIALOG, SWEMWBS)]


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def errors(profiles: Profiles, resource: dict[str, Any]) -> list[str]:
    """The rules `resource` breaks (errors only)."""
    return [i.rule for i in profiles.check(resource) if i.severity == "error"]
