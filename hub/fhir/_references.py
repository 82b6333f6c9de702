"""Parsing and rewriting `Reference.reference` values."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
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


def iter_references(node: Any) -> Iterator[dict[str, Any]]:
    """Every Reference object (a dict with a string `reference`) anywhere in a resource."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for value in node.values():
            if isinstance(value, dict | list):
                yield from iter_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from iter_references(item)


def rewrite_references(resource: dict[str, Any], rewrite: Callable[[str], str | None]) -> None:
    """Replace each `reference` for which `rewrite` returns a new value, in place."""
    for ref in iter_references(resource):
        new = rewrite(ref["reference"])
        if new is not None:
            ref["reference"] = new
