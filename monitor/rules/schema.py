"""The rule file's shape: pydantic models of one `rules/*.yaml` file (the sections, the override and
what it matches), the bounds every number in it is checked against, and the strict base model the
rule records share. Cross-field checks are in checks.py; merging and the RuleSet in load.py.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.config.yamlfile import places

# Every number in a rule file is finite and within its documented range (README, "How colours are
# decided"), with few enough decimal places that exact arithmetic on it stays cheap.
THRESHOLD_MAX = Decimal(10)  # r thresholds are ratios to time progress: 10 is ten times the schedule
AMOUNT_MAX = Decimal(100_000_000)  # 万元: a budget bound beyond 1万亿元 is a typo
Share = Annotated[Decimal, places(12)]  # profile shares: 0..1 is checked by profile_problems
Threshold = Annotated[Decimal, Field(ge=0, le=THRESHOLD_MAX), places(12)]
Amount = Annotated[Decimal, Field(ge=0, le=AMOUNT_MAX), places(6)]  # 万元, to the fen


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class BudgetPatch(Strict):
    """Budget execution light: r = (executed / base) / P; r < red_below → red, < yellow_below → yellow."""

    base: Literal["budget", "budget_plus_carryover"] | None = None
    red_below: Threshold | None = None
    yellow_below: Threshold | None = None


class CumulativePatch(Strict):
    """Cumulative indicators: r = actual / (target × P); red / yellow below, blue from."""

    red_below: Threshold | None = None
    yellow_below: Threshold | None = None
    blue_from: Threshold | None = None


class LevelPatch(Strict):
    """Level indicators: met → green; missed by at most `tolerance` of the target → yellow; else red."""

    tolerance: Annotated[Decimal, places(12)] | None = Field(default=None, ge=0, lt=1)


class QualitativePatch(Strict):
    green: tuple[str, ...] | None = None
    yellow: tuple[str, ...] | None = None
    red: tuple[str, ...] | None = None


class IndicatorPatch(Strict):
    cumulative: CumulativePatch | None = None
    level: LevelPatch | None = None
    qualitative: QualitativePatch | None = None
    impossible: tuple[str, ...] | None = None  # 完成目标可能性 values that force red


class TimeProgressPatch(Strict):
    mode: Literal["month", "day"] | None = None


class Match(Strict):
    """What an override applies to: every named criterion must match (lists mean any of)."""

    fund_flag: tuple[str, ...] | None = None
    unit: tuple[str, ...] | None = None
    department: tuple[str, ...] | None = None  # supervising department (主管部门) unit code
    project: tuple[str, ...] | None = None
    category: tuple[str, ...] | None = None
    level2: tuple[str, ...] | None = None  # indicator 二级 (only indicator settings may then be set)
    budget_min: Amount | None = None  # 万元, inclusive
    budget_max: Amount | None = None  # 万元, exclusive

    @field_validator("fund_flag", "unit", "department", "project", "category", "level2", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        if isinstance(v, str | int):
            return (str(v),)
        if isinstance(v, list):
            return tuple(str(x) for x in v)
        return v

    def criteria(self) -> list[str]:
        return [k for k, v in self.model_dump().items() if v is not None]


class Override(Strict):
    name: str = Field(min_length=1)
    match: Match
    budget: BudgetPatch | None = None
    indicators: IndicatorPatch | None = None
    combine: Literal["worst", "matrix"] | None = None
    profile: str | None = None  # seasonal profile for the matched projects (or indicators)

    @field_validator("match")
    @classmethod
    def _match_names_something(cls, m: Match) -> Match:
        if not m.criteria():
            raise ValueError(
                "override matches nothing: name at least one of " + ", ".join(Match.model_fields)
            )
        return m

    @model_validator(mode="after")
    def _names_something(self) -> Override:
        if self.budget is None and self.indicators is None and self.combine is None and self.profile is None:
            raise ValueError("override changes nothing: set budget, indicators, combine or profile")
        if self.match.level2 is not None and (self.budget is not None or self.combine is not None):
            raise ValueError(
                "an override matching level2 applies to indicators: it cannot set budget or combine"
            )
        return self


class RuleFile(Strict):
    """One file under rules/: every section optional, merged with the others."""

    time_progress: TimeProgressPatch | None = None
    budget: BudgetPatch | None = None
    indicators: IndicatorPatch | None = None
    combine: Literal["worst", "matrix"] | None = None
    profiles: dict[str, tuple[Share, ...]] | None = None
    profile_names: dict[str, str] | None = None  # profile -> the words units read (季节曲线“…”)
    overrides: tuple[Override, ...] | None = None
