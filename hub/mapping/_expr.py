"""The expression language of mappings: `=PID-5.1 | title`, compiled once into closures.

Every value is a list (a collection, as in FHIRPath): empty means missing. A term gives the
first collection; each `| function` turns a collection into the next one.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class ExpressionError(ValueError):
    """An expression that cannot be compiled (caught by `hub mappings check`)."""


class FieldError(Exception):
    """A value that cannot be mapped at run time; the engine adds the record and element."""


class SourcePathLike(Protocol):
    text: str
    get: Callable[[Any, Any], list[Any]]
    columns: frozenset[str]


class FormatLike(Protocol):
    name: str

    def compile_path(self, text: str) -> SourcePathLike: ...


class Ctx:
    """What an expression is evaluated against: one source record, and where we are in it."""

    __slots__ = ("data", "index", "item", "keys", "vars")

    def __init__(self, data: Any, variables: dict[str, list[Any]], keys: dict[str, Any]) -> None:
        self.data = data
        self.item: Any = None
        self.index = 0  # 1-based position of `item` in the `$each`/`each:` it came from
        self.vars = variables
        self.keys = keys  # resource id -> (type, system, value) of what this record produces


Run = Callable[[Ctx], list[Any]]
Step = Callable[[list[Any], Ctx], list[Any]]


@dataclass(slots=True)
class Expr:
    """A compiled expression; `constant` is set when it needs no record (a literal)."""

    text: str
    run: Run
    constant: list[Any] | None = None


@dataclass
class CompileEnv:
    """What expressions may name: the source format's paths, variables, maps, resources."""

    fmt: FormatLike
    variables: set[str]
    value_map: Callable[[str], Any]
    table: Callable[[str], Any]
    resources: Mapping[str, bool]  # id -> can be referenced (not produced per item)
    private: frozenset[str] = frozenset()
    constants: Mapping[str, list[Any]] = field(default_factory=dict)  # the globals' values
    columns: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)
    pipe_functions: Mapping[str, Callable[..., Step]] = field(default_factory=dict)
    term_functions: Mapping[str, Callable[..., Run]] = field(default_factory=dict)


