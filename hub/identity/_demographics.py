"""The evidence a Patient offers for matching: valid NHS numbers and normalised demographics.

Sources spell the same person differently: `ORTEGA-DÍAZ` in the EPR, `Ortega-Díaz` or
`Ortega Diaz` from a VCSE worker's keyboard, `se6 4ru` for `SE6 4RU`. Matching compares the
normalised forms, so only real differences count as differences.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, fields
from typing import Any, Literal

from hub.fhir import NHS_NUMBER_SYSTEM, nhs_number_is_valid, normalise_postcode

Agreement = Literal["same", "different", "missing"]

_FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
# Names and addresses that no longer describe the person are not evidence of who they are now.
_PAST_USES = frozenset({"old", "maiden"})
_NAME_PREFERENCE = ("official", "usual", None)
_ADDRESS_PREFERENCE = ("home", None)


@dataclass(frozen=True)
class Demographics:
    """Normalised demographics; None where the Patient does not say."""

    family: str | None
    given: str | None
    """The first given name only: sources agree on it far more often than on middle names."""
    birth_date: str | None
    """`YYYY-MM-DD`; a partial date (`1985`) is too weak to match on and counts as missing."""
    postcode: str | None

    def compare(self, other: Demographics) -> dict[str, Agreement]:
        """Which fields agree, differ or are missing on either side: the evidence of a match,
        which names no value, so it can be logged and shown without revealing anyone."""
        return {
            f.name: _agreement(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
        }


def _agreement(a: str | None, b: str | None) -> Agreement:
    if a is None or b is None:
        return "missing"
    return "same" if a == b else "different"


def normalise_name(text: str) -> str:
    """Letters only, without accents, case-folded: `Ortega-Díaz`, `ORTEGA DIAZ` and
    `ortegadiaz` are one name; so are `O'Brien` and `OBrien`. Hyphens, spaces and apostrophes
    are dropped because sources write double-barrelled names every way."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if c.isalpha())


def demographics(patient: dict[str, Any]) -> Demographics:
    name = _current(patient.get("name"), "use", _NAME_PREFERENCE, lambda n: n.get("family"))
    given = (name or {}).get("given") or []
    address = _current(
        patient.get("address"), "use", _ADDRESS_PREFERENCE, lambda a: a.get("postalCode")
    )
    birth_date = patient.get("birthDate")
    return Demographics(
        family=_name_or_none((name or {}).get("family")),
        given=_name_or_none(given[0] if given else None),
        birth_date=birth_date
        if isinstance(birth_date, str) and _FULL_DATE.match(birth_date)
        else None,
        postcode=_postcode_or_none((address or {}).get("postalCode")),
    )


def _name_or_none(text: Any) -> str | None:
    return (normalise_name(text) or None) if isinstance(text, str) else None


def _postcode_or_none(text: Any) -> str | None:
    return (normalise_postcode(text) or None) if isinstance(text, str) else None


def _current(
    items: Any, use_key: str, preference: tuple[str | None, ...], has: Any
) -> dict[str, Any] | None:
    """The element (name, address) that describes the person now: not an old one, not one
    whose period has ended, the most preferred `use` first, and one with the part we need."""
    candidates = [
        item
        for item in items or []
        if isinstance(item, dict)
        and item.get(use_key) not in _PAST_USES
        and not (item.get("period") or {}).get("end")
        and has(item)
    ]
    for use in preference:
        for item in candidates:
            if item.get(use_key) == use:
                return item
    return candidates[0] if candidates else None


def nhs_numbers(patient: dict[str, Any]) -> list[str]:
    """The Patient's NHS numbers that pass Modulus 11, in order. Numbers kept under the
    invalid-NHS-number system, or failing the check, are never evidence of identity."""
    found = [
        identifier.get("value")
        for identifier in patient.get("identifier") or []
        if isinstance(identifier, dict) and identifier.get("system") == NHS_NUMBER_SYSTEM
    ]
    return list(dict.fromkeys(v for v in found if isinstance(v, str) and nhs_number_is_valid(v)))


def nhs_numbers_conflict(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Both Patients have valid NHS numbers and share none: PDS says two people."""
    ours, theirs = set(nhs_numbers(a)), set(nhs_numbers(b))
    return bool(ours and theirs and not ours & theirs)
