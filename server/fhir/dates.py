"""FHIR date, dateTime and instant values as exact UTC ranges ``[low, high]``.

A value stands for every instant it could mean at its precision: ``2010`` is the
whole year, ``2026-11-23T08:00+07:00`` the minute starting at 01:00 UTC.  Both
stored values and search values become such ranges (naive datetimes in UTC,
``high`` inclusive to the microsecond), so search prefixes compare ranges as
https://hl7.org/fhir/R4/search.html#prefix describes.  A value without a time
zone (dates, partial dateTimes) is read as UTC, the same on write and on search.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

MIN = datetime(1, 1, 1)
MAX = datetime(9999, 12, 31, 23, 59, 59, 999999)
_TICK = timedelta(microseconds=1)

_PATTERN = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


class DateFormatError(ValueError):
    """Not a FHIR date, dateTime or instant."""


def date_range(value: str) -> tuple[datetime, datetime]:
    """The UTC range ``value`` stands for; DateFormatError when it is not a FHIR date."""
    match = _PATTERN.fullmatch(value.strip())
    if match is None:
        raise DateFormatError(f"{value!r} is not a FHIR date, dateTime or instant")
    part = match.groupdict()
    try:
        year = int(part["year"])
        if part["month"] is None:
            return datetime(year, 1, 1), _end(datetime(year, 1, 1), year=1)
        month = int(part["month"])
        if part["day"] is None:
            low = datetime(year, month, 1)
            return low, _end(low, timedelta(days=calendar.monthrange(year, month)[1]))
        day = datetime(year, month, int(part["day"]))
        if part["hour"] is None:
            return day, _end(day, timedelta(days=1))
        return _time_range(day, part)
    except (ValueError, OverflowError) as exc:  # e.g. month 13, February 30th
        raise DateFormatError(f"{value!r} is not a valid date: {exc}") from None


def _time_range(day: datetime, part: dict[str, str | None]) -> tuple[datetime, datetime]:
    low = day.replace(hour=int(part["hour"] or 0), minute=int(part["minute"] or 0))
    if part["second"] is None:
        width = timedelta(minutes=1)
    else:
        fraction = part["fraction"] or ""
        digits = min(len(fraction), 6)
        low = low.replace(second=int(part["second"]), microsecond=int(fraction[:6].ljust(6, "0")))
        width = timedelta(microseconds=10 ** (6 - digits)) if fraction else timedelta(seconds=1)
    zone = part["zone"]
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        if not MIN + offset <= low <= MAX - offset:
            raise DateFormatError(f"{low} with offset {zone} is outside the years 1-9999")
        low -= sign * offset
    return low, _end(low, width)


def _end(low: datetime, width: timedelta | None = None, *, year: int = 0) -> datetime:
    """The last microsecond before ``low + width`` (or ``year`` years later), at most MAX."""
    if year:
        if low.year + year > MAX.year:
            return MAX
        return low.replace(year=low.year + year) - _TICK
    assert width is not None
    return MAX if low > MAX - width else low + width - _TICK


def to_naive_utc(moment: datetime) -> datetime:
    """A stored timestamp (aware, UTC) as the naive UTC the index tables hold."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
