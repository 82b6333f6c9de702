"""Kept items: list elements that accumulate across a source's records (a mapping's `keep:`).

Each record maps to a whole resource, which replaces the stored one. Some sources send only what
changed in part of it: an ADT A08 during a stay carries the Mental Health Act status that has
just begun, not the ones before it. The items of a kept element that carry an `id` therefore
stay on the resource until a record sends an item with the same id (which replaces it), and
the pipeline writes `merge_kept(made, stored, stale=...)` instead of the record's resource.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from hub.fhir import DateFormatError, date_range

from ._records import MappedResource

Item = dict[str, Any]


def merge_kept(made: MappedResource, stored: dict[str, Any] | None, *, stale: bool) -> Item | None:
    """What to write for `made` given the stored resource with its key (None: none yet); None
    when nothing is to be written.

    `stale`: the store holds a resource written from a newer record. The newer of the two gives
    every element but the kept ones; a kept element has the newer's items without an id, then
    every item with an id from either (the newer's where both have it), in order of id, so the
    outcome is the same whatever order the records arrive in. A stale record is written only
    when it brings a kept item the stored resource lacks (an A01 applied after the A08).
    """
    if not made.keep:
        return None if stale else made.resource
    if stale and stored is None:
        return None
    newer, older = (stored or {}, made.resource) if stale else (made.resource, stored or {})
    merged = dict(newer)
    for keep in made.keep:
        items = _kept_items(newer.get(keep.element, []), older.get(keep.element, []))
        if keep.timeline:
            items = _close_timeline(items, keep.timeline)
        if items:
            merged[keep.element] = items
        else:
            merged.pop(keep.element, None)
    if not stale:
        return merged
    if merged == stored:
        return None
    if "meta" in merged:
        # The stored resource, written again: its version and time are the store's to set.
        server_set = ("versionId", "lastUpdated")
        merged["meta"] = {k: v for k, v in merged["meta"].items() if k not in server_set}
    return merged


def _kept_items(newer: list[Item], older: list[Item]) -> list[Item]:
    ids = {item["id"] for item in newer if _has_id(item)}
    kept = [item for item in newer if _has_id(item)]
    kept += [item for item in older if _has_id(item) and item["id"] not in ids]
    return [item for item in newer if not _has_id(item)] + sorted(kept, key=lambda i: i["id"])


def _has_id(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("id"), str) and bool(item["id"])


def _close_timeline(items: list[Item], url: str) -> list[Item]:
    """Items of `url` in order of their start hold one at a time: one ends when the next
    begins, if it has no end or an end after that (a section 2 planned for 28 days, replaced
    by a section 3 on day 20)."""
    timeline = sorted(
        (item for item in items if item.get("url") == url and _ms(_period(item), "start")),
        key=lambda item: _ms(_period(item), "start") or 0,
    )
    closed: dict[int, Item] = {}
    for item, following in pairwise(timeline):
        end, next_start = _ms(_period(item), "end"), _ms(_period(following), "start")
        if end is None or (next_start is not None and end > next_start):
            closed[id(item)] = _with_end(item, _period(following)["start"])
    return [closed.get(id(item), item) for item in items]


def _period(item: Item) -> dict[str, Any]:
    if isinstance(item.get("valuePeriod"), dict):
        return item["valuePeriod"]
    for part in item.get("extension", ()):
        if part.get("url") == "period" and isinstance(part.get("valuePeriod"), dict):
            return part["valuePeriod"]
    return {}


def _ms(period: dict[str, Any], edge: str) -> int | None:
    """The start or end of a period as epoch milliseconds (the instant it begins)."""
    value = period.get(edge)
    try:
        return date_range(value)[0] if isinstance(value, str) else None
    except DateFormatError:
        return None


def _with_end(item: Item, end: str) -> Item:
    if "valuePeriod" in item:
        return {**item, "valuePeriod": {**item["valuePeriod"], "end": end}}
    parts = [
        {**part, "valuePeriod": {**part["valuePeriod"], "end": end}}
        if part.get("url") == "period"
        else part
        for part in item["extension"]
    ]
    return {**item, "extension": parts}
