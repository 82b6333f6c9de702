"""Survivorship: one Patient, demographics from several sources, element by element.

For every top-level element (name, telecom, gender, birthDate, address, extension,
generalPractitioner, deceased[x], ...) the Patient shows the value from the most trusted source
that supplied it; between equally trusted sources the newer record wins, and an equal time
applies (one event can be re-sent with corrected content). A per-element clock remembers who
wrote each value and when, so an older message can never overwrite newer demographics.

Identifiers are not chosen but gathered: every source's identifiers stay, so each source can
find its Patient again. `active`, `link` and `meta` are the hub's and never come from a source.
An element a record leaves out is not a deletion: the record simply does not speak to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hub.fhir import json_copy

from ._config import IdentityConfig, source_name

Resource = dict[str, Any]

HUB_ELEMENTS = frozenset({"resourceType", "id", "meta", "active", "link"})
"""Elements the hub owns: never taken from a source."""
IDENTIFIER = "identifier"
# Choice elements: `deceasedBoolean` and `deceasedDateTime` are one element; a source saying
# either replaces whichever another source said.
_CHOICE_ELEMENTS = ("deceased", "multipleBirth")
_SERVER_META = ("versionId", "lastUpdated")


@dataclass(frozen=True)
class Clock:
    """Who last wrote an element of a Patient, and the time of that record by its own clock.
    The source's rank is looked up in the configuration each time, not stored, so a change to
    `demographics_precedence` applies to values already written."""

    source: str
    source_time_ms: int | None
    """None: the record carried no time; it counts as older than any time."""

    def beats(self, other: Clock | None, config: IdentityConfig, *, strictly: bool) -> bool:
        """Whether this record's value replaces the one `other` wrote. Without a clock the
        current value's origin is unknown and any source may replace it."""
        if other is None:
            return True
        ours, theirs = config.rank(self.source), config.rank(other.source)
        if ours != theirs:
            return ours < theirs
        if strictly:
            return _order(self.source_time_ms) > _order(other.source_time_ms)
        return _order(self.source_time_ms) >= _order(other.source_time_ms)


def _order(time_ms: int | None) -> tuple[bool, int]:
    return (time_ms is not None, time_ms or 0)


def element_of(key: str) -> str:
    """The element a JSON key belongs to: `_birthDate` (its extensions) is `birthDate`,
    `deceasedDateTime` is `deceased[x]`."""
    name = key.removeprefix("_")
    for choice in _CHOICE_ELEMENTS:
        if name.startswith(choice) and name[len(choice) : len(choice) + 1].isupper():
            return f"{choice}[x]"
    return name


def _keys_by_element(resource: Resource) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key in resource:
        element = element_of(key)
        if element not in HUB_ELEMENTS:
            grouped.setdefault(element, []).append(key)
    return grouped


def _replace_element(target: Resource, source: Resource, element: str) -> None:
    for key in [k for k in target if element_of(k) == element]:
        del target[key]
    for key in source:
        if element_of(key) == element:
            target[key] = json_copy(source[key])


def apply_record(
    current: Resource,
    clocks: dict[str, Clock],
    incoming: Resource,
    clock: Clock,
    config: IdentityConfig,
) -> tuple[Resource, dict[str, Clock]]:
    """`current` with each element the incoming record wins; the clocks after it."""
    resource = hub_copy(current)
    after = dict(clocks)
    for element in _keys_by_element(incoming):
        if element == IDENTIFIER or not clock.beats(clocks.get(element), config, strictly=False):
            continue
        _replace_element(resource, incoming, element)
        after[element] = clock
    refresh = clock.beats(clocks.get(IDENTIFIER), config, strictly=False)
    resource[IDENTIFIER] = union_identifiers(
        current.get(IDENTIFIER) or [], incoming.get(IDENTIFIER) or [], refresh=refresh
    )
    if refresh and incoming.get(IDENTIFIER):
        after[IDENTIFIER] = clock
    return resource, after


def absorb(
    survivor: Resource,
    survivor_clocks: dict[str, Clock],
    retired: Resource,
    retired_clocks: dict[str, Clock],
    config: IdentityConfig,
) -> tuple[Resource, dict[str, Clock]]:
    """The survivor of a merge with what the retired Patient knew better: elements the
    survivor lacks, and those a more trusted or strictly newer record wrote on the retired
    side (ties stay with the survivor). Clocks move across with their values."""
    resource = hub_copy(survivor)
    after = dict(survivor_clocks)
    for element in _keys_by_element(retired):
        if element == IDENTIFIER:
            continue
        theirs = retired_clocks.get(element)
        missing = not any(element_of(k) == element for k in survivor)
        better = theirs is not None and theirs.beats(
            survivor_clocks.get(element), config, strictly=True
        )
        if missing or better:
            _replace_element(resource, retired, element)
            if theirs is not None:
                after[element] = theirs
    resource[IDENTIFIER] = union_identifiers(
        survivor.get(IDENTIFIER) or [], retired_identifiers(retired)
    )
    return resource, after


def hub_copy(resource: Resource) -> Resource:
    """A deep copy to write back, without the store's own version metadata."""
    result = json_copy(resource)
    meta = {k: v for k, v in (result.get("meta") or {}).items() if k not in _SERVER_META}
    if meta:
        result["meta"] = meta
    else:
        result.pop("meta", None)
    return result


def identifier_key(identifier: Any) -> tuple[str, str] | None:
    if not isinstance(identifier, dict):
        return None
    system, value = identifier.get("system"), identifier.get("value")
    if not isinstance(system, str) or not isinstance(value, str):
        return None
    return system, value


def union_identifiers(
    current: Iterable[Any], incoming: Iterable[Any], *, refresh: bool = False
) -> list[Any]:
    """Every identifier of both, once per system|value, the current order first. With
    `refresh` an identifier both hold takes the incoming content (a verification status PDS
    added), except that `use: old`, which the hub sets at a merge, stays."""
    result = [json_copy(i) for i in current]
    index = {key: n for n, i in enumerate(result) if (key := identifier_key(i)) is not None}
    for identifier in incoming:
        key = identifier_key(identifier)
        if key is None:
            continue
        if key not in index:
            index[key] = len(result)
            result.append(json_copy(identifier))
        elif refresh:
            old = result[index[key]].get("use") == "old"
            result[index[key]] = json_copy(identifier)
            if old:
                result[index[key]]["use"] = "old"
    return result


def retired_identifiers(retired: Resource) -> list[Any]:
    """A retired Patient's identifiers as its survivor keeps them: `use: old`."""
    return [{**json_copy(i), "use": "old"} for i in retired.get(IDENTIFIER) or []]


def clock_for(source: str, source_time_ms: int | None) -> Clock:
    return Clock(source_name(source), source_time_ms)
