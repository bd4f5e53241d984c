"""Working-day arithmetic for deadlines: a start date and N in, the date N working days later out.
Weekends are not working days; public holidays and weekend days worked in lieu (调休) come from
config.yaml, since Chinese public holidays move every year and no rule computes them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable


def is_working_day(day: dt.date, holidays: frozenset[dt.date], extra_workdays: frozenset[dt.date]) -> bool:
    if day in extra_workdays:
        return True
    return day.weekday() < 5 and day not in holidays


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
