"""Read-only queries of the bureau pages: a connection and a checkpoint (or a project) in, plain dicts
out. The checkpoints run so far, a checkpoint's lights counted per unit and its projects without their
indicators (the board stays light at 100k projects), the outbox by status and its failed deliveries with
every attempt, the follow-up events of warning cases (催办/督办) and the exemptions. Writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from monitor.core.rows import Attempt, CaseEvent, ResultLine, Trouble, row_of
from monitor.db import tables as t
from monitor.db.engine import DELIVERY_ATTEMPT, OUTBOX, PROJECT, PROJECT_RESULT, RUN, table
from monitor.deliver import outbox
from monitor.evaluate import reasons

CASE_EVENT = table(t.CaseEventRow)
EXEMPTION = table(t.ExemptionRow)
STATUSES = ("pending", "sending", "sent", "partial", "failed")
BATCH = 500  # IN lists stay well under every driver's parameter limit


def checkpoints(conn: Connection) -> list[str]:
    """Checkpoints with stored results, newest first."""
    rows = conn.execute(select(PROJECT_RESULT.c.checkpoint).distinct())
    return sorted((r[0] for r in rows), reverse=True)


def last_run(conn: Connection, checkpoint: str) -> int | None:
    """The id of the latest run of `checkpoint` (its stored results are that run's)."""
    value = conn.execute(select(func.max(RUN.c.id)).where(RUN.c.checkpoint == checkpoint)).scalar()
    return None if value is None else int(value)


def light_counts(conn: Connection, checkpoint: str) -> dict[str, Counter[str]]:
    """unit code -> how many of its projects have each light ('none': not reported) at `checkpoint`."""
    q = (
        select(PROJECT_RESULT.c.unit_code, PROJECT_RESULT.c.light, func.count())
        .where(PROJECT_RESULT.c.checkpoint == checkpoint)
        .group_by(PROJECT_RESULT.c.unit_code, PROJECT_RESULT.c.light)
    )
    out: dict[str, Counter[str]] = {}
    for unit_code, light, n in conn.execute(q):
        out.setdefault(unit_code, Counter())[light or "none"] += int(n)
    return out


def results(
    conn: Connection,
    checkpoint: str,
    *,
    units: Iterable[str] | None = None,
    lights: Iterable[str] | None = None,
) -> list[ResultLine]:
    """Project results of `checkpoint` (optionally of some units, or with some lights) without their
    indicator results, ordered by unit and project."""
    cols = (
        PROJECT_RESULT.c.project_code,
        PROJECT_RESULT.c.project_name,
        PROJECT_RESULT.c.unit_code,
        PROJECT_RESULT.c.light,
        PROJECT_RESULT.c.budget_light,
        PROJECT_RESULT.c.target_light,
        PROJECT_RESULT.c.execution_rate,
        PROJECT_RESULT.c.reasons,
    )
    q = select(*cols).where(PROJECT_RESULT.c.checkpoint == checkpoint)
    if lights is not None:
        q = q.where(PROJECT_RESULT.c.light.in_(list(lights)))
    q = q.order_by(PROJECT_RESULT.c.unit_code, PROJECT_RESULT.c.project_code)
    if units is None:
        rows = list(conn.execute(q))
    else:
        wanted, rows = sorted(set(units)), []
        for i in range(0, len(wanted), BATCH):
            rows += conn.execute(q.where(PROJECT_RESULT.c.unit_code.in_(wanted[i : i + BATCH])))
        rows.sort(key=lambda r: (r.unit_code, r.project_code))
    split = [{**r._mapping, "reasons": [s for s in r.reasons.split("\n") if s]} for r in rows]
    out = [row_of(ResultLine, {**line, "indicators": []}) for line in split]
    reasons.fill(conn, checkpoint, out)  # those the SQL form left to be formatted from their facts
    return out


# --- outbox ---------------------------------------------------------------------------------------------


def outbox_counts(conn: Connection, checkpoint: str) -> dict[str, Counter[str]]:
    """Messages of `checkpoint`: kind -> status -> count, plus '*' -> status -> count over all kinds."""
    q = (
        select(OUTBOX.c.kind, OUTBOX.c.status, func.count())
        .where(OUTBOX.c.checkpoint == checkpoint)
        .group_by(OUTBOX.c.kind, OUTBOX.c.status)
    )
    out: dict[str, Counter[str]] = {"*": Counter(dict.fromkeys(STATUSES, 0))}
    for kind, status, n in conn.execute(q):
        out.setdefault(kind, Counter())[status] += int(n)
        out["*"][status] += int(n)
    return out


def troubled(conn: Connection, checkpoint: str, limit: int = 500) -> list[Trouble]:
    """Messages of `checkpoint` that failed for good (for every recipient or some: partial), or wait for
    a retry after an error, with each recipient's state where the server answered for them one by one,
    every delivery attempt (newest message first). Never the raw message: it holds the units' signed links."""
    cols = (
        OUTBOX.c.id,
        OUTBOX.c.kind,
        OUTBOX.c.reason,
        OUTBOX.c.unit_code,
        OUTBOX.c.recipients,
        OUTBOX.c.subject,
        OUTBOX.c.status,
        OUTBOX.c.attempts,
        OUTBOX.c.last_error,
        OUTBOX.c.created_at,
        OUTBOX.c.next_attempt_at,
    )
    q = (
        select(*cols)
        .where(
            OUTBOX.c.checkpoint == checkpoint,
            or_(
                OUTBOX.c.status.in_(("failed", "partial")),
                and_(OUTBOX.c.status == "pending", OUTBOX.c.last_error.is_not(None)),
            ),
        )
        .order_by(OUTBOX.c.id.desc())
        .limit(limit)
    )
    found = list(conn.execute(q))
    tries: dict[int, list[Attempt]] = {}
    ids = [m.id for m in found]
    for i in range(0, len(ids), BATCH):
        aq = (
            select(
                DELIVERY_ATTEMPT.c.outbox_id,
                DELIVERY_ATTEMPT.c.at,
                DELIVERY_ATTEMPT.c.outcome,
                DELIVERY_ATTEMPT.c.detail,
            )
            .where(DELIVERY_ATTEMPT.c.outbox_id.in_(ids[i : i + BATCH]))
            .order_by(DELIVERY_ATTEMPT.c.id)
        )
        for r in conn.execute(aq):
            tries.setdefault(r.outbox_id, []).append(row_of(Attempt, r._mapping))
    states = outbox.recipient_states(conn, ids)
    out = []
    for m in found:
        its = {"tries": tries.get(m.id, []), "recipient_states": states.get(m.id, [])}
        out.append(row_of(Trouble, {**m._mapping, **its}))
    return out


# --- case follow-up and exemptions ------------------------------------------------------------------------


def case_events(conn: Connection, case_ids: Iterable[int]) -> dict[int, list[CaseEvent]]:
    """case id -> its follow-up events (reminded / escalated …), oldest first."""
    ids = sorted(set(case_ids))
    out: dict[int, list[CaseEvent]] = {}
    for i in range(0, len(ids), BATCH):
        q = (
            select(CASE_EVENT)
            .where(CASE_EVENT.c.case_id.in_(ids[i : i + BATCH]))
            .order_by(CASE_EVENT.c.at, CASE_EVENT.c.id)
        )
        for r in conn.execute(q):
            out.setdefault(r.case_id, []).append(row_of(CaseEvent, r._mapping))
    return out


def exemptions(
    conn: Connection, today: dt.date, everything: bool = False, project_code: str | None = None
) -> list[dict[str, Any]]:
    """Exemptions in force on `today` (not revoked, not expired), or all of them, optionally of one
    project, with the project's name and unit when the project is known; soonest expiry first."""
    q = select(EXEMPTION, PROJECT.c.name.label("project_name"), PROJECT.c.unit_code).outerjoin(
        PROJECT, PROJECT.c.code == EXEMPTION.c.project_code
    )
    if project_code is not None:
        q = q.where(EXEMPTION.c.project_code == project_code)
    if not everything:
        q = q.where(EXEMPTION.c.revoked_at.is_(None), EXEMPTION.c.expires_on >= today)
    q = q.order_by(EXEMPTION.c.expires_on, EXEMPTION.c.project_code, EXEMPTION.c.id)
    return [dict(r._mapping) for r in conn.execute(q)]


def exempted(conn: Connection, today: dt.date) -> set[str]:
    """Codes of the projects with an exemption in force on `today`."""
    q = select(EXEMPTION.c.project_code).where(
        EXEMPTION.c.revoked_at.is_(None), EXEMPTION.c.expires_on >= today
    )
    return {r[0] for r in conn.execute(q)}
