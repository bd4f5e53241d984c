"""Budget execution (预算执行): r = (executed / base) / P against the project policy's thresholds,
compared exactly by integer cross-multiplication (r < t ⟺ executed·P.den·t.den < t.num·P.num·base);
the base is the budget, or the budget plus last year's carry-over."""

from __future__ import annotations

from fractions import Fraction

from monitor.core.model import Light
from monitor.core.wording import digits_for, pct_threshold, percent_nd, progress, wan
from monitor.evaluate.facts import Words
from monitor.evaluate.sqltext import BUDGET_SMALL, Dialect, near
from monitor.rules.policy import ProjectPolicy

PLUS = "budget_plus_carryover"


def base(budget: int, carryover: int, policy: ProjectPolicy) -> int:
    return budget + (carryover if policy.budget_base == PLUS else 0)


def judge(executed: int, base: int, p: Fraction, policy: ProjectPolicy) -> Light:
    if p == 0:
        return Light.GREEN
    rn, rd = executed * p.denominator, base * p.numerator  # r = rn / rd
    red, yellow = policy.budget_red, policy.budget_yellow
    if rn * red.denominator < red.numerator * rd:
        return Light.RED
    if rn * yellow.denominator < yellow.numerator * rd:
        return Light.YELLOW
    return Light.GREEN


def words(
    executed: int, base: int, p: Fraction, p_note: str, month: int, policy: ProjectPolicy, light: Light
) -> Words:
    base_word = "预算（含上年结转）" if policy.budget_base == PLUS else "预算"
    head = (
        f"预算执行率{percent_nd(executed, base)}"
        f"（1-{month}月执行{wan(executed)}/{base_word}{wan(base)}），"
        f"序时进度{progress(p)}（{p_note}）"
    )
    if p == 0:
        return Words(f"{head}，本期尚无序时要求 → 绿灯", ("profile",))
    red, yellow = policy.budget_red, policy.budget_yellow
    r = percent_nd(executed * p.denominator, base * p.numerator, digits=digits_for(red, yellow))
    head += f"，为序时进度的{r}"
    uses: tuple[str, ...]
    if light is Light.RED:
        rule, uses = f"低于{pct_threshold(red)}为红灯", ("budget_red_below",)
    elif light is Light.YELLOW:
        rule = f"不低于{pct_threshold(red)}、低于{pct_threshold(yellow)}为黄灯"
        uses = ("budget_red_below", "budget_yellow_below")
    else:
        rule, uses = f"达到{pct_threshold(yellow)}为绿灯", ("budget_yellow_below",)
    return Words(f"{head}（{rule}）→ {light.chinese}灯", (*uses, "profile"))


def base_sql() -> str:
    """Over the project `p` and its policy row `pp` (pp.plus: the base includes carry-over)."""
    return "(p.budget + CASE WHEN pp.plus = 1 THEN p.carryover ELSE 0 END)"


def light_sql(d: Dialect) -> str:
    """The budget light over `p`, its report `r` and its policy row `pp` (thresholds as floats red,
    yellow and, where small, exactly as rn/rd, yn/yd; P as pn/pd); '?' where only the core can tell."""
    b = base_sql()
    rb = f"({d.real('r.executed')} * pp.pd) / ({d.real(b)} * pp.pn)"
    # r = executed / (base·P) < n/d  ⟺  executed·pd·d < n·base·pn: exact where every factor is small
    left, right = "(r.executed * pp.pd)", f"({b} * pp.pn)"
    small = (
        f"pp.rn IS NOT NULL AND pp.pd < {BUDGET_SMALL} AND pp.pn < {BUDGET_SMALL}"
        f" AND abs(r.executed) < {1 << 40} AND {b} < {1 << 40}"
    )
    return (
        f"CASE WHEN r.project_code IS NULL THEN NULL WHEN {b} <= 0 THEN '?' WHEN pp.pn = 0 THEN 'green'"
        f" WHEN {small} THEN (CASE WHEN {left} * pp.rd < pp.rn * {right} THEN 'red'"
        f" WHEN {left} * pp.yd < pp.yn * {right} THEN 'yellow' ELSE 'green' END)"
        f" WHEN {near(rb, 'pp.red')} OR {near(rb, 'pp.yellow')} THEN '?'"
        f" WHEN {rb} < pp.red THEN 'red' WHEN {rb} < pp.yellow THEN 'yellow' ELSE 'green' END"
    )
