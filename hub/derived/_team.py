"""The CareTeam around a person, from the claims of its sources and the CareTeam stored.

A participant is never removed: when none of its sources says so any more, its period ends
(on the date the source ended, else at the time given). Its start is taken from the stored
CareTeam while it lasts, so recomputing never moves it.
"""

from __future__ import annotations

from typing import Any

from ._claims import Claim, ParticipantKey
from ._names import (
    CARE_TEAM_NAME,
    CARE_TEAM_ROLE_SYSTEM,
    CARE_TEAM_SOURCE,
    CARE_TEAM_SYSTEM,
    ROLE_DISPLAYS,
)
from ._resources import Resource, after, earliest, latest, moment, period, reference_key

_ROLE_ORDER = {role: index for index, role in enumerate(ROLE_DISPLAYS)}


def care_team(
    patient_id: str, claims: list[Claim], stored: Resource | None, at: str
) -> Resource | None:
    """The CareTeam as its sources make it now; None when nobody has ever been in it."""
    by_key: dict[ParticipantKey, list[Claim]] = {}
    for claim in claims:
        by_key.setdefault(claim.key, []).append(claim)
    before = (stored or {}).get("participant", [])
    participants, still_open, last_ended = _carried_over(before, by_key, at)
    known = _known_sources(before)
    for key, found in by_key.items():
        current = [c for c in found if c.current]
        if current and key not in still_open:
            start = _start(current, known, last_ended.get(key), at)
            participants.append(_participant(current, start))
    if not participants:
        return None
    participants.sort(key=_order)
    return {
        "resourceType": "CareTeam",
        "identifier": [{"system": CARE_TEAM_SYSTEM, "value": patient_id}],
        "status": "active",
        "name": CARE_TEAM_NAME,
        "subject": {"reference": f"Patient/{patient_id}"},
        "participant": participants,
    }


def _carried_over(
    before: list[dict[str, Any]], by_key: dict[ParticipantKey, list[Claim]], at: str
) -> tuple[list[dict[str, Any]], set[ParticipantKey], dict[ParticipantKey, str | None]]:
    """The stored participants as they are now: an ended one as it was; an open one with its
    start and its current sources, or ended. Also which of them are open, and when each
    participant last ended."""
    participants: list[dict[str, Any]] = []
    still_open: set[ParticipantKey] = set()
    last_ended: dict[ParticipantKey, str | None] = {}
    for kept in before:
        key = participant_key(kept)
        start, end = period(kept)
        if end is not None or key in still_open:
            participants.append(kept)
            last_ended[key] = latest([last_ended.get(key), end])
            continue
        still_open.add(key)
        current = [c for c in by_key.get(key, []) if c.current]
        if current:
            participants.append(_participant(current, start or at))
        else:
            participants.append(_ended(kept, _end(by_key.get(key, []), start, at)))
    return participants, still_open, last_ended


def participant_key(participant: dict[str, Any]) -> ParticipantKey:
    roles = participant.get("role") or [{}]
    code = next((c.get("code", "") for c in roles[0].get("coding", [])), "")
    return (
        code,
        reference_key(participant.get("member")),
        reference_key(participant.get("onBehalfOf")),
    )


def _participant(current: list[Claim], start: str) -> dict[str, Any]:
    ordered = sorted(current, key=lambda c: (moment(c.start) or 0, reference_key(c.sources[0])))
    sources = {reference_key(s): s for c in ordered for s in c.sources}
    role = ordered[0].role
    participant: dict[str, Any] = {
        "extension": [
            {"url": CARE_TEAM_SOURCE, "valueReference": sources[key]} for key in sorted(sources)
        ],
        "role": [
            {
                "coding": [
                    {"system": CARE_TEAM_ROLE_SYSTEM, "code": role, "display": ROLE_DISPLAYS[role]}
                ]
            }
        ],
        "member": _best([c.member for c in ordered]),
    }
    organisation = _best([c.organisation for c in ordered if c.organisation])
    if organisation:
        participant["onBehalfOf"] = organisation
    participant["period"] = {"start": start}
    return participant


def _start(current: list[Claim], known: set[tuple[str, str]], ended: str | None, at: str) -> str:
    """When a participant who was not in the team joins it: when their sources began, unless
    a source the team already knew now names someone else in that role (a new care
    coordinator on the same episode) or they come back after an end: then from `at`, as the
    sources do not date that change."""
    start = earliest([c.start for c in current])
    changed = any((c.role, reference_key(s)) in known for c in current for s in c.sources)
    if start is None or changed or not after(start, ended):
        return at
    return start


def _known_sources(participants: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(role, source) of every source the stored team names."""
    return {
        (participant_key(p)[0], reference_key(e.get("valueReference")))
        for p in participants
        for e in p.get("extension", [])
        if e.get("url") == CARE_TEAM_SOURCE
    }


def _best(references: list[dict[str, Any]]) -> dict[str, Any]:
    """Of references to one thing, the first that names it in words."""
    return next((r for r in references if r.get("display")), references[0] if references else {})


def _ended(participant: dict[str, Any], end: str) -> dict[str, Any]:
    return {**participant, "period": {**participant.get("period", {}), "end": end}}


def _end(found: list[Claim], start: str | None, at: str) -> str:
    """When a participant's sources ended: the latest date they give since it started, else
    `at` (a source that ended without a date, or is gone)."""
    end = latest([c.end for c in found if c.end and after(c.end, start)]) or at
    return end if after(end, start) or start is None else start


def _order(participant: dict[str, Any]) -> tuple[int, int, str, tuple[str, str, str]]:
    key = participant_key(participant)
    return (
        _ROLE_ORDER.get(key[0], len(_ROLE_ORDER)),
        moment(period(participant)[0]) or 0,
        str((participant.get("member") or {}).get("display", "")),
        key,
    )
