"""What a light rule is given and what it gives back. A rule decides (`judge`: a light and a
ratio, exactly) and says why (`words`: the reason from the same facts and the light decided),
separately: the set-based form stores the facts with each light, and a reader formats the reason
from them without deciding anything again."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from monitor.core.model import Checkpoint, Indicator, Kind, Light
from monitor.evaluate.sqltext import Spelling
from monitor.rules.policy import IndicatorPolicy


@dataclass(frozen=True, slots=True)
class Context:
    """The rules in force for one indicator at one checkpoint."""

    checkpoint: Checkpoint
    progress: Fraction  # P for this indicator
    progress_note: str
    policy: IndicatorPolicy


@dataclass(frozen=True, slots=True)
class Judgement:
    light: Light
    ratio: float | None


@dataclass(frozen=True, slots=True)
class Words:
    text: str
    uses: tuple[str, ...] = ()  # the rule values (RuleSet fields) the light was decided by


class IndicatorRule(Protocol):
    """One indicator kind: its Python judgement, its words and its SQL form, side by side."""

    kind: Kind

    def judge(self, ind: Indicator, actual: str | None, ctx: Context) -> Judgement: ...

    def words(self, ind: Indicator, actual: str | None, ctx: Context, light: Light) -> Words: ...

    def light_sql(self, s: Spelling) -> str:
        """The light of a reported indicator of this kind, over the statement's columns `b.*`."""
        ...

    def ratio_sql(self, s: Spelling) -> str:
        """Its ratio (NULL where the judgement has none)."""
        ...