def truthy(values: list[Any]) -> bool:
    return bool(values) and values[0] not in (False, "")


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<number>-?\d+(?:\.\d+)?(?![\w.\-\[]))
    | (?P<punct>[|(),])
    | (?P<var>\$[A-Za-z_][\w-]*)
    | (?P<path>(?:[^\s|(),'\[]|\[[^\]]*\])+)
    )""",
    re.VERBOSE,
)
_NAME = re.compile(r"[A-Za-z_][\w-]*\Z")


def _tokenize(text: str) -> tuple[list[tuple[str, str]], list[tuple[int, int]]]:
    tokens, spans, pos = [], [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ExpressionError(f"cannot read {text[pos:]!r} in ={text}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        spans.append((match.start(kind), match.end()))
        pos = match.end()
    return tokens, spans


class _Parser:
    def __init__(self, text: str, env: CompileEnv) -> None:
        self.text, self.env = text, env
        self.tokens, self.spans = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            want = f"{value!r}" if value else "more"
            raise ExpressionError(f"expected {want} at the end of ={self.text}")
        self.pos += 1
        return token

    def parse(self) -> Expr:
        expr = self.expression()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()[1]!r} in ={self.text}")  # type: ignore[index]
        return expr

    def expression(self) -> Expr:
        start = self.pos
        expr = self.term()
        steps: list[Step] = []
        while self.peek() == ("punct", "|"):
            self.take()
            steps.append(self.step())
        if not steps:
            return expr
        return _chain(self._source(start), expr, steps)

    def _source(self, start: int) -> str:
        return self.text[self.spans[start][0] : self.spans[self.pos - 1][1]]

    def args(self) -> list[Expr]:
        self.take("(")
        found: list[Expr] = []
        if self.peek() == ("punct", ")"):
            self.take()
            return found
        while True:
            found.append(self.expression())
            if self.take()[1] == ")":
                return found

    def term(self) -> Expr:
        kind, value = self.take()
        if kind == "string":
            literal = value[1:-1].replace("''", "'")
            return Expr(value, lambda ctx, v=[literal]: v, [literal])
        if kind == "number":
            number = float(value) if "." in value else int(value)
            return Expr(value, lambda ctx, v=[number]: v, [number])
        if kind == "var":
            return self.variable(value[1:])
        if kind == "path":
            if self.peek() == ("punct", "(") and _NAME.match(value):
                return self.term_call(value)
            return self.path(value)
        raise ExpressionError(f"unexpected {value!r} in ={self.text}")

    def variable(self, name: str) -> Expr:
        if name not in self.env.variables:
            known = ", ".join(sorted(self.env.variables)) or "none"
            raise ExpressionError(f"${name} is not defined (known: {known})")
        return Expr(f"${name}", lambda ctx: ctx.vars[name])

    def path(self, text: str) -> Expr:
        if text == "@":
            return Expr(text, lambda ctx: [] if ctx.item is None else [ctx.item])
        source_path = self._compile_path(text)
        get = source_path.get
        return Expr(text, lambda ctx: get(ctx.data, ctx.item))

    def _compile_path(self, text: str) -> SourcePathLike:
        try:
            source_path = self.env.fmt.compile_path(text)
        except ValueError as exc:
            raise ExpressionError(f"{text}: {exc}") from exc
        for column in source_path.columns:
            if column in self.env.private:
                raise ExpressionError(f"{column} is private to its source and must never be mapped")
        self.env.columns |= source_path.columns
        self.env.paths.add(text)
        return source_path

    def term_call(self, name: str) -> Expr:
        start = self.pos - 1
        factory = self.env.term_functions.get(name)
        if factory is None:
            raise ExpressionError(_unknown("function", name, self.env.term_functions))
        args = self.args()
        try:
            run = factory(args, self.env)
        except ExpressionError as exc:
            raise ExpressionError(f"{name}(...): {exc}") from exc
        return Expr(self._source(start), run)

    def step(self) -> Step:
        kind, value = self.take()
        if kind == "path" and value.startswith("@"):
            source_path = self._compile_path(value)
            get = source_path.get
            return lambda values, ctx: [found for item in values for found in get(ctx.data, item)]
        if kind != "path" or not _NAME.match(value):
            raise ExpressionError(f"expected a function after '|', got {value!r} in ={self.text}")
        factory = self.env.pipe_functions.get(value)
        if factory is None:
            raise ExpressionError(_unknown("function", value, self.env.pipe_functions))
        args = self.args() if self.peek() == ("punct", "(") else []
        try:
            return factory(args, self.env)
        except ExpressionError as exc:
            raise ExpressionError(f"{value}: {exc}") from exc


def _chain(text: str, head: Expr, steps: list[Step]) -> Expr:
    first = head.run
    if len(steps) == 1:
        only = steps[0]
        return Expr(text, lambda ctx: only(first(ctx), ctx))

    def run(ctx: Ctx) -> list[Any]:
        values = first(ctx)
        for step in steps:
            values = step(values, ctx)
        return values

    return Expr(text, run)


def _unknown(what: str, name: str, known: Mapping[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return f"unknown {what} {name!r}{hint}"


class _NotConstant(Exception):
    pass


class _FoldingCtx:
    """A context with no record: evaluating an expression against it succeeds only when the
    expression needs nothing but literals and globals (`=concat($hub_id, '/RV5/mrn')`)."""

    def __init__(self, constants: Mapping[str, list[Any]]) -> None:
        self.vars = constants

    @property
    def data(self) -> Any:
        raise _NotConstant

    item = index = keys = data


def compile_expression(text: str, env: CompileEnv) -> Expr:
    """Compile `=...` (without the `=`); an expression of literals and globals is worked out
    here, once, instead of for every record."""
    if not text.strip():
        raise ExpressionError("empty expression after '='")
    expr = _Parser(text.strip(), env).parse()
    if expr.constant is None:
        # Needing the record (or failing on it) leaves it to be evaluated per record.
        with contextlib.suppress(_NotConstant, KeyError, FieldError):
            folded = expr.run(_FoldingCtx(env.constants))  # type: ignore[arg-type]
            expr = Expr(expr.text, lambda ctx: folded, folded)
    return expr
