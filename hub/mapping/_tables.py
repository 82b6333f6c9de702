"""Lookup tables: configuration rows a mapping looks values up in (`lookup('points-of-care',
'name')`), kept as YAML beside the mappings.

A row's key may be a pattern: `GUEST-BED-{n}` matches GUEST-BED-2, and `{n}` in the row's other
values is replaced by what it matched (`Guest bed {n}` -> `Guest bed 2`), so a new bed or ward
of a known kind needs no new row.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
# What one placeholder matches: a ward or bed number such as 2, 12 or 3A.
_PLACEHOLDER_MATCHES = "[A-Za-z0-9]+"
_REMEMBERED = 4096


class TableFile(BaseModel):
    """What a table file holds (see mappings/README.md, "Lookup tables")."""

    model_config = ConfigDict(extra="forbid")
    description: str
    key: str
    rows: list[dict[str, str]] = Field(min_length=1)

    @model_validator(mode="after")
    def _every_row_has_its_key(self) -> TableFile:
        for index, row in enumerate(self.rows):
            if not row.get(self.key, "").strip():
                raise ValueError(f"rows[{index}] has no {self.key!r} (the key column)")
            in_key = _PLACEHOLDER.findall(row[self.key])
            named = set(in_key)
            if len(named) < len(in_key):
                raise ValueError(f"rows[{index}].{self.key} names a placeholder twice")
            for column, value in row.items():
                unknown = set(_PLACEHOLDER.findall(value)) - named
                if unknown:
                    raise ValueError(
                        f"rows[{index}].{column} uses {{{sorted(unknown)[0]}}}, which its key "
                        f"{row[self.key]!r} does not match"
                    )
        return self


def _pattern(key: str) -> re.Pattern[str]:
    parts, position = [], 0
    for match in _PLACEHOLDER.finditer(key):
        parts.append(re.escape(key[position : match.start()]))
        parts.append(f"(?P<{match[1]}>{_PLACEHOLDER_MATCHES})")
        position = match.end()
    parts.append(re.escape(key[position:]))
    return re.compile("".join(parts))


class Table:
    """A loaded table: `row(value)` gives the row whose key is, or matches, the value."""

    def __init__(self, name: str, spec: TableFile) -> None:
        self.name = name
        self.spec = spec
        self.columns = frozenset(column for row in spec.rows for column in row)
        self._exact: dict[str, dict[str, str]] = {}
        self._patterns: list[tuple[re.Pattern[str], dict[str, str]]] = []
        # Feeds repeat a few codes endlessly: what a pattern matched is remembered.
        self._matched: dict[str, dict[str, str] | None] = {}
        for row in spec.rows:
            key = row[spec.key].strip()
            if _PLACEHOLDER.search(key):
                self._patterns.append((_pattern(key), row))
            else:
                self._exact.setdefault(key, row)

    def row(self, value: str) -> dict[str, str] | None:
        """The row for `value` (trimmed): a row written for it, else the first pattern row
        that matches it, with its placeholders filled in; None when no row fits."""
        value = value.strip()
        found = self._exact.get(value)
        if found is not None:
            return found
        if value not in self._matched:
            if len(self._matched) >= _REMEMBERED:
                self._matched.clear()
            self._matched[value] = self._pattern_row(value)
        return self._matched[value]

    def _pattern_row(self, value: str) -> dict[str, str] | None:
        for pattern, row in self._patterns:
            match = pattern.fullmatch(value)
            if match is not None:
                return _filled(row, match.groupdict())
        return None


def _filled(row: dict[str, str], parts: dict[str, str]) -> dict[str, str]:
    """The pattern row with each `{name}` replaced by what the key's placeholder matched."""
    return {column: _PLACEHOLDER.sub(lambda m: parts[m[1]], text) for column, text in row.items()}
