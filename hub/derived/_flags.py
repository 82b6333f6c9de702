"""The signals a record viewer shows first: a Flag per kind, while its source lasts.

crisis-plan: an active CRISIS care plan of the trust; member: an active membership episode;
detained: a current Mental Health Act legal status other than informal (not applicable, not
known). A flag's period follows its sources; when they end it is ended (status inactive,
period.end), never deleted; when a source starts again it is active again from then. Its text
says where to look, never what is there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ._names import (
    EPISODE_TYPE_SYSTEM,
    EPR_PLAN_TYPE_SYSTEM,
    FLAG_CATEGORY_SYSTEM,
    FLAG_CODE_SYSTEM,
    FLAG_DISPLAYS,
    FLAG_SYSTEM,
    LEGAL_STATUS_PERIOD,
    NOT_DETAINED,
    TRUST,
)
from ._resources import Resource, after, codes, earliest, identifier_scope, latest, moment, period


@dataclass(frozen=True)
class Signal:
    """A source that raises a flag: since when, until when, whether it still does, and which
    organisation holds it."""

    start: str | None
    end: str | None
    current: bool
    organisation: str


@dataclass(frozen=True)
class _Rule:
    category: str
    where_to_look: str
    """The text after the flag's name: where the details are, `{org}` the organisation."""
    signals: Callable[[dict[str, list[Resource]]], list[Signal]]


def flag_identifier(patient_id: str, code: str) -> dict[str, str]:
    return {"system": FLAG_SYSTEM, "value": f"{patient_id}/{code}"}


def flags(
    patient_id: str,
    by_type: dict[str, list[Resource]],
    stored: dict[str, Resource],
    at: str,
) -> list[Resource]:
    """Every flag as its sources make it now (`stored`: the stored flags by code)."""
    found = []
    for code, rule in _RULES.items():
        flag = _flag(patient_id, code, rule, rule.signals(by_type), stored.get(code), at)
        if flag is not None:
            found.append(flag)
    return found


def _flag(
    patient_id: str,
    code: str,
    rule: _Rule,
    signals: list[Signal],
    stored: Resource | None,
    at: str,
) -> Resource | None:
    current = sorted((s for s in signals if s.current), key=lambda s: moment(s.start) or 0)
    was_active = stored is not None and stored.get("status") == "active"
    stored_start, stored_end = period(stored or {})
    if current:
        start = stored_start if was_active else earliest([s.start for s in current])
        if start is None or (not was_active and not after(start, stored_end)):
            start = at  # back after an end: a new period, from now
        text = f"{FLAG_DISPLAYS[code]}: {rule.where_to_look.format(org=current[0].organisation)}"
        return _resource(patient_id, code, rule.category, text, {"start": start})
    if not was_active or stored is None:
        return stored  # never raised, or ended already: nothing new
    ended = [s.end for s in signals if s.end and after(s.end, stored_start)]
    end = latest(ended) or at
    kept = {k: v for k, v in stored.items() if k not in ("id", "meta")}
    return {**kept, "status": "inactive", "period": {"start": stored_start, "end": end}}


def _resource(
    patient_id: str, code: str, category: str, text: str, flag_period: dict[str, str]
) -> Resource:
    return {
        "resourceType": "Flag",
        "identifier": [flag_identifier(patient_id, code)],
        "status": "active",
        "category": [{"coding": [{"system": FLAG_CATEGORY_SYSTEM, "code": category}]}],
        "code": {
            "coding": [{"system": FLAG_CODE_SYSTEM, "code": code, "display": FLAG_DISPLAYS[code]}],
            "text": text,
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": flag_period,
    }


def _crisis_plans(by_type: dict[str, list[Resource]]) -> list[Signal]:
    return [
        Signal(*period(plan), plan.get("status") == "active", _organisation(plan))
        for plan in by_type.get("CarePlan", [])
        if "CRISIS" in codes(plan.get("category", []), EPR_PLAN_TYPE_SYSTEM)
    ]


def _memberships(by_type: dict[str, list[Resource]]) -> list[Signal]:
    return [
        Signal(*period(episode), episode.get("status") == "active", _organisation(episode))
        for episode in by_type.get("EpisodeOfCare", [])
        if "membership" in codes(episode.get("type", []), EPISODE_TYPE_SYSTEM)
    ]


def _detentions(by_type: dict[str, list[Resource]]) -> list[Signal]:
    return [signal for e in by_type.get("Encounter", []) for signal in _stay_detentions(e)]


def _stay_detentions(encounter: Resource) -> Iterator[Signal]:
    """One signal per unbroken run of detained legal statuses during one stay (section 136,
    then 2, then 3 is one detention). A status without an end is current while the stay is in
    progress; on a stay that is over it ended with the stay."""
    runs: list[tuple[str | None, str | None]] = []
    for code, start, end in sorted(_legal_statuses(encounter), key=lambda s: moment(s[1]) or 0):
        if code in NOT_DETAINED:
            continue
        if runs and (runs[-1][1] is None or after(runs[-1][1], start)):
            previous_start, previous_end = runs[-1]
            runs[-1] = (previous_start, None if end is None else latest([previous_end, end]))
        else:
            runs.append((start, end))
    in_progress = encounter.get("status") == "in-progress"
    stay_end = period(encounter)[1]
    organisation = _organisation(encounter)
    for start, end in runs:
        yield Signal(start, end or stay_end, end is None and in_progress, organisation)


def _legal_statuses(encounter: Resource) -> Iterator[tuple[str, str | None, str | None]]:
    """(classification code, start, end) of each legal-status-period extension."""
    for extension in encounter.get("extension", []):
        if extension.get("url") != LEGAL_STATUS_PERIOD:
            continue
        parts = {part.get("url"): part for part in extension.get("extension", [])}
        code = (parts.get("classification") or {}).get("valueCoding", {}).get("code")
        if code:
            yield (code, *period(parts.get("period") or {}, "valuePeriod"))


def _organisation(resource: Resource) -> str:
    """The organisation that holds a source: its business identifier's, else the trust's."""
    where = identifier_scope(resource)
    return where[0] if where else TRUST


_RULES: dict[str, _Rule] = {
    "crisis-plan": _Rule("safety", "see the trust's care plans ({org})", _crisis_plans),
    "member": _Rule(
        "admin",
        "may come back without a referral; see the trust's episodes of care ({org})",
        _memberships,
    ),
    "detained": _Rule(
        "clinical",
        "see the legal status on the trust's current stay ({org})",
        _detentions,
    ),
}


def stored_flags(flags_found: list[Resource], patient_id: str) -> dict[str, Resource]:
    """The stored flags of this step, by code."""
    found: dict[str, Any] = {}
    for flag in flags_found:
        for identifier in flag.get("identifier", []):
            prefix = f"{patient_id}/"
            value = str(identifier.get("value", ""))
            if identifier.get("system") == FLAG_SYSTEM and value.startswith(prefix):
                found[value.removeprefix(prefix)] = flag
    return found
