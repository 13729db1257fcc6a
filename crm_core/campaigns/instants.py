"""The range of moments and durations a campaign may name (``send_at``, segment dates, cron runs).

Each is checked where a campaign is created or scheduled, so the dispatcher
never meets a value it cannot compute with: a date near year 1 or 9999 in
another zone overflows on conversion to UTC, and a huge duration overflows
when subtracted from now.
"""

from __future__ import annotations

import datetime as dt

EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
# A segment's "within the last …" duration: a century covers any real history.
MAX_DURATION = dt.timedelta(days=36_525)
# A recurring campaign must run again within this long.
MAX_CRON_GAP = dt.timedelta(days=5 * 366)

RANGE_MESSAGE = f"must be between {EARLIEST.date()} and {LATEST.date()} (UTC)"


def to_utc(instant: dt.datetime) -> dt.datetime:
    """``instant`` (aware) in UTC; ValueError when it is outside ``EARLIEST``..``LATEST``."""
    try:
        converted = instant.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(RANGE_MESSAGE) from None
    if not EARLIEST <= converted <= LATEST:
        raise ValueError(RANGE_MESSAGE)
    return converted


def check_duration(delta: dt.timedelta) -> dt.timedelta:
    """``delta`` if it is between zero and ``MAX_DURATION``; ValueError if not."""
    if delta < dt.timedelta(0):
        raise ValueError("a duration must not be negative")
    if delta > MAX_DURATION:
        raise ValueError(f"a duration must be at most {MAX_DURATION.days} days")
    return delta
