"""The small FHIRPath subset that search parameter expressions use, evaluated on JSON.

Supported: unions (`A | B`), paths (`Patient.name.family`), `X as T` / `X.ofType(T)` for choice
elements (one right under the resource, `Consent.source`, also works bare), `extension(url)`,
`where(resolve() is Type)` and `where(element='value')`. That covers the FHIR R4 search
parameters the hub uses and SearchParameters written the same way; anything else is rejected
when the table is loaded, so a typo is found at start-up, not at query time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from hub.fhir import parse_reference

Node = Any
Step = Callable[[list[Node]], list[Node]]

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
    root: str | None = None
    """The first element the path reads, when it is not a choice element: a resource without
    it has no value here (most parameters, for most resources), so it is checked first."""


def _children(name: str) -> Step:
    def step(nodes: list[Node]) -> list[Node]:
        found: list[Node] = []
        for node in nodes:
            value = node.get(name) if isinstance(node, dict) else None
            if value is None:
                continue
            if isinstance(value, list):
                found.extend(value)
            else:
                found.append(value)
        return found

    return step


def _choice(name: str) -> Step:
    """A choice element (`deceased[x]`) read without a type: whichever `name` + Type is there."""

    def step(nodes: list[Node]) -> list[Node]:
        found: list[Node] = []
        for node in nodes:
            for key, value in node.items() if isinstance(node, dict) else ():
                if key.startswith(name) and key[len(name) : len(name) + 1].isupper():
                    found.extend(value if isinstance(value, list) else [value])
        return found

    return step


def _extension(url: str) -> Step:
    def step(nodes: list[Node]) -> list[Node]:
        return [
            ext
            for node in nodes
            if isinstance(node, dict)
            for ext in node.get("extension", ())
            if ext.get("url") == url
        ]

    return step


def _where_element(element: str, value: str) -> Step:
    def step(nodes: list[Node]) -> list[Node]:
        return [n for n in nodes if isinstance(n, dict) and n.get(element) == value]

    return step


def _references_to(types: frozenset[str]) -> Step:
    def refers(node: Node) -> bool:
        if not isinstance(node, dict):
            return False
        ref = node.get("reference")
        literal = parse_reference(ref) if isinstance(ref, str) else None
        if literal is not None:
            return literal.resource_type in types
        return node.get("type") in types  # a logical reference (by identifier) naming its type

    def step(nodes: list[Node]) -> list[Node]:
        return [n for n in nodes if refers(n)]

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
    root = rest[0][0] if rest and rest[0][1] is None else None
    if root is not None and root not in _element_names(base):
        steps[0] = _choice(root)  # value[x]: its JSON name depends on the type
        root = None
    return Branch(base, tuple(steps), reference_types, root)


@cache
def _element_names(resource_type: str) -> frozenset[str]:
    if resource_type == "Resource":
        return frozenset({"id", "meta", "implicitRules", "language"})
    try:
        fields = get_fhir_model_class(resource_type).model_fields.values()
    except (KeyError, ValueError):
        return frozenset()
    return frozenset(f.alias for f in fields if f.alias)


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
            if branch.root is not None and branch.root not in resource:
                continue
            nodes: list[Node] = [resource]
            for step in branch.steps:
                nodes = step(nodes)
                if not nodes:
                    break
            found.extend(nodes)
        return found


def compile_expression(text: str) -> Expression:
    return Expression(text, tuple(_compile_branch(b) for b in _split_union(text)))
