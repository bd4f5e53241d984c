"""The database engine and the table handles. In: a database URL. Out: an Engine (SQLite with foreign
keys, WAL and a busy timeout, like a server database), the schema brought up to date (create_schema),
the SQLAlchemy Table of every SQLModel row class (UNIT, PROJECT, RUN, PROJECT_RESULT, OUTBOX …), and
small helpers the other db modules share (CHUNK, cores, in_memory, count_rows).
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.pool import Pool
from sqlmodel import SQLModel

from monitor.config.settings import PGBOUNCER, behind_pgbouncer
from monitor.db import migrate
from monitor.db import tables as t

CHUNK = 5000


def make_engine(url: str, poolclass: type[Pool] | None = None) -> Engine:
    """An engine for `url`; SQLite gets foreign keys on and a busy timeout, like a server database.
    `poolclass`: e.g. NullPool for a helper's own connection, closed when done. A PostgreSQL URL may end
    in `?pgbouncer=true` (behind PgBouncer in transaction mode): psycopg then prepares no statement."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, poolclass=poolclass)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            # WAL once per file (it persists); switching needs a moment alone with a new file, so wait.
            for attempt in range(50):
                try:
                    if cur.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        cur.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError:
                    if attempt == 49:
                        raise
                    time.sleep(0.05)
            cur.close()

        return engine
    behind = behind_pgbouncer(url)
    engine = create_engine(url, pool_pre_ping=True, poolclass=poolclass)

    @event.listens_for(engine, "do_connect")
    def _pgbouncer(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        # not a libpq option: taken out of what psycopg is given. PgBouncer in transaction mode (before
        # 1.21) hands each transaction whichever server connection is free, so a statement psycopg
        # prepared on one (after 5 runs) would be missing on the next
        cparams.pop(PGBOUNCER, None)
        if behind:
            cparams["prepare_threshold"] = None

    return engine


def cores() -> int:
    """The CPU cores this process may run on (what parallel work is sized by)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def in_memory(engine: Engine) -> bool:
    """A SQLite database only this process can see."""
    db = engine.url.database
    return engine.dialect.name == "sqlite" and (
        not db or db == ":memory:" or "mode=memory" in str(engine.url)
    )


def create_schema(engine: Engine) -> None:
    """Bring the database to the current schema by applying pending migrations (monitor.db.migrate): an empty
    database gets every table, an older one keeps its data, an up-to-date one costs one query."""

    migrate.upgrade(engine)


def table(model: type[SQLModel]) -> Table:
    tbl = model.__table__  # type: ignore[attr-defined]
    assert isinstance(tbl, Table)
    return tbl


UNIT = table(t.UnitRow)
PROJECT = table(t.ProjectRow)
INDICATOR = table(t.IndicatorRow)
PROJECT_REPORT = table(t.ProjectReportRow)
INDICATOR_REPORT = table(t.IndicatorReportRow)
RUN = table(t.RunRow)
RULE_VERSION = table(t.RuleVersionRow)
PROJECT_RESULT = table(t.ProjectResultRow)
INDICATOR_RESULT = table(t.IndicatorResultRow)
RUN_POLICY = table(t.RunPolicyRow)
REPORT_FORM = table(t.ReportFormRow)
REPORT_EVENT = table(t.ReportEventRow)
REPORT_EXTENSION = table(t.ReportExtensionRow)
REPORT_BATCH = table(t.ReportBatchRow)
PROJECT_REPORT_VERSION = table(t.ProjectReportVersionRow)
INDICATOR_REPORT_VERSION = table(t.IndicatorReportVersionRow)
OUTBOX = table(t.OutboxRow)
OUTBOX_MESSAGE = table(t.OutboxMessageRow)
OUTBOX_RECIPIENT = table(t.OutboxRecipientRow)
DELIVERY_ATTEMPT = table(t.DeliveryAttemptRow)
SCHEDULED_EVENT = table(t.ScheduledEventRow)
SERVICE_EVENT = table(t.ServiceEventRow)
WARNING_CASE = table(t.WarningCaseRow)
CASE_RESPONSE = table(t.CaseResponseRow)
CASE_REVIEW = table(t.CaseReviewRow)
WEB_USER = table(t.WebUserRow)
LOGIN_ATTEMPT = table(t.LoginAttemptRow)


def count_rows(conn: Connection, tbl: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(tbl)).scalar_one())
