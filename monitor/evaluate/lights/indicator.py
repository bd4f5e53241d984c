"""One indicator's light: forced red when the unit says the target is impossible to reach (完成目标
可能性 among the rules' `impossible` answers), not measurable when not reported (not reported), else
its kind's rule (monitor.evaluate.lights.registry)."""

from __future__ import annotations

from monitor.core.model import Indicator, IndicatorReport, Kind, Light
from monitor.evaluate.facts import Context, Judgement, Words
from monitor.evaluate.lights.not_reported import INDICATOR_WORDS
from monitor.evaluate.lights.registry import KINDS
from monitor.evaluate.shapes import one_line
from monitor.evaluate.sqltext import Spelling


def forced(report: IndicatorReport | None, ctx: Context) -> str | None:
    """The possibility that forces red, as the unit wrote it; None if none does."""
    if report is None or not report.possibility:
        return None
    said = report.possibility.strip()
    return said if said in ctx.policy.impossible else None


def judge(ind: Indicator, kind: Kind, report: IndicatorReport | None, ctx: Context) -> Judgement:
    if forced(report, ctx) is not None:
        return Judgement(Light.RED, None)
    if report is None and kind is not Kind.MILESTONE:
        return Judgement(Light.NA, None)
    return KINDS[kind].judge(ind, report.actual if report else None, ctx)


def words(
    ind: Indicator,
    kind: Kind,
    actual: str | None,
    reported: bool,
    impossible: str | None,
    ctx: Context,
    light: Light,
) -> Words:
    """The reason for `light` from the facts it was decided on (`impossible`: what `forced` found)."""
    if impossible is not None:
        said = Words(f"单位填报完成目标可能性为“{impossible.strip()}” → 红灯", ("impossible",))
    elif not reported and kind is not Kind.MILESTONE:
        said = Words(INDICATOR_WORDS)
    else:
        said = KINDS[kind].words(ind, actual, ctx, light)
    return Words(one_line(said.text), said.uses)


def light_sql(s: Spelling) -> str:
    """b.imp: 1 where the policy finds the possibility impossible (monitor.evaluate.sql.Answers)."""
    by_kind = " ".join(
        f"WHEN '{kind.value}' THEN ({rule.light_sql(s)})"
        for kind, rule in KINDS.items()
        if kind is not Kind.MILESTONE
    )
    milestone = KINDS[Kind.MILESTONE].light_sql(s)
    return (
        "CASE WHEN b.reported = 1 AND b.imp = 1 THEN 'red'"
        f" WHEN b.kind = '{Kind.MILESTONE.value}' THEN ({milestone})"
        f" WHEN b.reported = 0 THEN 'na' ELSE (CASE b.kind {by_kind} END) END"
    )


def ratio_sql(s: Spelling) -> str:
    by_kind = " ".join(f"WHEN '{kind.value}' THEN ({rule.ratio_sql(s)})" for kind, rule in KINDS.items())
    return f"CASE WHEN b.reported = 0 OR b.imp = 1 THEN NULL ELSE (CASE b.kind {by_kind} END) END"


def impossible_sql() -> str:
    """The possibility that forced red (the fact its reason names)."""
    return "CASE WHEN b.reported = 1 AND b.imp = 1 THEN b.possibility END"
