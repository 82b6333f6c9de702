"""A shared record as the plain data `hub record` shows: what `--json` prints, and what the
screen is drawn from."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hub.derived import (
    CARE_TEAM_SOURCE,
    FLAG_CODE_SYSTEM,
    LEGAL_STATUS_PERIOD,
    NOT_DETAINED,
    identifier_scope,
)
from hub.fhir import NHS_NUMBER_SYSTEM, DateFormatError, date_range
from hub.mapping import SOURCE_BASE
from hub.store import Resource

from ._read import SharedRecord
from ._scores import ScoreItem

ENCOUNTERS_PER_SOURCE = 3
_CURRENT_PLAN = ("active", "on-hold")


def summarise(record: SharedRecord, scores: dict[str, tuple[ScoreItem, ...]]) -> dict[str, Any]:
    hidden = _withdrawn_organisations(record.of("Consent"))

    def shown(resources: Iterable[Resource]) -> list[Resource]:
        return [r for r in resources if _organisation(r) not in hidden]

    encounters = shown(record.recent_encounters)
    stays = shown(record.stays_in_progress)
    return {
        "patient": _person(record.patient),
        "flags": _flags(record.of("Flag")),
        "legal_status": _legal_status(stays, encounters),
        "episodes": _episodes(record.of("EpisodeOfCare")),
        "team": _team(record.of("CareTeam"), hidden),
        "plans": _plans(shown(record.of("CarePlan"))),
        "encounters": _encounters(encounters),
        "scores": _scores(shown(record.of("QuestionnaireResponse")), scores),
    }


# --- who they are -------------------------------------------------------------------------------
def _person(patient: Resource) -> dict[str, Any]:
    nhs = next(
        (i["value"] for i in patient.get("identifier", []) if i.get("system") == NHS_NUMBER_SYSTEM),
        None,
    )
    practices = [
        {"name": ref.get("display"), "code": (ref.get("identifier") or {}).get("value")}
        for ref in patient.get("generalPractitioner", [])
        if ref.get("type") != "Practitioner"
    ]
    address = (patient.get("address") or [{}])[0]
    phone = next(
        (t.get("value") for t in patient.get("telecom", []) if t.get("system") == "phone"), None
    )
    return {
        "id": patient["id"],
        "nhs_number": nhs,
        "name": _name(patient),
        "birth_date": patient.get("birthDate"),
        "gender": patient.get("gender"),
        "deceased": patient.get("deceasedDateTime") or patient.get("deceasedBoolean") or None,
        "address": ", ".join([*address.get("line", []), *_present(address, "city", "postalCode")])
        or None,
        "phone": phone,
        "gp_practices": practices,
    }


def _name(patient: Resource) -> str:
    names = patient.get("name") or [{}]
    name = next((n for n in names if n.get("use") == "official"), names[0])
    if name.get("text") and not name.get("family"):
        return str(name["text"])
    given = " ".join(name.get("given", []))
    prefix = f" ({' '.join(name['prefix'])})" if name.get("prefix") else ""
    return f"{str(name.get('family', '')).upper()}, {given}{prefix}".strip(", ")


# --- flags and legal status ---------------------------------------------------------------------
def _flags(flags: list[Resource]) -> list[dict[str, Any]]:
    found = [
        {
            "code": next(
                (
                    c["code"]
                    for c in f["code"].get("coding", [])
                    if c.get("system") == FLAG_CODE_SYSTEM
                ),
                None,
            ),
            "text": f["code"].get("text"),
            "status": f.get("status"),
            "since": (f.get("period") or {}).get("start"),
            "until": (f.get("period") or {}).get("end"),
        }
        for f in flags
    ]
    return sorted(found, key=lambda f: (f["status"] != "active", _sort_key(f["since"])))


def _legal_status(stays: list[Resource], recent: list[Resource]) -> dict[str, Any] | None:
    """The statuses of the stay in progress, else of the latest stay that had any; `current`
    the one without an end on a stay in progress."""
    candidates = [e for e in [*stays, *recent] if _statuses(e)]
    if not candidates:
        return None
    stay = candidates[0]
    statuses = _statuses(stay)
    in_progress = stay.get("status") == "in-progress"
    current = next((s for s in statuses if in_progress and not s["until"]), None)
    return {
        "current": current,
        "detained": bool(current and current["code"] not in NOT_DETAINED),
        "stay": {
            "status": stay.get("status"),
            "start": (stay.get("period") or {}).get("start"),
            "end": (stay.get("period") or {}).get("end"),
            "location": _location(stay),
        },
        "statuses": statuses,
    }


def _statuses(encounter: Resource) -> list[dict[str, Any]]:
    found = []
    for extension in encounter.get("extension", []):
        if extension.get("url") != LEGAL_STATUS_PERIOD:
            continue
        parts = {p.get("url"): p for p in extension.get("extension", [])}
        coding = (parts.get("classification") or {}).get("valueCoding") or {}
        period = (parts.get("period") or {}).get("valuePeriod") or {}
        found.append(
            {
                "code": coding.get("code"),
                "display": coding.get("display"),
                "since": period.get("start"),
                "until": period.get("end"),
            }
        )
    return sorted(found, key=lambda s: _sort_key(s["since"]))


# --- episodes, team, plans ----------------------------------------------------------------------
def _episodes(episodes: list[Resource]) -> list[dict[str, Any]]:
    found = [
        {
            "id": _business_id(e),
            "type": _first_code(e.get("type", [])),
            "status": e.get("status"),
            "team": ((e.get("team") or [{}])[0]).get("display"),
            "care_manager": (e.get("careManager") or {}).get("display"),
            "organisation": _organisation(e),
            "start": (e.get("period") or {}).get("start"),
            "end": (e.get("period") or {}).get("end"),
        }
        for e in episodes
    ]
    return sorted(found, key=lambda e: (e["status"] != "active", _newest_first(e["start"])))


def _team(teams: list[Resource], hidden: set[str]) -> list[dict[str, Any]]:
    found = []
    for team in teams:
        for participant in team.get("participant", []):
            sources = [
                e.get("valueReference", {})
                for e in participant.get("extension", [])
                if e.get("url") == CARE_TEAM_SOURCE
            ]
            organisation = participant.get("onBehalfOf") or {}
            organisation_code = (organisation.get("identifier") or {}).get("value")
            if organisation_code in hidden:
                continue
            found.append(
                {
                    "role": _first_code(participant.get("role", []), display=True),
                    "name": (participant.get("member") or {}).get("display"),
                    "organisation": organisation.get("display") or organisation_code,
                    "since": (participant.get("period") or {}).get("start"),
                    "until": (participant.get("period") or {}).get("end"),
                    "sources": [_reference_text(s) for s in sources],
                }
            )
    return found


def _plans(plans: list[Resource]) -> list[dict[str, Any]]:
    found = [
        {
            "id": _business_id(p),
            "organisation": _organisation(p),
            "title": p.get("title"),
            "category": _first_code(p.get("category", []), display=True),
            "status": p.get("status"),
            "start": (p.get("period") or {}).get("start"),
            "review_due": next(
                (
                    e.get("valueDate")
                    for e in p.get("extension", [])
                    if e.get("url", "").endswith("/careplan-next-review-due")
                ),
                None,
            ),
            "based_on": [_reference_text(b) for b in p.get("basedOn", [])],
        }
        for p in plans
        if p.get("status") in _CURRENT_PLAN
    ]
    return sorted(found, key=lambda p: (p["organisation"] or "", _newest_first(p["start"])))


# --- encounters and scores ----------------------------------------------------------------------
def _encounters(encounters: list[Resource]) -> dict[str, list[dict[str, Any]]]:
    """The latest few of each source, newest first, the most recently seen source first."""
    by_source: dict[str, list[dict[str, Any]]] = {}
    for encounter in sorted(encounters, key=lambda e: _newest_first(_start(e))):
        shown = by_source.setdefault(_organisation(encounter) or "?", [])
        if len(shown) < ENCOUNTERS_PER_SOURCE:
            shown.append(
                {
                    "date": _start(encounter),
                    "status": encounter.get("status"),
                    "class": (encounter.get("class") or {}).get("display")
                    or (encounter.get("class") or {}).get("code"),
                    "type": _first_code(encounter.get("type", []), display=True),
                    "location": _location(encounter),
                }
            )
    return by_source


def _scores(
    responses: list[Resource], definitions: dict[str, tuple[ScoreItem, ...]]
) -> list[dict[str, Any]]:
    """Per score item: the latest value, the first, and the change between them."""
    found = []
    for url, items in definitions.items():
        answered = sorted(
            (r for r in responses if r.get("questionnaire") == url),
            key=lambda r: _sort_key(r.get("authored")),
        )
        for item in items:
            values = [
                (r.get("authored"), v, _organisation(r))
                for r in answered
                if (v := _answer(r, item.link_id)) is not None
            ]
            if not values:
                continue
            (first_on, first, _), (latest_on, latest, source) = values[0], values[-1]
            found.append(
                {
                    "measure": item.measure,
                    "item": item.link_id,
                    "label": item.label,
                    "latest": {"value": latest, "date": latest_on, "source": source},
                    "first": {"value": first, "date": first_on},
                    "change": round(latest - first, 2) if len(values) > 1 else None,
                    "count": len(values),
                }
            )
    return found


def _answer(response: Resource, link_id: str) -> float | None:
    for item in response.get("item", []):
        if item.get("linkId") == link_id:
            for answer in item.get("answer", []):
                for key in ("valueInteger", "valueDecimal"):
                    if isinstance(answer.get(key), int | float):
                        return answer[key]
    return None


# --- small readings -----------------------------------------------------------------------------
def _withdrawn_organisations(consents: list[Resource]) -> set[str]:
    """VCSE organisations whose consent to share this person has none active: what they sent
    is no longer shown outside them (sources README 4, Consent)."""
    by_organisation: dict[str, bool] = {}
    for consent in consents:
        organisation = _consent_organisation(consent)
        if organisation:
            active = consent.get("status") == "active"
            by_organisation[organisation] = by_organisation.get(organisation, False) or active
    return {organisation for organisation, active in by_organisation.items() if not active}


def _consent_organisation(consent: Resource) -> str | None:
    where = identifier_scope(consent)
    return where[0] if where and where[1] == "consent" else None


def _organisation(resource: Resource) -> str | None:
    """The organisation that sent a resource (its meta.source)."""
    source = str((resource.get("meta") or {}).get("source", ""))
    if not source.startswith(SOURCE_BASE):
        return None
    return source.removeprefix(SOURCE_BASE).partition("#")[0] or None


def _business_id(resource: Resource) -> str | None:
    identifiers = resource.get("identifier") or [{}]
    first = identifiers[0] if isinstance(identifiers, list) else identifiers
    return first.get("value")


def _first_code(concepts: list[dict[str, Any]], *, display: bool = False) -> str | None:
    for concept in concepts:
        if display and concept.get("text"):
            return str(concept["text"])
        for coding in concept.get("coding", []):
            return str(
                coding.get("display") if display and coding.get("display") else coding.get("code")
            )
    return None


def _location(encounter: Resource) -> str | None:
    locations = encounter.get("location") or [{}]
    return (locations[0].get("location") or {}).get("display")


def _reference_text(reference: dict[str, Any]) -> str:
    if reference.get("reference"):
        return str(reference["reference"])
    identifier = reference.get("identifier") or {}
    kind = reference.get("type", "")
    return f"{kind} {identifier.get('value', '')}".strip() or str(reference.get("display", ""))


def _start(encounter: Resource) -> str | None:
    return (encounter.get("period") or {}).get("start")


def _present(resource: Resource, *keys: str) -> list[str]:
    return [str(resource[k]) for k in keys if resource.get(k)]


def _sort_key(value: str | None) -> int:
    if not value:
        return 0
    try:
        return date_range(value)[0]
    except DateFormatError:
        return 0


def _newest_first(value: str | None) -> int:
    return -_sort_key(value)
