"""The department's review (主管部门审核) of its units' reports: a supervising department (a unit other
units name as supervisor_code; a department is its own) sees its units' forms with their state, and
returns a submitted one with a comment (已退回: the unit's page is editable again and shows the
comment) or approves it (已审核). Every decision is a report_event (by, channel web, the comment).

With `reporting.counts_when: approved` a submission was only checked when sent; approving it imports
its fields by the canonical import (reporting.tables, the same parsers and checks), the state change
in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection

from monitor.core.model import Unit
from monitor.core.workdays import as_utc
from monitor.db.engine import PROJECT, REPORT_FORM
from monitor.db.history import new_batch, withdraw
from monitor.db.inputs import load_units
from monitor.ingest.importer import ImportFailed, import_paths
from monitor.ingest.reporting import ProjectForm, chinese, event, load_forms, tables

RETURNED, APPROVED = "returned", "approved"
MAX_COMMENT = 2000


@dataclass
class UnitForms:
    """One unit of the department with its forms (every project, whether it reported or not)."""

    unit: Unit
    forms: list[ProjectForm]


class Gone(Exception):
    """The report is no longer waiting for a decision (decided meanwhile, or not the department's)."""


def department_units(conn: Connection, department: str) -> list[Unit]:
    """The units `department` supervises, and itself (its own projects are its own to review)."""
    units = load_units(conn)
    mine = [u for u in units.values() if u.code == department or u.supervisor_code == department]
    return sorted(mine, key=lambda u: u.code)


def is_department(conn: Connection, code: str) -> bool:
    """Whether some unit names `code` as its supervising department."""
    return any(u.supervisor_code == code for u in load_units(conn).values())


def load_department(conn: Connection, checkpoint: str, department: str) -> list[UnitForms]:
    """The department's units with their forms at `checkpoint`, units without projects left out."""
    out = [UnitForms(u, load_forms(conn, checkpoint, u.code)) for u in department_units(conn, department)]
    return [u for u in out if u.forms]


def _decide(
    conn: Connection,
    checkpoint: str,
    project: str,
    units: Sequence[str],
    state: str,
    now: dt.datetime,
    by: str,
    comment: str | None = None,
) -> None:
    """A submitted report of one of `units` set to `state`, with its event; Gone if it is not (any more)."""
    c = REPORT_FORM.c
    done = conn.execute(
        update(REPORT_FORM)
        .where(
            c.checkpoint == checkpoint,
            c.project_code == project,
            c.unit_code.in_(list(units)),
            c.state == "submitted",
        )
        .values(state=state, comment=comment, decided_at=as_utc(now), decided_by=by)
    )
    if done.rowcount != 1:
        raise Gone(project)
    event(conn, checkpoint, project, state, now, by, comment)


def return_report(
    conn: Connection,
    checkpoint: str,
    project: str,
    units: Sequence[str],
    comment: str,
    now: dt.datetime,
    by: str,
) -> tuple[str, str]:
    """退回: the report goes back to its unit with `comment` (required) and no longer counts until it is
    sent again (its rows withdrawn, kept as a version: db.history); Gone if it is not submitted.
    Returns the project's unit and name (for the e-mail to the unit)."""
    comment = comment.strip()[:MAX_COMMENT]
    if not comment:
        raise ValueError("comment required")
    _decide(conn, checkpoint, project, units, RETURNED, now, by, comment)
    # returned and not yet sent again: 未报送 (domain §7); its numbers stay, as a withdrawn version
    withdraw(conn, checkpoint, project, new_batch(conn, "web", f"{by}：退回 {project}", now))
    row = conn.execute(select(PROJECT.c.unit_code, PROJECT.c.name).where(PROJECT.c.code == project)).one()
    return str(row.unit_code), str(row.name)


def approve(
    engine: Engine,
    checkpoint: str,
    project: str,
    units: Sequence[str],
    now: dt.datetime,
    by: str,
    counts_when: str = "submitted",
) -> list[str]:
    """审核通过, in one transaction; with `counts_when` "approved" the report's fields are imported in
    it. Returns the import's problems (in Chinese; nothing written), Gone if it is not submitted."""
    if counts_when != "approved":
        with engine.begin() as conn:
            _decide(conn, checkpoint, project, units, APPROVED, now, by)
        return []
    with engine.connect() as conn:
        form = _form(conn, checkpoint, project, units)
    with tempfile.TemporaryDirectory(prefix="monitor-approve-") as tmp:
        paths, _ = tables(Path(tmp), checkpoint, [form])
        try:
            import_paths(
                engine,
                paths,
                now,
                also=lambda c: _decide(c, checkpoint, project, units, APPROVED, now, by),
                channel="web",
                source=f"{by}：审核 {project}",
            )
        except ImportFailed as exc:
            return [chinese(p.message) for p in exc.problems]
    return []


def _form(conn: Connection, checkpoint: str, project: str, units: Sequence[str]) -> ProjectForm:
    """The submitted form of `project` if it belongs to one of `units`; else Gone."""
    c = REPORT_FORM.c
    unit = conn.execute(
        select(c.unit_code).where(
            c.checkpoint == checkpoint, c.project_code == project, c.unit_code.in_(list(units))
        )
    ).scalar()
    forms = load_forms(conn, checkpoint, unit) if unit else []
    found = [f for f in forms if f.project.code == project and f.state == "submitted"]
    if not found:
        raise Gone(project)
    return found[0]
