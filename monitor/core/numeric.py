"""Numbers from cells: decimals written with thousands separators or full-width digits, amounts in
万元 as exact integer fen, indicator numbers as canonical decimal text (also when followed by a unit
word). Bad values raise ValueError with an English and Chinese message; every function is pure.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from monitor.core.cells import SPACES, cell_text, float_decimal
from monitor.core.model import FEN_PER_WAN

MAX_FEN = 10**18  # ~1e12 万元: far above any budget, safely inside a BIGINT
_NUMBER = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$|^[+-]?\.\d+$")


def _normalize_number_text(text: str) -> str:
    """NFKC (full-width digits, comma and point to ASCII), Chinese comma as comma, no spaces."""
    return SPACES.sub("", unicodedata.normalize("NFKC", text).replace("、", ","))


def to_decimal(value: object) -> Decimal:
    """A number from a cell: `1,234.50`, ` 12 `, `１，２３４．５`, 1234.5; commas only as thousands."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number（不是数字）")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return float_decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value!r} is not a finite number（不是有效数字）")
        return value
    text = cell_text(value)
    if not _NUMBER.match(text) and not _NUMBER.match(text := _normalize_number_text(text)):
        raise ValueError("must be a number such as 1,234.50（须为数字，如 1,234.50）")
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation as exc:  # unreachable after the regex; kept as a guard
        raise ValueError("must be a number such as 1,234.50（须为数字）") from exc


_WAN = re.compile(r"万元?$")
_PLAIN_AMOUNT = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,6}))?")  # below MAX_FEN, whole fen: no checks left


def parse_amount(value: object, positive: bool = False) -> int:
    """An amount in 万元 as exact integer fen (1 万元 = 1,000,000 分); a trailing `万元`/`万` is allowed.

    Rejects negatives (and 0 if `positive`), non-numbers, NaN/inf and precision finer than 0.01 元
    (more than 6 decimals).
    """
    if type(value) is str and (plain := _PLAIN_AMOUNT.fullmatch(value)):  # `1234.5`: no Decimal needed
        whole, decimals = plain.groups()
        exact = int(whole) * FEN_PER_WAN + (int(decimals.ljust(6, "0")) if decimals else 0)
        if exact or not positive:
            return exact
    if isinstance(value, str) and not _NUMBER.match(value := value.strip()):
        value = _WAN.sub("", _normalize_number_text(value))
    try:
        amount = to_decimal(value)
    except ValueError as exc:
        raise ValueError(
            "must be an amount in 万元 such as 1,234.50（须为以万元为单位的金额，如 1,234.50）"
        ) from exc
    if positive and amount <= 0:
        raise ValueError("must be a positive amount in 万元（须为大于0的金额，单位万元）")
    if amount < 0:
        raise ValueError("must not be negative（金额不能为负数）")
    fen = amount * FEN_PER_WAN
    if fen != fen.to_integral_value():
        raise ValueError(
            "has more than 6 decimals in 万元 (finer than 0.01 元)（万元金额最多保留6位小数，即精确到分）"
        )
    if fen >= MAX_FEN:
        raise ValueError("is implausibly large for an amount in 万元（金额过大，请确认单位为万元）")
    return int(fen)


def canonical_decimal(number: Decimal) -> str:
    """`120000`, `98.6`, `0`: normalised, no exponent, no superfluous zeros, never `-0`."""
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "0") else text


_PERCENT = re.compile(r"[%％]$")


def parse_number(value: object) -> str:
    """An indicator number as a canonical decimal; a trailing `%` is dropped (the value is already in
    the indicator's unit, so `98.6%` is 98.6)."""
    if isinstance(value, str):
        value = _PERCENT.sub("", value.strip())
    return canonical_decimal(to_decimal(value))


_CANONICAL = re.compile(r"(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{0,11}[1-9])?")  # within Decimal's precision
_NUMBER_WITH_UNIT = re.compile(r"^([+-]?[\d,.]+)\s*([^\d\s.,+\-年月日前后底]{1,6})$")  # not 10月底前


def number_or_none(text: str, measure_unit: str = "") -> str | None:
    """The canonical decimal in `text` if it is a number, optionally followed by `%`, the indicator's
    measure unit or another short unit word (`30000头`, `31小时`, but not `10月底前`); otherwise None."""
    if _CANONICAL.fullmatch(text):  # `100`, `86.5`: already what canonical_decimal would give
        return text
    if _NUMBER.match(text):
        return canonical_decimal(Decimal(text.replace(",", "")))
    normalized = _normalize_number_text(text)
    candidates = [normalized]
    unit = _normalize_number_text(measure_unit)
    if unit and normalized.endswith(unit):
        candidates.append(normalized[: -len(unit)])
    m = _NUMBER_WITH_UNIT.match(normalized)
    if m:
        candidates.append(m.group(1))
    for candidate in candidates:
        try:
            return parse_number(candidate)
        except ValueError:
            continue
    return None
