"""Indicator rule kinds: an indicator, its reported actual value and its policy in, a light, a ratio
and a reason in Chinese out. One small class per kind in a registry (KINDS); adding a kind touches
only this file. Pure: no I/O, no clock (the checkpoint's end date is passed in).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Protocol

from monitor.core.model import Checkpoint, Direction, Indicator, Kind, Light
from monitor.core.wording import digits_for, pct_threshold, percent_nd, progress
from monitor.rules.policy import IndicatorPolicy


@dataclass(frozen=True, slots=True)
class Judgement:
    light: Light
    ratio: float | None
    reason: str
    uses: tuple[str, ...] = ()  # the rule values (RuleSet fields) the light was decided by


@dataclass(frozen=True, slots=True)
class Context:
    checkpoint: Checkpoint
    progress: Fraction  # P for this indicator
    progress_note: str
    policy: IndicatorPolicy


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


def _show(n: int, d: int) -> str:
    """A computed quantity (e.g. target × P) for reading: integers stay whole, else two decimals."""
    if n % d == 0:
        return f"{n // d:,}"
    try:
        return f"{n / d:,.2f}"
    except OverflowError:  # beyond a double: a number no import lets through, but never a crash
        return f"{Decimal(n) / Decimal(d):,.2f}"


@functools.lru_cache(maxsize=4096)
def date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def infer_kind(ind: Indicator) -> Kind:
    """domain.md §4: 定性 or text target → qualitative; date → milestone; 数量 with ≥/> and a non-%
    unit → cumulative; everything else → level. An explicit kind wins."""
    if ind.kind is not None:
        return ind.kind
    if ind.direction is Direction.QUALITATIVE:
        return Kind.QUALITATIVE
    if ratio(ind.target) is None:
        return Kind.MILESTONE if date(ind.target) is not None else Kind.QUALITATIVE
    if ind.level2 == "数量" and ind.direction in (Direction.GE, Direction.GT) and "%" not in ind.measure_unit:
        return Kind.CUMULATIVE
    return Kind.LEVEL


def _target_text(ind: Indicator) -> str:
    return f"{ind.direction.value}{ind.target}{ind.measure_unit}"


class IndicatorRule(Protocol):
    kind: Kind

    def judge(self, ind: Indicator, actual: str | None, ctx: Context) -> Judgement: ...


def _na(reason: str) -> Judgement:
    return Judgement(Light.NA, None, reason)


class Cumulative:
    """r = actual / (target × P): red below, yellow below, blue from (ahead of schedule)."""

    kind = Kind.CUMULATIVE

    def judge(self, ind: Indicator, actual: str | None, ctx: Context) -> Judgement:
        target, value = ratio(ind.target), ratio(actual)
        if target is None or target[0] <= 0 or ind.direction not in (Direction.GE, Direction.GT):
            return LEVEL.judge(ind, actual, ctx)  # not an accruing quantity: judge as a level
        if value is None:
            return _na(f"目标{_target_text(ind)}，本期尚无可计量的实际值（{actual or '空'}），不参与评价")
        pol, p = ctx.policy, ctx.progress
        (tn, td), (vn, vd), pn, pd = target, value, p.numerator, p.denominator
        head = (
            f"目标{_target_text(ind)}，1-{ctx.checkpoint.month}月完成{actual}{ind.measure_unit}，"
            f"序时目标{_show(tn * pn, td * pd)}{ind.measure_unit}"
            f"（{ctx.progress_note}，序时进度{progress(p)}）"
        )
        if pn == 0:
            return Judgement(Light.GREEN, None, f"{head}，本期尚无序时要求 → 绿灯")
        rn, rd = vn * td * pd, vd * tn * pn  # r = actual / (target × P) = rn / rd, rd > 0
        digits = digits_for(pol.red, pol.yellow, pol.blue)
        shown = f"{head}，完成序时目标的{percent_nd(rn, rd, digits=digits)}"
        r = rn / rd
        if rn * pol.red.denominator < pol.red.numerator * rd:
            red = f"{shown}（低于{pct_threshold(pol.red)}为红灯）"
            return Judgement(Light.RED, r, red, ("cumulative_red_below",))
        if rn * pol.yellow.denominator < pol.yellow.numerator * rd:
            yellow = f"{shown}（不低于{pct_threshold(pol.red)}、低于{pct_threshold(pol.yellow)}为黄灯）"
            return Judgement(Light.YELLOW, r, yellow, ("cumulative_red_below", "cumulative_yellow_below"))
        if rn * pol.blue.denominator >= pol.blue.numerator * rd:
            blue = f"{shown}（达到{pct_threshold(pol.blue)}为蓝灯：超序时，请核实目标是否偏低）"
            return Judgement(Light.BLUE, r, blue, ("cumulative_blue_from",))
        green = f"{shown}（达到{pct_threshold(pol.yellow)}为绿灯）"
        return Judgement(Light.GREEN, r, green, ("cumulative_yellow_below",))


_MET = {  # compare a·td with t·ad (both denominators positive): the direction's test, in integers
    Direction.GE: lambda a, t: a >= t,
    Direction.GT: lambda a, t: a > t,
    Direction.EQ: lambda a, t: a == t,
    Direction.LE: lambda a, t: a <= t,
    Direction.LT: lambda a, t: a < t,
}


class Level:
    """Met in the indicator's direction → green; missed by at most tolerance × |target| → yellow."""

    kind = Kind.LEVEL

    def judge(self, ind: Indicator, actual: str | None, ctx: Context) -> Judgement:
        target, value = ratio(ind.target), ratio(actual)
        if target is None or ind.direction is Direction.QUALITATIVE:
            return _na(f"目标值“{ind.target}”不是数值，无法按水平型指标评价")
        if value is None:
            return _na(f"目标{_target_text(ind)}，本期尚无可计量的实际值（{actual or '空'}），不参与评价")
        (tn, td), (vn, vd) = target, value
        a, t = vn * td, tn * vd  # actual and target over the common denominator vd·td
        head = f"目标{_target_text(ind)}，实际{actual}{ind.measure_unit}"
        diff = a - t  # (actual − target) · vd·td
        scale = abs(t)  # |target| · vd·td
        signed = diff / scale if scale else None
        if _MET[ind.direction](a, t):
            return Judgement(Light.GREEN, signed, f"{head}，已达标 → 绿灯")
        if t == 0:
            return Judgement(Light.RED, None, f"{head}，未达标（目标值为0，不设容差）→ 红灯")
        tol, uses = ctx.policy.tolerance, ("level_tolerance",)
        digits = digits_for(tol)
        if abs(diff) * tol.denominator <= tol.numerator * scale:
            shown = f"{head}，未达标，偏离目标值{percent_nd(abs(diff), scale, digits=digits)}"
            return Judgement(Light.YELLOW, signed, f"{shown}（不超过{pct_threshold(tol)}为黄灯）", uses)
        shown = f"{head}，未达标，偏离目标值{percent_nd(abs(diff), scale, up=True, digits=digits)}"
        return Judgement(Light.RED, signed, f"{shown}（超过{pct_threshold(tol)}为红灯）", uses)


