"""Reporting progress (报送进度) of a checkpoint, for the bureau: per unit, its projects, how many have a
report that counts (through any channel: the page, a form workbook, an import, the exchange table),
and where the reports on its page stand (草稿 / 已送审 / 已退回 / 已审核); which reports were submitted or
approved after the checkpoint's last run (its results are stale until it runs again)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from monitor.core.workdays import as_utc
from monitor.db.engine import PROJECT, PROJECT_REPORT, REPORT_EVENT, REPORT_FORM, RUN


@dataclass
class UnitProgress:
    unit_code: str
    projects: int = 0
    reported: int = 0  # a report that counts is stored (project_report)
    states: Counter[str] = field(default_factory=Counter)  # report_form states

    @property
    def missing(self) -> int:
        return self.projects - self.reported


def progress(conn: Connection, checkpoint: str) -> dict[str, UnitProgress]:
    """unit code -> its progress at `checkpoint`, every unit with projects."""
    out: dict[str, UnitProgress] = {}
    for unit, n in conn.execute(select(PROJECT.c.unit_code, func.count()).group_by(PROJECT.c.unit_code)):
        out[unit] = UnitProgress(unit, int(n))
    reported = (
        select(PROJECT.c.unit_code, func.count())
        .join(PROJECT_REPORT, PROJECT_REPORT.c.project_code == PROJECT.c.code)
        .where(PROJECT_REPORT.c.checkpoint == checkpoint)
        .group_by(PROJECT.c.unit_code)
    )
    for unit, n in conn.execute(reported):
        out.setdefault(unit, UnitProgress(unit)).reported = int(n)
    states = (
        select(REPORT_FORM.c.unit_code, REPORT_FORM.c.state, func.count())
        .where(REPORT_FORM.c.checkpoint == checkpoint)
        .group_by(REPORT_FORM.c.unit_code, REPORT_FORM.c.state)
    )
    for unit, state, n in conn.execute(states):
        out.setdefault(unit, UnitProgress(unit)).states[state] = int(n)
    return out


def after_the_run(conn: Connection, checkpoint: str) -> list[str]:
    """Projects whose report was submitted or approved after the checkpoint's last finished run: its
    results do not reflect them until it runs again (none when it has not run)."""
    last = conn.execute(
        select(func.max(RUN.c.started_at)).where(RUN.c.checkpoint == checkpoint, RUN.c.status == "finished")
    ).scalar()
    if last is None:
        return []
    q = (
        select(REPORT_EVENT.c.project_code)
        .where(
            REPORT_EVENT.c.checkpoint == checkpoint,
            REPORT_EVENT.c.kind.in_(("submitted", "approved")),
            REPORT_EVENT.c.at > as_utc(last),
        )
        .distinct()
        .order_by(REPORT_EVENT.c.project_code)
    )
    return list(conn.execute(q).scalars())
