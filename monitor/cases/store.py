"""Warning cases in the database: open a checkpoint's yellow/red cases (idempotent) and resolve earlier
ones that are green now; a unit's answers and the bureau's reviews, each committed with the case's new
state (monitor.cases.rectification decides whether the step is legal). Connection in, plain dicts out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from monitor.cases import exemptions
from monitor.cases import rectification as rc
from monitor.core.rows import CaseAnswer, CaseRecord, CaseReview, CaseRow, row_of
from monitor.core.workdays import as_utc
from monitor.db.engine import CASE_RESPONSE, CASE_REVIEW, WARNING_CASE
from monitor.db.reads import load_results


@dataclass(frozen=True)
class CaseCounts:
    opened: int
    already_open: int
    resolved: int


def open_and_resolve(
    conn: Connection, checkpoint: str, now: dt.datetime, *, time_zone: str = exemptions.DEFAULT_ZONE
) -> CaseCounts:
    """Open a case for each yellow/red project of `checkpoint`'s stored results (a case that exists is
    left as it is) and resolve the earlier cases whose project is green at `checkpoint`. A project
    exempted on the day of `now` (in `time_zone`) gets no case."""
    results = load_results(conn, checkpoint)
    have = {
        r[0]
        for r in conn.execute(
            select(WARNING_CASE.c.project_code).where(WARNING_CASE.c.checkpoint == checkpoint)
        )
    }
    exempt = exemptions.active(conn, exemptions.local_day(now, time_zone))
    new = [c for c in rc.open_cases(results) if c.project_code not in have and c.project_code not in exempt]
    at = as_utc(now)
    if new:
        conn.execute(
            insert(WARNING_CASE),
            [
                {
                    "checkpoint": c.checkpoint,
                    "project_code": c.project_code,
                    "unit_code": c.unit_code,
                    "project_name": c.project_name,
                    "light": c.light,
                    "state": rc.State.OPEN.value,
                    "opened_at": at,
                    "updated_at": at,
                    "resolved_checkpoint": None,
                }
                for c in new
            ],
        )
    earlier = [
        rc.OpenCase(r.id, r.checkpoint, r.project_code, r.state)
        for r in conn.execute(
            select(
                WARNING_CASE.c.id,
                WARNING_CASE.c.checkpoint,
                WARNING_CASE.c.project_code,
                WARNING_CASE.c.state,
            ).where(WARNING_CASE.c.checkpoint < checkpoint, WARNING_CASE.c.state != rc.State.RESOLVED.value)
        )
    ]
    resolved = rc.resolve(earlier, results)
    if resolved:
        conn.execute(
            update(WARNING_CASE)
            .where(WARNING_CASE.c.id.in_(resolved))
            .values(state=rc.State.RESOLVED.value, resolved_checkpoint=checkpoint, updated_at=at)
        )
    return CaseCounts(len(new), len(have), len(resolved))


def get_case(conn: Connection, case_id: int) -> CaseRow | None:
    row = conn.execute(select(WARNING_CASE).where(WARNING_CASE.c.id == case_id)).first()
    return row_of(CaseRow, row._mapping) if row else None


def _step(conn: Connection, case: CaseRow, event: rc.Event, now: dt.datetime) -> None:
    """Move the case on, guarded by its current state (a concurrent step changes no row and fails)."""
    new = rc.transition(case["state"], event)
    res = conn.execute(
        update(WARNING_CASE)
        .where(WARNING_CASE.c.id == case["id"], WARNING_CASE.c.state == case["state"])
        .values(state=new.value, updated_at=as_utc(now))
    )
    if res.rowcount != 1:
        raise rc.IllegalTransition(rc.State(case["state"]), event)


def submit_answer(
    conn: Connection,
    case_id: int,
    unit_code: str,
    answer: rc.Answer,
    now: dt.datetime,
    channel: str = "web",
) -> int:
    """Store a unit's answer (in the caller's transaction) and mark the case answered; LookupError when
    the case is not this unit's, IllegalTransition when it is not waiting for an answer. `channel`:
    web (the unit's form) or import (`monitor import` of a responses workbook)."""
    case = get_case(conn, case_id)
    if case is None or case["unit_code"] != unit_code:
        raise LookupError(case_id)
    _step(conn, case, rc.Event.ANSWER, now)
    res = conn.execute(
        insert(CASE_RESPONSE).values(
            case_id=case_id,
            cause=answer.cause,
            explanation=answer.explanation,
            measure=answer.measure,
            measure_text=answer.measure_text,
            expected_date=answer.expected_date,
            submitted_at=as_utc(now),
            channel=channel,
        )
    )
    pk = res.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def review(
    conn: Connection, case_id: int, decision: str, comment: str, reviewer: str, now: dt.datetime
) -> None:
    """The bureau accepts or returns the case's latest answer."""
    case = get_case(conn, case_id)
    if case is None:
        raise LookupError(case_id)
    event = rc.Event.ACCEPT if decision == "accept" else rc.Event.RETURN
    _step(conn, case, event, now)
    latest = conn.execute(
        select(CASE_RESPONSE.c.id)
        .where(CASE_RESPONSE.c.case_id == case_id)
        .order_by(CASE_RESPONSE.c.id.desc())
    ).first()
    assert latest is not None  # an answered case has an answer
    conn.execute(
        insert(CASE_REVIEW).values(
            case_id=case_id,
            response_id=latest[0],
            decision=decision,
            comment=comment,
            reviewer=reviewer,
            at=as_utc(now),
        )
    )


def cases(
    conn: Connection,
    *,
    unit_code: str | None = None,
    states: tuple[str, ...] = (),
    project_code: str | None = None,
) -> list[CaseRecord]:
    """Cases (optionally of one unit, of one project or in some states) with their answers and reviews,
    oldest first."""
    q = select(WARNING_CASE).order_by(WARNING_CASE.c.checkpoint, WARNING_CASE.c.project_code)
    if unit_code is not None:
        q = q.where(WARNING_CASE.c.unit_code == unit_code)
    if project_code is not None:
        q = q.where(WARNING_CASE.c.project_code == project_code)
    if states:
        q = q.where(WARNING_CASE.c.state.in_(states))
    found = [row_of(CaseRow, r._mapping) for r in conn.execute(q)]
    if not found:
        return []
    ids = [c["id"] for c in found]
    responses: dict[int, list[Mapping[Any, Any]]] = {}
    for r in conn.execute(
        select(CASE_RESPONSE).where(CASE_RESPONSE.c.case_id.in_(ids)).order_by(CASE_RESPONSE.c.id)
    ):
        responses.setdefault(r.case_id, []).append(r._mapping)
    reviews: dict[int, CaseReview] = {}
    for r in conn.execute(
        select(CASE_REVIEW).where(CASE_REVIEW.c.case_id.in_(ids)).order_by(CASE_REVIEW.c.id)
    ):
        reviews[r.response_id] = row_of(CaseReview, r._mapping)
    return [
        {
            **c,
            "answers": [
                row_of(CaseAnswer, {**a, "review": reviews.get(a["id"])}) for a in responses.get(c["id"], [])
            ],
        }
        for c in found
    ]
