"""Demographic matching: when a record has no NHS number the hub already knows.

The rules are data (`RULES`), read top down; the first whose fields all agree decides. They are
deliberately not configuration: linking two people's records is a clinical safety decision,
and an automatic link must never rest on weaker evidence than all four fields agreeing.

Two vetoes come before any rule:
- a candidate whose valid NHS numbers differ from the record's is another person (PDS says
  so), whatever the demographics;
- a candidate that already holds a different identifier of the record's own key system (a
  second MRN of the same EPR, a second client reference of the same VCSE) is a record the
  source itself keeps apart: at most a review, never an automatic link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ._demographics import Agreement, demographics, nhs_numbers_conflict


class MatchLevel(StrEnum):
    CERTAIN = "certain"
    """Link automatically (when it is the only such candidate)."""
    UNCERTAIN = "uncertain"
    """A person decides: the record gets its own Patient and the pair goes to the queue."""
    NONE = "none"


@dataclass(frozen=True)
class Rule:
    level: MatchLevel
    same: frozenset[str]
    """Demographics fields that must agree (normalised) for this level."""


RULES: tuple[Rule, ...] = (
    Rule(MatchLevel.CERTAIN, frozenset({"family", "given", "birth_date", "postcode"})),
    Rule(MatchLevel.UNCERTAIN, frozenset({"family", "given", "birth_date"})),
)


@dataclass(frozen=True)
class Candidate:
    """An existing Patient compared with an incoming record."""

    patient: dict[str, Any]
    level: MatchLevel
    evidence: dict[str, Agreement]
    reason: str
    """Why the level is what it is, in words without personal data."""

    @property
    def id(self) -> str:
        return str(self.patient["id"])


@dataclass(frozen=True)
class MatchDecision:
    link: Candidate | None = None
    """The one certain candidate the record joins."""
    reviews: list[Candidate] = field(default_factory=list)
    """Candidates a person must decide on."""


def compare(incoming: dict[str, Any], candidate: dict[str, Any], key_system: str) -> Candidate:
    evidence = demographics(incoming).compare(demographics(candidate))
    if nhs_numbers_conflict(incoming, candidate):
        return Candidate(candidate, MatchLevel.NONE, evidence, "different valid NHS numbers")
    level = _level(evidence)
    if level is MatchLevel.CERTAIN and _holds_other_key(candidate, incoming, key_system):
        return Candidate(
            candidate,
            MatchLevel.UNCERTAIN,
            evidence,
            "the candidate has another identifier from the same source system",
        )
    return Candidate(candidate, level, evidence, _reason(level, evidence))


def _level(evidence: dict[str, Agreement]) -> MatchLevel:
    for rule in RULES:
        if all(evidence.get(name) == "same" for name in rule.same):
            return rule.level
    return MatchLevel.NONE


def _reason(level: MatchLevel, evidence: dict[str, Agreement]) -> str:
    if level is MatchLevel.CERTAIN:
        return "family, given name, birth date and postcode agree"
    differing = sorted(name for name, agreed in evidence.items() if agreed != "same")
    return "differs or missing: " + ", ".join(differing) if differing else "no evidence"


def _holds_other_key(candidate: dict[str, Any], incoming: dict[str, Any], system: str) -> bool:
    ours = _values(incoming, system)
    theirs = _values(candidate, system)
    return bool(theirs) and not theirs & ours


def _values(patient: dict[str, Any], system: str) -> set[str]:
    return {
        str(i.get("value"))
        for i in patient.get("identifier") or []
        if isinstance(i, dict) and i.get("system") == system
    }


def decide(candidates: list[Candidate]) -> MatchDecision:
    """Exactly one certain candidate links; several certain ones, or only uncertain ones, go
    to review; nothing weaker is ever acted on."""
    certain = [c for c in candidates if c.level is MatchLevel.CERTAIN]
    if len(certain) == 1:
        return MatchDecision(link=certain[0])
    if certain:
        reason = f"{len(certain)} candidates agree on everything"
        return MatchDecision(reviews=[_with_reason(c, reason) for c in certain])
    return MatchDecision(reviews=[c for c in candidates if c.level is MatchLevel.UNCERTAIN])


def _with_reason(candidate: Candidate, reason: str) -> Candidate:
    return Candidate(candidate.patient, MatchLevel.UNCERTAIN, candidate.evidence, reason)
