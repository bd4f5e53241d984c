"""The shape of an admin-written rule test file (format: README): a file checkpoint and cases, each
with inline units, projects, indicators and their reports, an optional rule change and what each
project is expected to get (lights, reason fragments). Pydantic models; compiled by ruletest_compile.py.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from monitor.rules.schema import Strict

Value = str | int | Decimal | dt.date
ProjectLight = Literal["green", "yellow", "red", "not_reported"]


class UnitCase(Strict):
    code: str | int
    name: str = "测试单位"
    email: str = "unit@example.org"
    supervisor: str | int | None = None  # supervising department (主管部门) unit code


class IndicatorCase(Strict):
    """An indicator and, when `actual` or `possibility` is given (even blank), its report row."""

    code: str | int | None = None  # default I01, I02 … by position
    name: str = "测试指标"
    level1: str = "产出指标"
    level2: str = "数量"
    direction: str = "≥"
    target: Value
    measure_unit: str = ""
    kind: str | None = None  # default: inferred as the rules say
    profile: str | None = None
    actual: Value | None = None
    possibility: str | None = None


class Expect(Strict):
    light: ProjectLight | None = None
    budget: ProjectLight | None = None
    target: Literal["green", "yellow", "red", "na"] | None = None  # na: no measurable indicator
    indicators: dict[str | int, Literal["green", "yellow", "red", "blue", "na"]] | None = None
    reasons: tuple[str, ...] = ()  # fragments, each found in a project or indicator reason

    def empty(self) -> bool:
        return not (self.light or self.budget or self.target or self.indicators or self.reasons)


class ProjectCase(Strict):
    """A project and, when `executed` is given, its execution report (none: not reported)."""

    code: str | int | None = None  # default P1, P2 … by position
    name: str = "测试项目"
    unit: str | int | None = None  # default: the case's first unit
    budget: Value  # 万元
    carryover: Value = 0
    executed: Value | None = None
    fund_flag: str | int | None = None
    category: str | None = None
    profile: str | None = None
    indicators: tuple[IndicatorCase, ...] = ()
    expect: Expect | None = None


class Case(Strict):
    name: str = Field(min_length=1)
    checkpoint: Value | None = None  # default: the file's checkpoint
    rules: dict[str, Any] | None = None  # a rule file's sections, merged over the rules in force
    units: tuple[UnitCase, ...] = ()
    projects: tuple[ProjectCase, ...]


class TestFile(Strict):
    checkpoint: Value | None = None
    cases: list[Any]  # each validated as a Case on its own, so one bad case hides no other problem


DEFAULT_UNIT = UnitCase(code="U1")
