"""Trends between checkpoints, pure: a project's change (May red → August green = improved; still red =
persistent), a unit's and the bureau's tallies, the May → August transition matrix, and for a slow
project the monthly execution still needed to spend its whole budget by the end of the year.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from monitor.core.rows import ProjectLight
from monitor.notify.views import trend_counts

# Lights in the order reports show them; blue (ahead of schedule) counts as green, None is not reported.
KEYS = ("red", "yellow", "green", "not_reported")
KEY_WORD = {"red": "红灯", "yellow": "黄灯", "green": "绿灯", "not_reported": "未报送"}
_SEVERITY = {"green": 0, "yellow": 1, "red": 2}
CHANGE_WORD = {
    "improved": "好转",
    "worsened": "恶化",
    "persistent_red": "持续红灯",
    "persistent_yellow": "持续黄灯",
    "persistent_green": "保持绿灯",
}


def key(light: str | None) -> str:
    """A project light as a report key: blue → green, None (not reported) → not_reported."""
    if light is None:
        return "not_reported"
    return "green" if light == "blue" else light


def project_change(before: str | None, after: str | None) -> str | None:
    """improved / worsened / persistent_red / persistent_yellow / persistent_green between two project
    lights; None when either checkpoint has no light (not reported, or no earlier result)."""
    if before is None or after is None:
        return None
    b, a = _SEVERITY[key(before)], _SEVERITY[key(after)]
    if a < b:
        return "improved"
    if a > b:
        return "worsened"
    return f"persistent_{key(after)}"


def bureau_trend(results: Sequence[ProjectLight], previous: Mapping[str, str | None]) -> dict[str, int]:
    """improved, worsened, still_red, still_yellow over all projects (the bureau summary's own count)."""
    return trend_counts(results, previous)


def unit_trends(
    results: Sequence[ProjectLight], previous: Mapping[str, str | None]
) -> dict[str, dict[str, int]]:
    """The same tally for each unit: unit code → {improved, worsened, still_red, still_yellow}."""
    by_unit: dict[str, list[ProjectLight]] = defaultdict(list)
    for r in results:
        by_unit[r["unit_code"]].append(r)
    return {unit: trend_counts(rows, previous) for unit, rows in by_unit.items()}


def transitions(
    results: Sequence[ProjectLight], previous: Mapping[str, str | None]
) -> dict[tuple[str, str], int]:
    """(earlier key, later key) → number of projects, not-reported included; projects without an
    earlier result (new since then) are left out. Every cell of KEYS × KEYS is present."""
    count: Counter[tuple[str, str]] = Counter()
    for r in results:
        if r["project_code"] in previous:
            count[(key(previous[r["project_code"]]), key(r["light"]))] += 1
    return {(b, a): count[(b, a)] for b in KEYS for a in KEYS}


def monthly_needed(budget: int, executed: int | None, month: int) -> int | None:
    """Fen to execute per remaining month so that the whole budget is spent by December:
    (budget − executed) / (12 − month), rounded up to the fen; 0 when nothing is left, None in December
    or when the project has not reported."""
    if executed is None or month >= 12:
        return None
    left = max(budget - executed, 0)
    return -(-left // (12 - month))


def is_slow(budget_light: str | None) -> bool:
    """A project whose spending lags time progress (budget light yellow or red)."""
    return budget_light in ("yellow", "red")
