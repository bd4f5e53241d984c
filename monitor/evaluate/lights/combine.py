"""The target light and the project light (domain.md §4): the target light is the worst measurable
indicator light (blue counts as green; none measurable: none); the project light is the worst of
budget and target (`worst`), or the `matrix`: budget not green → red, else target yellow/red → yellow."""

from __future__ import annotations

from collections.abc import Iterable

from monitor.core.model import Light

ALL_UNMEASURED = "全部绩效指标本期不可测，项目灯按预算执行灯确定"


def worst(lights: Iterable[Light]) -> Light | None:
    """The worst light among measurable ones (blue counts as green); None if none is measurable."""
    out: Light | None = None
    for light in lights:
        if light is Light.NA:
            continue
        light = Light.GREEN if light is Light.BLUE else light
        if out is None or light.severity > out.severity:
            out = light
    return out


def combine(mode: str, budget: Light, target: Light | None) -> Light:
    if mode == "matrix":
        if budget is not Light.GREEN:
            return Light.RED
        return Light.GREEN if target in (None, Light.GREEN) else Light.YELLOW
    return worst([budget] if target is None else [budget, target]) or budget


def _severity(light: str) -> str:
    return f"CASE {light} WHEN 'red' THEN 2 WHEN 'yellow' THEN 1 WHEN 'green' THEN 0 WHEN 'blue' THEN 0 END"


def worst_sql(indicators: str, checkpoint: str) -> str:
    """The target light's severity (NULL: none measurable) of project `p` from its indicator rows."""
    return (
        f"(SELECT max({_severity('x.light')}) FROM {indicators} x"
        f" WHERE x.checkpoint = {checkpoint} AND x.project_code = p.code)"
    )


def worst_join_sql(indicators: str, checkpoint: str) -> str:
    """worst_sql as a join (alias w, column worst): every project's worst severity in one grouped pass
    over its indicator rows, for a database that hashes it faster than it looks each project up
    (PostgreSQL, whose fresh results have no index yet: monitor.db.partitions)."""
    return (
        f" LEFT JOIN (SELECT x.project_code, max({_severity('x.light')}) AS worst FROM {indicators} x"
        f" WHERE x.checkpoint = {checkpoint} GROUP BY x.project_code) w ON w.project_code = p.code"
    )


def target_sql() -> str:
    """The target light from b.worst (worst_sql)."""
    return "CASE b.worst WHEN 2 THEN 'red' WHEN 1 THEN 'yellow' WHEN 0 THEN 'green' END"


def project_sql() -> str:
    """The project light from b.budget_light ('?': left to the core), b.worst and b.matrix."""
    bsev = "CASE b.budget_light WHEN 'red' THEN 2 WHEN 'yellow' THEN 1 ELSE 0 END"
    either = f"CASE WHEN coalesce(b.worst, 0) > {bsev} THEN b.worst ELSE {bsev} END"
    return (
        "CASE WHEN b.reported = 0 THEN NULL WHEN b.budget_light = '?' THEN '?'"
        " WHEN b.matrix = 1 THEN (CASE WHEN b.budget_light <> 'green' THEN 'red'"
        " WHEN b.worst IS NULL OR b.worst = 0 THEN 'green' ELSE 'yellow' END)"
        f" ELSE (CASE {either} WHEN 2 THEN 'red' WHEN 1 THEN 'yellow' ELSE 'green' END) END"
    )
