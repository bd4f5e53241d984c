"""Cumulative (累计型): r = actual / (target × P); red below, yellow below, green, blue from (ahead
of schedule: check the target is not too low). A target that is not a positive number to reach
(≥, >) is judged as a level."""

from __future__ import annotations

from monitor.core.model import Direction, Indicator, Kind, Light
from monitor.core.wording import digits_for, pct_threshold, percent_nd, progress
from monitor.evaluate.facts import Context, Judgement, Words
from monitor.evaluate.lights.level import LEVEL
from monitor.evaluate.shapes import Ratio, quotient, ratio, show, target_text
from monitor.evaluate.sqltext import Spelling, near


def _accrues(ind: Indicator) -> Ratio | None:
    target = ratio(ind.target)
    if target is None or target[0] <= 0 or ind.direction not in (Direction.GE, Direction.GT):
        return None
    return target


def _r(target: Ratio, value: Ratio, ctx: Context) -> tuple[int, int]:
    """r = actual / (target × P) = rn / rd, rd > 0 (P > 0)."""
    (tn, td), (vn, vd), p = target, value, ctx.progress
    return vn * td * p.denominator, vd * tn * p.numerator


class Cumulative:
    kind = Kind.CUMULATIVE

    def judge(self, ind: Indicator, actual: str | None, ctx: Context) -> Judgement:
        target, value = _accrues(ind), ratio(actual)
        if target is None:
            return LEVEL.judge(ind, actual, ctx)
        if value is None:
            return Judgement(Light.NA, None)
        if ctx.progress == 0:
            return Judgement(Light.GREEN, None)
        rn, rd = _r(target, value, ctx)
        pol = ctx.policy
        if rn * pol.red.denominator < pol.red.numerator * rd:
            light = Light.RED
        elif rn * pol.yellow.denominator < pol.yellow.numerator * rd:
            light = Light.YELLOW
        elif rn * pol.blue.denominator >= pol.blue.numerator * rd:
            light = Light.BLUE
        else:
            light = Light.GREEN
        return Judgement(light, quotient(rn, rd))

    def words(self, ind: Indicator, actual: str | None, ctx: Context, light: Light) -> Words:
        target, value = _accrues(ind), ratio(actual)
        if target is None:
            return LEVEL.words(ind, actual, ctx, light)
        if value is None:
            return Words(f"目标{target_text(ind)}，本期尚无可计量的实际值（{actual or '空'}），不参与评价")
        pol, p = ctx.policy, ctx.progress
        head = (
            f"目标{target_text(ind)}，1-{ctx.checkpoint.month}月完成{actual}{ind.measure_unit}，"
            f"序时目标{show(target[0] * p.numerator, target[1] * p.denominator)}{ind.measure_unit}"
            f"（{ctx.progress_note}，序时进度{progress(p)}）"
        )
        if p == 0:
            return Words(f"{head}，本期尚无序时要求 → 绿灯")
        digits = digits_for(pol.red, pol.yellow, pol.blue)
        shown = f"{head}，完成序时目标的{percent_nd(*_r(target, value, ctx), digits=digits)}"
        red, yellow, blue = (pct_threshold(x) for x in (pol.red, pol.yellow, pol.blue))
        if light is Light.RED:
            return Words(f"{shown}（低于{red}为红灯）", ("cumulative_red_below",))
        if light is Light.YELLOW:
            uses = ("cumulative_red_below", "cumulative_yellow_below")
            return Words(f"{shown}（不低于{red}、低于{yellow}为黄灯）", uses)
        if light is Light.BLUE:
            return Words(
                f"{shown}（达到{blue}为蓝灯：超序时，请核实目标是否偏低）", ("cumulative_blue_from",)
            )
        return Words(f"{shown}（达到{yellow}为绿灯）", ("cumulative_yellow_below",))

    @staticmethod
    def accrues_sql() -> str:
        return "b.tnum = 1 AND b.tpos = 1 AND b.direction IN ('≥', '>')"

    def light_sql(self, s: Spelling) -> str:
        r = self._r_sql()
        # r = a / (t·P) < n/d  ⟺  a_n·t_d·pd·d < n·a_d·t_n·pn  (t > 0, P > 0, denominators > 0)
        left, right = "(b.a_n * b.t_d * b.pd)", "(b.a_d * b.t_n * b.pn)"
        exact = (
            f"CASE WHEN {left} * b.rd < b.rn * {right} THEN 'red'"
            f" WHEN {left} * b.yd < b.yn * {right} THEN 'yellow'"
            f" WHEN {left} * b.bd >= b.bn * {right} THEN 'blue' ELSE 'green' END"
        )
        small = "b.asmall = 1 AND b.tsmall = 1 AND b.psmall = 1 AND b.rn IS NOT NULL"
        own = (
            "CASE WHEN b.an = 1 OR b.anum = 0 THEN 'na' WHEN b.pn = 0 THEN 'green'"
            f" WHEN {small} THEN ({exact}) WHEN b.af IS NULL OR b.tf IS NULL THEN '?'"
            f" WHEN {near(r, 'b.red')} OR {near(r, 'b.yellow')} OR {near(r, 'b.blue')} THEN '?'"
            f" WHEN {r} < b.red THEN 'red' WHEN {r} < b.yellow THEN 'yellow'"
            f" WHEN {r} >= b.blue THEN 'blue' ELSE 'green' END"
        )
        return f"CASE WHEN {self.accrues_sql()} THEN ({own}) ELSE ({LEVEL.light_sql(s)}) END"

    def ratio_sql(self, s: Spelling) -> str:
        own = f"CASE WHEN b.anum = 1 AND b.pn <> 0 THEN {self._r_sql()} END"
        return f"CASE WHEN {self.accrues_sql()} THEN ({own}) ELSE ({LEVEL.ratio_sql(s)}) END"

    @staticmethod
    def _r_sql() -> str:
        return "(b.af * b.pd) / (b.tf * b.pn)"


CUMULATIVE = Cumulative()
