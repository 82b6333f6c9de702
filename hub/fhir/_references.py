"""Parsing and rewriting `Reference.reference` values."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

_LITERAL = re.compile(
    r"(?:(?P<base>https?://\S+?)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?"
)


class LiteralReference(NamedTuple):
    base: str | None
    resource_type: str
    id: str
    version: str | None


def parse_reference(value: str) -> LiteralReference | None:
    """`Patient/1`, `Patient/1/_history/2` or `http://host/fhir/Patient/1`; None otherwise."""
    match = _LITERAL.fullmatch(value)
    if not match:
        return None
    return LiteralReference(match["base"], match["type"], match["id"], match["version"])


def map_references(node: Any, rewrite: Callable[[str], str | None]) -> Any:
    """`node` with each `reference` for which `rewrite` gives a new value replaced.

    Returns a new structure that shares every unchanged part with `node`, and `node` itself
    when nothing changed: the caller's resource is never modified, and nothing is copied
    for the many resources whose references need no rewriting. (Every write walks each
    resource several times through here: it keeps to exact types and copies nothing
    until a change.)
    """
    kind = type(node)
    if kind is dict:
        changed: dict[str, Any] | None = None
        for key, value in node.items():
            inner = type(value)
            if inner is str:
                if key != "reference":
                    continue
                new = rewrite(value)
                if new is None or new == value:
                    continue
            elif inner is dict or inner is list:
                new = map_references(value, rewrite)
                if new is value:
                    continue
            else:
                continue
            if changed is None:
                changed = dict(node)
            changed[key] = new
        return node if changed is None else changed
    if kind is list:
        items: list[Any] | None = None
        for index, item in enumerate(node):
            if type(item) is dict:
                new = map_references(item, rewrite)
                if new is not item:
                    if items is None:
                        items = list(node)
                    items[index] = new
        return node if items is None else items
    return node
