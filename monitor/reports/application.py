"""Results application (结果应用), pure: report rows and the `results_application` criteria in; the
candidates for budget reduction or recovery and the key-monitoring list (财政重点监控) out, each with
the grounds in words and the amount at stake (budget − executed). Rates are compared exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from monitor.config.settings import ResultsApplicationConfig
from monitor.core.model import FEN_PER_WAN
from monitor.core.wording import pct_threshold, percent_nd, wan
from monitor.reports.data import Row


@dataclass(frozen=True)
class Candidate:
    row: Row
    grounds: tuple[str, ...]  # why it is listed, in words
    at_stake: int  # fen: budget − executed (never negative)


def applies(criteria: ResultsApplicationConfig, month: int) -> bool:
    """Whether the lists are drawn up at a checkpoint of this month (default: August only)."""
    return month in criteria.months


def at_stake(row: Row) -> int:
    return max(row.budget - (row.executed or 0), 0)


def _below(executed: int, budget: int, rate: Decimal) -> bool:
    """executed / budget < rate, exactly (Decimal products of integers and a finite decimal)."""
    return Decimal(executed) < rate * Decimal(budget)


def _rate(row: Row) -> str:
    return percent_nd(row.executed or 0, row.budget) if row.budget else "-"


def reduction_candidates(
    rows: Sequence[Row],
    criteria: ResultsApplicationConfig,
    declared: Mapping[str, Sequence[tuple[str, str]]],
    previous_label: str | None,
) -> list[Candidate]:
    """Projects to consider for budget reduction or recovery, largest amount at stake first: red with
    execution below `reduction_rate_below`; red now and at the previous checkpoint (when
    `reduction_persistent_red`); or an indicator declared with a possibility in `reduction_possibilities`.
    `declared` maps a project code to (indicator name, possibility) pairs of this checkpoint."""
    out = []
    for row in rows:
        grounds = []
        if row.light == "red" and row.executed is not None and row.budget > 0:
            rate = criteria.reduction_rate_below
            if _below(row.executed, row.budget, rate):
                grounds.append(f"红灯且预算执行率{_rate(row)}，低于{pct_threshold(rate)}")
            if criteria.reduction_persistent_red and row.previous_light == "red" and previous_label:
                grounds.append(f"{previous_label}及本期均为红灯")
        wanted = set(criteria.reduction_possibilities)
        for name, possibility in declared.get(row.project_code, ()):
            if possibility in wanted:
                grounds.append(f"指标“{name}”完成目标可能性填报为“{possibility}”")
        if grounds:
            out.append(Candidate(row, tuple(grounds), at_stake(row)))
    return sorted(out, key=lambda c: (-c.at_stake, c.row.project_code))


def key_monitoring(rows: Sequence[Row], criteria: ResultsApplicationConfig) -> list[Candidate]:
    """Reported projects with budget ≥ `key_budget_min` 万元 executed below `key_rate_below`, largest
    amount at stake first."""
    minimum = criteria.key_budget_min * FEN_PER_WAN
    out = []
    for row in rows:
        if row.executed is None or row.budget <= 0 or Decimal(row.budget) < minimum:
            continue
        if _below(row.executed, row.budget, criteria.key_rate_below):
            grounds = (
                f"预算{wan(row.budget)}，不低于{criteria.key_budget_min.normalize():f}万元；"
                f"预算执行率{_rate(row)}，低于{pct_threshold(criteria.key_rate_below)}",
            )
            out.append(Candidate(row, grounds, at_stake(row)))
    return sorted(out, key=lambda c: (-c.at_stake, c.row.project_code))


def total(candidates: Sequence[Candidate]) -> int:
    """Fen at stake over a list (each project once)."""
    return sum(c.at_stake for c in candidates)
