"""Parse FHIR search parameters into a `SearchQuery` both stores understand.

Rules (FHIR R4 search): a repeated parameter is AND, commas in a value are OR; an unknown
parameter is ignored with a warning unless handling is strict; an unknown modifier or a value
that cannot be read is always an error (400).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from hub.fhir import DateFormatError, InvalidRequest, Issue, date_range, parse_reference

from ._protocol import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, SearchParams
from ._search_params import SearchParameter, SearchParameterRegistry, normalise_string

DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_MODIFIERS = {
    "token": {"not", "missing"},
    "string": {"exact", "contains", "missing"},
    "date": {"missing"},
    "reference": {"identifier", "missing"},
    "uri": {"below", "missing"},
    "number": {"missing"},
}
_RESULT_PARAMS = {
    "_count",
    "_offset",
    "_sort",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
    "_total",
    "_format",
    "_pretty",
}
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


class AnySystem:
    """Token search without a `|`: the code in any system (or none)."""

    def __repr__(self) -> str:
        return "ANY"


ANY = AnySystem()


@dataclass(frozen=True)
class TokenQuery:
    system: str | AnySystem | None
    """ANY: not given; None: `|code` (no system); str: that system."""
    code: str | None
    """None: `system|` (any code in the system)."""


@dataclass(frozen=True)
class DateQuery:
    prefix: str
    low: int
    high: int


@dataclass(frozen=True)
class NumberQuery:
    prefix: str
    value: float


@dataclass(frozen=True)
class ReferenceQuery:
    resource_type: str | None
    id: str | None
    url: str | None


@dataclass
class Condition:
    """One search parameter occurrence; its `values` are ORed, conditions are ANDed."""

    param: SearchParameter
    modifier: str | None = None
    values: list[Any] = field(default_factory=list)
    chain: dict[str, Condition] | None = None
    """For `patient.identifier=...`: per target type, the condition on referenced resources."""


@dataclass(frozen=True)
class SortKey:
    code: str
    descending: bool
    param: SearchParameter


@dataclass(frozen=True)
class IncludeSpec:
    source_type: str
    param: SearchParameter
    target_type: str | None
    iterate: bool


@dataclass
class SearchQuery:
    resource_type: str
    conditions: list[Condition] = field(default_factory=list)
    count: int = DEFAULT_PAGE_SIZE
    offset: int = 0
    sort: list[SortKey] = field(default_factory=list)
    includes: list[IncludeSpec] = field(default_factory=list)
    revincludes: list[IncludeSpec] = field(default_factory=list)
    summary: str | None = None
    elements: list[str] | None = None
    total: str | None = None
    warnings: list[Issue] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)
    """The parameters used, normalised, without paging (for self/next links)."""


def split_values(value: str) -> list[str]:
    return [v.replace("\\,", ",") for v in _UNESCAPED_COMMA.split(value)]


def _unescape(value: str) -> str:
    return value.replace("\\|", "|").replace("\\$", "$").replace("\\\\", "\\")


def _parse_token(text: str) -> TokenQuery:
    parts = _UNESCAPED_PIPE.split(text, maxsplit=1)
    if len(parts) == 1:
        return TokenQuery(ANY, _unescape(text))
    system, code = parts
    return TokenQuery(_unescape(system) or None, _unescape(code) or None)


def _parse_date(name: str, text: str) -> DateQuery:
    prefix = text[:2] if text[:2] in DATE_PREFIXES else "eq"
    body = text[2:] if text[:2] in DATE_PREFIXES else text
    try:
        low, high = date_range(body)
    except DateFormatError as exc:
        raise InvalidRequest(f"Search parameter {name}: {exc}", expression=[name]) from None
    return DateQuery(prefix, low, high)


def _parse_number(name: str, text: str) -> NumberQuery:
    prefix = text[:2] if text[:2] in DATE_PREFIXES else "eq"
    body = text[2:] if text[:2] in DATE_PREFIXES else text
    try:
        return NumberQuery(prefix, float(body))
    except ValueError:
        raise InvalidRequest(f"Search parameter {name}: not a number: {body!r}") from None


def _parse_reference(
    param: SearchParameter, modifier: str | None, text: str
) -> list[ReferenceQuery]:
    """What a reference value matches: one of these (more than one for an absolute URL)."""
    literal = parse_reference(text)
    if literal is not None:
        found = [ReferenceQuery(literal.resource_type, literal.id, None)]
        if literal.base:
            # Or a canonical URL, which is often of the same form ([base]/Questionnaire/phq-9).
            found.append(ReferenceQuery(None, None, text))
        return found
    if "/" in text or ":" in text:
        return [ReferenceQuery(None, None, text.split("|")[0])]  # canonical or other URL
    target = modifier if modifier and modifier[:1].isupper() else None
    if target is None and len(param.targets) == 1 and "Resource" not in param.targets:
        target = next(iter(param.targets))
    return [ReferenceQuery(target, text, None)]


class QueryParser:
    def __init__(self, registry: SearchParameterRegistry) -> None:
        self.registry = registry

    def parse(self, resource_type: str, params: SearchParams, *, strict: bool) -> SearchQuery:
        query = SearchQuery(resource_type)
        for name, value in params:
            if name.split(":")[0] in _RESULT_PARAMS:
                self._result_param(query, name, value, strict)
                continue
            condition = self._condition(query, resource_type, name, value, strict)
            if condition is not None:
                query.conditions.append(condition)
                query.params.append((name, value))
        return query

    def parse_criteria(self, resource_type: str, criteria: str) -> SearchQuery:
        """A conditional interaction's criteria (`identifier=sys|val`): always strict, since
        ignoring a parameter there could update or skip the wrong resource."""
        criteria = criteria.split("?", 1)[1] if "?" in criteria else criteria
        pairs = parse_qsl(criteria, keep_blank_values=True)
        if not pairs:
            raise InvalidRequest("A conditional interaction needs search criteria")
        return self.parse(resource_type, pairs, strict=True)

    def _unknown(self, query: SearchQuery, name: str, why: str, strict: bool) -> None:
        if strict:
            raise InvalidRequest(why, code="not-supported", expression=[name])
        query.warnings.append(Issue("warning", "not-supported", f"{why}: ignored", (name,)))

    def _condition(
        self, query: SearchQuery, resource_type: str, name: str, value: str, strict: bool
    ) -> Condition | None:
        head, _, chained = name.partition(".")
        code, _, modifier = head.partition(":")
        param = self.registry.get(resource_type, code)
        if param is None:
            self._unknown(
                query, name, f"Unknown search parameter {code!r} for {resource_type}", strict
            )
            return None
        modifier = modifier or None
        if chained:
            return self._chained(query, param, modifier, chained, value, strict, name)
        allowed = _MODIFIERS[param.type]
        type_modifier = param.type == "reference" and modifier and modifier[:1].isupper()
        if modifier and modifier not in allowed and not type_modifier:
            raise InvalidRequest(
                f"Modifier :{modifier} is not supported for {param.type} parameter {code}",
                code="not-supported",
                expression=[name],
            )
        condition = Condition(param, modifier)
        if modifier == "missing":
            if value not in ("true", "false"):
                raise InvalidRequest(f"{name} must be true or false", expression=[name])
            condition.values = [value == "true"]
            return condition
        texts = [v for v in split_values(value) if v != ""]
        if not texts:
            return None  # an empty parameter constrains nothing
        condition.values = [v for t in texts for v in self._values(param, modifier, name, t)]
        return condition

    def _values(
        self, param: SearchParameter, modifier: str | None, name: str, text: str
    ) -> list[Any]:
        """The value(s) one comma-separated part stands for; any of them matches."""
        if param.type == "reference" and modifier != "identifier":
            return _parse_reference(param, modifier, _unescape(text))
        return [self._value(param, modifier, name, text)]

    def _value(self, param: SearchParameter, modifier: str | None, name: str, text: str) -> Any:
        if param.type == "token" or (param.type == "reference" and modifier == "identifier"):
            return _parse_token(text)
        if param.type == "string":
            return _unescape(text) if modifier == "exact" else normalise_string(_unescape(text))
        if param.type == "date":
            return _parse_date(name, text)
        if param.type == "number":
            return _parse_number(name, text)
        return _unescape(text)  # uri

    def _chained(
        self,
        query: SearchQuery,
        param: SearchParameter,
        modifier: str | None,
        chained: str,
        value: str,
        strict: bool,
        name: str,
    ) -> Condition | None:
        if param.type != "reference":
            raise InvalidRequest(f"{param.code} is not a reference: it cannot be chained")
        next_code = chained.partition(".")[0].partition(":")[0]
        candidates = [modifier] if modifier else param.target_types(self.registry)
        types = [t for t in candidates if self.registry.get(t, next_code) is not None]
        if not types:
            self._unknown(
                query, name, f"No target of {param.code} has parameter {next_code}", strict
            )
            return None
        chain = {}
        for target in types:
            inner = self._condition(query, target, chained, value, strict=True)
            if inner is None:
                return None
            chain[target] = inner
        return Condition(param, None, [], chain)

    def _result_param(self, query: SearchQuery, name: str, value: str, strict: bool) -> None:
        if name == "_count":
            query.count = min(_non_negative(name, value), MAX_PAGE_SIZE)
        elif name == "_offset":
            query.offset = _non_negative(name, value)
        elif name == "_sort":
            keys = [self._sort_key(query, part, strict) for part in value.split(",") if part]
            query.sort = [k for k in keys if k is not None]
            if query.sort:
                sort = ",".join(("-" if k.descending else "") + k.code for k in query.sort)
                query.params.append((name, sort))
        elif name.split(":")[0] in ("_include", "_revinclude"):
            spec = self._include(query, name, value, strict)
            if spec is not None:
                target = query.includes if name.startswith("_include") else query.revincludes
                target.append(spec)
                query.params.append((name, value))
        elif name == "_summary":
            if value not in ("count", "false"):
                self._unknown(query, name, f"_summary={value} is not supported", strict)
                return
            query.summary = value
            query.params.append((name, value))
        elif name == "_elements":
            query.elements = [e.strip() for e in value.split(",") if e.strip()]
            query.params.append((name, value))
        elif name == "_total":
            if value not in ("none", "estimate", "accurate"):
                raise InvalidRequest(f"_total must be none, estimate or accurate, not {value!r}")
            query.total = value
            query.params.append((name, value))

    def _sort_key(self, query: SearchQuery, part: str, strict: bool) -> SortKey | None:
        descending = part.startswith("-")
        code = part.lstrip("-")
        param = self.registry.get(query.resource_type, code)
        if param is None or param.type == "reference":
            self._unknown(query, "_sort", f"Cannot sort {query.resource_type} by {code!r}", strict)
            return None
        return SortKey(code, descending, param)

    def _include(
        self, query: SearchQuery, name: str, value: str, strict: bool
    ) -> IncludeSpec | None:
        iterate = name.endswith(":iterate")
        parts = value.split(":")
        if len(parts) not in (2, 3):
            raise InvalidRequest(f"{name}={value}: expected Type:parameter[:targetType]")
        source_type, code = parts[0], parts[1]
        target_type = parts[2] if len(parts) == 3 else None
        param = self.registry.get(source_type, code)
        if param is None or param.type != "reference":
            self._unknown(query, name, f"{value} is not a reference parameter", strict)
            return None
        if name.startswith("_include") and source_type != query.resource_type and not iterate:
            self._unknown(query, name, f"{value} does not apply to {query.resource_type}", strict)
            return None
        return IncludeSpec(source_type, param, target_type, iterate)


def _non_negative(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise InvalidRequest(
            f"{name} must be a whole number >= 0, not {value!r}", expression=[name]
        )
    return number
