"""History of reports: which version of a project's report each run used, and which reports changed
after a checkpoint's last run. In: project_report / indicator_report (the current rows, each naming the
report_batch that last changed it), their *_version tables (earlier values, kept by the database's
triggers when a later batch changes a row, migration 0014, or by `withdraw` when a department returns a
report) and run.reports_upto (the last batch a run could see). Out: a project's versions in order, the
one a run used, the projects stale since a checkpoint's last run; `withdraw` of a returned report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import literal

from monitor.core.workdays import as_utc
from monitor.db.engine import (
    INDICATOR_REPORT,
    INDICATOR_REPORT_VERSION,
    PROJECT_REPORT,
    PROJECT_REPORT_VERSION,
    REPORT_BATCH,
    RUN,
)


def new_batch(conn: Connection, channel: str, source: str, at: dt.datetime) -> int:
    """A report_batch: one transaction writing reports (its rows name it), through `channel` from `source`."""
    made = conn.execute(insert(REPORT_BATCH).values(channel=channel, source=source[:2000], at=as_utc(at)))
    key = made.inserted_primary_key
    assert key is not None  # an INSERT of one row
    return int(key[0])


def last_batch(conn: Connection) -> int:
    """The latest report_batch (0 when none): what a run starting now can see."""
    return int(conn.execute(select(func.coalesce(func.max(REPORT_BATCH.c.id), 0))).scalar_one())


def last_run(conn: Connection, checkpoint: str) -> tuple[int, int] | None:
    """(id, reports_upto) of the checkpoint's last finished run; None when it has not run. A run of an
    earlier version, which did not record what it saw, saw the batches made before it started."""
    row = conn.execute(
        select(RUN.c.id, RUN.c.reports_upto, RUN.c.started_at)
        .where(RUN.c.checkpoint == checkpoint, RUN.c.status == "finished")
        .order_by(RUN.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    if row.reports_upto is not None:
        return int(row.id), int(row.reports_upto)
    seen = select(func.coalesce(func.max(REPORT_BATCH.c.id), 0)).where(REPORT_BATCH.c.at <= row.started_at)
    return int(row.id), int(conn.execute(seen).scalar_one())


def changed_after(conn: Connection, checkpoint: str, upto: int) -> list[str]:
    """Projects whose report (project or indicator rows) a batch after `upto` wrote, changed or withdrew."""
    out: set[str] = set()
    for current, kept in (
        (PROJECT_REPORT, PROJECT_REPORT_VERSION),
        (INDICATOR_REPORT, INDICATOR_REPORT_VERSION),
    ):
        now = select(current.c.project_code).where(current.c.checkpoint == checkpoint, current.c.batch > upto)
        gone = select(kept.c.project_code).where(kept.c.checkpoint == checkpoint, kept.c.replaced_by > upto)
        out.update(conn.execute(now.union(gone)).scalars())
    return sorted(out)


def stale_projects(conn: Connection, checkpoint: str) -> tuple[int | None, list[str]]:
    """(the checkpoint's last finished run, the projects whose reports arrived, changed or were withdrawn
    after it): its results do not reflect them until it runs again. (None, []) when it has not run."""
    run = last_run(conn, checkpoint)
    return (None, []) if run is None else (run[0], changed_after(conn, checkpoint, run[1]))


def withdraw(conn: Connection, checkpoint: str, project: str, batch: int) -> int:
    """The project's report at `checkpoint` no longer counts (a department returned it: 未报送 until it is
    sent again): its rows are kept as versions withdrawn by `batch`, then deleted. Returns the project
    rows withdrawn (0 or 1)."""
    moved = 0
    for current, kept in (
        (INDICATOR_REPORT, INDICATOR_REPORT_VERSION),
        (PROJECT_REPORT, PROJECT_REPORT_VERSION),
    ):
        names = [c.name for c in current.columns]
        mine = (current.c.checkpoint == checkpoint, current.c.project_code == project)
        rows = select(*[current.c[n] for n in names], literal(batch)).where(*mine)
        done = conn.execute(insert(kept).from_select([*names, "replaced_by"], rows))
        conn.execute(current.delete().where(*mine))
        moved = done.rowcount if current is PROJECT_REPORT else moved
    return max(moved, 0)


# --- a project's versions, for explain and the board ----------------------------------------------


@dataclass
class Version:
    """What one batch did to a project's report: when, through which channel, from where, and the
    values it changed (field, old, new); withdrawn when it took the report away (a return)."""

    batch: int
    channel: str
    source: str
    at: dt.datetime
    changes: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    withdrawn: bool = False


# (table, its version table, the key naming a row within the project, its value columns)
_TABLES = (
    (PROJECT_REPORT, PROJECT_REPORT_VERSION, None, ("executed", "forecast_executed")),
    (
        INDICATOR_REPORT,
        INDICATOR_REPORT_VERSION,
        "indicator_code",
        ("actual", "forecast", "possibility", "causes", "cause_text", "measures"),
    ),
)
_State = tuple[int, int | None, dict[str, object]]  # (batch, replaced_by, values)


def _states(conn: Connection, checkpoint: str, project: str) -> dict[str, list[_State]]:
    """Each report row of the project (the project's own "", an indicator's code): its kept versions in
    order, then its current values if it has a row now."""
    out: dict[str, list[_State]] = {}
    for current, kept, key, values in _TABLES:
        for tbl, ordered in ((kept, kept.c.id), (current, None)):
            q = select(tbl).where(tbl.c.checkpoint == checkpoint, tbl.c.project_code == project)
            for r in conn.execute(q.order_by(ordered) if ordered is not None else q):
                m = r._mapping
                name = f"{m[key]} " if key else ""
                by = m["replaced_by"] if tbl is kept else None
                out.setdefault(str(m[key]) if key else "", []).append(
                    (int(m["batch"] or 0), by, {f"{name}{v}": m[v] for v in values})
                )
    return out


def versions(conn: Connection, checkpoint: str, project: str) -> list[Version]:
    """What each batch did to the project's report at `checkpoint`, in order (batch 0: written before
    provenance was kept): the first report, each correction with the values it changed, a withdrawal."""
    events: dict[int, Version] = {}
    rows = _states(conn, checkpoint, project)
    named = {b for states in rows.values() for batch, by, _ in states for b in (batch, by) if b}
    # only the batches this project's rows name (a batch per import, submission, approval, return)
    q = select(REPORT_BATCH).where(REPORT_BATCH.c.id.in_(sorted(named)))
    who = {r.id: r for r in conn.execute(q)} if named else {}

    def at(batch: int) -> Version:
        if batch not in events:
            b = who.get(batch)
            events[batch] = Version(
                batch,
                b.channel if b else "",
                b.source if b else "",
                b.at if b else dt.datetime.min,
            )
        return events[batch]

    for states in rows.values():
        at(states[0][0])
        for (_, by, old), nxt in zip(states, [*states[1:], None], strict=True):
            if nxt is not None and (by is None or by == nxt[0]):  # changed in place by the next batch
                at(nxt[0]).changes += [(k, _s(v), _s(nxt[2][k])) for k, v in old.items() if v != nxt[2][k]]
                continue
            if by is not None:  # withdrawn (a return); maybe sent again later
                at(by).withdrawn = True
                if nxt is not None:
                    at(nxt[0])
    return [events[k] for k in sorted(events)]


def _s(value: object) -> str | None:
    return None if value is None else str(value)


def used(history: Sequence[Version], upto: int) -> int | None:
    """The index in `history` of the version a run that saw the batches up to `upto` used; None when it
    saw none (no report yet)."""
    seen = [i for i, v in enumerate(history) if v.batch <= upto]
    return seen[-1] if seen else None
