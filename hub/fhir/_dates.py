"""FHIR date, dateTime and instant values as half-open ranges of epoch milliseconds.

A FHIR date is a range at its own precision: "2026" covers the whole year, "2026-10-01T10:00"
the whole minute. Search compares ranges (FHIR R4 search §3.1.1.5.5), so both indexed values and
search values become [low, high). A value without a time zone is taken as UTC.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime

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


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_MS = 86_400_000


def _day_ms(year: int, month: int, day: int) -> int:
    return (date(year, month, day).toordinal() - _EPOCH_ORDINAL) * _DAY_MS


def date_range(value: str) -> tuple[int, int]:
    """Return [low, high) in epoch ms for a FHIR date/dateTime/instant, at its precision."""
    match = _DATE.fullmatch(value.strip())
    if not match:
        raise DateFormatError(f"not a FHIR date or dateTime: {value!r}")
    year, month, day, minute, second, fraction = match.group("y", "m", "d", "M", "S", "f")
    try:
        if month is None:
            return _day_ms(int(year), 1, 1), _day_ms(int(year) + 1, 1, 1)
        if day is None:
            low = _day_ms(int(year), int(month), 1)
            return low, low + calendar.monthrange(int(year), int(month))[1] * _DAY_MS
        if minute is None:
            low = _day_ms(int(year), int(month), int(day))
            return low, low + _DAY_MS
        moment = datetime.fromisoformat(match.group(0))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        low = (
            int(moment.timestamp() * 1000) if fraction is None else round(moment.timestamp() * 1000)
        )
    except ValueError as exc:
        raise DateFormatError(f"not a valid date: {value!r} ({exc})") from None
    if second is None:
        return low, low + 60_000
    if fraction is None:
        return low, low + 1000
    return low, low + 1


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
    return int(datetime.now(tz=UTC).timestamp() * 1000)
