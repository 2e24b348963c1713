"""Dates as advisories write them: the UK form ``HH:MM DD/MM/YYYY`` in local time,
also ``DD/MM/YYYY [HH:MM]`` and ISO 8601. Naive values are local to the force's zone.

A year outside :data:`YEARS` is impossible for an advisory and refused. A date more
than :data:`MAX_SKEW` ahead of the clock is a publisher's mistake (a typo, a wrong
zone, an embargo left in): :func:`clamp_future` takes it as the time first seen, so it
cannot sort first in every feed for ever."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from alerts.text import one_line

LONDON = ZoneInfo("Europe/London")
#: The years an advisory's date may fall in.
YEARS = range(1900, 2201)
#: How far ahead of our clock a date may be (clocks and zones differ).
MAX_SKEW = timedelta(days=1)

_UK_TIME_FIRST = re.compile(r"^(\d{1,2}):(\d{2})\s+(\d{1,2})/(\d{1,2})/(\d{4})$")
_UK_DATE_FIRST = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:,?\s+(\d{1,2}):(\d{2}))?$")


class BadDate(ValueError):
    """Not a date in a form we read, or an impossible one (31/02/2020, 25:00)."""


def parse_date(value: object, zone: ZoneInfo = LONDON) -> datetime:
    """An aware datetime from a front-matter date value.

    Local wall-clock times are read in ``zone``; in the autumn hour that happens twice
    the first (summer-time) instant is taken, and a time in the spring gap is read as
    winter time, so it lands an hour later on the clock, as the clocks did. The result
    carries the fixed UTC offset in force then (``+01:00`` in British Summer Time).
    """
    if isinstance(value, datetime):
        return _aware(value, zone)
    if isinstance(value, date):
        return _aware(datetime.combine(value, time(0, 0)), zone)
    if not isinstance(value, str):
        raise BadDate(f"expected a date such as '14:30 18/12/2020', got {_shown(value)}")
    text = " ".join(value.split())
    try:
        if match := _UK_TIME_FIRST.match(text):
            hour, minute, day, month, year = map(int, match.groups())
            return _aware(datetime(year, month, day, hour, minute), zone)
        if match := _UK_DATE_FIRST.match(text):
            day, month, year = map(int, match.groups()[:3])
            hour, minute = (int(match.group(4)), int(match.group(5))) if match.group(4) else (0, 0)
            return _aware(datetime(year, month, day, hour, minute), zone)
    except ValueError as exc:
        raise BadDate(f"impossible date {_shown(value)}: {exc}") from None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadDate(
            f"unreadable date {_shown(value)}; write it as 'HH:MM DD/MM/YYYY' such as 14:30 18/12/2020, or ISO 8601"
        ) from None
    return _aware(parsed, zone)


def _shown(value: object) -> str:
    """The bad value for a one-line error message: quoted, one line, at most 60 characters."""
    return one_line(repr(value), limit=60)


def _aware(value: datetime, zone: ZoneInfo) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone, fold=0)
    if value.year not in YEARS:
        raise BadDate(
            f"impossible year {value.year} (an advisory is dated {YEARS[0]} to {YEARS[-1]})"
        )
    # A fixed offset, not the zone: Python never finds a zone-aware time in the repeated
    # autumn hour equal to the same instant in another zone (PEP 495), which would make
    # comparisons quietly wrong. The offset is still the local one (+01:00 in summer).
    return value.astimezone(timezone(value.utcoffset() or timedelta(0)))


def clamp_future(moment: datetime, now: datetime) -> datetime | None:
    """None when ``moment`` is within :data:`MAX_SKEW` of ``now`` or before it; else
    the instant to use instead: ``now``, the time it was first seen (the store keeps
    the first-seen time of an advisory whose date is assumed)."""
    return now if moment > now + MAX_SKEW else None
