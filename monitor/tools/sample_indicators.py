"""A sample project's indicators: a realistic mix drawn from its archetype, their targets, and their
May and August report rows (on track, slightly or badly behind, with causes and measures where behind).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Mapping
from typing import NamedTuple

from monitor.tools.sample_kinds import Kind, Spec
from monitor.tools.sample_rows import Rows, fmt, money

# fmt: off
_LEVEL1 = ("产出指标", "产出指标", "产出指标", "成本指标", "效益指标", "满意度指标")
_EXTRA_GROUP_WEIGHTS = (3, 2, 2, 1, 2, 0)  # slots beyond the core four: 数量 质量 时效 成本 效益 满意度
_COUNT_WEIGHTS = (5, 12, 24, 24, 14, 9, 5, 3, 2, 2)  # indicators per project, 3..12: mean ≈ 6.2
# Ratio to time progress by state (0 on schedule, 1 slightly behind: yellow, 2 badly behind: red) for
# cumulative indicators (actual / target / P).
_PACE = ((0.82, 1.18), (0.61, 0.79), (0.1, 0.59))
_QUALITATIVE = ("达成目标", "部分达成目标并具有一定效果", "未达成目标且效果较差")
_CAUSES = {
    "经费保障": "上级资金尚未下达，配套资金未落实", "制度保障": "实施方案审批及招标程序较长",
    "人员保障": "专业技术人员不足，工作力量薄弱", "硬件条件保障": "设备到货延迟，场地条件不具备",
    "其他": "受天气和季节性因素影响，工作推进滞后",
}
_MEASURES = ("加快项目实施进度，确保按期完成", "加强与上级部门沟通，督促资金及时到位",
             "优化实施方案，倒排工期压实责任", "加强人员培训和调配，补齐工作力量",
             "每月调度进度，及时研究解决问题")
# fmt: on


class Project(NamedTuple):
    """What the indicators of a project are drawn from."""

    code: str
    kind: Kind
    profile: str
    budget: int
    progress: tuple[float, float]
    p_issue: float  # the chance each indicator falls behind


def write_indicators(
    rng: random.Random,
    p: Project,
    year: int,
    reported: list[bool],
    out: Mapping[str, Rows],
    later: Mapping[str, Rows],
) -> None:
    """The project's indicators, and their May and August report rows where its reports were `reported`."""
    may, aug = f"{year}-05", f"{year}-08"
    ends = (dt.date(year, 5, 31), dt.date(year, 8, 31))
    for i, spec in enumerate(_pick_specs(rng, p.kind, rng.choices(range(3, 13), _COUNT_WEIGHTS)[0]), 1):
        ind_code = f"I{i:02d}"
        target = _target(rng, spec, p.budget, year)
        level1 = "产出指标" if spec.group == 3 and rng.random() < 0.3 else _LEVEL1[spec.group]
        kind_text = spec.kind if rng.random() < 0.05 else ""
        ind_profile = p.profile if p.profile and spec.kind == "cumulative" and rng.random() < 0.5 else ""
        row = (p.code, ind_code, level1, spec.level2, spec.name, spec.direction, target, spec.unit, kind_text)
        out["indicators"].writerow((*row, ind_profile))
        values = _indicator_values(rng, spec, target, p.progress, ends, p.p_issue)
        for cp, writer, value, ok in zip((may, aug), (out, later), values, reported, strict=True):
            if ok and rng.random() >= 0.03:  # a few indicator rows are left blank by the unit
                writer["indicator_reports"].writerow((cp, p.code, ind_code, *value))


def _pick_specs(rng: random.Random, kind: Kind, n: int) -> list[Spec]:
    """n distinct indicators: a quantity, a quality, a benefit and a satisfaction one, then a weighted mix."""
    wanted = [0, 1, 5] if n == 3 else [0, 1, 4, 5, *rng.choices(range(6), _EXTRA_GROUP_WEIGHTS, k=n - 4)]
    chosen: list[Spec] = []
    for g, k in enumerate(map(wanted.count, range(6))):
        pool = kind.pools[g]
        if k == 1 and pool:
            chosen.append(rng.choice(pool))
        elif k:
            chosen.extend(rng.sample(pool, min(k, len(pool))))
    if len(chosen) < n:
        rest = [s for pool in kind.pools[:5] for s in pool if s not in chosen]
        chosen.extend(rng.sample(rest, min(len(rest), n - len(chosen))))
    chosen.sort(key=lambda s: s.group)
    return chosen


