"""Rules compiled for evaluation: a RuleSet in, per-project and per-indicator policies out, with
thresholds as exact Fractions and where each value in force was set (a rule file's line or an
override: RuleSet.origins, then the overrides that match, in order). Policies are cached by the
set of overrides that match, so 100,000 projects share a handful of policy objects.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from monitor.core.model import FEN_PER_WAN, Checkpoint, Project, Unit
from monitor.rules.fields import patch_fields
from monitor.rules.load import Origin, RuleSet
from monitor.rules.schema import Match


@dataclass(frozen=True, slots=True)
class ProjectPolicy:
    key: tuple[int, ...]  # indices of the matching overrides
    budget_base: str
    budget_red: Fraction
    budget_yellow: Fraction
    combine: str
    profile: str | None  # from an override; the project's own column is used when None
    origins: Mapping[str, Origin]  # RuleSet field (or "profile") -> where its value in force was set


@dataclass(frozen=True, slots=True)
class IndicatorPolicy:
    red: Fraction
    yellow: Fraction
    blue: Fraction
    tolerance: Fraction
    qualitative: dict[str, str]  # answer -> light name
    impossible: frozenset[str]
    profile: str | None
    origins: Mapping[str, Origin]  # RuleSet field (or "profile") -> where its value in force was set


def frac(x: Decimal | int) -> Fraction:
    return Fraction(x)


@dataclass(frozen=True, slots=True)
class _CompiledMatch:
    fund_flag: frozenset[str] | None
    unit: frozenset[str] | None
    department: frozenset[str] | None
    project: frozenset[str] | None
    category: frozenset[str] | None
    level2: frozenset[str] | None
    budget_min: int | None  # fen
    budget_max: int | None

    @classmethod
    def of(cls, m: Match) -> _CompiledMatch:
        def s(v: tuple[str, ...] | None) -> frozenset[str] | None:
            return frozenset(v) if v is not None else None

        def fen(v: Decimal | None) -> int | None:
            return int(v * FEN_PER_WAN) if v is not None else None

        return cls(
            s(m.fund_flag),
            s(m.unit),
            s(m.department),
            s(m.project),
            s(m.category),
            s(m.level2),
            fen(m.budget_min),
            fen(m.budget_max),
        )

    def matches_project(self, p: Project, unit: Unit | None) -> bool:
        dept = unit.supervisor_code if unit else None
        return (
            (self.fund_flag is None or p.fund_flag in self.fund_flag)
            and (self.unit is None or p.unit_code in self.unit)
            and (self.department is None or dept in self.department or p.unit_code in self.department)
            and (self.project is None or p.code in self.project)
            and (self.category is None or p.category in self.category)
            and (self.budget_min is None or p.budget >= self.budget_min)
            and (self.budget_max is None or p.budget < self.budget_max)
        )


class Policies:
    """Compiled rules: time progress, and the policy for any project or indicator."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._matches = [_CompiledMatch.of(src.override.match) for src in rules.overrides]
        self._project_cache: dict[tuple[int, ...], ProjectPolicy] = {}
        self._indicator_cache: dict[tuple[tuple[int, ...], str], IndicatorPolicy] = {}
        self._progress: dict[tuple[Checkpoint, str | None], tuple[Fraction, str]] = {}
        self._profiles = {name: tuple(Fraction(s) for s in shares) for name, shares in rules.profiles.items()}

    @property
    def matches(self) -> list[_CompiledMatch]:
        """The overrides' match criteria, in rule order (monitor.evaluate.sql turns them into SQL)."""
        return self._matches

    # -- time progress -------------------------------------------------------------------------

    def progress(self, checkpoint: Checkpoint, profile: str | None) -> tuple[Fraction, str]:
        """Time progress P at `checkpoint` and how it was obtained (for reasons); computed once."""
        key = (checkpoint, profile)
        found = self._progress.get(key)
        if found is None:
            found = self._progress[key] = self._compute_progress(checkpoint, profile)
        return found

    def _compute_progress(self, checkpoint: Checkpoint, profile: str | None) -> tuple[Fraction, str]:
        if profile and profile in self._profiles:
            share = self._profiles[profile][checkpoint.month - 1]
            label = self.rules.profile_names.get(profile, profile)
            return share, f"季节曲线“{label}”{checkpoint.month}月末累计占比"
        if self.rules.time_progress_mode == "day":
            end = checkpoint.end_date
            days = 366 if calendar.isleap(end.year) else 365
            return Fraction(end.timetuple().tm_yday, days), f"按天计算{end.timetuple().tm_yday}/{days}"
        note = f"按月计算{checkpoint.month}/12"
        if profile:
            note += f"；未定义的季节曲线“{profile}”未使用"
        return Fraction(checkpoint.month, 12), note

    def has_profile(self, name: str) -> bool:
        return name in self._profiles

    # -- policies --------------------------------------------------------------------------------

    def project_key(self, project: Project, unit: Unit | None) -> tuple[int, ...]:
        return tuple(i for i, m in enumerate(self._matches) if m.matches_project(project, unit))

    def project_policy(self, key: tuple[int, ...]) -> ProjectPolicy:
        cached = self._project_cache.get(key)
        if cached is not None:
            return cached
        r = self.rules
        fields: dict[str, Any] = {}
        profile = None
        origins = dict(r.origins)
        for i in key:
            src = r.overrides[i]
            ov = src.override
            if self._matches[i].level2 is not None:
                continue
            patch = patch_fields(ov.budget, None, ov.combine)
            fields.update(patch)
            if ov.profile:
                profile = ov.profile
                patch["profile"] = ov.profile
            origins.update(dict.fromkeys(patch, src.origin))
        eff = r.model_copy(update=fields)
        policy = ProjectPolicy(
            key,
            eff.budget_base,
            frac(eff.budget_red_below),
            frac(eff.budget_yellow_below),
            eff.combine,
            profile,
            origins,
        )
        self._project_cache[key] = policy
        return policy

    def indicator_policy(self, key: tuple[int, ...], level2: str) -> IndicatorPolicy:
        cached = self._indicator_cache.get((key, level2))
        if cached is not None:
            return cached
        r = self.rules
        fields: dict[str, Any] = {}
        profile = None
        origins = dict(r.origins)
        for i in key:
            m = self._matches[i]
            if m.level2 is not None and level2 not in m.level2:
                continue
            src = r.overrides[i]
            ov = src.override
            patch = patch_fields(None, ov.indicators, None)
            fields.update(patch)
            if ov.profile and m.level2 is not None:
                profile = ov.profile
                patch["profile"] = ov.profile
            origins.update(dict.fromkeys(patch, src.origin))
        eff = r.model_copy(update=fields)
        qual = {a: "green" for a in eff.qualitative_green}
        qual.update({a: "yellow" for a in eff.qualitative_yellow})
        qual.update({a: "red" for a in eff.qualitative_red})
        policy = IndicatorPolicy(
            frac(eff.cumulative_red_below),
            frac(eff.cumulative_yellow_below),
            frac(eff.cumulative_blue_from),
            frac(eff.level_tolerance),
            qual,
            frozenset(eff.impossible),
            profile,
            origins,
        )
        self._indicator_cache[(key, level2)] = policy
        return policy
