"""Parsing of single cell values from CSV text or Excel cells into the model's canonical forms.
In: str, int, float, date/datetime or None. Out: fen (int), canonical decimal or ISO-date text,
Direction, Kind, checkpoint `YYYY-MM`, clean text. Bad values raise ValueError with an English and
Chinese message saying what was expected; every function is pure.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from monitor.core.model import FEN_PER_WAN, Checkpoint, Direction, Kind

MAX_FEN = 10**18  # ~1e12 万元: far above any budget, safely inside a BIGINT

# --- cells and text ------------------------------------------------------------------------------

_DASHES = frozenset({"-", "--", "—", "——", "–", "/", "／", "－"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")


def is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def cell_text(value: object) -> str:
    """A cell as stripped text: Excel numbers without a spurious `.0`, dates as ISO."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else format(_float_decimal(value), "f")
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def _check_controls(text: str, multiline: bool = False) -> str:
    if text.isprintable():  # the usual case, without a regex: no Cc/Cf/Zl/Zp/non-ASCII Zs at all
        return text
    pattern = _CONTROL_MULTILINE if multiline else _CONTROL
    if pattern.search(text):
        raise ValueError(
            "must not contain control characters such as line breaks or tabs"
            "（不能包含换行、制表符等控制字符）"
        )
    return text


def parse_text(value: object) -> str:
    """One line of text, stripped; control characters (CR, LF, TAB, NUL …) are rejected."""
    if type(value) is str and value.isprintable():  # the usual case: no control character to look for
        return value.strip()
    return _check_controls(cell_text(value))


def parse_free_text(value: object) -> str:
    """Free text such as explanations: line breaks and tabs allowed, other control characters not."""
    return _check_controls(cell_text(value), multiline=True)


_PLAIN_CODE = re.compile(r"[!-~]+")  # printable ASCII without spaces: nothing to strip or normalise


def parse_code(value: object, max_length: int = 32) -> str:
    """A code: NFKC-normalised (full-width digits to ASCII), non-empty, no spaces or control
    characters, at most `max_length` characters."""
    if type(value) is str and len(value) <= max_length and _PLAIN_CODE.fullmatch(value):
        return value
    if not isinstance(value, str | int) or isinstance(value, bool):
        _check_code_type(value)
    if isinstance(value, float) and abs(value) >= 1e15:
        raise ValueError(
            "was stored as a number in Excel and lost digits; format the column as text"
            "（编码在Excel中被存成数字、位数已丢失，请将该列设为文本格式）"
        )
    text = parse_text(value)
    if text.isascii() and text and " " not in text:  # printable ASCII: nothing to normalise
        pass
    elif not (text := unicodedata.normalize("NFKC", text)) or _SPACES.search(text):
        raise ValueError("must be a code without spaces（编码不能包含空格）")
    if len(text) > max_length:
        raise ValueError(
            f"must be at most {max_length} characters, got {len(text)}（编码最长{max_length}个字符）"
        )
    return text


def _check_code_type(value: object) -> None:
    """A code cell must be text or a whole number: not TRUE/FALSE, a date or a fraction."""
    if isinstance(value, bool):
        shown = "a TRUE/FALSE cell"
    elif isinstance(value, dt.date | dt.time | dt.timedelta):
        shown = "a date or time cell"
    elif isinstance(value, float) and not value.is_integer():
        shown = "a decimal number"
    else:
        return
    raise ValueError(f"is {shown}; a code must be text or a whole number（编码须为文本或整数）")


_EMAIL_SPLIT = re.compile(r"[;,；，、\s]+")
_EMAIL = re.compile(
    r"^(?!\.)(?!.*\.\.)[A-Za-z0-9._%+'=-]+(?<!\.)@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


def parse_emails(value: object) -> tuple[str, ...]:
    """One or more e-mail addresses separated by `;` `,` `；` `，` (or spaces), each checked."""
    text = _check_controls(cell_text(value))
    addresses: list[str] = []
    for part in _EMAIL_SPLIT.split(text):
        if not part:
            continue
        if len(part) > 254 or not _EMAIL.match(part):
            raise ValueError(
                f"{part!r} is not a valid e-mail address, e.g. name@example.gov.cn "
                "（邮箱地址格式不正确，多个地址用分号分隔）"
            )
        if part.lower() not in (a.lower() for a in addresses):
            addresses.append(part)
    if not addresses:
        raise ValueError("at least one e-mail address is required（至少填写一个联系邮箱）")
    return tuple(addresses)


# --- numbers -------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$|^[+-]?\.\d+$")


def _float_decimal(value: float) -> Decimal:
    """An Excel number as the decimal Excel shows: 15 significant digits, so a typed 24.99 stays
    24.99 and a formula's 708.0000000000001 is 708."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number（不是有效数字）")
    return Decimal(format(value, ".15g"))


def _normalize_number_text(text: str) -> str:
    """NFKC (full-width digits, comma and point to ASCII), Chinese comma as comma, no spaces."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", text).replace("、", ","))


