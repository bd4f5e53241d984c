"""The enumerated cells (direction, kind, fund flag, 完成目标可能性, 偏差原因) and an indicator's
target and actual values, parsed into the model's canonical forms: Direction, Kind, canonical decimal
or ISO-date text, or the text as written. Bad values raise ValueError with an English and Chinese
message saying what was expected; every function is pure. The cells underneath are in cells.py,
numeric.py and dates.py.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from monitor.core.cells import SPACES, cell_text, parse_free_text, parse_text
from monitor.core.dates import looks_like_date, parse_date
from monitor.core.model import Direction, Kind
from monitor.core.numeric import number_or_none, parse_number

_DASHES = frozenset({"-", "--", "—", "——", "–", "/", "／", "－"})

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
    key = SPACES.sub("", unicodedata.normalize("NFKC", cell_text(value)))
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
    text = SPACES.sub("", parse_text(value))
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
