"""Storage: the database engine, bulk upserts of imported rows, loading a checkpoint's inputs and
saving its results. SQLAlchemy Core with executemany (no ORM objects per row) on any SQLAlchemy
URL; dialect-specific upsert where the dialect has one, a portable fallback otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from operator import attrgetter
from typing import Any

from sqlalchemy import Engine, Table, case, create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import Pool
from sqlmodel import SQLModel

from monitor.core.errors import MonitorError
from monitor.core.model import (
    Direction,
    Indicator,
    IndicatorReport,
    Inputs,
    Kind,
    Project,
    ProjectReport,
    ProjectResult,
    Unit,
)
from monitor.core.summary import BureauFigures, Summary
from monitor.core.workdays import as_utc as as_utc  # stored times are UTC; kept here for readers of rows
from monitor.db import tables as t

CHUNK = 5000


def make_engine(url: str, poolclass: type[Pool] | None = None) -> Engine:
    """An engine for `url`; SQLite gets foreign keys on and a busy timeout, like a server database.
    `poolclass`: e.g. NullPool for a helper's own connection, closed when done."""
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
    return create_engine(url, pool_pre_ping=True, poolclass=poolclass)


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
    from monitor.db import migrate

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


def _chunks(rows: Sequence[dict[str, Any]], size: int = CHUNK) -> Iterator[Sequence[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def upsert(conn: Connection, tbl: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows`, replacing rows with the same primary key (re-import is an upsert by code)."""
    names = [c.name for c in tbl.columns]
    upsert_values(conn, tbl, [tuple(r[n] for n in names) for r in rows])


def _on_conflict(tbl: Table) -> str:
    """ON CONFLICT (primary key) DO UPDATE of every other column (SQLite ≥ 3.24 and PostgreSQL alike)."""
    keys = [c.name for c in tbl.primary_key.columns]
    sets = ", ".join(f"{c.name} = excluded.{c.name}" for c in tbl.columns if c.name not in keys)
    return f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"


def _upsert_sql(conn: Connection, tbl: Table) -> str:
    """INSERT … VALUES … ON CONFLICT DO UPDATE, in the driver's paramstyle."""
    names = [c.name for c in tbl.columns]
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    values = ", ".join([mark] * len(names))
    return f"INSERT INTO {tbl.name} ({', '.join(names)}) VALUES ({values}) {_on_conflict(tbl)}"


def upsert_values(conn: Connection, tbl: Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """`upsert` of plain tuples in the table's column order: one driver-level executemany, no
    per-row parameter objects (the import's bulk path)."""
    if not rows:
        return
    if conn.dialect.name in ("sqlite", "postgresql"):
        conn.exec_driver_sql(_upsert_sql(conn, tbl), list(rows))
        return
    # Portable fallback: update what exists, insert the rest.
    names = [c.name for c in tbl.columns]
    keys = [c.name for c in tbl.primary_key.columns]
    others = [n for n in names if n not in keys]
    at = [names.index(k) for k in keys]
    existing = {tuple(r) for r in conn.execute(select(*[tbl.c[k] for k in keys]))}
    new = [dict(zip(names, r, strict=True)) for r in rows if tuple(r[i] for i in at) not in existing]
    old = [dict(zip(names, r, strict=True)) for r in rows if tuple(r[i] for i in at) in existing]
    if new:
        conn.execute(insert(tbl), new)
    if old:
        from sqlalchemy import bindparam

        where = [tbl.c[k] == bindparam(f"k_{k}") for k in keys]
        stmt2 = update(tbl).where(*where).values({n: bindparam(f"v_{n}") for n in others})
        conn.execute(
            stmt2, [{**{f"k_{k}": r[k] for k in keys}, **{f"v_{n}": r[n] for n in others}} for r in old]
        )


# --- imported data ----------------------------------------------------------------------------


@dataclass
class Batch:
    """Everything one import read, already parsed and validated, in dependency order."""

    units: list[Unit] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    indicators: list[Indicator] = field(default_factory=list)
    project_reports: list[ProjectReport] = field(default_factory=list)
    indicator_reports: list[IndicatorReport] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "units": len(self.units),
            "projects": len(self.projects),
            "indicators": len(self.indicators),
            "project_reports": len(self.project_reports),
            "indicator_reports": len(self.indicator_reports),
        }


def unit_row(u: Unit) -> dict[str, Any]:
    return {"code": u.code, "name": u.name, "email": ";".join(u.emails), "supervisor_code": u.supervisor_code}


def indicator_row(i: Indicator) -> dict[str, Any]:
    d = asdict(i)
    d["direction"] = i.direction.value
    d["kind"] = i.kind.value if i.kind else None
    return d


def _unit_record(u: Unit) -> tuple[Any, ...]:
    return (u.code, u.name, ";".join(u.emails), u.supervisor_code)


def _indicator_record(i: Indicator) -> tuple[Any, ...]:
    kind = i.kind.value if i.kind else None
    return (i.project_code, i.code, i.level1, i.level2, i.name, i.direction.value, i.target, i.measure_unit,
            kind, i.profile)  # fmt: skip


# kind of imported record -> its table, and a model object -> the row stored (values in column order)
IMPORT_TABLES: dict[str, Table] = {
    "units": UNIT,
    "projects": PROJECT,
    "indicators": INDICATOR,
    "project_reports": PROJECT_REPORT,
    "indicator_reports": INDICATOR_REPORT,
}
RECORD: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    "units": _unit_record,
    "projects": attrgetter(*(c.name for c in PROJECT.columns)),  # Project's fields are the columns
    "indicators": _indicator_record,
    "project_reports": attrgetter(*(c.name for c in PROJECT_REPORT.columns)),
    "indicator_reports": attrgetter(*(c.name for c in INDICATOR_REPORT.columns)),
}


def write_batch(conn: Connection, batch: Batch) -> None:
    """Upsert a validated batch inside the caller's transaction, parents before children."""
    for kind, tbl in IMPORT_TABLES.items():
        records = [RECORD[kind](x) for x in getattr(batch, kind)]
        for i in range(0, len(records), CHUNK):
            upsert_values(conn, tbl, records[i : i + CHUNK])


SQLITE_IMPORT_CACHE_KIB = 128 * 1024  # SQLite's page cache while importing (its default: 2 MiB)


@contextmanager
def large_cache(conn: Connection) -> Iterator[None]:
    """On SQLite, a 128 MiB page cache for the length of the block, for the database and for its
    temporary tables and sorts alike (bulk writes into large indexes, joins against large temporary
    tables: with the default 2 MiB most inserts or lookups evict a page); elsewhere nothing."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = [conn.exec_driver_sql(f"PRAGMA {db}.cache_size").scalar_one() for db in ("main", "temp")]
    for db in ("main", "temp"):
        conn.exec_driver_sql(f"PRAGMA {db}.cache_size = -{SQLITE_IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        with suppress(SQLAlchemyError):  # a broken connection: the error that broke it matters
            for db, size in zip(("main", "temp"), before, strict=True):
                conn.exec_driver_sql(f"PRAGMA {db}.cache_size = {int(size)}")


class DanglingReferences(MonitorError):
    """An import would have left rows referring to rows that do not exist (nothing was written)."""


@contextmanager
def import_transaction(engine: Engine, check_at_end: bool = False) -> Iterator[Connection]:
    """The one transaction of an import. `check_at_end` (SQLite): the foreign keys are checked once,
    table by table in key order, before committing, instead of at every insert. Units report in no
    key order, so checking each row as it is inserted is a random lookup into a table that outgrows
    the page cache at national size (a first load of 1M projects: a tenth of its time); the check at
    the end reads every row of every table, so it is for loading an empty database. The importer has
    checked every reference itself already: this is the database agreeing. A dangling reference rolls
    everything back. Otherwise, and elsewhere: engine.begin()."""
    if engine.dialect.name != "sqlite" or not check_at_end:
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # only outside a transaction
        conn.commit()
        try:
            with conn.begin():
                yield conn
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchmany(5)
                if broken:
                    raise DanglingReferences(
                        f"the import would leave rows referring to missing rows: {broken}"
                    )
        finally:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()


def is_empty(engine: Engine) -> bool:
    """No project stored yet (a first load)."""
    with engine.connect() as conn:
        return conn.execute(select(PROJECT.c.code).limit(1)).first() is None


@contextmanager
def bulk_upsert(conn: Connection) -> Iterator[Callable[[str, Sequence[tuple[Any, ...]]], None]]:
    """`write(kind, records)` upserting imported records (tuples in column order, no key twice in
    one call) into the caller's transaction, for the length of the block. PostgreSQL: COPY into a
    temporary table, then one INSERT … SELECT … ON CONFLICT (about 40% faster than executemany).
    SQLite: executemany, with a larger page cache meanwhile: reports arrive in no key order, and
    with the default cache most inserts into a large primary-key index evict a page to the WAL
    (at 1,000,000 projects the import takes a fifth less time)."""
    if conn.dialect.name == "sqlite":
        with large_cache(conn):
            yield lambda kind, records: upsert_values(conn, IMPORT_TABLES[kind], records)
        return
    if conn.dialect.name != "postgresql":
        yield lambda kind, records: upsert_values(conn, IMPORT_TABLES[kind], records)
        return
    staged: set[str] = set()

    def write(kind: str, records: Sequence[tuple[Any, ...]]) -> None:
        if records:
            _copy_upsert(conn, IMPORT_TABLES[kind], records, staged)

    yield write


def _copy_upsert(conn: Connection, tbl: Table, rows: Sequence[tuple[Any, ...]], staged: set[str]) -> None:
    names, stage = ", ".join(c.name for c in tbl.columns), f"import_{tbl.name}"
    with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
        if stage not in staged:  # dropped with the transaction, committed or not
            cur.execute(f"CREATE TEMPORARY TABLE {stage} (LIKE {tbl.name} INCLUDING DEFAULTS) ON COMMIT DROP")
            staged.add(stage)
        with cur.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(f"INSERT INTO {tbl.name} ({names}) SELECT {names} FROM {stage} {_on_conflict(tbl)}")
        cur.execute(f"TRUNCATE {stage}")


@dataclass(frozen=True)
class KnownCodes:
    """Codes already in the database, for validating references in a new batch."""

    units: frozenset[str]
    projects: Mapping[str, tuple[int, int]]  # code -> (budget, carryover)
    indicators: frozenset[tuple[str, str]]


def known_codes(conn: Connection) -> KnownCodes:
    return KnownCodes(
        units=frozenset(known_unit_codes(conn)),
        projects={code: (budget, carryover) for code, budget, carryover in known_project_budgets(conn)},
        indicators=frozenset(known_indicator_codes(conn)),
    )


def _stream(conn: Connection, query: Any) -> Iterator[Any]:
    """Rows of `query`, fetched a batch at a time (on the statement: Connection.execution_options
    would switch the whole connection to server-side cursors, where executemany is not supported)."""
    return iter(conn.execute(query.execution_options(yield_per=20_000)))


def known_unit_codes(conn: Connection) -> Iterator[str]:
    """Unit codes in the database, streamed."""
    return (r[0] for r in _stream(conn, select(UNIT.c.code)))


def known_project_budgets(conn: Connection) -> Iterator[tuple[str, int, int]]:
    """(code, budget, carry-over) of every project in the database, streamed."""
    query = select(PROJECT.c.code, PROJECT.c.budget, PROJECT.c.carryover)
    return ((r[0], r[1], r[2]) for r in _stream(conn, query))


def known_indicator_codes(conn: Connection) -> Iterator[tuple[str, str]]:
    """(project code, indicator code) of every indicator in the database, streamed."""
    return ((r[0], r[1]) for r in _stream(conn, select(INDICATOR.c.project_code, INDICATOR.c.code)))


# --- evaluation inputs ---------------------------------------------------------------------------


def _unit(r: Any) -> Unit:
    emails = tuple(e.strip() for e in (r.email or "").split(";") if e.strip())
    return Unit(r.code, r.name, emails, r.supervisor_code)


def load_units(conn: Connection, codes: Iterable[str] | None = None) -> dict[str, Unit]:
    """Every unit, or those of `codes`."""
    if codes is None:
        return {r.code: _unit(r) for r in conn.execute(select(UNIT))}
    wanted, out = sorted(set(codes)), {}
    for i in range(0, len(wanted), 500):
        out.update(
            {r.code: _unit(r) for r in conn.execute(select(UNIT).where(UNIT.c.code.in_(wanted[i : i + 500])))}
        )
    return out


_DIRECTION = {d.value: d for d in Direction}
_KIND = {k.value: k for k in Kind}
_PROJECT_COLS = ("code", "name", "unit_code", "budget", "carryover", "fund_flag", "category", "profile")
_INDICATOR_COLS = ("project_code", "code", "level1", "level2", "name", "direction", "target", "measure_unit")
_IND_REPORT_COLS = (
    "checkpoint",
    "project_code",
    "indicator_code",
    "actual",
    "forecast",
    "possibility",
    "causes",
    "cause_text",
    "measures",
)


def project_chunks(conn: Connection, size: int = CHUNK) -> Iterator[list[Project]]:
    """Every project in code order, `size` at a time (keyset pagination: memory stays flat)."""
    cols = [PROJECT.c[c] for c in _PROJECT_COLS]
    last = ""
    while True:
        rows = conn.execute(
            select(*cols).where(PROJECT.c.code > last).order_by(PROJECT.c.code).limit(size)
        ).all()
        if not rows:
            return
        yield [Project(*r) for r in rows]
        last = rows[-1][0]


@dataclass
class Chunk:
    """The indicators and `checkpoint` reports of the projects whose codes lie in [first, last]."""

    indicators: dict[str, list[Indicator]]
    project_reports: dict[str, ProjectReport]
    indicator_reports: dict[tuple[str, str], IndicatorReport]


def load_chunk(
    conn: Connection, checkpoint: str, first: str, last: str, codes: Sequence[str] | None = None
) -> Chunk:
    """The chunk of the projects whose codes lie in [first, last] (only those in `codes`, if given)."""
    icols = [INDICATOR.c[c] for c in (*_INDICATOR_COLS, "kind", "profile")]
    indicators: dict[str, list[Indicator]] = {}

    def within(col: Any) -> Any:
        return col.in_(list(codes)) if codes is not None else col.between(first, last)

    q = select(*icols).where(within(INDICATOR.c.project_code))
    for p, c, l1, l2, name, direction, target, unit, kind, profile in conn.execute(
        q.order_by(INDICATOR.c.project_code, INDICATOR.c.code)
    ).all():
        indicators.setdefault(p, []).append(
            Indicator(
                p,
                c,
                l1,
                l2,
                name,
                _DIRECTION[direction],
                target,
                unit,
                _KIND[kind] if kind else None,
                profile,
            )
        )
    pr = PROJECT_REPORT
    reports = {
        r[1]: ProjectReport(*r)
        for r in conn.execute(
            select(pr.c.checkpoint, pr.c.project_code, pr.c.executed, pr.c.forecast_executed).where(
                pr.c.checkpoint == checkpoint, within(pr.c.project_code)
            )
        ).all()
    }
    ir = INDICATOR_REPORT
    ind_reports = {
        (r[1], r[2]): IndicatorReport(*r)
        for r in conn.execute(
            select(*[ir.c[c] for c in _IND_REPORT_COLS]).where(
                ir.c.checkpoint == checkpoint, within(ir.c.project_code)
            )
        ).all()
    }
    return Chunk(indicators, reports, ind_reports)


def bulk_insert(
    conn: Connection, tbl: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """executemany with plain tuples on the driver: no per-row parameter objects (bulk writes)."""
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {tbl.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    conn.exec_driver_sql(sql, list(rows))


PROJECT_RESULT_COLS = (
    "checkpoint",
    "project_code",
    "run_id",
    "unit_code",
    "project_name",
    "status",
    "budget",
    "executed",
    "execution_rate",
    "time_progress",
    "budget_light",
    "target_light",
    "light",
    "reasons",
)
INDICATOR_RESULT_COLS = (
    "checkpoint",
    "project_code",
    "indicator_code",
    "name",
    "kind",
    "light",
    "ratio",
    "reason",
    "target",
    "actual",
    "measure_unit",
    "direction",
)


def clear_results(conn: Connection, checkpoint: str) -> None:
    conn.execute(delete(INDICATOR_RESULT).where(INDICATOR_RESULT.c.checkpoint == checkpoint))
    conn.execute(delete(PROJECT_RESULT).where(PROJECT_RESULT.c.checkpoint == checkpoint))


def insert_results(conn: Connection, run_id: int, results: Sequence[ProjectResult]) -> None:
    """Store a chunk of results (after clear_results, in the same transaction). `_value_` is the
    enum's plain string, read without the `.value` property's cost (millions of rows)."""
    bulk_insert(
        conn,
        PROJECT_RESULT,
        PROJECT_RESULT_COLS,
        [
            (
                r.checkpoint,
                r.project_code,
                run_id,
                r.unit_code,
                r.project_name,
                r.status._value_,
                r.budget,
                r.executed,
                r.execution_rate,
                r.time_progress,
                r.budget_light and r.budget_light._value_,
                r.target_light and r.target_light._value_,
                r.light and r.light._value_,
                "\n".join(r.reasons),
            )
            for r in results
        ],
    )
    bulk_insert(
        conn,
        INDICATOR_RESULT,
        INDICATOR_RESULT_COLS,
        [
            (
                r.checkpoint,
                r.project_code,
                i.indicator_code,
                i.name,
                i.kind._value_,
                i.light._value_,
                i.ratio,
                i.reason,
                i.target,
                i.actual,
                i.measure_unit,
                i.direction,
            )
            for r in results
            for i in r.indicators
        ],
    )


def delete_results(conn: Connection, checkpoint: str, codes: Sequence[str]) -> None:
    """Remove some projects' stored results of `checkpoint` (to store them again)."""
    for tbl in (INDICATOR_RESULT, PROJECT_RESULT):
        conn.execute(delete(tbl).where(tbl.c.checkpoint == checkpoint, tbl.c.project_code.in_(list(codes))))


def tally(
    conn: Connection,
    checkpoint: str,
    lo: str | None = None,
    hi: str | None = None,
    schema: str | None = None,
    settled_only: bool = False,
) -> Summary:
    """The Summary of `checkpoint`'s stored results (of the projects from `lo` to `hi` if given, in
    the tables of `schema` if given: an attached scratch database), counted by the database.
    `settled_only`: leave out the projects still uncertain ('?'), for a count made before the pure
    core has evaluated them again (and thrown away if there were any)."""
    summary = Summary(checkpoint)
    prefix = f"{schema}." if schema else ""
    bounds = ((">=", "lo", lo), ("<", "hi", hi))
    within = "".join(f" AND project_code {op} :{name}" for op, name, v in bounds if v is not None)
    settled = " AND (light IS NULL OR light <> '?')" if settled_only else ""
    params = {"cp": checkpoint, "lo": lo, "hi": hi}
    groups = text(
        "SELECT g.unit_code, u.name, g.light, g.n, g.amount FROM (SELECT unit_code, light, count(*) AS n,"
        f" coalesce(sum(budget), 0) AS amount FROM {prefix}project_result"
        f" WHERE checkpoint = :cp{within}{settled}"
        " GROUP BY unit_code, light) g LEFT JOIN unit u ON u.code = g.unit_code"
        " ORDER BY g.unit_code, g.light"
    )
    for code, name, light, n, amount in conn.execute(groups, params):
        summary.add_group(light, int(n), int(amount), code, name or code)
    blue = text(
        f"SELECT count(*) FROM {prefix}indicator_result WHERE checkpoint = :cp{within} AND light = 'blue'"
    )
    summary.blue_indicators = int(conn.execute(blue, params).scalar_one())
    return summary


def finish_run(conn: Connection, run_id: int, counts: Mapping[str, int], now: dt.datetime) -> None:
    conn.execute(
        update(RUN).where(RUN.c.id == run_id).values(finished_at=as_utc(now), status="finished", **counts)
    )


def load_inputs(
    conn: Connection,
    checkpoint: str,
    project_codes: Iterable[str] | None = None,
    units: dict[str, Unit] | None = None,
) -> Inputs:
    """Load units, projects, indicators and the reports of `checkpoint` (optionally some projects only),
    all in memory: for previews and explanations; checkpoint runs stream with project_chunks/load_chunk.
    `units`: the units already loaded (a caller loading many batches loads them once)."""
    if units is None:
        units = load_units(conn)
    q = select(*[PROJECT.c[c] for c in _PROJECT_COLS]).order_by(PROJECT.c.code)
    if project_codes is not None:
        q = q.where(PROJECT.c.code.in_(list(project_codes)))
    projects = [Project(*r) for r in conn.execute(q).all()]
    if not projects:
        return Inputs(units, [], {}, {}, {})
    codes = [p.code for p in projects] if project_codes is not None else None
    chunk = load_chunk(conn, checkpoint, projects[0].code, projects[-1].code, codes)
    return Inputs(units, projects, chunk.indicators, chunk.project_reports, chunk.indicator_reports)


# --- runs and results -----------------------------------------------------------------------------


def save_rule_version(conn: Connection, rules_hash: str, content: str, now: dt.datetime) -> None:
    exists = conn.execute(select(RULE_VERSION.c.hash).where(RULE_VERSION.c.hash == rules_hash)).first()
    if not exists:
        conn.execute(insert(RULE_VERSION).values(hash=rules_hash, content=content, created_at=as_utc(now)))


def start_run(conn: Connection, checkpoint: str, rules_hash: str, now: dt.datetime) -> int:
    res = conn.execute(
        insert(RUN).values(
            checkpoint=checkpoint, started_at=as_utc(now), rules_hash=rules_hash, status="running"
        )
    )
    pk = res.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def runs(conn: Connection, checkpoint: str | None = None) -> list[dict[str, Any]]:
    q = select(RUN).order_by(RUN.c.id)
    if checkpoint:
        q = q.where(RUN.c.checkpoint == checkpoint)
    return [dict(r._mapping) for r in conn.execute(q)]


def unreported(conn: Connection, checkpoint: str) -> list[dict[str, Any]]:
    """Projects with no execution report for `checkpoint` yet (what a reminder round lists)."""
    reported = select(PROJECT_REPORT.c.project_code).where(PROJECT_REPORT.c.checkpoint == checkpoint)
    q = (
        select(PROJECT.c.code, PROJECT.c.name, PROJECT.c.unit_code, PROJECT.c.budget)
        .where(PROJECT.c.code.not_in(reported))
        .order_by(PROJECT.c.unit_code, PROJECT.c.code)
    )
    return [
        {"project_code": r.code, "project_name": r.name, "unit_code": r.unit_code, "budget": r.budget}
        for r in conn.execute(q)
    ]


def result_lights(conn: Connection, checkpoint: str) -> dict[str, str | None]:
    """project code -> stored project light at `checkpoint` (None when not reported)."""
    q = select(PROJECT_RESULT.c.project_code, PROJECT_RESULT.c.light).where(
        PROJECT_RESULT.c.checkpoint == checkpoint
    )
    return {r[0]: r[1] for r in conn.execute(q)}


INDICATOR_KEYS: tuple[str, ...] = ("indicator_code", "name", "kind", "light", "ratio", "reason")
INDICATOR_KEYS += ("target", "actual", "measure_unit", "direction")


def load_results(
    conn: Connection, checkpoint: str, unit: str | None = None, light: str | None = None
) -> list[dict[str, Any]]:
    """Stored results of `checkpoint` as plain dicts in the stable JSON shape (see README)."""
    q = select(PROJECT_RESULT).where(PROJECT_RESULT.c.checkpoint == checkpoint)
    if unit:
        q = q.where(PROJECT_RESULT.c.unit_code == unit)
    if light == "not_reported":  # a not-reported project has no light
        q = q.where(PROJECT_RESULT.c.light.is_(None))
    elif light:
        q = q.where(PROJECT_RESULT.c.light == light)
    q = q.order_by(PROJECT_RESULT.c.unit_code, PROJECT_RESULT.c.project_code)
    projects = [dict(r._mapping) for r in conn.execute(q)]
    inds: dict[str, list[dict[str, Any]]] = {}
    iq = select(INDICATOR_RESULT).where(INDICATOR_RESULT.c.checkpoint == checkpoint)
    if unit:
        iq = iq.where(
            INDICATOR_RESULT.c.project_code.in_(
                select(PROJECT_RESULT.c.project_code).where(
                    PROJECT_RESULT.c.checkpoint == checkpoint, PROJECT_RESULT.c.unit_code == unit
                )
            )
        )
    for r in conn.execute(iq.order_by(INDICATOR_RESULT.c.project_code, INDICATOR_RESULT.c.indicator_code)):
        inds.setdefault(r.project_code, []).append(dict(r._mapping))
    out = [_result_dict(p, inds.get(p["project_code"], [])) for p in projects]
    _render_reasons(conn, checkpoint, out)
    return out


def _render_reasons(
    conn: Connection, checkpoint: str, results: list[dict[str, Any]], lights: Sequence[str] | None = None
) -> None:
    """Fill in the reasons a compiled evaluation left to be rendered when read (monitor.evaluate.reasons)."""
    from monitor.evaluate import reasons

    reasons.fill(conn, checkpoint, results, lights)


def _result_dict(p: Mapping[Any, Any], indicators: Sequence[Mapping[Any, Any]]) -> dict[str, Any]:
    """A stored project result (and its indicator results) in the stable JSON shape."""
    return {
        "project_code": p["project_code"],
        "project_name": p["project_name"],
        "unit_code": p["unit_code"],
        "checkpoint": p["checkpoint"],
        "status": p["status"],
        "budget_light": p["budget_light"],
        "target_light": p["target_light"],
        "light": p["light"],
        "execution_rate": p["execution_rate"],
        "time_progress": p["time_progress"],
        "budget": p["budget"],
        "executed": p["executed"],
        "reasons": [s for s in p["reasons"].split("\n") if s],
        "indicators": [{k: i[k] for k in INDICATOR_KEYS} for i in indicators],
    }


WARNED = ("yellow", "red")


def iter_unit_results(
    conn: Connection, checkpoint: str, chunk_units: int = 2000
) -> Iterator[list[dict[str, Any]]]:
    """Stored results of `checkpoint` like load_results, streamed: `chunk_units` whole units at a time
    (ordered by unit code, then project code; keyset pagination, so memory stays flat). Indicator
    results are loaded for yellow and red projects only: the others get `"indicators": []` (what the
    unit digests, reminders and counts need; use load_results for the full detail)."""
    for first, last in unit_chunks(conn, checkpoint, chunk_units):
        yield unit_results(conn, checkpoint, first, last)


def unit_chunks(conn: Connection, checkpoint: str, chunk_units: int = 2000) -> Iterator[tuple[str, str]]:
    """(first, last) unit codes of consecutive chunks of `chunk_units` units with results in
    `checkpoint`, in code order (keyset pagination)."""
    pr = PROJECT_RESULT
    last: str | None = None
    while True:
        q = select(pr.c.unit_code).where(pr.c.checkpoint == checkpoint)
        if last is not None:
            q = q.where(pr.c.unit_code > last)
        codes = conn.execute(q.distinct().order_by(pr.c.unit_code).limit(chunk_units)).scalars().all()
        if not codes:
            return
        last = codes[-1]
        yield codes[0], last


def unit_results(conn: Connection, checkpoint: str, first: str, last: str) -> list[dict[str, Any]]:
    """The results of the units with codes in [first, last] (one chunk of iter_unit_results): every
    project, the indicators of the yellow and red ones, their reasons rendered."""
    pr, ir = PROJECT_RESULT, INDICATOR_RESULT
    in_chunk = (pr.c.checkpoint == checkpoint, pr.c.unit_code.between(first, last))
    projects = [
        r._mapping
        for r in conn.execute(select(pr).where(*in_chunk).order_by(pr.c.unit_code, pr.c.project_code))
    ]
    inds: dict[str, list[Mapping[Any, Any]]] = {}
    # by the warned projects' codes, 500 at a time: a join the planner may drive from the whole
    # indicator_result table would read it once per chunk (quadratic at national size)
    warned = sorted(p["project_code"] for p in projects if p["light"] in WARNED)
    cols = [ir.c[k] for k in ("project_code", *INDICATOR_KEYS)]
    for i in range(0, len(warned), 500):
        iq = (
            select(*cols)
            .where(ir.c.checkpoint == checkpoint, ir.c.project_code.in_(warned[i : i + 500]))
            .order_by(ir.c.project_code, ir.c.indicator_code)
        )
        for r in conn.execute(iq):
            inds.setdefault(r.project_code, []).append(r._mapping)
    chunk = [_result_dict(p, inds.get(p["project_code"], ())) for p in projects]
    _render_reasons(conn, checkpoint, chunk, WARNED)
    return chunk


def result_runs(conn: Connection, checkpoint: str) -> set[int]:
    """The runs whose results `checkpoint` holds now (one, unless projects were evaluated apart)."""
    q = select(PROJECT_RESULT.c.run_id).where(PROJECT_RESULT.c.checkpoint == checkpoint).distinct()
    return set(conn.execute(q).scalars())


def has_results(conn: Connection, checkpoint: str) -> bool:
    q = select(PROJECT_RESULT.c.project_code).where(PROJECT_RESULT.c.checkpoint == checkpoint).limit(1)
    return conn.execute(q).first() is not None


def previous_lights(
    conn: Connection, checkpoint: str, previous: str, first_unit: str, last_unit: str
) -> dict[str, str | None]:
    """result_lights of `previous` for the projects of `checkpoint` whose unit codes lie in
    [first_unit, last_unit] (one chunk of iter_unit_results)."""
    cur, prev = PROJECT_RESULT, PROJECT_RESULT.alias("prev")
    q = (
        select(prev.c.project_code, prev.c.light)
        .join(cur, cur.c.project_code == prev.c.project_code)
        .where(
            cur.c.checkpoint == checkpoint,
            cur.c.unit_code.between(first_unit, last_unit),
            prev.c.checkpoint == previous,
        )
    )
    return {r[0]: r[1] for r in conn.execute(q)}


def project_names(conn: Connection, checkpoint: str, codes: Iterable[str]) -> dict[str, str]:
    """project code -> name as stored with `checkpoint`'s results (codes without a result are left out)."""
    wanted, out = sorted(set(codes)), {}
    for i in range(0, len(wanted), 500):
        q = select(PROJECT_RESULT.c.project_code, PROJECT_RESULT.c.project_name).where(
            PROJECT_RESULT.c.checkpoint == checkpoint,
            PROJECT_RESULT.c.project_code.in_(wanted[i : i + 500]),
        )
        out.update({r[0]: r[1] for r in conn.execute(q)})
    return out


def bureau_figures(conn: Connection, checkpoint: str, previous: str | None, top_red: int) -> BureauFigures:
    """What the bureau summary states (views.bureau_summary), gathered by the database: GROUP BY for the
    counts, amounts and trend, ORDER BY … LIMIT for the largest red projects; only the red codes and
    the unreported projects are listed in full. `previous` None: no trend."""
    pr, unit = PROJECT_RESULT, UNIT
    dept = case(
        (unit.c.code.is_(None), None),
        (func.coalesce(unit.c.supervisor_code, "") == "", unit.c.code),
        else_=unit.c.supervisor_code,
    ).label("dept")
    q = (
        select(dept, pr.c.light, func.count(), func.coalesce(func.sum(pr.c.budget), 0))
        .select_from(pr.outerjoin(unit, unit.c.code == pr.c.unit_code))
        .where(pr.c.checkpoint == checkpoint)
        .group_by(dept, pr.c.light)
    )
    groups = {(r[0], r[1]): (int(r[2]), int(r[3])) for r in conn.execute(q)}
    is_red = (pr.c.checkpoint == checkpoint, pr.c.light == "red")
    red = list(conn.execute(select(pr.c.project_code).where(*is_red)).scalars())
    top: list[Mapping[str, Any]] = []
    if top_red > 0 and red:
        nth = conn.execute(
            select(pr.c.budget).where(*is_red).order_by(pr.c.budget.desc()).limit(1).offset(top_red - 1)
        ).scalar()
        q = select(pr).where(*is_red)
        if nth is not None:  # fewer reds than asked for: all of them
            q = q.where(pr.c.budget >= nth)  # ties with the n-th included: the view breaks them by code
        rows = [_result_dict(r._mapping, ()) for r in conn.execute(q)]
        _render_reasons(conn, checkpoint, rows)
        top = list(rows)
    not_reported: list[Mapping[str, Any]] = [
        dict(r._mapping)
        for r in conn.execute(
            select(pr.c.project_code, pr.c.project_name, pr.c.unit_code, pr.c.budget)
            .where(pr.c.checkpoint == checkpoint, pr.c.status == "not_reported")
            .order_by(pr.c.unit_code, pr.c.project_code)
        )
    ]
    trend = None
    if previous is not None:
        prev = pr.alias("prev")
        tq = (
            select(prev.c.light, pr.c.light, func.count())
            .join(prev, prev.c.project_code == pr.c.project_code)
            .where(
                pr.c.checkpoint == checkpoint,
                prev.c.checkpoint == previous,
                pr.c.light.is_not(None),
                prev.c.light.is_not(None),
            )
            .group_by(prev.c.light, pr.c.light)
        )
        trend = Counter({(r[0], r[1]): int(r[2]) for r in conn.execute(tq)})
    return BureauFigures(groups, red, top, not_reported, trend)


def count_rows(conn: Connection, tbl: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(tbl)).scalar_one())


def dump_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2)
