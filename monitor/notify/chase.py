"""Follow-up rounds in the database: a checkpoint and a step (chase / escalate) in; the unanswered
cases loaded with the steps already recorded, monitor.notify.followup deciding, and its messages queued in
the outbox in the same transaction as the case_event rows that record each step (nothing lost, nothing
twice: a concurrent round fails on the unique step and is retried, finding nothing left to do). Also
the days each checkpoint's cases were opened, which date the service's chase and escalate duties.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from monitor.cases.deadlines import FollowUp, FollowUpRule
from monitor.config.settings import Settings
from monitor.core.model import Checkpoint
from monitor.core.rows import CaseEvent, row_of
from monitor.core.workdays import as_utc
from monitor.db.engine import PROJECT_RESULT, WARNING_CASE, table
from monitor.db.inputs import load_units
from monitor.db.tables import CaseEventRow, ExemptionRow
from monitor.deliver import outbox
from monitor.notify import followup, messages
from monitor.notify.render import Templates

CASE_EVENT: Table = table(CaseEventRow)
EXEMPTION: Table = table(ExemptionRow)
Clock = Callable[[], dt.datetime]


def local_day(moment: dt.datetime, tz: ZoneInfo) -> dt.date:
    return as_utc(moment).astimezone(tz).date()


def opened_days(conn: Connection, tz: ZoneInfo) -> dict[str, tuple[dt.date, ...]]:
    """Checkpoint -> the bureau's calendar days on which its cases were opened, in order."""
    days: dict[str, set[dt.date]] = defaultdict(set)
    rows = conn.execute(select(WARNING_CASE.c.checkpoint, WARNING_CASE.c.opened_at).distinct())
    for checkpoint, opened_at in rows:
        days[checkpoint].add(local_day(opened_at, tz))
    return {cp: tuple(sorted(d)) for cp, d in days.items()}


def follow_up_plan(engine: Engine, settings: Settings) -> FollowUp | None:
    """What the duty calendar needs for the chase and escalate duties (None when follow_up is off)."""
    if not settings.notifications.follow_up:
        return None
    with engine.connect() as conn:
        opened = opened_days(conn, ZoneInfo(settings.time_zone))
    return FollowUp(FollowUpRule.of(settings.notifications), opened)


def load_cases(conn: Connection, checkpoint: str, today: dt.date, tz: ZoneInfo) -> list[followup.Case]:
    """The checkpoint's cases not yet answered (open / returned), with the project's light in the stored
    results now, whether it is exempted today, and the follow-up steps recorded so far."""
    rows = conn.execute(
        select(WARNING_CASE)
        .where(WARNING_CASE.c.checkpoint == checkpoint, WARNING_CASE.c.state.in_(followup.UNANSWERED))
        .order_by(WARNING_CASE.c.id)
    ).all()
    if not rows:
        return []
    ids = [r.id for r in rows]
    codes = [r.project_code for r in rows]
    lights = dict(
        conn.execute(
            select(PROJECT_RESULT.c.project_code, PROJECT_RESULT.c.light).where(
                PROJECT_RESULT.c.checkpoint == checkpoint, PROJECT_RESULT.c.project_code.in_(codes)
            )
        ).all()
    )
    exempt = {
        r[0]
        for r in conn.execute(
            select(EXEMPTION.c.project_code).where(
                EXEMPTION.c.project_code.in_(codes),
                EXEMPTION.c.revoked_at.is_(None),
                EXEMPTION.c.expires_on >= today,
            )
        )
    }
    reminded: dict[int, dt.date] = {}
    escalated: set[int] = set()
    for case_id, kind, at in conn.execute(
        select(CASE_EVENT.c.case_id, CASE_EVENT.c.kind, CASE_EVENT.c.at).where(
            CASE_EVENT.c.case_id.in_(ids),
            CASE_EVENT.c.kind.in_([followup.REMINDED, followup.ESCALATED]),
            CASE_EVENT.c.round == followup.ROUND,
        )
    ):
        if kind == followup.REMINDED:
            reminded[case_id] = local_day(at, tz)
        else:
            escalated.add(case_id)
    return [
        followup.Case(
            id=r.id,
            checkpoint=r.checkpoint,
            project_code=r.project_code,
            project_name=r.project_name,
            unit_code=r.unit_code,
            state=r.state,
            opened_on=local_day(r.opened_at, tz),
            light=lights.get(r.project_code),
            exempt=r.project_code in exempt,
            reminded_on=reminded.get(r.id),
            escalated=r.id in escalated,
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Outcome:
    checkpoint: str
    step: str  # chase / escalate
    cases: int  # steps recorded (cases reminded or escalated)
    queued: list[dict[str, str | None]] = field(default_factory=list)  # kind, reason, unit of each message
    waiting: int = 0  # unanswered cases whose day has not come yet
    next_day: dt.date | None = None  # the earliest day one of them is due


def follow_up(
    engine: Engine,
    settings: Settings,
    templates: Templates,
    checkpoint: Checkpoint,
    step: str,
    clock: Clock,
) -> Outcome:
    """Carry out the `step` round of `checkpoint` now: decide, compose, queue and record, in one
    transaction. Safe to repeat and to run alongside another process: a step already recorded is not
    taken again."""
    try:
        return _follow_up(engine, settings, templates, checkpoint, step, clock)
    except IntegrityError:  # another process recorded some of the same steps first: it sent them
        return _follow_up(engine, settings, templates, checkpoint, step, clock)


def _follow_up(
    engine: Engine, settings: Settings, templates: Templates, checkpoint: Checkpoint, step: str, clock: Clock
) -> Outcome:
    cp = str(checkpoint)
    now = clock()
    tz = ZoneInfo(settings.time_zone)
    today = local_day(now, tz)
    rule = FollowUpRule.of(settings.notifications)
    bureau = followup.Bureau(settings.mail.from_name, settings.mail.bureau_recipients)
    with engine.begin() as conn:
        cases = load_cases(conn, cp, today, tz)
        units = load_units(conn)
        plan = followup.plan(
            step,
            cp,
            cases,
            units,
            today,
            rule,
            bureau,
            lambda unit: messages.response_link(settings, unit, cp),
        )
        ids = outbox.queue(conn, [messages.compose(n, cp, templates, settings, now) for n in plan.notices])
        if plan.steps:
            conn.execute(
                insert(CASE_EVENT),
                [
                    {
                        "case_id": s.case_id,
                        "kind": s.kind,
                        "round": followup.ROUND,
                        "at": as_utc(now),
                        "outbox_id": None if s.carrier is None else ids[s.carrier],
                        "detail": s.detail,
                    }
                    for s in plan.steps
                ],
            )
    day = rule.chase_day if step == "chase" else rule.escalate_day
    return Outcome(
        cp,
        step,
        len(plan.steps),
        [{"kind": n.kind, "reason": n.reason, "unit_code": n.unit_code} for n in plan.notices],
        len(plan.waiting),
        min((day(c.opened_on) for c in plan.waiting), default=None),
    )


def history(conn: Connection, case_ids: list[int]) -> dict[int, list[CaseEvent]]:
    """The follow-up steps recorded on each case, oldest first (for pages and reports)."""
    out: dict[int, list[CaseEvent]] = defaultdict(list)
    for r in conn.execute(
        select(CASE_EVENT).where(CASE_EVENT.c.case_id.in_(case_ids)).order_by(CASE_EVENT.c.id)
    ):
        out[r.case_id].append(row_of(CaseEvent, r._mapping))
    return dict(out)
