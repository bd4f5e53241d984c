"""Numbers into the words a reader sees: percentages, 万元 amounts and threshold phrases; a light's
word and colours, a checkpoint's period (2025年1-8月).

One way to show a ratio, everywhere (e-mails, reports, Excel, web pages, `monitor results`,
`monitor explain`): a percentage with one decimal, `23.5%`. A measured ratio (execution rate, r, a
share, an indicator's completion or deviation) is cut, never rounded to nearest, so its shown value
lies on the same side of every threshold as the exact value and explains its colour: truncated
(59.99 % shows as 59.9 %, not as the 60.0 % it is red for being below), and a deviation judged
"more than the tolerance" rounded up when it is more (5.01 % shows as 5.1 %). Where a threshold has
more decimals than that (0.6055), the reason shows as many (60.54 %). Time progress is a date, not a
result: rounded (5/12 → 41.7 %). Thresholds are shown exactly (60%, 5.5%). An Excel cell holds the
shown ratio (`shown`) in the format `PERCENT`, so it reads the same.
"""

from __future__ import annotations

import functools
import unicodedata
from decimal import Decimal
from fractions import Fraction

from monitor.core import model

Number = Fraction | Decimal | float | int
PERCENT = "0.0%"  # the Excel number format of a ratio cell: one decimal, like `percent`
DIGITS = 1  # decimals of a shown percentage


def _exact(x: Number) -> tuple[int, int]:
    """x as n/d (d > 0), exactly; a float as the shortest decimal that reads back as it (0.6, not
    0.59999999999999997779…), which is the ratio it was computed as."""
    if isinstance(x, float):
        return Decimal(repr(x)).as_integer_ratio()
    return x.as_integer_ratio()


def _cut(n: int, d: int, up: bool, digits: int) -> int:
    """n/d in units of 10^-(2+digits), truncated towards −∞ (or rounded up)."""
    scaled: int = n * 100 * 10**digits
    return -(-scaled // d) if up else scaled // d


def percent_nd(n: int, d: int, *, up: bool = False, digits: int = DIGITS) -> str:
    """n/d (d > 0) as the shown percentage, in integers: 2357/10000 → '23.5%'."""
    return f"{Decimal(_cut(n, d, up, digits)).scaleb(-digits)}%"


def percent(x: Number | None, *, up: bool = False, digits: int = DIGITS) -> str:
    """A ratio as every reader sees it: 0.23571 → '23.5%', 0.5999 → '59.9%'; '' for None."""
    if x is None:
        return ""
    return percent_nd(*_exact(x), up=up, digits=digits)


def shown(x: Number | None, *, up: bool = False) -> Decimal | None:
    """The ratio `percent` shows, as a number for an Excel cell of format PERCENT: 0.23571 → 0.235."""
    if x is None:
        return None
    return Decimal(_cut(*_exact(x), up, DIGITS)).scaleb(-2 - DIGITS)


def progress(p: Number) -> str:
    """Time progress P, rounded half up (it is compared with nothing): 5/12 → '41.7%'."""
    n, d = _exact(p)
    scaled: int = n * 100 * 10**DIGITS
    return f"{Decimal((2 * scaled + d) // (2 * d)).scaleb(-DIGITS)}%"


@functools.lru_cache(maxsize=256)
def digits_for(*thresholds: Fraction | Decimal) -> int:
    """Decimals a percentage needs so that every threshold is exact at it (at least DIGITS): a value
    cut to them then never reads as equal to a threshold it is below. 0.6 → 1; 0.6055 → 2."""
    out = DIGITS
    for t in thresholds:
        n, d = t.as_integer_ratio()
        k = out
        while (n * 100 * 10**k) % d and k < 12:
            k += 1
        out = max(out, k)
    return out


@functools.lru_cache(maxsize=256)
def pct_threshold(x: Fraction | Decimal) -> str:
    """A threshold as the shortest exact percentage: 0.6 → '60%', 0.055 → '5.5%'."""
    d = Decimal(x.numerator) / Decimal(x.denominator) if isinstance(x, Fraction) else x
    s = format((d * 100).normalize(), "f")
    return f"{s}%"


def wan(fen: int) -> str:
    """fen as 万元 with two decimals and the unit: 11800000000 → '11,800.00万元'."""
    return f"{model.wan(fen)}万元"


WORD = {"green": "绿", "yellow": "黄", "red": "红", "blue": "蓝", "na": "不可测", None: "未报送"}
WORD_EXEMPT = "已豁免"  # a digest's change of a project to or from an exemption (no 灯 after it)
# (text, background): readable when printed; the word (红/黄/绿) always goes with the colour.
COLOUR = {
    "green": ("#1e6b34", "#dff3e4"),
    "yellow": ("#7a5200", "#fff1c2"),
    "red": ("#a4161a", "#fde0e0"),
    "blue": ("#1f4e8c", "#e0ecfa"),
    "na": ("#555555", "#eeeeee"),
    None: ("#555555", "#eeeeee"),
}


def period(checkpoint: str) -> str:
    """'2025-05' → '2025年1-5月'."""
    year, month = checkpoint.split("-")
    return f"{year}年1-{int(month)}月"


def light(value: str | None) -> dict[str, str]:
    fg, bg = COLOUR.get(value, COLOUR[None])
    return {"light": value or "", "word": WORD.get(value, value or ""), "fg": fg, "bg": bg}


def display_width(text: str) -> int:
    """Columns `text` takes in a table or chart: CJK (wide) characters count 2."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
