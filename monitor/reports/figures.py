"""Headline figures of a checkpoint, pure: report rows in; per-department counts and amounts by light
(ranked, the tail summed as 其他), the histogram of the ratio that decides the budget light and the
summary paragraph in Chinese out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from monitor.core.model import FEN_PER_WAN
from monitor.core.wording import percent_nd, progress, wan
from monitor.reports.data import ReportData, Row
from monitor.reports.trend import KEY_WORD, KEYS, key

FEN_PER_YI = 10_000 * FEN_PER_WAN  # 1 亿元


@dataclass
class Tally:
    """Counts and budget amounts (fen) by light key, for the bureau or one department."""

    code: str
    name: str
    count: Counter[str] = field(default_factory=Counter)
    amount: Counter[str] = field(default_factory=Counter)
    executed: int = 0  # fen, reported projects
    reported_budget: int = 0  # fen, reported projects

    def add(self, row: Row) -> None:
        k = key(row.light)
        self.count[k] += 1
        self.amount[k] += row.budget
        if row.executed is not None:
            self.executed += row.executed
            self.reported_budget += row.budget

    @property
    def projects(self) -> int:
        return sum(self.count[k] for k in KEYS)

    @property
    def budget(self) -> int:
        return sum(self.amount[k] for k in KEYS)

    @property
    def warned(self) -> int:
        return self.count["red"] + self.count["yellow"]

    def rate(self) -> str:
        """Executed over budget of the reported projects, truncated like every shown rate."""
        return percent_nd(self.executed, self.reported_budget) if self.reported_budget else "-"

    def warned_share(self) -> str:
        return percent_nd(self.warned, self.projects) if self.projects else "-"

    def merge(self, other: Tally) -> None:
        """Add `other`'s projects to this tally."""
        self.count.update(other.count)
        self.amount.update(other.amount)
        self.executed += other.executed
        self.reported_budget += other.reported_budget


def total(rows: Sequence[Row], name: str = "合计") -> Tally:
    t = Tally("", name)
    for r in rows:
        t.add(r)
    return t


def departments(rows: Sequence[Row]) -> list[Tally]:
    """One tally per supervising department, most red first, then red amount, then yellow."""
    by: dict[str, Tally] = {}
    for r in rows:
        t = by.get(r.department_code)
        if t is None:
            t = by[r.department_code] = Tally(r.department_code, r.department_name)
        t.add(r)
    return sorted(by.values(), key=lambda t: (-t.count["red"], -t.amount["red"], -t.count["yellow"], t.code))


def top_and_rest(tallies: Sequence[Tally], n: int) -> list[Tally]:
    """The first `n` tallies, and the others summed in one named 其他（k 个部门）: all projects counted."""
    if len(tallies) <= n:
        return list(tallies)
    rest = Tally("", f"其他（{len(tallies) - n} 个部门）")
    for t in tallies[n:]:
        rest.merge(t)
    return [*tallies[:n], rest]


@dataclass(frozen=True)
class Bin:
    low: int  # percent, inclusive
    high: int | None  # percent, exclusive; None: open-ended
    count: Counter[str]  # by budget light key

    @property
    def label(self) -> str:
        return f"≥{self.low}%" if self.high is None else f"{self.low}–{self.high}%"


def histogram(rows: Sequence[Row], step: int = 10, top: int = 150) -> tuple[list[Bin], int]:
    """Reported projects by r = execution rate ÷ the project's own time progress P (a seasonal
    profile's share included), the ratio its budget light is decided on, in bins of `step` percent up to
    `top` % (then one open bin), each bin split by budget light; and the number of reported projects
    left out because P is 0 (nothing expected yet: green). The stored rate and P are floats of exact
    fractions: a ratio on a bin edge (60 %) is put above it, as the light puts it on the better side."""
    bins = [Bin(lo, lo + step, Counter()) for lo in range(0, top, step)] + [Bin(top, None, Counter())]
    no_progress = 0
    for r in rows:
        if r.execution_rate is None:
            continue
        if r.time_progress <= 0:
            no_progress += 1
            continue
        ratio = r.execution_rate / r.time_progress
        index = min(max(int(ratio * 100 / step + 1e-9), 0), len(bins) - 1)
        bins[index].count[key(r.budget_light)] += 1
    return bins, no_progress


def usual_progress(rows: Sequence[Row]) -> float:
    """The time progress most projects are measured against (m/12 unless seasonal profiles dominate)."""
    common = Counter(round(r.time_progress, 6) for r in rows).most_common(1)
    return common[0][0] if common else 0.0


def yi(fen: int) -> str:
    """fen as 亿元 with two decimals, rounded half-up: 815100000000000 → '81.51亿元'."""
    value = (Decimal(fen) / FEN_PER_YI).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{value:,}亿元"


def money(fen: int) -> str:
    """Large sums in 亿元 (with the exact 万元 figure), small ones in 万元."""
    return f"{yi(fen)}（{wan(fen)}）" if fen >= FEN_PER_YI else wan(fen)


def scope(bureau_name: str) -> str:
    """'州财政局…' → '全州', '县财政局' → '全县'; '全部' when the name says nothing."""
    i = bureau_name.find("财政")
    return f"全{bureau_name[i - 1]}" if i > 0 and bureau_name[i - 1] in "州县市省区旗盟" else "全部"


def paragraph(data: ReportData) -> list[str]:
    """The summary in sentences: coverage, lights with amounts, execution, comparison with the previous
    checkpoint, results application (the latter passed in by the caller)."""
    t = total(data.rows)
    parts = [
        f"{data.period}，{scope(data.bureau_name)}纳入监控项目 {t.projects} 个，涉及资金 {money(t.budget)}。"
    ]
    lit = "，".join(
        f"{KEY_WORD[k]}项目 {t.count[k]} 个、资金 {wan(t.amount[k])}" for k in ("red", "yellow", "green")
    )
    parts.append(
        f"其中{lit}；未报送项目 {t.count['not_reported']} 个、资金 {wan(t.amount['not_reported'])}。"
    )
    shown_progress = progress(usual_progress(data.rows))
    parts.append(f"已报送项目共执行 {wan(t.executed)}，预算执行率 {t.rate()}，序时进度 {shown_progress}。")
    if data.previous_checkpoint and data.previous_period:
        before = Counter(key(light) for light in data.previous_lights.values())
        moves = "，".join(_delta(KEY_WORD[k], before[k], t.count[k]) for k in KEYS)
        trend: Mapping[str, Any] = data.summary["trend"] or {}
        parts.append(
            f"与{data.previous_period}相比，{moves}；好转 {trend.get('improved', 0)} 个，"
            f"恶化 {trend.get('worsened', 0)} 个，持续红灯 {trend.get('still_red', 0)} 个，"
            f"持续黄灯 {trend.get('still_yellow', 0)} 个。"
        )
    return parts


def _delta(word: str, before: int, after: int) -> str:
    if after == before:
        return f"{word}持平（{after} 个）"
    verb = "增加" if after > before else "减少"
    return f"{word}{verb} {abs(after - before)} 个（{before} → {after}）"
