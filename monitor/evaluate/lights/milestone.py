"""Milestone (时间节点): done by the due date, or not done but not yet due at the checkpoint's end →
green; else red."""

from __future__ import annotations

from monitor.core.model import Indicator, Kind, Light
from monitor.evaluate.facts import Context, Judgement, Words
from monitor.evaluate.shapes import date
from monitor.evaluate.sqltext import Spelling, lit


class Milestone:
    kind = Kind.MILESTONE

    def judge(self, ind: Indicator, actual: str | None, ctx: Context) -> Judgement:
        due = date(ind.target)
        if due is None:
            return Judgement(Light.NA, None)
        if actual is None or actual == "":
            return Judgement(Light.RED if due < ctx.checkpoint.end_date else Light.GREEN, None)
        done = date(actual)
        if done is None:
            return Judgement(Light.NA, None)
        return Judgement(Light.GREEN if done <= due else Light.RED, None)

    def words(self, ind: Indicator, actual: str | None, ctx: Context, light: Light) -> Words:
        due = date(ind.target)
        if due is None:
            return Words(f"目标值“{ind.target}”不是日期，无法按时间节点评价")
        plan, end = f"计划{due.isoformat()}前完成", ctx.checkpoint.end_date.isoformat()
        if actual is None or actual == "":
            if light is Light.RED:
                return Words(f"{plan}，截至{end}尚未完成，已逾期 → 红灯")
            return Words(f"{plan}，截至{end}尚未到期 → 绿灯")
        done = date(actual)
        if done is None:
            return Words(f"完成时间“{actual}”不是日期，无法评价")
        if light is Light.GREEN:
            return Words(f"{plan}，已于{done.isoformat()}完成 → 绿灯")
        return Words(f"{plan}，{done.isoformat()}才完成，延期 → 红灯")

    def light_sql(self, s: Spelling) -> str:
        end = lit(s.checkpoint.end_date.isoformat())
        return (
            "CASE WHEN b.tdate = 0 THEN 'na'"
            f" WHEN b.an = 1 THEN (CASE WHEN b.tiso < {end} THEN 'red' ELSE 'green' END)"
            " WHEN b.adate = 0 THEN 'na' WHEN b.aiso <= b.tiso THEN 'green' ELSE 'red' END"
        )

    def ratio_sql(self, s: Spelling) -> str:
        return "NULL"


MILESTONE = Milestone()
