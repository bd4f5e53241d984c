"""A cell as text, and the text cells of an import: one line of text, free text, codes and e-mail
addresses. In: str, int, float, date/datetime or None. Control characters are rejected with an
English and Chinese message; every function is pure. Numbers are in numeric.py, dates in dates.py.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from decimal import Decimal

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
SPACES = re.compile(r"\s+")


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
        return str(int(value)) if value.is_integer() else format(float_decimal(value), "f")
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def float_decimal(value: float) -> Decimal:
    """An Excel number as the decimal Excel shows: 15 significant digits, so a typed 24.99 stays
    24.99 and a formula's 708.0000000000001 is 708."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number（不是有效数字）")
    return Decimal(format(value, ".15g"))


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
    elif not (text := unicodedata.normalize("NFKC", text)) or SPACES.search(text):
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
