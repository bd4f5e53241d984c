"""The indicator kinds in force and how an indicator's kind is inferred (domain.md §4), with the
SQL form of the inference beside it. Adding a kind: its module, one line in KINDS, and its place in
the inference."""

from __future__ import annotations

from monitor.core.model import Direction, Indicator, Kind
from monitor.evaluate.facts import IndicatorRule
from monitor.evaluate.lights.cumulative import CUMULATIVE
from monitor.evaluate.lights.level import LEVEL
from monitor.evaluate.lights.milestone import MILESTONE
from monitor.evaluate.lights.qualitative import QUALITATIVE
from monitor.evaluate.shapes import date, ratio
from monitor.evaluate.sqltext import Spelling

KINDS: dict[Kind, IndicatorRule] = {rule.kind: rule for rule in (CUMULATIVE, LEVEL, MILESTONE, QUALITATIVE)}
ACCRUING = (Direction.GE, Direction.GT)


def infer_kind(ind: Indicator) -> Kind:
    """An explicit kind wins; 定性 or a text target → qualitative; a date → milestone; 数量 with ≥/>
    and a unit without % → cumulative; everything else → level."""
    if ind.kind is not None:
        return ind.kind
    if ind.direction is Direction.QUALITATIVE:
        return Kind.QUALITATIVE
    if ratio(ind.target) is None:
        return Kind.MILESTONE if date(ind.target) is not None else Kind.QUALITATIVE
    if ind.level2 == "数量" and ind.direction in ACCRUING and "%" not in ind.measure_unit:
        return Kind.CUMULATIVE
    return Kind.LEVEL


def kind_sql(s: Spelling) -> str:
    """infer_kind over the columns of an indicator `i` and its target's shape `vt`."""
    accruing = ", ".join(f"'{d.value}'" for d in ACCRUING)
    return (
        "CASE WHEN i.kind IS NOT NULL AND i.kind <> '' THEN i.kind"
        f" WHEN i.direction = '{Direction.QUALITATIVE.value}' THEN '{Kind.QUALITATIVE.value}'"
        f" WHEN vt.isnum = 1 THEN (CASE WHEN i.level2 = '数量' AND i.direction IN ({accruing})"
        f" AND NOT {s.dialect.has_percent('i.measure_unit')} THEN '{Kind.CUMULATIVE.value}'"
        f" ELSE '{Kind.LEVEL.value}' END)"
        f" WHEN vt.isdate = 1 THEN '{Kind.MILESTONE.value}' ELSE '{Kind.QUALITATIVE.value}' END"
    )
