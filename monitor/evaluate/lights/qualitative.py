"""Qualitative (定性): the unit's self-assessment (达成目标 / 部分达成… / 未达成…) mapped to a light by
the rules' lists of answers; an answer they do not list is not measurable."""

from __future__ import annotations

from monitor.core.model import Indicator, Kind, Light
from monitor.evaluate.facts import Context, Judgement, Words
from monitor.evaluate.shapes import answer
from monitor.evaluate.sqltext import Spelling


class Qualitative:
    kind = Kind.QUALITATIVE

    def judge(self, ind: Indicator, actual: str | None, ctx: Context) -> Judgement:
        light = ctx.policy.qualitative.get(answer(actual)) if actual else None
        return Judgement(Light(light) if light else Light.NA, None)

    def words(self, ind: Indicator, actual: str | None, ctx: Context, light: Light) -> Words:
        if actual is None or actual == "":
            return Words(f"目标“{ind.target}”，本期尚无评价结论，不参与评价")
        if light is Light.NA:
            known = "、".join(ctx.policy.qualitative)
            return Words(f"评价结论“{actual}”不是规则所列结论（{known}）之一，无法评价")
        return Words(
            f"目标“{ind.target}”，自评“{actual}” → {light.chinese}灯", (f"qualitative_{light.value}",)
        )

    def light_sql(self, s: Spelling) -> str:
        # b.qual: the light the indicator's policy gives the answer (monitor.evaluate.sql.Answers)
        return "CASE WHEN b.an = 1 THEN 'na' ELSE COALESCE(b.qual, 'na') END"

    def ratio_sql(self, s: Spelling) -> str:
        return "NULL"


QUALITATIVE = Qualitative()
