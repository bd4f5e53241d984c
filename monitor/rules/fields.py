"""Where each RuleSet field is written in a rule file, and the flat RuleSet fields a (partial)
budget / indicators / combine section sets: shared by merging files (load.py) and overrides (policy.py).
"""

from __future__ import annotations

from typing import Any

from monitor.config.yamlfile import Loc
from monitor.rules.schema import BudgetPatch, IndicatorPatch

# RuleSet field -> where it is written in a rule file.
FIELD_PATHS: dict[str, Loc] = {
    "time_progress_mode": ("time_progress", "mode"),
    "budget_base": ("budget", "base"),
    "budget_red_below": ("budget", "red_below"),
    "budget_yellow_below": ("budget", "yellow_below"),
    "cumulative_red_below": ("indicators", "cumulative", "red_below"),
    "cumulative_yellow_below": ("indicators", "cumulative", "yellow_below"),
    "cumulative_blue_from": ("indicators", "cumulative", "blue_from"),
    "level_tolerance": ("indicators", "level", "tolerance"),
    "qualitative_green": ("indicators", "qualitative", "green"),
    "qualitative_yellow": ("indicators", "qualitative", "yellow"),
    "qualitative_red": ("indicators", "qualitative", "red"),
    "impossible": ("indicators", "impossible"),
    "combine": ("combine",),
}

BUDGET_FIELDS = {
    "base": "budget_base",
    "red_below": "budget_red_below",
    "yellow_below": "budget_yellow_below",
}
CUMULATIVE_FIELDS = {
    "red_below": "cumulative_red_below",
    "yellow_below": "cumulative_yellow_below",
    "blue_from": "cumulative_blue_from",
}


def patch_fields(
    budget: BudgetPatch | None, indicators: IndicatorPatch | None, combine: str | None
) -> dict[str, Any]:
    """The flat RuleSet fields a (partial) section sets: shared by file merging and overrides."""
    out: dict[str, Any] = {}
    if budget:
        out.update({BUDGET_FIELDS[k]: v for k, v in budget.model_dump(exclude_none=True).items()})
    if indicators:
        if indicators.cumulative:
            dumped = indicators.cumulative.model_dump(exclude_none=True)
            out.update({CUMULATIVE_FIELDS[k]: v for k, v in dumped.items()})
        if indicators.level and indicators.level.tolerance is not None:
            out["level_tolerance"] = indicators.level.tolerance
        if indicators.qualitative:
            for k, v in indicators.qualitative.model_dump(exclude_none=True).items():
                out[f"qualitative_{k}"] = tuple(v)
        if indicators.impossible is not None:
            out["impossible"] = indicators.impossible
    if combine:
        out["combine"] = combine
    return out
