"""Level (水平型): met in the indicator's direction → green; missed by at most tolerance × |target|
→ yellow; else red. A target of 0 has no band."""

from __future__ import annotations

from collections.abc import Callable

from monitor.core.model import Direction, Indicator, Kind, Light
from monitor.core.wording import digits_for, pct_threshold, percent_nd
from monitor.evaluate.facts import Context, Judgement, Words
from monitor.evaluate.shapes import quotient, ratio, target_text
from monitor.evaluate.sqltext import EPS, Spelling

_MET: dict[Direction, Callable[[int, int], bool]] = {  # a·td against t·ad (denominators > 0)
    Direction.GE: lambda a, t: a >= t,
    Direction.GT: lambda a, t: a > t,
    Direction.EQ: lambda a, t: a == t,
    Direction.LE: lambda a, t: a <= t,
    Direction.LT: lambda a, t: a < t,
}


def _common(ind: Indicator, actual: str | None) -> tuple[int, int] | None:
    """Actual and target over their common denominator, or None if either is not a number."""
    target, value = ratio(ind.target), ratio(actual)
    if target is None or value is None or ind.direction is Direction.QUALITATIVE:
        return None
    (tn, td), (vn, vd) = target, value
    return vn * td, tn * vd


def unmeasured(ind: Indicator, actual: str | None) -> Words:
    if ratio(ind.target) is None or ind.direction is Direction.QUALITATIVE:
        return Words(f"目标值“{ind.target}”不是数值，无法按水平型指标评价")
    return Words(f"目标{target_text(ind)}，本期尚无可计量的实际值（{actual or '空'}），不参与评价")


class Level:
    kind = Kind.LEVEL

    def judge(self, ind: Indicator, actual: str | None, ctx: Context) -> Judgement:
        common = _common(ind, actual)
        if common is None:
            return Judgement(Light.NA, None)
        a, t = common
        signed = quotient(a - t, abs(t)) if t else None
        if _MET[ind.direction](a, t):
            return Judgement(Light.GREEN, signed)
        if t == 0:
            return Judgement(Light.RED, None)
        tol = ctx.policy.tolerance
        yellow = abs(a - t) * tol.denominator <= tol.numerator * abs(t)
        return Judgement(Light.YELLOW if yellow else Light.RED, signed)

    def words(self, ind: Indicator, actual: str | None, ctx: Context, light: Light) -> Words:
        common = _common(ind, actual)
        if common is None:
            return unmeasured(ind, actual)
        a, t = common
        head = f"目标{target_text(ind)}，实际{actual}{ind.measure_unit}"
        if light is Light.GREEN:
            return Words(f"{head}，已达标 → 绿灯")
        if t == 0:
            return Words(f"{head}，未达标（目标值为0，不设容差）→ 红灯")
        tol, uses = ctx.policy.tolerance, ("level_tolerance",)
        red = light is Light.RED
        off = percent_nd(abs(a - t), abs(t), up=red, digits=digits_for(tol))
        rule = f"超过{pct_threshold(tol)}为红灯" if red else f"不超过{pct_threshold(tol)}为黄灯"
        return Words(f"{head}，未达标，偏离目标值{off}（{rule}）", uses)

    def light_sql(self, s: Spelling) -> str:
        # exact where the numbers are small: a vs t ⟺ a_n·t_d vs t_n·a_d
        ea, et = "(b.a_n * b.t_d)", "(b.t_n * b.a_d)"
        small = "b.asmall = 1 AND b.tsmall = 1 AND b.tn IS NOT NULL"
        met_exact = s.dialect.truth(
            f"CASE b.direction WHEN '≥' THEN {ea} >= {et} WHEN '>' THEN {ea} > {et}"
            f" WHEN '≤' THEN {ea} <= {et} WHEN '<' THEN {ea} < {et} ELSE {ea} = {et} END"
        )
        met_float = s.dialect.truth(
            "CASE b.direction WHEN '≥' THEN b.af >= b.tf WHEN '>' THEN b.af > b.tf"
            " WHEN '≤' THEN b.af <= b.tf WHEN '<' THEN b.af < b.tf ELSE b.af = b.tf END"
        )
        diff, scale = "abs(b.af - b.tf)", "abs(b.tf)"
        missed = (
            "CASE WHEN b.tzero = 1 THEN 'red'"
            f" WHEN {small} THEN"
            f" (CASE WHEN abs({ea} - {et}) * b.td <= b.tn * abs({et}) THEN 'yellow' ELSE 'red' END)"
            f" WHEN abs({diff} - b.tol * {scale}) <= {EPS} * b.tol * {scale} THEN '?'"
            f" WHEN {diff} <= b.tol * {scale} THEN 'yellow' ELSE 'red' END"
        )
        return (
            "CASE WHEN b.tnum = 0 OR b.direction = '定性' OR b.an = 1 OR b.anum = 0 THEN 'na'"
            f" WHEN {small} THEN (CASE WHEN {met_exact} THEN 'green' ELSE ({missed}) END)"
            " WHEN b.af IS NULL OR b.tf IS NULL THEN '?'"
            f" WHEN {diff} <= {EPS} * (abs(b.af) + abs(b.tf)) THEN '?'"
            f" WHEN {met_float} THEN 'green' ELSE ({missed}) END"
        )

    def ratio_sql(self, s: Spelling) -> str:
        return (
            "CASE WHEN b.tnum = 1 AND b.tzero = 0 AND b.direction <> '定性' AND b.anum = 1"
            " THEN (b.af - b.tf) / abs(b.tf) END"
        )


LEVEL = Level()
