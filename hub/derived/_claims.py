"""Who the sources say is around the person: one claim per source and participant.

The rules of issue 9: the trust team and care coordinator (active episodes, active trust care
plans), the registered GP practice (Patient.generalPractitioner), the district nursing lead
nurse (active district nursing care plans), the VCSE worker named on a support plan only while
that organisation's consent is active, and the carers, nominated person and next of kin
(RelatedPerson).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._names import (
    CONTACT_ROLE_SYSTEM,
    DISTRICT_NURSING,
    ODS_SYSTEM,
    TRUST,
    VCSE_ORGANISATION_SYSTEM,
)
from ._resources import (
    Resource,
    codes,
    identifier_scope,
    latest,
    moment,
    period,
    reference_key,
    source_reference,
)

ParticipantKey = tuple[str, str, str]
"""(role, member, organisation): one participant of the team."""

_CONTACT_ROLES = ("carer", "nominated-person", "next-of-kin")


@dataclass(frozen=True)
class Claim:
    """One source saying someone has a role in the team: since when, until when (when the
    source ended and dates it), and whether it still does."""

    role: str
    member: dict[str, Any]
    organisation: dict[str, Any] | None
    """Whom a practitioner acts for (CareTeam.participant.onBehalfOf, which R4 allows only
    beside a Practitioner); None for any other member."""
    sources: tuple[dict[str, Any], ...]
    start: str | None
    end: str | None
    current: bool

    @property
    def key(self) -> ParticipantKey:
        return (self.role, reference_key(self.member), reference_key(self.organisation))


def claims(patient: Resource, by_type: dict[str, list[Resource]]) -> list[Claim]:
    consents = _consents_by_organisation(by_type.get("Consent", []))
    found = list(_gp_practices(patient))
    for episode in by_type.get("EpisodeOfCare", []):
        found.extend(_episode_claims(episode))
    for plan in by_type.get("CarePlan", []):
        found.extend(_plan_claims(plan, consents))
    for person in by_type.get("RelatedPerson", []):
        found.extend(_contact_claims(person))
    return found


def _gp_practices(patient: Resource) -> Iterator[Claim]:
    source = (source_reference(patient),)
    for practice in patient.get("generalPractitioner", []):
        identifier = practice.get("identifier") or {}
        if practice.get("type") == "Organization" or identifier.get("system") == ODS_SYSTEM:
            yield Claim(
                "gp-practice", _typed("Organization", practice), None, source, None, None, True
            )


def _episode_claims(episode: Resource) -> Iterator[Claim]:
    start, end = period(episode)
    current = episode.get("status") == "active"
    source = (source_reference(episode),)
    if episode.get("careManager"):
        member = _typed("Practitioner", episode["careManager"])
        organisation = _typed("Organization", episode.get("managingOrganization") or _ods(TRUST))
        yield Claim("care-coordinator", member, organisation, source, start, end, current)
    for team in episode.get("team", [])[:1]:
        yield Claim(
            "mental-health-team", _typed("CareTeam", team), None, source, start, end, current
        )


def _plan_claims(plan: Resource, consents: dict[str, Resource]) -> list[Claim]:
    where, author = identifier_scope(plan), plan.get("author")
    if where is None or not author:
        return []
    organisation, kind = where
    start, end = period(plan)
    current = plan.get("status") == "active"
    member = _typed("Practitioner", author)
    source = source_reference(plan)
    if kind == "careplan" and organisation == TRUST:
        return [Claim("care-coordinator", member, _ods(TRUST), (source,), start, end, current)]
    if kind == "careplan" and organisation == DISTRICT_NURSING:
        team = _typed("Organization", (plan.get("contributor") or [_ods(DISTRICT_NURSING)])[0])
        return [Claim("lead-nurse", member, team, (source,), start, end, current)]
    consent = consents.get(organisation)
    if kind != "support-plan" or consent is None:
        return []  # a VCSE plan without consent to share never puts its worker in the team
    consented_from, withdrawn_on = period(consent.get("provision") or {})
    consented = consent.get("status") == "active"
    vcse = _typed("Organization", (consent.get("organization") or [_vcse(organisation)])[0])
    return [
        Claim(
            "vcse-worker",
            member,
            vcse,
            (source, source_reference(consent)),
            latest([start, consented_from]),
            end if consented else withdrawn_on,
            current and consented,
        )
    ]


def _contact_claims(person: Resource) -> Iterator[Claim]:
    start, end = period(person)
    current = person.get("active") is not False and end is None
    member = source_reference(person)
    if _name(person):
        member["display"] = _name(person)
    roles = codes(person.get("relationship", []), CONTACT_ROLE_SYSTEM)
    for role in _CONTACT_ROLES:
        if role in roles:
            yield Claim(role, member, None, (source_reference(person),), start, end, current)


def _consents_by_organisation(consents: list[Resource]) -> dict[str, Resource]:
    """Each VCSE organisation's consent to share: an active one if there is one, else the
    latest."""
    found: dict[str, Resource] = {}
    ranked = sorted(
        consents,
        key=lambda c: (c.get("status") == "active", moment(c.get("dateTime")) or 0),
    )
    for consent in ranked:
        where = identifier_scope(consent)
        if where is not None and where[1] == "consent":
            found[where[0]] = consent
    return found


def _typed(resource_type: str, reference: dict[str, Any]) -> dict[str, Any]:
    kept = {k: reference[k] for k in ("reference", "identifier", "display") if reference.get(k)}
    return {"type": resource_type, **kept}


def _ods(code: str) -> dict[str, Any]:
    return {"type": "Organization", "identifier": {"system": ODS_SYSTEM, "value": code}}


def _vcse(code: str) -> dict[str, Any]:
    return {
        "type": "Organization",
        "identifier": {"system": VCSE_ORGANISATION_SYSTEM, "value": code},
    }


def _name(person: Resource) -> str:
    for name in person.get("name", []):
        if name.get("text"):
            return str(name["text"])
        words = [*name.get("given", []), name.get("family", "")]
        if any(words):
            return " ".join(w for w in words if w)
    return ""
