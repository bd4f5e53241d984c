"""Rows with a fixed shape that travel between the stages as plain dicts: typed, so mypy checks their
keys. A stored result (`StoredResult`, its indicators `StoredIndicator`) is the stable shape README
documents for `monitor results --format json`: db.reads builds it from the stored rows,
tools.preview from a fresh evaluation, and notify, reports, web, cli and cases read it.

TypedDicts and not dataclasses: the rows are JSON documents (printed, compared, snapshotted), so they
stay dicts at run time and nothing changes shape on the way out. `row_of` makes one of a database
row, by the keys the TypedDict declares.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, TypedDict, TypeVar, cast

Row = TypeVar("Row")


def row_of(kind: type[Row], values: Mapping[Any, Any]) -> Row:
    """The TypedDict `kind` made of `values` (a database row's mapping, say): its keys in its order,
    nothing else; a missing key is a KeyError."""
    return cast(Row, {k: values[k] for k in kind.__annotations__})


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


class RunRecord(TypedDict):
    """A run as stored (db.results.runs): one evaluation of one checkpoint and its counts."""

    id: int
    checkpoint: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    rules_hash: str
    status: str  # running / evaluated / finished / failed / abandoned
    projects: int
    reported: int
    green: int
    yellow: int
    red: int
    not_reported: int


class OutboxEntry(TypedDict):
    """A queued message as the operator lists it (deliver.outbox.messages): its outbox row without the
    snapshot, and each recipient the server answered for one by one: (address, status, answer)."""

    id: int
    message_id: str
    checkpoint: str
    kind: str  # warning / reminder / overdue / summary / all_clear / admin / case_reminder …
    reason: str
    unit_code: str | None
    recipients: str  # every RCPT TO, ';'-separated
    subject: str
    fingerprint: str
    status: str  # pending / sending / sent / failed / partial
    attempts: int
    next_attempt_at: dt.datetime
    claimed_by: str | None
    claimed_at: dt.datetime | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    last_error: str | None
    supersedes: int
    recipient_states: list[tuple[str, str, str | None]]


class CaseRow(TypedDict):
    """A warning case as stored (cases.store.get_case): one yellow/red warning and where it stands."""

    id: int
    checkpoint: str
    project_code: str
    unit_code: str
    project_name: str
    light: str  # yellow / red when opened
    state: str  # open / answered / returned / accepted / resolved
    opened_at: dt.datetime
    updated_at: dt.datetime
    resolved_checkpoint: str | None  # green again at this checkpoint


class CaseReview(TypedDict):
    """The bureau's decision on one answer."""

    id: int
    case_id: int
    response_id: int
    decision: str  # accept / return
    comment: str
    reviewer: str
    at: dt.datetime


class CaseAnswer(TypedDict):
    """A unit's answer to a case, with the bureau's review of it (None: not reviewed yet)."""

    id: int
    case_id: int
    cause: str
    explanation: str
    measure: str  # continue / reallocate / reduce / cancel
    measure_text: str
    expected_date: dt.date
    submitted_at: dt.datetime
    channel: str  # web / import
    review: CaseReview | None


class CaseRecord(CaseRow):
    """A case with every answer, oldest first (cases.store.cases)."""

    answers: list[CaseAnswer]


class CaseEvent(TypedDict):
    """A follow-up step recorded on a case (case_event): reminded (催办), escalated (督办) …"""

    id: int
    case_id: int
    kind: str
    round: int  # which reminder or escalation of the case (1: the first)
    at: dt.datetime
    outbox_id: int | None  # the message that carried it, when one was queued
    detail: str | None


class Attempt(TypedDict):
    """One delivery attempt of a message (delivery_attempt)."""

    at: dt.datetime
    outcome: str
    detail: str | None


class Trouble(TypedDict):
    """A message that failed, or waits for a retry after an error (web.queries.troubled), with its
    attempts and each recipient's state: never its raw text (it holds the units' signed links)."""

    id: int
    kind: str
    reason: str
    unit_code: str | None
    recipients: str
    subject: str
    status: str
    attempts: int
    last_error: str | None
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    tries: list[Attempt]
    recipient_states: list[tuple[str, str, str | None]]
