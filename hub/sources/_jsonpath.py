"""The JSON path language shared by `jsonl` and `stu3-bundle`: `goals.description`,
`identifier[system=https://fhir.nhs.uk/Id/nhs-number].value`, `@.description`.

Collection semantics as in FHIRPath: every step maps over the items so far and flattens lists,
so a path through repeating things gives every match. Filters keep the objects whose key has
the given text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ._records import SourcePath, syntax_error

_NAME = re.compile(r"[A-Za-z0-9_$-]+")

Filter = tuple[str, str]  # (key, wanted text)
Step = tuple[str, tuple[Filter, ...]]  # (key, filters applied to what the key gave)


def _text(value: Any) -> str | None:
    """The text a filter compares with: `[id=3]` matches 3 and "3", `[active=true]` matches true."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def _matches(item: Any, filters: tuple[Filter, ...]) -> bool:
    if not isinstance(item, dict):
        return False
    for key, wanted in filters:
        value = item.get(key)
        if value == wanted:
            continue
        if type(value) is str:  # the usual case, inlined: filters run on every entry
            if value.strip() != wanted:
                return False
            continue
        if isinstance(value, list):
            if not any(_text(v) == wanted for v in value):
                return False
        elif _text(value) != wanted:
            return False
    return True


def clean(values: list[Any]) -> list[Any]:
    """Strings stripped; None and empty strings dropped (missing is simply absent)."""
    out = []
    for value in values:
        if isinstance(value, str):
            value = value.strip()
            if value:
                out.append(value)
        elif value is not None:
            out.append(value)
    return out


def _walk(items: list[Any], steps: tuple[Step, ...]) -> list[Any]:
    for key, filters in steps:
        found: list[Any] = []
        for item in items:
            if isinstance(item, dict):
                value = item.get(key)
                if isinstance(value, list):
                    found.extend(value)
                elif value is not None:
                    found.append(value)
        items = [v for v in found if _matches(v, filters)] if filters else found
        if not items:
            break
    return items


def _parse_filters(text: str, pos: int) -> tuple[tuple[Filter, ...], int]:
    filters: list[Filter] = []
    while pos < len(text) and text[pos] == "[":
        close = text.find("]", pos)
        if close < 0:
            raise syntax_error(text, f"'[' at position {pos + 1} is never closed")
        key, eq, wanted = text[pos + 1 : close].partition("=")
        key, wanted = key.strip(), wanted.strip()
        if not eq or not _NAME.fullmatch(key) or not wanted:
            raise syntax_error(
                text, f"filter [{text[pos + 1 : close]}] should read [key=value], e.g. [system=X]"
            )
        filters.append((key, wanted))
        pos = close + 1
    return tuple(filters), pos


def _parse(text: str) -> tuple[bool, tuple[Filter, ...], tuple[Step, ...]]:
    """(relative, filters on the current item, steps)."""
    relative = text.startswith("@")
    pos = 1 if relative else 0
    head: tuple[Filter, ...] = ()
    if relative:
        head, pos = _parse_filters(text, pos)
        if pos == len(text):
            return True, head, ()
        if text[pos] != ".":
            raise syntax_error(text, f"expected '.' after '@' at position {pos + 1}")
        pos += 1
    steps: list[Step] = []
    while True:
        match = _NAME.match(text, pos)
        if not match:
            what = repr(text[pos]) if pos < len(text) else "the end"
            raise syntax_error(text, f"expected a key name at position {pos + 1}, found {what}")
        filters, pos = _parse_filters(text, match.end())
        steps.append((match.group(), filters))
        if pos == len(text):
            break
        if text[pos] != ".":
            raise syntax_error(text, f"expected '.' or '[' at position {pos + 1}")
        pos += 1
    return relative, head, tuple(steps)


@lru_cache(maxsize=4096)
def compile_json_path(text: str) -> SourcePath:
    """Compile once into a closure; raises PathSyntaxError."""
    path = text.strip()
    if not path:
        raise syntax_error(text, "empty path")
    relative, head, steps = _parse(path)
    return SourcePath(text, _relative(head, steps) if relative else _absolute(steps))


def _relative(head: tuple[Filter, ...], steps: tuple[Step, ...]) -> Callable[[Any, Any], list]:
    def get(data: Any, current: Any) -> list[Any]:
        if current is None:
            return []
        items = [current]
        if head and not _matches(current, head):
            return []
        return clean(_walk(items, steps)) if steps else clean(items)

    return get


def _single(value: Any) -> list[Any]:
    if isinstance(value, str):
        value = value.strip()
        return [value] if value else []
    if value is None:
        return []
    return clean(value) if isinstance(value, list) else [value]


def _absolute(steps: tuple[Step, ...]) -> Callable[[Any, Any], list]:
    if any(filters for _, filters in steps):

        def get(data: Any, current: Any) -> list[Any]:
            return clean(_walk([data], steps))

        return get

    # Without filters, objects are followed key by key; only a list met on the way needs the
    # general walk (most paths, `scores.mental_health`, never meet one before the end).
    keys = tuple(key for key, _ in steps)
    rests = tuple(steps[i:] for i in range(len(steps)))

    def get_keys(data: Any, current: Any) -> list[Any]:
        value = data
        for i, key in enumerate(keys):
            if isinstance(value, dict):
                value = value.get(key)
            elif isinstance(value, list):
                return clean(_walk(value, rests[i]))
            else:
                return []
        return _single(value)

    return get_keys
