"""The small FHIRPath subset that search parameter expressions use, evaluated on JSON.

Supported: unions (`A | B`), paths (`Patient.name.family`), choice elements (`Consent.source`
finds `sourceReference`), `X as T` / `X.ofType(T)`, `extension('url')`,
`where(resolve() is Type)` and `where(element='value')`. That covers the FHIR R4 search
parameters the hub uses and SearchParameters written the same way; anything else is rejected
when the table is loaded, so a typo is found at start-up, not at query time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hub.fhir import parse_reference

Node = Any
Step = Callable[[Iterator[Node]], Iterator[Node]]

_STEP = re.compile(r"\s*(?P<name>[A-Za-z_][\w-]*)(?:\((?P<arg>(?:'[^']*'|[^()']|\(\))*)\))?\s*")
_AS = re.compile(r"^\(?\s*(?P<path>.+?)\s+as\s+(?P<type>\w+)\s*\)?$")
_RESOLVE_IS = re.compile(r"resolve\(\)\s+is\s+(?P<type>[A-Z]\w*)")
_ELEMENT_EQ = re.compile(r"(?P<element>\w+)\s*=\s*'(?P<value>[^']*)'")


class FhirPathError(ValueError):
    pass


@dataclass(frozen=True)
class Branch:
    """One side of a union: a path starting at `base` (a resource type or `Resource`)."""

    base: str
    steps: tuple[Step, ...]
    reference_types: frozenset[str] | None
    """Set when the branch ends in `where(resolve() is T)`: only references to these types."""


def _children(name: str) -> Step:
    def step(nodes: Iterator[Node]) -> Iterator[Node]:
        for node in nodes:
            if not isinstance(node, dict):
                continue
            value = node.get(name)
            if value is None:
                # A choice element (value[x]): any key `name` + a type name.
                for key, choice in node.items():
                    if key.startswith(name) and key[len(name) : len(name) + 1].isupper():
                        value = choice
                        break
            if isinstance(value, list):
                yield from value
            elif value is not None:
                yield value

    return step


def _extension(url: str) -> Step:
    def step(nodes: Iterator[Node]) -> Iterator[Node]:
        for node in nodes:
            if isinstance(node, dict):
                for ext in node.get("extension", ()):
                    if ext.get("url") == url:
                        yield ext

    return step


def _where_element(element: str, value: str) -> Step:
    def step(nodes: Iterator[Node]) -> Iterator[Node]:
        return (n for n in nodes if isinstance(n, dict) and n.get(element) == value)

    return step


def _references_to(types: frozenset[str]) -> Step:
    def step(nodes: Iterator[Node]) -> Iterator[Node]:
        for node in nodes:
            ref = node.get("reference") if isinstance(node, dict) else None
            literal = parse_reference(ref) if isinstance(ref, str) else None
            if literal is not None and literal.resource_type in types:
                yield node
            elif literal is None and isinstance(node, dict) and node.get("type") in types:
                yield node  # a logical reference (by identifier) that states its type

    return step


def _compile_branch(text: str) -> Branch:
    text = text.strip()
    as_match = _AS.match(text)
    if as_match:  # `Consent.source as Reference` -> the sourceReference element
        text = as_match["path"].strip("() ") + f".ofType({as_match['type']})"
    pos, parts = 0, []
    while pos < len(text):
        match = _STEP.match(text, pos)
        if not match:
            raise FhirPathError(f"cannot read FHIRPath {text!r} at {text[pos:]!r}")
        parts.append((match["name"], match["arg"]))
        pos = match.end()
        if pos < len(text):
            if text[pos] != ".":
                raise FhirPathError(f"expected '.' in FHIRPath {text!r} at {text[pos:]!r}")
            pos += 1
    (base, base_arg), *rest = parts
    if base_arg is not None or not base[:1].isupper():
        raise FhirPathError(f"FHIRPath {text!r} must start with a resource type")
    steps: list[Step] = []
    reference_types: frozenset[str] | None = None
    for index, (name, arg) in enumerate(rest):
        if arg is None:
            steps.append(_children(name))
            continue
        if name == "ofType" and steps and rest[index - 1][1] is None:
            choice = rest[index - 1][0] + arg[:1].upper() + arg[1:]
            steps[-1] = _children(choice)
        elif name == "extension":
            steps.append(_extension(arg.strip("'")))
        elif name == "where" and (resolved := _RESOLVE_IS.fullmatch(arg.strip())):
            reference_types = frozenset([resolved["type"]])
            steps.append(_references_to(reference_types))
        elif name == "where" and (element := _ELEMENT_EQ.fullmatch(arg.strip())):
            steps.append(_where_element(element["element"], element["value"]))
        else:
            raise FhirPathError(f"FHIRPath function {name}({arg}) is not supported in {text!r}")
    return Branch(base, tuple(steps), reference_types)


def _split_union(expression: str) -> list[str]:
    branches, depth, current = [], 0, ""
    for char in expression:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "|" and depth == 0:
            branches.append(current)
            current = ""
        else:
            current += char
    branches.append(current)
    return [b.strip() for b in branches if b.strip()]


@dataclass(frozen=True)
class Expression:
    text: str
    branches: tuple[Branch, ...]

    def for_type(self, resource_type: str) -> Expression:
        """The branches that apply to `resource_type`."""
        branches = tuple(b for b in self.branches if b.base in (resource_type, "Resource"))
        return Expression(self.text, branches)

    def evaluate(self, resource: dict[str, Any]) -> list[Node]:
        resource_type = resource.get("resourceType")
        found: list[Node] = []
        for branch in self.branches:
            if branch.base not in (resource_type, "Resource"):
                continue
            nodes: Iterator[Node] = iter((resource,))
            for step in branch.steps:
                nodes = step(nodes)
            found.extend(nodes)
        return found


def compile_expression(text: str) -> Expression:
    return Expression(text, tuple(_compile_branch(b) for b in _split_union(text)))
