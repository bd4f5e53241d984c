"""Plain data the engine works on: units, projects, indicators and reports in; results out.

Frozen dataclasses with no database, clock or I/O, shared by import, evaluation, storage and output.
Money is an integer number of fen (分, 0.01 元; 1 万元 = 1,000,000 fen) so that sums and comparisons
are exact; indicator values are kept as canonical text (decimal string, ISO date or words).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

FEN_PER_WAN = 1_000_000  # 1 万元 = 10,000 元 = 1,000,000 分


class Light(StrEnum):
    """A light as stored and shown: lowercase English words (other tools read them)."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"
    BLUE = "blue"  # ahead of schedule (超序时): green when combined, but listed
    NA = "na"  # not measurable at this checkpoint

    @property
    def severity(self) -> int:
        """0 for green/blue/na, 1 for yellow, 2 for red: the order used by worst-of combination."""
        return _SEVERITY[self]

    @property
    def chinese(self) -> str:
        return _CHINESE[self]


_SEVERITY = {Light.GREEN: 0, Light.BLUE: 0, Light.NA: 0, Light.YELLOW: 1, Light.RED: 2}
_CHINESE = {Light.GREEN: "绿", Light.BLUE: "蓝", Light.NA: "不可测", Light.YELLOW: "黄", Light.RED: "红"}


class Status(StrEnum):
    REPORTED = "reported"
    NOT_REPORTED = "not_reported"


class Kind(StrEnum):
    """Indicator rule kinds (domain.md §4)."""

    CUMULATIVE = "cumulative"
    LEVEL = "level"
    MILESTONE = "milestone"
    QUALITATIVE = "qualitative"


class Direction(StrEnum):
    GE = "≥"
    GT = ">"
    EQ = "="
    LE = "≤"
    LT = "<"
    QUALITATIVE = "定性"


_CHECKPOINT_RE = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True, order=True)
class Checkpoint:
    """A monitoring checkpoint `YYYY-MM`, covering months 1..month of the year."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse `YYYY-MM`; raises ValueError naming the bad value."""
        m = _CHECKPOINT_RE.match(text.strip()) if isinstance(text, str) else None
        if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1900:
            raise ValueError(f"checkpoint must be a month YYYY-MM, e.g. 2025-05 (got {text!r})")
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def end_date(self) -> dt.date:
        return dt.date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def previous_in(self, months: list[int]) -> Checkpoint | None:
        """The latest earlier checkpoint of the same year among `months`, if any."""
        earlier = [m for m in months if m < self.month]
        return Checkpoint(self.year, max(earlier)) if earlier else None

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, slots=True)
class Unit:
    code: str
    name: str
    emails: tuple[str, ...]
    supervisor_code: str | None = None


@dataclass(frozen=True, slots=True)
class Project:
    code: str
    name: str
    unit_code: str
    budget: int  # fen
    carryover: int = 0  # fen
    fund_flag: str | None = None  # 01 central direct funds, 02 managed like direct funds, 09 other
    category: str | None = None
    profile: str | None = None  # name of a seasonal profile in the rules


@dataclass(frozen=True, slots=True)
class Indicator:
    project_code: str
    code: str
    level1: str
    level2: str
    name: str
    direction: Direction
    target: str  # canonical: decimal string, ISO date, or text for qualitative
    measure_unit: str = ""
    kind: Kind | None = None  # None: inferred by the rules
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class ProjectReport:
    checkpoint: str
    project_code: str
    executed: int  # fen, 1..X月执行数
    forecast_executed: int | None = None  # fen, 全年预计执行数


@dataclass(frozen=True, slots=True)
class IndicatorReport:
    checkpoint: str
    project_code: str
    indicator_code: str
    actual: str | None  # canonical like Indicator.target; None = blank (not measurable / not done)
    forecast: str | None = None
    possibility: str | None = None  # 确定能 / 有可能 / 完全不可能
    causes: str | None = None  # 经费保障 / 制度保障 / 人员保障 / 硬件条件保障 / 其他, ';'-separated
    cause_text: str | None = None
    measures: str | None = None


@dataclass(frozen=True, slots=True)
class IndicatorResult:
    indicator_code: str
    name: str
    kind: Kind
    light: Light
    ratio: float | None  # cumulative: actual/(target×P); level: signed relative deviation; else None
    reason: str
    target: str = ""
    actual: str | None = None
    measure_unit: str = ""
    direction: str = ""


@dataclass(frozen=True, slots=True)
class ProjectResult:
    checkpoint: str
    project_code: str
    project_name: str
    unit_code: str
    status: Status
    budget: int  # fen
    executed: int | None  # fen; None when not reported
    execution_rate: float | None  # executed / budget base
    time_progress: float  # P
    budget_light: Light | None
    target_light: Light | None  # None when no indicator is measurable
    light: Light | None  # None when not reported
    reasons: tuple[str, ...] = ()
    indicators: tuple[IndicatorResult, ...] = field(default_factory=tuple)


def wan(fen: int | None) -> str:
    """Format fen as 万元 with two decimals (exact, half-up) and thousands separators: 1,180.00."""
    if fen is None:
        return ""
    return f"{(Decimal(fen) / FEN_PER_WAN).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


@dataclass
class Inputs:
    """One checkpoint's inputs, as the pure evaluation core takes them."""

    units: dict[str, Unit]
    projects: list[Project]
    indicators: dict[str, list[Indicator]]  # by project code
    project_reports: dict[str, ProjectReport]  # by project code
    indicator_reports: dict[tuple[str, str], IndicatorReport]  # by (project code, indicator code)
