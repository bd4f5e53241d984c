"""The sample's file format: the canonical English headers of its five CSV files, what a row is
written to, and amounts and numbers as the sample writes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

HEADERS: dict[str, tuple[str, ...]] = {
    "units": ("unit_code", "unit_name", "email", "supervisor_code"),
    "projects": ("project_code", "project_name", "unit_code", "budget", "carryover", "fund_flag", "category",
                 "profile"),
    "indicators": ("project_code", "indicator_code", "level1", "level2", "name", "direction", "target",
                   "measure_unit", "kind", "profile"),
    "project_reports": ("checkpoint", "project_code", "executed", "forecast_executed"),
    "indicator_reports": ("checkpoint", "project_code", "indicator_code", "actual", "forecast", "possibility",
                          "causes", "cause_text", "measures"),
}  # fmt: skip


class Rows(Protocol):
    def writerow(self, row: Iterable[object], /) -> object: ...


def money(cents: int) -> str:
    """Hundredths of 万元 as a plain decimal: 118000 -> '1180.00'."""
    return f"{cents // 100}.{cents % 100:02d}"


def fmt(value: float) -> str:
    """One decimal, without a trailing .0: 96.0 -> '96', 92.14 -> '92.1'."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
