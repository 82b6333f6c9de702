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
    for the many resources whose references need no rewriting.
    """
    if isinstance(node, dict):
        changed: dict[str, Any] | None = None
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                new = rewrite(value)
            elif isinstance(value, dict | list):
                new = map_references(value, rewrite)
                new = None if new is value else new
            else:
                continue
            if new is not None and new != value:
                changed = changed if changed is not None else dict(node)
                changed[key] = new
        return changed if changed is not None else node
    if isinstance(node, list):
        items = [map_references(item, rewrite) for item in node]
        return items if any(a is not b for a, b in zip(items, node, strict=True)) else node
    return node
