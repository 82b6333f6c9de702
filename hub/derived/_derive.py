"""The step: a patient's sources and stored derived resources in, what to write out."""

from __future__ import annotations

from collections.abc import Iterable

from hub.store import Resource

from ._claims import claims
from ._flags import flags, stored_flags
from ._names import CARE_TEAM_SYSTEM
from ._team import care_team


def derive(patient: Resource, resources: Iterable[Resource], at: str) -> list[Resource]:
    """The CareTeam and Flags of `patient` that differ from the stored ones, to be written in
    the transaction of the message that changed their sources; nothing when nothing changed,
    so applying a message again writes nothing.

    `patient`: the Patient (with its id) as the transaction leaves it. `resources`: the
    patient's sources and stored derived resources as the transaction leaves them (`INPUTS`,
    `overlay`); other types are ignored. `at`: a FHIR dateTime, the end given to what ended
    without its source saying when, and the start of what starts without one (the record's
    source time when it has one, else now). A returned resource carries the stored id when
    there is one; `conditional_url` says where to PUT it either way.
    """
    patient_id = patient["id"]
    by_type: dict[str, list[Resource]] = {}
    for resource in resources:
        by_type.setdefault(resource.get("resourceType", ""), []).append(resource)
    if _retired(patient):
        # Merged into another Patient, which its sources now name: all that summarised this
        # one ends, as it does when the sources end.
        patient = {k: v for k, v in patient.items() if k != "generalPractitioner"}
        by_type = {t: found for t, found in by_type.items() if t in ("CareTeam", "Flag")}
    stored_team = next(
        (
            team
            for team in by_type.get("CareTeam", [])
            if {"system": CARE_TEAM_SYSTEM, "value": patient_id} in team.get("identifier", [])
        ),
        None,
    )
    stored = stored_flags(by_type.get("Flag", []), patient_id)
    changed: list[Resource] = []
    team = care_team(patient_id, claims(patient, by_type), stored_team, at)
    if team is not None and _differs(team, stored_team):
        changed.append(_with_id(team, stored_team))
    for flag in flags(patient_id, by_type, stored, at):
        code = flag["code"]["coding"][0]["code"]
        if _differs(flag, stored.get(code)):
            changed.append(_with_id(flag, stored.get(code)))
    return changed


def _content(resource: Resource) -> Resource:
    return {k: v for k, v in resource.items() if k not in ("id", "meta")}


def _differs(made: Resource, stored: Resource | None) -> bool:
    return stored is None or _content(made) != _content(stored)


def _with_id(made: Resource, stored: Resource | None) -> Resource:
    if stored is None or not stored.get("id"):
        return made
    return {**made, "id": stored["id"]}


def _retired(patient: Resource) -> bool:
    return any(link.get("type") == "replaced-by" for link in patient.get("link", ()))
