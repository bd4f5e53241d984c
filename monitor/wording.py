"""Numbers into the words a unit reads: percentages, 万元 amounts and threshold phrases.
Ratios compared with a threshold are truncated, never rounded up, so a shown value always lands on
the same side of the threshold as the exact value (59.99 % shows as 59.9 %, not 60.0 %).
"""

from __future__ import annotations

import functools
from decimal import Decimal
from fractions import Fraction

from monitor import model


def pct_floor(x: Fraction, digits: int = 1) -> str:
    """`x` as a percentage truncated towards minus infinity: 0.59996 → '59.9%'."""
    return pct_floor_nd(x.numerator, x.denominator, digits)


def pct_floor_nd(n: int, d: int, digits: int = 1) -> str:
    """n/d (d > 0) as a percentage truncated towards minus infinity, exactly, in integers."""
    return f"{Decimal((n * 100 * 10**digits) // d).scaleb(-digits)}%"


def pct_ceil_nd(n: int, d: int, digits: int = 1) -> str:
    """n/d (d > 0) as a percentage rounded up: a value above a threshold never reads as equal to it."""
    return f"{Decimal(-((-n * 100 * 10**digits) // d)).scaleb(-digits)}%"


def pct(x: Fraction | float, digits: int = 1) -> str:
    """`x` as a rounded percentage: 5/12 → '41.7%'."""
    return f"{float(x) * 100:.{digits}f}%"


@functools.lru_cache(maxsize=256)
def pct_threshold(x: Fraction | Decimal) -> str:
    """A threshold as the shortest exact percentage: 0.6 → '60%', 0.055 → '5.5%'."""
    d = Decimal(x.numerator) / Decimal(x.denominator) if isinstance(x, Fraction) else x
    s = format((d * 100).normalize(), "f")
    return f"{s}%"


def wan(fen: int) -> str:
    """fen as 万元 with two decimals and the unit: 11800000000 → '11,800.00万元'."""
    return f"{model.wan(fen)}万元"
