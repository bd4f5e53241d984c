"""What a light rule is given and what it gives back. A rule decides (`judge`: a light and a
ratio, exactly) and says why (`words`: the reason from the same facts and the light decided),
separately: the set-based form stores the facts with each light, and a reader formats the reason
from them without deciding anything again."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

from monitor.core.model import Checkpoint, Indicator, Kind, Light
from monitor.evaluate.sqltext import Spelling
from monitor.rules.load import Origin
from monitor.rules.policy import IndicatorPolicy, ProjectPolicy


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


# -- the policies a run used, as facts stored with it (run_policy) -------------------------------------


def _fraction(x: Fraction) -> str:
    return f"{x.numerator}/{x.denominator}"


def _origins(origins: Mapping[str, Origin]) -> dict[str, Any]:
    return {k: o.model_dump(exclude_defaults=True) for k, o in origins.items()}


def project_facts(policy: ProjectPolicy, p: Fraction, note: str) -> str:
    """A project policy and its time progress, as stored for formatting reasons (JSON)."""
    return json.dumps(
        {
            "scope": "project",
            "budget_base": policy.budget_base,
            "red": _fraction(policy.budget_red),
            "yellow": _fraction(policy.budget_yellow),
            "combine": policy.combine,
            "profile": policy.profile,
            "origins": _origins(policy.origins),
            "p": _fraction(p),
            "note": note,
        },
        ensure_ascii=False,
    )


def indicator_facts(policy: IndicatorPolicy, p: Fraction, note: str, own: bool) -> str:
    """An indicator policy, its time progress and whether that came from the indicator's own profile."""
    return json.dumps(
        {
            "scope": "indicator",
            "red": _fraction(policy.red),
            "yellow": _fraction(policy.yellow),
            "blue": _fraction(policy.blue),
            "tolerance": _fraction(policy.tolerance),
            "qualitative": policy.qualitative,
            "impossible": sorted(policy.impossible),
            "profile": policy.profile,
            "origins": _origins(policy.origins),
            "p": _fraction(p),
            "note": note,
            "own": own,
        },
        ensure_ascii=False,
    )


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored policy read back: the project or indicator policy, P, its note, and (indicators)
    whether P came from the indicator's own profile."""

    project: ProjectPolicy | None
    indicator: IndicatorPolicy | None
    progress: Fraction
    note: str
    own: bool


def stored(text: str) -> Stored:
    f = json.loads(text)
    origins = {k: Origin(**v) for k, v in f["origins"].items()}
    if f["scope"] == "project":
        project = ProjectPolicy(
            (),
            f["budget_base"],
            Fraction(f["red"]),
            Fraction(f["yellow"]),
            f["combine"],
            f["profile"],
            origins,
        )
        return Stored(project, None, Fraction(f["p"]), f["note"], False)
    indicator = IndicatorPolicy(
        Fraction(f["red"]),
        Fraction(f["yellow"]),
        Fraction(f["blue"]),
        Fraction(f["tolerance"]),
        dict(f["qualitative"]),
        frozenset(f["impossible"]),
        f["profile"],
        origins,
    )
    return Stored(None, indicator, Fraction(f["p"]), f["note"], bool(f["own"]))
