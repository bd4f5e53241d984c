"""The bureau's decisions on a checkpoint's reporting: a unit's later deadline (延期, with a reason) and a
submitted or approved report opened again for the unit to change (重新打开). Each is recorded as a
report_event (by whom, when, why); bad input is refused naming the value, with nothing written."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from monitor.core.errors import BadInput, NotFound
from monitor.core.workdays import as_utc
from monitor.db.engine import PROJECT, REPORT_EVENT, REPORT_EXTENSION, REPORT_FORM, UNIT


@dataclass(frozen=True)
class Extension:
    unit_code: str
    until: dt.date
    reason: str
    by: str


def extensions(conn: Connection, checkpoint: str) -> dict[str, Extension]:
    """unit code -> its later deadline at `checkpoint`."""
    q = select(REPORT_EXTENSION).where(REPORT_EXTENSION.c.checkpoint == checkpoint)
    return {r.unit_code: Extension(r.unit_code, r.until, r.reason, r.by) for r in conn.execute(q)}


def _events(
    conn: Connection, checkpoint: str, codes: list[str], kind: str, now: dt.datetime, by: str, why: str
) -> None:
    rows = [{"checkpoint": checkpoint, "project_code": c, "kind": kind, "at": as_utc(now), "by": by,
             "channel": "bureau", "detail": why} for c in codes]  # fmt: skip
    if rows:
        conn.execute(insert(REPORT_EVENT), rows)


def extend(
    conn: Connection,
    checkpoint: str,
    unit: str,
    until: dt.date,
    deadline: dt.date,
    reason: str,
    by: str,
    now: dt.datetime,
) -> Extension:
    """Grant `unit` the deadline `until` (after the checkpoint's `deadline`, within the next year)."""
    if conn.execute(select(UNIT.c.code).where(UNIT.c.code == unit)).first() is None:
        raise NotFound(f"unit {unit!r} is not in the database（单位不存在）")
    if not reason.strip():
        raise BadInput("--reason: say why the deadline is extended（请填写延期原因）")
    if not deadline < until <= dt.date(deadline.year + 1, 12, 31):
        after = f"must be after the report deadline {deadline.isoformat()}（延期日期须晚于报送期限）"
        raise BadInput(f"--until {until.isoformat()}: {after}")
    key = {"checkpoint": checkpoint, "unit_code": unit}
    conn.execute(delete(REPORT_EXTENSION).filter_by(**key))
    granted = {"until": until, "reason": reason.strip(), "by": by, "at": as_utc(now)}
    conn.execute(insert(REPORT_EXTENSION).values(**key, **granted))
    codes = list(conn.execute(select(PROJECT.c.code).where(PROJECT.c.unit_code == unit)).scalars())
    _events(conn, checkpoint, codes, "extended", now, by, f"延期至{until.isoformat()}：{reason.strip()}")
    return Extension(unit, until, reason.strip(), by)


def reopen(conn: Connection, checkpoint: str, project: str, reason: str, by: str, now: dt.datetime) -> None:
    """A submitted or approved report opened again for its unit to change (state returned, the reason
    shown on the unit's page as the comment)."""
    if not reason.strip():
        raise BadInput("--reason: say why the report is opened again（请填写重新打开的原因）")
    key = {"checkpoint": checkpoint, "project_code": project}
    row = conn.execute(select(REPORT_FORM.c.state).filter_by(**key)).first()
    if row is None or row.state not in ("submitted", "approved"):
        state = row.state if row else "not started"
        only = "only a submitted or approved report can be opened again"
        raise BadInput(f"{project} at {checkpoint}: {only} (it is {state})")
    done = {"state": "returned", "comment": reason.strip(), "decided_at": as_utc(now), "decided_by": by}
    conn.execute(update(REPORT_FORM).filter_by(**key).values(**done))
    _events(conn, checkpoint, [project], "reopened", now, by, reason.strip())


def deadline_of(unit: str, deadline: dt.date, granted: Mapping[str, Extension]) -> dt.date:
    return granted[unit].until if unit in granted else deadline
