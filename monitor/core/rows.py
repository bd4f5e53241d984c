"""Rows with a fixed shape that travel between the stages as plain dicts: typed, so mypy checks their
keys. A stored result (`StoredResult`, its indicators `StoredIndicator`) is the stable shape README
documents for `monitor results --format json`: db.reads builds it from the stored rows,
tools.preview from a fresh evaluation, and notify, reports, web, cli and cases read it.

TypedDicts and not dataclasses: the rows are JSON documents (printed, compared, snapshotted), so they
stay dicts at run time and nothing changes shape on the way out.
"""

from __future__ import annotations

from typing import TypedDict


class StoredIndicator(TypedDict):
    """An indicator's stored result (db.reads.INDICATOR_KEYS)."""

    indicator_code: str
    name: str
    kind: str  # cumulative / level / milestone / qualitative
    light: str  # green / yellow / red / blue / na
    ratio: float | None
    reason: str  # "" until formatted from the stored facts (evaluate.reasons)
    target: str
    actual: str | None
    measure_unit: str
    direction: str


class StoredResult(TypedDict):
    """A project's stored result in the stable JSON shape (README: monitor results --format json)."""

    project_code: str
    project_name: str
    unit_code: str
    checkpoint: str
    status: str  # reported / not_reported
    budget_light: str | None
    target_light: str | None
    light: str | None  # None: not reported
    execution_rate: float | None
    time_progress: float
    budget: int  # fen
    executed: int | None  # fen
    reasons: list[str]
    indicators: list[StoredIndicator]  # [] for the green projects of a streamed chunk


class Unreported(TypedDict):
    """A project that was not reported (BureauFigures.not_reported): a StoredResult fits it too."""

    project_code: str
    project_name: str
    unit_code: str
    budget: int  # fen


class ResultLine(TypedDict):
    """A project's result as a table line (web.queries.results: no indicator results, no amounts);
    a StoredResult fits it too."""

    project_code: str
    project_name: str
    unit_code: str
    light: str | None
    budget_light: str | None
    target_light: str | None
    execution_rate: float | None
    reasons: list[str]
    indicators: list[StoredIndicator]


class Reasoned(TypedDict):
    """What evaluate.reasons.fill reads and completes: a StoredResult or a ResultLine fits it."""

    project_code: str
    light: str | None
    reasons: list[str]
    indicators: list[StoredIndicator]


class ProjectLight(TypedDict):
    """A project's light with its unit: what trends are counted from; a StoredResult fits it."""

    project_code: str
    unit_code: str
    light: str | None
