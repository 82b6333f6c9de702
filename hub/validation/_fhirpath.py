"""The few FHIRPath invariant shapes the hub's profiles use, compiled to Python functions.

A profile constraint is only worth having if it is enforced, so an expression outside this
grammar is refused when the profiles are loaded instead of being skipped:

    expr := term (('and' | 'or') term)*          (evaluated left to right, no precedence)
    term := [name ('.' name)* '.'] func
    func := 'exists()' | 'empty()' | "matches('regex')"

`name` walks child elements (lists are flattened); no path means the element itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# FHIRPath is three-valued: True, False, or None for an empty result. An invariant fails only
# when it evaluates to False.
Invariant = Callable[[Any], bool | None]

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<name>\$this|[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<punct>[.()]))"
)
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n",
            "r": "\r", "t": "\t"}  # fmt: skip


class UnsupportedExpression(ValueError):
    """The expression is not one of the shapes this evaluator supports."""


def _tokens(expression: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expression):
        if expression[pos:].strip() == "":
            break
        match = _TOKEN.match(expression, pos)
        if match is None:
            raise UnsupportedExpression(f"unexpected text at {expression[pos:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _unquote(literal: str) -> str:
    # FHIRPath string escapes; an unknown escape such as \d is kept as written, which is what
    # a regex author means.
    body = literal[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and i + 5 < len(body):
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _values(focus: Any, path: tuple[str, ...]) -> list[Any]:
    values = [focus]
    for name in path:
        found: list[Any] = []
        for value in values:
            if isinstance(value, dict):
                child = value.get(name)
                if isinstance(child, list):
                    found.extend(child)
                elif child is not None:
                    found.append(child)
        values = found
        if not values:
            break
    return values


def _getter(path: tuple[str, ...]) -> Callable[[Any], list[Any]]:
    """A function giving the values at `path`, with the short paths profiles use made fast."""
    if not path:
        return lambda focus: [] if focus is None else [focus]
    if len(path) == 1:
        name = path[0]

        def child(focus: Any) -> list[Any]:
            if type(focus) is not dict:
                return []
            value = focus.get(name)
            if value is None:
                return []
            return value if type(value) is list else [value]

        return child
    return lambda focus: _values(focus, path)


def _term(path: tuple[str, ...], func: str, argument: str | None) -> Invariant:
    get = _getter(path)
    if func == "exists":
        return lambda focus: bool(get(focus))
    if func == "empty":
        return lambda focus: not get(focus)
    try:
        search = re.compile(argument or "").search
    except re.error as exc:
        raise UnsupportedExpression(f"invalid regular expression {argument!r}: {exc}") from None

    def matches(focus: Any) -> bool | None:
        values = get(focus)
        if not values:
            return None
        # FHIRPath's matches() is a search (anchor with ^...$ for a whole match); on a
        # collection of several values the hub asks all of them to match.
        if len(values) == 1:  # the usual case, without a generator
            value = values[0]
            return type(value) is str and search(value) is not None
        return all(type(value) is str and search(value) is not None for value in values)

    return matches


def _parse_term(tokens: list[tuple[str, str]], pos: int) -> tuple[Invariant, int]:
    path: list[str] = []
    while True:
        if pos >= len(tokens) or tokens[pos][0] != "name":
            raise UnsupportedExpression("expected a path or a function")
        name = tokens[pos][1]
        if pos + 1 < len(tokens) and tokens[pos + 1] == ("punct", "("):
            break
        if name != "$this":
            path.append(name)
        if pos + 1 >= len(tokens) or tokens[pos + 1] != ("punct", "."):
            raise UnsupportedExpression(f"a path must end with a function, after {name!r}")
        pos += 2
    func = name
    pos += 2  # the name and "("
    argument = None
    if func == "matches":
        if pos >= len(tokens) or tokens[pos][0] != "string":
            raise UnsupportedExpression("matches() takes one string literal")
        argument = _unquote(tokens[pos][1])
        pos += 1
    elif func not in ("exists", "empty"):
        raise UnsupportedExpression(f"function {func}() is not supported")
    if pos >= len(tokens) or tokens[pos] != ("punct", ")"):
        raise UnsupportedExpression(f"{func}() is not closed or takes other arguments")
    return _term(tuple(path), func, argument), pos + 1


def _and(left: Invariant, right: Invariant) -> Invariant:
    def both(focus: Any) -> bool | None:
        a, b = left(focus), right(focus)
        if a is False or b is False:
            return False
        return True if a and b else None

    return both


def _or(left: Invariant, right: Invariant) -> Invariant:
    def either(focus: Any) -> bool | None:
        a, b = left(focus), right(focus)
        if a or b:
            return True
        return False if a is False and b is False else None

    return either


def compile_invariant(expression: str) -> Invariant:
    """Compile `expression` or raise UnsupportedExpression saying what is not supported."""
    tokens = _tokens(expression)
    result, pos = _parse_term(tokens, 0)
    while pos < len(tokens):
        kind, text = tokens[pos]
        if kind != "name" or text not in ("and", "or"):
            raise UnsupportedExpression(f"unexpected {text!r}: only 'and' and 'or' join terms")
        right, pos = _parse_term(tokens, pos + 1)
        result = _and(result, right) if text == "and" else _or(result, right)
    return result