class Milestone:
    """Done by the due date, or not done but not yet due at the checkpoint's end → green; else red."""

    kind = Kind.MILESTONE

    def judge(self, ind: Indicator, actual: str | None, ctx: Context) -> Judgement:
        due = date(ind.target)
        if due is None:
            return _na(f"目标值“{ind.target}”不是日期，无法按时间节点评价")
        end = ctx.checkpoint.end_date
        if actual is None or actual == "":
            if due < end:
                return Judgement(
                    Light.RED,
                    None,
                    f"计划{due.isoformat()}前完成，截至{end.isoformat()}尚未完成，已逾期 → 红灯",
                )
            return Judgement(
                Light.GREEN, None, f"计划{due.isoformat()}前完成，截至{end.isoformat()}尚未到期 → 绿灯"
            )
        done = date(actual)
        if done is None:
            return _na(f"完成时间“{actual}”不是日期，无法评价")
        if done <= due:
            return Judgement(
                Light.GREEN, None, f"计划{due.isoformat()}前完成，已于{done.isoformat()}完成 → 绿灯"
            )
        return Judgement(
            Light.RED, None, f"计划{due.isoformat()}前完成，{done.isoformat()}才完成，延期 → 红灯"
        )


class Qualitative:
    """The unit's self-assessment (达成目标 / 部分达成… / 未达成…) mapped to a light by the rules."""

    kind = Kind.QUALITATIVE

    def judge(self, ind: Indicator, actual: str | None, ctx: Context) -> Judgement:
        if actual is None or actual == "":
            return _na(f"目标“{ind.target}”，本期尚无评价结论，不参与评价")
        answer = "".join(actual.split())
        light = ctx.policy.qualitative.get(answer)
        if light is None:
            known = "、".join(ctx.policy.qualitative)
            return _na(f"评价结论“{actual}”不是规则所列结论（{known}）之一，无法评价")
        lit = Light(light)
        return Judgement(
            lit, None, f"目标“{ind.target}”，自评“{actual}” → {lit.chinese}灯", (f"qualitative_{light}",)
        )


LEVEL = Level()
KINDS: dict[Kind, IndicatorRule] = {
    Kind.CUMULATIVE: Cumulative(),
    Kind.LEVEL: LEVEL,
    Kind.MILESTONE: Milestone(),
    Kind.QUALITATIVE: Qualitative(),
}
