"""Working-day arithmetic for deadlines: a start date and N in, the date N working days later out.
The State Council's calendar of public holidays and weekend days worked in lieu (调休) comes from
the `chinesecalendar` package (the years it knows; other years: Monday to Friday); the config's
`holidays` and `extra_workdays` override it, for a local holiday or a year the package does not know
yet. Also how a day and a moment are written for people: a date in Chinese, a time in the bureau's
zone with its offset.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import chinese_calendar


def is_working_day(day: dt.date, holidays: frozenset[dt.date], extra_workdays: frozenset[dt.date]) -> bool:
    """The config's days first (extra_workdays work, holidays rest), then the official calendar."""
    if day in extra_workdays:
        return True
    if day in holidays:
        return False
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # a year the package does not cover yet
        return day.weekday() < 5


def add_working_days(
    start: dt.date, n: int, holidays: Iterable[dt.date] = (), extra_workdays: Iterable[dt.date] = ()
) -> dt.date:
    """The n-th working day after `start` (the start day itself does not count)."""
    hol, extra = frozenset(holidays), frozenset(extra_workdays)
    day, left = start, n
    while left > 0:
        day += dt.timedelta(days=1)
        if is_working_day(day, hol, extra):
            left -= 1
    return day


def chinese_date(day: dt.date) -> str:
    """2025-06-25 → '2025年6月25日'."""
    return f"{day.year}年{day.month}月{day.day}日"


def local_time(moment: dt.datetime, time_zone: str) -> str:
    """A moment as a person reads it, in the bureau's zone with the offset: '2025-09-11 09:00+08:00'
    (a naive moment, as stored, is UTC)."""
    return as_utc(moment).astimezone(ZoneInfo(time_zone)).isoformat(" ", "minutes")


def as_utc(moment: dt.datetime) -> dt.datetime:
    """Timestamps are stored in UTC (SQLModel's UTCDateTime) on SQLite and PostgreSQL alike; a naive
    value is taken to be UTC already."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
