"""FHIR date, dateTime and instant values as half-open ranges of epoch milliseconds.

A FHIR date is a range at its own precision: "2026" covers the whole year, "2026-10-01T10:00"
the whole minute. Search compares ranges (FHIR R4 search §3.1.1.5.5), so both indexed values and
search values become [low, high). A value without a time zone is taken as UTC.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone

# Far enough apart for any real date; within SQLite's 64-bit integers.
MIN_MS = -(2**62)
MAX_MS = 2**62

_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


class DateFormatError(ValueError):
    pass


def _tz(text: str | None) -> timezone:
    if not text or text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def date_range(value: str) -> tuple[int, int]:
    """Return [low, high) in epoch ms for a FHIR date/dateTime/instant, at its precision."""
    match = _DATE.fullmatch(value.strip())
    if not match:
        raise DateFormatError(f"not a FHIR date or dateTime: {value!r}")
    g = match.groupdict()
    try:
        year = int(g["y"])
        if g["m"] is None:
            return _ms(datetime(year, 1, 1, tzinfo=UTC)), _ms(datetime(year + 1, 1, 1, tzinfo=UTC))
        month = int(g["m"])
        if g["d"] is None:
            start = datetime(year, month, 1, tzinfo=UTC)
            days = calendar.monthrange(year, month)[1]
            return _ms(start), _ms(start + timedelta(days=days))
        day = int(g["d"])
        if g["H"] is None:
            start = datetime(year, month, day, tzinfo=UTC)
            return _ms(start), _ms(start + timedelta(days=1))
        tz = _tz(g["tz"])
        start = datetime(year, month, day, int(g["H"]), int(g["M"]), tzinfo=tz)
        if g["S"] is None:
            return _ms(start), _ms(start + timedelta(minutes=1))
        start = start.replace(second=int(g["S"]))
        if g["f"] is None:
            return _ms(start), _ms(start + timedelta(seconds=1))
        fraction = g["f"][:3].ljust(3, "0")
        low = _ms(start) + int(fraction)
        return low, low + 1
    except ValueError as exc:
        raise DateFormatError(f"not a valid date: {value!r} ({exc})") from None


def instant_ms(value: str) -> int:
    return date_range(value)[0]


def format_instant(ms: int) -> str:
    """Epoch ms -> FHIR instant with millisecond precision in UTC ("...T10:00:00.000Z")."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def http_date(ms: int) -> str:
    """Epoch ms -> RFC 9110 date for the Last-Modified header."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")


def now_ms() -> int:
    return _ms(datetime.now(tz=UTC))
