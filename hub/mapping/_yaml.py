"""YAML loading that remembers the line of every key, so a mapping error can name it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]


class MappingConfigError(ValueError):
    """A mapping, part or value map that is not well formed: names the file, line and key."""

    def __init__(self, file: str, line: int | None, where: str, message: str) -> None:
        self.file, self.line, self.where, self.message = file, line, where, message
        at = f" line {line}" if line else ""
        key = f" ({where})" if where else ""
        super().__init__(f"{file}{at}{key}: {message}")


@dataclass(frozen=True, slots=True)
class YamlDoc:
    """A loaded YAML document and the line of each key path in it."""

    file: str
    data: Any
    lines: dict[Loc, int]

    def line_of(self, loc: Loc) -> int | None:
        """The line of `loc`, or of its nearest parent that has one."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None

    def error(self, loc: Loc, message: str) -> MappingConfigError:
        return MappingConfigError(self.file, self.line_of(loc), format_loc(loc), message)


def format_loc(loc: Loc) -> str:
    """('resources', 1, 'set', 'status') -> 'resources[1].set.status'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def load_yaml(path: Path, display: str) -> YamlDoc:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingConfigError(display, None, "", f"cannot read: {exc}") from exc
    return parse_yaml(text, display)


def parse_yaml(text: str, display: str) -> YamlDoc:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Loc, int] = {}
        data = _build(loader, node, (), lines, display) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        hint = ""
        if "flow" in (exc.context or ""):
            hint = " (inside { } or [ ], quote an expression that has commas: '=concat(a, b)')"
        elif "mapping values" in (exc.problem or ""):
            hint = (
                ' (an expression with ": " or " #" in it must be quoted: "=concat(a, \': \', b)")'
            )
        raise MappingConfigError(display, line, "", f"not valid YAML: {exc.problem}{hint}") from exc
    finally:
        loader.dispose()
    return YamlDoc(display, data, lines)


def _build(loader: yaml.SafeLoader, node: yaml.Node, loc: Loc, lines: dict[Loc, int], file: str):
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in result:
                raise MappingConfigError(
                    file, key_node.start_mark.line + 1, format_loc(loc), f"key {key!r} twice"
                )
            lines[(*loc, key)] = key_node.start_mark.line + 1
            result[key] = _build(loader, value_node, (*loc, key), lines, file)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*loc, i), lines, file) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