def _target(rng: random.Random, spec: Spec, budget: int, year: int) -> str:
    if spec.kind == "cumulative":
        # Bigger projects deliver more: scale the typical range by √(budget / mean budget).
        value = max(
            spec.span[0], round(rng.randint(*spec.span) * min(2.0, max(0.15, math.sqrt(budget / 33000))))
        )
        step = 10 ** max(0, len(str(value)) - 2)  # two significant digits: 123456 -> 120000
        return str(round(value / step) * step)
    if spec.kind == "milestone":
        return f"{year}-{rng.choice(spec.targets)}"
    return money(budget) if spec.targets[0] == "@" else rng.choice(spec.targets)


def _indicator_values(
    rng: random.Random,
    spec: Spec,
    target: str,
    progress: tuple[float, float],
    ends: tuple[dt.date, dt.date],
    p_issue: float,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(actual, forecast, possibility, causes, cause_text, measures) at May and at August."""
    r = rng.random()
    state_may = 0 if r >= p_issue else 1 if r < p_issue * 0.6 else 2  # 0 on track, 1 slightly behind, 2 badly
    state_aug = 0 if state_may and rng.random() < 0.5 else state_may
    rows: list[tuple[str, ...]] = []
    done: dt.date | None = None  # milestones: the day it is (or will be) done, None if not this year
    due = dt.date.fromisoformat(target) if spec.kind == "milestone" else dt.date.min
    if spec.kind == "milestone":
        if state_may == 0:
            done = due - dt.timedelta(days=rng.randint(0, 40))
        elif rng.random() < 0.8:
            done = due + dt.timedelta(days=rng.randint(5, 75))
    previous = 0
    for c, state in enumerate((state_may, state_aug)):
        behind = state > 0
        if spec.kind == "cumulative":
            ahead = state == 0 and rng.random() < 0.06  # ahead of schedule (blue)
            pace = rng.uniform(1.2, 1.8) if ahead else rng.uniform(*_PACE[state])
            previous = max(previous, round(int(target) * progress[c] * pace))
            actual = str(previous)
        elif spec.kind == "milestone":
            actual = done.isoformat() if done and done <= ends[c] else ""
            behind = due < ends[c] and (done is None or done > due)
        elif spec.kind == "qualitative":
            actual = _QUALITATIVE[state]
        elif spec.group == 5 and (c == 0 or rng.random() < 0.65):
            actual, behind = "", False  # satisfaction survey not done yet
        else:
            actual = _level_value(rng, spec, float(target), state)
        final = "达成目标" if spec.kind == "qualitative" else target
        if behind:
            cause = rng.choice(tuple(_CAUSES))
            possibility = rng.choice(("有可能", "有可能", "确定能"))
            if state == 2 and rng.random() < 0.2:
                possibility = "完全不可能"
            forecast = final if rng.random() < 0.5 else ""
            rows.append((actual, forecast, possibility, cause, _CAUSES[cause], rng.choice(_MEASURES)))
        else:
            possibility = "确定能" if rng.random() < 0.9 else ""
            rows.append((actual, final if rng.random() < 0.4 else "", possibility, "", "", ""))
    return rows[0], rows[1]


def _level_value(rng: random.Random, spec: Spec, target: float, state: int) -> str:
    """A level actual: met in the indicator's direction (state 0), within 5 % (1) or further off (2)."""
    if target == 0:
        return "0" if state == 0 else str(rng.randint(1, 3))
    higher = spec.direction in "≥>="
    if state == 0:
        if spec.direction == "=":
            return fmt(target)
        if not higher:
            return fmt(target * rng.uniform(0.6, 0.99))
        value = target * rng.uniform(1.01, 1.1)
        return fmt(max(target, min(value, 100.0)) if spec.unit == "%" else value)
    miss = rng.uniform(0.006, 0.045) if state == 1 else rng.uniform(0.07, 0.3)
    return fmt(target * (1 - miss if higher else 1 + miss))
