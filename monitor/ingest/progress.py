"""Reporting progress (报送进度) of a checkpoint, for the bureau: per unit, its projects, how many have a
report that counts (through any channel: the page, a form workbook, an import, the exchange table),
and where the reports on its page stand (草稿 / 已送审 / 已退回 / 已审核); which reports arrived, changed or
were withdrawn after the checkpoint's last run (its results are stale until it runs again)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from monitor.db.engine import PROJECT, PROJECT_REPORT, REPORT_FORM
from monitor.db.history import stale_projects


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
    """Projects whose report arrived, changed or was withdrawn after the checkpoint's last finished run,
    through any channel (a file, a form workbook, the page, a department's approval or return): its
    results do not reflect them until it runs again (none when it has not run)."""
    return stale_projects(conn, checkpoint)[1]
