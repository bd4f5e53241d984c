"""What a cell's text is to the rules: an exact number, a date, a self-assessment answer. Decided
once, here, for the pure core and for the set-based form alike (monitor.evaluate.sql stores what
these functions make of every distinct text, so SQL never parses a number)."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal, InvalidOperation

from monitor.core.model import Indicator

Ratio = tuple[int, int]  # an exact number n/d with d > 0: comparisons cross-multiply integers


@functools.lru_cache(maxsize=1 << 16)
def ratio(text: str | None) -> Ratio | None:
    """A canonical decimal string as an exact integer ratio; None if blank or not a number."""
    if not text:
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    if not d.is_finite():
        return None
    return d.as_integer_ratio()


@functools.lru_cache(maxsize=4096)
def date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def answer(text: str) -> str:
    """A self-assessment as the rules list it: without any whitespace."""
    return "".join(text.split())


def show(n: int, d: int) -> str:
    """A computed quantity (e.g. target × P) for reading: integers stay whole, else two decimals."""
    if n % d == 0:
        return f"{n // d:,}"
    try:
        return f"{n / d:,.2f}"
    except OverflowError:  # beyond a double: a number no import lets through, but never a crash
        return f"{Decimal(n) / Decimal(d):,.2f}"


def target_text(ind: Indicator) -> str:
    return f"{ind.direction.value}{ind.target}{ind.measure_unit}"


def quotient(n: int, d: int) -> float | None:
    """n/d (d ≠ 0) as a float for a stored ratio; None beyond a double (the light is decided on the
    exact integers all the same, and the SQL form leaves such numbers without a float too)."""
    try:
        return n / d
    except OverflowError:
        return None


def one_line(text: str) -> str:
    """A text a unit wrote, as a reason quotes it: its line breaks as spaces (reasons are stored one
    per line)."""
    return " ".join(text.splitlines())