def to_decimal(value: object) -> Decimal:
    """A number from a cell: `1,234.50`, ` 12 `, `１，２３４．５`, 1234.5; commas only as thousands."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number（不是数字）")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return _float_decimal(value)
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


# --- dates and checkpoints -----------------------------------------------------------------------

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


# --- enumerations --------------------------------------------------------------------------------

_DIRECTIONS: dict[str, Direction] = {
    **dict.fromkeys(("≥", ">=", "≧", "=>", "大于等于", "不低于", "不少于", "不小于"), Direction.GE),
    **dict.fromkeys((">", "大于", "高于", "多于"), Direction.GT),
    **dict.fromkeys(("=", "==", "等于"), Direction.EQ),
    **dict.fromkeys(("≤", "<=", "≦", "=<", "小于等于", "不高于", "不超过", "不多于", "不大于"), Direction.LE),
    **dict.fromkeys(("<", "小于", "低于", "少于"), Direction.LT),
    **dict.fromkeys(("定性", "qualitative"), Direction.QUALITATIVE),
}
_DIRECTION_PREFIX = re.compile(r"^(>=|<=|=>|=<|==|[≥≧≤≦><=])")


def parse_direction(value: object) -> Direction:
    """`≥ >= > = ≤ <= < 定性`, full-width forms and words such as 不低于 → Direction."""
    key = _SPACES.sub("", unicodedata.normalize("NFKC", cell_text(value)))
    if key in _DIRECTIONS:
        return _DIRECTIONS[key]
    raise ValueError("must be one of ≥ > = ≤ < 定性（指标方向须为 ≥、>、=、≤、< 或 定性）")


def split_direction(text: str) -> tuple[Direction | None, str]:
    """A target written with its direction in front (`≥90%`): the direction and the rest."""
    normalized = unicodedata.normalize("NFKC", text).strip()
    m = _DIRECTION_PREFIX.match(normalized)
    if not m:
        return None, text.strip()
    return _DIRECTIONS[m.group(1)], normalized[m.end() :].strip()


_KINDS: dict[str, Kind] = {
    **dict.fromkeys(("cumulative", "累计型", "累计"), Kind.CUMULATIVE),
    **dict.fromkeys(("level", "水平型", "水平"), Kind.LEVEL),
    **dict.fromkeys(("milestone", "时间节点", "时间节点型", "里程碑"), Kind.MILESTONE),
    **dict.fromkeys(("qualitative", "定性", "定性型"), Kind.QUALITATIVE),
}


def parse_kind(value: object) -> Kind | None:
    """cumulative/level/milestone/qualitative or 累计型/水平型/时间节点/定性; blank → None."""
    key = cell_text(value).lower()
    if not key:
        return None
    if key in _KINDS:
        return _KINDS[key]
    raise ValueError(
        "must be cumulative, level, milestone or qualitative（指标类型须为 累计型、水平型、时间节点 或 定性）"
    )


_FUND_FLAGS = {"1": "01", "01": "01", "2": "02", "02": "02", "9": "09", "09": "09"}


def parse_fund_flag(value: object) -> str | None:
    """`01` central direct funds, `02` managed like direct funds, `09` other (`1`/`2`/`9` too)."""
    key = unicodedata.normalize("NFKC", cell_text(value))
    if not key:
        return None
    if key in _FUND_FLAGS:
        return _FUND_FLAGS[key]
    raise ValueError("must be 01, 02 or 09（直达资金标识须为 01、02 或 09）")


# --- indicator values ----------------------------------------------------------------------------


def parse_target(value: object, direction: Direction | None, measure_unit: str = "") -> str:
    """The target's canonical text: as written for 定性, else a decimal, else an ISO date, else text.

    Text shaped like a date that is not a valid one (`2025-13-01`, `2025年6月`) is rejected, since a
    milestone target must name a day.
    """
    if isinstance(value, dt.date):
        return parse_date(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return parse_number(value)
    text = parse_text(value)
    if not text:
        raise ValueError("a target value is required（年度指标值不能为空）")
    if direction is Direction.QUALITATIVE:
        return text
    return _number_date_or_text(text, measure_unit)


def parse_actual(value: object, measure_unit: str = "") -> str | None:
    """An actual (or forecast) value: blank or a dash → None, else a decimal, an ISO date or text."""
    if isinstance(value, dt.date):
        return parse_date(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return parse_number(value)
    text = parse_free_text(value)
    if not text or text in _DASHES:
        return None
    return _number_date_or_text(text, measure_unit)


def _number_date_or_text(text: str, measure_unit: str) -> str:
    number = number_or_none(text, measure_unit)
    if number is not None:
        return number
    if looks_like_date(text):
        return parse_date(text)
    return text


_POSSIBILITIES = ("确定能", "有可能", "完全不可能")


def parse_possibility(value: object) -> str | None:
    """完成目标可能性: 确定能 / 有可能 / 完全不可能 (a trailing 完成/实现 is allowed)."""
    text = _SPACES.sub("", parse_text(value))
    if not text:
        return None
    for suffix in ("完成", "实现", "达成"):
        text = text.removesuffix(suffix)
    if text in _POSSIBILITIES:
        return text
    raise ValueError(
        "must be 确定能, 有可能 or 完全不可能（完成目标可能性须为 确定能、有可能 或 完全不可能）"
    )


_CAUSES = ("经费保障", "制度保障", "人员保障", "硬件条件保障", "其他")
_CAUSE_ALIASES = {
    **{c: c for c in _CAUSES},
    **{c.removesuffix("保障"): c for c in _CAUSES},
    "其它": "其他",
}
_CAUSE_SPLIT = re.compile(r"[;,；，、/\s]+")


def parse_causes(value: object) -> str | None:
    """偏差原因 categories, several allowed, as `经费保障;其他`."""
    text = parse_text(value)
    causes: list[str] = []
    for part in _CAUSE_SPLIT.split(text):
        if not part:
            continue
        cause = _CAUSE_ALIASES.get(part)
        if cause is None:
            raise ValueError(
                f"{part!r} is not a deviation cause; use 经费保障, 制度保障, 人员保障, 硬件条件保障 or 其他"
                "（偏差原因须为 经费保障、制度保障、人员保障、硬件条件保障 或 其他）"
            )
        if cause not in causes:
            causes.append(cause)
    return ";".join(causes) or None
