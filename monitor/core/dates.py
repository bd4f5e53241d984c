"""Dates and checkpoints from cells: ISO `2025-06-30` from the ways a date is written or an Excel
date, a checkpoint `YYYY-MM` from `2025年1-5月`, `202505` and the like. Bad values raise ValueError
with an English and Chinese message; every function is pure.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from functools import lru_cache

from monitor.core.cells import cell_text
from monitor.core.model import Checkpoint

_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:\s+0{1,2}:00(?::00)?)?$")
_DATE_LIKE = re.compile(r"^\d{4}\s*[-/.年]\s*\d{1,2}(?:\s*[-/.月]\s*\d{1,2}\s*日?|\s*月?)$")


def parse_date(value: object) -> str:
    """A date as ISO `2025-06-30` from `2025/6/30`, `2025.6.30`, `2025年6月30日` or an Excel date."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = unicodedata.normalize("NFKC", cell_text(value))
    m = _DATE.match(text)
    if m:
        try:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
        except ValueError:
            pass
    raise ValueError("must be a date such as 2025-06-30（须为日期，如 2025-06-30）")


def looks_like_date(text: str) -> bool:
    """Text shaped like a date or a year-month (`2025-13-01`, `2025年6月`), valid or not."""
    return bool(_DATE_LIKE.match(unicodedata.normalize("NFKC", text)))


_CHECKPOINTS = (
    re.compile(r"^(\d{4})\s*[-/.]\s*(\d{1,2})$"),  # 2025-05, 2025-5, 2025/5, 2025.05
    re.compile(r"^(\d{4})\s*年\s*(?:1\s*[-~至到—–]\s*)?(\d{1,2})\s*月?$"),  # 2025年5月, 2025年1-5月
    re.compile(r"^(\d{4})(\d{2})$"),  # 202505
)
_AMBIGUOUS_OCTOBER = re.compile(r"^\d{4}\.1$")  # an Excel number 2025.10 arrives as 2025.1


def parse_checkpoint(value: object) -> str:
    """A checkpoint `YYYY-MM` from `2025-05`, `2025-5`, `2025年5月`, `2025年1-5月`, `202505` or a date."""
    if isinstance(value, dt.date):
        return f"{value.year:04d}-{value.month:02d}"
    text = cell_text(value)
    if isinstance(value, float) and _AMBIGUOUS_OCTOBER.match(text):
        raise ValueError("is ambiguous: 2025.1 or 2025.10? write it as text 2025-10（请写作 2025-10）")
    return _checkpoint_text(text)


@lru_cache(maxsize=1024)  # a file repeats the same checkpoint on every row
def _checkpoint_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    for pattern in _CHECKPOINTS:
        m = pattern.match(text)
        if m and 1 <= int(m.group(2)) <= 12:
            return str(Checkpoint.parse(f"{m.group(1)}-{int(m.group(2)):02d}"))
    raise ValueError("must be a month such as 2025-05（监控期须为年月，如 2025-05）")
