"""The small function library of mapping expressions (see mappings/README.md).

Each function is a factory: it gets the compiled arguments when the mapping is loaded, checks
them (a date format, a value map's name, a regular expression), and returns the closure that
runs for every record. Literal arguments are therefore worked out once, not per record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import statistics
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from hub.fhir import nhs_number_is_valid, normalise_postcode

from ._expr import CompileEnv, Ctx, Expr, ExpressionError, FieldError, Run, Step, truthy
from ._valuemaps import UnmappedValue

LONDON = ZoneInfo("Europe/London")
PIPE: dict[str, Callable[[list[Expr], CompileEnv], Step]] = {}
TERM: dict[str, Callable[[list[Expr], CompileEnv], Run]] = {}


def _pipe(name: str):
    def register(factory):
        PIPE[name] = factory
        return factory

    return register


def _term(name: str):
    def register(factory):
        TERM[name] = factory
        return factory

    return register


def _arity(args: list[Expr], low: int, high: int | None = None) -> None:
    high = low if high is None else high
    if not low <= len(args) <= high:
        want = str(low) if low == high else f"{low} to {high}" if high < 99 else f"at least {low}"
        raise ExpressionError(f"takes {want} argument(s), got {len(args)}")


def _literal_texts(args: list[Expr]) -> list[str]:
    texts = []
    for arg in args:
        if arg.constant is None or len(arg.constant) != 1:
            raise ExpressionError(f"{arg.text} must be a literal such as 'text'")
        texts.append(str(arg.constant[0]))
    return texts


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    raise FieldError(f"{value!r} is not text")


def _each_text(transform: Callable[[str], Any]) -> Callable[[list[Expr], CompileEnv], Step]:
    def factory(args: list[Expr], env: CompileEnv) -> Step:
        _arity(args, 0)

        def run(values: list[Any], ctx: Ctx) -> list[Any]:
            found = []
            for value in values:
                out = transform(value if type(value) is str else _text(value))
                if out:
                    found.append(out)
            return found

        return run

    return factory


def _title(text: str) -> str:
    # str.title() capitalises after any non-letter: o'brien -> O'Brien, ortega-díaz -> Ortega-Díaz
    return text.lower().title() if text.isupper() or text.islower() else text


for _name, _fn in {
    "trim": str.strip,
    "upper": str.upper,
    "lower": str.lower,
    "title": _title,
}.items():
    PIPE[_name] = _each_text(_fn)


@_pipe("split")
def _split(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 1)
    (sep,) = _literal_texts(args)
    return lambda values, ctx: [p.strip() for v in values for p in _text(v).split(sep) if p.strip()]


@_pipe("join")
def _join(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 1)
    (sep,) = _literal_texts(args)
    return lambda values, ctx: [sep.join(_text(v) for v in values)] if values else []


@_pipe("replace")
def _replace(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 2)
    old, new = _literal_texts(args)
    return lambda values, ctx: [_text(v).replace(old, new) for v in values]


_NUMERIC_DIRECTIVES = {
    "d": r"\d{1,2}",
    "m": r"\d{1,2}",
    "Y": r"\d{4}",
    "H": r"\d{1,2}",
    "M": r"\d{1,2}",
    "S": r"\d{1,2}",
}


def _fast_format(fmt: str) -> re.Pattern[str] | None:
    """A regular expression for a format of numeric fields only (%d/%m/%Y %H:%M), which parses
    the way strptime does at a tenth of its cost; None for any other directive."""
    pattern, i = "", 0
    while i < len(fmt):
        if fmt[i] == "%":
            directive = fmt[i + 1 : i + 2]
            if directive not in _NUMERIC_DIRECTIVES or f"(?P<{directive}>" in pattern:
                return None
            pattern += f"(?P<{directive}>{_NUMERIC_DIRECTIVES[directive]})"
            i += 2
        else:
            pattern += re.escape(fmt[i])
            i += 1
    return re.compile(pattern + r"\Z")


def _parser(fmt: str) -> Callable[[str], dt.datetime | None]:
    fast = _fast_format(fmt)
    if fast is None:

        def slow(text: str) -> dt.datetime | None:
            try:
                return dt.datetime.strptime(text, fmt)
            except ValueError:
                return None

        return slow

    def quick(text: str) -> dt.datetime | None:
        match = fast.match(text)
        if match is None:
            return None
        parts = match.groupdict()
        try:
            return dt.datetime(
                int(parts["Y"]) if "Y" in parts else 1900,
                int(parts.get("m", 1)),
                int(parts.get("d", 1)),
                int(parts.get("H", 0)),
                int(parts.get("M", 0)),
                int(parts.get("S", 0)),
            )
        except ValueError:
            return None  # 31/02/1990: the right shape, not a real date

    return quick


def _strptime(formats: list[str]) -> Callable[[str], dt.datetime]:
    parsers = [_parser(fmt) for fmt in formats]
    shown = " or ".join(formats)

    def parse(text: str) -> dt.datetime:
        for parser in parsers:
            moment = parser(text)
            if moment is not None:
                return moment
        raise FieldError(f"{text!r} does not fit the format {shown}")

    return parse


@_pipe("date")
def _date(args: list[Expr], env: CompileEnv) -> Step:
    formats = _literal_texts(args) or ["%Y-%m-%d"]
    parse = _strptime(formats)

    def run(values: list[Any], ctx: Ctx) -> list[Any]:
        return [parse(_text(v)).date().isoformat() for v in values]

    return run


def _fhir_datetime(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LONDON)
    return moment.isoformat(timespec="seconds" if not moment.microsecond else "milliseconds")


def _iso_datetime(text: str) -> dt.datetime:
    if "T" not in text and " " not in text:
        raise FieldError(f"{text!r} has no time of day (expected ISO 8601 date and time)")
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise FieldError(f"{text!r} is not an ISO 8601 date and time") from None


@_pipe("datetime")
def _datetime(args: list[Expr], env: CompileEnv) -> Step:
    formats = _literal_texts(args)
    if formats:
        parse = _strptime(formats)
        return lambda values, ctx: [_fhir_datetime(parse(_text(v))) for v in values]
    return lambda values, ctx: [_fhir_datetime(_iso_datetime(_text(v))) for v in values]


_HL7_TS = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(\d{2})?(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?([+-]\d{4})?\Z"
)


def hl7_datetime(text: str) -> str:
    """HL7 v2 TS/DTM -> FHIR date or dateTime, keeping the precision it was sent with."""
    match = _HL7_TS.match(text)
    if match is None:
        raise FieldError(f"{text!r} is not an HL7 date/time (YYYY[MM[DD[HHMM[SS]]]][+ZZZZ])")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        if hour is None:
            parts = [p for p in (year, month, day) if p]
            dt.date(int(year), int(month or 1), int(day or 1))
            return "-".join(parts)
        micro = int((fraction or "0").ljust(6, "0"))
        moment = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute or 0), int(second or 0), micro
        )
    except ValueError as exc:
        raise FieldError(f"{text!r} is not a real date/time ({exc})") from None
    if offset:
        sign = 1 if offset[0] == "+" else -1
        delta = dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
        moment = moment.replace(tzinfo=dt.timezone(sign * delta))
    return _fhir_datetime(moment)


PIPE["hl7_datetime"] = _each_text(hl7_datetime)


@_pipe("map")
def _map(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 1)
    (name,) = _literal_texts(args)
    value_map = env.value_map(name)

    def run(values: list[Any], ctx: Ctx) -> list[Any]:
        found: list[Any] = []
        for value in values:
            try:
                found.extend(value_map.lookup(_text(value)))
            except UnmappedValue as exc:
                raise FieldError(str(exc)) from None
        return found

    return run


@_pipe("lookup")
def _lookup(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 2)
    name, column = _literal_texts(args)
    table = env.table(name)
    if column not in table.columns:
        known = ", ".join(sorted(table.columns))
        raise ExpressionError(f"table {name!r} has no column {column!r} (columns: {known})")

    def run(values: list[Any], ctx: Ctx) -> list[Any]:
        found = []
        for value in values:
            row = table.row(_text(value))
            text = row.get(column, "").strip() if row is not None else ""
            if text:
                found.append(text)
        return found

    return run


def _coding_part(part: str) -> Callable[[list[Expr], CompileEnv], Step]:
    def factory(args: list[Expr], env: CompileEnv) -> Step:
        _arity(args, 0)
        return lambda values, ctx: [
            v[part] for v in values if isinstance(v, dict) and v.get(part) is not None
        ]

    return factory


for _part in ("code", "display", "system"):
    PIPE[_part] = _coding_part(_part)


@_pipe("get")
def _get(args: list[Expr], env: CompileEnv) -> Step:
    """`get('reference')`: one named part of each object (a Reference `ref` made, a Coding)."""
    _arity(args, 1)
    (part,) = _literal_texts(args)
    return _coding_part(part)([], env)


def _nhs_digits(text: str) -> str:
    return re.sub(r"[\s-]", "", text)


PIPE["nhs_number"] = _each_text(lambda t: d if nhs_number_is_valid(d := _nhs_digits(t)) else None)
PIPE["invalid_nhs_number"] = _each_text(
    lambda t: None if nhs_number_is_valid(d := _nhs_digits(t)) else (d or None)
)

PIPE["postcode"] = _each_text(normalise_postcode)
# A short stable key made from text that must not itself appear in an identifier (a relative's
# name): 16 hex digits of its SHA-256.
PIPE["hash"] = _each_text(lambda t: hashlib.sha256(t.encode()).hexdigest()[:16])


def _to_int(value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise FieldError(f"{value!r} is not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = _text(value).strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    raise FieldError(f"{value!r} is not a whole number")


def _to_decimal(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    try:
        number = Decimal(_text(value).strip())
    except InvalidOperation:
        raise FieldError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise FieldError(f"{value!r} is not a number")
    return (
        int(number)
        if number == number.to_integral_value() and "." not in str(value)
        else float(number)
    )


def to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).strip().lower()
    if text in ("true", "y", "yes", "1"):
        return True
    if text in ("false", "n", "no", "0"):
        return False
    raise FieldError(f"{value!r} is not true or false")


def _convert(convert: Callable[[Any], Any]) -> Callable[[list[Expr], CompileEnv], Step]:
    def factory(args: list[Expr], env: CompileEnv) -> Step:
        _arity(args, 0)
        return lambda values, ctx: [convert(v) for v in values]

    return factory


PIPE["int"] = _convert(_to_int)
PIPE["decimal"] = _convert(_to_decimal)
PIPE["string"] = _convert(_text)
PIPE["boolean"] = _convert(to_boolean)


def _aggregate(fold: Callable[[list[Any]], Any]) -> Callable[[list[Expr], CompileEnv], Step]:
    def factory(args: list[Expr], env: CompileEnv) -> Step:
        _arity(args, 0)
        return lambda values, ctx: [fold([_to_decimal(v) for v in values])] if values else []

    return factory


PIPE["sum"] = _aggregate(sum)
PIPE["mean"] = _aggregate(statistics.fmean)


@_pipe("count")
def _count(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 0)
    return lambda values, ctx: [len(values)]


@_pipe("round")
def _round(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 0, 1)
    places = _to_int(_literal_texts(args)[0]) if args else 0
    step = Decimal(1).scaleb(-places)

    def half_up(value: Any) -> Any:
        # Scores are rounded as people do (3.625 -> 3.63), not to even as float round() does.
        rounded = Decimal(str(_to_decimal(value))).quantize(step, rounding=ROUND_HALF_UP)
        return int(rounded) if places <= 0 else float(rounded)

    return lambda values, ctx: [half_up(v) for v in values]


@_pipe("first")
def _first(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 0)
    return lambda values, ctx: values[:1]


@_pipe("last")
def _last(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 0)
    return lambda values, ctx: values[-1:]


@_pipe("default")
def _default(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 1)
    fallback = args[0].run
    return lambda values, ctx: values if values else fallback(ctx)


@_pipe("required")
def _required(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 0, 1)
    (reason,) = _literal_texts(args) or ["is required but empty"]

    def run(values: list[Any], ctx: Ctx) -> list[Any]:
        if not values:
            raise FieldError(reason)
        return values

    return run


def _compare(args: list[Expr], test: Callable[[set[str], list[Any]], bool]) -> Step:
    runs = [arg.run for arg in args]

    def run(values: list[Any], ctx: Ctx) -> list[Any]:
        wanted = {_text(v) for r in runs for v in r(ctx)}
        return [test(wanted, values)]

    return run


def _matches_any(wanted: set[str], values: list[Any]) -> bool:
    return any(_text(v) in wanted for v in values)


@_pipe("eq")
def _eq(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 1)
    return _compare(args, _matches_any)


@_pipe("ne")
def _ne(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 1)
    return _compare(args, lambda wanted, values: not _matches_any(wanted, values))


@_pipe("in")
def _in(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 1, 99)
    return _compare(args, _matches_any)


@_pipe("matches")
def _matches(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 1)
    (pattern,) = _literal_texts(args)
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ExpressionError(f"{pattern!r} is not a regular expression: {exc}") from None
    return lambda values, ctx: [any(regex.fullmatch(_text(v)) for v in values)]


@_pipe("exists")
def _exists(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 0)
    return lambda values, ctx: [truthy(values)]


@_pipe("not")
def _not(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 0)
    return lambda values, ctx: [not truthy(values)]


@_pipe("resolve")
def _resolve(args: list[Expr], env: CompileEnv) -> Step:
    _arity(args, 0)
    if env.fmt.name != "stu3-bundle":
        raise ExpressionError("works only on stu3-bundle sources")

    def run(values: list[Any], ctx: Ctx) -> list[Any]:
        found = []
        for value in values:
            reference = value.get("reference") if isinstance(value, dict) else value
            target = ctx.data.resolve(reference) if isinstance(reference, str) else None
            if target is not None:
                found.append(target)
        return found

    return run


@_term("concat")
def _concat(args: list[Expr], env: CompileEnv) -> Run:
    _arity(args, 1, 99)
    runs = [arg.run for arg in args]

    def run(ctx: Ctx) -> list[Any]:
        parts = []
        for part in runs:
            values = part(ctx)
            if not values:
                return []
            parts.append(_text(values[0]))
        return ["".join(parts)]

    return run


@_term("list")
def _list(args: list[Expr], env: CompileEnv) -> Run:
    _arity(args, 1, 99)
    runs = [arg.run for arg in args]
    return lambda ctx: [value for part in runs for value in part(ctx)]


@_term("position")
def _position(args: list[Expr], env: CompileEnv) -> Run:
    _arity(args, 0)
    return lambda ctx: [ctx.index] if ctx.index else []


@_term("coalesce")
def _coalesce(args: list[Expr], env: CompileEnv) -> Run:
    _arity(args, 1, 99)
    runs = [arg.run for arg in args]

    def run(ctx: Ctx) -> list[Any]:
        for part in runs:
            values = part(ctx)
            if values:
                return values
        return []

    return run


@_term("if")
def _if(args: list[Expr], env: CompileEnv) -> Run:
    _arity(args, 2, 3)
    test, then = args[0].run, args[1].run
    otherwise = args[2].run if len(args) == 3 else (lambda ctx: [])
    return lambda ctx: then(ctx) if truthy(test(ctx)) else otherwise(ctx)


def conditional_reference(resource_type: str, system: str, value: str) -> dict[str, str]:
    """A reference by business identifier, resolved by the store inside a transaction: a
    search URL, so `+`, `&`, `#`, `%` and spaces in the identifier are percent-encoded (a `+`
    would read as a space: a time zone offset in a key, `...T11:20:00+01:00`) and `\\ | , $`
    escaped as FHIR search values are."""
    escaped = re.sub(r"([\\|,$])", r"\\\1", value)
    token = f"{quote(system, safe=_QUERY_SAFE)}|{quote(escaped, safe=_QUERY_SAFE)}"
    return {"reference": f"{resource_type}?identifier={token}"}


# Characters left as they are in a search value: all but those with a meaning in a query string.
_QUERY_SAFE = "/:@!$'()*,;=|\\~-._"


@_term("ref")
def _ref(args: list[Expr], env: CompileEnv) -> Run:
    _arity(args, 1)
    (target,) = _literal_texts(args)
    if target not in env.resources:
        known = ", ".join(sorted(env.resources)) or "none"
        raise ExpressionError(f"no resource with id {target!r} in this mapping (ids: {known})")
    if not env.resources[target]:
        raise ExpressionError(
            f"{target!r} is made once per item (each:), so it cannot be referenced"
        )

    def run(ctx: Ctx) -> list[Any]:
        key = ctx.keys.get(target)
        return [conditional_reference(*key)] if key else []

    return run


@_term("reference")
def _reference(args: list[Expr], env: CompileEnv) -> Run:
    _arity(args, 3)
    (resource_type,) = _literal_texts(args[:1])
    system, value = args[1].run, args[2].run

    def run(ctx: Ctx) -> list[Any]:
        systems, values = system(ctx), value(ctx)
        if not systems or not values:
            return []
        return [conditional_reference(resource_type, _text(systems[0]), _text(values[0]))]

    return run
