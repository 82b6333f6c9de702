"""The table of resource types and search parameters, and the values they index.

Loaded from `search-parameters.yaml` (and, later, SearchParameter resources in `profiles/`).
Both stores read it: the embedded store indexes and queries with it, the remote store checks
queries against it, and the CapabilityStatement is generated from it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple

import yaml

from hub.fhir import MAX_MS, MIN_MS, DateFormatError, date_range, parse_reference

from ._fhirpath import Expression, compile_expression

PARAM_TYPES = ("token", "string", "date", "reference", "uri", "number")


class TokenValue(NamedTuple):
    system: str | None
    code: str


class ReferenceValue(NamedTuple):
    resource_type: str | None
    id: str | None
    url: str | None
    """Absolute or canonical URL when the reference is one; otherwise None."""


@dataclass(frozen=True)
class SearchParameter:
    """One search parameter of one resource type."""

    code: str
    type: str
    resource_type: str
    expression: Expression
    targets: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return f"{self.resource_type}.{self.code}"

    def target_types(self, registry: SearchParameterRegistry) -> list[str]:
        """Concrete types a reference parameter can point to (`Resource` means any stored)."""
        if "Resource" in self.targets:
            return registry.resource_types
        return sorted(t for t in self.targets if t in registry.resource_types)

    def values(self, resource: dict[str, Any]) -> list[Any]:
        """The values of this parameter in `resource`, typed by the parameter type."""
        return self.extract(self.expression.evaluate(resource))

    def extract(self, nodes: list[Any]) -> list[Any]:
        """Typed values from the nodes this parameter's expression found."""
        return _EXTRACT[self.type](nodes)


def normalise_string(value: str) -> str:
    """Case- and accent-insensitive form for string search (FHIR R4 search §3.1.1.5.9)."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip()


def _tokens(nodes: Iterable[Any]) -> list[TokenValue]:
    found: list[TokenValue] = []
    for node in nodes:
        if isinstance(node, bool):
            found.append(TokenValue(None, "true" if node else "false"))
        elif isinstance(node, str | int):
            found.append(TokenValue(None, str(node)))
        elif isinstance(node, dict):
            if "coding" in node or ("text" in node and "value" not in node):
                found.extend(_tokens(node.get("coding", ())))
            elif "code" in node:
                found.append(TokenValue(node.get("system"), str(node["code"])))
            elif "value" in node:  # Identifier, ContactPoint
                found.append(TokenValue(node.get("system"), str(node["value"])))
    return found


_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


def _strings(nodes: Iterable[Any]) -> list[str]:
    found: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, dict):
            parts = _NAME_PARTS if "family" in node or "given" in node else _ADDRESS_PARTS
            for part in parts:
                value = node.get(part)
                if isinstance(value, str):
                    found.append(value)
                elif isinstance(value, list):
                    found.extend(v for v in value if isinstance(v, str))
    return found


def _dates(nodes: Iterable[Any]) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    for node in nodes:
        try:
            if isinstance(node, str):
                found.append(date_range(node))
            elif isinstance(node, dict) and ("start" in node or "end" in node):
                low = date_range(node["start"])[0] if node.get("start") else MIN_MS
                high = date_range(node["end"])[1] if node.get("end") else MAX_MS
                found.append((low, high))
        except DateFormatError:
            continue  # validation has already accepted the resource; nothing to index
    return found


def _references(nodes: Iterable[Any]) -> list[ReferenceValue]:
    found: list[ReferenceValue] = []
    for node in nodes:
        if isinstance(node, str):  # canonical
            found.append(ReferenceValue(None, None, node.split("|")[0]))
        elif isinstance(node, dict) and isinstance(node.get("reference"), str):
            ref = node["reference"]
            literal = parse_reference(ref)
            if literal is not None:
                url = ref if literal.base else None
                found.append(ReferenceValue(literal.resource_type, literal.id, url))
            elif not ref.startswith(("#", "urn:")):
                found.append(ReferenceValue(None, None, ref))
    return found


def reference_identifiers(nodes: Iterable[Any]) -> list[TokenValue]:
    """Identifiers of logical references, for the `:identifier` modifier."""
    return _tokens(n["identifier"] for n in nodes if isinstance(n, dict) and "identifier" in n)


def _uris(nodes: Iterable[Any]) -> list[str]:
    return [n for n in nodes if isinstance(n, str)]


def _numbers(nodes: Iterable[Any]) -> list[float]:
    found: list[float] = []
    for node in nodes:
        if isinstance(node, int | float) and not isinstance(node, bool):
            found.append(float(node))
        elif isinstance(node, dict) and isinstance(node.get("value"), int | float):
            found.append(float(node["value"]))
    return found


_EXTRACT = {
    "token": _tokens,
    "string": _strings,
    "date": _dates,
    "reference": _references,
    "uri": _uris,
    "number": _numbers,
}


class SearchParameterRegistry:
    """Resource types and their search parameters."""

    def __init__(self) -> None:
        self._types: dict[str, dict[str, Any]] = {}
        self._params: dict[str, dict[str, SearchParameter]] = {}
        self._common: dict[str, SearchParameter] = {}
        self._by_type: dict[str, dict[str, SearchParameter]] = {}

    @classmethod
    def default(cls) -> SearchParameterRegistry:
        registry = cls()
        text = resources.files("hub.store").joinpath("search-parameters.yaml").read_text("utf-8")
        registry.load_table(yaml.safe_load(text), source="hub/store/search-parameters.yaml")
        return registry

    def load_table(self, table: dict[str, Any], *, source: str) -> None:
        for resource_type, options in (table.get("resource_types") or {}).items():
            self._types[resource_type] = dict(options or {})
            self._params.setdefault(resource_type, {})
        for row in table.get("search_parameters") or ():
            try:
                self.add(row)
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{source}: search parameter {row.get('code')!r}: {exc}") from exc

    def add(self, definition: dict[str, Any]) -> None:
        """Add a search parameter given as a SearchParameter resource or a table row."""
        code, param_type = definition["code"], definition["type"]
        if param_type not in PARAM_TYPES:
            raise ValueError(f"type {param_type!r} is not supported (one of {PARAM_TYPES})")
        expression = compile_expression(definition["expression"])
        targets = frozenset(definition.get("target") or ())
        self._by_type.clear()
        for base in definition["base"]:
            param = SearchParameter(code, param_type, base, expression.for_type(base), targets)
            if base == "Resource":
                self._common[code] = param
            elif base in self._types:
                if not param.expression.branches:
                    raise ValueError(f"its expression has no path for {base}")
                self._params[base][code] = param

    @property
    def resource_types(self) -> list[str]:
        return list(self._types)

    def supports(self, resource_type: str) -> bool:
        return resource_type in self._types

    def params_for(self, resource_type: str) -> dict[str, SearchParameter]:
        """Every search parameter of the type, the common ones (`_id`...) first."""
        if resource_type not in self._by_type:
            common = {
                code: SearchParameter(code, p.type, resource_type, p.expression, p.targets)
                for code, p in self._common.items()
            }
            self._by_type[resource_type] = {**common, **self._params.get(resource_type, {})}
        return self._by_type[resource_type]

    def get(self, resource_type: str, code: str) -> SearchParameter | None:
        return self.params_for(resource_type).get(code)

    def patient_compartment(self, resource_type: str) -> list[str]:
        return list(self._types.get(resource_type, {}).get("patient_compartment", ()))
