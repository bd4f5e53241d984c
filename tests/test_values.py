"""Cell value parsing: amounts in 万元 to exact fen, indicator numbers, dates, checkpoints, directions,
kinds, fund flags, codes, e-mail addresses and text, as they come from CSV text and Excel cells."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.cells import (
    _check_controls,
    cell_text,
    parse_code,
    parse_emails,
    parse_free_text,
    parse_text,
)
from monitor.core.dates import parse_checkpoint, parse_date
from monitor.core.model import Direction, Kind
from monitor.core.numeric import canonical_decimal, number_or_none, parse_amount, parse_number
from monitor.core.values import (
    parse_actual,
    parse_causes,
    parse_direction,
    parse_fund_flag,
    parse_kind,
    parse_possibility,
    parse_target,
    split_direction,
)

FULL_WIDTH = str.maketrans("0123456789,.%", "０１２３４５６７８９，．％")


# --- amounts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("1,234.50", 1_234_500_000),
        ("1234.5", 1_234_500_000),
        (" 12 ", 12_000_000),
        ("１，２３４．５０", 1_234_500_000),
        ("300万元", 300_000_000),
        ("300 万", 300_000_000),
        ("0", 0),
        ("0.000001", 1),
        (24.99, 24_990_000),
        (1180, 1_180_000_000),
        (708.0000000000001, 708_000_000),  # a formula's binary noise, shown by Excel as 708
    ],
)
def test_amounts_in_wan_become_exact_fen(text: object, fen: int) -> None:
    assert parse_amount(text) == fen


@pytest.mark.parametrize(
    "bad",
    ["-5", "abc", "", "NaN", "inf", "1e5", "1,5", "12,34.5", "1.0000001", float("nan"), float("inf"), True],
)
def test_bad_amounts_are_rejected_with_a_bilingual_message(bad: object) -> None:
    with pytest.raises(ValueError, match=r"万元|负数|不是有效"):
        parse_amount(bad)


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False))
def test_any_amount_written_with_thousands_separators_parses_exactly(amount: Decimal) -> None:
    text = f"{amount:,.2f}"
    assert parse_amount(text) == int(amount * 1_000_000)
    assert parse_amount(text.translate(FULL_WIDTH)) == int(amount * 1_000_000)


@given(st.decimals(min_value=0, max_value=10**8, places=2, allow_nan=False, allow_infinity=False))
def test_an_excel_float_keeps_the_amount_that_was_typed(amount: Decimal) -> None:
    assert parse_amount(float(amount)) == int(amount * 1_000_000)


# --- indicator numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_", "canonical"),
    [
        ("1,234", "1234"),
        ("41.7%", "41.7"),
        ("98.6％", "98.6"),
        ("１２０，０００", "120000"),
        (" 120000 ", "120000"),
        ("90.00", "90"),
        ("0.0", "0"),
        ("-0", "0"),
        ("-5", "-5"),
        (1e5, "100000"),
        (24.99, "24.99"),
        (30000, "30000"),
    ],
)
def test_indicator_numbers_become_canonical_decimals(given_: object, canonical: str) -> None:
    assert parse_number(given_) == canonical


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False, allow_infinity=False))
def test_canonical_decimals_are_a_fixed_point_and_keep_the_value(number: Decimal) -> None:
    canonical = parse_number(str(number))
    assert parse_number(canonical) == canonical
    assert Decimal(canonical) == number
    assert "E" not in canonical and "e" not in canonical


@pytest.mark.parametrize(
    ("text", "unit", "canonical"),
    [
        ("30000头", "头", "30000"),
        ("31小时", "", "31"),
        ("86%", "%", "86"),
        ("有效提升", "", None),
        ("10月底前", "", None),  # a due date in words, not the number 10
    ],
)
def test_a_number_followed_by_its_unit_is_still_a_number(text: str, unit: str, canonical: str | None) -> None:
    assert number_or_none(text, unit) == canonical


# --- dates and checkpoints ------------------------------------------------------------------------


@given(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_every_written_form_of_a_date_gives_the_same_iso_date(day: dt.date) -> None:
    iso = day.isoformat()
    y, m, d = day.year, day.month, day.day
    for written in (iso, f"{y}/{m}/{d}", f"{y}.{m}.{d}", f"{y}年{m}月{d}日", day, dt.datetime(y, m, d)):
        assert parse_date(written) == iso


@pytest.mark.parametrize("bad", ["2025-13-01", "2025-06-31", "2025-6", "明年六月", "", 45838])
def test_impossible_or_partial_dates_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="2025-06-30"):
        parse_date(bad)


@pytest.mark.parametrize(
    "written",
    ["2025-05", "2025-5", "2025/05", "2025年5月", "2025年1-5月", "202505", 202505, 2025.05,
     dt.date(2025, 5, 31), dt.datetime(2025, 5, 31, 0, 0)],
)  # fmt: skip
def test_checkpoints_are_read_in_every_usual_form(written: object) -> None:
    assert parse_checkpoint(written) == "2025-05"


@pytest.mark.parametrize("bad", ["2025-13", "2025-00", "五月", "2025", "2025-1-5", "", 2025.1])
def test_invalid_checkpoints_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="2025-"):
        parse_checkpoint(bad)


# --- enumerations ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "direction"),
    [
        ("≥", Direction.GE), (">=", Direction.GE), ("＞＝", Direction.GE), ("≧", Direction.GE),
        ("不低于", Direction.GE), (">", Direction.GT), ("＞", Direction.GT), ("=", Direction.EQ),
        ("＝", Direction.EQ), ("≤", Direction.LE), ("<=", Direction.LE), ("≦", Direction.LE),
        ("不超过", Direction.LE), ("<", Direction.LT), ("＜", Direction.LT),
        (" 定性 ", Direction.QUALITATIVE),
    ],
)  # fmt: skip
def test_directions_are_read_in_symbols_full_width_and_words(written: str, direction: Direction) -> None:
    assert parse_direction(written) is direction


@pytest.mark.parametrize("bad", ["约等于", "≈", "", "+"])
def test_unknown_directions_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="≥"):
        parse_direction(bad)


def test_a_direction_written_in_front_of_the_target_is_split_off() -> None:
    assert split_direction("≥90%") == (Direction.GE, "90%")
    assert split_direction("＜＝24") == (Direction.LE, "24")
    assert split_direction("达成目标") == (None, "达成目标")


@pytest.mark.parametrize(
    ("written", "kind"),
    [("cumulative", Kind.CUMULATIVE), ("累计型", Kind.CUMULATIVE), ("Level", Kind.LEVEL),
     ("水平型", Kind.LEVEL), ("时间节点", Kind.MILESTONE), ("milestone", Kind.MILESTONE),
     ("定性", Kind.QUALITATIVE), ("", None)],
)  # fmt: skip
def test_kinds_are_read_in_english_and_chinese(written: str, kind: Kind | None) -> None:
    assert parse_kind(written) is kind


def test_an_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="累计型"):
        parse_kind("比率型")


@pytest.mark.parametrize(
    ("written", "flag"),
    [("01", "01"), ("1", "01"), (2, "02"), (9.0, "09"), ("09", "09"), ("", None), (None, None)],
)
def test_fund_flags_are_two_digit_codes(written: object, flag: str | None) -> None:
    assert parse_fund_flag(written) == flag


@pytest.mark.parametrize("bad", ["03", "直达", 3])
def test_unknown_fund_flags_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="01, 02 or 09"):
        parse_fund_flag(bad)


# --- indicator values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "direction", "unit", "canonical"),
    [
        ("120,000", Direction.GE, "头", "120000"),
        ("120000头", Direction.GE, "头", "120000"),
        ("90%", Direction.GE, "%", "90"),
        (0.9, Direction.GE, "%", "0.9"),
        ("2025年6月30日", Direction.LE, "", "2025-06-30"),
        (dt.datetime(2025, 6, 30), Direction.LE, "", "2025-06-30"),
        ("达成目标", Direction.QUALITATIVE, "", "达成目标"),
        (" 有效提升 ", Direction.GE, "", "有效提升"),
        ("100", Direction.QUALITATIVE, "", "100"),
    ],
)
def test_targets_become_decimals_dates_or_text(
    target: object, direction: Direction, unit: str, canonical: str
) -> None:
    assert parse_target(target, direction, unit) == canonical


@pytest.mark.parametrize("bad", ["2025-13-01", "2025年6月", "2025/02/30"])
def test_a_target_shaped_like_a_date_must_be_a_real_day(bad: str) -> None:
    with pytest.raises(ValueError, match="date"):
        parse_target(bad, Direction.LE)


@pytest.mark.parametrize(
    ("actual", "canonical"),
    [("", None), (None, None), ("—", None), ("/", None), ("30,000", "30000"), ("86%", "86"),
     ("2025/7/1", "2025-07-01"), ("达成目标", "达成目标"), (0.0, "0")],
)  # fmt: skip
def test_actuals_are_blank_numbers_dates_or_words(actual: object, canonical: str | None) -> None:
    assert parse_actual(actual) == canonical


def test_possibility_and_causes_are_checked_against_the_forms_choices() -> None:
    assert parse_possibility("完全不可能完成") == "完全不可能"
    assert parse_causes("经费保障、人员；其它") == "经费保障;人员保障;其他"
    with pytest.raises(ValueError, match="确定能"):
        parse_possibility("也许")
    with pytest.raises(ValueError, match="经费保障"):
        parse_causes("天气原因")


# --- text, codes and e-mail ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["市商务局\r\nBcc: x@y.cn", "a\tb", "a\x00b", "a\x7fb", "a\u2028b"])
def test_control_characters_in_names_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="control characters"):
        parse_text(bad)


def test_free_text_may_span_lines_but_not_hold_other_control_characters() -> None:
    assert parse_free_text(" 第一条\n第二条 ") == "第一条\n第二条"
    with pytest.raises(ValueError, match="control characters"):
        parse_free_text("a\x00b")


def test_codes_are_normalised_and_checked() -> None:
    assert parse_code(" ３０１ ") == "301"
    assert parse_code(301001) == "301001"
    assert parse_code(301001.0) == "301001"
    for bad in ("30 1", "a\nb"):
        with pytest.raises(ValueError):
            parse_code(bad)
    with pytest.raises(ValueError, match="at most 21"):
        parse_code("x" * 22, max_length=21)
    with pytest.raises(ValueError, match="lost digits"):
        parse_code(1.2345678901234568e20)


@pytest.mark.parametrize(
    ("written", "emails"),
    [
        ("a@example.gov.cn", ("a@example.gov.cn",)),
        ("a@x.cn; b.c@y.com.cn", ("a@x.cn", "b.c@y.com.cn")),
        ("a@x.cn，b@y.cn；c@z.cn,d@w.cn", ("a@x.cn", "b@y.cn", "c@z.cn", "d@w.cn")),
        ("a@x.cn;A@X.CN", ("a@x.cn",)),
    ],
)
def test_one_or_more_email_addresses_are_accepted(written: str, emails: tuple[str, ...]) -> None:
    assert parse_emails(written) == emails


@pytest.mark.parametrize(
    "bad",
    [
        "a@b",
        "nyj#example.gov.cn",
        ".a@b.cn",
        "a..b@c.cn",
        "a@-b.cn",
        "x@y.cn\r\nBcc: z@w.cn",
        "张三 <a@b.cn>",
        ";",
    ],
)
def test_invalid_email_addresses_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_emails(bad)


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x3000), max_size=30))
def test_accepted_email_lists_never_contain_a_control_character(text: str) -> None:
    try:
        emails = parse_emails(text)
    except ValueError:
        return
    assert all(c.isprintable() and not c.isspace() for e in emails for c in e)


# --- the fast paths for plain ASCII text give what the full parsers give -------------------------------


@given(st.decimals(min_value=0, max_value=10**12 - 1, places=6, allow_nan=False, allow_infinity=False))
def test_a_plain_amount_parses_to_the_same_fen_without_decimal_arithmetic(amount: Decimal) -> None:
    for text in (format(amount, "f"), format(amount.normalize(), "f"), f"{amount:.6f}"):
        assert parse_amount(text) == int(amount * 1_000_000)
        assert parse_amount(f" {text}") == int(amount * 1_000_000)  # the full path


def test_a_plain_zero_budget_is_still_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        parse_amount("0.000000", positive=True)


@given(st.from_regex(r"-?[0-9]{1,16}(\.[0-9]{1,13})?", fullmatch=True))
def test_a_number_already_canonical_comes_back_as_it_is(text: str) -> None:
    assert number_or_none(text) == canonical_decimal(Decimal(text))


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40))
def test_a_printable_ascii_code_is_kept_as_written_within_its_length(code: str) -> None:
    if len(code) <= 21:
        assert parse_code(code, max_length=21) == code
    else:
        with pytest.raises(ValueError, match="at most 21"):
            parse_code(code, max_length=21)


@given(st.text(max_size=20))
def test_text_parses_the_same_by_either_path(text: str) -> None:
    def full(value: str) -> str:
        return _check_controls(cell_text(value))

    try:
        expected: str | type[ValueError] = full(text)
    except ValueError:
        expected = ValueError
    if expected is ValueError:
        with pytest.raises(ValueError):
            parse_text(text)
    else:
        assert parse_text(text) == expected
